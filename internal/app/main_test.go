package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// One local stack (DynamoDB Local, stripe-mock, moto) serves the whole test binary; every test
// uses carts of its own.
var (
	local      *testenv.Env
	db         *dynamodb.Client
	tableNames = testenv.Tables
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	local, err = testenv.Start(ctx, localstack.Options{WithSecretsManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the local stack:", err)
		return 1
	}
	defer local.Stop()
	db = local.DB
	return m.Run()
}

// harness is one test's function with its own Stripe recorder and log buffer.
type harness struct {
	t      *testing.T
	fn     *app.Function
	stripe *testenv.StripeRecorder
	logs   *syncBuffer
}

func newHarness(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	rec, err := testenv.NewStripeRecorder(local.Stack.StripeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fn, err := testenv.Function(ctx, local.Settings(rec.URL(), overrides), logger, app.Options{})
	if err != nil {
		t.Fatalf("build the function: %v", err)
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
	return resp.StatusCode, decodeJSON(h.t, resp.Body)
}

// mustCheckout checks out and fails the test unless the answer is a complete 200.
func (h *harness) mustCheckout(caller, body string) map[string]any {
	h.t.Helper()
	status, answer := h.checkout(caller, body)
	mustOK(h.t, status, answer)
	return answer
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

func decodeJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Errorf("body %q: %v", body, err)
	}
	return m
}

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
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
