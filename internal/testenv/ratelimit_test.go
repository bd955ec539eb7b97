package testenv_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/testenv"
)

// The limiter answers 429 rate_limit beyond either limit without passing the request on, counts
// what it did by endpoint, and admits again once the window has moved past.
func TestStripeRateLimiter(t *testing.T) {
	var reached atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, `{"object":"ok"}`)
	}))
	defer upstream.Close()
	l, err := testenv.NewStripeRateLimiter(upstream.URL, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	l.SetClock(func() time.Time { return at })

	post := func(path string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, l.URL()+path, strings.NewReader("a=1"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotency-Key", "key-"+path) // one key an endpoint: every call after the first repeats it
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(string(body), `"code":"rate_limit"`) {
			t.Errorf("429 body %s, want Stripe's rate_limit error", body)
		}
		return resp.StatusCode
	}
	for i := range 3 {
		if got := post("/v1/customers"); got != 200 {
			t.Fatalf("customer %d: %d, want 200 within the endpoint's limit", i+1, got)
		}
	}
	if got := post("/v1/customers"); got != 429 {
		t.Errorf("a 4th customer in the second: %d, want 429 (3 an endpoint)", got)
	}
	for i := range 2 {
		if got := post("/v1/payment_intents"); got != 200 {
			t.Fatalf("payment intent %d: %d, want 200", i+1, got)
		}
	}
	if got := post("/v1/ephemeral_keys"); got != 429 {
		t.Errorf("a 6th request in the second: %d, want 429 (5 in all)", got)
	}
	if n := reached.Load(); n != 5 {
		t.Errorf("%d requests reached Stripe, want the 5 admitted", n)
	}

	at = at.Add(time.Second + time.Millisecond)
	if got := post("/v1/ephemeral_keys"); got != 200 {
		t.Errorf("a second later: %d, want 200", got)
	}
	want := map[string]testenv.RateCount{
		"POST /v1/customers":       {Passed: 3, Limited: 1, Repeated: 3},
		"POST /v1/payment_intents": {Passed: 2, Repeated: 1},
		"POST /v1/ephemeral_keys":  {Passed: 1, Limited: 1, Repeated: 1},
	}
	got := l.Counts()
	if len(got) != len(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	for route, w := range want {
		if got[route] != w {
			t.Errorf("%s: %+v, want %+v", route, got[route], w)
		}
	}
	l.ResetCounts()
	if n := len(l.Counts()); n != 0 {
		t.Errorf("%d endpoints counted after ResetCounts", n)
	}
}

func TestEndpointNamesObjectsByKind(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/payment_intents":                            "POST /v1/payment_intents",
		"/v1/payment_intents/pi_3MtwBwLkdIwHu7ix/cancel": "POST /v1/payment_intents/{id}/cancel",
		"/v1/customers/cus_NffrFeUfNV2Hib":               "POST /v1/customers/{id}",
		"/v1/payment_intents/search":                     "POST /v1/payment_intents/search",
		"/v1/ephemeral_keys":                             "POST /v1/ephemeral_keys",
	} {
		if got := testenv.Endpoint("POST", path); got != want {
			t.Errorf("Endpoint(%s) = %q, want %q", path, got, want)
		}
	}
}
