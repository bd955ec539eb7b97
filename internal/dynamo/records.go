// Package dynamo implements the checkout ports on Amazon DynamoDB: carts (with the checkout
// transaction), bookings, customizations and the Stripe customer mapping.
package dynamo

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/winktravel/checkout/internal/checkout"
)

// The records mirror the tables' attributes; the domain types stay SDK-free.

type cartRecord struct {
	Identifier      string          `dynamodbav:"identifier"`
	OwnerIdentifier string          `dynamodbav:"ownerIdentifier"`
	Status          string          `dynamodbav:"status"`
	Currency        string          `dynamodbav:"currency"`
	Items           []itemRecord    `dynamodbav:"items"`
	Version         *int64          `dynamodbav:"version"`
	ExpiresAt       int64           `dynamodbav:"expiresAt,omitempty"`
	Checkout        *checkoutRecord `dynamodbav:"checkout,omitempty"`
}

type itemRecord struct {
	Identifier string `dynamodbav:"identifier"`
	roomRecord
}

// roomRecord holds the attributes a cart item and its booking share; attributevalue flattens it.
type roomRecord struct {
	HotelIdentifier    string       `dynamodbav:"hotelIdentifier"`
	HotelName          string       `dynamodbav:"hotelName"`
	RoomRateIdentifier string       `dynamodbav:"roomRateIdentifier"`
	StartDate          string       `dynamodbav:"startDate"`
	EndDate            string       `dynamodbav:"endDate"`
	Adults             int          `dynamodbav:"adults"`
	Children           int          `dynamodbav:"children"`
	Total              amountRecord `dynamodbav:"total"`
}

// amountRecord keeps the amount as DynamoDB's exact decimal text: never a float.
type amountRecord struct {
	Amount   attributevalue.Number `dynamodbav:"amount"`
	Currency string                `dynamodbav:"currency"`
}

// checkoutRecord is the cart's checkout map. Fields added after the first version are omitempty,
// and a map without them reads with State.WithDefaults.
type checkoutRecord struct {
	GroupIdentifier           string   `dynamodbav:"groupIdentifier"`
	Status                    string   `dynamodbav:"status,omitempty"`
	KeyGeneration             int      `dynamodbav:"keyGeneration,omitempty"`
	HoldEndsAt                string   `dynamodbav:"holdEndsAt,omitempty"`
	ConfirmedAt               string   `dynamodbav:"confirmedAt,omitempty"`
	BookingCodes              []string `dynamodbav:"bookingCodes"`
	StartedAt                 string   `dynamodbav:"startedAt"`
	CustomizationIdentifier   string   `dynamodbav:"customizationIdentifier,omitempty"`
	RedirectURL               string   `dynamodbav:"redirectUrl"`
	GA4ClientID               string   `dynamodbav:"ga4ClientId,omitempty"`
	GA4SessionID              string   `dynamodbav:"ga4SessionId,omitempty"`
	GA4MeasurementID          string   `dynamodbav:"ga4MeasurementId,omitempty"`
	StatementDescriptorSuffix string   `dynamodbav:"statementDescriptorSuffix,omitempty"`
	AmountMinor               int64    `dynamodbav:"amountMinor"`
	Currency                  string   `dynamodbav:"currency"`
	ExpiresAt                 int64    `dynamodbav:"expiresAt,omitempty"`
	CustomerID                string   `dynamodbav:"customerId,omitempty"`
	PaymentIntentID           string   `dynamodbav:"paymentIntentId,omitempty"`
	Purchase                  string   `dynamodbav:"purchase,omitempty"` // the GA4 purchase's status
}

type bookingRecord struct {
	BookingCode            string `dynamodbav:"bookingCode"`
	GroupIdentifier        string `dynamodbav:"groupIdentifier"`
	ShoppingCartIdentifier string `dynamodbav:"shoppingCartIdentifier"`
	ItemIdentifier         string `dynamodbav:"itemIdentifier"`
	OwnerIdentifier        string `dynamodbav:"ownerIdentifier"`
	roomRecord
	Status                  string `dynamodbav:"status"`
	CreatedAt               string `dynamodbav:"createdAt"`
	CustomizationIdentifier string `dynamodbav:"customizationIdentifier,omitempty"`
	// Written by the lifecycle's moves.
	CancellationReason string `dynamodbav:"cancellationReason,omitempty"`
	PaymentIntentID    string `dynamodbav:"paymentIntentId,omitempty"`
}

type customizationRecord struct {
	Identifier                string   `dynamodbav:"identifier"`
	AffiliateIdentifier       string   `dynamodbav:"affiliateIdentifier"`
	Active                    bool     `dynamodbav:"active"`
	AllowedRedirectHosts      []string `dynamodbav:"allowedRedirectHosts"`
	StatementDescriptorSuffix string   `dynamodbav:"statementDescriptorSuffix,omitempty"`
}

// customerRecord is a traveller's mapping. It may hold only keyGeneration, while the traveller's
// customer create is retried under a new key.
type customerRecord struct {
	OwnerIdentifier  string `dynamodbav:"ownerIdentifier"`
	StripeCustomerID string `dynamodbav:"stripeCustomerId,omitempty"`
	KeyGeneration    int    `dynamodbav:"keyGeneration,omitempty"`
	CreatedAt        string `dynamodbav:"createdAt,omitempty"`
}

// holdRecord is a pending checkout's entry in the holds table, found through its byDue index
// (docs/design.md, "Holds").
type holdRecord struct {
	GroupIdentifier        string `dynamodbav:"groupIdentifier"`
	HoldShard              string `dynamodbav:"holdShard"`
	HoldEndsAt             int64  `dynamodbav:"holdEndsAt"`
	ShoppingCartIdentifier string `dynamodbav:"shoppingCartIdentifier"`
	// Purchase marks the entry of a confirmed checkout whose GA4 purchase is not yet sent.
	Purchase bool `dynamodbav:"purchase,omitempty"`
}

