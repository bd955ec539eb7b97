package faults_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/testenv"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

// DynamoDB failing while the webhook moves a checkout: the move is one transaction, so it is
// made whole or not at all; the delivery answers 500 (Stripe delivers it again) and the
// redelivery completes it.
func TestWebhookMoveUnderDynamoDBFaults(t *testing.T) {
	const items = 3
	tests := []struct {
		name   string
		fault  testenv.DynamoError
		toxics []toxic // on the transaction's arrival, instead of a fault
		// committed tells whether the faulty delivery's transaction reached DynamoDB.
		committed bool
	}{
		{name: "transaction refused with InternalServerError", fault: testenv.DynamoError{Status: 500, Code: "InternalServerError", Message: "Internal server error"}},
		{name: "transaction throttled", fault: throttled},
		{name: "transaction committed, answered InternalServerError", fault: internalAfterWork, committed: true},
		{name: "transaction never arrives", toxics: []toxic{reset("dynamodb", "upstream")}},
		{name: "transaction's answer lost", toxics: []toxic{timeout("dynamodb", "downstream")}, committed: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			startScenario(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hook, err := testenv.Webhook(ctx, settings, logger, app.Options{Metrics: io.Discard})
			if err != nil {
				t.Fatalf("build the webhook: %v", err)
			}
			cartID, owner := fmt.Sprintf("webhook-fault-%d", i), fmt.Sprintf("traveller-webhook-fault-%d", i)
			putCart(t, cartID, owner, items)
			retryCompletes(t, owner, cartID, items, "")
			state := testenv.Map(mustCart(t, cartID)["checkout"])
			group, intentID := testenv.String(state["groupIdentifier"]), testenv.String(state["paymentIntentId"])
			if err := stripe.SetPaymentIntentStatus(intentID, "succeeded"); err != nil {
				t.Fatal(err)
			}
			pi, _ := stripe.PaymentIntent(intentID)
			body := testenv.PaymentIntentEvent(checkout.EventSucceeded, pi, time.Now())
			deliver := func(remaining time.Duration) int {
				ctx, cancel := context.WithTimeout(context.Background(), remaining)
				defer cancel()
				resp, err := hook.Handler.Handle(ctx, testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now())))
				if err != nil {
					t.Fatalf("webhook handler returned an error: %v", err)
				}
				apispec.Check(t, apispec.Webhook, resp)
				return resp.StatusCode
			}

			fault := &dynamoFault{op: "TransactWriteItems", answer: tc.fault}
			inj := &injector{t: t, toxics: tc.toxics}
			if tc.toxics == nil {
				fault.start()
			} else {
				dynamo.SetObserve(func(operation string) {
					if operation == "TransactWriteItems" {
						inj.fire()
					}
				})
			}
			status := deliver(faultRemaining)
			fault.stop()
			inj.stop()
			if status != 500 {
				t.Errorf("the faulty delivery answered %d, want 500 so that Stripe delivers it again", status)
			}
			// Whole or nothing: the cart, the bookings and the hold moved together, or none did.
			checkMovedTogether(t, cartID, group, tc.committed)

			if status := deliver(retryRemaining); status != 200 {
				t.Fatalf("the redelivery answered %d, want 200", status)
			}
			checkMovedTogether(t, cartID, group, true)
		})
	}
}

// checkMovedTogether checks that the checkout is entirely confirmed (confirmed) or entirely
// pending: its cart, every booking and its hold.
func checkMovedTogether(t *testing.T, cartID, group string, confirmed bool) {
	t.Helper()
	cart := mustCart(t, cartID)
	wantCart, wantState, wantBooking := "CHECKED_OUT", "PENDING_PAYMENT", "PENDING_PAYMENT"
	if confirmed {
		wantCart, wantState, wantBooking = "PAID", "CONFIRMED", "CONFIRMED"
	}
	if got := testenv.String(cart["status"]); got != wantCart {
		t.Errorf("cart is %s, want %s", got, wantCart)
	}
	if got := testenv.String(testenv.Map(cart["checkout"])["status"]); got != wantState {
		t.Errorf("checkout is %q, want %s", got, wantState)
	}
	for _, b := range mustBookingsOfCart(t, cartID) {
		if got := testenv.String(b["status"]); got != wantBooking {
			t.Errorf("booking %s is %s, want %s", testenv.String(b["bookingCode"]), got, wantBooking)
		}
	}
	hold, err := env.DB.GetItem(context.Background(), holdKey(group))
	if err != nil {
		t.Fatal(err)
	}
	if (hold.Item != nil) == confirmed {
		t.Errorf("hold present: %v, want %v", hold.Item != nil, !confirmed)
	}
}

