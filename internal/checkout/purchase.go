package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/winktravel/checkout/internal/money"
)

// PurchaseStatus is where a confirmed checkout's GA4 purchase stands. A checkout confirmed with
// a GA4 client id and measurement id starts PurchasePending; every other checkout has none.
type PurchaseStatus string

// The purchase states. PENDING is the only one that changes: to one of the other three, once.
const (
	PurchasePending   PurchaseStatus = "PENDING"
	PurchaseSent      PurchaseStatus = "SENT"
	PurchaseSkipped   PurchaseStatus = "SKIPPED"   // no API secret for its measurement id
	PurchaseAbandoned PurchaseStatus = "ABANDONED" // not sent within GA4's backdating window
)

// PurchaseOutcome is what one attempt at a checkout's purchase did ("" when it has none).
type PurchaseOutcome string

// The outcomes of an attempt.
const (
	PurchaseOutcomeSent      PurchaseOutcome = "sent"
	PurchaseOutcomeSkipped   PurchaseOutcome = "skipped"   // unknown measurement id: never sent
	PurchaseOutcomeFailed    PurchaseOutcome = "failed"    // left pending: the hold releaser retries it
	PurchaseOutcomeAbandoned PurchaseOutcome = "abandoned" // too old for GA4, or its checkout is gone
)

// Purchase is a GA4 purchase event, built only from a confirmed checkout's stored state and its
// bookings (docs/ga4.md).
type Purchase struct {
	MeasurementID string
	ClientID      string
	SessionID     string    // "" when the app did not send one
	TransactionID string    // the group identifier: GA4 deduplicates purchases on it
	At            time.Time // the payment's confirmation
	Value         string    // the exact cart total in major units ("1500", "1.230", "123.45")
	Currency      string
	Items         []PurchaseItem // one per booking
}

// PurchaseItem is one booking of a purchase.
type PurchaseItem struct {
	ID    string // the room rate
	Name  string // the hotel
	Price string // exact, in major units
}

// ErrUnknownMeasurement is Analytics' answer for a measurement id it has no API secret for.
var ErrUnknownMeasurement = errors.New("no GA4 API secret for the measurement id")

// MaxPurchaseValueChars is the Measurement Protocol's limit on a parameter value; longer item ids
// and names are cut to it.
const MaxPurchaseValueChars = 100

const (
	// purchaseRetry is when the hold releaser first retries a purchase not recorded as sent:
	// well after the webhook's own attempt has ended.
	purchaseRetry = time.Minute
	// purchaseWindow is how long after its payment a purchase is still sent: GA4 accepts events
	// backdated up to 72 hours, less a margin for the releaser's lag.
	purchaseWindow = 71 * time.Hour
	// purchaseBudget bounds the webhook's attempt, so that it never holds Stripe's answer long.
	purchaseBudget = 300 * time.Millisecond
	// releaserPurchaseBudget bounds one attempt of the hold releaser, so that a slow GA4 costs a
	// run little (and purchaseGate stops a run's attempts after a few failures).
	releaserPurchaseBudget = 2 * time.Second
)

// WantsPurchase reports whether the checkout's confirmation is to be sent to GA4: the app sent
// the traveller's GA4 client id and the affiliate's measurement id.
func (s State) WantsPurchase() bool { return s.GA4ClientID != "" && s.GA4MeasurementID != "" }

// purchaseRetryAfter is when a purchase that failed at age (since its payment) is tried again:
// soon at first, then less often, at most hourly, about 80 attempts over the window.
func purchaseRetryAfter(age time.Duration) time.Duration {
	return min(max(age/4, purchaseRetry), time.Hour)
}

