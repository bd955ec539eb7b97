package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Hold is a pending checkout's hold: until EndsAt its bookings are held for the traveller.
type Hold struct {
	GroupIdentifier        string
	ShoppingCartIdentifier string
	EndsAt                 time.Time
	// Purchase: the checkout is confirmed and this is its GA4 purchase, not sent yet; EndsAt is
	// when it is next tried.
	Purchase bool
}

// Sweep says what one run of the hold releaser did.
type Sweep struct {
	Due       int // due holds found
	Released  int
	Confirmed int // paid meanwhile: the webhook's event was missed or is late
	Suspended int // a payment is being processed
	Skipped   int // claimed by another releaser, moved meanwhile, or no longer due
	Failed    int // left for the next run
	// The GA4 purchases of confirmed checkouts: sent, skipped (unknown measurement id), failed
	// (retried later) or abandoned (too old for GA4, or the cart is gone).
	PurchasesSent, PurchasesSkipped, PurchasesFailed, PurchasesAbandoned int
	// OldestDue is how long ago the oldest hold this run found still held ended (0 if none): the
	// releaser's lag. A hold that keeps failing counts from its checkout's own hold end, not from
	// the retry its entry was moved to; GA4 purchases' entries do not count.
	OldestDue time.Duration
}

// Release bounds one run of the hold releaser.
const (
	releaseBatchSize = 500              // due holds taken at a time
	releaseWorkers   = 8                // holds released at once
	claimLease       = 50 * time.Second // keeps other releasers off a hold; under the schedule's minute, over a run's 45 s
	retryAfter       = time.Minute      // a failing hold waits behind the others until then
	// releaseMargin is kept free before the run's deadline: a hold is not started so late that
	// its release could be cut off halfway (a cut-off release is completed by the next run).
	releaseMargin = 2 * time.Second
)

// ReleaseDue releases every checkout still pending past its hold: its PaymentIntent is canceled
// first, then its bookings are released (the release procedure of the webhook and the
// checkout). A checkout found paid is confirmed, one being paid is suspended. Each hold is
// claimed first, so two releasers running at once release it once; a failure leaves the hold,
// and its claim expires, for the next run. It takes due holds in batches until none is left or
// a batch moves nothing, and stops taking holds near ctx's deadline: the rest wait for the next
// run.
func (l *Lifecycle) ReleaseDue(ctx context.Context) (Sweep, error) {
	now := l.now().UTC()
	var (
		sweep Sweep
		gate  purchaseGate
	)
	for {
		holds, err := l.holds.Due(ctx, now, releaseBatchSize)
		if err != nil {
			if sweep.Due > 0 {
				l.log.ErrorContext(ctx, "could not find more due holds; the next run goes on", slog.String("error", err.Error()))
				return sweep, nil
			}
			return sweep, fmt.Errorf("find due holds: %w", err)
		}
		batch, complete := l.releaseBatch(ctx, now, holds, &gate)
		sweep.add(batch)
		// Another batch while this one settled something: a shard may have more due than its
		// share of a batch. What it left (claimed elsewhere, failing: moved on) is not found again.
		if !complete || len(holds) == 0 || batch.progress() == 0 {
			return sweep, nil
		}
	}
}

// purchaseGate stops a run's purchase retries after a few failures in a row: GA4 down or slow
// must not spend the run that releases holds (the purchases stay due for the next run).
type purchaseGate struct{ failures atomic.Int32 }

const maxPurchaseFailuresInARow = 3

func (g *purchaseGate) open() bool { return g.failures.Load() < maxPurchaseFailuresInARow }

func (g *purchaseGate) record(o PurchaseOutcome) {
	if o == PurchaseOutcomeFailed {
		g.failures.Add(1)
	} else if o != "" {
		g.failures.Store(0)
	}
}

