package apispec_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"gopkg.in/yaml.v3"

	"github.com/winktravel/checkout/internal/project"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

func answer(status int, contentType, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": contentType, "Cache-Control": "no-store"},
		Body:       body,
	}
}

const (
	okBody         = `{"clientSecret":"pi_1_secret_2","ephemeralKey":"ek_test_1","customerId":"cus_1","groupIdentifier":"g-1","bookingCodes":["WK-AAAAAAAA"]}`
	validationBody = `{"type":"https://api.example.com/problems/validation","title":"Invalid request","status":400,"detail":"The request is not valid.","instance":"/api/checkout","properties":{"requestId":"req-1","errors":[{"field":"redirectUrl","message":"must be an absolute https URL"}]}}`
	notFoundBody   = `{"type":"https://api.example.com/problems/cart-not-found","title":"Shopping cart not found","status":400,"detail":"The shopping cart does not exist.","instance":"/api/checkout","properties":{"requestId":"req-1"}}`
	internalBody   = `{"type":"https://api.example.com/problems/internal","title":"Internal error","status":500,"detail":"The checkout could not be completed. Retrying the same request is safe; if the problem persists, contact support with the requestId.","instance":"/api/stripe/webhook","properties":{"requestId":"req-1"}}`
)

// The answers the handlers give pass; answers that break the document fail, each for its reason.
func TestValidate(t *testing.T) {
	spec, err := apispec.Project()
	if err != nil {
		t.Fatal(err)
	}
	problem := "application/problem+json"
	tests := []struct {
		name  string
		route apispec.Route
		resp  events.APIGatewayV2HTTPResponse
		want  string // "" valid; else a word of the error
	}{
		{"checkout 200", apispec.Checkout, answer(200, "application/json", okBody), ""},
		{"checkout validation", apispec.Checkout, answer(400, problem, validationBody), ""},
		{"checkout cart-not-found", apispec.Checkout, answer(400, problem, notFoundBody), ""},
		{"checkout forbidden", apispec.Checkout, answer(403, problem, strings.NewReplacer("cart-not-found", "forbidden", "Shopping cart not found", "Forbidden", `"status":400`, `"status":403`).Replace(notFoundBody)), ""},
		{"gateway 401", apispec.Checkout, events.APIGatewayV2HTTPResponse{StatusCode: 401, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"message":"Unauthorized"}`}, ""},
		{"webhook 200", apispec.Webhook, answer(200, "application/json", `{"received":true}`), ""},
		{"webhook 500", apispec.Webhook, answer(500, problem, internalBody), ""},
		{"base64 body", apispec.Webhook, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}, Body: "eyJyZWNlaXZlZCI6dHJ1ZX0=", IsBase64Encoded: true}, ""},

		{"200 without clientSecret", apispec.Checkout, answer(200, "application/json", strings.Replace(okBody, `"clientSecret":"pi_1_secret_2",`, "", 1)), "clientSecret"},
		{"200 with an empty bookingCodes", apispec.Checkout, answer(200, "application/json", strings.Replace(okBody, `["WK-AAAAAAAA"]`, `[]`, 1)), "bookingCodes"},
		{"200 with an undocumented member", apispec.Checkout, answer(200, "application/json", strings.Replace(okBody, `{`, `{"secret":"x",`, 1)), "secret"},
		{"200 as a problem", apispec.Checkout, answer(200, problem, validationBody), "content type"},
		{"200 without Cache-Control", apispec.Checkout, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: okBody}, "Cache-Control"},
		{"problem without type", apispec.Checkout, answer(400, problem, strings.Replace(notFoundBody, `"type":"https://api.example.com/problems/cart-not-found",`, "", 1)), "type"},
		{"problem with a relative type", apispec.Checkout, answer(400, problem, strings.Replace(notFoundBody, `https://api.example.com/problems/cart-not-found`, `cart-not-found`, 1)), "type"},
		{"problem of an unknown kind", apispec.Checkout, answer(400, problem, strings.Replace(notFoundBody, `cart-not-found`, `made-up`, 1)), "made-up"},
		{"problem status unlike the answer's", apispec.Checkout, answer(403, problem, notFoundBody), "status"},
		{"validation without errors", apispec.Checkout, answer(400, problem, strings.Replace(validationBody, `,"errors":[{"field":"redirectUrl","message":"must be an absolute https URL"}]`, "", 1)), "errors"},
		{"requestId at the top level", apispec.Checkout, answer(400, problem, strings.Replace(notFoundBody, `"properties":{"requestId":"req-1"}`, `"properties":{},"requestId":"req-1"`, 1)), "requestId"},
		{"internal with a leaking detail", apispec.Webhook, answer(500, problem, strings.Replace(internalBody, `The checkout could not be completed.`, `dynamodb: connection refused`, 1)), "detail"},
		{"webhook validation of a checkout field", apispec.Webhook, answer(400, problem, validationBody), "field"},
		{"undocumented status", apispec.Checkout, answer(404, problem, notFoundBody), "404"},
		{"200 with no body", apispec.Checkout, answer(200, "application/json", ""), "no body"},
		{"problem with no body", apispec.Checkout, answer(400, problem, ""), "no body"},
		{"undocumented route", apispec.Route{Method: "GET", Path: "/api/checkout"}, answer(200, "application/json", okBody), "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.Validate(tt.route, tt.resp)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("want an error about %s, got none", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error does not mention %q: %v", tt.want, err)
			}
		})
	}
}