func (r cartRecord) cart() (checkout.Cart, error) {
	c := checkout.Cart{
		Identifier:      r.Identifier,
		OwnerIdentifier: r.OwnerIdentifier,
		Status:          checkout.CartStatus(r.Status),
		Currency:        r.Currency,
		Items:           make([]checkout.CartItem, len(r.Items)),
		ExpiresAt:       r.ExpiresAt,
	}
	if r.Version != nil {
		c.Version = *r.Version
	}
	for i, item := range r.Items {
		c.Items[i] = checkout.CartItem{Identifier: item.Identifier, Room: item.room()}
	}
	if r.Checkout != nil {
		started, err := time.Parse(time.RFC3339Nano, r.Checkout.StartedAt)
		if err != nil {
			return checkout.Cart{}, err
		}
		var holdEnds, confirmed time.Time
		if r.Checkout.HoldEndsAt != "" {
			if holdEnds, err = time.Parse(time.RFC3339Nano, r.Checkout.HoldEndsAt); err != nil {
				return checkout.Cart{}, err
			}
		}
		if r.Checkout.ConfirmedAt != "" {
			if confirmed, err = time.Parse(time.RFC3339Nano, r.Checkout.ConfirmedAt); err != nil {
				return checkout.Cart{}, err
			}
		}
		c.Checkout = &checkout.State{
			GroupIdentifier:           r.Checkout.GroupIdentifier,
			Status:                    checkout.CheckoutStatus(r.Checkout.Status),
			KeyGeneration:             r.Checkout.KeyGeneration,
			HoldEndsAt:                holdEnds,
			BookingCodes:              r.Checkout.BookingCodes,
			StartedAt:                 started,
			CustomizationIdentifier:   r.Checkout.CustomizationIdentifier,
			RedirectURL:               r.Checkout.RedirectURL,
			GA4ClientID:               r.Checkout.GA4ClientID,
			GA4SessionID:              r.Checkout.GA4SessionID,
			GA4MeasurementID:          r.Checkout.GA4MeasurementID,
			StatementDescriptorSuffix: r.Checkout.StatementDescriptorSuffix,
			AmountMinor:               r.Checkout.AmountMinor,
			Currency:                  r.Checkout.Currency,
			ExpiresAt:                 r.Checkout.ExpiresAt,
			CustomerID:                r.Checkout.CustomerID,
			PaymentIntentID:           r.Checkout.PaymentIntentID,
			ConfirmedAt:               confirmed,
			Purchase:                  checkout.PurchaseStatus(r.Checkout.Purchase),
		}
	}
	return c, nil
}

func newCheckoutRecord(s checkout.State) checkoutRecord {
	var holdEnds string
	if !s.HoldEndsAt.IsZero() {
		holdEnds = s.HoldEndsAt.UTC().Format(time.RFC3339Nano)
	}
	return checkoutRecord{
		GroupIdentifier:           s.GroupIdentifier,
		Status:                    string(s.Status),
		KeyGeneration:             s.KeyGeneration,
		HoldEndsAt:                holdEnds,
		BookingCodes:              s.BookingCodes,
		StartedAt:                 s.StartedAt.UTC().Format(time.RFC3339Nano),
		CustomizationIdentifier:   s.CustomizationIdentifier,
		RedirectURL:               s.RedirectURL,
		GA4ClientID:               s.GA4ClientID,
		GA4SessionID:              s.GA4SessionID,
		GA4MeasurementID:          s.GA4MeasurementID,
		StatementDescriptorSuffix: s.StatementDescriptorSuffix,
		AmountMinor:               s.AmountMinor,
		Currency:                  s.Currency,
		ExpiresAt:                 s.ExpiresAt,
		CustomerID:                s.CustomerID,
		PaymentIntentID:           s.PaymentIntentID,
	}
}

func newBookingRecord(b checkout.Booking) bookingRecord {
	return bookingRecord{
		BookingCode:             b.BookingCode,
		GroupIdentifier:         b.GroupIdentifier,
		ShoppingCartIdentifier:  b.ShoppingCartIdentifier,
		ItemIdentifier:          b.ItemIdentifier,
		OwnerIdentifier:         b.OwnerIdentifier,
		roomRecord:              newRoomRecord(b.Room),
		Status:                  b.Status,
		CreatedAt:               b.CreatedAt.UTC().Format(time.RFC3339),
		CustomizationIdentifier: b.CustomizationIdentifier,
	}
}

func (r roomRecord) room() checkout.Room {
	return checkout.Room{
		HotelIdentifier:    r.HotelIdentifier,
		HotelName:          r.HotelName,
		RoomRateIdentifier: r.RoomRateIdentifier,
		StartDate:          r.StartDate,
		EndDate:            r.EndDate,
		Adults:             r.Adults,
		Children:           r.Children,
		Total:              checkout.Amount{Amount: string(r.Total.Amount), Currency: r.Total.Currency},
	}
}

func newRoomRecord(r checkout.Room) roomRecord {
	return roomRecord{
		HotelIdentifier:    r.HotelIdentifier,
		HotelName:          r.HotelName,
		RoomRateIdentifier: r.RoomRateIdentifier,
		StartDate:          r.StartDate,
		EndDate:            r.EndDate,
		Adults:             r.Adults,
		Children:           r.Children,
		Total:              amountRecord{Amount: attributevalue.Number(r.Total.Amount), Currency: r.Total.Currency},
	}
}
