package testenv

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// StripeRateLimiter stands in front of Stripe (the layer, or stripe-mock) as Stripe's rate limiter
// does: beyond global requests in any one second, or perEndpoint to one endpoint, it answers 429
// with the code rate_limit and passes nothing on, so Stripe executes nothing and no idempotency
// key stores the answer. Stripe's documented live-mode defaults are 100 requests a second and 25
// a second per endpoint. Only the requests it passes on count against the limits.
type StripeRateLimiter struct {
	srv    *httptest.Server
	proxy  *httputil.ReverseProxy
	now    func() time.Time
	window time.Duration // the limits' window: a second

	global, perEndpoint int

	mu      sync.Mutex
	passed  []time.Time            // the requests passed on in the last second
	byRoute map[string][]time.Time // the same, by endpoint
	counts  map[string]RateCount   // every request since the last ResetCounts, by endpoint
	keys    map[string]bool        // endpoint and Idempotency-Key of every request seen
}

// RateCount is what the limiter did with the requests to one endpoint. Repeated counts the
// requests whose Idempotency-Key the endpoint had already seen (passed or limited): a retry of
// the same request, by stripe-go or by the function.
type RateCount struct {
	Passed, Limited, Repeated int
}

// RateLimitBody is the 429's body, as Stripe words it.
const RateLimitBody = `{"error":{"type":"invalid_request_error","code":"rate_limit",` +
	`"message":"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."}}`

// NewStripeRateLimiter starts the limiter in front of target.
func NewStripeRateLimiter(target string, global, perEndpoint int) (*StripeRateLimiter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	l := &StripeRateLimiter{
		proxy: httputil.NewSingleHostReverseProxy(u), now: time.Now, window: time.Second,
		global: global, perEndpoint: perEndpoint,
		byRoute: map[string][]time.Time{}, counts: map[string]RateCount{}, keys: map[string]bool{},
	}
	l.proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 256, ForceAttemptHTTP2: false}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	return l, nil
}

// URL is the limiter's base URL, for STRIPE_API_BASE.
func (l *StripeRateLimiter) URL() string { return l.srv.URL }

// Close stops the limiter.
func (l *StripeRateLimiter) Close() { l.srv.Close() }

// Counts returns what the limiter did since it started or since the last ResetCounts, by
// endpoint ("POST /v1/payment_intents/{id}/cancel").
func (l *StripeRateLimiter) Counts() map[string]RateCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]RateCount, len(l.counts))
	for k, v := range l.counts {
		out[k] = v
	}
	return out
}

// ResetCounts forgets the counts and the keys seen (not the requests of the last second, which
// still limit).
func (l *StripeRateLimiter) ResetCounts() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts, l.keys = map[string]RateCount{}, map[string]bool{}
}

func (l *StripeRateLimiter) serve(w http.ResponseWriter, r *http.Request) {
	route := Endpoint(r.Method, r.URL.Path)
	if !l.admit(route, r.Header.Get("Idempotency-Key")) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_ratelimited")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(RateLimitBody))
		return
	}
	l.proxy.ServeHTTP(w, r)
}

// admit tells whether a request to route fits in both limits, and counts it.
func (l *StripeRateLimiter) admit(route, key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	since := now.Add(-l.window)
	l.passed = recent(l.passed, since)
	l.byRoute[route] = recent(l.byRoute[route], since)
	c := l.counts[route]
	defer func() { l.counts[route] = c }()
	if key != "" {
		if l.keys[route+" "+key] {
			c.Repeated++
		}
		l.keys[route+" "+key] = true
	}
	if len(l.passed) >= l.global || len(l.byRoute[route]) >= l.perEndpoint {
		c.Limited++
		return false
	}
	c.Passed++
	l.passed = append(l.passed, now)
	l.byRoute[route] = append(l.byRoute[route], now)
	return true
}

// recent drops the times before since from ts, which is in order.
func recent(ts []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(since) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

// objectID is a path segment naming one Stripe object (cus_..., pi_..., ek_...): a short prefix,
// then a part with a digit or a capital, which no resource name ("payment_intents") has.
var objectID = regexp.MustCompile(`^[a-z]{2,8}_[A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*$`)

// Endpoint names the endpoint of a request, its object ids replaced by {id}:
// "POST /v1/payment_intents/{id}/cancel".
func Endpoint(method, path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		if objectID.MatchString(s) {
			segments[i] = "{id}"
		}
	}
	return method + " " + strings.Join(segments, "/")
}
