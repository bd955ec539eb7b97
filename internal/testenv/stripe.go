package testenv

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
)

// StripeRecorder sits between the function and stripe-mock: it records every request that
// reaches it, and can fail, stall or rewrite calls to play Stripe's bad days.
type StripeRecorder struct {
	srv       *httptest.Server
	mu        sync.Mutex
	requests  []StripeRequest
	intercept func(method, path string) (status int, body string)
	stall     func(method, path string) bool
	rewrite   func(method, path string, body []byte) []byte
	observe   func(method, path string)
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

// NewStripeRecorder starts a recorder forwarding to stripe-mock at target.
func NewStripeRecorder(target string) (*StripeRecorder, error) {
	to, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	r := &StripeRecorder{}
	proxy := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(to) },
		ModifyResponse: r.modifyResponse,
		// A caller giving up (a stalled call, a deadline) is part of the tests, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.requests = append(r.requests, StripeRequest{
			Method: req.Method, Path: req.URL.Path,
			IdempotencyKey: req.Header.Get("Idempotency-Key"),
			StripeVersion:  req.Header.Get("Stripe-Version"),
			Authorization:  req.Header.Get("Authorization"),
			Form:           form,
			Query:          req.URL.Query(),
		})
		intercept, stall, observe := r.intercept, r.stall, r.observe
		r.mu.Unlock()
		if observe != nil {
			observe(req.Method, req.URL.Path)
		}
		if stall != nil && stall(req.Method, req.URL.Path) {
			<-req.Context().Done()
			return
		}
		if intercept != nil {
			if status, body := intercept(req.Method, req.URL.Path); status != 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				io.WriteString(w, body)
				return
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	return r, nil
}

func (r *StripeRecorder) modifyResponse(resp *http.Response) error {
	r.mu.Lock()
	rewrite := r.rewrite
	r.mu.Unlock()
	if rewrite == nil {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	body = rewrite(resp.Request.Method, resp.Request.URL.Path, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// URL is the recorder's base URL, the function's STRIPE_API_BASE.
func (r *StripeRecorder) URL() string { return r.srv.URL }

// Close stops the recorder.
func (r *StripeRecorder) Close() { r.srv.Close() }

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

// SetUnavailable makes Stripe answer 503 to the calls f selects (nil: none).
func (r *StripeRecorder) SetUnavailable(f func(method, path string) bool) {
	r.SetIntercept(func(method, path string) (int, string) {
		if f != nil && f(method, path) {
			return http.StatusServiceUnavailable, `{"error":{"type":"api_error","message":"unavailable"}}`
		}
		return 0, ""
	})
}

// SetIntercept answers the calls for which f returns a status with that status and body.
func (r *StripeRecorder) SetIntercept(f func(method, path string) (int, string)) {
	r.mu.Lock()
	r.intercept = f
	r.mu.Unlock()
}

// SetStall holds the calls f selects until the client gives up (a hung Stripe).
func (r *StripeRecorder) SetStall(f func(method, path string) bool) {
	r.mu.Lock()
	r.stall = f
	r.mu.Unlock()
}

// SetRewrite lets f change stripe-mock's response bodies.
func (r *StripeRecorder) SetRewrite(f func(method, path string, body []byte) []byte) {
	r.mu.Lock()
	r.rewrite = f
	r.mu.Unlock()
}

// SetObserve calls f for every request as it arrives (before any stall or intercept), e.g. to
// inject a fault elsewhere at that step of the flow.
func (r *StripeRecorder) SetObserve(f func(method, path string)) {
	r.mu.Lock()
	r.observe = f
	r.mu.Unlock()
}
