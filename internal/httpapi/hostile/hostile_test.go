// Package hostile_test fuzzes the checkout handler with hostile input. It is a package of its
// own so that the fuzzing build (every dependency compiled with coverage instrumentation) holds
// the handler's dependencies only, not the test suite's API validator: the answers are held to
// the HTTP contract by the oracle below, and to api/openapi.yaml by internal/httpapi's tests.
package hostile_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"mime"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/net/idna"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/httpapi"
)

// The fuzz target and the hostile-input tables below share one oracle, checkHostile: it
// re-derives the HTTP contract of README.md from the raw event, independently of request.go, and
// holds the handler to it. The use case behind the handler never fails, so a 500 (or any status
// but 200 and 400) can only come from the HTTP layer.

const (
	fuzzRequestID   = "fuzz-req-1"
	fuzzCaller      = "traveller-fuzz"
	fuzzProblemBase = "https://api.example.com/problems/"
	fuzzValidBody   = `{"shoppingCartIdentifier":"cart-1","redirectUrl":"https://book.example.com/thanks"}`
)

var fuzzResult = checkout.Result{
	ClientSecret: "pi_fuzz_secret_fuzz", EphemeralKey: "ek_test_fuzz", CustomerID: "cus_fuzz",
	GroupIdentifier: "group-fuzz", BookingCodes: []string{"WK-FUZZ0001"},
}

const fuzzResultBody = `{"clientSecret":"pi_fuzz_secret_fuzz","ephemeralKey":"ek_test_fuzz","customerId":"cus_fuzz","groupIdentifier":"group-fuzz","bookingCodes":["WK-FUZZ0001"]}`

// fixedCheckouter is the use case behind the fuzzed handler: it counts its calls, keeps the
// request and always succeeds.
type fixedCheckouter struct {
	calls int
	got   checkout.Request
}

func (f *fixedCheckouter) Checkout(_ context.Context, req checkout.Request) (checkout.Result, error) {
	f.calls++
	f.got = req
	return fuzzResult, nil
}

// hostile is one raw event as the fuzzer varies it. contentType and winkVersion are sent (under
// lower-case names, as API Gateway sends them) when not empty; the extra header keeps the case of
// its name and is left out when its name equals one of those two, so that every header name
// appears once whatever its case. An extra header named Content-Type with an empty value is how
// an empty Content-Type is sent.
type hostile struct {
	body, contentType, winkVersion string
	base64                         bool
	headerName, headerValue        string
}

func (in hostile) event() events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	if in.contentType != "" {
		headers["content-type"] = in.contentType
	}
	if in.winkVersion != "" {
		headers["wink-version"] = in.winkVersion
	}
	if in.headerName != "" {
		if _, taken := lookupHeader(headers, in.headerName); !taken {
			headers[in.headerName] = in.headerValue
		}
	}
	return events.APIGatewayV2HTTPRequest{
		Version:         "2.0",
		RouteKey:        "POST /api/checkout",
		RawPath:         "/api/checkout",
		Headers:         headers,
		Body:            in.body,
		IsBase64Encoded: in.base64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: fuzzRequestID,
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/checkout"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": fuzzCaller}},
			},
		},
	}
}

// The field rules of README.md's contract table, written as patterns (request.go uses loops).
var (
	identifierRule       = regexp.MustCompile(`\A[A-Za-z0-9._:-]{1,128}\z`)
	ga4ClientIDRule      = regexp.MustCompile(`\A[0-9]+\.[0-9]+\z`) // and at most 64 characters
	ga4SessionIDRule     = regexp.MustCompile(`\A[0-9]{1,32}\z`)
	ga4MeasurementIDRule = regexp.MustCompile(`\AG-[A-Z0-9]{4,20}\z`)
	// A host name as the use case compares it: lower-case LDH labels, none empty.
	hostNameRule = regexp.MustCompile(`\A[a-z0-9-]+(\.[a-z0-9-]+)*\z`)
)

// bodyFields are the members of the body, in the order request.go reports them.
var bodyFields = []string{"shoppingCartIdentifier", "customizationIdentifier", "redirectUrl", "ga4ClientId", "ga4SessionId", "ga4MeasurementId"}

