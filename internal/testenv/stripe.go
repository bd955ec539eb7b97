package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// StripeRecorder sits between the function and stripe-mock: it records every request that
// reaches it, can fail, stall or rewrite calls to play Stripe's bad days, and gives the answers
// Stripe's semantics that stripe-mock lacks (idempotency keys, objects with state). See
// docs/stripe-test-layer.md.
//
// A request goes through, in order: recording, the SetObserve hook, the idempotency layer
// (replay, or refusal of a key in use or reused with other parameters), the SetStall hook, the
// SetIntercept hook, the object-state checks, stripe-mock (which validates the parameters
// against Stripe's OpenAPI spec), the rewriting of its answer with the layer's state, the
// SetRewrite hook, and the storing of the answer under the request's idempotency key.
type StripeRecorder struct {
	srv    *httptest.Server
	target *url.URL
	client *http.Client

	mu        sync.Mutex // guards requests and the hooks
	requests  []StripeRequest
	forget    bool // keep no requests (a long-running local server)
	intercept func(method, path string) (status int, body string)
	stall     func(method, path string) bool
	rewrite   func(method, path string, body []byte) []byte
	observe   func(method, path string)

	keys  idempotencyKeys
	state stripeState
}

// StripeRequest is one recorded call.
type StripeRequest struct {
	Method, Path   string
	IdempotencyKey string
	StripeVersion  string
	Authorization  string
	Form           url.Values // the form body
	Query          url.Values // the URL's query
}

// stripeCall is what the layer needs of a request once it is read.
type stripeCall struct {
	method, path string
	form, query  url.Values
	key          string // the Idempotency-Key header
}

// stripeAnswer is an answer of the layer, as it is written and as an idempotency key stores it.
type stripeAnswer struct {
	status int
	header http.Header
	body   []byte
	// forwarded says stripe-mock answered the request: the SetRewrite hook applies.
	forwarded bool
	// unreached says stripe-mock could not be reached: Stripe did not execute anything.
	unreached bool
}

// NewStripeLayer starts the layer in front of stripe-mock at target without recording the
// requests: Stripe's semantics for a long-running local server (`make run`), whose memory must
// not grow with every call. Idempotency keys and objects are kept, as Stripe keeps them.
func NewStripeLayer(target string) (*StripeRecorder, error) {
	r, err := NewStripeRecorder(target)
	if err == nil {
		r.forget = true
	}
	return r, err
}

// NewStripeRecorder starts a recorder forwarding to stripe-mock at target.
func NewStripeRecorder(target string) (*StripeRecorder, error) {
	to, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	r := &StripeRecorder{
		target: to,
		// A bound in case stripe-mock hangs; it answers in milliseconds.
		client: &http.Client{Timeout: 30 * time.Second},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r, nil
}

func (r *StripeRecorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(body))
	c := &stripeCall{
		method: req.Method, path: req.URL.Path,
		form: form, query: req.URL.Query(),
		key: req.Header.Get("Idempotency-Key"),
	}
	r.mu.Lock()
	if !r.forget {
		r.requests = append(r.requests, StripeRequest{
			Method: req.Method, Path: req.URL.Path,
			IdempotencyKey: c.key,
			StripeVersion:  req.Header.Get("Stripe-Version"),
			Authorization:  req.Header.Get("Authorization"),
			Form:           form,
			Query:          c.query,
		})
	}
	observe := r.observe
	r.mu.Unlock()
	if observe != nil {
		observe(req.Method, req.URL.Path)
	}

	// Stripe takes idempotency keys on POST only: on GET and DELETE they have no effect.
	if c.key == "" || req.Method != http.MethodPost {
		if a := r.execute(req, c, body); a != nil {
			writeAnswer(w, a, "")
		}
		return
	}
	id := idempotencyID{authorization: req.Header.Get("Authorization"), key: c.key}
	held, early := r.keys.begin(id, req.Method+" "+req.URL.RequestURI()+"\n"+string(body))
	if early != nil {
		writeAnswer(w, early, c.key)
		return
	}
	a := r.execute(req, c, body)
	r.keys.finish(id, held, a)
	if a != nil {
		writeAnswer(w, a, c.key)
	}
}

