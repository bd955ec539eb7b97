package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// mover applies the lifecycle's moves. The checkout, the Stripe webhook and the hold releaser
// each hold one, so that they end checkouts the same way.
type mover struct {
	carts    Carts
	payments Payments
	now      func() time.Time
	log      *slog.Logger
}

// apply makes one move (Transition.At defaults to now) and logs it. ErrCartChanged means the
// checkout is no longer as read: another request, the webhook or the releaser moved it first.
func (m mover) apply(ctx context.Context, t Transition) error {
	now := m.now().UTC()
	if t.At.IsZero() {
		t.At = now
	}
	t.PurchaseDue = now.Add(purchaseRetry)
	if err := m.carts.Apply(ctx, t); err != nil {
		if errors.Is(err, ErrCartChanged) {
			return err
		}
		return fmt.Errorf("%s checkout %s: %w", t.Move.Name, t.State.GroupIdentifier, err)
	}
	m.log.InfoContext(ctx, "checkout moved", slog.String("move", t.Move.Name), slog.String("cartId", t.CartID),
		slog.String("groupId", t.State.GroupIdentifier), slog.String("paymentIntentId", t.PaymentIntentID),
		slog.String("reason", string(t.Reason)))
	return nil
}

// release ends a pending checkout without racing its payment: Stripe is told to cancel the
// recorded PaymentIntent first, and only an intent Stripe says is canceled releases the bookings.
// An intent that succeeded meanwhile confirms the checkout instead; one being processed suspends
// it. It returns the transition it made (its Move.To is the state the checkout reached), or
// ErrCartChanged when the checkout had already moved on.
func (m mover) release(ctx context.Context, cartID string, state State, reason CancellationReason) (Transition, error) {
	t := Transition{Move: Release, CartID: cartID, State: state, PaymentIntentID: state.PaymentIntentID, Reason: reason}
	if state.PaymentIntentID != "" {
		intent, err := m.payments.CancelPaymentIntent(ctx, state.PaymentIntentID)
		if err != nil {
			return Transition{}, fmt.Errorf("cancel payment intent %s of group %s: %w", state.PaymentIntentID, state.GroupIdentifier, err)
		}
		switch intent.Status {
		case PaymentSucceeded:
			t.Move, t.Reason = Confirm, ""
		case PaymentProcessing, PaymentRequiresCapture:
			t.Move, t.Reason = Suspend, ""
		case PaymentCanceled:
		default:
			return Transition{}, fmt.Errorf("payment intent %s is %s after its cancel", intent.ID, intent.Status)
		}
	}
	if t.At.IsZero() {
		t.At = m.now().UTC()
	}
	if err := m.apply(ctx, t); err != nil {
		return Transition{}, err
	}
	return t, nil
}
