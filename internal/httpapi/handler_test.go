package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

// fakeCheckout records the request it got and answers what the test set.
type fakeCheckout struct {
	got      *checkout.Request
	deadline time.Time
	result   checkout.Result
	err      error
	panic    bool
}

// someResult is what fakeCheckout answers when the test set no result: a complete one, as the
// use case always gives.
var someResult = checkout.Result{ClientSecret: "pi_1_secret_2", EphemeralKey: "ek_test_1", CustomerID: "cus_1", GroupIdentifier: "g", BookingCodes: []string{"WK-00000000"}}

func (f *fakeCheckout) Checkout(ctx context.Context, req checkout.Request) (checkout.Result, error) {
	f.got = &req
	f.deadline, _ = ctx.Deadline()
	if f.panic {
		panic("boom")
	}
	if f.err == nil && f.result.ClientSecret == "" {
		return someResult, nil
	}
	return f.result, f.err
}

const validBody = `{"shoppingCartIdentifier":"cart-1","redirectUrl":"https://book.example.com/thanks"}`

func event(body string, headers map[string]string) events.APIGatewayV2HTTPRequest {
	if headers == nil {
		headers = map[string]string{"content-type": "application/json"}
	}
	return events.APIGatewayV2HTTPRequest{
		RawPath: "/api/checkout",
		Headers: headers,
		Body:    body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID:  "req-123",
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "traveller-1"}}},
		},
	}
}

// newRawHandler is the handler alone, for the benchmarks: its answers are not checked.
func newRawHandler(f *fakeCheckout, local bool) *httpapi.Handler {
	return httpapi.NewHandler(f, httpapi.Config{
		ProblemTypeBase: "https://api.example.com/problems",
		LocalMode:       local,
		DeadlineMargin:  300 * time.Millisecond,
		Logger:          slog.New(slog.DiscardHandler),
	})
}

// newHandler is the handler under test, every answer of which must match api/openapi.yaml.
func newHandler(t testing.TB, f *fakeCheckout, local bool) checkedHandler {
	return checkedHandler{t, newRawHandler(f, local)}
}

// checkedHandler fails its test on an answer that api/openapi.yaml does not describe.
type checkedHandler struct {
	t testing.TB
	h *httpapi.Handler
}

func (c checkedHandler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	c.t.Helper()
	resp, err := c.h.Handle(ctx, ev)
	apispec.Check(c.t, apispec.Checkout, resp)
	return resp, err
}

func decodeProblem(t *testing.T, resp events.APIGatewayV2HTTPResponse) httpapi.Problem {
	t.Helper()
	if ct := resp.Headers["Content-Type"]; ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem body %q: %v", resp.Body, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d, response status %d", p.Status, resp.StatusCode)
	}
	return p
}

func fields(p httpapi.Problem) []string {
	var names []string
	for _, e := range p.Properties.Errors {
		names = append(names, e.Field)
	}
	return names
}