func holdKey(group string) *dynamodb.GetItemInput {
	return &dynamodb.GetItemInput{
		TableName:      aws.String(testenv.Tables["HoldsTable"]),
		Key:            map[string]types.AttributeValue{"groupIdentifier": &types.AttributeValueMemberS{Value: group}},
		ConsistentRead: aws.Bool(true),
	}
}

// A crash between the cancel and the release (here: DynamoDB failing the release's transaction,
// before or after it committed; a Lambda timeout leaves the same state): the next run cancels
// again (Stripe says canceled already) and releases.
func TestReleaseInterruptedBetweenCancelAndRelease(t *testing.T) {
	for i, fault := range []testenv.DynamoError{
		{Status: 500, Code: "InternalServerError", Message: "Internal server error"},
		internalAfterWork,
	} {
		t.Run(fmt.Sprintf("after work %v", fault.After), func(t *testing.T) {
			startScenario(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cartID, owner := fmt.Sprintf("release-crash-%d", i), fmt.Sprintf("traveller-release-crash-%d", i)
			putCart(t, cartID, owner, 2)
			retryCompletes(t, owner, cartID, 2, "")
			state := testenv.Map(mustCart(t, cartID)["checkout"])
			group, intentID := testenv.String(state["groupIdentifier"]), testenv.String(state["paymentIntentId"])
			at := time.Now().Add(checkout.DefaultHold + time.Minute)
			run := func(at time.Time) checkout.Sweep {
				r, err := testenv.Releaser(ctx, settings, logger, app.Options{Metrics: io.Discard, Now: func() time.Time { return at }})
				if err != nil {
					t.Fatalf("build the releaser: %v", err)
				}
				runCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				sweep, err := r.Run(runCtx)
				if err != nil {
					t.Fatalf("release run: %v", err)
				}
				return sweep
			}
			// Other scenarios' checkouts are due too: only this one's fate counts here.
			fault := &dynamoFault{op: "TransactWriteItems", answer: fault}
			fault.start()
			run(at)
			fault.stop()
			if pi, _ := stripe.PaymentIntent(intentID); pi.Status != "canceled" {
				t.Fatalf("PaymentIntent is %s after the interrupted run, want canceled", pi.Status)
			}
			checkReleased(t, cartID, group, fault.answer.After)

			run(at.Add(time.Minute)) // the claim has expired
			checkReleased(t, cartID, group, true)
		})
	}
}

// checkReleased checks that the checkout is entirely released, or entirely pending.
func checkReleased(t *testing.T, cartID, group string, released bool) {
	t.Helper()
	cart := mustCart(t, cartID)
	wantCart, wantBooking := "CHECKED_OUT", "PENDING_PAYMENT"
	if released {
		wantCart, wantBooking = "OPEN", "CANCELLED"
	}
	if got := testenv.String(cart["status"]); got != wantCart {
		t.Errorf("cart is %s, want %s", got, wantCart)
	}
	for _, b := range mustBookingsOfCart(t, cartID) {
		if testenv.String(b["groupIdentifier"]) == group && testenv.String(b["status"]) != wantBooking {
			t.Errorf("booking %s is %s, want %s", testenv.String(b["bookingCode"]), testenv.String(b["status"]), wantBooking)
		}
	}
	hold, err := env.DB.GetItem(context.Background(), holdKey(group))
	if err != nil {
		t.Fatal(err)
	}
	if (hold.Item == nil) != released {
		t.Errorf("hold present: %v, want %v", hold.Item != nil, !released)
	}
}
