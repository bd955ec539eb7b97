package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/testenv"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

// The Stripe webhook, through its Lambda handler, against DynamoDB Local and the Stripe layer,
// with events signed as Stripe signs them.

// webhook is the harness's webhook function, on the same tables and Stripe as its checkout.
func (h *harness) webhook() *app.Webhook {
	h.t.Helper()
	h.hookMu.Lock()
	defer h.hookMu.Unlock()
	if h.hook == nil {
		logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hook, err := testenv.Webhook(ctx, h.settings, logger, app.Options{Metrics: h.logs})
		if err != nil {
			h.t.Fatalf("build the webhook: %v", err)
		}
		h.hook = hook
	}
	return h.hook
}

// deliverRaw sends a webhook request as API Gateway would; an answer that api/openapi.yaml does
// not describe fails the test.
func (h *harness) deliverRaw(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.webhook().Handler.Handle(ctx, ev)
	if err != nil {
		h.t.Fatalf("webhook handler returned an error: %v", err)
	}
	apispec.Check(h.t, apispec.Webhook, resp)
	return resp
}

// deliver sends Stripe's event of eventType about the intent as it now stands, signed now.
func (h *harness) deliver(eventType string, pi testenv.PaymentIntentState) events.APIGatewayV2HTTPResponse {
	h.t.Helper()
	body := testenv.PaymentIntentEvent(eventType, pi, time.Now())
	return h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now())))
}

// mustReceive fails unless Stripe would count the delivery as received.
func mustReceive(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	if resp.StatusCode != 200 || resp.Body != `{"received":true}` {
		t.Fatalf("webhook answered %d %s, want 200 {\"received\":true}", resp.StatusCode, resp.Body)
	}
}

// intentOf moves the cart's recorded PaymentIntent to status (as the traveller's bank or support
// would) and returns it.
func (h *harness) intentOf(cartID, status string) testenv.PaymentIntentState {
	h.t.Helper()
	id := str(stateOf(getCart(h.t, cartID))["paymentIntentId"])
	if err := h.stripe.SetPaymentIntentStatus(id, status); err != nil {
		h.t.Fatal(err)
	}
	pi, _ := h.stripe.PaymentIntent(id)
	return pi
}

func checkBookings(t *testing.T, group, status, reason string) {
	t.Helper()
	bookings := bookingsOfGroup(t, group)
	if len(bookings) == 0 {
		t.Fatalf("group %s has no bookings", group)
	}
	for _, b := range bookings {
		if str(b["status"]) != status || str(b["cancellationReason"]) != reason {
			t.Fatalf("booking %s: %s %q, want %s %q", str(b["bookingCode"]), str(b["status"]), str(b["cancellationReason"]), status, reason)
		}
	}
}

func checkConfirmed(t *testing.T, cartID, group, intent string) {
	t.Helper()
	cart := getCart(t, cartID)
	state := stateOf(cart)
	if str(cart["status"]) != "PAID" || str(state["status"]) != "CONFIRMED" || str(state["paymentIntentId"]) != intent || str(state["groupIdentifier"]) != group {
		t.Errorf("cart %s, checkout %v: want PAID and CONFIRMED by %s", str(cart["status"]), state, intent)
	}
	checkBookings(t, group, "CONFIRMED", "")
	for _, b := range bookingsOfGroup(t, group) {
		if str(b["paymentIntentId"]) != intent {
			t.Errorf("booking %s is confirmed by %q, want %s", str(b["bookingCode"]), str(b["paymentIntentId"]), intent)
		}
	}
	if hold := holdOf(t, group); hold != nil {
		t.Errorf("a confirmed checkout keeps its hold %v", hold)
	}
}

func countLogged(h *harness, msg string) int {
	return strings.Count(h.logs.String(), `"msg":"`+msg+`"`)
}