// releaseBatch releases holds, releaseWorkers at a time, the holds before the purchases (a
// purchase can wait, a traveller's held room cannot); complete is false if the run's deadline
// stopped it.
func (l *Lifecycle) releaseBatch(ctx context.Context, now time.Time, holds []Hold, gate *purchaseGate) (sweep Sweep, complete bool) {
	slices.SortStableFunc(holds, func(a, b Hold) int {
		switch {
		case a.Purchase == b.Purchase:
			return 0
		case b.Purchase:
			return -1
		}
		return 1
	})
	sweep.Due = len(holds)
	for _, h := range holds {
		if !h.Purchase {
			sweep.OldestDue = max(sweep.OldestDue, now.Sub(h.EndsAt))
		}
	}
	deadline, hasDeadline := ctx.Deadline()
	var (
		mu   sync.Mutex
		next = make(chan Hold)
		wg   sync.WaitGroup
	)
	for range min(releaseWorkers, len(holds)) {
		wg.Go(func() {
			for h := range next {
				var overdue time.Duration
				outcome, purchase := l.releaseHold(ctx, h, now, gate, &overdue)
				mu.Lock()
				sweep.OldestDue = max(sweep.OldestDue, overdue)
				switch outcome {
				case holdReleased:
					sweep.Released++
				case holdConfirmed:
					sweep.Confirmed++
				case holdSuspended:
					sweep.Suspended++
				case holdFailed:
					sweep.Failed++
				case holdSkipped:
					sweep.Skipped++
				}
				switch purchase {
				case PurchaseOutcomeSent:
					sweep.PurchasesSent++
				case PurchaseOutcomeSkipped:
					sweep.PurchasesSkipped++
				case PurchaseOutcomeFailed:
					sweep.PurchasesFailed++
				case PurchaseOutcomeAbandoned:
					sweep.PurchasesAbandoned++
				}
				mu.Unlock()
			}
		})
	}
	complete = true
	for _, h := range holds {
		if hasDeadline && time.Until(deadline) < releaseMargin {
			l.log.WarnContext(ctx, "the run is near its deadline; the remaining holds wait for the next run")
			complete = false
			break
		}
		next <- h
	}
	close(next)
	wg.Wait()
	return sweep, complete
}

func (s *Sweep) add(b Sweep) {
	s.Due += b.Due
	s.Released += b.Released
	s.Confirmed += b.Confirmed
	s.Suspended += b.Suspended
	s.Skipped += b.Skipped
	s.Failed += b.Failed
	s.PurchasesSent += b.PurchasesSent
	s.PurchasesSkipped += b.PurchasesSkipped
	s.PurchasesFailed += b.PurchasesFailed
	s.PurchasesAbandoned += b.PurchasesAbandoned
	s.OldestDue = max(s.OldestDue, b.OldestDue)
}

// progress is how many holds the sweep settled: a batch settling none ends the run.
func (s Sweep) progress() int {
	return s.Released + s.Confirmed + s.Suspended + s.PurchasesSent + s.PurchasesSkipped + s.PurchasesAbandoned
}

// holdOutcome is what one run did with one due hold.
type holdOutcome int

const (
	holdFailed    holdOutcome = iota // logged; retried by a later run
	holdReleased                     // the checkout released
	holdConfirmed                    // paid meanwhile: confirmed
	holdSuspended                    // a payment under way: suspended, or checked again later
	holdSkipped                      // left alone: not due, claimed by another, moved meanwhile, stale
	holdPurchase                     // a confirmed checkout's purchase, tried (the PurchaseOutcome says how)
)

var movedTo = map[CheckoutStatus]holdOutcome{Released: holdReleased, Confirmed: holdConfirmed, Processing: holdSuspended}

