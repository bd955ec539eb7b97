package checkout

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Unit tests of the purchase's bounds, on small in-memory fakes (the adapters' behaviour is
// tested against DynamoDB Local and the local GA4 collector in internal/app).

type fakeCarts struct {
	Carts    // the methods a test does not use panic
	mu       sync.Mutex
	carts    map[string]Cart
	applied  []Transition
	recorded map[string]PurchaseStatus
}

func (f *fakeCarts) Get(_ context.Context, id string) (Cart, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.carts[id]
	if !ok {
		return Cart{}, ErrNotFound
	}
	return c, nil
}

func (f *fakeCarts) Apply(_ context.Context, t Transition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, t)
	return nil
}

func (f *fakeCarts) RecordPurchase(_ context.Context, _, group string, status PurchaseStatus, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded[group] = status
	return nil
}

type fakeBookings struct{ Bookings }

func (fakeBookings) Read(_ context.Context, codes []string) ([]Booking, error) {
	out := make([]Booking, len(codes))
	for i, c := range codes {
		out[i] = Booking{BookingCode: c, Room: Room{HotelName: "Hotel", RoomRateIdentifier: "rate", Total: Amount{Amount: "10", Currency: "EUR"}}}
	}
	return out, nil
}

type fakeHolds struct {
	Holds
	due []Hold
}

func (f *fakeHolds) Due(context.Context, time.Time, int) ([]Hold, error) {
	due := f.due
	f.due = nil // a second batch finds nothing more
	return due, nil
}
func (f *fakeHolds) Claim(context.Context, Hold, time.Time, time.Time) (bool, error) {
	return true, nil
}
func (f *fakeHolds) Defer(context.Context, Hold, time.Time) error { return nil }

type fakePayments struct{ Payments }

func (fakePayments) CancelPaymentIntent(_ context.Context, id string) (PaymentIntent, error) {
	return PaymentIntent{ID: id, Status: PaymentCanceled}, nil
}

// slowAnalytics never answers: it waits for its caller to give up, and counts the attempts.
type slowAnalytics struct {
	attempts  atomic.Int32
	remaining chan time.Duration // the time each attempt was given
}

func (a *slowAnalytics) SendPurchase(ctx context.Context, _ Purchase) error {
	a.attempts.Add(1)
	if deadline, ok := ctx.Deadline(); ok && a.remaining != nil {
		a.remaining <- time.Until(deadline)
	}
	<-ctx.Done()
	return ctx.Err()
}

func pendingState(group string, at time.Time) State {
	return State{GroupIdentifier: group, Status: PendingPayment, KeyGeneration: 1, HoldEndsAt: at.Add(-time.Minute),
		BookingCodes: []string{"WK-1", "WK-2"}, StartedAt: at.Add(-time.Hour), GA4ClientID: "1.2", GA4MeasurementID: "G-ABCD1234",
		AmountMinor: 2000, Currency: "EUR", PaymentIntentID: "pi_" + group}
}

