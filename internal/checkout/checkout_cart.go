package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/winktravel/checkout/internal/money"
)

// Request is a validated checkout request.
type Request struct {
	Caller                  string // the authenticated traveller
	ShoppingCartIdentifier  string
	CustomizationIdentifier string
	Redirect                Redirect
	GA4ClientID             string
	GA4SessionID            string
	GA4MeasurementID        string
}

// Result is what a mobile app needs to open Stripe's PaymentSheet.
type Result struct {
	ClientSecret    string
	EphemeralKey    string
	CustomerID      string
	GroupIdentifier string
	BookingCodes    []string
}

// idempotencyKeyTrusted is how long after a checkout started its PaymentIntent idempotency key
// is relied on. Stripe keeps keys for at least 24 hours, counted from the first create, which
// comes after the start; the hour in between is margin.
const idempotencyKeyTrusted = 23 * time.Hour

// maxBeginAttempts bounds the two races the flow retries: losing the cart to a concurrent
// change, and a booking-code collision.
const maxBeginAttempts = 3

// Checkout turns the caller's cart into a group of bookings and a PaymentIntent, or returns the
// ones an earlier attempt created.
func (s *Service) Checkout(ctx context.Context, req Request) (Result, error) {
	log := s.log.With(slog.String("cartId", req.ShoppingCartIdentifier))

	// The independent reads, concurrently.
	var (
		cart                        Cart
		customization               *Customization
		knownCustomer               string
		cartErr, czErr, customerErr error
	)
	s.concurrently(
		func() { cart, cartErr = s.carts.Get(ctx, req.ShoppingCartIdentifier) },
		func() {
			if req.CustomizationIdentifier == "" {
				return
			}
			c, err := s.customizations.Get(ctx, req.CustomizationIdentifier)
			switch {
			case err == nil:
				customization = &c
			case !errors.Is(err, ErrNotFound):
				czErr = err
			}
		},
		func() {
			knownCustomer, customerErr = s.customers.Get(ctx, req.Caller)
			if errors.Is(customerErr, ErrNotFound) {
				customerErr = nil
			}
		},
	)
	if cartErr != nil && !errors.Is(cartErr, ErrNotFound) {
		return Result{}, fmt.Errorf("read cart %s: %w", req.ShoppingCartIdentifier, cartErr)
	}
	if czErr != nil {
		return Result{}, fmt.Errorf("read customization %s: %w", req.CustomizationIdentifier, czErr)
	}
	if customerErr != nil {
		return Result{}, fmt.Errorf("read stripe customer of %s: %w", req.Caller, customerErr)
	}

	// The checks, in the order of precedence: validation, cart-not-found, forbidden, the rest.
	if usable := customization != nil && customization.Active; !s.redirectAllowed(req.Redirect, customization, usable) {
		return Result{}, Invalid(FieldError{Field: "redirectUrl", Message: "host is not allowed"})
	}
	if cartErr != nil {
		return Result{}, failure(KindCartNotFound, "The shopping cart does not exist.")
	}
	if cart.OwnerIdentifier != req.Caller {
		return Result{}, failure(KindForbidden, "The shopping cart belongs to another traveller.")
	}
	if req.CustomizationIdentifier != "" && (customization == nil || !customization.Active) {
		return Result{}, failure(KindCustomizationNotFound, "The customization does not exist or is not active.")
	}
	var fresh *draft
	switch cart.Status {
	case CartPaid:
		return Result{}, failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	case CartOpen:
		d, err := s.prepare(req, cart, customization)
		if err != nil {
			return Result{}, err
		}
		fresh = &d
	}

	// A checked-out cart replays its stored answer with the customer the PaymentIntent has.
	if cart.Status == CartCheckedOut && cart.Checkout != nil && cart.Checkout.PaymentIntentID != "" {
		log.InfoContext(ctx, "replaying checked-out cart", slog.String("groupId", cart.Checkout.GroupIdentifier))
		return s.replay(ctx, *cart.Checkout)
	}

	// The transaction and the Stripe customer, concurrently. A failed customer
	// never undoes a committed transaction: a retry resumes from the stored state.
	var customerID string
	var ensureErr error
	waitCustomer := s.background(func() {
		customerID, ensureErr = s.ensureCustomer(ctx, req.Caller, knownCustomer)
	})
	state, resumed, err := s.settle(ctx, req, cart, fresh, customization)
	waitCustomer()
	if err != nil {
		return Result{}, err
	}
	log = log.With(slog.String("groupId", state.GroupIdentifier))
	if state.PaymentIntentID != "" {
		// Someone else finished the checkout while this request was on its way.
		log.InfoContext(ctx, "replaying checkout completed concurrently")
		return s.replay(ctx, state)
	}
	if ensureErr != nil {
		return Result{}, ensureErr
	}
	if resumed {
		log.InfoContext(ctx, "resuming checkout", slog.Time("startedAt", state.StartedAt))
	}

	// The PaymentIntent and the ephemeral key, concurrently.
	var (
		intent       PaymentIntent
		ephemeralKey string
		piErr, ekErr error
	)
	s.concurrently(
		func() { intent, piErr = s.paymentIntent(ctx, req.ShoppingCartIdentifier, state, customerID) },
		func() { ephemeralKey, ekErr = s.payments.CreateEphemeralKey(ctx, customerID) },
	)
	// Stripe refusing the cart as it is: every retry would meet the same answer.
	switch {
	case errors.Is(piErr, ErrAmountTooSmall):
		return Result{}, failure(KindNotCheckoutable, "The cart total is below the minimum charge for %s.", state.Currency)
	case errors.Is(piErr, ErrAmountTooLarge):
		return Result{}, failure(KindNotCheckoutable, "The cart total is above the maximum charge for %s.", state.Currency)
	case errors.Is(piErr, ErrCurrencyRefused):
		return Result{}, failure(KindNotCheckoutable, "The cart currency %s is not supported.", state.Currency)
	case piErr != nil:
		return Result{}, fmt.Errorf("create payment intent for group %s: %w", state.GroupIdentifier, piErr)
	}
	if ekErr != nil {
		return Result{}, fmt.Errorf("create ephemeral key: %w", ekErr)
	}
	if intent.Succeeded {
		return Result{}, failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	}

	// The cart records the Stripe ids and becomes CHECKED_OUT.
	err = s.carts.Complete(ctx, req.ShoppingCartIdentifier, state.GroupIdentifier, customerID, intent.ID)
	if errors.Is(err, ErrCartChanged) {
		return Result{}, s.explainChanged(ctx, req.ShoppingCartIdentifier)
	}
	if err != nil {
		return Result{}, fmt.Errorf("complete checkout of cart %s: %w", req.ShoppingCartIdentifier, err)
	}
	log.InfoContext(ctx, "checked out", slog.String("paymentIntentId", intent.ID), slog.Int("bookings", len(state.BookingCodes)))
	return Result{
		ClientSecret:    intent.ClientSecret,
		EphemeralKey:    ephemeralKey,
		CustomerID:      customerID,
		GroupIdentifier: state.GroupIdentifier,
		BookingCodes:    state.BookingCodes,
	}, nil
}

