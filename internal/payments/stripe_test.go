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
