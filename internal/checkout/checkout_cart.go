package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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

// errRestart: the checkout this request found has moved on (released, confirmed or suspended, by
// this request or another): the request starts again from a fresh read of the cart.
var errRestart = errors.New("the checkout moved on during the request")

// Checkout turns the caller's cart into a group of bookings and a PaymentIntent, or returns the
// ones an earlier attempt created. A checkout found ended (its PaymentIntent canceled) is
// released, and the same request checks the reopened cart out anew: the flow runs at most twice.
func (s *Service) Checkout(ctx context.Context, req Request) (Result, error) {
	result, err := s.checkout(ctx, req)
	if errors.Is(err, errRestart) {
		s.log.InfoContext(ctx, "the checkout moved on; reading the cart again", slog.String("cartId", req.ShoppingCartIdentifier))
		result, err = s.checkout(ctx, req)
		if errors.Is(err, errRestart) {
			err = fmt.Errorf("cart %s: the checkout moved on twice in one request: %w", req.ShoppingCartIdentifier, err)
		}
	}
	return result, err
}

func (s *Service) checkout(ctx context.Context, req Request) (Result, error) {
	log := s.log.With(slog.String("cartId", req.ShoppingCartIdentifier))

	// The independent reads, concurrently.
	var (
		cart                        Cart
		customization               *Customization
		known                       = Customer{KeyGeneration: 1}
		cartErr, czErr, customerErr error
	)
	endReads := timed(ctx, StepReads)
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
			c, err := s.customers.Get(ctx, req.Caller)
			switch {
			case err == nil:
				known = c
			case !errors.Is(err, ErrNotFound):
				customerErr = err
			}
		},
	)
	endReads()
	if cartErr != nil && !errors.Is(cartErr, ErrNotFound) {
		return Result{}, fmt.Errorf("read cart %s: %w", req.ShoppingCartIdentifier, cartErr)
	}
	if czErr != nil {
		return Result{}, fmt.Errorf("read customization %s: %w", req.CustomizationIdentifier, czErr)
	}
	if customerErr != nil {
		return Result{}, fmt.Errorf("read stripe customer of %s: %w", req.Caller, customerErr)
	}

	// The checks, in the order of precedence: validation, cart-not-found, forbidden, the rest. A
	// checkout already started answers from its stored state: the customization and redirect
	// host it started with are not checked again against settings changed since.
	started := cartErr == nil && cart.OwnerIdentifier == req.Caller &&
		(cart.Status == CartCheckingOut || cart.Status == CartCheckedOut)
	if usable := customization != nil && customization.Active; !started && !s.redirectAllowed(req.Redirect, customization, usable) {
		return Result{}, Invalid(FieldError{Field: "redirectUrl", Message: "host is not allowed"})
	}
	if cartErr != nil {
		return Result{}, failure(KindCartNotFound, "The shopping cart does not exist.")
	}
	if cart.OwnerIdentifier != req.Caller {
		return Result{}, failure(KindForbidden, "The shopping cart belongs to another traveller.")
	}
	var fresh *draft
	switch cart.Status {
	case CartPaid:
		return Result{}, failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	case CartOpen:
		if req.CustomizationIdentifier != "" && (customization == nil || !customization.Active) {
			return Result{}, failure(KindCustomizationNotFound, "The customization does not exist or is not active.")
		}
		d, err := s.prepare(req, cart, customization, known.ID)
		if err != nil {
			return Result{}, err
		}
		fresh = &d
	case CartCheckingOut, CartCheckedOut:
		if cart.Checkout == nil || cart.Checkout.GroupIdentifier == "" {
			return Result{}, fmt.Errorf("cart %s is %s without checkout state", cart.Identifier, cart.Status)
		}
	default:
		// Before anything is created anywhere: an unknown status is a bug to look at, not a cart.
		return Result{}, fmt.Errorf("cart %s has unknown status %q", cart.Identifier, cart.Status)
	}

	// A checked-out cart replays its stored answer, as its PaymentIntent's status allows.
	if cart.Status == CartCheckedOut && cart.Checkout.PaymentIntentID != "" {
		state := cart.Checkout.WithDefaults(s.hold)
		log.InfoContext(ctx, "replaying checked-out cart", slog.String("groupId", state.GroupIdentifier))
		return s.replay(ctx, req.Caller, cart.Identifier, state)
	}

	// The transaction and, for a new traveller, the Stripe customer, concurrently. A failed
	// customer never undoes a committed transaction: a retry resumes from the stored state.
	customer, waitCustomer := s.customerFor(ctx, req.Caller, known, fresh != nil && known.ID == "")
	defer waitCustomer() // nothing started here outlives the request
	state, resumed, err := s.settle(ctx, req, cart, fresh, customization, known.ID)
	if err != nil {
		return Result{}, err
	}
	state = state.WithDefaults(s.hold)
	log = log.With(slog.String("groupId", state.GroupIdentifier))
	if state.PaymentIntentID != "" {
		// Someone else finished the checkout while this request was on its way.
		log.InfoContext(ctx, "replaying checkout completed concurrently")
		return s.replay(ctx, req.Caller, cart.Identifier, state)
	}
	if resumed {
		log.InfoContext(ctx, "resuming checkout", slog.Time("startedAt", state.StartedAt))
	}
	// The PaymentIntent is created only for the customer recorded in the checkout state.
	if state.CustomerID == "" {
		id, err := customer()
		if err != nil {
			return Result{}, err
		}
		next := state
		next.CustomerID = id
		err = s.carts.Revise(ctx, cart.Identifier, state, next)
		if errors.Is(err, ErrCartChanged) {
			return Result{}, errRestart // a concurrent request recorded its customer (the same one) first
		}
		if err != nil {
			return Result{}, fmt.Errorf("record stripe customer %s on cart %s: %w", id, cart.Identifier, err)
		}
		state = next
	}
	return s.pay(ctx, req.Caller, cart.Identifier, state)
}

