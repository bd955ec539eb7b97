// Package payments implements the checkout's Payments port with stripe-go.
package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/ephemeralkey"
	"github.com/stripe/stripe-go/v76/paymentintent"
	"github.com/stripe/stripe-go/v76/refund"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/rescue"
)

// Config configures the Stripe adapter.
type Config struct {
	SecretKey string
	// APIBase overrides Stripe's API URL (stripe-mock locally); empty means api.stripe.com.
	APIBase string
	// EphemeralKeyVersion is the Stripe API version of the mobile SDK that uses the ephemeral key.
	EphemeralKeyVersion string
	// HTTPClient defaults to a client that keeps connections alive between invocations.
	HTTPClient *http.Client
	// MaxNetworkRetries for stripe-go's own retries with backoff; nil is DefaultMaxNetworkRetries.
	MaxNetworkRetries *int64
}

// Stripe is the Payments adapter.
type Stripe struct {
	intents             paymentintent.Client
	customers           customer.Client
	ephemeralKeys       ephemeralkey.Client
	refunds             refund.Client
	ephemeralKeyVersion string
}

var _ checkout.Payments = (*Stripe)(nil)

// New returns the Stripe adapter.
func New(cfg Config) (*Stripe, error) {
	if err := CheckSecretKey(cfg.SecretKey); err != nil {
		return nil, err
	}
	if cfg.EphemeralKeyVersion == "" {
		return nil, errors.New("stripe ephemeral key version is empty")
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = NewHTTPClient(NewTransport())
	}
	retries := cfg.MaxNetworkRetries
	if retries == nil {
		retries = stripe.Int64(DefaultMaxNetworkRetries)
	}
	backendConfig := &stripe.BackendConfig{
		HTTPClient:        httpClient,
		MaxNetworkRetries: retries,
		// The adapter's callers log failures with their context; stripe-go's own logger would
		// print to stderr outside the structured log.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	backendConfig.URL = stripe.String(BaseURL(cfg.APIBase))
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, backendConfig)
	return &Stripe{
		intents:             paymentintent.Client{B: backend, Key: cfg.SecretKey},
		customers:           customer.Client{B: backend, Key: cfg.SecretKey},
		ephemeralKeys:       ephemeralkey.Client{B: backend, Key: cfg.SecretKey},
		refunds:             refund.Client{B: backend, Key: cfg.SecretKey},
		ephemeralKeyVersion: cfg.EphemeralKeyVersion,
	}, nil
}

// DefaultMaxNetworkRetries is how often stripe-go retries a call that failed on the network, or
// that Stripe answered 409, 503 or (asking for it) with Stripe-Should-Retry: once, not stripe-go's
// two. Every create carries its idempotency key, so a retry is safe; one retry still rides out a
// dropped connection within the checkout's deadline, and a second would mostly add load when
// Stripe is struggling. A 429 is never retried (NewHTTPClient).
const DefaultMaxNetworkRetries = 1

// NewHTTPClient is the HTTP client of the Stripe adapter: it keeps connections alive between
// invocations (so that connections opened in init serve the first request) and marks every 429
// answer Stripe-Should-Retry: false. stripe-go retries a 429 whose code is lock_timeout or that
// carries Stripe-Should-Retry: true; under Stripe's rate limit a retry inside the request only
// adds to the load that is being refused. The checkout answers 500 instead, and its retry,
// seconds later from the app, replays the same idempotency keys (a 429 stores nothing under them).
func NewHTTPClient(transport *http.Transport) *http.Client {
	return &http.Client{Transport: noRetryOn429{transport}}
}

// NewTransport is the transport of NewHTTPClient: Go's default one, keeping enough idle
// connections for the concurrent requests of the local server.
func NewTransport() *http.Transport {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	return transport
}

// noRetryOn429 tells stripe-go never to retry a 429.
type noRetryOn429 struct{ next http.RoundTripper }

