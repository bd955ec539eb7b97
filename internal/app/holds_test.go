package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/testenv"
)

// The hold releaser against DynamoDB Local and the Stripe layer. Each test has a holds table of
// its own (a releaser sweeps the whole table), and its releaser runs on a clock the test sets:
// nobody waits for a hold to end.

// holdHarness is a harness whose checkouts write their holds to a table of the test's own.
func holdHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	table, err := local.NewTable(ctx, "HoldsTable")
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, map[string]string{"HOLDS_TABLE": table})
}

// releaser builds a hold releaser on the harness's tables and Stripe, whose clock reads at.
func (h *harness) releaser(at time.Time) *app.Releaser {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := testenv.Releaser(ctx, h.settings, logger, app.Options{Metrics: h.logs, Now: func() time.Time { return at }})
	if err != nil {
		h.t.Fatalf("build the releaser: %v", err)
	}
	return r
}

// runReleaser makes one run of r, as the schedule would, with the function's 45 s.
func runReleaser(t *testing.T, r *app.Releaser) checkout.Sweep {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	sweep, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("release run: %v", err)
	}
	return sweep
}

// A checkout whose request created the PaymentIntent and then failed on the ephemeral key (a 429
// from Stripe, say) has the intent recorded: the releaser cancels it with the checkout, so no
// intent of a released checkout stays payable in Stripe.
func TestReleaserCancelsTheIntentOfARequestThatFailedOnTheEphemeralKey(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "hold-no-key", owner: "traveller-hold-no-key", items: []itemSpec{{amount: "30"}}})
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/ephemeral_keys" })
	status, body := h.checkout("traveller-hold-no-key", checkoutBody("hold-no-key", ""))
	mustProblem(t, status, body, 500, "internal")
	h.stripe.SetUnavailable(nil)
	created := h.stripe.PaymentIntents()
	if len(created) != 1 {
		t.Fatalf("%d PaymentIntents, want the one the failed request created", len(created))
	}
	if got := str(stateOf(getCart(t, "hold-no-key"))["paymentIntentId"]); got != created[0].ID {
		t.Fatalf("the checkout records intent %q, want %s", got, created[0].ID)
	}

	if sweep := runReleaser(t, h.releaser(pastHold())); sweep.Released != 1 || sweep.Failed != 0 {
		t.Errorf("sweep %+v, want the checkout released", sweep)
	}
	if pi, _ := h.stripe.PaymentIntent(created[0].ID); pi.Status != "canceled" {
		t.Errorf("PaymentIntent %s is %s, want canceled with its checkout", pi.ID, pi.Status)
	}
	if got := str(getCart(t, "hold-no-key")["status"]); got != "OPEN" {
		t.Errorf("cart is %s, want OPEN", got)
	}
}

// pastHold is a moment after every hold of a checkout started now has ended.
func pastHold() time.Time { return time.Now().Add(checkout.DefaultHold + time.Minute) }

func holdOfCart(t *testing.T, h *harness, cartID string) testenv.Item {
	t.Helper()
	return holdIn(t, h.settings("HOLDS_TABLE"), str(stateOf(getCart(t, cartID))["groupIdentifier"]))
}

// A checkout past its hold: its PaymentIntent canceled as abandoned, its bookings CANCELLED as
// expired, its cart OPEN again (expiresAt back, version + 1), and checkoutable anew.
func TestReleaserReleasesACheckoutPastItsHold(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "hold-expired", owner: "traveller-hold", items: []itemSpec{{amount: "10"}, {amount: "20"}}})
	before := getCart(t, "hold-expired")
	first := h.mustCheckout("traveller-hold", checkoutBody("hold-expired", ""))
	group := first["groupIdentifier"].(string)
	intent := str(stateOf(getCart(t, "hold-expired"))["paymentIntentId"])
	if hold := holdIn(t, h.settings("HOLDS_TABLE"), group); hold == nil {
		t.Fatal("the checkout wrote no hold")
	}

	sweep := runReleaser(t, h.releaser(pastHold()))
	if sweep.Due != 1 || sweep.Released != 1 || sweep.Failed != 0 || sweep.OldestDue <= 0 {
		t.Errorf("sweep %+v, want one due hold released", sweep)
	}
	if pi, _ := h.stripe.PaymentIntent(intent); pi.Status != "canceled" || pi.CancellationReason != "abandoned" {
		t.Errorf("PaymentIntent %s (%s), want canceled as abandoned", pi.Status, pi.CancellationReason)
	}
	checkBookings(t, group, "CANCELLED", "expired")
	cart := getCart(t, "hold-expired")
	if str(cart["status"]) != "OPEN" || cart["checkout"] != nil || str(cart["expiresAt"]) != str(before["expiresAt"]) || str(cart["version"]) != "2" {
		t.Errorf("released cart %v: want OPEN, no checkout, expiresAt %s, version 2", cart, str(before["expiresAt"]))
	}
	if holdIn(t, h.settings("HOLDS_TABLE"), group) != nil {
		t.Error("the released checkout keeps its hold")
	}
	if sweep := runReleaser(t, h.releaser(pastHold())); sweep.Due != 0 {
		t.Errorf("a second run found %+v", sweep)
	}
	second := h.mustCheckout("traveller-hold", checkoutBody("hold-expired", ""))
	if second["groupIdentifier"] == group {
		t.Errorf("the new checkout has the released group %s", group)
	}
	checkRecordedSecret(t, h, "hold-expired", second)
}