func TestValidation(t *testing.T) {
	long := strings.Repeat("a", 129)
	tests := []struct {
		name       string
		body       string
		headers    map[string]string
		base64     bool
		local      bool
		wantFields []string // nil: valid
	}{
		{name: "valid", body: validBody},
		{name: "all fields", body: `{"shoppingCartIdentifier":"8d3b0c1e-1111-4222-8333-444455556666","customizationIdentifier":"cz:1_a.b","redirectUrl":"https://book.example.com:8443/x?y=1#z","ga4ClientId":"1234567890.1700000000","ga4SessionId":"1700000000","ga4MeasurementId":"G-XHFTY1BDSD"}`},
		{name: "empty optional fields are absent", body: `{"shoppingCartIdentifier":"cart-1","customizationIdentifier":"","redirectUrl":"https://book.example.com","ga4ClientId":"","ga4SessionId":"","ga4MeasurementId":""}`},
		{name: "null optional field is absent", body: `{"shoppingCartIdentifier":"cart-1","ga4ClientId":null,"redirectUrl":"https://book.example.com"}`},
		{name: "unknown fields ignored", body: `{"shoppingCartIdentifier":"cart-1","redirectUrl":"https://book.example.com","extra":{"deep":[1,2,3]}}`},
		{name: "no content type is JSON", body: validBody, headers: map[string]string{}},
		{name: "charset parameter", body: validBody, headers: map[string]string{"Content-Type": "application/json; charset=UTF-8"}},
		{name: "header names any case", body: validBody, headers: map[string]string{"CONTENT-TYPE": "application/json", "wink-version": "2.0"}},
		{name: "wink version 2.0.0", body: validBody, headers: map[string]string{"Wink-Version": "2.0.0"}},
		{name: "base64 body", body: base64.StdEncoding.EncodeToString([]byte(validBody)), base64: true},
		{name: "local mode accepts http localhost", body: `{"shoppingCartIdentifier":"c","redirectUrl":"http://localhost:8080/done"}`, local: true},
		{name: "local mode accepts http 127.0.0.1", body: `{"shoppingCartIdentifier":"c","redirectUrl":"http://127.0.0.1/done"}`, local: true},

		{name: "empty body", body: ``, wantFields: []string{"body"}},
		{name: "malformed JSON", body: `{"shoppingCartIdentifier":`, wantFields: []string{"body"}},
		{name: "array body", body: `[]`, wantFields: []string{"body"}},
		{name: "string body", body: `"x"`, wantFields: []string{"body"}},
		{name: "two objects", body: validBody + validBody, wantFields: []string{"body"}},
		{name: "trailing garbage", body: validBody + `x`, wantFields: []string{"body"}},
		{name: "invalid UTF-8", body: "{\"shoppingCartIdentifier\":\"c\xff\",\"redirectUrl\":\"https://book.example.com\"}", wantFields: []string{"body"}},
		{name: "too large", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","pad":"` + strings.Repeat("x", 16<<10) + `"}`, wantFields: []string{"body"}},
		{name: "too large base64", body: base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 17<<10))), base64: true, wantFields: []string{"body"}},
		{name: "bad base64", body: "%%%", base64: true, wantFields: []string{"body"}},
		{name: "deep nesting", body: `{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, wantFields: []string{"body"}},
		{name: "wrong content type", body: validBody, headers: map[string]string{"Content-Type": "text/plain"}, wantFields: []string{"Content-Type"}},
		{name: "wrong charset", body: validBody, headers: map[string]string{"Content-Type": "application/json; charset=latin1"}, wantFields: []string{"Content-Type"}},
		{name: "bad wink version", body: validBody, headers: map[string]string{"Wink-Version": "1.0"}, wantFields: []string{"Wink-Version"}},
		{name: "missing required", body: `{}`, wantFields: []string{"shoppingCartIdentifier", "redirectUrl"}},
		{name: "empty required", body: `{"shoppingCartIdentifier":"","redirectUrl":""}`, wantFields: []string{"shoppingCartIdentifier", "redirectUrl"}},
		{name: "numbers where strings belong", body: `{"shoppingCartIdentifier":12,"redirectUrl":true,"ga4SessionId":1}`, wantFields: []string{"shoppingCartIdentifier", "redirectUrl", "ga4SessionId"}},
		{name: "duplicate key", body: `{"shoppingCartIdentifier":"a","shoppingCartIdentifier":"b","redirectUrl":"https://book.example.com"}`, wantFields: []string{"shoppingCartIdentifier"}},
		{name: "every field broken", body: `{"shoppingCartIdentifier":"a b","customizationIdentifier":"` + long + `","redirectUrl":"http://book.example.com","ga4ClientId":"abc","ga4SessionId":"12a","ga4MeasurementId":"UA-1"}`,
			headers:    map[string]string{"Content-Type": "application/xml", "Wink-Version": "3"},
			wantFields: []string{"Content-Type", "Wink-Version", "shoppingCartIdentifier", "customizationIdentifier", "redirectUrl", "ga4ClientId", "ga4SessionId", "ga4MeasurementId"}},
		{name: "cart id too long", body: `{"shoppingCartIdentifier":"` + long + `","redirectUrl":"https://book.example.com"}`, wantFields: []string{"shoppingCartIdentifier"}},
		{name: "cart id with NUL", body: `{"shoppingCartIdentifier":"a\u0000b","redirectUrl":"https://book.example.com"}`, wantFields: []string{"shoppingCartIdentifier"}},
		{name: "plain http", body: `{"shoppingCartIdentifier":"c","redirectUrl":"http://book.example.com"}`, wantFields: []string{"redirectUrl"}},
		{name: "http localhost outside local mode", body: `{"shoppingCartIdentifier":"c","redirectUrl":"http://localhost/done"}`, wantFields: []string{"redirectUrl"}},
		{name: "user info", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com@evil.test/"}`, wantFields: []string{"redirectUrl"}},
		{name: "javascript scheme", body: `{"shoppingCartIdentifier":"c","redirectUrl":"javascript:alert(1)"}`, wantFields: []string{"redirectUrl"}},
		{name: "data scheme", body: `{"shoppingCartIdentifier":"c","redirectUrl":"data:text/html,hi"}`, wantFields: []string{"redirectUrl"}},
		{name: "relative url", body: `{"shoppingCartIdentifier":"c","redirectUrl":"/thanks"}`, wantFields: []string{"redirectUrl"}},
		{name: "url too long", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com/` + strings.Repeat("a", 2048) + `"}`, wantFields: []string{"redirectUrl"}},
		{name: "ga4 client id two dots", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4ClientId":"1.2.3"}`, wantFields: []string{"ga4ClientId"}},
		{name: "ga4 session id too long", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4SessionId":"` + strings.Repeat("1", 33) + `"}`, wantFields: []string{"ga4SessionId"}},
		{name: "ga4 measurement id lower case", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4MeasurementId":"G-abcd"}`, wantFields: []string{"ga4MeasurementId"}},
		{name: "ga4 measurement id too short", body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4MeasurementId":"G-ABC"}`, wantFields: []string{"ga4MeasurementId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCheckout{result: checkout.Result{ClientSecret: "pi_1_secret_2", EphemeralKey: "ek_test_1", CustomerID: "cus_1", GroupIdentifier: "g", BookingCodes: []string{"WK-00000000"}}}
			ev := event(tt.body, tt.headers)
			ev.IsBase64Encoded = tt.base64
			resp, err := newHandler(t, f, tt.local).Handle(context.Background(), ev)
			if err != nil {
				t.Fatalf("Handle returned error %v", err)
			}
			if tt.wantFields == nil {
				if resp.StatusCode != 200 || f.got == nil {
					t.Fatalf("status %d, body %s; want 200 through the use case", resp.StatusCode, resp.Body)
				}
				return
			}
			if f.got != nil {
				t.Errorf("the use case ran for an invalid request")
			}
			p := decodeProblem(t, resp)
			if resp.StatusCode != 400 || p.Type != "https://api.example.com/problems/validation" {
				t.Fatalf("status %d type %q, want 400 validation", resp.StatusCode, p.Type)
			}
			if got := strings.Join(fields(p), ","); got != strings.Join(tt.wantFields, ",") {
				t.Errorf("fields %s, want %s", got, strings.Join(tt.wantFields, ","))
			}
			for _, e := range p.Properties.Errors {
				if e.Message == "" {
					t.Errorf("field %s has no message", e.Field)
				}
			}
		})
	}
}

func TestRequestReachesUseCase(t *testing.T) {
	f := &fakeCheckout{}
	body := `{"shoppingCartIdentifier":"cart-1","customizationIdentifier":"cz-1","redirectUrl":"https://BÜCHER.example.com./x","ga4ClientId":"1.2","ga4SessionId":"3","ga4MeasurementId":"G-ABCD"}`
	newHandler(t, f, false).Handle(context.Background(), event(body, nil))
	want := checkout.Request{
		Caller: "traveller-1", ShoppingCartIdentifier: "cart-1", CustomizationIdentifier: "cz-1",
		Redirect:    checkout.Redirect{URL: "https://BÜCHER.example.com./x", Host: "xn--bcher-kva.example.com"},
		GA4ClientID: "1.2", GA4SessionID: "3", GA4MeasurementID: "G-ABCD",
	}
	if f.got == nil || *f.got != want {
		t.Fatalf("use case got %+v, want %+v", f.got, want)
	}
}

func TestSuccessBody(t *testing.T) {
	f := &fakeCheckout{result: checkout.Result{ClientSecret: "pi_1_secret_2", EphemeralKey: "ek_test_1", CustomerID: "cus_1", GroupIdentifier: "g-1", BookingCodes: []string{"WK-AAAAAAAA", "WK-BBBBBBBB"}}}
	resp, _ := newHandler(t, f, false).Handle(context.Background(), event(validBody, nil))
	if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "application/json" || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Headers)
	}
	want := `{"clientSecret":"pi_1_secret_2","ephemeralKey":"ek_test_1","customerId":"cus_1","groupIdentifier":"g-1","bookingCodes":["WK-AAAAAAAA","WK-BBBBBBBB"]}`
	if resp.Body != want {
		t.Errorf("body %s, want %s", resp.Body, want)
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]string
		claim  string
		want   int
	}{
		{"no authorizer", nil, "", 401},
		{"claim missing", map[string]string{"email": "a@b.c"}, "", 401},
		{"sub", map[string]string{"sub": "t-1"}, "", 200},
		{"configured claim", map[string]string{"sub": "t-1", "custom:traveller": "t-2"}, "custom:traveller", 200},
		{"configured claim missing", map[string]string{"sub": "t-1"}, "custom:traveller", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCheckout{}
			ev := event(`not json`, nil) // 401 outranks validation
			if tt.want == 200 {
				ev = event(validBody, nil)
			}
			ev.RequestContext.Authorizer = nil
			if tt.claims != nil {
				ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: tt.claims}}
			}
			h := checkedHandler{t, httpapi.NewHandler(f, httpapi.Config{ProblemTypeBase: "https://api.example.com/problems/", IdentityClaim: tt.claim})}
			resp, _ := h.Handle(context.Background(), ev)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.want, resp.Body)
			}
			if tt.want == 401 {
				if p := decodeProblem(t, resp); p.Type != "https://api.example.com/problems/unauthorized" {
					t.Errorf("type %q", p.Type)
				}
			} else if want := tt.claims[map[bool]string{true: "sub", false: tt.claim}[tt.claim == ""]]; f.got.Caller != want {
				t.Errorf("caller %q, want %q", f.got.Caller, want)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		kind   string
		detail string
	}{
		{&checkout.Error{Kind: checkout.KindCartNotFound, Detail: "The shopping cart does not exist."}, 400, "cart-not-found", "The shopping cart does not exist."},
		{&checkout.Error{Kind: checkout.KindNotCheckoutable, Detail: "The cart has expired."}, 400, "cart-not-checkoutable", "The cart has expired."},
		{&checkout.Error{Kind: checkout.KindAlreadyPaid, Detail: "paid"}, 400, "cart-already-paid", "paid"},
		{&checkout.Error{Kind: checkout.KindCustomizationNotFound, Detail: "no"}, 400, "customization-not-found", "no"},
		{&checkout.Error{Kind: checkout.KindForbidden, Detail: "not yours"}, 403, "forbidden", "not yours"},
		{checkout.Invalid(checkout.FieldError{Field: "redirectUrl", Message: "host is not allowed"}), 400, "validation", "The request is not valid."},
		{errors.New("dynamodb: connection refused to 10.0.0.1 secret sk_test_123"), 500, "internal", ""},
		{fmt.Errorf("wrapped: %w", &checkout.Error{Kind: "made-up", Detail: "leak"}), 500, "internal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f := &fakeCheckout{err: tt.err}
			resp, err := newHandler(t, f, false).Handle(context.Background(), event(validBody, nil))
			if err != nil {
				t.Fatal(err)
			}
			p := decodeProblem(t, resp)
			if resp.StatusCode != tt.status || p.Type != "https://api.example.com/problems/"+tt.kind {
				t.Fatalf("status %d type %q, want %d %s", resp.StatusCode, p.Type, tt.status, tt.kind)
			}
			if p.Instance != "/api/checkout" || p.Properties.RequestID != "req-123" || p.Title == "" {
				t.Errorf("problem %+v lacks instance, requestId or title", p)
			}
			if tt.status == 500 {
				if strings.Contains(resp.Body, "sk_test") || strings.Contains(resp.Body, "10.0.0.1") || strings.Contains(resp.Body, "leak") {
					t.Errorf("internal error text leaked: %s", resp.Body)
				}
			} else if p.Detail != tt.detail {
				t.Errorf("detail %q, want %q", p.Detail, tt.detail)
			}
		})
	}
}

func TestPanicAnswersProblem(t *testing.T) {
	resp, err := newHandler(t, &fakeCheckout{panic: true}, false).Handle(context.Background(), event(validBody, nil))
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("status %d err %v, want a 500 problem", resp.StatusCode, err)
	}
	if p := decodeProblem(t, resp); strings.Contains(p.Detail, "boom") {
		t.Errorf("panic text leaked: %s", resp.Body)
	}
}

func TestLambdaRequestIDWhenAPIGatewayHasNone(t *testing.T) {
	ev := event(`{}`, nil)
	ev.RequestContext.RequestID = ""
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-42"})
	resp, _ := newHandler(t, &fakeCheckout{}, false).Handle(ctx, ev)
	if p := decodeProblem(t, resp); p.Properties.RequestID != "lambda-42" {
		t.Errorf("requestId %q, want lambda-42", p.Properties.RequestID)
	}
}

func TestDeadlineKeepsMargin(t *testing.T) {
	f := &fakeCheckout{}
	deadline := time.Now().Add(5 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	newHandler(t, f, false).Handle(ctx, event(validBody, nil))
	if got := deadline.Sub(f.deadline); got != 300*time.Millisecond {
		t.Errorf("use case deadline %v before Lambda's, want 300ms", got)
	}
}
