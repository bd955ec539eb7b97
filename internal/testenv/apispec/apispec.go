// Package apispec holds the handlers' answers to the API description, api/openapi.yaml: the tests
// pass every response they get from a handler through Check, so an answer the document does not
// describe (an undocumented status, a missing field, a problem of the wrong shape) fails them.
//
// It lives apart from testenv so that the programs built on testenv (cmd/local, cmd/bench) do
// not link the OpenAPI libraries.
package apispec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"

	"github.com/winktravel/checkout/internal/project"
)

// Route is one operation of the API.
type Route struct{ Method, Path string }

// The routes of api/openapi.yaml.
var (
	Checkout = Route{http.MethodPost, "/api/checkout"}
	Webhook  = Route{http.MethodPost, "/api/stripe/webhook"}
)

func (r Route) String() string { return r.Method + " " + r.Path }

// Path is api/openapi.yaml's path in the module.
const Path = "api/openapi.yaml"

// Spec is a loaded API description.
type Spec struct {
	mu sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v  validator.Validator
}

// Load reads and checks the API description at path: it must be a valid OpenAPI 3.1 document.
func Load(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse is Load for a document already read.
func Parse(raw []byte) (*Spec, error) {
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the API description: %w", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("the API description is OpenAPI %s, want 3.1", v)
	}
	// Format assertions: `type` must be a URI, `instance` a URI reference.
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the API description's model: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("the API description is not valid OpenAPI:%s", describe(verrs))
	}
	return &Spec{v: v}, nil
}

var projectSpec = sync.OnceValues(func() (*Spec, error) {
	root, err := project.Root()
	if err != nil {
		return nil, err
	}
	return Load(filepath.Join(root, Path))
})

// Project returns the module's api/openapi.yaml, loaded once per test binary.
func Project() (*Spec, error) { return projectSpec() }

// Validate returns why resp, the answer of route's handler as API Gateway passes it on, does
// not match the document; nil when it does.
func (s *Spec) Validate(route Route, resp events.APIGatewayV2HTTPResponse) error {
	if resp.Body == "" { // the validator checks a body's schema only when there is one
		return fmt.Errorf("%s answered %d with no body: every answer %s describes has one", route, resp.StatusCode, Path)
	}
	req, err := http.NewRequest(route.Method, "https://api.wink.travel"+route.Path, nil)
	if err != nil {
		return err
	}
	hresp, err := httpResponse(req, resp)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ok, verrs := s.v.ValidateHttpResponse(req, hresp)
	s.mu.Unlock()
	if ok {
		return nil
	}
	return fmt.Errorf("%s answered %d %s, which %s does not describe:%s", route, resp.StatusCode, resp.Body, Path, describe(verrs))
}

// ValidateRequest returns why a request on route with headers and body does not match the
// document; nil when it does. The tests send invalid requests on purpose: this is for checking
// the document itself.
func (s *Spec) ValidateRequest(route Route, headers map[string]string, body string) error {
	req, err := http.NewRequest(route.Method, "https://api.wink.travel"+route.Path, strings.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	s.mu.Lock()
	ok, verrs := s.v.ValidateHttpRequest(req)
	s.mu.Unlock()
	if ok {
		return nil
	}
	return fmt.Errorf("%s %s is a request that %s does not describe:%s", route, body, Path, describe(verrs))
}

// httpResponse is resp as API Gateway (HTTP API, payload 2.0) sends it to the client.
func httpResponse(req *http.Request, resp events.APIGatewayV2HTTPResponse) (*http.Response, error) {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("response body is not valid base64: %w", err)
		}
		body = decoded
	}
	h := http.Header{}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	return &http.Response{
		Status:        http.StatusText(resp.StatusCode),
		StatusCode:    resp.StatusCode,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(string(body))),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  - ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Check fails t unless resp, route's answer, matches the module's api/openapi.yaml.
func Check(t TB, route Route, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	spec, err := Project()
	if err != nil {
		t.Errorf("load %s: %v", Path, err)
		return
	}
	if err := spec.Validate(route, resp); err != nil {
		t.Errorf("%v", err)
	}
	// The document also describes API Gateway's own {"message": ...} answers; the handlers
	// answer every failure with a problem.
	if resp.StatusCode >= 400 && resp.Headers["Content-Type"] != "application/problem+json" {
		t.Errorf("%s answered %d as %q, not a problem: %s", route, resp.StatusCode, resp.Headers["Content-Type"], resp.Body)
	}
}