// What the releaser must not release: a hold not yet ended; a checkout paid meanwhile
// (confirmed); one being paid (suspended); one whose cancel Stripe fails (left for the next run).
func TestReleaserReleasesOnlyWhatNobodyPays(t *testing.T) {
	h := holdHarness(t)
	for _, id := range []string{"hold-not-due", "hold-paid", "hold-processing", "hold-cancel-fails"} {
		putCart(t, cartSpec{id: id, owner: "traveller-hold-kinds", items: []itemSpec{{amount: "42"}}})
		h.mustCheckout("traveller-hold-kinds", checkoutBody(id, ""))
	}
	// Not yet due, a minute before its end: untouched.
	if sweep := runReleaser(t, h.releaser(time.Now().Add(checkout.DefaultHold-time.Minute))); sweep.Due != 0 {
		t.Fatalf("before the holds end: %+v", sweep)
	}
	paid := h.intentOf("hold-paid", "succeeded")
	h.intentOf("hold-processing", "processing")
	failing := str(stateOf(getCart(t, "hold-cancel-fails"))["paymentIntentId"])
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/payment_intents/"+failing+"/cancel" })

	at := pastHold()
	sweep := runReleaser(t, h.releaser(at))
	if sweep.Due != 4 || sweep.Confirmed != 1 || sweep.Suspended != 1 || sweep.Failed != 1 || sweep.Released != 1 {
		t.Errorf("sweep %+v, want 4 due: 1 confirmed, 1 suspended, 1 failed, 1 released", sweep)
	}
	checkConfirmed(t, "hold-paid", str(stateOf(getCart(t, "hold-paid"))["groupIdentifier"]), paid.ID)
	if state := stateOf(getCart(t, "hold-processing")); str(state["status"]) != "PROCESSING" ||
		str(holdOfCart(t, h, "hold-processing")["holdEndsAt"]) != fmt.Sprint(at.Add(checkout.ProcessingRecheck).Unix()) {
		t.Errorf("processing checkout: %s, hold %v; want PROCESSING, its hold set for a recheck", str(state["status"]), holdOfCart(t, h, "hold-processing"))
	}
	cart := getCart(t, "hold-cancel-fails")
	if str(cart["status"]) != "CHECKED_OUT" || str(stateOf(cart)["status"]) != "PENDING_PAYMENT" || holdOfCart(t, h, "hold-cancel-fails") == nil {
		t.Fatalf("when Stripe fails the cancel nothing may be released: cart %s %v", str(cart["status"]), stateOf(cart))
	}
	checkBookings(t, str(stateOf(cart)["groupIdentifier"]), "PENDING_PAYMENT", "")

	// Stripe is back; the next run (its claim expired) completes the release.
	h.stripe.SetUnavailable(nil)
	sweep = runReleaser(t, h.releaser(at.Add(time.Minute)))
	if sweep.Due != 1 || sweep.Released != 1 {
		t.Errorf("next run: %+v, want the failed one released", sweep)
	}
	if got := str(getCart(t, "hold-cancel-fails")["status"]); got != "OPEN" {
		t.Errorf("cart is %s after the next run, want OPEN", got)
	}
	if pi, _ := h.stripe.PaymentIntent(failing); pi.Status != "canceled" {
		t.Errorf("PaymentIntent is %s, want canceled", pi.Status)
	}
}