func (t noRetryOn429) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		resp.Header.Set("Stripe-Should-Retry", "false")
	}
	return resp, err
}

// BaseURL is the Stripe API URL the adapter calls: apiBase (stripe-mock locally), or Stripe's.
func BaseURL(apiBase string) string {
	if apiBase == "" {
		return stripe.APIURL
	}
	return strings.TrimRight(apiBase, "/")
}

// CheckSecretKey refuses what cannot be a Stripe secret or restricted key (a publishable pk_ key,
// a JSON document, a key with spaces), so that a wrong secret fails the cold start instead of
// every request. The error never quotes the value.
func CheckSecretKey(key string) error {
	if key == "" {
		return errors.New("stripe secret key is empty")
	}
	if !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_") {
		return errors.New("stripe secret key must be a secret (sk_) or restricted (rk_) API key")
	}
	for _, r := range key {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_') {
			return errors.New("stripe secret key has characters no Stripe key has")
		}
	}
	return nil
}

// CreateCustomer creates the traveller's customer under an idempotency key derived from the owner
// and the key generation.
func (s *Stripe) CreateCustomer(ctx context.Context, owner string, generation int) (string, error) {
	params := &stripe.CustomerParams{}
	params.Context = ctx
	params.AddMetadata("ownerIdentifier", owner)
	params.SetIdempotencyKey(CustomerIdempotencyKey(owner, generation))
	c, err := withinDeadline(ctx, func() (*stripe.Customer, error) { return s.customers.New(params) })
	if err != nil {
		return "", classify(err)
	}
	return c.ID, nil
}

// CustomerIdempotencyKey derives the customer-create idempotency key from the owner and the key
// generation (the first generation's key is the one earlier versions used). It is a hash, so
// that any identity fits Stripe's 255-character limit.
func CustomerIdempotencyKey(owner string, generation int) string {
	sum := sha256.Sum256([]byte(owner))
	key := "checkout-customer-" + hex.EncodeToString(sum[:16])
	if generation > 1 {
		key += "-" + strconv.Itoa(generation)
	}
	return key
}

// classify marks the Stripe errors the checkout acts on: a create answer Stripe stores with its
// idempotency key (a 5xx, an idempotency_error other than a concurrent use of the key) and a
// customer Stripe does not know. A network failure stays as it is: Stripe may have done the work,
// and the retry must replay the key.
func classify(err error) error {
	var stripeErr *stripe.Error
	if !errors.As(err, &stripeErr) {
		return err
	}
	switch {
	case stripeErr.HTTPStatusCode >= 500,
		stripeErr.Type == stripe.ErrorTypeIdempotency && stripeErr.Code != errorCodeIdempotencyKeyInUse:
		return fmt.Errorf("%w: %w", checkout.ErrKeyPoisoned, err)
	case stripeErr.Code == stripe.ErrorCodeResourceMissing && stripeErr.Param == "customer":
		return fmt.Errorf("%w: %w", checkout.ErrCustomerMissing, err)
	}
	return err
}

// errorCodeIdempotencyKeyInUse is the code of Stripe's 409 for a key in use by a request still
// running; that answer is not stored, and the key stays good.
const errorCodeIdempotencyKeyInUse stripe.ErrorCode = "idempotency_key_in_use"

// CreatePaymentIntent creates (or, for a repeated idempotency key, returns) the PaymentIntent.
func (s *Stripe) CreatePaymentIntent(ctx context.Context, req checkout.PaymentIntentRequest) (checkout.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{
		Amount:   stripe.Int64(req.AmountMinor),
		Currency: stripe.String(strings.ToLower(req.Currency)),
		Customer: stripe.String(req.CustomerID),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{
			Enabled: stripe.Bool(true),
		},
	}
	if req.StatementDescriptorSuffix != "" {
		params.StatementDescriptorSuffix = stripe.String(req.StatementDescriptorSuffix)
	}
	params.Context = ctx
	params.SetIdempotencyKey(req.IdempotencyKey)
	for key, value := range req.Metadata {
		params.AddMetadata(key, value)
	}
	pi, err := withinDeadline(ctx, func() (*stripe.PaymentIntent, error) { return s.intents.New(params) })
	if refused := refusal(err); refused != nil {
		return checkout.PaymentIntent{}, refused
	}
	if err != nil {
		return checkout.PaymentIntent{}, classify(err)
	}
	return paymentIntent(pi)
}

