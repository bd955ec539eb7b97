package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/tables"
)

// One local stack (DynamoDB Local, stripe-mock, moto) serves the whole test binary; every test
// uses carts of its own.
var (
	stack *localstack.Stack
	db    *dynamodb.Client
)

var tableNames = map[string]string{
	"CartsTable":          "carts",
	"BookingsTable":       "bookings",
	"CustomizationsTable": "customizations",
	"CustomersTable":      "customers",
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	stack, err = localstack.Start(ctx, localstack.Options{WithSecretsManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the local stack:", err)
		return 1
	}
	defer stack.Stop()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB":        stack.DynamoEndpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": stack.SecretsManagerEndpoint,
		"AWS_REGION":                       "us-east-1",
		"AWS_ACCESS_KEY_ID":                "local",
		"AWS_SECRET_ACCESS_KEY":            "local",
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_CONFIG_FILE":                  os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":      os.DevNull,
	} {
		os.Setenv(k, v)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	path, err := tables.TemplatePath()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defs, err := tables.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := tables.Create(ctx, db, defs, tableNames); err != nil {
		fmt.Fprintln(os.Stderr, "create tables:", err)
		return 1
	}
	return m.Run()
}

// env is the function's environment in the tests; settings can be overridden per test.
func env(stripeURL string, overrides map[string]string) func(string) string {
	vars := map[string]string{
		"CARTS_TABLE":               tableNames["CartsTable"],
		"BOOKINGS_TABLE":            tableNames["BookingsTable"],
		"CUSTOMIZATIONS_TABLE":      tableNames["CustomizationsTable"],
		"CUSTOMERS_TABLE":           tableNames["CustomersTable"],
		"STRIPE_SECRET_KEY":         testStripeKey,
		"STRIPE_API_BASE":           stripeURL,
		"ALLOWED_REDIRECT_HOSTS":    "book.example.com,*.wink.test",
		"PROBLEM_TYPE_BASE":         "https://api.example.com/problems/",
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoEndpoint,
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

const testStripeKey = "sk_test_4eC39HqLyjWDarjtT1zdp7dcCheckoutTests"

// harness is one test's function with its own Stripe recorder and log buffer.
type harness struct {
	t      *testing.T
	fn     *app.Function
	stripe *stripeRecorder
	logs   *syncBuffer
}

func newHarness(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	rec := newStripeRecorder(t)
	cfg, err := config.FromEnv(env(rec.URL(), overrides))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fn, err := app.New(ctx, cfg, logger, app.Options{})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function log:\n%s", logs.String())
		}
	})
	return &harness{t: t, fn: fn, stripe: rec, logs: logs}
}

// checkout sends a request as API Gateway would, with Lambda's deadline ten seconds away.
func (h *harness) checkout(caller, body string) (int, map[string]any) {
	h.t.Helper()
	resp := h.invoke(apiEvent(caller, body), 10*time.Second)
	var decoded map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &decoded); err != nil {
		h.t.Fatalf("response body %q: %v", resp.Body, err)
	}
	return resp.StatusCode, decoded
}

func (h *harness) invoke(ev events.APIGatewayV2HTTPRequest, remaining time.Duration) events.APIGatewayV2HTTPResponse {
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	resp, err := h.fn.Handler.Handle(ctx, ev)
	if err != nil {
		h.t.Fatalf("handler returned an error: %v", err)
	}
	return resp
}

var requestCounter struct {
	sync.Mutex
	n int
}

func apiEvent(caller, body string) events.APIGatewayV2HTTPRequest {
	requestCounter.Lock()
	requestCounter.n++
	id := "req-" + strconv.Itoa(requestCounter.n)
	requestCounter.Unlock()
	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "POST /api/checkout",
		RawPath:  "/api/checkout",
		Headers:  map[string]string{"content-type": "application/json", "wink-version": "2.0"},
		Body:     body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: id,
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/checkout"},
		},
	}
	if caller != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": caller}},
		}
	}
	return ev
}

func checkoutBody(cartID string, extra string) string {
	return `{"shoppingCartIdentifier":"` + cartID + `","redirectUrl":"https://book.example.com/thanks"` + extra + `}`
}

// stripeRecorder sits between the function and stripe-mock: it records every request that
// stripe-mock sees, and can fail or rewrite calls to simulate Stripe's behaviour.
type stripeRecorder struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []stripeRequest
	// intercept, when it returns a status, answers with it and body instead of forwarding.
	intercept func(method, path string) (status int, body string)
	// stall, when it returns true, holds the call until the client gives up (a hung Stripe).
	stall func(method, path string) bool
	// rewrite may change stripe-mock's response body.
	rewrite func(method, path string, body []byte) []byte
}