// Two releasers at once over 50 due checkouts: each released once, one cancel per intent.
func TestTwoReleasersAtOnce(t *testing.T) {
	h := holdHarness(t)
	const carts = 50
	for i := range carts {
		id := fmt.Sprintf("hold-pair-%d", i)
		putCart(t, cartSpec{id: id, owner: "traveller-hold-pair", items: []itemSpec{{amount: "42"}}})
		h.mustCheckout("traveller-hold-pair", checkoutBody(id, ""))
	}
	at := pastHold()
	first, second := h.releaser(at), h.releaser(at)
	var sweeps [2]checkout.Sweep
	var wg sync.WaitGroup
	for i, r := range []*app.Releaser{first, second} {
		wg.Go(func() { sweeps[i] = runReleaser(t, r) })
	}
	wg.Wait()
	if released := sweeps[0].Released + sweeps[1].Released; released != carts || sweeps[0].Failed+sweeps[1].Failed != 0 {
		t.Errorf("sweeps %+v and %+v: want %d released in all, none failed", sweeps[0], sweeps[1], carts)
	}
	if n := countLogged(h, "checkout moved"); n != carts {
		t.Errorf("%d moves logged, want %d", n, carts)
	}
	for i := range carts {
		id := fmt.Sprintf("hold-pair-%d", i)
		if got := str(getCart(t, id)["status"]); got != "OPEN" {
			t.Errorf("cart %s is %s", id, got)
		}
	}
	for _, pi := range h.stripe.PaymentIntents() {
		if n := len(h.stripe.Calls("POST", "/v1/payment_intents/"+pi.ID+"/cancel")); n != 1 || pi.Status != "canceled" {
			t.Errorf("PaymentIntent %s: %d cancels, %s; want one cancel", pi.ID, n, pi.Status)
		}
	}
}

// The traveller's payment and the release race on one checkout: the traveller ends confirmed or
// refunded, never charged for released bookings.
func TestPaymentRacesTheRelease(t *testing.T) {
	t.Run("paid just before the cancel reaches Stripe", func(t *testing.T) {
		h := holdHarness(t)
		putCart(t, cartSpec{id: "race-paid-first", owner: "traveller-race-hold", items: []itemSpec{{amount: "42"}}})
		group := h.mustCheckout("traveller-race-hold", checkoutBody("race-paid-first", ""))["groupIdentifier"].(string)
		pi := str(stateOf(getCart(t, "race-paid-first"))["paymentIntentId"])
		h.stripe.SetObserve(func(method, path string) {
			if path == "/v1/payment_intents/"+pi+"/cancel" {
				_ = h.stripe.SetPaymentIntentStatus(pi, "succeeded") // the payment lands first
			}
		})
		sweep := runReleaser(t, h.releaser(pastHold()))
		h.stripe.SetObserve(nil)
		if sweep.Confirmed != 1 || sweep.Released != 0 {
			t.Errorf("sweep %+v, want the paid checkout confirmed", sweep)
		}
		paid, _ := h.stripe.PaymentIntent(pi)
		mustReceive(t, h.deliver(checkout.EventSucceeded, paid)) // the webhook's event, late
		checkConfirmed(t, "race-paid-first", group, pi)
		if n := len(h.stripe.Refunds(pi)); n != 0 {
			t.Errorf("%d refunds of a confirmed payment", n)
		}
	})
	t.Run("the webhook confirms while the releaser cancels", func(t *testing.T) {
		h := holdHarness(t)
		putCart(t, cartSpec{id: "race-webhook", owner: "traveller-race-hold", items: []itemSpec{{amount: "42"}}})
		group := h.mustCheckout("traveller-race-hold", checkoutBody("race-webhook", ""))["groupIdentifier"].(string)
		pi := str(stateOf(getCart(t, "race-webhook"))["paymentIntentId"])
		h.stripe.SetObserve(func(method, path string) {
			if path == "/v1/payment_intents/"+pi+"/cancel" {
				_ = h.stripe.SetPaymentIntentStatus(pi, "succeeded")
				paid, _ := h.stripe.PaymentIntent(pi)
				if resp := h.deliver(checkout.EventSucceeded, paid); resp.StatusCode != 200 {
					t.Errorf("webhook during the release: %d %s", resp.StatusCode, resp.Body)
				}
			}
		})
		sweep := runReleaser(t, h.releaser(pastHold()))
		h.stripe.SetObserve(nil)
		if sweep.Released != 0 || sweep.Failed != 0 {
			t.Errorf("sweep %+v, want nothing released", sweep)
		}
		checkConfirmed(t, "race-webhook", group, pi)
	})
	t.Run("released first, then the payment's event", func(t *testing.T) {
		h := holdHarness(t)
		putCart(t, cartSpec{id: "race-released-first", owner: "traveller-race-hold", items: []itemSpec{{amount: "42"}}})
		group := h.mustCheckout("traveller-race-hold", checkoutBody("race-released-first", ""))["groupIdentifier"].(string)
		pi := str(stateOf(getCart(t, "race-released-first"))["paymentIntentId"])
		if sweep := runReleaser(t, h.releaser(pastHold())); sweep.Released != 1 {
			t.Fatalf("sweep %+v", sweep)
		}
		// Stripe would refuse to confirm a canceled intent; should a payment arrive all the
		// same, the released group's payment is refunded.
		paid, _ := h.stripe.PaymentIntent(pi)
		paid.Status = "succeeded"
		paid = h.stripe.PutPaymentIntent(paid)
		mustReceive(t, h.deliver(checkout.EventSucceeded, paid))
		checkBookings(t, group, "CANCELLED", "expired")
		if n := len(h.stripe.Refunds(pi)); n != 1 {
			t.Errorf("%d refunds of a payment for released bookings, want 1", n)
		}
	})
}