// customerFor returns get, which yields the traveller's Stripe customer, and wait. With early
// set, the customer is created now, beside the transaction, and wait waits for that; otherwise
// get creates it when asked and wait does nothing.
func (s *Service) customerFor(ctx context.Context, owner string, known Customer, early bool) (get func() (string, error), wait func()) {
	if !early {
		return func() (string, error) { return s.ensureCustomer(ctx, owner, known) }, func() {}
	}
	var (
		id  string
		err error
	)
	wait = sync.OnceFunc(s.background(func() { id, err = s.ensureCustomer(ctx, owner, known) }))
	return func() (string, error) { wait(); return id, err }, wait
}

// pay creates the group's PaymentIntent and an ephemeral key, concurrently, records the intent
// and answers it, as its status allows. A customer that Stripe no longer knows is replaced once,
// under a new key generation.
func (s *Service) pay(ctx context.Context, owner, cartID string, state State) (Result, error) {
	var (
		intent       PaymentIntent
		ephemeralKey string
		piErr, ekErr error
	)
	for replaced := false; ; replaced = true {
		s.concurrently(
			func() { intent, piErr = s.paymentIntent(ctx, cartID, state) },
			func() { ephemeralKey, ekErr = s.ephemeralKey(ctx, state.CustomerID) },
		)
		if replaced || !(errors.Is(piErr, ErrCustomerMissing) || errors.Is(ekErr, ErrCustomerMissing)) {
			break
		}
		next, err := s.replaceCustomer(ctx, owner, cartID, state)
		if err != nil {
			return Result{}, err
		}
		state = next
	}
	switch {
	case errors.Is(piErr, ErrAmountTooSmall):
		return Result{}, s.refused(ctx, cartID, state, "The cart total is below the minimum charge for %s.")
	case errors.Is(piErr, ErrAmountTooLarge):
		return Result{}, s.refused(ctx, cartID, state, "The cart total is above the maximum charge for %s.")
	case errors.Is(piErr, ErrCurrencyRefused):
		return Result{}, s.refused(ctx, cartID, state, "The cart currency %s is not supported.")
	case errors.Is(piErr, ErrKeyPoisoned):
		s.advanceKey(ctx, cartID, state)
		return Result{}, fmt.Errorf("create payment intent for group %s: %w", state.GroupIdentifier, piErr)
	case piErr != nil:
		return Result{}, fmt.Errorf("create payment intent for group %s: %w", state.GroupIdentifier, piErr)
	}
	if err := s.payable(ctx, cartID, state, intent); err != nil {
		if errors.Is(err, errNotYetRecorded) {
			err = s.complete(ctx, cartID, state, intent.ID, failure(KindPaymentInProgress, paymentInProgressDetail))
		}
		return Result{}, err
	}
	// The intent is recorded even when the ephemeral key failed (a 429, say): a retry then replays
	// it with a new key, and a release cancels it, instead of leaving it unknown in Stripe.
	if err := s.complete(ctx, cartID, state, intent.ID, nil); err != nil {
		return Result{}, err
	}
	if ekErr != nil {
		return Result{}, fmt.Errorf("create ephemeral key: %w", ekErr)
	}
	s.log.InfoContext(ctx, "checked out", slog.String("cartId", cartID), slog.String("groupId", state.GroupIdentifier),
		slog.String("paymentIntentId", intent.ID), slog.Int("bookings", len(state.BookingCodes)))
	return Result{
		ClientSecret:    intent.ClientSecret,
		EphemeralKey:    ephemeralKey,
		CustomerID:      state.CustomerID,
		GroupIdentifier: state.GroupIdentifier,
		BookingCodes:    state.BookingCodes,
	}, nil
}

