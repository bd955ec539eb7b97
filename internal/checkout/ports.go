package checkout

import "context"

// Carts reads carts and moves them through checkout. The adapter keeps each step atomic.
type Carts interface {
	// Get reads a cart with a strongly consistent read. A missing cart is ErrNotFound.
	Get(ctx context.Context, id string) (Cart, error)
	// Begin, in one transaction, moves the cart from OPEN at cart.Version to CHECKING_OUT with
	// state, takes it out of TTL, and creates every booking. It returns ErrCartChanged when the
	// cart is no longer OPEN at that version and ErrBookingCodeTaken when a code already exists;
	// then nothing was written.
	Begin(ctx context.Context, cart Cart, state State, bookings []Booking) error
	// Complete records the Stripe ids and sets the cart CHECKED_OUT, provided the cart still
	// carries groupID and is CHECKING_OUT or CHECKED_OUT; otherwise ErrCartChanged.
	Complete(ctx context.Context, cartID, groupID, customerID, paymentIntentID string) error
}

// Customizations reads affiliate customizations.
type Customizations interface {
	// Get returns ErrNotFound for an unknown customization.
	Get(ctx context.Context, id string) (Customization, error)
}

// Customers maps a traveller to their Stripe customer.
type Customers interface {
	// Get returns ErrNotFound when the traveller has no Stripe customer yet.
	Get(ctx context.Context, owner string) (string, error)
	// Add stores the mapping unless one exists, and returns the mapping that is stored.
	Add(ctx context.Context, owner, customerID string) (string, error)
}

// Payments is Stripe.
type Payments interface {
	// CreateCustomer creates the traveller's Stripe customer; repeated calls for one owner are
	// idempotent while Stripe keeps the idempotency key.
	CreateCustomer(ctx context.Context, owner string) (string, error)
	// CreatePaymentIntent is idempotent on req.IdempotencyKey. Stripe refusing the amount as too
	// small or too large, or the currency, is ErrAmountTooSmall, ErrAmountTooLarge or
	// ErrCurrencyRefused.
	CreatePaymentIntent(ctx context.Context, req PaymentIntentRequest) (PaymentIntent, error)
	GetPaymentIntent(ctx context.Context, id string) (PaymentIntent, error)
	// FindPaymentIntent looks a group's PaymentIntent up by its groupIdentifier metadata, for
	// when the idempotency key may have expired. A canceled intent does not count. Stripe's
	// search lags creation (up to an hour during outages): a miss is only final for old intents.
	FindPaymentIntent(ctx context.Context, groupID string) (intent PaymentIntent, found bool, err error)
	// CreateEphemeralKey returns the key's secret, never empty.
	CreateEphemeralKey(ctx context.Context, customerID string) (string, error)
}