// redirectAllowed checks the redirect host against ALLOWED_REDIRECT_HOSTS and the hosts of the
// chosen customization, when that customization is usable.
func (s *Service) redirectAllowed(r Redirect, c *Customization, usable bool) bool {
	if r.Loopback || s.redirectHosts.Allows(r.Host) {
		return true
	}
	if !usable {
		return false
	}
	hosts, err := ParseHostPatterns(c.AllowedRedirectHosts)
	if err != nil {
		s.log.Warn("customization has an invalid redirect host", slog.String("customizationId", c.Identifier))
	}
	return hosts.Allows(r.Host)
}

// draft is a checkout about to be written: the state for the cart and its bookings.
type draft struct {
	state    State
	bookings []Booking
}

// prepare checks that an OPEN cart can be checked out and drafts its checkout.
func (s *Service) prepare(req Request, cart Cart, c *Customization) (draft, error) {
	now := s.now().UTC()
	switch {
	case len(cart.Items) == 0:
		return draft{}, failure(KindNotCheckoutable, "The cart has no items.")
	case cart.ExpiresAt != 0 && now.Unix() >= cart.ExpiresAt:
		return draft{}, failure(KindNotCheckoutable, "The cart has expired.")
	case len(cart.Items) > MaxItems:
		return draft{}, failure(KindNotCheckoutable, "The cart has more than %d items.", MaxItems)
	}
	amounts := make([]string, len(cart.Items))
	for i, item := range cart.Items {
		if item.Total.Currency != cart.Currency {
			return draft{}, failure(KindNotCheckoutable, "The cart mixes currencies.")
		}
		amounts[i] = item.Total.Amount
	}
	total, err := money.Total(amounts, cart.Currency)
	if err != nil {
		return draft{}, notCheckoutable(err, cart.Currency)
	}
	state := State{
		StartedAt:               now,
		CustomizationIdentifier: req.CustomizationIdentifier,
		RedirectURL:             req.Redirect.URL,
		GA4ClientID:             req.GA4ClientID,
		GA4SessionID:            req.GA4SessionID,
		GA4MeasurementID:        req.GA4MeasurementID,
		AmountMinor:             total,
		Currency:                cart.Currency,
		ExpiresAt:               cart.ExpiresAt,
	}
	if c != nil && c.StatementDescriptorSuffix != "" {
		if validDescriptorSuffix(c.StatementDescriptorSuffix) {
			state.StatementDescriptorSuffix = c.StatementDescriptorSuffix
		} else {
			// Stripe would refuse every attempt of this checkout: charge without the suffix.
			s.log.Warn("customization has an invalid statement descriptor suffix; leaving it out",
				slog.String("customizationId", c.Identifier))
		}
	}
	d := draft{state: state, bookings: make([]Booking, len(cart.Items))}
	for i, item := range cart.Items {
		d.bookings[i] = Booking{
			ShoppingCartIdentifier:  cart.Identifier,
			ItemIdentifier:          item.Identifier,
			OwnerIdentifier:         cart.OwnerIdentifier,
			Room:                    item.Room,
			Status:                  BookingPendingPayment,
			CreatedAt:               now,
			CustomizationIdentifier: req.CustomizationIdentifier,
		}
	}
	d.assignIdentifiers()
	return d, nil
}