const paymentInProgressDetail = "The payment of this shopping cart is being processed."

// errNotYetRecorded: the intent is being paid but is not yet recorded on the checkout.
var errNotYetRecorded = errors.New("payment in progress on an intent not yet recorded")

// payable tells whether the traveller may pay intent now. Otherwise it returns the answer to give,
// having moved the checkout as the intent's status says: a paid one confirmed, a canceled one
// released (errRestart).
func (s *Service) payable(ctx context.Context, cartID string, state State, intent PaymentIntent) error {
	switch intent.Status {
	case PaymentSucceeded:
		// The webhook confirms too; whoever is first moves it, and a failure here is left to it.
		err := s.apply(ctx, Transition{Move: Confirm, CartID: cartID, State: state, PaymentIntentID: intent.ID})
		if err != nil && !errors.Is(err, ErrCartChanged) {
			s.log.WarnContext(ctx, "could not confirm a paid checkout; the webhook will", slog.String("cartId", cartID),
				slog.String("groupId", state.GroupIdentifier), slog.String("error", err.Error()))
		}
		return failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	case PaymentProcessing, PaymentRequiresCapture:
		if state.PaymentIntentID == "" {
			return errNotYetRecorded
		}
		return failure(KindPaymentInProgress, paymentInProgressDetail)
	case PaymentCanceled:
		// Canceled by support, by Stripe, or by the hold releaser: nothing can pay it any more.
		err := s.apply(ctx, Transition{Move: Release, CartID: cartID, State: state, PaymentIntentID: intent.ID, Reason: ReasonPaymentCanceled})
		if err != nil && !errors.Is(err, ErrCartChanged) {
			return fmt.Errorf("release checkout %s of canceled payment intent %s: %w", state.GroupIdentifier, intent.ID, err)
		}
		s.log.InfoContext(ctx, "released the checkout of a canceled payment intent", slog.String("cartId", cartID),
			slog.String("groupId", state.GroupIdentifier), slog.String("paymentIntentId", intent.ID))
		return errRestart
	}
	return nil
}

// complete records the PaymentIntent on the cart and sets it CHECKED_OUT; then answer is
// returned (nil for the 200).
func (s *Service) complete(ctx context.Context, cartID string, state State, intentID string, answer error) error {
	end := timed(ctx, StepFinalUpdate)
	err := s.carts.Complete(ctx, cartID, state, intentID)
	end()
	if errors.Is(err, ErrCartChanged) {
		return s.explainChanged(ctx, cartID, state.GroupIdentifier)
	}
	if err != nil {
		return fmt.Errorf("complete checkout of cart %s: %w", cartID, err)
	}
	return answer
}

