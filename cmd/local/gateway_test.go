package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// newTestGateway serves invoke behind the gateway on a test server.
func newTestGateway(t *testing.T, timeout time.Duration, invoke invokeFunc) *httptest.Server {
	t.Helper()
	g := &gateway{routes: map[string]route{routeKey: {invoke: invoke, jwt: true}}, timeout: timeout, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func TestRequestBecomesPayload2Event(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	var deadline time.Duration
	var lambdaID string
	srv := newTestGateway(t, functionTimeout, func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got = ev
		if dl, ok := ctx.Deadline(); ok {
			deadline = time.Until(dl)
		}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			lambdaID = lc.AwsRequestID
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: "{}"}, nil
	})
	// Claims of every JSON type; the signature is not looked at.
	token := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + base64.RawURLEncoding.EncodeToString(
		[]byte(`{"sub":"traveller-alice","exp":1795431600,"ratio":1.5,"groups":["a","b"],"email_verified":true,"addr":{"c":"PT"},"gone":null}`)) + ".c2ln"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+routePath+"?a=1&a=2&b=x", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Set("Cookie", "a=1; b=2")
	req.Header.Set("User-Agent", "test-agent")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if got.Version != "2.0" || got.RouteKey != routeKey || got.RawPath != routePath || got.RawQueryString != "a=1&a=2&b=x" {
		t.Errorf("event head: %q %q %q %q", got.Version, got.RouteKey, got.RawPath, got.RawQueryString)
	}
	if got.Headers["x-multi"] != "one,two" || got.Headers["content-type"] != "application/json" || got.Headers["cookie"] != "" {
		t.Errorf("headers: %v", got.Headers)
	}
	if strings.Join(got.Cookies, " ") != "a=1 b=2" || got.QueryStringParameters["a"] != "1,2" {
		t.Errorf("cookies %v, query %v", got.Cookies, got.QueryStringParameters)
	}
	if got.Body != `{"k":"v"}` || got.IsBase64Encoded {
		t.Errorf("body %q base64 %v", got.Body, got.IsBase64Encoded)
	}
	h := got.RequestContext.HTTP
	if h.Method != "POST" || h.Path != routePath || h.Protocol != "HTTP/1.1" || h.SourceIP != "127.0.0.1" || h.UserAgent != "test-agent" {
		t.Errorf("requestContext.http: %+v", h)
	}
	if got.RequestContext.RequestID == "" || got.RequestContext.RequestID != resp.Header.Get("Apigw-Requestid") || got.RequestContext.TimeEpoch == 0 {
		t.Errorf("requestId %q (header %q), timeEpoch %d", got.RequestContext.RequestID, resp.Header.Get("Apigw-Requestid"), got.RequestContext.TimeEpoch)
	}
	if deadline <= functionTimeout-time.Second || deadline > functionTimeout || lambdaID == "" {
		t.Errorf("deadline in %v, Lambda request id %q: want about %v and an id", deadline, lambdaID, functionTimeout)
	}
	want := map[string]string{"sub": "traveller-alice", "exp": "1795431600", "ratio": "1.5", "groups": "[a b]", "email_verified": "true", "addr": `{"c":"PT"}`}
	a := got.RequestContext.Authorizer
	if a == nil || a.JWT == nil || len(a.JWT.Claims) != len(want) {
		t.Fatalf("authorizer: %+v", a)
	}
	for k, v := range want {
		if a.JWT.Claims[k] != v {
			t.Errorf("claim %s = %q, want %q", k, a.JWT.Claims[k], v)
		}
	}
}