// A 3-booking checkout paid: confirmed once, however often and however concurrently Stripe
// delivers the event.
func TestWebhookConfirmsAPaidCheckout(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "hook-paid", owner: "traveller-hook-paid", items: []itemSpec{{amount: "10"}, {amount: "20"}, {amount: "30"}}})
	answer := h.mustCheckout("traveller-hook-paid", checkoutBody("hook-paid", ""))
	group := answer["groupIdentifier"].(string)
	pi := h.intentOf("hook-paid", "succeeded")

	mustReceive(t, h.deliver(checkout.EventSucceeded, pi))
	checkConfirmed(t, "hook-paid", group, pi.ID)
	confirmedAt := str(stateOf(getCart(t, "hook-paid"))["confirmedAt"])

	mustReceive(t, h.deliver(checkout.EventSucceeded, pi)) // delivered again
	var wg sync.WaitGroup
	answers := make([]events.APIGatewayV2HTTPResponse, 10)
	body := testenv.PaymentIntentEvent(checkout.EventSucceeded, pi, time.Now())
	for i := range answers { // ten copies of one event at once
		wg.Go(func() {
			answers[i] = h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now())))
		})
	}
	wg.Wait()
	for _, resp := range answers {
		mustReceive(t, resp)
	}
	checkConfirmed(t, "hook-paid", group, pi.ID)
	if got := str(stateOf(getCart(t, "hook-paid"))["confirmedAt"]); got != confirmedAt {
		t.Errorf("confirmedAt %s became %s: confirmed more than once", confirmedAt, got)
	}
	if n := countLogged(h, "checkout moved"); n != 1 {
		t.Errorf("%d moves logged, want one confirmation", n)
	}
	if refunds := h.stripe.Refunds(pi.ID); len(refunds) != 0 {
		t.Errorf("%d refunds of the paying intent", len(refunds))
	}
	// The traveller's retry now answers cart-already-paid.
	status, problem := h.checkout("traveller-hook-paid", checkoutBody("hook-paid", ""))
	mustProblem(t, status, problem, 400, "cart-already-paid")
}

// The largest checkout is confirmed, and another released, in one transaction each.
func TestWebhookMovesTheLargestCheckout(t *testing.T) {
	h := newHarness(t, nil)
	items := make([]itemSpec, checkout.MaxItems)
	for i := range items {
		items[i] = itemSpec{amount: "1.50"}
	}
	putCart(t, cartSpec{id: "hook-large-paid", owner: "traveller-hook-large", items: items})
	putCart(t, cartSpec{id: "hook-large-canceled", owner: "traveller-hook-large", items: items})
	paid := h.mustCheckout("traveller-hook-large", checkoutBody("hook-large-paid", ""))
	canceled := h.mustCheckout("traveller-hook-large", checkoutBody("hook-large-canceled", ""))

	pi := h.intentOf("hook-large-paid", "succeeded")
	mustReceive(t, h.deliver(checkout.EventSucceeded, pi))
	checkConfirmed(t, "hook-large-paid", paid["groupIdentifier"].(string), pi.ID)

	mustReceive(t, h.deliver(checkout.EventCanceled, h.intentOf("hook-large-canceled", "canceled")))
	checkBookings(t, canceled["groupIdentifier"].(string), "CANCELLED", "payment-canceled")
	if n := len(bookingsOfGroup(t, canceled["groupIdentifier"].(string))); n != checkout.MaxItems {
		t.Errorf("%d bookings released, want %d", n, checkout.MaxItems)
	}
}

// Stripe does not keep the order of events: whatever the order, a paid checkout ends CONFIRMED.
func TestWebhookEventsInAnyOrder(t *testing.T) {
	tests := []struct {
		name   string
		events []string // statuses the intent passes through, one event each, in delivery order
	}{
		{"processing then succeeded", []string{"processing", "succeeded"}},
		{"succeeded then a late processing", []string{"succeeded", "processing"}},
		{"succeeded then a late payment_failed", []string{"succeeded", "requires_payment_method"}},
		{"payment_failed then succeeded", []string{"requires_payment_method", "succeeded"}},
		{"processing, payment_failed, succeeded", []string{"processing", "requires_payment_method", "succeeded"}},
	}
	eventOf := map[string]string{"processing": checkout.EventProcessing, "succeeded": checkout.EventSucceeded, "requires_payment_method": checkout.EventPaymentFailed}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			cartID, owner := fmt.Sprintf("hook-order-%d", i), fmt.Sprintf("traveller-hook-order-%d", i)
			putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "42"}}})
			group := h.mustCheckout(owner, checkoutBody(cartID, ""))["groupIdentifier"].(string)
			var paid testenv.PaymentIntentState
			for _, status := range tc.events {
				pi := h.intentOf(cartID, status)
				if status == "succeeded" {
					paid = pi
				}
				mustReceive(t, h.deliver(eventOf[status], pi))
				switch state := str(stateOf(getCart(t, cartID))["status"]); {
				case status == "processing" && paid.ID == "" && state != "PROCESSING":
					t.Errorf("after processing the checkout is %s, want PROCESSING", state)
				case status == "requires_payment_method" && paid.ID == "" && state != "PENDING_PAYMENT":
					t.Errorf("after payment_failed the checkout is %s, want PENDING_PAYMENT", state)
				}
				if hold := holdOf(t, group); status == "processing" && paid.ID == "" &&
					(hold == nil || str(hold["holdEndsAt"]) < fmt.Sprint(time.Now().Add(checkout.ProcessingRecheck-time.Minute).Unix())) {
					t.Errorf("a processing checkout's hold is %v, want it set for a recheck in an hour", hold)
				}
				if status == "requires_payment_method" && paid.ID == "" && holdOf(t, group) == nil {
					t.Error("after a failed payment the hold is not back")
				}
			}
			checkConfirmed(t, cartID, group, paid.ID)
		})
	}
}