// knownErrorFields are all the names a validation problem may list.
var knownErrorFields = append([]string{"Content-Type", "Wink-Version", "body"}, bodyFields...)

func FuzzHandle(f *testing.F) {
	long := strings.Repeat("x", httpapi.MaxBodyBytes)
	for _, in := range []hostile{
		{body: fuzzValidBody, contentType: "application/json", winkVersion: "2.0"},
		{body: `{"shoppingCartIdentifier":"8d3b0c1e-1111-4222-8333-444455556666","customizationIdentifier":"cz:1_a.b","redirectUrl":"https://book.example.com:8443/x?y=1#z","ga4ClientId":"1234567890.1700000000","ga4SessionId":"1700000000","ga4MeasurementId":"G-XHFTY1BDSD"}`, contentType: "application/json; charset=utf-8", winkVersion: "2.0.0"},
		{body: base64.StdEncoding.EncodeToString([]byte(fuzzValidBody)), base64: true},
		{body: `{"x":` + strings.Repeat("[", 10001)},
		{body: `{"x":"` + long[:httpapi.MaxBodyBytes-len(`{"x":""}`)] + `"}`},
		{body: `{"x":"` + long + `"}`},
		{body: "{\"shoppingCartIdentifier\":\"a\x00b\",\"redirectUrl\":\"https://book.example.com\"}"},
		{body: "{\"shoppingCartIdentifier\":\"c\xff\",\"redirectUrl\":\"https://book.example.com\"}"},
		{body: `{"shoppingCartIdentifier":"a","shoppingCart\u0049dentifier":"b","redirectUrl":"https://book.example.com"}`},
		{body: `{"shoppingCartIdentifier":{"a":"b"},"redirectUrl":["https://book.example.com"],"ga4SessionId":1,"ga4ClientId":true}`},
		{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com@evil.test/"}`},
		{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://bооk.example.com/"}`},
		{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://evil.test#book.example.com"}`},
		{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com.evil.test/"}`},
		{body: fuzzValidBody, contentType: "APPLICATION/JSON; charset=latin1"},
		{body: fuzzValidBody, headerName: "Content-Type", headerValue: ""},
		{body: fuzzValidBody, headerName: "WINK-VERSION", headerValue: "2.0 "},
		{body: "%%%", base64: true},
	} {
		f.Add(in.body, in.contentType, in.winkVersion, in.base64, in.headerName, in.headerValue)
	}
	f.Fuzz(func(t *testing.T, body, contentType, winkVersion string, isBase64 bool, headerName, headerValue string) {
		checkHostile(t, hostile{body, contentType, winkVersion, isBase64, headerName, headerValue})
	})
}

// checkHostile runs one event through the handler and checks every property of the contract;
// it returns the response and the use case for further checks.
func checkHostile(t *testing.T, in hostile) (events.APIGatewayV2HTTPResponse, *fixedCheckouter) {
	t.Helper()
	uc := &fixedCheckouter{}
	h := httpapi.NewHandler(uc, httpapi.Config{
		ProblemTypeBase: fuzzProblemBase,
		Logger:          slog.New(slog.DiscardHandler),
	})
	ev := in.event()
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle returned error %v", err)
	}
	if resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", resp.Headers["Cache-Control"])
	}
	want := expectContract(in, ev.Headers)

	switch resp.StatusCode {
	case 200:
		if uc.calls != 1 {
			t.Fatalf("200 answered, but the use case ran %d times", uc.calls)
		}
		if len(want.mustFail) > 0 {
			t.Fatalf("200 answered, but %v break the contract (%s)", want.mustFail, strings.Join(want.why, "; "))
		}
		if ct := resp.Headers["Content-Type"]; ct != "application/json" {
			t.Errorf("200 Content-Type = %q, want application/json", ct)
		}
		if resp.Body != fuzzResultBody {
			t.Errorf("200 body %s, want %s", resp.Body, fuzzResultBody)
		}
		checkReachedUseCase(t, uc.got, want.members)
	case 400:
		if uc.calls != 0 {
			t.Errorf("400 answered, but the use case ran %d times", uc.calls)
		}
		got := checkValidationProblem(t, resp)
		for _, field := range want.mustFail {
			if !slices.Contains(got, field) {
				t.Errorf("problem lists %v, want %s among them (%s)", got, field, strings.Join(want.why, "; "))
			}
		}
	default:
		t.Fatalf("status %d, want 200 or 400; body %s", resp.StatusCode, resp.Body)
	}
	return resp, uc
}

// contract is what the oracle derived from the raw event.
type contract struct {
	mustFail []string                   // fields that a validation problem must list
	why      []string                   // why, for failure messages
	members  map[string]json.RawMessage // the six fields as sent, when the body is one JSON object
}

func (c *contract) fail(field, why string) {
	if !slices.Contains(c.mustFail, field) {
		c.mustFail = append(c.mustFail, field)
	}
	c.why = append(c.why, field+": "+why)
}

// expectContract re-derives, from README.md's contract, which fields the handler must refuse.
// It is complete for everything but the redirect host, whose IDNA rules checkReachedUseCase
// checks on the requests that get through.
func expectContract(in hostile, headers map[string]string) contract {
	var c contract
	if ct, ok := lookupHeader(headers, "Content-Type"); ok {
		mediaType, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			c.fail("Content-Type", "unparsable "+ct)
		case mediaType != "application/json":
			c.fail("Content-Type", "media type "+mediaType)
		case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
			c.fail("Content-Type", "charset "+params["charset"])
		}
	}
	if v, ok := lookupHeader(headers, "Wink-Version"); ok && v != "2.0" && v != "2.0.0" {
		c.fail("Wink-Version", "version "+v)
	}

	body := []byte(in.body)
	if in.base64 {
		decoded, err := base64.StdEncoding.DecodeString(in.body)
		if err != nil {
			c.fail("body", "not base64")
			return c
		}
		body = decoded
	}
	switch {
	case len(body) > httpapi.MaxBodyBytes:
		c.fail("body", "over 16 KiB")
		return c
	case len(bytes.TrimSpace(body)) == 0:
		c.fail("body", "empty")
		return c
	case !utf8.Valid(body):
		c.fail("body", "not UTF-8")
		return c
	case !json.Valid(body) || bytes.TrimSpace(body)[0] != '{':
		c.fail("body", "not one JSON object")
		return c
	}
	members, dups := topLevelMembers(body)
	c.members = members
	for _, name := range bodyFields {
		raw, present := members[name]
		switch {
		case dups[name]:
			c.fail(name, "sent twice")
			continue
		case present && string(raw) != "null" && raw[0] != '"':
			c.fail(name, "not a string: "+string(raw))
			continue
		}
		s := jsonString(raw)
		required := name == "shoppingCartIdentifier" || name == "redirectUrl"
		if s == "" {
			if required {
				c.fail(name, "missing")
			}
			continue
		}
		if why := breaksRule(name, s); why != "" {
			c.fail(name, why)
		}
	}
	return c
}

// breaksRule checks one non-empty field against the contract. For redirectUrl it checks what
// needs no IDNA: scheme, length, user-info.
func breaksRule(name, s string) string {
	switch name {
	case "shoppingCartIdentifier", "customizationIdentifier":
		if !identifierRule.MatchString(s) {
			return "not an identifier"
		}
	case "ga4ClientId":
		if len(s) > 64 || !ga4ClientIDRule.MatchString(s) {
			return "not digits.digits"
		}
	case "ga4SessionId":
		if !ga4SessionIDRule.MatchString(s) {
			return "not up to 32 digits"
		}
	case "ga4MeasurementId":
		if !ga4MeasurementIDRule.MatchString(s) {
			return "not G-XXXX"
		}
	case "redirectUrl":
		if utf8.RuneCountInString(s) > checkout.MaxRedirectURLLength {
			return "over 2048 characters"
		}
		if len(s) < len("https://") || !strings.EqualFold(s[:len("https://")], "https://") {
			return "not https://"
		}
		if strings.Contains(authority(s), "@") {
			return "user-info"
		}
	}
	return ""
}

// authority is what a browser takes for the authority of an https:// URL: up to the first of
// "/", "\", "?" and "#".
func authority(rawURL string) string {
	rest := rawURL[len("https://"):]
	if i := strings.IndexAny(rest, `/\?#`); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// checkReachedUseCase checks a request that reached the use case against the body it came from.
func checkReachedUseCase(t *testing.T, req checkout.Request, members map[string]json.RawMessage) {
	t.Helper()
	if req.Caller != fuzzCaller {
		t.Errorf("caller %q, want %q", req.Caller, fuzzCaller)
	}
	got := map[string]string{
		"shoppingCartIdentifier":  req.ShoppingCartIdentifier,
		"customizationIdentifier": req.CustomizationIdentifier,
		"redirectUrl":             req.Redirect.URL,
		"ga4ClientId":             req.GA4ClientID,
		"ga4SessionId":            req.GA4SessionID,
		"ga4MeasurementId":        req.GA4MeasurementID,
	}
	for _, name := range bodyFields {
		want := jsonString(members[name])
		if got[name] != want {
			t.Errorf("%s reached the use case as %q, sent %q", name, got[name], want)
		}
		if got[name] != "" {
			if why := breaksRule(name, got[name]); why != "" {
				t.Errorf("%s %q reached the use case: %s", name, got[name], why)
			}
		}
	}
	if !identifierRule.MatchString(req.ShoppingCartIdentifier) || req.Redirect.URL == "" {
		t.Errorf("request without cart or redirect reached the use case: %+v", req)
	}
	checkRedirectHost(t, req.Redirect)
}

// checkRedirectHost checks that Redirect.Host is the host a browser goes to, in the comparable
// form the allow-list uses: IDNA A-labels in lower case, no port, no trailing dot.
func checkRedirectHost(t *testing.T, r checkout.Redirect) {
	t.Helper()
	if r.Loopback {
		t.Errorf("loopback redirect %q outside local mode", r.URL)
	}
	hostPort := authority(r.URL)
	var host string
	if strings.HasPrefix(hostPort, "[") { // IPv6 literal
		end := strings.Index(hostPort, "]")
		if end < 0 {
			t.Fatalf("redirect %q: unterminated IPv6 literal", r.URL)
		}
		host, hostPort = hostPort[1:end], hostPort[end+1:]
		if hostPort != "" && !validPort(hostPort) {
			t.Fatalf("redirect %q: garbage after the IPv6 literal", r.URL)
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.Equal(net.ParseIP(r.Host)) {
			t.Errorf("redirect %q: host %q, want the IP %s", r.URL, r.Host, host)
		}
		return
	}
	host = hostPort
	if i := strings.LastIndex(hostPort, ":"); i >= 0 {
		if !validPort(hostPort[i:]) {
			t.Fatalf("redirect %q: bad port in %q", r.URL, hostPort)
		}
		host = hostPort[:i]
	}
	host, err := url.PathUnescape(host)
	if err != nil {
		t.Fatalf("redirect %q: bad escape in host: %v", r.URL, err)
	}
	name := strings.TrimSuffix(host, ".") // a fully qualified name is the same host
	if ip := net.ParseIP(name); ip != nil {
		if !ip.Equal(net.ParseIP(r.Host)) {
			t.Errorf("redirect %q: host %q, want the IP %s", r.URL, r.Host, name)
		}
		return
	}
	want := strings.ToLower(name)
	if !isASCII(name) {
		ascii, err := idna.Lookup.ToASCII(name)
		if err != nil {
			t.Fatalf("redirect %q: host %q is no IDNA name: %v", r.URL, name, err)
		}
		want = strings.ToLower(ascii)
	}
	if r.Host != want {
		t.Errorf("redirect %q: host %q, want %q", r.URL, r.Host, want)
	}
	if len(r.Host) > 253 || !hostNameRule.MatchString(r.Host) {
		t.Errorf("redirect %q: host %q is not a lower-case A-label name", r.URL, r.Host)
	}
}

func validPort(p string) bool {
	return strings.HasPrefix(p, ":") && strings.Trim(p[1:], "0123456789") == ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkValidationProblem checks a 400 answer against the problem shape and returns the fields
// it lists.
func checkValidationProblem(t *testing.T, resp events.APIGatewayV2HTTPResponse) []string {
	t.Helper()
	if ct := resp.Headers["Content-Type"]; ct != "application/problem+json" {
		t.Errorf("400 Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Status     int    `json:"status"`
		Detail     string `json:"detail"`
		Instance   string `json:"instance"`
		Properties struct {
			RequestID string `json:"requestId"`
			Errors    []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"errors"`
		} `json:"properties"`
	}
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if !utf8.ValidString(resp.Body) || dec.Decode(&p) != nil || dec.More() {
		t.Fatalf("400 body is not a problem: %s", resp.Body)
	}
	if !strings.HasSuffix(p.Type, "/validation") || p.Type != fuzzProblemBase+"validation" {
		t.Errorf("problem type %q, want %svalidation", p.Type, fuzzProblemBase)
	}
	if p.Title == "" || p.Detail == "" || p.Status != resp.StatusCode || p.Instance != "/api/checkout" {
		t.Errorf("problem title %q detail %q status %d instance %q", p.Title, p.Detail, p.Status, p.Instance)
	}
	if p.Properties.RequestID != fuzzRequestID {
		t.Errorf("problem requestId %q, want %q", p.Properties.RequestID, fuzzRequestID)
	}
	if len(p.Properties.Errors) == 0 {
		t.Fatalf("validation problem lists no field: %s", resp.Body)
	}
	var names []string
	for _, e := range p.Properties.Errors {
		if e.Field == "" || e.Message == "" {
			t.Errorf("problem error %+v lacks field or message", e)
		}
		if !slices.Contains(knownErrorFields, e.Field) {
			t.Errorf("problem names an unknown field %q", e.Field)
		}
		names = append(names, e.Field)
	}
	return names
}

// topLevelMembers returns the known members of a JSON object (the last of duplicates) and which
// of them appear more than once. Names are compared exactly, not the way encoding/json matches
// struct fields.
func topLevelMembers(body []byte) (map[string]json.RawMessage, map[string]bool) {
	members, dups := map[string]json.RawMessage{}, map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return members, dups
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return members, dups
		}
		name, ok := tok.(string)
		if !ok {
			return members, dups // the closing brace
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return members, dups
		}
		if !slices.Contains(bodyFields, name) {
			continue
		}
		if _, seen := members[name]; seen {
			dups[name] = true
		}
		members[name] = value
	}
}

// jsonString decodes a JSON string; null, absent and anything else give "".
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// lookupHeader finds a header whatever the case of its name.
func lookupHeader(headers map[string]string, name string) (string, bool) {
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// padBody returns a valid body of exactly n bytes.
func padBody(n int) string {
	const head, tail = `{"shoppingCartIdentifier":"cart-1","redirectUrl":"https://book.example.com/thanks","pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestHostileInput holds hostile cases that TestValidation does not cover to the contract, and to
// the outcome each must have.
func TestHostileInput(t *testing.T) {
	const redirect = `,"redirectUrl":"https://book.example.com"}`
	mb := strings.Repeat("x", 1<<20)
	deepOK := `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com","x":` + strings.Repeat("[", 8000) + strings.Repeat("]", 8000) + `}`
	tests := []struct {
		name       string
		in         hostile
		wantFields []string // nil: 200
	}{
		// Body framing.
		{name: "raw NUL inside a string", in: hostile{body: "{\"shoppingCartIdentifier\":\"a\x00b\"" + redirect}, wantFields: []string{"body"}},
		{name: "raw NUL after the object", in: hostile{body: fuzzValidBody + "\x00"}, wantFields: []string{"body"}},
		{name: "raw NUL before the object", in: hostile{body: "\x00" + fuzzValidBody}, wantFields: []string{"body"}},
		{name: "byte order mark", in: hostile{body: "\uFEFF" + fuzzValidBody}, wantFields: []string{"body"}},
		{name: "whitespace around the object", in: hostile{body: " \r\n\t" + fuzzValidBody + "\n "}},
		{name: "1 MB string", in: hostile{body: `{"shoppingCartIdentifier":"` + mb + `"` + redirect}, wantFields: []string{"body"}},
		{name: "1 MB base64", in: hostile{body: base64.StdEncoding.EncodeToString([]byte(`{"x":"` + mb + `"}`)), base64: true}, wantFields: []string{"body"}},
		{name: "16 KiB exactly", in: hostile{body: padBody(httpapi.MaxBodyBytes)}},
		{name: "16 KiB and one byte", in: hostile{body: padBody(httpapi.MaxBodyBytes + 1)}, wantFields: []string{"body"}},
		{name: "16 KiB exactly, base64", in: hostile{body: base64.StdEncoding.EncodeToString([]byte(padBody(httpapi.MaxBodyBytes))), base64: true}},
		{name: "16 KiB and one byte, base64", in: hostile{body: base64.StdEncoding.EncodeToString([]byte(padBody(httpapi.MaxBodyBytes + 1))), base64: true}, wantFields: []string{"body"}},
		{name: `{"a": repeated`, in: hostile{body: strings.Repeat(`{"a":`, 3000)}, wantFields: []string{"body"}},
		{name: "nesting past the decoder's limit within 16 KiB", in: hostile{body: `{"x":` + strings.Repeat("[", 10001)}, wantFields: []string{"body"}},
		{name: "deep nesting within the limits is an ignored member", in: hostile{body: deepOK}},
		{name: "null body", in: hostile{body: `null`}, wantFields: []string{"body"}},
		{name: "base64 URL alphabet", in: hostile{body: base64.URLEncoding.EncodeToString([]byte(`{"shoppingCartIdentifier":"c","x":"??>>"` + redirect)), base64: true}, wantFields: []string{"body"}},
		{name: "base64 without padding", in: hostile{body: base64.RawStdEncoding.EncodeToString([]byte(padBody(100))), base64: true}, wantFields: []string{"body"}},
		{name: "base64 of invalid UTF-8", in: hostile{body: base64.StdEncoding.EncodeToString([]byte("{\"shoppingCartIdentifier\":\"\xc0\xaf\"" + redirect)), base64: true}, wantFields: []string{"body"}},
		{name: "plain body flagged base64", in: hostile{body: fuzzValidBody, base64: true}, wantFields: []string{"body"}},

		// Members.
		{name: "duplicate key spelt with an escape", in: hostile{body: `{"shoppingCartIdentifier":"a","shoppingCart\u0049dentifier":"b"` + redirect}, wantFields: []string{"shoppingCartIdentifier"}},
		{name: "duplicate redirect with equal values", in: hostile{body: `{"shoppingCartIdentifier":"a","redirectUrl":"https://book.example.com","redirectUrl":"https://book.example.com"}`}, wantFields: []string{"redirectUrl"}},
		{name: "names are case-sensitive", in: hostile{body: `{"ShoppingCartIdentifier":"x y","shoppingCartIdentifier":"a"` + redirect}},
		{name: "objects and arrays where strings belong", in: hostile{body: `{"shoppingCartIdentifier":{"a":"b"},"customizationIdentifier":["c"],"redirectUrl":{},"ga4MeasurementId":false}`}, wantFields: []string{"shoppingCartIdentifier", "customizationIdentifier", "redirectUrl", "ga4MeasurementId"}},
		{name: "null where required", in: hostile{body: `{"shoppingCartIdentifier":null,"redirectUrl":null}`}, wantFields: []string{"shoppingCartIdentifier", "redirectUrl"}},
		{name: "lone surrogate escape", in: hostile{body: `{"shoppingCartIdentifier":"a\ud800"` + redirect}, wantFields: []string{"shoppingCartIdentifier"}},
		{name: "NUL escape in the redirect host", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com\u0000.evil.test/"}`}, wantFields: []string{"redirectUrl"}},

		// Headers.
		{name: "upper-case media type", in: hostile{body: fuzzValidBody, contentType: "APPLICATION/JSON"}},
		{name: "quoted charset", in: hostile{body: fuzzValidBody, contentType: `application/json; charset="UTF-8"`}},
		{name: "unknown parameter", in: hostile{body: fuzzValidBody, contentType: "application/json; q=1"}},
		{name: "empty content type", in: hostile{body: fuzzValidBody, headerName: "Content-Type"}, wantFields: []string{"Content-Type"}},
		{name: "garbage parameters", in: hostile{body: fuzzValidBody, contentType: "application/json; ;;=;"}, wantFields: []string{"Content-Type"}},
		{name: "charset twice", in: hostile{body: fuzzValidBody, contentType: "application/json; charset=utf-8; charset=latin1"}, wantFields: []string{"Content-Type"}},
		{name: "combined content types", in: hostile{body: fuzzValidBody, contentType: "application/json, text/plain"}, wantFields: []string{"Content-Type"}},
		{name: "problem+json is not json", in: hostile{body: fuzzValidBody, contentType: "application/problem+json"}, wantFields: []string{"Content-Type"}},
		{name: "content type in mixed case name", in: hostile{body: fuzzValidBody, headerName: "cOnTeNt-TyPe", headerValue: "text/plain"}, wantFields: []string{"Content-Type"}},
		{name: "wink version 2", in: hostile{body: fuzzValidBody, winkVersion: "2"}, wantFields: []string{"Wink-Version"}},
		{name: "wink version with a space", in: hostile{body: fuzzValidBody, winkVersion: "2.0 "}, wantFields: []string{"Wink-Version"}},
		{name: "wink version empty", in: hostile{body: fuzzValidBody, headerName: "Wink-Version"}, wantFields: []string{"Wink-Version"}},
		{name: "wink version combined", in: hostile{body: fuzzValidBody, winkVersion: "2.0,2.0"}, wantFields: []string{"Wink-Version"}},
		{name: "headers and body both broken", in: hostile{body: `[`, contentType: "text/plain", winkVersion: "9"}, wantFields: []string{"Content-Type", "Wink-Version", "body"}},

		// Redirect URLs.
		{name: "user and password", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://user:pass@book.example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "backslash before user-info", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://evil.test\\@book.example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "backslash as path", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com\\evil.test/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "escaped slash in user-info", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com%2F@evil.test/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "protocol-relative", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"//book.example.com/x"}`}, wantFields: []string{"redirectUrl"}},
		{name: "three slashes", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https:///evil.test/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "tab in the host", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.exa\tmple.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "leading space", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":" https://book.example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "javascript in upper case", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"JavaScript://book.example.com/%0aalert(1)"}`}, wantFields: []string{"redirectUrl"}},
		{name: "data URL with https in it", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"data:text/html;base64,https://book.example.com"}`}, wantFields: []string{"redirectUrl"}},
		{name: "IPv6 zone", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://[fe80::1%25en0]/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "empty label", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book..example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "leading hyphen", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://-book.example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "bad punycode", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://xn--a.example.com/"}`}, wantFields: []string{"redirectUrl"}},
		{name: "redirect of 2048 characters, some of two bytes", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com/` + strings.Repeat("ü", 2048-len("https://book.example.com/")) + `"}`}},
		{name: "redirect of 2049 characters, some of two bytes", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com/` + strings.Repeat("ü", 2049-len("https://book.example.com/")) + `"}`}, wantFields: []string{"redirectUrl"}},
		{name: "redirect of 2048 characters", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://book.example.com/` + strings.Repeat("a", 2048-len("https://book.example.com/")) + `"}`}},
		{name: "upper-case scheme", in: hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"HTTPS://BOOK.EXAMPLE.COM/"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, uc := checkHostile(t, tt.in)
			if tt.wantFields == nil {
				if resp.StatusCode != 200 || uc.calls != 1 {
					t.Fatalf("status %d, body %s; want 200 through the use case", resp.StatusCode, resp.Body)
				}
				return
			}
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			var p httpapi.Problem
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Properties.Errors {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tt.wantFields) {
				t.Errorf("fields %v, want %v", got, tt.wantFields)
			}
		})
	}
}

// TestRedirectHostReachesUseCase: the request reaching the use case carries the host a browser
// would go to, normalised (IDNA A-label, lower case, no port, no trailing dot), so that the
// allow-list compares the real host. Look-alike hosts stay distinct from the ASCII name.
func TestRedirectHostReachesUseCase(t *testing.T) {
	allow, err := checkout.ParseHostPatterns([]string{"book.example.com", "bücher.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url     string
		host    string
		allowed bool
	}{
		{"https://bücher.example/x", "xn--bcher-kva.example", true},
		{"https://xn--bcher-kva.example./", "xn--bcher-kva.example", true},
		{"https://b%C3%BCcher.example/", "xn--bcher-kva.example", true},
		{"https://bооk.example.com/", "xn--bk-fmca.example.com", false}, // Cyrillic о: mixed script
		{"https://bοοk.example.com/", "xn--bk-jbca.example.com", false}, // Greek ο
		{"https://ЬООК.example.com/", "xn--j1aha8c.example.com", false}, // all Cyrillic
		{"https://xn--bk-fmca.example.com/", "xn--bk-fmca.example.com", false},
		{"https://ｂｏｏｋ.example.com/", "book.example.com", true}, // full-width letters map to ASCII, as in browsers
		{"https://book.example.com。evil.test/", "book.example.com.evil.test", false},
		{"https://book.example.com.evil.test/", "book.example.com.evil.test", false},
		{"https://evil.test#book.example.com", "evil.test", false},
		{"https://evil.test?@book.example.com", "evil.test", false},
		{"https://evil.test/@book.example.com", "evil.test", false},
		{"HTTPS://BOOK.EXAMPLE.COM:8443", "book.example.com", true},
		{"https://[::1]:8443/", "::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"shoppingCartIdentifier": "c", "redirectUrl": tt.url})
			resp, uc := checkHostile(t, hostile{body: string(body)})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %s", resp.StatusCode, resp.Body)
			}
			if uc.got.Redirect.URL != tt.url || uc.got.Redirect.Host != tt.host {
				t.Errorf("redirect %+v, want host %q", uc.got.Redirect, tt.host)
			}
			if got := allow.Allows(uc.got.Redirect.Host); got != tt.allowed {
				t.Errorf("allow-list [book.example.com bücher.example] allows %q: %v, want %v", uc.got.Redirect.Host, got, tt.allowed)
			}
		})
	}
}

// TestOracleSeesBrokenRules guards the oracle itself: for events that break the contract, it must
// name the broken fields (otherwise the fuzz target would accept a 200 for them).
func TestOracleSeesBrokenRules(t *testing.T) {
	tests := []struct {
		in   hostile
		want []string
	}{
		{hostile{body: fuzzValidBody}, nil},
		{hostile{body: fuzzValidBody, contentType: "text/plain", winkVersion: "1"}, []string{"Content-Type", "Wink-Version"}},
		{hostile{body: `{"shoppingCartIdentifier":"a b","redirectUrl":"http://book.example.com"}`}, []string{"shoppingCartIdentifier", "redirectUrl"}},
		{hostile{body: `{"shoppingCartIdentifier":"c","redirectUrl":"https://a@book.example.com","ga4ClientId":"1.2.3","ga4SessionId":"x","ga4MeasurementId":"G-abc"}`}, []string{"redirectUrl", "ga4ClientId", "ga4SessionId", "ga4MeasurementId"}},
		{hostile{body: `{"shoppingCartIdentifier":"c","shoppingCartIdentifier":"c","redirectUrl":1}`}, []string{"shoppingCartIdentifier", "redirectUrl"}},
		{hostile{body: `{}`}, []string{"shoppingCartIdentifier", "redirectUrl"}},
		{hostile{body: `{`}, []string{"body"}},
		{hostile{body: padBody(httpapi.MaxBodyBytes + 1)}, []string{"body"}},
	}
	for _, tt := range tests {
		ev := tt.in.event()
		if got := expectContract(tt.in, ev.Headers).mustFail; !slices.Equal(got, tt.want) {
			t.Errorf("oracle for %.80q: %v, want %v", tt.in.body, got, tt.want)
		}
	}
}