func TestBodyEncoding(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		body        string
		base64      bool
	}{
		{"application/json; charset=utf-8", `{"a":"é"}`, false},
		{"text/plain", "hello", false},
		{"application/problem+json", "{}", false},
		{"application/json", "\xff\xfe", true},
		{"application/octet-stream", "abc", true},
		{"application/x-www-form-urlencoded", "a=b", true},
		{"", "{}", true},
	} {
		var got events.APIGatewayV2HTTPRequest
		srv := newTestGateway(t, time.Second, func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = ev
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
		})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+routePath, strings.NewReader(tc.body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		body := got.Body
		if got.IsBase64Encoded {
			b, _ := base64.StdEncoding.DecodeString(body)
			body = string(b)
		}
		if got.IsBase64Encoded != tc.base64 || body != tc.body {
			t.Errorf("%q %q: base64 %v body %q, want base64 %v", tc.contentType, tc.body, got.IsBase64Encoded, body, tc.base64)
		}
	}
}

func TestResponseIsWrittenBack(t *testing.T) {
	srv := newTestGateway(t, time.Second, func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{
			StatusCode:        http.StatusCreated,
			Headers:           map[string]string{"Content-Type": "application/octet-stream", "X-One": "1"},
			MultiValueHeaders: map[string][]string{"X-Many": {"a", "b"}},
			Cookies:           []string{"s=1; HttpOnly"},
			Body:              base64.StdEncoding.EncodeToString([]byte{0, 1, 2}),
			IsBase64Encoded:   true,
		}, nil
	})
	resp, err := http.Post(srv.URL+routePath, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != "\x00\x01\x02" || resp.Header.Get("X-One") != "1" ||
		strings.Join(resp.Header.Values("X-Many"), ",") != "a,b" || resp.Header.Get("Set-Cookie") != "s=1; HttpOnly" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// What API Gateway answers by itself: no route, a body over its limit, a failed invocation.
func TestGatewayAnswers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	invoke := func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		switch ev.Body {
		case "error":
			return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
		case "panic":
			panic("boom")
		case "no status":
			return events.APIGatewayV2HTTPResponse{Body: "x"}, nil
		case "hang":
			<-release // ignores its deadline, as a stuck function would
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
	}
	srv := newTestGateway(t, 200*time.Millisecond, invoke)
	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"GET", routePath, "", 404, "Not Found"},
		{"POST", "/api/checkout/", "", 404, "Not Found"},
		{"POST", "/other", "", 404, "Not Found"},
		{"POST", routePath, strings.Repeat("a", maxBodyBytes+1), 413, "Request Entity Too Large"},
		{"POST", routePath, "error", 500, "Internal Server Error"},
		{"POST", routePath, "panic", 500, "Internal Server Error"},
		{"POST", routePath, "no status", 500, "Internal Server Error"},
		{"POST", routePath, "hang", 500, "Internal Server Error"},
		{"POST", routePath, strings.Repeat("a", maxBodyBytes), 200, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := ""
		if tc.message != "" {
			want = `{"message":"` + tc.message + `"}`
		}
		if resp.StatusCode != tc.status || string(body) != want {
			t.Errorf("%s %s (%.10q): %d %s, want %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.status, want)
		}
	}
}

func TestBearerClaims(t *testing.T) {
	alice := ownerToken("traveller-alice", "sub")
	for _, header := range []string{"Bearer " + alice, "bearer " + alice, alice, "  Bearer   " + alice + " "} {
		claims, err := bearerClaims(header)
		if err != nil || claims["sub"] != "traveller-alice" || len(claims) != 1 {
			t.Errorf("%q: %v %v", header, claims, err)
		}
	}
	for _, header := range []string{"Bearer", "Bearer abc", "Basic dXNlcjpwYXNz", "Bearer a.b", "Bearer a.!!!.c",
		"Bearer a." + base64.RawURLEncoding.EncodeToString([]byte(`["x"]`)) + ".",
		"Bearer a." + base64.RawURLEncoding.EncodeToString([]byte(`null`)) + "."} {
		if claims, err := bearerClaims(header); err == nil {
			t.Errorf("%q: claims %v, want an error", header, claims)
		}
	}
	// Another identity claim is carried next to sub.
	claims, err := bearerClaims(ownerToken("t@example.com", "email"))
	if err != nil || claims["email"] != "t@example.com" || claims["sub"] != "t@example.com" {
		t.Errorf("IDENTITY_CLAIM=email token: %v %v", claims, err)
	}
}