type stripeRequest struct {
	Method, Path   string
	IdempotencyKey string
	StripeVersion  string
	Authorization  string
	Form           url.Values
}

func newStripeRecorder(t *testing.T) *stripeRecorder {
	target, err := url.Parse(stack.StripeURL)
	if err != nil {
		t.Fatal(err)
	}
	r := &stripeRecorder{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
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
		},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.requests = append(r.requests, stripeRequest{
			Method: req.Method, Path: req.URL.Path,
			IdempotencyKey: req.Header.Get("Idempotency-Key"),
			StripeVersion:  req.Header.Get("Stripe-Version"),
			Authorization:  req.Header.Get("Authorization"),
			Form:           form,
		})
		intercept, stall := r.intercept, r.stall
		r.mu.Unlock()
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
	t.Cleanup(r.srv.Close)
	return r
}

func (r *stripeRecorder) URL() string { return r.srv.URL }

// setUnavailable makes Stripe answer 503 to the calls f selects (nil: none).
func (r *stripeRecorder) setUnavailable(f func(method, path string) bool) {
	r.setIntercept(func(method, path string) (int, string) {
		if f != nil && f(method, path) {
			return http.StatusServiceUnavailable, `{"error":{"type":"api_error","message":"unavailable"}}`
		}
		return 0, ""
	})
}

func (r *stripeRecorder) setStall(f func(method, path string) bool) {
	r.mu.Lock()
	r.stall = f
	r.mu.Unlock()
}

func (r *stripeRecorder) setIntercept(f func(method, path string) (int, string)) {
	r.mu.Lock()
	r.intercept = f
	r.mu.Unlock()
}

func (r *stripeRecorder) setRewrite(f func(method, path string, body []byte) []byte) {
	r.mu.Lock()
	r.rewrite = f
	r.mu.Unlock()
}

// calls returns the recorded requests to method and path.
func (r *stripeRecorder) calls(method, path string) []stripeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []stripeRequest
	for _, req := range r.requests {
		if req.Method == method && req.Path == path {
			out = append(out, req)
		}
	}
	return out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- seeding, as the cart service writes its tables ----

type itemSpec struct{ amount, currency string }

type cartSpec struct {
	id, owner, status, currency string
	items                       []itemSpec
	expiresAt                   int64 // 0: an hour from now
	noExpiry                    bool
}

func putCart(t *testing.T, c cartSpec) {
	t.Helper()
	if c.currency == "" {
		c.currency = "EUR"
	}
	cart := sample.Cart{ID: c.id, Owner: c.owner, Status: c.status, Currency: c.currency}
	for i, it := range c.items {
		cart.Items = append(cart.Items, sample.Item{HotelName: fmt.Sprintf("Hotel %d", i+1), Amount: it.amount, Currency: it.currency})
	}
	switch {
	case c.expiresAt != 0:
		cart.ExpiresAt = time.Unix(c.expiresAt, 0)
	case !c.noExpiry:
		cart.ExpiresAt = time.Now().Add(time.Hour)
	}
	if err := sample.PutCart(context.Background(), db, tableNames["CartsTable"], cart); err != nil {
		t.Fatal(err)
	}
}

func putCustomization(t *testing.T, id string, active bool, hosts []string, suffix string) {
	t.Helper()
	c := sample.Customization{ID: id, Active: active, AllowedRedirectHosts: hosts, StatementDescriptorSuffix: suffix}
	if err := sample.PutCustomization(context.Background(), db, tableNames["CustomizationsTable"], c); err != nil {
		t.Fatal(err)
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// getCart reads a cart's raw item.
func getCart(t *testing.T, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(tableNames["CartsTable"]), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"identifier": s(id)},
	})
	if err != nil || out.Item == nil {
		t.Fatalf("read cart %s: %v", id, err)
	}
	return out.Item
}

// bookingsOfCart scans the bookings table for a cart's bookings.
func bookingsOfCart(t *testing.T, cartID string) []map[string]types.AttributeValue {
	t.Helper()
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{
		TableName:                 aws.String(tableNames["BookingsTable"]),
		FilterExpression:          aws.String("shoppingCartIdentifier = :c"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": s(cartID)},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan bookings: %v", err)
		}
		out = append(out, page.Items...)
	}
	return out
}

func str(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

func decodeJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Errorf("body %q: %v", body, err)
	}
	return m
}

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