// failRecorder is a TB that records instead of failing.
type failRecorder struct{ errs []string }

func (f *failRecorder) Helper() {}
func (f *failRecorder) Errorf(format string, args ...any) {
	f.errs = append(f.errs, format)
}

// Check is what the handler tests call: it fails the test on an answer the document lacks.
func TestCheckFailsTheTest(t *testing.T) {
	var rec failRecorder
	apispec.Check(&rec, apispec.Checkout, answer(418, "application/json", `{}`))
	if len(rec.errs) != 2 {
		t.Fatalf("Check reported %d failures for an undocumented status that is no problem, want 2", len(rec.errs))
	}
	rec = failRecorder{} // API Gateway's own 401 is documented, but no handler answers one
	apispec.Check(&rec, apispec.Checkout, events.APIGatewayV2HTTPResponse{StatusCode: 401, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"message":"Unauthorized"}`})
	if len(rec.errs) != 1 {
		t.Fatalf("Check reported %d failures for a handler's 401 in API Gateway's shape, want 1", len(rec.errs))
	}
	rec = failRecorder{}
	apispec.Check(&rec, apispec.Webhook, answer(200, "application/json", `{"received":true}`))
	if len(rec.errs) != 0 {
		t.Fatalf("Check failed a documented answer: %v", rec.errs)
	}
}

// A document that is not OpenAPI 3.1 is refused.
func TestParseRefusesOtherVersions(t *testing.T) {
	if _, err := apispec.Parse([]byte("openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {}\n")); err == nil {
		t.Error("an OpenAPI 3.0 document was accepted")
	}
}

// Every response example of the document is an answer the document describes.
func TestExamplesValidate(t *testing.T) {
	spec, err := apispec.Project()
	if err != nil {
		t.Fatal(err)
	}
	root, err := project.Root()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, apispec.Path))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(m any, keys ...string) any {
		for _, k := range keys {
			mm, _ := m.(map[string]any)
			m = mm[k]
		}
		return m
	}
	resolve := func(m any) any { // a local $ref, one level
		if ref, ok := get(m, "$ref").(string); ok {
			return get(doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
		}
		return m
	}
	count := 0
	requestHeaders := map[apispec.Route]map[string]string{
		apispec.Checkout: {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "Content-Type": "application/json", "Wink-Version": "2.0"},
		apispec.Webhook:  {"Content-Type": "application/json", "Stripe-Signature": "t=1700000000,v1=5257a869e7ec"},
	}
	for _, route := range []apispec.Route{apispec.Checkout, apispec.Webhook} {
		operation := get(doc, "paths", route.Path, strings.ToLower(route.Method))
		requests := map[string]any{}
		if v := get(operation, "requestBody", "content", "application/json", "example"); v != nil {
			requests["example"] = v
		}
		examples, _ := get(operation, "requestBody", "content", "application/json", "examples").(map[string]any)
		for name, ex := range examples {
			requests[name] = get(ex, "value")
		}
		if len(requests) == 0 {
			t.Errorf("%s has no request example", route)
		}
		for name, v := range requests {
			body, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			count++
			if err := spec.ValidateRequest(route, requestHeaders[route], string(body)); err != nil {
				t.Errorf("request example %s: %v", name, err)
			}
		}
		responses, _ := get(operation, "responses").(map[string]any)
		for code, r := range responses {
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Fatalf("%s: response code %q", route, code)
			}
			content, _ := get(resolve(r), "content").(map[string]any)
			for mediaType, mt := range content {
				values := map[string]any{}
				if v := get(mt, "example"); v != nil {
					values["example"] = v
				}
				examples, _ := get(mt, "examples").(map[string]any)
				for name, ex := range examples {
					values[name] = get(ex, "value")
				}
				if len(values) == 0 {
					t.Errorf("%s %s %s has no example", route, code, mediaType)
				}
				for name, v := range values {
					body, err := json.Marshal(v)
					if err != nil {
						t.Fatal(err)
					}
					count++
					if err := spec.Validate(route, answer(status, mediaType, string(body))); err != nil {
						t.Errorf("example %s of %s %s: %v", name, code, mediaType, err)
					}
				}
			}
		}
	}
	if count < 15 {
		t.Errorf("checked %d examples; the walk of the document missed some", count)
	}
}

// The request rules of the document are those of README's contract (request.go enforces them).
func TestRequestRules(t *testing.T) {
	spec, err := apispec.Project()
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "Content-Type": "application/json"}
	long := strings.Repeat("a", 129)
	tests := []struct {
		name, body string
		valid      bool
	}{
		{"required only", `{"shoppingCartIdentifier":"cart-1","redirectUrl":"https://book.example.com/thanks"}`, true},
		{"every field", `{"shoppingCartIdentifier":"8d3b0c1e-1111-4222-8333-444455556666","customizationIdentifier":"cz:1_a.b","redirectUrl":"https://book.example.com:8443/x?y=1#z","ga4ClientId":"1234567890.1700000000","ga4SessionId":"1700000000","ga4MeasurementId":"G-XHFTY1BDSD"}`, true},
		{"empty and null optional fields", `{"shoppingCartIdentifier":"c","customizationIdentifier":"","redirectUrl":"https://book.example.com","ga4ClientId":null,"ga4SessionId":"","ga4MeasurementId":""}`, true},
		{"unknown member", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","extra":[1]}`, true},
		{"international host", `{"shoppingCartIdentifier":"c","redirectUrl":"https://BÜCHER.example.com./x"}`, true},
		{"missing required", `{}`, false},
		{"empty cart id", `{"shoppingCartIdentifier":"","redirectUrl":"https://book.example.com"}`, false},
		{"cart id with a space", `{"shoppingCartIdentifier":"a b","redirectUrl":"https://book.example.com"}`, false},
		{"cart id too long", `{"shoppingCartIdentifier":"` + long + `","redirectUrl":"https://book.example.com"}`, false},
		{"customization id too long", `{"shoppingCartIdentifier":"c","customizationIdentifier":"` + long + `","redirectUrl":"https://book.example.com"}`, false},
		{"plain http", `{"shoppingCartIdentifier":"c","redirectUrl":"http://book.example.com"}`, false},
		{"user info", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com@evil.test/"}`, false},
		{"relative url", `{"shoppingCartIdentifier":"c","redirectUrl":"/thanks"}`, false},
		{"url too long", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com/` + strings.Repeat("a", 2048) + `"}`, false},
		{"ga4 client id two dots", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4ClientId":"1.2.3"}`, false},
		{"ga4 session id 33 digits", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4SessionId":"` + strings.Repeat("1", 33) + `"}`, false},
		{"ga4 measurement id lower case", `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","ga4MeasurementId":"G-abcd"}`, false},
		{"number for a string", `{"shoppingCartIdentifier":12,"redirectUrl":"https://book.example.com"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.ValidateRequest(apispec.Checkout, headers, tt.body)
			if tt.valid && err != nil {
				t.Errorf("want valid: %v", err)
			} else if !tt.valid && err == nil {
				t.Errorf("want invalid, the document accepts it")
			}
		})
	}
	bad := map[string]string{"Authorization": "Bearer x", "Content-Type": "application/json", "Wink-Version": "1.0"}
	if err := spec.ValidateRequest(apispec.Checkout, bad, tests[0].body); err == nil || !strings.Contains(err.Error(), "Wink-Version") {
		t.Errorf("Wink-Version 1.0: %v", err)
	}
	if err := spec.ValidateRequest(apispec.Checkout, map[string]string{"Content-Type": "application/json"}, tests[0].body); err == nil {
		t.Error("a checkout without a bearer token was accepted")
	}
	if err := spec.ValidateRequest(apispec.Webhook, map[string]string{"Content-Type": "application/json"}, `{"id":"evt_1","type":"x","data":{"object":{}}}`); err == nil || !strings.Contains(err.Error(), "Stripe-Signature") {
		t.Errorf("webhook without Stripe-Signature: %v", err)
	}
}