// newPurchase builds the purchase of a confirmed checkout from its state and its bookings, in
// the order the checkout booked them.
func newPurchase(state State, bookings []Booking) (Purchase, error) {
	value, err := money.FormatMinor(state.AmountMinor, state.Currency)
	if err != nil {
		return Purchase{}, fmt.Errorf("the total of group %s: %w", state.GroupIdentifier, err)
	}
	byCode := make(map[string]Booking, len(bookings))
	for _, b := range bookings {
		byCode[b.BookingCode] = b
	}
	p := Purchase{
		MeasurementID: state.GA4MeasurementID, ClientID: state.GA4ClientID, SessionID: state.GA4SessionID,
		TransactionID: state.GroupIdentifier, At: state.ConfirmedAt, Value: value, Currency: state.Currency,
		Items: make([]PurchaseItem, 0, len(state.BookingCodes)),
	}
	for _, code := range state.BookingCodes {
		b, ok := byCode[code]
		if !ok {
			return Purchase{}, fmt.Errorf("booking %s of group %s is missing", code, state.GroupIdentifier)
		}
		// The booking's total as the cart held it, written again in the currency's decimals.
		minor, err := money.ToMinor(b.Total.Amount, state.Currency)
		if err != nil {
			return Purchase{}, fmt.Errorf("the price of booking %s: %w", code, err)
		}
		price, _ := money.FormatMinor(minor, state.Currency) // ToMinor's result always formats
		p.Items = append(p.Items, PurchaseItem{
			ID: truncate(b.RoomRateIdentifier, MaxPurchaseValueChars), Name: truncate(b.HotelName, MaxPurchaseValueChars), Price: price,
		})
	}
	return p, nil
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// sendPurchase makes one attempt at a confirmed checkout's purchase, within budget: it reads the
// bookings, sends the purchase and records the outcome on the checkout. It never fails the
// caller: a failure leaves the purchase pending for the hold releaser.
func (l *Lifecycle) sendPurchase(ctx context.Context, cartID string, state State, budget time.Duration) PurchaseOutcome {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	log := l.log.With(slog.String("groupId", state.GroupIdentifier), slog.String("cartId", cartID),
		slog.String("measurementId", state.GA4MeasurementID))
	failed := func(what string, err error) PurchaseOutcome {
		log.WarnContext(ctx, what+"; the hold releaser retries it", slog.String("error", err.Error()))
		return PurchaseOutcomeFailed
	}
	if l.now().Sub(state.ConfirmedAt) > purchaseWindow {
		return l.abandonPurchase(ctx, cartID, state, "it was not sent within GA4's window") // GA4 would drop it
	}
	bookings, err := l.bookings.Read(ctx, state.BookingCodes)
	if err != nil {
		return failed("could not read the bookings of a purchase", err)
	}
	purchase, err := newPurchase(state, bookings)
	if err != nil {
		// The stored state and bookings do not change: no retry would build it.
		return l.abandonPurchase(ctx, cartID, state, "it cannot be built: "+err.Error())
	}
	status, outcome := PurchaseSent, PurchaseOutcomeSent
	if err := l.analytics.SendPurchase(ctx, purchase); err != nil {
		if !errors.Is(err, ErrUnknownMeasurement) {
			return failed("could not send a purchase to GA4", err)
		}
		log.WarnContext(ctx, "no GA4 API secret for the checkout's measurement id; its purchase is not sent")
		status, outcome = PurchaseSkipped, PurchaseOutcomeSkipped
	}
	if err := l.carts.RecordPurchase(ctx, cartID, state.GroupIdentifier, status, l.now().UTC()); err != nil {
		if errors.Is(err, ErrCartChanged) {
			return outcome // recorded by another attempt, or the cart is gone: nothing more to send
		}
		// Sent but not recorded: the releaser sends it again, and GA4 drops the duplicate
		// (same transaction_id).
		return failed("could not record a purchase as "+string(status), err)
	}
	if outcome == PurchaseOutcomeSent {
		log.InfoContext(ctx, "purchase sent to GA4", slog.Int("items", len(purchase.Items)))
	}
	return outcome
}

// abandonPurchase gives a purchase up, for why.
func (l *Lifecycle) abandonPurchase(ctx context.Context, cartID string, state State, why string) PurchaseOutcome {
	l.log.ErrorContext(ctx, "giving a GA4 purchase up", slog.String("why", why), slog.String("groupId", state.GroupIdentifier),
		slog.String("cartId", cartID), slog.Time("confirmedAt", state.ConfirmedAt))
	if err := l.carts.RecordPurchase(ctx, cartID, state.GroupIdentifier, PurchaseAbandoned, l.now().UTC()); err != nil && !errors.Is(err, ErrCartChanged) {
		l.log.ErrorContext(ctx, "could not record a purchase as abandoned", slog.String("groupId", state.GroupIdentifier),
			slog.String("error", err.Error()))
		return PurchaseOutcomeFailed
	}
	return PurchaseOutcomeAbandoned
}
