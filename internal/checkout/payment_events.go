package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// PaymentEvent is a Stripe event about a PaymentIntent, its signature verified.
type PaymentEvent struct {
	ID      string
	Type    string
	Created time.Time
	Intent  PaymentIntent // the intent as the event carries it
}

// The Stripe events the lifecycle acts on, and the move each asks for.
const (
	EventProcessing    = "payment_intent.processing"
	EventSucceeded     = "payment_intent.succeeded"
	EventPaymentFailed = "payment_intent.payment_failed"
	EventCanceled      = "payment_intent.canceled"
)

var eventMoves = map[string]Move{
	EventProcessing:    Suspend,
	EventSucceeded:     Confirm,
	EventPaymentFailed: RecordFailure,
	EventCanceled:      Release,
}

// Outcome is what an event did to its checkout.
type Outcome string

// The outcomes of an event.
const (
	OutcomeSuspended       Outcome = "suspended"
	OutcomeConfirmed       Outcome = "confirmed"
	OutcomeFailureRecorded Outcome = "failure-recorded"
	OutcomeReleased        Outcome = "released"
	OutcomeRefunded        Outcome = "refunded"  // paid, but must not have been: refunded in full
	OutcomeUnchanged       Outcome = "unchanged" // duplicate, late or out of order: nothing to do
	OutcomeIgnored         Outcome = "ignored"   // not an event or an intent of this application
)

var moveOutcomes = map[CheckoutStatus]Outcome{
	Processing: OutcomeSuspended, Confirmed: OutcomeConfirmed, PendingPayment: OutcomeFailureRecorded, Released: OutcomeReleased,
}

// maxMoveAttempts bounds how often an event is decided again because its checkout changed while
// it was being moved (a concurrent delivery, the checkout, the releaser).
const maxMoveAttempts = 3

// Lifecycle moves started checkouts to their end: it is the use case of the Stripe webhook and
// of the hold releaser. Its moves are those of lifecycle.go, each one transaction.
type Lifecycle struct {
	mover
	bookings  Bookings
	holds     Holds
	analytics Analytics
	hold      time.Duration
}

// NewLifecycle builds the lifecycle use case on its ports. A nil analytics knows no measurement
// id: every purchase is skipped.
func NewLifecycle(carts Carts, bookings Bookings, holds Holds, payments Payments, analytics Analytics, opts Options) *Lifecycle {
	if analytics == nil {
		analytics = noAnalytics{}
	}
	return &Lifecycle{mover: opts.mover(carts, payments), bookings: bookings, holds: holds, analytics: analytics, hold: opts.hold()}
}

type noAnalytics struct{}

func (noAnalytics) SendPurchase(context.Context, Purchase) error { return ErrUnknownMeasurement }

// EventResult is what an event did to its checkout, and to its GA4 purchase ("" when the event
// confirmed nothing, or the checkout sends none).
type EventResult struct {
	Outcome  Outcome
	Purchase PurchaseOutcome
}

// HandlePaymentEvent applies a Stripe event to its checkout, exactly once however often and in
// whatever order Stripe delivers it: a move that does not start from its From state changes
// nothing. An intent that succeeded but must not have (it is not its group's recorded intent,
// or its group was released) is refunded in full. A confirmation then sends the checkout's GA4
// purchase, briefly: a purchase not sent then is the hold releaser's.
func (l *Lifecycle) HandlePaymentEvent(ctx context.Context, ev PaymentEvent) (EventResult, error) {
	pi := ev.Intent
	move, handled := eventMoves[ev.Type]
	if !handled || pi.GroupIdentifier == "" || pi.ShoppingCartIdentifier == "" {
		return EventResult{Outcome: OutcomeIgnored}, nil // another event, or another system's intent on the account
	}
	log := l.log.With(slog.String("eventId", ev.ID), slog.String("eventType", ev.Type),
		slog.String("paymentIntentId", pi.ID), slog.String("groupId", pi.GroupIdentifier), slog.String("cartId", pi.ShoppingCartIdentifier))
	for range maxMoveAttempts {
		cart, err := l.carts.Get(ctx, pi.ShoppingCartIdentifier)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return EventResult{}, fmt.Errorf("read cart %s: %w", pi.ShoppingCartIdentifier, err)
		}
		var state *State
		if err == nil && cart.Checkout != nil && cart.Checkout.GroupIdentifier == pi.GroupIdentifier {
			s := cart.Checkout.WithDefaults(l.hold)
			state = &s
		}
		outcome, t, err := l.decide(ctx, log, ev, move, state)
		if errors.Is(err, ErrCartChanged) {
			log.InfoContext(ctx, "the checkout changed while the event moved it; reading it again")
			continue
		}
		if err != nil {
			return EventResult{}, err
		}
		result := EventResult{Outcome: outcome}
		if outcome == OutcomeConfirmed && t.State.WantsPurchase() {
			result.Purchase = l.sendPurchase(ctx, pi.ShoppingCartIdentifier, t.confirmed(), purchaseBudget)
		}
		return result, nil
	}
	return EventResult{}, fmt.Errorf("checkout %s kept changing under event %s", pi.GroupIdentifier, ev.ID)
}

