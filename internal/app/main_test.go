package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
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
	"github.com/winktravel/checkout/internal/testenv/apispec"
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
	t        *testing.T
	fn       *app.Function
	stripe   *testenv.StripeRecorder
	logs     *testenv.LogBuffer
	settings func(string) string
	ga4      *testenv.GA4Collector
	hookMu   sync.Mutex
	hook     *app.Webhook // built on first use
}

func newHarness(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	rec, err := testenv.NewStripeRecorder(local.Stack.StripeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	collector, err := testenv.StartGA4Collector(map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(collector.Close)
	all := map[string]string{
		"GA4_ENDPOINT":    collector.Endpoint(),
		"GA4_API_SECRETS": `{"` + testenv.GA4MeasurementID + `":"` + testenv.GA4APISecret + `"}`,
	}
	for k, v := range overrides {
		all[k] = v
	}
	overrides = all
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	settings := local.Settings(rec.URL(), overrides)
	fn, err := testenv.Function(ctx, settings, logger, app.Options{Metrics: logs})
	if err != nil {
		t.Fatalf("build the function: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function log:\n%s", logs.String())
		}
	})
	return &harness{t: t, fn: fn, stripe: rec, logs: logs, settings: settings, ga4: collector}
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

// invoke runs the checkout handler; an answer that api/openapi.yaml does not describe fails the
// test.
func (h *harness) invoke(ev events.APIGatewayV2HTTPRequest, remaining time.Duration) events.APIGatewayV2HTTPResponse {
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	resp, err := h.fn.Handler.Handle(ctx, ev)
	if err != nil {
		h.t.Fatalf("handler returned an error: %v", err)
	}
	apispec.Check(h.t, apispec.Checkout, resp)
	return resp
}

// apiEvent is a request as API Gateway sends it.
func apiEvent(caller, body string) events.APIGatewayV2HTTPRequest {
	return testenv.APIEvent(caller, body)
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

// deleteCart deletes a cart, as the cart service may at any time.
func deleteCart(t *testing.T, id string) {
	t.Helper()
	if _, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(tableNames["CartsTable"]),
		Key:       map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: id}},
	}); err != nil {
		t.Fatal(err)
	}
}

// getCart reads a cart's raw item.
func getCart(t *testing.T, id string) testenv.Item {
	t.Helper()
	item, err := local.Cart(context.Background(), id)
	if err != nil || item == nil {
		t.Fatalf("read cart %s: %v", id, err)
	}
	return item
}

// bookingsOfCart returns a cart's bookings.
func bookingsOfCart(t *testing.T, cartID string) []testenv.Item {
	t.Helper()
	items, err := local.BookingsOfCart(context.Background(), cartID)
	if err != nil {
		t.Fatalf("bookings of cart %s: %v", cartID, err)
	}
	return items
}

// bookingsOfGroup queries the byGroup index.
func bookingsOfGroup(t *testing.T, group string) []testenv.Item {
	t.Helper()
	items, err := local.BookingsOfGroup(context.Background(), group)
	if err != nil {
		t.Fatalf("query byGroup: %v", err)
	}
	return items
}

var str = testenv.String