// refusal tells Stripe refusing the cart as it is (its amount, its currency), which no retry
// changes, apart from other errors; nil for those.
func refusal(err error) error {
	var stripeErr *stripe.Error
	if !errors.As(err, &stripeErr) {
		return nil
	}
	var kind error
	switch {
	case stripeErr.Code == stripe.ErrorCodeAmountTooSmall:
		kind = checkout.ErrAmountTooSmall
	case stripeErr.Code == stripe.ErrorCodeAmountTooLarge:
		kind = checkout.ErrAmountTooLarge
	case stripeErr.Type == stripe.ErrorTypeInvalidRequest && stripeErr.Param == "currency":
		kind = checkout.ErrCurrencyRefused
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", kind, stripeErr.Msg)
}

// GetPaymentIntent reads a PaymentIntent.
func (s *Stripe) GetPaymentIntent(ctx context.Context, id string) (checkout.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := withinDeadline(ctx, func() (*stripe.PaymentIntent, error) { return s.intents.Get(id, params) })
	if err != nil {
		return checkout.PaymentIntent{}, err
	}
	return paymentIntent(pi)
}

// CancelPaymentIntent cancels an intent as abandoned. Stripe refuses to cancel an intent that
// succeeded, is processing or is canceled already (payment_intent_unexpected_state): then the
// intent is read and returned as it stands.
func (s *Stripe) CancelPaymentIntent(ctx context.Context, id string) (checkout.PaymentIntent, error) {
	params := &stripe.PaymentIntentCancelParams{
		CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned)),
	}
	params.Context = ctx
	pi, err := withinDeadline(ctx, func() (*stripe.PaymentIntent, error) { return s.intents.Cancel(id, params) })
	var stripeErr *stripe.Error
	if errors.As(err, &stripeErr) && stripeErr.Code == stripe.ErrorCodePaymentIntentUnexpectedState {
		return s.GetPaymentIntent(ctx, id)
	}
	if err != nil {
		return checkout.PaymentIntent{}, err
	}
	return paymentIntent(pi)
}

// FindPaymentIntent searches the PaymentIntents whose groupIdentifier metadata is groupID and
// returns one that is not canceled.
func (s *Stripe) FindPaymentIntent(ctx context.Context, groupID string) (checkout.PaymentIntent, bool, error) {
	params := &stripe.PaymentIntentSearchParams{}
	params.Context = ctx
	params.Query = "metadata['groupIdentifier']:'" + searchQuoter.Replace(groupID) + "'"
	params.Limit = stripe.Int64(10)
	params.Single = true
	found, err := withinDeadline(ctx, func() (*stripe.PaymentIntent, error) {
		iter := s.intents.Search(params)
		for iter.Next() {
			pi := iter.PaymentIntent()
			// Search matches what Stripe indexed; check the one field that matters exactly.
			if pi.Metadata["groupIdentifier"] == groupID && pi.Status != stripe.PaymentIntentStatusCanceled {
				return pi, nil
			}
		}
		return nil, iter.Err()
	})
	if err != nil || found == nil {
		return checkout.PaymentIntent{}, false, err
	}
	intent, err := paymentIntent(found)
	return intent, err == nil, err
}

// searchQuoter escapes a value for a quoted string of Stripe's search query language.
var searchQuoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