// payment_intent.canceled releases the checkout; the cart can be checked out again.
func TestWebhookReleasesACanceledCheckout(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "hook-canceled", owner: "traveller-hook-canceled", items: []itemSpec{{amount: "10"}, {amount: "20"}}})
	first := h.mustCheckout("traveller-hook-canceled", checkoutBody("hook-canceled", ""))
	group := first["groupIdentifier"].(string)
	pi := h.intentOf("hook-canceled", "canceled")
	for range 2 { // and again: nothing more
		mustReceive(t, h.deliver(checkout.EventCanceled, pi))
	}
	checkBookings(t, group, "CANCELLED", "payment-canceled")
	cart := getCart(t, "hook-canceled")
	if str(cart["status"]) != "OPEN" || cart["checkout"] != nil || str(cart["version"]) != "2" || str(cart["expiresAt"]) == "" {
		t.Errorf("released cart %v: want OPEN at version 2 with its expiresAt and no checkout", cart)
	}
	if holdOf(t, group) != nil {
		t.Error("a released checkout keeps its hold")
	}
	second := h.mustCheckout("traveller-hook-canceled", checkoutBody("hook-canceled", ""))
	if second["groupIdentifier"] == group {
		t.Errorf("the new checkout has the released group %s", group)
	}
}

// A payment that must not have happened is refunded in full, once: an intent of the group that
// is not its recorded one, and a payment of a released group.
func TestWebhookRefundsPaymentsThatMustNotHaveHappened(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "hook-refund-other", owner: "traveller-hook-refund", items: []itemSpec{{amount: "42"}}})
	putCart(t, cartSpec{id: "hook-refund-released", owner: "traveller-hook-refund", items: []itemSpec{{amount: "43"}}})
	h.mustCheckout("traveller-hook-refund", checkoutBody("hook-refund-other", ""))
	recorded := h.intentOf("hook-refund-other", "requires_payment_method")
	// Another intent of the same group (say, of an earlier key generation) was paid.
	other := h.stripe.PutPaymentIntent(testenv.PaymentIntentState{Status: "succeeded", Amount: recorded.Amount,
		Currency: recorded.Currency, Customer: recorded.Customer, Metadata: recorded.Metadata})

	body := testenv.PaymentIntentEvent(checkout.EventSucceeded, other, time.Now())
	var wg sync.WaitGroup
	for range 10 { // ten concurrent deliveries: one refund
		wg.Go(func() {
			mustReceive(t, h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now()))))
		})
	}
	wg.Wait()
	if refunds := h.stripe.Refunds(other.ID); len(refunds) != 1 || refunds[0].Amount != other.Amount {
		t.Errorf("refunds of the other intent %+v, want one in full", refunds)
	}
	if state := stateOf(getCart(t, "hook-refund-other")); str(state["status"]) != "PENDING_PAYMENT" {
		t.Errorf("the checkout is %s; another intent's payment must not confirm it", str(state["status"]))
	}

	// A payment of a checkout released meanwhile.
	released := h.mustCheckout("traveller-hook-refund", checkoutBody("hook-refund-released", ""))
	late := h.intentOf("hook-refund-released", "canceled")
	mustReceive(t, h.deliver(checkout.EventCanceled, late))
	checkBookings(t, released["groupIdentifier"].(string), "CANCELLED", "payment-canceled")
	late.Status = "succeeded" // as if the payment had gone through at Stripe after all
	lateIntent := h.stripe.PutPaymentIntent(late)
	for range 2 {
		mustReceive(t, h.deliver(checkout.EventSucceeded, lateIntent))
	}
	if refunds := h.stripe.Refunds(lateIntent.ID); len(refunds) != 1 {
		t.Errorf("%d refunds of the released group's payment, want 1", len(refunds))
	}
	checkBookings(t, released["groupIdentifier"].(string), "CANCELLED", "payment-canceled")
	if n := countLogged(h, "automatic refund"); n < 2 {
		t.Errorf("%d automatic refunds logged, want each logged", n)
	}
}