// validDescriptorSuffix applies Stripe's rules for a statement descriptor suffix: at most 22
// printable Latin characters, at least one letter, none of < > \ ' " *.
func validDescriptorSuffix(suffix string) bool {
	letter := false
	for _, r := range suffix {
		switch {
		case r < ' ' || r > '~' || strings.ContainsRune(`<>\'"*`, r):
			return false
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			letter = true
		}
	}
	return letter && len(suffix) <= 22
}

// assignIdentifiers gives the draft a new group and new, distinct booking codes.
func (d *draft) assignIdentifiers() {
	d.state.GroupIdentifier = NewGroupIdentifier()
	d.state.BookingCodes = make([]string, len(d.bookings))
	seen := make(map[string]bool, len(d.bookings))
	for i := range d.bookings {
		code := NewBookingCode()
		for seen[code] {
			code = NewBookingCode()
		}
		seen[code] = true
		d.state.BookingCodes[i] = code
		d.bookings[i].BookingCode = code
		d.bookings[i].GroupIdentifier = d.state.GroupIdentifier
	}
}

func notCheckoutable(err error, currency string) error {
	switch {
	case errors.Is(err, money.ErrBelowMinimum):
		return failure(KindNotCheckoutable, "The cart total is below the minimum charge for %s.", currency)
	case errors.Is(err, money.ErrUnknownCurrency):
		return failure(KindNotCheckoutable, "The cart currency %q is not supported.", currency)
	default:
		return failure(KindNotCheckoutable, "The cart has an amount that %s cannot express.", currency)
	}
}

