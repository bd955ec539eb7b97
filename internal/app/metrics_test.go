package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/metrics"
	"github.com/winktravel/checkout/internal/testenv"
)

// The functions' EMF lines, as CloudWatch reads them (metrics.Decode follows the
// specification), for each outcome of the checkout, each result of the webhook and a releaser run.

// lastMetric returns the last metric line the harness's functions wrote whose dimension name has
// value, failing if there is none or one does not decode.
func lastMetric(t *testing.T, h *harness, name, value string) metrics.Decoded {
	t.Helper()
	all, err := metrics.DecodeAll([]byte(h.logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Dimensions[name] == value {
			return all[i]
		}
	}
	t.Fatalf("no metric line with %s=%s", name, value)
	return metrics.Decoded{}
}

// checkDimensions fails unless d is published under exactly sets, and carries nothing of the
// traveller's (the ids of its request).
func checkDimensions(t *testing.T, d metrics.Decoded, sets [][]string, private ...string) {
	t.Helper()
	if !slices.EqualFunc(d.Sets, sets, slices.Equal[[]string]) {
		t.Errorf("dimension sets %v, want %v", d.Sets, sets)
	}
	line := fmt.Sprint(d.Root)
	for _, p := range private {
		if p != "" && strings.Contains(line, p) {
			t.Errorf("the metric line carries %q: %s", p, line)
		}
	}
}

func TestCheckoutMetricsByOutcome(t *testing.T) {
	h := newHarness(t, nil)
	allSteps := []string{"ReadsDuration", "TransactionDuration", "CustomerDuration", "PaymentIntentDuration", "EphemeralKeyDuration", "FinalUpdateDuration"}
	tests := []struct {
		outcome string
		setup   func(cartID, owner string) (caller, body string)
		steps   []string // the step metrics the line must carry
	}{
		{"ok", func(c, o string) (string, string) { return o, checkoutBody(c, "") }, allSteps},
		{"validation", func(c, o string) (string, string) { return o, `{"shoppingCartIdentifier":"` + c + `"}` }, nil},
		{"unauthorized", func(c, o string) (string, string) { return "", checkoutBody(c, "") }, nil},
		{"forbidden", func(c, o string) (string, string) { return "someone-else", checkoutBody(c, "") }, []string{"ReadsDuration"}},
		{"cart-not-found", func(c, o string) (string, string) { return o, checkoutBody(c+"-missing", "") }, []string{"ReadsDuration"}},
		{"customization-not-found", func(c, o string) (string, string) {
			return o, checkoutBody(c, `,"customizationIdentifier":"no-such-customization"`)
		}, nil},
		{"cart-not-checkoutable", func(c, o string) (string, string) {
			putCart(t, cartSpec{id: c, owner: o, items: []itemSpec{{amount: "0.10"}}}) // below Stripe's minimum
			return o, checkoutBody(c, "")
		}, nil},
		{"payment-in-progress", func(c, o string) (string, string) {
			h.mustCheckout(o, checkoutBody(c, ""))
			h.intentOf(c, "processing")
			return o, checkoutBody(c, "")
		}, []string{"ReadsDuration", "PaymentIntentDuration", "EphemeralKeyDuration"}},
		{"cart-already-paid", func(c, o string) (string, string) {
			h.mustCheckout(o, checkoutBody(c, ""))
			h.intentOf(c, "succeeded")
			return o, checkoutBody(c, "")
		}, nil},
		{"internal", func(c, o string) (string, string) {
			failOnce(h, "/v1/payment_intents", 500, stripe500)
			return o, checkoutBody(c, "")
		}, []string{"TransactionDuration", "PaymentIntentDuration"}},
	}
	for i, tc := range tests {
		t.Run(tc.outcome, func(t *testing.T) {
			cartID, owner := fmt.Sprintf("metrics-%d", i), fmt.Sprintf("traveller-metrics-%d", i)
			putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "42"}}})
			caller, body := tc.setup(cartID, owner)
			status, answer := h.checkout(caller, body)
			d := lastMetric(t, h, "Outcome", tc.outcome)
			if d.Dimensions["Function"] != "checkout" || d.Metrics["Checkouts"] != 1 || d.Metrics["Duration"] <= 0 || d.Units["Duration"] != metrics.Milliseconds {
				t.Errorf("status %d: line %v, want Checkouts 1 and a Duration in ms", status, d.Root)
			}
			checkDimensions(t, d, [][]string{{"Function"}, {"Function", "Outcome"}}, cartID, owner, fmt.Sprint(answer["groupIdentifier"]))
			for _, s := range tc.steps {
				if d.Metrics[s] <= 0 {
					t.Errorf("no %s in %v", s, d.Metrics)
				}
			}
			if tc.outcome == "internal" {
				dep := lastMetric(t, h, "Dependency", "Stripe")
				if dep.Metrics["DependencyErrors"] != 1 || dep.Dimensions["ErrorCode"] != "api_error" {
					t.Errorf("dependency line %v, want one Stripe api_error", dep.Root)
				}
				checkDimensions(t, dep, [][]string{{"Function", "Dependency", "ErrorCode"}}, cartID, owner)
			}
		})
	}
	// The request's own log line explains a slow checkout: each step's time.
	if !strings.Contains(h.logs.String(), `"stepsMs":{"reads":`) || !strings.Contains(h.logs.String(), `"finalUpdate":`) {
		t.Error("the checkout's log line has no step timings")
	}
}