// The hold end is stored when the checkout starts: changing CHECKOUT_HOLD later never shortens
// (or lengthens) a running hold.
func TestHoldEndIsStoredAtTheStart(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "hold-setting", owner: "traveller-hold-setting", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-hold-setting", checkoutBody("hold-setting", ""))
	ends, err := time.Parse(time.RFC3339Nano, str(stateOf(getCart(t, "hold-setting"))["holdEndsAt"]))
	if err != nil || time.Until(ends) < checkout.DefaultHold-time.Minute || time.Until(ends) > checkout.DefaultHold {
		t.Fatalf("holdEndsAt %v (%v), want %v from now", ends, err, checkout.DefaultHold)
	}
	shorter := local.Settings(h.stripe.URL(), map[string]string{"HOLDS_TABLE": h.settings("HOLDS_TABLE"), "CHECKOUT_HOLD": "5m"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := testenv.Releaser(ctx, shorter, slog.New(slog.DiscardHandler), app.Options{Metrics: io.Discard, Now: func() time.Time { return time.Now().Add(10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if sweep := runReleaser(t, r); sweep.Due != 0 || !strings.Contains(str(getCart(t, "hold-setting")["status"]), "CHECKED_OUT") {
		t.Errorf("with CHECKOUT_HOLD=5m, 10 minutes in: %+v, cart %s; want the 30-minute hold kept", sweep, str(getCart(t, "hold-setting")["status"]))
	}
}

// Events alone can leave a checkout suspended: a payment_failed delivered before a late
// processing. The releaser checks a suspended checkout's payment an hour on: still processing,
// it checks again later; failed, it releases the checkout.
func TestSuspendedCheckoutIsCheckedAgain(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "hold-suspended", owner: "traveller-hold-suspended", items: []itemSpec{{amount: "42"}}})
	group := h.mustCheckout("traveller-hold-suspended", checkoutBody("hold-suspended", ""))["groupIdentifier"].(string)
	processing := h.intentOf("hold-suspended", "processing")
	failedAt := time.Now()
	failed := h.intentOf("hold-suspended", "requires_payment_method")
	body := testenv.PaymentIntentEvent(checkout.EventPaymentFailed, failed, failedAt)
	mustReceive(t, h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now()))))
	late := testenv.PaymentIntentEvent(checkout.EventProcessing, processing, failedAt.Add(-time.Second))
	mustReceive(t, h.deliverRaw(testenv.WebhookRequest(late, testenv.Signature(late, testenv.WebhookSecret, time.Now()))))
	if got := str(stateOf(getCart(t, "hold-suspended"))["status"]); got != "PROCESSING" {
		t.Fatalf("after the late processing the checkout is %s, want PROCESSING (the trap)", got)
	}
	// An hour on, Stripe says processing: checked again later.
	if err := h.stripe.SetPaymentIntentStatus(processing.ID, "processing"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(checkout.ProcessingRecheck + time.Minute)
	if sweep := runReleaser(t, h.releaser(at)); sweep.Due != 1 || sweep.Suspended != 1 || sweep.Released != 0 {
		t.Fatalf("recheck of a processing payment: %+v, want it left suspended", sweep)
	}
	// Then the payment fails for good: the next check releases the checkout.
	if err := h.stripe.SetPaymentIntentStatus(processing.ID, "requires_payment_method"); err != nil {
		t.Fatal(err)
	}
	if sweep := runReleaser(t, h.releaser(at.Add(checkout.ProcessingRecheck+time.Minute))); sweep.Released != 1 {
		t.Fatalf("recheck of a failed payment: %+v, want it released", sweep)
	}
	checkBookings(t, group, "CANCELLED", "expired")
	if got := str(getCart(t, "hold-suspended")["status"]); got != "OPEN" {
		t.Errorf("cart is %s, want OPEN", got)
	}
}

// The releaser's own cancel makes Stripe send payment_intent.canceled; if the webhook moves
// first, the bookings still say the hold expired.
func TestCanceledAtTheHoldsEndIsExpired(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "hold-canceled-event", owner: "traveller-hold-event", items: []itemSpec{{amount: "42"}}})
	group := h.mustCheckout("traveller-hold-event", checkoutBody("hold-canceled-event", ""))["groupIdentifier"].(string)
	pi := h.intentOf("hold-canceled-event", "canceled")
	body := testenv.PaymentIntentEvent(checkout.EventCanceled, pi, pastHold())
	mustReceive(t, h.deliverRaw(testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now()))))
	checkBookings(t, group, "CANCELLED", "expired")
}

