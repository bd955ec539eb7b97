package payments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
)

// stripeAnswering is a Stripe that answers every call with status and body.
func stripeAnswering(t *testing.T, status int, body string) *Stripe {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	noRetries := int64(0)
	s, err := New(Config{SecretKey: "sk_test_unit", APIBase: srv.URL, EphemeralKeyVersion: "2023-10-16", MaxNetworkRetries: &noRetries})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Stripe refusing the cart itself (its amount, its currency) is told apart from other errors:
// no retry would change it, so checkout answers cart-not-checkoutable instead of a 500.
func TestCreatePaymentIntentRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       error // nil: not a refusal
	}{
		{"amount too small", `{"error":{"type":"invalid_request_error","code":"amount_too_small","param":"amount","message":"Amount must convert to at least 50 cents."}}`, checkout.ErrAmountTooSmall},
		{"amount too large", `{"error":{"type":"invalid_request_error","code":"amount_too_large","param":"amount","message":"Amount must be no more than 999,999.99"}}`, checkout.ErrAmountTooLarge},
		{"currency", `{"error":{"type":"invalid_request_error","param":"currency","message":"Invalid currency: irr."}}`, checkout.ErrCurrencyRefused},
		{"another parameter", `{"error":{"type":"invalid_request_error","param":"customer","message":"No such customer: 'cus_x'"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stripeAnswering(t, 400, tc.body)
			_, err := s.CreatePaymentIntent(context.Background(), checkout.PaymentIntentRequest{
				IdempotencyKey: "k", AmountMinor: 100, Currency: "EUR", CustomerID: "cus_x"})
			refusals := []error{checkout.ErrAmountTooSmall, checkout.ErrAmountTooLarge, checkout.ErrCurrencyRefused}
			for _, r := range refusals {
				if errors.Is(err, r) != (r == tc.want) {
					t.Errorf("error %v: errors.Is(%v) = %v", err, r, errors.Is(err, r))
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// A Stripe error can embed the PaymentIntent it concerns, client secret included; the error's
// text, which the function logs, must not carry it.
func TestStripeErrorsCarryNoClientSecret(t *testing.T) {
	s := stripeAnswering(t, 400, `{"error":{"type":"invalid_request_error","code":"payment_intent_unexpected_state",
		"message":"unexpected state","payment_intent":{"id":"pi_1","object":"payment_intent","client_secret":"pi_1_secret_MUSTNOTLEAK"}}}`)
	_, err := s.GetPaymentIntent(context.Background(), "pi_1")
	if err == nil || !strings.Contains(err.Error(), "unexpected state") {
		t.Fatalf("error %v, want Stripe's", err)
	}
	if strings.Contains(err.Error(), "MUSTNOTLEAK") {
		t.Errorf("the error's text carries the client secret: %v", err)
	}
}

// A panic in a Stripe call is raised again on the caller's goroutine; if the caller has gone (its
// deadline ended), it is logged instead of ending the process.
func TestWithinDeadlinePanics(t *testing.T) {
	t.Run("caller waiting", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "boom in a call") {
				t.Errorf("recovered %v, want the call's panic", r)
			}
		}()
		_, _ = withinDeadline(context.Background(), func() (int, error) { panic("boom in a call") })
	})

	t.Run("caller gone", func(t *testing.T) {
		logged := lineWriter(make(chan string, 16))
		previous := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(logged, nil)))
		t.Cleanup(func() { slog.SetDefault(previous) })

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		release := make(chan struct{})
		_, err := withinDeadline(ctx, func() (int, error) {
			<-release
			panic("boom after the deadline")
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the context's", err)
		}
		close(release)
		select {
		case line := <-logged:
			if !strings.Contains(line, "boom after the deadline") {
				t.Errorf("logged %q, want the panic", line)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the panic was never logged")
		}
	})
}

// lineWriter hands every write (one log record) to whoever waits for it.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// The Stripe answers the checkout acts on: a create answer Stripe stores with its key (a 5xx, an
// idempotency_error) poisons the key; a concurrent use of the key (409) does not, nor does a
// network failure; a customer Stripe does not know is told apart.
func TestClassifiesStripeErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error // nil: neither
	}{
		{"500 stored with the key", 500, `{"error":{"type":"api_error","message":"An unknown error occurred"}}`, checkout.ErrKeyPoisoned},
		{"503", 503, `{"error":{"type":"api_error","message":"unavailable"}}`, checkout.ErrKeyPoisoned},
		{"reused with other parameters", 400, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}`, checkout.ErrKeyPoisoned},
		{"in use by a running request", 409, `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this key."}}`, nil},
		{"deleted customer", 400, `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"customer","message":"No such customer: 'cus_x'"}}`, checkout.ErrCustomerMissing},
		{"customer of the other mode", 400, `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"customer","message":"No such customer: 'cus_x'; a similar object exists in live mode, but a test mode key was used to make this request."}}`, checkout.ErrCustomerMissing},
		{"another missing resource", 400, `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod"}}`, nil},
		{"rate limited", 429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stripeAnswering(t, tc.status, tc.body)
			ctx := context.Background()
			_, piErr := s.CreatePaymentIntent(ctx, checkout.PaymentIntentRequest{IdempotencyKey: "k", AmountMinor: 100, Currency: "EUR", CustomerID: "cus_x"})
			_, cusErr := s.CreateCustomer(ctx, "owner", 1)
			_, ekErr := s.CreateEphemeralKey(ctx, "cus_x")
			for what, err := range map[string]error{"payment intent": piErr, "customer": cusErr, "ephemeral key": ekErr} {
				if err == nil {
					t.Fatalf("%s: no error", what)
				}
				for _, kind := range []error{checkout.ErrKeyPoisoned, checkout.ErrCustomerMissing} {
					if errors.Is(err, kind) != (kind == tc.want) {
						t.Errorf("%s: %v: errors.Is(%v) = %v", what, err, kind, errors.Is(err, kind))
					}
				}
			}
		})
	}
	// No answer at all: Stripe may have done the work, and the key must be replayed.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	defer srv.Close()
	noRetries := int64(0)
	s, err := New(Config{SecretKey: "sk_test_unit", APIBase: srv.URL, EphemeralKeyVersion: "2023-10-16", MaxNetworkRetries: &noRetries})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCustomer(context.Background(), "owner", 1); err == nil || errors.Is(err, checkout.ErrKeyPoisoned) {
		t.Errorf("a lost answer: %v, want an error that keeps the key", err)
	}
}