// Bad input is a 400 problem (Stripe does not retry it) or, for events not ours, a 200; nothing
// changes either way.
func TestWebhookBadInput(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "hook-bad", owner: "traveller-hook-bad", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-hook-bad", checkoutBody("hook-bad", ""))
	pi := h.intentOf("hook-bad", "succeeded")
	good := testenv.PaymentIntentEvent(checkout.EventSucceeded, pi, time.Now())
	foreign := pi
	foreign.Metadata = map[string]string{"orderId": "another-system"}
	notAnIntent := testenv.Event("evt_charge", checkout.EventSucceeded, map[string]any{"id": "ch_1", "object": "charge"}, time.Now())
	otherType := testenv.Event("evt_customer", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}, time.Now())
	sign := func(body []byte) string { return testenv.Signature(body, testenv.WebhookSecret, time.Now()) }
	b64 := testenv.WebhookRequest(good, "t=1,v1=00")
	b64.Body, b64.IsBase64Encoded = base64Encode("not json at all"), true
	b64.Headers["stripe-signature"] = sign([]byte("not json at all"))

	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		field  string
	}{
		{"no signature", testenv.WebhookRequest(good, ""), 400, "Stripe-Signature"},
		{"malformed signature", testenv.WebhookRequest(good, "t=abc,v1"), 400, "Stripe-Signature"},
		{"forged signature", testenv.WebhookRequest(good, testenv.Signature(good, "whsec_someoneElse", time.Now())), 400, "Stripe-Signature"},
		{"stale signature", testenv.WebhookRequest(good, testenv.Signature(good, testenv.WebhookSecret, time.Now().Add(-10*time.Minute))), 400, "Stripe-Signature"},
		{"signature of another body", testenv.WebhookRequest(good, sign([]byte(`{"id":"evt_other"}`))), 400, "Stripe-Signature"},
		{"signed, not JSON (base64)", b64, 400, "body"},
		{"signed, not an event", testenv.WebhookRequest([]byte(`[1,2,3]`), sign([]byte(`[1,2,3]`))), 400, "body"},
		{"a payment_intent event without a payment intent", testenv.WebhookRequest(notAnIntent, sign(notAnIntent)), 400, "data.object"},
		{"another type of event", testenv.WebhookRequest(otherType, sign(otherType)), 200, ""},
	}
	foreignBody := testenv.PaymentIntentEvent(checkout.EventSucceeded, foreign, time.Now())
	tests = append(tests, struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		field  string
	}{"a payment intent of another system", testenv.WebhookRequest(foreignBody, sign(foreignBody)), 200, ""})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.deliverRaw(tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.status == 200 {
				mustReceive(t, resp)
				return
			}
			var problem struct {
				Type       string `json:"type"`
				Instance   string `json:"instance"`
				Properties struct {
					RequestID string                `json:"requestId"`
					Errors    []checkout.FieldError `json:"errors"`
				} `json:"properties"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &problem); err != nil || resp.Headers["Content-Type"] != "application/problem+json" {
				t.Fatalf("answer %q (%v), want a problem", resp.Body, err)
			}
			if problem.Type != "https://api.example.com/problems/validation" || problem.Instance != "/api/stripe/webhook" ||
				problem.Properties.RequestID == "" || len(problem.Properties.Errors) != 1 || problem.Properties.Errors[0].Field != tc.field {
				t.Errorf("problem %+v, want validation of %s", problem, tc.field)
			}
		})
	}
	cart := getCart(t, "hook-bad")
	if str(cart["status"]) != "CHECKED_OUT" || str(stateOf(cart)["status"]) != "PENDING_PAYMENT" {
		t.Errorf("cart %s checkout %s after bad deliveries, want them unchanged", str(cart["status"]), str(stateOf(cart)["status"]))
	}
	if n := len(h.stripe.Refunds(pi.ID)); n != 0 {
		t.Errorf("%d refunds", n)
	}
	// The good event itself is still handled.
	mustReceive(t, h.deliverRaw(testenv.WebhookRequest(good, sign(good))))
	checkConfirmed(t, "hook-bad", str(stateOf(getCart(t, "hook-bad"))["groupIdentifier"]), pi.ID)
}

// A signing secret that is not a whsec_ secret fails the webhook's cold start.
func TestWebhookSigningSecretIsChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := testenv.Webhook(ctx, local.Settings(local.Stack.StripeURL, map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_test_notAWebhookSecret"}), slog.New(slog.DiscardHandler), app.Options{Metrics: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "whsec_") || strings.Contains(err.Error(), "notAWebhookSecret") {
		t.Fatalf("build the webhook with a wrong secret: %v", err)
	}
}

// A payment whose group is no longer on its cart is refunded only when its bookings say the
// group was released: bookings that read pending (the index lags, or the cart service deleted
// the cart) answer 500, so that Stripe delivers the event again, and nothing is refunded.
func TestWebhookNeverRefundsOnPendingBookings(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "hook-cart-deleted", owner: "traveller-hook-deleted", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-hook-deleted", checkoutBody("hook-cart-deleted", ""))
	pi := h.intentOf("hook-cart-deleted", "succeeded")
	deleteCart(t, "hook-cart-deleted")
	if resp := h.deliver(checkout.EventSucceeded, pi); resp.StatusCode != 500 {
		t.Errorf("webhook answered %d %s, want 500", resp.StatusCode, resp.Body)
	}
	if n := len(h.stripe.Refunds(pi.ID)); n != 0 {
		t.Errorf("%d refunds of a payment whose bookings are pending", n)
	}
}