func TestWebhookMetricsByResult(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "metrics-hook", owner: "traveller-metrics-hook", items: []itemSpec{{amount: "42"}}})
	group := h.mustCheckout("traveller-metrics-hook", checkoutBody("metrics-hook", ga4IDs))["groupIdentifier"].(string)
	check := func(eventType, result string, counts map[string]float64) {
		t.Helper()
		d := lastMetric(t, h, "Result", result)
		if d.Dimensions["EventType"] != eventType || d.Dimensions["Function"] != "stripe-webhook" || d.Metrics["WebhookEvents"] != 1 || d.Metrics["Duration"] <= 0 {
			t.Errorf("%s: line %v, want one %s event", result, d.Root, eventType)
		}
		for name, want := range counts {
			if d.Metrics[name] != want {
				t.Errorf("%s: %s = %v, want %v", result, name, d.Metrics[name], want)
			}
		}
		checkDimensions(t, d, [][]string{{"Function"}, {"Function", "Result"}, {"Function", "EventType", "Result"}}, group, "metrics-hook", "traveller-metrics-hook")
	}

	mustReceive(t, h.deliver(checkout.EventProcessing, h.intentOf("metrics-hook", "processing")))
	check(checkout.EventProcessing, "suspended", nil)
	mustReceive(t, h.deliver(checkout.EventPaymentFailed, h.intentOf("metrics-hook", "requires_payment_method")))
	check(checkout.EventPaymentFailed, "failure-recorded", nil)
	paid := h.intentOf("metrics-hook", "succeeded")
	mustReceive(t, h.deliver(checkout.EventSucceeded, paid))
	check(checkout.EventSucceeded, "confirmed", map[string]float64{"PurchasesSent": 1})
	mustReceive(t, h.deliver(checkout.EventSucceeded, paid))
	check(checkout.EventSucceeded, "unchanged", nil)

	other := h.stripe.PutPaymentIntent(testenv.PaymentIntentState{Status: "succeeded", Amount: paid.Amount, Currency: paid.Currency,
		Customer: paid.Customer, Metadata: paid.Metadata})
	mustReceive(t, h.deliver(checkout.EventSucceeded, other))
	check(checkout.EventSucceeded, "refunded", map[string]float64{"Refunds": 1})

	body := testenv.Event("evt_metrics_other", "customer.created", map[string]any{"id": "cus_x", "object": "customer"}, time.Now())
	mustReceive(t, h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now()))))
	check("other", "ignored", nil)

	forged := h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, "whsec_notTheEndpoints", time.Now())))
	if forged.StatusCode != 400 {
		t.Fatalf("a forged signature answered %d", forged.StatusCode)
	}
	check("unknown", "bad-signature", nil)

	notAnEvent := []byte(`{"hello":"stripe"}`)
	if resp := h.deliverRaw(testenv.WebhookRequest(notAnEvent, testenv.Signature(notAnEvent, testenv.WebhookSecret, time.Now()))); resp.StatusCode != 400 {
		t.Fatalf("a signed body that is no event answered %d", resp.StatusCode)
	}
	check("unknown", "validation", nil)

	// Another checkout, released by its cancel.
	putCart(t, cartSpec{id: "metrics-hook-2", owner: "traveller-metrics-hook", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-metrics-hook", checkoutBody("metrics-hook-2", ""))
	mustReceive(t, h.deliver(checkout.EventCanceled, h.intentOf("metrics-hook-2", "canceled")))
	check(checkout.EventCanceled, "released", nil)

	// A paid group whose cart is gone while its bookings read pending: 500, Stripe delivers again.
	putCart(t, cartSpec{id: "metrics-hook-3", owner: "traveller-metrics-hook", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-metrics-hook", checkoutBody("metrics-hook-3", ""))
	gone := h.intentOf("metrics-hook-3", "succeeded")
	deleteCart(t, "metrics-hook-3")
	if resp := h.deliver(checkout.EventSucceeded, gone); resp.StatusCode != 500 {
		t.Fatalf("webhook answered %d, want 500", resp.StatusCode)
	}
	check(checkout.EventSucceeded, "internal", nil)
}

func TestReleaserRunMetrics(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "metrics-hold", owner: "traveller-metrics-hold", items: []itemSpec{{amount: "42"}}})
	group := h.mustCheckout("traveller-metrics-hold", checkoutBody("metrics-hold", ""))["groupIdentifier"].(string)
	sweep := runReleaser(t, h.releaser(pastHold()))
	d := lastMetric(t, h, "Function", "release-holds")
	want := map[string]float64{"HoldReleaserRuns": 1, "HoldReleaserRunsFailed": 0, "HoldsDue": 1, "HoldsReleased": 1, "HoldsFailed": 0, "PurchasesFailed": 0}
	for name, v := range want {
		if d.Metrics[name] != v {
			t.Errorf("%s = %v, want %v (run %+v)", name, d.Metrics[name], v, sweep)
		}
	}
	if d.Metrics["OldestDueHold"] < 60 || d.Units["OldestDueHold"] != metrics.Seconds {
		t.Errorf("OldestDueHold %v %s, want the minute the hold is overdue, in seconds", d.Metrics["OldestDueHold"], d.Units["OldestDueHold"])
	}
	checkDimensions(t, d, [][]string{{"Function"}}, group, "metrics-hold")
}