// releaseHold settles one due hold, and the GA4 purchase of a checkout it finds paid. A failure
// is logged and the hold moved behind the others, for the next run.
// A failure sets overdue to how long ago the checkout's hold really ended.
func (l *Lifecycle) releaseHold(ctx context.Context, h Hold, now time.Time, gate *purchaseGate, overdue *time.Duration) (holdOutcome, PurchaseOutcome) {
	log := l.log.With(slog.String("groupId", h.GroupIdentifier), slog.String("cartId", h.ShoppingCartIdentifier))
	holdEnd := h.EndsAt // the stored hold end once the checkout is read (the entry's may be a retry's)
	failed := func(what string, err error) (holdOutcome, PurchaseOutcome) {
		*overdue = now.Sub(holdEnd)
		log.ErrorContext(ctx, what+"; the next run retries", slog.String("error", err.Error()))
		if err := l.holds.Defer(ctx, h, now.Add(retryAfter)); err != nil {
			log.ErrorContext(ctx, "could not move a failing hold behind the others", slog.String("error", err.Error()))
		}
		return holdFailed, ""
	}
	cart, err := l.carts.Get(ctx, h.ShoppingCartIdentifier)
	switch {
	case errors.Is(err, ErrNotFound) && h.Purchase:
		// A paid cart the cart service deleted: nothing is left to build the purchase from.
		log.ErrorContext(ctx, "the cart of a purchase not yet sent is gone; giving the purchase up")
		return l.forget(ctx, log, h), PurchaseOutcomeAbandoned
	case errors.Is(err, ErrNotFound):
		// The cart service deleted a cart whose checkout is not over: its bookings cannot be
		// released with it. Left to support (the log and the failed count say so).
		return failed("the cart of a pending checkout is gone", err)
	case err != nil:
		return failed("could not read the cart of a due hold", err)
	}
	if cart.Checkout == nil || cart.Checkout.GroupIdentifier != h.GroupIdentifier {
		return l.forget(ctx, log, h), "" // released, and the cart checked out anew since
	}
	state := cart.Checkout.WithDefaults(l.hold)
	if state.Status == PendingPayment {
		holdEnd = state.HoldEndsAt
	}
	switch {
	case state.Status == Confirmed && state.Purchase == PurchasePending && !h.Purchase:
		return holdSkipped, "" // confirmed since it was found: its purchase is due later
	case state.Status == Confirmed && state.Purchase == PurchasePending:
		if !gate.open() {
			return holdSkipped, "" // GA4 keeps failing this run: the next run tries
		}
		outcome, purchase := l.retryPurchase(ctx, log, h, cart.Identifier, state, now)
		gate.record(purchase)
		return outcome, purchase
	case state.Status == Confirmed:
		return l.forget(ctx, log, h), ""
	case state.Status == PendingPayment && state.HoldEndsAt.Unix() > now.Unix():
		return holdSkipped, "" // not yet due (the index keeps whole seconds): the next run
	}
	// Only one releaser acts: the others skip the hold while the claim runs.
	claimed, err := l.holds.Claim(ctx, h, now, now.Add(claimLease))
	if err != nil {
		return failed("could not claim a due hold", err)
	}
	if !claimed {
		return holdSkipped, ""
	}
	if state.Status == Processing {
		// A suspended checkout: released or confirmed by Stripe's word, or checked again later.
		intent, err := l.payments.GetPaymentIntent(ctx, state.PaymentIntentID)
		if err != nil {
			return failed("could not read the payment intent of a suspended checkout", err)
		}
		if intent.Status == PaymentProcessing || intent.Status == PaymentRequiresCapture {
			if err := l.holds.Defer(ctx, h, now.Add(ProcessingRecheck)); err != nil {
				return failed("could not defer a suspended checkout's hold", err)
			}
			return holdSuspended, ""
		}
	}
	t, err := l.release(ctx, h.ShoppingCartIdentifier, state, ReasonExpired)
	switch {
	case errors.Is(err, ErrCartChanged):
		return holdSkipped, "" // moved meanwhile by the webhook or the checkout
	case err != nil:
		return failed("could not release a due hold", err)
	}
	if t.Move.To == Confirmed && state.WantsPurchase() {
		return holdConfirmed, l.sendPurchase(ctx, h.ShoppingCartIdentifier, t.confirmed(), releaserPurchaseBudget)
	}
	return movedTo[t.Move.To], ""
}

// retryPurchase sends the GA4 purchase of a confirmed checkout that nobody recorded as sent (or
// gives it up, sendPurchase says when); a failure is tried again later, less often as the
// purchase ages.
func (l *Lifecycle) retryPurchase(ctx context.Context, log *slog.Logger, h Hold, cartID string, state State, now time.Time) (holdOutcome, PurchaseOutcome) {
	claimed, err := l.holds.Claim(ctx, h, now, now.Add(claimLease))
	if err != nil {
		log.ErrorContext(ctx, "could not claim a purchase; the next run retries", slog.String("error", err.Error()))
		return holdPurchase, PurchaseOutcomeFailed
	}
	if !claimed {
		return holdSkipped, ""
	}
	outcome := l.sendPurchase(ctx, cartID, state, releaserPurchaseBudget)
	if outcome == PurchaseOutcomeFailed {
		if err := l.holds.Defer(ctx, h, now.Add(purchaseRetryAfter(now.Sub(state.ConfirmedAt)))); err != nil {
			log.ErrorContext(ctx, "could not defer a failing purchase", slog.String("error", err.Error()))
		}
	}
	return holdPurchase, outcome
}

// forget removes the hold of a checkout that has ended.
func (l *Lifecycle) forget(ctx context.Context, log *slog.Logger, h Hold) holdOutcome {
	log.WarnContext(ctx, "a hold outlived its checkout; removing it")
	if err := l.holds.Forget(ctx, h); err != nil {
		log.ErrorContext(ctx, "could not remove a stale hold", slog.String("error", err.Error()))
	}
	return holdSkipped
}