// refused releases a checkout whose cart Stripe refuses as it is (no retry could change that)
// and answers cart-not-checkoutable; detail takes the currency.
func (s *Service) refused(ctx context.Context, cartID string, state State, detail string) error {
	err := s.apply(ctx, Transition{Move: Release, CartID: cartID, State: state, Reason: ReasonRefused})
	if err != nil && !errors.Is(err, ErrCartChanged) {
		return fmt.Errorf("release checkout %s refused by stripe: %w", state.GroupIdentifier, err)
	}
	s.log.InfoContext(ctx, "stripe refused the cart; checkout released", slog.String("cartId", cartID),
		slog.String("groupId", state.GroupIdentifier))
	return failure(KindNotCheckoutable, detail, state.Currency)
}

// advanceKey moves the checkout to its next PaymentIntent key generation, so that the retry does
// not meet the answer Stripe stored for this one.
func (s *Service) advanceKey(ctx context.Context, cartID string, state State) {
	next := state
	next.KeyGeneration++
	err := s.carts.Revise(ctx, cartID, state, next)
	switch {
	case err == nil:
		s.log.WarnContext(ctx, "stripe stored an error for the payment intent key; the retry uses the next one",
			slog.String("cartId", cartID), slog.String("groupId", state.GroupIdentifier), slog.Int("keyGeneration", next.KeyGeneration))
	case !errors.Is(err, ErrCartChanged): // ErrCartChanged: another request advanced it first
		s.log.ErrorContext(ctx, "could not advance the payment intent key; the retry meets the same answer once more",
			slog.String("cartId", cartID), slog.String("groupId", state.GroupIdentifier), slog.String("error", err.Error()))
	}
}

// replaceCustomer replaces a Stripe customer that Stripe no longer knows (deleted in the
// Dashboard, or made with the other mode's key): the mapping is replaced, conditionally on the old
// customer, and the checkout moves to the new customer under its next key generation.
func (s *Service) replaceCustomer(ctx context.Context, owner, cartID string, state State) (State, error) {
	s.log.WarnContext(ctx, "stripe does not know the traveller's customer; replacing it", slog.String("cartId", cartID),
		slog.String("customerId", state.CustomerID))
	current, err := s.customers.Replace(ctx, owner, state.CustomerID)
	if err != nil {
		return State{}, fmt.Errorf("replace stripe customer %s: %w", state.CustomerID, err)
	}
	id, err := s.ensureCustomer(ctx, owner, current)
	if err != nil {
		return State{}, err
	}
	next := state
	next.CustomerID = id
	next.KeyGeneration++
	if err := s.carts.Revise(ctx, cartID, state, next); err != nil {
		return State{}, fmt.Errorf("record replacement stripe customer %s on cart %s: %w", id, cartID, err)
	}
	return next, nil
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
	// One bad entry is skipped alone; the customization's other hosts still count.
	hosts, invalid := ParseHostPatternsSkipping(c.AllowedRedirectHosts)
	for _, entry := range invalid {
		s.log.Warn("customization has an invalid redirect host; skipping it", slog.String("customizationId", c.Identifier),
			slog.String("entry", entry))
	}
	return hosts.Allows(r.Host)
}

// draft is a checkout about to be written: the state for the cart and its bookings.
type draft struct {
	state    State
	bookings []Booking
}

