package app_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/testenv"
)

const searchPath = "/v1/payment_intents/search"

// A checkout left CHECKING_OUT for longer than Stripe keeps idempotency keys (24 hours) must not
// give its group a second PaymentIntent: the retry looks the intent up by the group's metadata
// before creating one.
func TestStaleCheckoutLooksUpItsPaymentIntent(t *testing.T) {
	t.Run("found", func(t *testing.T) {
		h := newHarness(t, nil)
		group, tried := staleCheckout(t, h, "stale-found", "traveller-stale-1")
		// Stripe knows a canceled intent and a live one for the group, created before the key
		// expired.
		seedIntent(t, h, testenv.PaymentIntentState{ID: "pi_stale_canceled", Status: "canceled",
			ClientSecret: "pi_stale_canceled_secret_1", Metadata: map[string]string{"groupIdentifier": group}})
		seedIntent(t, h, testenv.PaymentIntentState{ID: "pi_stale_live", Status: "requires_payment_method",
			ClientSecret: "pi_stale_live_secret_1", Metadata: map[string]string{"groupIdentifier": group}})
		body := h.mustCheckout("traveller-stale-1", checkoutBody("stale-found", ""))

		if body["groupIdentifier"] != group || body["clientSecret"] != "pi_stale_live_secret_1" {
			t.Errorf("answered group %v secret %v, want %s and the live intent's secret", body["groupIdentifier"], body["clientSecret"], group)
		}
		if n := len(h.stripe.Calls("POST", "/v1/payment_intents")); n != tried {
			t.Errorf("%d PaymentIntent creates, want only the first attempt's %d", n, tried)
		}
		checkSearched(t, h, group)
		state := getCart(t, "stale-found")
		if got := str(state["status"]); got != "CHECKED_OUT" {
			t.Errorf("cart is %s, want CHECKED_OUT", got)
		}
		if got := str(stateOf(state)["paymentIntentId"]); got != "pi_stale_live" {
			t.Errorf("cart records PaymentIntent %q, want pi_stale_live", got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		// Stripe has no intent for the group (the first attempt's create was refused with a 503):
		// the retry creates one, with one of the group's keys (the first attempt's, or its next
		// generation once the checkout moved past the 503) and the first attempt's parameters.
		h := newHarness(t, nil)
		group, tried := staleCheckout(t, h, "stale-missing", "traveller-stale-2")
		if n := len(intentsOfGroup(h, group)); n != 0 {
			t.Fatalf("Stripe has %d PaymentIntents for the group before the retry, want none", n)
		}
		body := h.mustCheckout("traveller-stale-2", checkoutBody("stale-missing", ""))

		if body["groupIdentifier"] != group {
			t.Errorf("answered group %v, want %s", body["groupIdentifier"], group)
		}
		checkSearched(t, h, group)
		creates := h.stripe.Calls("POST", "/v1/payment_intents")
		if len(creates) != tried+1 {
			t.Fatalf("%d PaymentIntent creates, want the first attempt's %d and one more", len(creates), tried)
		}
		groupKey := regexp.MustCompile(`^` + regexp.QuoteMeta("checkout-payment-intent-"+group) + `(-[0-9]+)?$`)
		if last := creates[tried]; !groupKey.MatchString(last.IdempotencyKey) || last.Form.Encode() != creates[0].Form.Encode() {
			t.Errorf("PaymentIntent create %q %v, want a key of the group and the first attempt's parameters %v", last.IdempotencyKey, last.Form, creates[0].Form)
		}
		if got := str(getCart(t, "stale-missing")["status"]); got != "CHECKED_OUT" {
			t.Errorf("cart is %s, want CHECKED_OUT", got)
		}
		if n := len(intentsOfGroup(h, group)); n != 1 {
			t.Errorf("Stripe has %d PaymentIntents for the group, want the retry's one", n)
		}
	})

	t.Run("search fails", func(t *testing.T) {
		// Without the search, creating could duplicate the intent: the retry fails instead, and
		// the next one completes.
		h := newHarness(t, nil)
		group, tried := staleCheckout(t, h, "stale-unsearchable", "traveller-stale-3")
		h.stripe.SetUnavailable(func(method, path string) bool { return path == searchPath })
		if status, body := h.checkout("traveller-stale-3", checkoutBody("stale-unsearchable", "")); status != 500 {
			t.Fatalf("status %d with the search down, want 500: %v", status, body)
		}
		if n := len(h.stripe.Calls("POST", "/v1/payment_intents")); n != tried {
			t.Errorf("%d PaymentIntent creates, want only the first attempt's %d: no create without the search", n, tried)
		}
		if got := str(getCart(t, "stale-unsearchable")["status"]); got != "CHECKING_OUT" {
			t.Errorf("cart is %s, want CHECKING_OUT", got)
		}
		h.stripe.SetUnavailable(nil)
		if body := h.mustCheckout("traveller-stale-3", checkoutBody("stale-unsearchable", "")); body["groupIdentifier"] != group {
			t.Errorf("answered group %v, want %s", body["groupIdentifier"], group)
		}
	})
}

// staleCheckout leaves a fresh cart CHECKING_OUT, as a checkout whose PaymentIntent create failed
// 25 hours ago would. It returns the cart's group and how many PaymentIntent creates the failed
// attempt sent (stripe-go retries a 503).
func staleCheckout(t *testing.T, h *harness, cartID, owner string) (group string, tried int) {
	t.Helper()
	putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "120"}, {amount: "80.50"}}})
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/payment_intents" })
	if status, body := h.checkout(owner, checkoutBody(cartID, "")); status != 500 {
		t.Fatalf("status %d with Stripe down, want 500: %v", status, body)
	}
	h.stripe.SetUnavailable(nil)
	if n := len(h.stripe.Calls("GET", searchPath)); n != 0 {
		t.Fatalf("%d PaymentIntent searches by a fresh checkout, want none", n)
	}
	cart := getCart(t, cartID)
	if got := str(cart["status"]); got != "CHECKING_OUT" {
		t.Fatalf("cart is %s after the failure, want CHECKING_OUT", got)
	}
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:        aws.String(tableNames["CartsTable"]),
		Key:              map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: cartID}},
		UpdateExpression: aws.String("SET #c.#s = :s"),
		ExpressionAttributeNames: map[string]string{
			"#c": "checkout", "#s": "startedAt",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": &types.AttributeValueMemberS{Value: time.Now().Add(-25 * time.Hour).UTC().Format(time.RFC3339Nano)},
		},
	})
	if err != nil {
		t.Fatalf("age the checkout: %v", err)
	}
	return str(stateOf(cart)["groupIdentifier"]), len(h.stripe.Calls("POST", "/v1/payment_intents"))
}