// decide applies ev to the checkout state (nil: the group is no longer its cart's checkout) and
// returns the transition it made, if any.
func (l *Lifecycle) decide(ctx context.Context, log *slog.Logger, ev PaymentEvent, move Move, state *State) (Outcome, Transition, error) {
	pi := ev.Intent
	switch {
	case state == nil:
		if ev.Type == EventSucceeded {
			outcome, err := l.paidWithoutCheckout(ctx, log, pi)
			return outcome, Transition{}, err
		}
		return OutcomeUnchanged, Transition{}, nil
	case state.PaymentIntentID != "" && state.PaymentIntentID != pi.ID,
		state.AmountMinor != pi.AmountMinor || state.Currency != pi.Currency:
		// Not the intent the checkout recorded, or not for the amount it stored.
		if ev.Type == EventSucceeded {
			outcome, err := l.refund(ctx, log, pi, "not the checkout's recorded payment intent")
			return outcome, Transition{}, err
		}
		return OutcomeUnchanged, Transition{}, nil
	case !move.Allows(state.Status):
		return OutcomeUnchanged, Transition{}, nil // a duplicate, or late: Stripe does not keep the order of events
	}
	t := Transition{Move: move, CartID: pi.ShoppingCartIdentifier, State: *state, PaymentIntentID: pi.ID, At: ev.Created}
	if move.To == Released {
		// Canceled at the hold's end is the hold releaser's cancel, whose event may be first.
		t.Reason = ReasonPaymentCanceled
		if !ev.Created.Before(state.HoldEndsAt) {
			t.Reason = ReasonExpired
		}
	}
	if err := l.apply(ctx, t); err != nil {
		return "", Transition{}, err
	}
	return moveOutcomes[move.To], t, nil
}

// paidWithoutCheckout settles an intent that succeeded although its group is no longer on its
// cart: a duplicate of the confirmation (the cart since changed by the cart service), or a
// payment of a released group, which is refunded.
func (l *Lifecycle) paidWithoutCheckout(ctx context.Context, log *slog.Logger, pi PaymentIntent) (Outcome, error) {
	bookings, err := l.bookings.OfGroup(ctx, pi.GroupIdentifier)
	if err != nil {
		return "", fmt.Errorf("read the bookings of group %s: %w", pi.GroupIdentifier, err)
	}
	if len(bookings) == 0 {
		log.WarnContext(ctx, "a payment intent names a group that has no bookings; ignoring it")
		return OutcomeIgnored, nil
	}
	for _, b := range bookings {
		switch {
		case b.Status == BookingConfirmed && b.PaymentIntentID == pi.ID:
			return OutcomeUnchanged, nil
		case b.Status == BookingPendingPayment:
			// The index is eventually consistent: a booking confirmed or released a moment ago may
			// still read pending. Never refund on that: Stripe delivers the event again.
			return "", fmt.Errorf("group %s is no longer on its cart but its bookings read pending", pi.GroupIdentifier)
		}
	}
	return l.refund(ctx, log, pi, "its checkout was released, or paid by another intent")
}

// refund refunds a payment that must not have happened, so that nobody pays twice or pays for
// released bookings.
func (l *Lifecycle) refund(ctx context.Context, log *slog.Logger, pi PaymentIntent, why string) (Outcome, error) {
	if err := l.payments.RefundPaymentIntent(ctx, pi.ID); err != nil {
		return "", fmt.Errorf("refund payment intent %s: %w", pi.ID, err)
	}
	log.WarnContext(ctx, "automatic refund", slog.String("why", why), slog.Int64("amountMinor", pi.AmountMinor),
		slog.String("currency", pi.Currency))
	return OutcomeRefunded, nil
}