// The webhook's purchase attempt is given at most purchaseBudget, whatever the webhook's own
// deadline, and a GA4 that never answers leaves the confirmation made and the purchase pending.
func TestWebhookPurchaseAttemptIsBounded(t *testing.T) {
	now := time.Now()
	state := pendingState("g1", now)
	carts := &fakeCarts{carts: map[string]Cart{"c1": {Identifier: "c1", Status: CartCheckedOut, Checkout: &state}}, recorded: map[string]PurchaseStatus{}}
	analytics := &slowAnalytics{remaining: make(chan time.Duration, 1)}
	l := NewLifecycle(carts, fakeBookings{}, &fakeHolds{}, fakePayments{}, analytics, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the webhook's: Lambda's deadline
	defer cancel()
	result, err := l.HandlePaymentEvent(ctx, PaymentEvent{ID: "evt", Type: EventSucceeded, Created: now, Intent: PaymentIntent{
		ID: "pi_g1", Status: PaymentSucceeded, AmountMinor: 2000, Currency: "EUR", GroupIdentifier: "g1", ShoppingCartIdentifier: "c1"}})
	if err != nil || result.Outcome != OutcomeConfirmed || result.Purchase != PurchaseOutcomeFailed {
		t.Fatalf("result %+v, %v: want confirmed, the purchase failed", result, err)
	}
	if given := <-analytics.remaining; given > purchaseBudget || given <= 0 || purchaseBudget > 500*time.Millisecond {
		t.Errorf("the purchase was given %v (budget %v), want at most a few hundred milliseconds", given, purchaseBudget)
	}
	if len(carts.applied) != 1 || carts.applied[0].Move.Name != Confirm.Name || carts.applied[0].Hold() != HoldPurchase {
		t.Errorf("moves %+v, want one confirmation keeping the hold for the purchase", carts.applied)
	}
	if len(carts.recorded) != 0 {
		t.Errorf("a purchase never answered was recorded %v", carts.recorded)
	}
}

// A GA4 that never answers costs one releaser run a few attempts, not the run: after
// maxPurchaseFailuresInARow failures the other purchases wait for the next run, and the due hold
// among them is released all the same.
func TestReleaserStopsTryingPurchasesThatKeepFailing(t *testing.T) {
	now := time.Now()
	carts := &fakeCarts{carts: map[string]Cart{}, recorded: map[string]PurchaseStatus{}}
	holds := &fakeHolds{}
	for i := range 30 {
		group, cart := fmt.Sprintf("p%d", i), fmt.Sprintf("cart-p%d", i)
		s := pendingState(group, now)
		s.Status, s.Purchase, s.ConfirmedAt = Confirmed, PurchasePending, now.Add(-2*time.Minute)
		carts.carts[cart] = Cart{Identifier: cart, Status: CartPaid, Checkout: &s}
		holds.due = append(holds.due, Hold{GroupIdentifier: group, ShoppingCartIdentifier: cart, EndsAt: now.Add(-time.Minute), Purchase: true})
	}
	held := pendingState("held", now)
	carts.carts["cart-held"] = Cart{Identifier: "cart-held", Status: CartCheckedOut, Checkout: &held}
	holds.due = append(holds.due, Hold{GroupIdentifier: "held", ShoppingCartIdentifier: "cart-held", EndsAt: held.HoldEndsAt})

	analytics := &slowAnalytics{}
	l := NewLifecycle(carts, fakeBookings{}, holds, fakePayments{}, analytics, Options{Now: func() time.Time { return now }})
	sweep, err := l.ReleaseDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sweep.Released != 1 {
		t.Errorf("run %+v: the due hold was not released", sweep)
	}
	if n := int(analytics.attempts.Load()); n >= 30 || n > releaseWorkers+maxPurchaseFailuresInARow {
		t.Errorf("%d purchase attempts against a GA4 that never answers, want at most %d", n, releaseWorkers+maxPurchaseFailuresInARow)
	}
	if sweep.PurchasesFailed+sweep.Skipped < 30 || len(carts.recorded) != 0 {
		t.Errorf("run %+v, recorded %v: want every purchase left pending", sweep, carts.recorded)
	}
}

type failingPayments struct{ Payments }

func (failingPayments) CancelPaymentIntent(context.Context, string) (PaymentIntent, error) {
	return PaymentIntent{}, fmt.Errorf("stripe is down")
}

// A hold that keeps failing is moved on a minute at each failure: the run's lag still counts
// from the checkout's own hold end, so that the overdue alarm sees it.
func TestOldestDueCountsFromTheHoldsEnd(t *testing.T) {
	now := time.Now()
	state := pendingState("stuck", now)
	state.HoldEndsAt = now.Add(-10 * time.Minute)
	carts := &fakeCarts{carts: map[string]Cart{"cart-stuck": {Identifier: "cart-stuck", Status: CartCheckedOut, Checkout: &state}}, recorded: map[string]PurchaseStatus{}}
	holds := &fakeHolds{due: []Hold{{GroupIdentifier: "stuck", ShoppingCartIdentifier: "cart-stuck", EndsAt: now.Add(-time.Minute)}}}
	l := NewLifecycle(carts, fakeBookings{}, holds, failingPayments{}, nil, Options{Now: func() time.Time { return now }})
	sweep, err := l.ReleaseDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sweep.Failed != 1 || sweep.OldestDue < 10*time.Minute {
		t.Errorf("run %+v: want the failure, overdue since the hold's end 10 minutes ago", sweep)
	}
}