// A checkout started before holds existed has none; cmd/backfill-holds (dynamo.BackfillHolds)
// gives it the hold it would have had, once, and the releaser then releases it.
func TestBackfilledHoldReleasesACheckoutOfAnEarlierVersion(t *testing.T) {
	h := holdHarness(t)
	group, code := "5f0c2c1e-2b7a-4c39-9d51-legacy000002", "WK-LEGACY02"
	putLegacyCheckout(t, "legacy-abandoned", "traveller-legacy-abandoned", group, code, time.Now().Add(-time.Hour))
	if sweep := runReleaser(t, h.releaser(time.Now())); holdIn(t, h.settings("HOLDS_TABLE"), group) != nil || sweep.Released != 0 {
		t.Fatalf("before the backfill: %+v", sweep)
	}
	ctx := context.Background()
	if _, err := dynamo.BackfillHolds(ctx, db, tableNames["CartsTable"], h.settings("HOLDS_TABLE"), checkout.DefaultHold); err != nil {
		t.Fatal(err)
	}
	hold := holdIn(t, h.settings("HOLDS_TABLE"), group)
	if hold == nil || str(hold["shoppingCartIdentifier"]) != "legacy-abandoned" {
		t.Fatalf("hold after the backfill: %v", hold)
	}
	if _, err := dynamo.BackfillHolds(ctx, db, tableNames["CartsTable"], h.settings("HOLDS_TABLE"), checkout.DefaultHold); err != nil {
		t.Fatalf("a second backfill: %v", err)
	}
	runReleaser(t, h.releaser(time.Now()))
	checkBookings(t, group, "CANCELLED", "expired")
	if got := str(getCart(t, "legacy-abandoned")["status"]); got != "OPEN" {
		t.Errorf("cart is %s, want OPEN", got)
	}
}

// A run near its deadline takes no more holds and ends cleanly; the next run releases them.
func TestReleaserRunStopsNearItsDeadline(t *testing.T) {
	h := holdHarness(t)
	for i := range 3 {
		id := fmt.Sprintf("hold-deadline-%d", i)
		putCart(t, cartSpec{id: id, owner: "traveller-hold-deadline", items: []itemSpec{{amount: "42"}}})
		h.mustCheckout("traveller-hold-deadline", checkoutBody(id, ""))
	}
	at := pastHold()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // under the run's 2 s margin
	defer cancel()
	sweep, err := h.releaser(at).Run(ctx)
	if err != nil || sweep.Due != 3 || sweep.Released+sweep.Failed != 0 {
		t.Fatalf("a run out of time: %+v %v, want the holds found and none started", sweep, err)
	}
	if sweep := runReleaser(t, h.releaser(at)); sweep.Released != 3 {
		t.Errorf("the next run: %+v, want the three released", sweep)
	}
}
