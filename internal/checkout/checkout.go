// Package checkout is the checkout use case: it turns a traveller's shopping cart into a group of
// bookings and one Stripe PaymentIntent, exactly once, whatever retries and races happen around it.
//
// It imports no SDK: DynamoDB and Stripe sit behind the small interfaces of ports.go.
package checkout

import "time"

// CartStatus is where a cart stands in its life.
type CartStatus string

// Cart statuses. The cart service creates carts OPEN; checkout moves them to CHECKING_OUT and then
// CHECKED_OUT; payment confirmation (elsewhere) sets PAID.
const (
	CartOpen        CartStatus = "OPEN"
	CartCheckingOut CartStatus = "CHECKING_OUT"
	CartCheckedOut  CartStatus = "CHECKED_OUT"
	CartPaid        CartStatus = "PAID"
)

// BookingPendingPayment is the status of every booking that checkout writes.
const BookingPendingPayment = "PENDING_PAYMENT"

// MaxItems is the most items one checkout can hold: one DynamoDB transaction takes 100 actions,
// the cart update and one put per booking.
const MaxItems = 99

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
// Stripe is derived from it, so a retry sends exactly what the first attempt sent.
type State struct {
	GroupIdentifier           string
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
	ExpiresAt                 int64 // the cart's expiry, moved out of the TTL attribute
	CustomerID                string
	PaymentIntentID           string
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
	Succeeded    bool
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
