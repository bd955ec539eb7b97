// Package checkout is the checkout use case: it turns a traveller's shopping cart into a group of
// bookings and one Stripe PaymentIntent, exactly once, whatever retries and races happen around it.
//
// It imports no SDK: DynamoDB and Stripe sit behind the small interfaces of ports.go.
package checkout

import "time"

// CartStatus is where a cart stands in its life.
type CartStatus string

// Cart statuses. The cart service creates carts OPEN; checkout moves them to CHECKING_OUT and then
// CHECKED_OUT; confirming the payment sets PAID; releasing the checkout sets OPEN again.
const (
	CartOpen        CartStatus = "OPEN"
	CartCheckingOut CartStatus = "CHECKING_OUT"
	CartCheckedOut  CartStatus = "CHECKED_OUT"
	CartPaid        CartStatus = "PAID"
)

// Booking statuses: checkout writes PENDING_PAYMENT; the lifecycle (lifecycle.go) ends each
// booking CONFIRMED or CANCELLED.
const (
	BookingPendingPayment = "PENDING_PAYMENT"
	BookingConfirmed      = "CONFIRMED"
	BookingCancelled      = "CANCELLED"
)

// MaxItems is the most items one checkout can hold: one DynamoDB transaction takes 100 actions,
// and starting, confirming or releasing a checkout writes the cart, its hold and every booking.
const MaxItems = 98

// Cart is a traveller's shopping cart as the cart service stores it.
type Cart struct {
	Identifier      string
	OwnerIdentifier string
	Status          CartStatus
	Currency        string
	Items           []CartItem
	Version         int64
	ExpiresAt       int64 // epoch seconds; 0 once checkout has started (moved into Checkout)
	Checkout        *State
	// StoredSize is the size of the cart's item as DynamoDB counts it, in bytes (adapters set it
	// on read): a checkout adds its state to the item, which must stay within DynamoDB's limit.
	StoredSize int
}

// CartItem is one hotel room in a cart.
type CartItem struct {
	Identifier string
	Room
}

// Room is what a cart item and its booking share: the stay and its price.
type Room struct {
	HotelIdentifier    string
	HotelName          string
	RoomRateIdentifier string
	StartDate          string // YYYY-MM-DD
	EndDate            string
	Adults             int
	Children           int
	Total              Amount
}

// Amount is a decimal amount in major units, kept as the exact decimal text DynamoDB returned.
type Amount struct {
	Amount   string
	Currency string
}

// State is the checkout state stored on the cart when a checkout starts. Everything sent to
// Stripe is derived from it, so a retry sends exactly what the first attempt sent. State written
// by an earlier version lacks the lifecycle fields; adapters read it with WithDefaults.
type State struct {
	GroupIdentifier string
	Status          CheckoutStatus
	// KeyGeneration numbers the PaymentIntent's idempotency key: a key Stripe answered with a
	// 5xx or an idempotency_error is never used again (Stripe replays that answer for a day).
	KeyGeneration             int
	HoldEndsAt                time.Time // when the hold releaser may release the checkout
	BookingCodes              []string
	StartedAt                 time.Time
	CustomizationIdentifier   string
	RedirectURL               string
	GA4ClientID               string
	GA4SessionID              string
	GA4MeasurementID          string
	StatementDescriptorSuffix string
	AmountMinor               int64 // the cart total in Stripe minor units
	Currency                  string
	ExpiresAt                 int64  // the cart's expiry, moved out of the TTL attribute
	CustomerID                string // recorded before the PaymentIntent is created
	PaymentIntentID           string // the only intent whose client secret is ever handed out
	ConfirmedAt               time.Time
	Purchase                  PurchaseStatus // the GA4 purchase of a confirmed checkout ("" for none)
}

// WithDefaults fills what state written by an earlier version lacks: such a checkout is
// pending, on its first key generation, held for hold from its start.
func (s State) WithDefaults(hold time.Duration) State {
	if s.Status == "" {
		s.Status = PendingPayment
	}
	if s.KeyGeneration == 0 {
		s.KeyGeneration = 1
	}
	if s.HoldEndsAt.IsZero() {
		s.HoldEndsAt = s.StartedAt.Add(hold)
	}
	return s
}

// Booking is one booking written for one cart item.
type Booking struct {
	BookingCode            string
	GroupIdentifier        string
	ShoppingCartIdentifier string
	ItemIdentifier         string
	OwnerIdentifier        string
	Room
	Status                  string
	CreatedAt               time.Time
	CustomizationIdentifier string
	PaymentIntentID         string // set when the booking is confirmed: the intent that paid it
}

// Customization is an affiliate's customization of the booking flow.
type Customization struct {
	Identifier                string
	AffiliateIdentifier       string
	Active                    bool
	AllowedRedirectHosts      []string
	StatementDescriptorSuffix string
}

// PaymentIntent is what checkout needs to know of a Stripe PaymentIntent.
type PaymentIntent struct {
	ID           string
	ClientSecret string
	Status       PaymentStatus
	AmountMinor  int64
	Currency     string // upper case
	// GroupIdentifier and ShoppingCartIdentifier come from the metadata checkout gives every
	// intent it creates; an intent without them belongs to another system.
	GroupIdentifier        string
	ShoppingCartIdentifier string
}

// PaymentStatus is a Stripe PaymentIntent's status.
type PaymentStatus string

// The statuses Stripe documents for a PaymentIntent.
const (
	PaymentRequiresPaymentMethod PaymentStatus = "requires_payment_method"
	PaymentRequiresConfirmation  PaymentStatus = "requires_confirmation"
	PaymentRequiresAction        PaymentStatus = "requires_action"
	PaymentProcessing            PaymentStatus = "processing"
	PaymentRequiresCapture       PaymentStatus = "requires_capture"
	PaymentSucceeded             PaymentStatus = "succeeded"
	PaymentCanceled              PaymentStatus = "canceled"
)

// Customer is a traveller's Stripe customer mapping. ID is empty while the traveller has none;
// KeyGeneration numbers the idempotency key of the next customer create.
type Customer struct {
	ID            string
	KeyGeneration int
}

// PaymentIntentRequest holds every parameter of the PaymentIntent create call. It is built only
// from stored checkout state.
type PaymentIntentRequest struct {
	IdempotencyKey            string
	AmountMinor               int64
	Currency                  string // ISO 4217, upper case
	CustomerID                string
	StatementDescriptorSuffix string
	Metadata                  map[string]string
}