func stateOf(cart map[string]types.AttributeValue) map[string]types.AttributeValue {
	m, _ := cart["checkout"].(*types.AttributeValueMemberM)
	if m == nil {
		return nil
	}
	return m.Value
}

// checkSearched checks that the retry searched exactly once, for the group's metadata.
func checkSearched(t *testing.T, h *harness, group string) {
	t.Helper()
	searches := h.stripe.Calls("GET", searchPath)
	if len(searches) != 1 {
		t.Fatalf("%d PaymentIntent searches, want 1", len(searches))
	}
	if q, want := searches[0].Query.Get("query"), "metadata['groupIdentifier']:'"+group+"'"; q != want {
		t.Errorf("search query %q, want %q", q, want)
	}
}

// seedIntent puts an intent into the test's Stripe with the amount, currency and customer of the
// cart's first PaymentIntent create, as an intent of the first attempt would have.
func seedIntent(t *testing.T, h *harness, pi testenv.PaymentIntentState) {
	t.Helper()
	first := h.stripe.Calls("POST", "/v1/payment_intents")[0].Form
	amount, err := strconv.ParseInt(first.Get("amount"), 10, 64)
	if err != nil {
		t.Fatalf("the first create's amount %q: %v", first.Get("amount"), err)
	}
	pi.Amount, pi.Currency, pi.Customer = amount, first.Get("currency"), first.Get("customer")
	h.stripe.PutPaymentIntent(pi)
}

// intentsOfGroup returns the test's Stripe's intents for a group.
func intentsOfGroup(h *harness, group string) []testenv.PaymentIntentState {
	var out []testenv.PaymentIntentState
	for _, pi := range h.stripe.PaymentIntents() {
		if pi.Metadata["groupIdentifier"] == group {
			out = append(out, pi)
		}
	}
	return out
}