// Cancel: Stripe's refusal to cancel an intent that succeeded, is processing or is canceled
// already is not an error; the intent is read and returned as it stands.
func TestCancelPaymentIntentOfAnUncancelableIntent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "POST" {
			if err := r.ParseForm(); err != nil || r.PostForm.Get("cancellation_reason") != "abandoned" {
				t.Errorf("cancel form %v (%v), want cancellation_reason abandoned", r.PostForm, err)
			}
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"payment_intent_unexpected_state","message":"You cannot cancel this PaymentIntent because it has a status of succeeded."}}`)
			return
		}
		io.WriteString(w, `{"id":"pi_1","object":"payment_intent","status":"succeeded","client_secret":"pi_1_secret_x"}`)
	}))
	defer srv.Close()
	s, err := New(Config{SecretKey: "sk_test_unit", APIBase: srv.URL, EphemeralKeyVersion: "2023-10-16"})
	if err != nil {
		t.Fatal(err)
	}
	pi, err := s.CancelPaymentIntent(context.Background(), "pi_1")
	if err != nil || pi.Status != checkout.PaymentSucceeded {
		t.Fatalf("cancel of a succeeded intent: %+v %v, want it returned as succeeded", pi, err)
	}
}

// Only what can be a Stripe secret or restricted key passes the cold start; the error never
// quotes the value.
func TestCheckSecretKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"sk_test_4eC39HqLyjWDarjtT1zdp7dc": true,
		"sk_live_51Habc":                   true,
		"rk_live_51Habc":                   true,
		"":                                 false,
		"pk_live_51Habc":                   false,
		`{"key":"sk_live_51Habc"}`:         false,
		"sk_live_51Habc extra":             false,
		"whsec_51Habc":                     false,
	} {
		err := CheckSecretKey(key)
		if (err == nil) != ok {
			t.Errorf("CheckSecretKey(%q) = %v, want ok=%v", key, err, ok)
		}
		if err != nil && key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}