// execute answers a request past the idempotency layer; nil if it stalled until the client
// gave up.
func (r *StripeRecorder) execute(req *http.Request, c *stripeCall, body []byte) *stripeAnswer {
	r.mu.Lock()
	intercept, stall, rewrite := r.intercept, r.stall, r.rewrite
	r.mu.Unlock()
	if stall != nil && stall(c.method, c.path) {
		<-req.Context().Done()
		return nil
	}
	if intercept != nil {
		if status, body := intercept(c.method, c.path); status != 0 {
			return jsonAnswer(status, []byte(body))
		}
	}
	a := r.state.serve(c, func() *stripeAnswer { return r.forward(req, body) })
	if a.forwarded && rewrite != nil {
		a.body = rewrite(c.method, c.path, a.body)
	}
	return a
}

// forward sends the request to stripe-mock and reads its whole answer.
func (r *StripeRecorder) forward(req *http.Request, body []byte) *stripeAnswer {
	to := *r.target
	to.Path = req.URL.Path
	to.RawQuery = req.URL.RawQuery
	// Stripe finishes what it started when the client hangs up, and so does stripe-mock here:
	// the answer is then stored under the idempotency key, as Stripe would.
	out, err := http.NewRequestWithContext(context.WithoutCancel(req.Context()), req.Method, to.String(), bytes.NewReader(body))
	if err != nil {
		return unreachedAnswer(err)
	}
	out.Header = req.Header.Clone()
	resp, err := r.client.Do(out)
	if err != nil {
		return unreachedAnswer(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return unreachedAnswer(err)
	}
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Request-Id"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return &stripeAnswer{status: resp.StatusCode, header: h, body: answer, forwarded: true}
}

func unreachedAnswer(err error) *stripeAnswer {
	a := errorAnswer(http.StatusBadGateway, stripeError{Type: "api_error", Message: "stripe-mock unreachable: " + err.Error()})
	a.unreached = true
	return a
}

func jsonAnswer(status int, body []byte) *stripeAnswer {
	return &stripeAnswer{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: body}
}

func writeAnswer(w http.ResponseWriter, a *stripeAnswer, key string) {
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	if key != "" {
		h.Set("Idempotency-Key", key) // Stripe echoes the key
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	// A client that gave up gets nothing; that is the point of the tests that make it give up.
	_, _ = w.Write(a.body)
}

// URL is the recorder's base URL, the function's STRIPE_API_BASE.
func (r *StripeRecorder) URL() string { return r.srv.URL }

// Close stops the recorder.
func (r *StripeRecorder) Close() {
	r.srv.Close()
	r.client.CloseIdleConnections()
}

// Calls returns the recorded requests to method and path.
func (r *StripeRecorder) Calls(method, path string) []StripeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StripeRequest
	for _, req := range r.requests {
		if req.Method == method && req.Path == path {
			out = append(out, req)
		}
	}
	return out
}

// SetUnavailable makes Stripe answer 503 to the calls f selects (nil: none). A 503 is Stripe
// refusing before executing: it is not stored under the idempotency key.
func (r *StripeRecorder) SetUnavailable(f func(method, path string) bool) {
	r.SetIntercept(func(method, path string) (int, string) {
		if f != nil && f(method, path) {
			return http.StatusServiceUnavailable, `{"error":{"type":"api_error","message":"unavailable"}}`
		}
		return 0, ""
	})
}

// SetIntercept answers the calls for which f returns a status with that status and body. The
// answer is stored under the request's idempotency key if Stripe would store it (a 500, a 402
// or a 2xx: see docs/stripe-test-layer.md).
func (r *StripeRecorder) SetIntercept(f func(method, path string) (int, string)) {
	r.mu.Lock()
	r.intercept = f
	r.mu.Unlock()
}

// SetStall holds the calls f selects until the client gives up (a hung Stripe). A stalled
// call holds its idempotency key meanwhile, and stores nothing.
func (r *StripeRecorder) SetStall(f func(method, path string) bool) {
	r.mu.Lock()
	r.stall = f
	r.mu.Unlock()
}

// SetRewrite lets f change the bodies of the answers that went through stripe-mock, after the
// layer has put its state in them.
func (r *StripeRecorder) SetRewrite(f func(method, path string, body []byte) []byte) {
	r.mu.Lock()
	r.rewrite = f
	r.mu.Unlock()
}

// SetObserve calls f for every request as it arrives (before the idempotency layer and any
// stall or intercept), e.g. to inject a fault elsewhere at that step of the flow.
func (r *StripeRecorder) SetObserve(f func(method, path string)) {
	r.mu.Lock()
	r.observe = f
	r.mu.Unlock()
}

// ForgetIdempotencyKeys drops every stored idempotency key, as Stripe does once a key is 24
// hours old.
func (r *StripeRecorder) ForgetIdempotencyKeys() { r.keys.forget() }