func paymentIntent(pi *stripe.PaymentIntent) (checkout.PaymentIntent, error) {
	if pi.ID == "" || pi.ClientSecret == "" {
		return checkout.PaymentIntent{}, errors.New("stripe returned a payment intent without id or client secret")
	}
	return Intent(pi), nil
}

// Intent is what checkout knows of a Stripe PaymentIntent, from an API answer or a webhook
// event's object.
func Intent(pi *stripe.PaymentIntent) checkout.PaymentIntent {
	return checkout.PaymentIntent{
		ID:                     pi.ID,
		ClientSecret:           pi.ClientSecret,
		Status:                 checkout.PaymentStatus(pi.Status),
		AmountMinor:            pi.Amount,
		Currency:               strings.ToUpper(string(pi.Currency)),
		GroupIdentifier:        pi.Metadata["groupIdentifier"],
		ShoppingCartIdentifier: pi.Metadata["shoppingCartIdentifier"],
	}
}

// RefundPaymentIntent refunds a succeeded intent in full under a key derived from it, so that
// concurrent deliveries of one event make one refund. If Stripe stored an error with that key,
// the refund is sent once more under a key of stripe-go's: Stripe never refunds more than was
// paid, so a second key cannot refund twice.
func (s *Stripe) RefundPaymentIntent(ctx context.Context, id string) error {
	refund := func(key string) error {
		params := &stripe.RefundParams{PaymentIntent: stripe.String(id)}
		params.Context = ctx
		params.AddMetadata("reason", "automatic refund: the payment was not for a pending checkout")
		if key != "" {
			params.SetIdempotencyKey(key)
		}
		_, err := withinDeadline(ctx, func() (*stripe.Refund, error) { return s.refunds.New(params) })
		var stripeErr *stripe.Error
		if errors.As(err, &stripeErr) && stripeErr.Code == stripe.ErrorCodeChargeAlreadyRefunded {
			return nil
		}
		return classify(err)
	}
	err := refund("checkout-refund-" + id)
	if errors.Is(err, checkout.ErrKeyPoisoned) {
		err = refund("")
	}
	return err
}

// CreateEphemeralKey creates an ephemeral key for the customer and returns its secret.
func (s *Stripe) CreateEphemeralKey(ctx context.Context, customerID string) (string, error) {
	params := &stripe.EphemeralKeyParams{
		Customer:      stripe.String(customerID),
		StripeVersion: stripe.String(s.ephemeralKeyVersion),
	}
	params.Context = ctx
	key, err := withinDeadline(ctx, func() (*stripe.EphemeralKey, error) { return s.ephemeralKeys.New(params) })
	if err != nil {
		return "", classify(err)
	}
	if key.Secret == "" {
		return "", fmt.Errorf("stripe returned ephemeral key %s without a secret", key.ID)
	}
	return key.Secret, nil
}

// withinDeadline returns call's result, or ctx's error as soon as ctx ends. stripe-go sleeps
// between its network retries without looking at the request's context, which could keep the
// function past Lambda's deadline; an abandoned call's next attempt fails at once, its request
// carrying the ended context.
//
// A panic in call is raised again on the caller's goroutine, or logged if the caller has gone.
// A Stripe error loses the objects it may embed (a PaymentIntent and its client secret): its
// text reaches the function's log.
func withinDeadline[T any](ctx context.Context, call func() (T, error)) (T, error) {
	type result struct {
		value T
		err   error
		panic *rescue.Panic
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.panic = rescue.Run(func() { r.value, r.err = call() })
		done <- r
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			panic(r.panic)
		}
		var stripeErr *stripe.Error
		if errors.As(r.err, &stripeErr) {
			stripeErr.PaymentIntent, stripeErr.SetupIntent, stripeErr.PaymentMethod, stripeErr.Source = nil, nil, nil, nil
		}
		return r.value, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.panic != nil {
				slog.Error("a Stripe call panicked after the request gave up on it", slog.String("panic", r.panic.String()))
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}