// prepare checks that an OPEN cart can be checked out and drafts its checkout, for the
// traveller's Stripe customer when one is known.
func (s *Service) prepare(req Request, cart Cart, c *Customization, customerID string) (draft, error) {
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
		if missing := incomplete(item); missing != "" {
			return draft{}, failure(KindNotCheckoutable, "Cart item %d is incomplete: %s.", i+1, missing)
		}
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
		Status:                  PendingPayment,
		KeyGeneration:           1,
		HoldEndsAt:              now.Add(s.hold),
		StartedAt:               now,
		CustomizationIdentifier: req.CustomizationIdentifier,
		RedirectURL:             req.Redirect.URL,
		GA4ClientID:             req.GA4ClientID,
		GA4SessionID:            req.GA4SessionID,
		GA4MeasurementID:        req.GA4MeasurementID,
		AmountMinor:             total,
		Currency:                cart.Currency,
		ExpiresAt:               cart.ExpiresAt,
		CustomerID:              customerID,
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

// incomplete names what a cart item lacks to become a booking, "" if nothing.
func incomplete(item CartItem) string {
	switch {
	case item.Identifier == "":
		return "identifier is missing"
	case item.HotelIdentifier == "":
		return "hotelIdentifier is missing"
	case item.RoomRateIdentifier == "":
		return "roomRateIdentifier is missing"
	case item.Adults < 1:
		return "adults must be at least 1"
	case item.Children < 0:
		return "children must not be negative"
	case item.Total.Amount == "" || item.Total.Currency == "":
		return "total is missing"
	}
	start, err := time.Parse(time.DateOnly, item.StartDate)
	if err != nil {
		return "startDate must be a YYYY-MM-DD date"
	}
	end, err := time.Parse(time.DateOnly, item.EndDate)
	if err != nil {
		return "endDate must be a YYYY-MM-DD date"
	}
	if !end.After(start) {
		return "endDate must be after startDate"
	}
	return ""
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
func (s *Service) settle(ctx context.Context, req Request, cart Cart, fresh *draft, c *Customization, customerID string) (state State, resumed bool, err error) {
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
			d, err := s.prepare(req, cart, c, customerID)
			if err != nil {
				return State{}, false, err
			}
			fresh = &d
		}
		end := timed(ctx, StepTransaction)
		err := s.carts.Begin(ctx, cart, fresh.state, fresh.bookings)
		end()
		switch {
		case err == nil:
			s.log.InfoContext(ctx, "checkout started", slog.String("cartId", cart.Identifier),
				slog.String("groupId", fresh.state.GroupIdentifier), slog.Int("bookings", len(fresh.bookings)))
			return fresh.state, false, nil
		case errors.Is(err, ErrCartTooLarge):
			return State{}, false, failure(KindNotCheckoutable, "The cart is too large to check out.")
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
// When two requests race, the mapping stored first wins. A create whose key Stripe answered with
// an error it stores moves the traveller to the next key generation, for the retry.
func (s *Service) ensureCustomer(ctx context.Context, owner string, known Customer) (string, error) {
	if known.ID != "" {
		return known.ID, nil
	}
	defer timed(ctx, StepCustomer)()
	generation := max(known.KeyGeneration, 1)
	created, err := s.payments.CreateCustomer(ctx, owner, generation)
	if errors.Is(err, ErrKeyPoisoned) {
		if err := s.customers.AdvanceKey(ctx, owner, generation); err != nil {
			s.log.ErrorContext(ctx, "could not advance the customer key; the retry meets the same answer once more",
				slog.String("error", err.Error()))
		}
	}
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
func (s *Service) paymentIntent(ctx context.Context, cartID string, state State) (PaymentIntent, error) {
	defer timed(ctx, StepPaymentIntent)()
	if age := s.now().Sub(state.StartedAt); age >= idempotencyKeyTrusted {
		intent, found, err := s.payments.FindPaymentIntent(ctx, state.GroupIdentifier)
		if err != nil {
			return PaymentIntent{}, fmt.Errorf("look up the payment intent of a checkout started %v ago: %w", age.Round(time.Minute), err)
		}
		if found && (intent.AmountMinor != state.AmountMinor || intent.Currency != state.Currency) {
			// The group's metadata, but not the stored amount: not an intent this checkout can hand out.
			s.log.WarnContext(ctx, "a payment intent of the group is not for its stored amount; ignoring it",
				slog.String("cartId", cartID), slog.String("paymentIntentId", intent.ID))
			found = false
		}
		if found {
			s.log.InfoContext(ctx, "found the payment intent of a checkout older than its idempotency key",
				slog.String("cartId", cartID), slog.String("groupId", state.GroupIdentifier),
				slog.String("paymentIntentId", intent.ID))
			return intent, nil
		}
	}
	return s.payments.CreatePaymentIntent(ctx, paymentIntentRequest(cartID, state))
}

func (s *Service) ephemeralKey(ctx context.Context, customerID string) (string, error) {
	defer timed(ctx, StepEphemeralKey)()
	return s.payments.CreateEphemeralKey(ctx, customerID)
}

// replay answers a checked-out cart again: same group, codes, customer and client secret, and a
// fresh ephemeral key, while its PaymentIntent can still be paid. A paid intent answers
// cart-already-paid, one in progress payment-in-progress, a canceled one releases the checkout.
// A customer Stripe no longer knows cannot get an ephemeral key: its intent is canceled and the
// checkout released, so that the request starts again with a new customer.
func (s *Service) replay(ctx context.Context, owner, cartID string, state State) (Result, error) {
	var (
		intent       PaymentIntent
		ephemeralKey string
		piErr, ekErr error
	)
	s.concurrently(
		func() {
			defer timed(ctx, StepPaymentIntent)()
			intent, piErr = s.payments.GetPaymentIntent(ctx, state.PaymentIntentID)
		},
		func() { ephemeralKey, ekErr = s.ephemeralKey(ctx, state.CustomerID) },
	)
	if piErr != nil {
		return Result{}, fmt.Errorf("read payment intent %s: %w", state.PaymentIntentID, piErr)
	}
	if err := s.payable(ctx, cartID, state, intent); err != nil {
		return Result{}, err
	}
	if errors.Is(ekErr, ErrCustomerMissing) {
		if _, err := s.customers.Replace(ctx, owner, state.CustomerID); err != nil {
			return Result{}, fmt.Errorf("replace stripe customer %s: %w", state.CustomerID, err)
		}
		if _, err := s.release(ctx, cartID, state, ReasonPaymentCanceled); err != nil && !errors.Is(err, ErrCartChanged) {
			return Result{}, err
		}
		return Result{}, errRestart
	}
	if ekErr != nil {
		return Result{}, fmt.Errorf("create ephemeral key: %w", ekErr)
	}
	return Result{
		ClientSecret:    intent.ClientSecret,
		EphemeralKey:    ephemeralKey,
		CustomerID:      state.CustomerID,
		GroupIdentifier: state.GroupIdentifier,
		BookingCodes:    state.BookingCodes,
	}, nil
}

// explainChanged tells why the final update found the cart changed: paid meanwhile; another
// request recorded its intent first or moved the checkout to a new key generation (the request
// starts again and answers what is recorded); released meanwhile (likewise); or a bug.
func (s *Service) explainChanged(ctx context.Context, cartID, groupID string) error {
	cart, err := s.carts.Get(ctx, cartID)
	switch {
	case err == nil && cart.Status == CartPaid:
		return failure(KindAlreadyPaid, "The shopping cart has already been paid.")
	case err == nil && (cart.Status == CartOpen ||
		cart.Checkout != nil && cart.Checkout.GroupIdentifier == groupID):
		return errRestart
	}
	return fmt.Errorf("complete checkout of cart %s: %w", cartID, ErrCartChanged)
}

// metadataValueLimit is Stripe's limit on one metadata value.
const metadataValueLimit = 500

// paymentIntentRequest builds the PaymentIntent parameters from stored state only, so that every
// attempt for a group sends identical parameters under the same idempotency key.
func paymentIntentRequest(cartID string, state State) PaymentIntentRequest {
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
		IdempotencyKey:            PaymentIntentKey(state),
		AmountMinor:               state.AmountMinor,
		Currency:                  state.Currency,
		CustomerID:                state.CustomerID,
		StatementDescriptorSuffix: state.StatementDescriptorSuffix,
		Metadata:                  metadata,
	}
}

// PaymentIntentKey is the idempotency key of the group's PaymentIntent create at the checkout's
// key generation (the first generation's key is the one earlier versions used).
func PaymentIntentKey(state State) string {
	key := "checkout-payment-intent-" + state.GroupIdentifier
	if state.KeyGeneration > 1 {
		key += "-" + strconv.Itoa(state.KeyGeneration)
	}
	return key
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
