package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// release ends a pending checkout without racing its payment: Stripe is told to cancel the
// recorded PaymentIntent first, and only an intent Stripe says is canceled releases the bookings.
// An intent that succeeded meanwhile confirms the checkout instead; one being processed suspends
// it. It returns the state the checkout reached, or ErrCartChanged when the checkout had already
// moved on (another request, the webhook or the releaser was first). The checkout, the webhook
// and the hold releaser all end checkouts with this procedure.
func (s *Service) release(ctx context.Context, cartID string, state State, reason CancellationReason) (Lifecycle, error) {
	if state.PaymentIntentID != "" {
		intent, err := s.payments.CancelPaymentIntent(ctx, state.PaymentIntentID)
		if err != nil {
			return "", fmt.Errorf("cancel payment intent %s of group %s: %w", state.PaymentIntentID, state.GroupIdentifier, err)
		}
		switch intent.Status {
		case PaymentSucceeded:
			return s.moveLogged(ctx, Confirm, cartID, state, intent.ID, "")
		case PaymentProcessing, PaymentRequiresCapture:
			return s.moveLogged(ctx, Suspend, cartID, state, intent.ID, "")
		case PaymentCanceled:
		default:
			return "", fmt.Errorf("payment intent %s is %s after its cancel", intent.ID, intent.Status)
		}
	}
	return s.moveLogged(ctx, Release, cartID, state, state.PaymentIntentID, reason)
}

// moveLogged applies m, logs it, and returns the state it led to.
func (s *Service) moveLogged(ctx context.Context, m Move, cartID string, state State, intentID string, reason CancellationReason) (Lifecycle, error) {
	if err := s.move(ctx, m, cartID, state, intentID, reason); err != nil {
		if errors.Is(err, ErrCartChanged) {
			return "", err
		}
		return "", fmt.Errorf("%s checkout %s: %w", m.Name, state.GroupIdentifier, err)
	}
	s.log.InfoContext(ctx, "checkout moved", slog.String("move", m.Name), slog.String("cartId", cartID),
		slog.String("groupId", state.GroupIdentifier), slog.String("paymentIntentId", intentID),
		slog.String("reason", string(reason)))
	return m.To, nil
}

// move applies a lifecycle move to the checkout as read.
func (s *Service) move(ctx context.Context, m Move, cartID string, state State, intentID string, reason CancellationReason) error {
	return s.carts.Apply(ctx, Transition{
		Move: m, CartID: cartID, State: state, PaymentIntentID: intentID, Reason: reason, At: s.now().UTC(),
	})
}
