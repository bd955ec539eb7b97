package payments

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// stripeCounting answers every call with status, body and header, and counts the calls.
func stripeCounting(t *testing.T, status int, body string, header map[string]string) (*Stripe, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	s, err := New(Config{SecretKey: "sk_test_unit", APIBase: srv.URL, EphemeralKeyVersion: "2023-10-16"}) // production retries
	if err != nil {
		t.Fatal(err)
	}
	return s, &calls
}

// Under Stripe's rate limit the adapter sends each call once: stripe-go would retry a 429 that
// says Stripe-Should-Retry: true or whose code is lock_timeout (twice by default), adding to the
// load being refused. Other failures stripe-go retries are retried once, not twice.
func TestRetriesNeverMultiplyTheLoad(t *testing.T) {
	const rateLimited = `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests hit the API too quickly."}}`
	const lockTimeout = `{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"This object cannot be accessed right now."}}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header map[string]string
		calls  int64
	}{
		{"429 rate_limit", 429, rateLimited, nil, 1},
		{"429 rate_limit asking for a retry", 429, rateLimited, map[string]string{"Stripe-Should-Retry": "true"}, 1},
		{"429 lock_timeout", 429, lockTimeout, nil, 1},
		{"503", 503, `{"error":{"type":"api_error","message":"unavailable"}}`, nil, 2},
		{"409 idempotency key in use", 409, `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"in use"}}`, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, calls := stripeCounting(t, tc.status, tc.body, tc.header)
			if _, err := s.CreateCustomer(context.Background(), "traveller-r", 1); err == nil {
				t.Fatal("no error")
			}
			if got := calls.Load(); got != tc.calls {
				t.Errorf("%d calls reached Stripe, want %d", got, tc.calls)
			}
		})
	}
}