// settle turns an OPEN cart into bookings, or returns the checkout state a previous attempt
// stored. resumed tells the two apart.
func (s *Service) settle(ctx context.Context, req Request, cart Cart, fresh *draft, c *Customization) (state State, resumed bool, err error) {
	for attempt := 1; ; attempt++ {
		switch cart.Status {
		case CartCheckingOut, CartCheckedOut:
			if cart.Checkout == nil || cart.Checkout.GroupIdentifier == "" {
				return State{}, false, fmt.Errorf("cart %s is %s without checkout state", cart.Identifier, cart.Status)
			}
			return *cart.Checkout, true, nil
		case CartPaid:
			return State{}, false, failure(KindAlreadyPaid, "The shopping cart has already been paid.")
		case CartOpen:
		default:
			return State{}, false, fmt.Errorf("cart %s has unknown status %q", cart.Identifier, cart.Status)
		}
		if fresh == nil {
			d, err := s.prepare(req, cart, c)
			if err != nil {
				return State{}, false, err
			}
			fresh = &d
		}
		err := s.carts.Begin(ctx, cart, fresh.state, fresh.bookings)
		switch {
		case err == nil:
			s.log.InfoContext(ctx, "checkout started", slog.String("cartId", cart.Identifier),
				slog.String("groupId", fresh.state.GroupIdentifier), slog.Int("bookings", len(fresh.bookings)))
			return fresh.state, false, nil
		case attempt == maxBeginAttempts:
			return State{}, false, fmt.Errorf("begin checkout of cart %s after %d attempts: %w", cart.Identifier, attempt, err)
		case errors.Is(err, ErrBookingCodeTaken):
			s.log.WarnContext(ctx, "booking code collision, drawing new codes", slog.String("cartId", cart.Identifier))
			fresh.assignIdentifiers()
		case errors.Is(err, ErrCartChanged):
			s.log.InfoContext(ctx, "cart changed during checkout, reading it again", slog.String("cartId", cart.Identifier))
			cart, err = s.carts.Get(ctx, cart.Identifier)
			if errors.Is(err, ErrNotFound) { // deleted meanwhile, by the cart service or TTL
				return State{}, false, failure(KindCartNotFound, "The shopping cart does not exist.")
			}
			if err != nil {
				return State{}, false, fmt.Errorf("read cart %s again: %w", req.ShoppingCartIdentifier, err)
			}
			if cart.OwnerIdentifier != req.Caller {
				return State{}, false, failure(KindForbidden, "The shopping cart belongs to another traveller.")
			}
			fresh = nil
		default:
			return State{}, false, fmt.Errorf("begin checkout of cart %s: %w", cart.Identifier, err)
		}
	}
}

// ensureCustomer returns the traveller's Stripe customer, creating it and its mapping if needed.
// When two requests race, the mapping stored first wins.
func (s *Service) ensureCustomer(ctx context.Context, owner, known string) (string, error) {
	if known != "" {
		return known, nil
	}
	created, err := s.payments.CreateCustomer(ctx, owner)
	if err != nil {
		return "", fmt.Errorf("create stripe customer: %w", err)
	}
	stored, err := s.customers.Add(ctx, owner, created)
	if err != nil {
		return "", fmt.Errorf("store stripe customer %s: %w", created, err)
	}
	return stored, nil
}

