package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The routes of the HTTP API in template.yaml.
const (
	routePath        = "/api/checkout"
	routeKey         = http.MethodPost + " " + routePath
	webhookRoutePath = "/api/stripe/webhook"
	webhookRouteKey  = http.MethodPost + " " + webhookRoutePath
)

// maxBodyBytes caps what the server reads of a body. API Gateway accepts up to 10 MB; anything
// above the function's own 16 KiB limit just has to reach the function so that it answers the
// "too large" problem itself, so 1 MiB is plenty.
const maxBodyBytes = 1 << 20

// functionARN is the made-up ARN that the invocation context carries.
const functionARN = "arn:aws:lambda:us-east-1:123456789012:function:checkout-local"

// invokeFunc is a Lambda handler: (*httpapi.Handler).Handle in the server.
type invokeFunc func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// route is one route of the HTTP API: the function it invokes, and whether the JWT authorizer
// guards it (its claims are then passed on, as the authorizer would).
type route struct {
	invoke invokeFunc
	jwt    bool
}

// gateway plays API Gateway's HTTP API (payload format 2.0) and Lambda in front of the
// functions: it routes, turns the request into an event (with the JWT claims an authorizer
// would add), invokes the route's handler under Lambda's deadline and writes its response back.
type gateway struct {
	routes  map[string]route // by route key, "POST /api/checkout"
	timeout time.Duration    // the functions' Timeout in template.yaml
	log     *slog.Logger
	now     func() time.Time
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	w.Header().Set("Apigw-Requestid", requestID)
	// HTTP APIs route on "METHOD path" and answer every unmatched request, a known path with
	// another method included, with this 404.
	key := r.Method + " " + r.URL.Path
	rt, ok := g.routes[key]
	if !ok {
		g.log.Info("no route", slog.String("method", r.Method), slog.String("path", r.URL.Path))
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	ev := g.event(r, body, requestID, key, rt.jwt)

	// Lambda does not stop a function whose caller hung up: only the deadline ends it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), g.timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: newUUID(), InvokedFunctionArn: functionARN})

	type result struct {
		resp events.APIGatewayV2HTTPResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// The Lambda runtime reports a panic as a function error.
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		resp, err := rt.invoke(ctx, ev)
		done <- result{resp, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		// Lambda kills the invocation at its timeout; API Gateway then answers 500.
		res.err = fmt.Errorf("task timed out after %v", g.timeout)
	}
	if res.err == nil && res.resp.StatusCode == 0 {
		res.err = errors.New("the function returned no status code")
	}
	if res.err != nil {
		g.log.ErrorContext(ctx, "function error: API Gateway answers 500", slog.String("apiRequestId", requestID), slog.String("error", res.err.Error()))
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	g.write(ctx, w, res.resp, requestID)
}

// event builds the payload 2.0 event API Gateway would send for r on the route key.
func (g *gateway) event(r *http.Request, body []byte, requestID, routeKey string, jwt bool) events.APIGatewayV2HTTPRequest {
	now := g.now()
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "123456789012",
			Stage:        "$default",
			RequestID:    requestID,
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	// Header names are lower-cased and repeated headers joined with commas; cookies move to
	// their own list, as API Gateway does.
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[name] = strings.Join(values, ",")
	}
	ev.Headers["host"] = r.Host
	if xff := ev.Headers["x-forwarded-for"]; xff != "" {
		ev.Headers["x-forwarded-for"] = xff + ", " + sourceIP(r)
	} else {
		ev.Headers["x-forwarded-for"] = sourceIP(r)
	}
	ev.Headers["x-forwarded-proto"] = "http"
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		ev.Headers["x-forwarded-port"] = strconv.Itoa(addr.Port)
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if isText(ev.Headers["content-type"]) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	if authz := ev.Headers["authorization"]; authz != "" && jwt {
		claims, err := bearerClaims(authz)
		if err != nil {
			// In AWS the authorizer would answer 401 itself; here the function does.
			g.log.Warn("Authorization header ignored, no identity passed on", slog.String("apiRequestId", requestID), slog.String("reason", err.Error()))
		} else {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
			}
		}
	}
	return ev
}

// write sends the function's response as API Gateway would.
func (g *gateway) write(ctx context.Context, w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse, requestID string) {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			g.log.ErrorContext(ctx, "function returned a body that is not base64", slog.String("apiRequestId", requestID), slog.String("error", err.Error()))
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		body = decoded
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = nil // send none rather than let net/http guess one
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// writeMessage answers as API Gateway does on its own: {"message": "..."}.
func writeMessage(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"message":"`+message+`"}`)
}

// isText tells whether API Gateway passes a body of this content type as text rather than
// base64: text/*, JSON, XML and JavaScript. Anything else, no content type included, is base64.
func isText(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mediaType, "text/"),
		mediaType == "application/json", strings.HasSuffix(mediaType, "+json"),
		mediaType == "application/xml", strings.HasSuffix(mediaType, "+xml"),
		mediaType == "application/javascript":
		return true
	}
	return false
}

// domainPrefix is the first label of the host name, as in requestContext.domainPrefix.
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newUUID returns a random (version 4) UUID, the shape of Lambda's request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
