package checkout

import (
	"context"
	"time"
)

// Carts reads carts and moves them through checkout. The adapter keeps each step atomic.
type Carts interface {
	// Get reads a cart with a strongly consistent read. A missing cart is ErrNotFound.
	Get(ctx context.Context, id string) (Cart, error)
	// Begin, in one transaction, moves the cart from OPEN at cart.Version to CHECKING_OUT with
	// state, takes it out of TTL, starts the checkout's hold and creates every booking. It
	// returns ErrCartChanged when the cart is no longer OPEN at that version,
	// ErrBookingCodeTaken when a code already exists and ErrCartTooLarge when the cart with its
	// checkout state would not fit one item; then nothing was written.
	Begin(ctx context.Context, cart Cart, state State, bookings []Booking) error
	// Revise changes a started checkout's customer and key generation from those of from to
	// those of to, provided the cart is CHECKING_OUT with from's group, customer and generation
	// and no PaymentIntent recorded; otherwise ErrCartChanged.
	Revise(ctx context.Context, cartID string, from, to State) error
	// Complete records the PaymentIntent and sets the cart CHECKED_OUT, provided the cart still
	// carries state's group and customer and is CHECKING_OUT or CHECKED_OUT; otherwise
	// ErrCartChanged.
	Complete(ctx context.Context, cartID string, state State, paymentIntentID string) error
	// Apply makes a lifecycle move in one transaction over the cart, the hold and every booking
	// (lifecycle.go). It returns ErrCartChanged, having written nothing, when the cart no longer
	// carries the checkout as the transition read it.
	Apply(ctx context.Context, t Transition) error
	// RecordPurchase records the outcome of a confirmed checkout's GA4 purchase, provided the
	// cart still carries the group with its purchase pending, and removes the purchase's entry in
	// the holds table. It returns ErrCartChanged when the purchase was recorded already or the
	// cart no longer carries the group; the entry is removed all the same.
	RecordPurchase(ctx context.Context, cartID, groupID string, status PurchaseStatus, at time.Time) error
}

// Bookings reads the bookings of a group.
type Bookings interface {
	// OfGroup returns the group's bookings (none for a group nobody wrote). The index behind it
	// is eventually consistent: a booking written or changed a moment ago may read as before.
	OfGroup(ctx context.Context, groupID string) ([]Booking, error)
	// Read returns the bookings of the codes given, read strongly consistently; a code without a
	// booking is left out.
	Read(ctx context.Context, codes []string) ([]Booking, error)
}

// Customizations reads affiliate customizations.
type Customizations interface {
	// Get returns ErrNotFound for an unknown customization.
	Get(ctx context.Context, id string) (Customization, error)
}

// Customers maps a traveller to their Stripe customer. A traveller has at most one mapping; it
// changes only when Stripe no longer knows its customer.
type Customers interface {
	// Get returns ErrNotFound when the traveller has no mapping at all.
	Get(ctx context.Context, owner string) (Customer, error)
	// Add stores customerID unless the traveller has a customer already, and returns the
	// customer that is stored.
	Add(ctx context.Context, owner, customerID string) (string, error)
	// AdvanceKey moves the traveller's customer-create key from generation from to the next one;
	// nothing happens if another request advanced it first.
	AdvanceKey(ctx context.Context, owner string, from int) error
	// Replace forgets the traveller's customer gone, unless the mapping changed already, and
	// advances the key generation; it returns the mapping as it then stands (consistently read).
	Replace(ctx context.Context, owner, gone string) (Customer, error)
}

// Payments is Stripe.
type Payments interface {
	// CreateCustomer creates the traveller's Stripe customer, idempotent per owner and key
	// generation while Stripe keeps the key.
	CreateCustomer(ctx context.Context, owner string, generation int) (string, error)
	// CreatePaymentIntent is idempotent on req.IdempotencyKey. Stripe refusing the amount as too
	// small or too large, or the currency, is ErrAmountTooSmall, ErrAmountTooLarge or
	// ErrCurrencyRefused.
	CreatePaymentIntent(ctx context.Context, req PaymentIntentRequest) (PaymentIntent, error)
	GetPaymentIntent(ctx context.Context, id string) (PaymentIntent, error)
	// CancelPaymentIntent cancels an intent as abandoned and returns it as it then stands: an
	// intent Stripe would not cancel (succeeded, processing, already canceled) is returned with
	// its status, not as an error.
	CancelPaymentIntent(ctx context.Context, id string) (PaymentIntent, error)
	// FindPaymentIntent looks a group's PaymentIntent up by its groupIdentifier metadata, for
	// when the idempotency key may have expired. A canceled intent does not count. Stripe's
	// search lags creation (up to an hour during outages): a miss is only final for old intents.
	FindPaymentIntent(ctx context.Context, groupID string) (intent PaymentIntent, found bool, err error)
	// RefundPaymentIntent refunds a succeeded intent in full, once: an intent refunded already
	// is not an error.
	RefundPaymentIntent(ctx context.Context, id string) error
	// CreateEphemeralKey returns the key's secret, never empty.
	CreateEphemeralKey(ctx context.Context, customerID string) (string, error)
}

// Every Payments call may also fail with ErrKeyPoisoned (a create whose idempotency key must
// not be used again) or ErrCustomerMissing (Stripe does not know the customer named).

// Analytics is GA4's Measurement Protocol.
type Analytics interface {
	// SendPurchase sends one purchase event. ErrUnknownMeasurement: no API secret is configured
	// for its measurement id, and nothing was sent.
	SendPurchase(ctx context.Context, p Purchase) error
}

// Holds finds the checkouts whose hold has ended. A hold exists while its checkout is pending,
// and after it while its GA4 purchase is (Hold.Purchase); the lifecycle's moves start, change
// and end it in their transactions (Carts.Begin, Carts.Apply, Carts.RecordPurchase).
type Holds interface {
	// Due returns up to limit holds that ended at or before now, the longest ended first within
	// each part of the index (not overall).
	Due(ctx context.Context, now time.Time, limit int) ([]Hold, error)
	// Claim takes a due hold for one releaser until until, so that two releasers running at once
	// do not both cancel its PaymentIntent. It returns false if another releaser holds it, or
	// the hold is gone.
	Claim(ctx context.Context, hold Hold, now, until time.Time) (bool, error)
	// Forget removes a hold whose checkout has ended (it should not exist).
	Forget(ctx context.Context, hold Hold) error
	// Defer moves a hold, as found, to end at until (and drops its claim): a suspended checkout
	// to check again later, a failing one behind the others.
	Defer(ctx context.Context, hold Hold, until time.Time) error
}