// paymentIntent creates the group's PaymentIntent under its idempotency key, so that a retry
// gets the intent the first attempt created. Once the key may have expired, it first looks the
// intent up by the group's metadata: a group never gets a second PaymentIntent.
func (s *Service) paymentIntent(ctx context.Context, cartID string, state State, customerID string) (PaymentIntent, error) {
	if age := s.now().Sub(state.StartedAt); age >= idempotencyKeyTrusted {
		intent, found, err := s.payments.FindPaymentIntent(ctx, state.GroupIdentifier)
		if err != nil {
			return PaymentIntent{}, fmt.Errorf("look up the payment intent of a checkout started %v ago: %w", age.Round(time.Minute), err)
		}
		if found {
			s.log.InfoContext(ctx, "found the payment intent of a checkout older than its idempotency key",
				slog.String("cartId", cartID), slog.String("groupId", state.GroupIdentifier),
				slog.String("paymentIntentId", intent.ID))
			return intent, nil
		}
	}
	return s.payments.CreatePaymentIntent(ctx, paymentIntentRequest(cartID, state, customerID))
}

// replay answers a checked-out cart again: same group, codes, customer and client secret, and a
// fresh ephemeral key.
func (s *Service) replay(ctx context.Context, state State) (Result, error) {
	var (
		intent       PaymentIntent
		ephemeralKey string
		piErr, ekErr error
	)
	s.concurrently(
		func() { intent, piErr = s.payments.GetPaymentIntent(ctx, state.PaymentIntentID) },
		func() { ephemeralKey, ekErr = s.payments.CreateEphemeralKey(ctx, state.CustomerID) },
	)
	if piErr != nil {
		return Result{}, fmt.Errorf("read payment intent %s: %w", state.PaymentIntentID, piErr)
	}
	if ekErr != nil {
		return Result{}, fmt.Errorf("create ephemeral key: %w", ekErr)
	}
	if intent.Succeeded {
		return Result{}, failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	}
	return Result{
		ClientSecret:    intent.ClientSecret,
		EphemeralKey:    ephemeralKey,
		CustomerID:      state.CustomerID,
		GroupIdentifier: state.GroupIdentifier,
		BookingCodes:    state.BookingCodes,
	}, nil
}

// explainChanged tells why the final update found the cart changed: paid meanwhile, or a bug.
func (s *Service) explainChanged(ctx context.Context, cartID string) error {
	cart, err := s.carts.Get(ctx, cartID)
	if err == nil && cart.Status == CartPaid {
		return failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	}
	return fmt.Errorf("complete checkout of cart %s: %w", cartID, ErrCartChanged)
}

// metadataValueLimit is Stripe's limit on one metadata value.
const metadataValueLimit = 500

// paymentIntentRequest builds the PaymentIntent parameters from stored state only, so that every
// attempt for a group sends identical parameters under the same idempotency key.
func paymentIntentRequest(cartID string, state State, customerID string) PaymentIntentRequest {
	metadata := map[string]string{
		"groupIdentifier":        state.GroupIdentifier,
		"shoppingCartIdentifier": cartID,
	}
	for i, chunk := range joinWithin(state.BookingCodes, ",", metadataValueLimit) {
		key := "bookingCodes"
		if i > 0 {
			key = fmt.Sprintf("bookingCodes%d", i+1)
		}
		metadata[key] = chunk
	}
	for key, value := range map[string]string{
		"customizationIdentifier": state.CustomizationIdentifier,
		"ga4ClientId":             state.GA4ClientID,
		"ga4SessionId":            state.GA4SessionID,
		"ga4MeasurementId":        state.GA4MeasurementID,
	} {
		if value != "" {
			metadata[key] = value
		}
	}
	return PaymentIntentRequest{
		IdempotencyKey:            "checkout-payment-intent-" + state.GroupIdentifier,
		AmountMinor:               state.AmountMinor,
		Currency:                  state.Currency,
		CustomerID:                customerID,
		StatementDescriptorSuffix: state.StatementDescriptorSuffix,
		Metadata:                  metadata,
	}
}

// joinWithin joins items with sep into as few strings as possible, none longer than limit.
func joinWithin(items []string, sep string, limit int) []string {
	var chunks []string
	var b strings.Builder
	for _, item := range items {
		if b.Len() > 0 && b.Len()+len(sep)+len(item) > limit {
			chunks = append(chunks, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(item)
	}
	if b.Len() > 0 {
		chunks = append(chunks, b.String())
	}
	return chunks
}
