package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

// The function reaches both of its dependencies through Toxiproxy:
//
//	function -> DynamoObserver -> toxiproxy "dynamodb" -> DynamoDB Local
//	function -> toxiproxy "stripe" -> StripeRecorder -> stripe-mock
//
// The observer and the recorder see every request as it arrives, before Toxiproxy carries it on
// (DynamoDB) or answers it (Stripe), so a test adds its toxics at exactly the step it breaks.
// Toxics belong to a proxy, not to a request: the tests of this package run one at a time.
var (
	env     *testenv.Env
	fn      *app.Function
	dynamo  *testenv.DynamoObserver
	stripe  *testenv.StripeRecorder
	toxics  *toxiproxy.Client
	proxies = map[string]*toxiproxy.Proxy{}
	logs    = &testenv.LogBuffer{}
	logger  = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// settings configure every function the tests build: DynamoDB and Stripe through the proxies.
	settings func(string) string
)

const (
	// faultRemaining is the Lambda time left for a faulty call: short, so that a call that hangs
	// ends quickly (the handler keeps 300 ms of it for its answer).
	faultRemaining = 3 * time.Second
	retryRemaining = 10 * time.Second
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if env, err = testenv.Start(ctx, localstack.Options{WithToxiproxy: true}); err != nil {
		return fail("start the local stack", err)
	}
	defer env.Stop()
	if stripe, err = testenv.NewStripeRecorder(env.Stack.StripeURL); err != nil {
		return fail("start the Stripe recorder", err)
	}
	defer stripe.Close()

	toxics = toxiproxy.NewClient(env.Stack.ToxiproxyURL)
	upstreams := map[string]string{"dynamodb": env.Stack.DynamoEndpoint, "stripe": stripe.URL()}
	for name, upstream := range upstreams {
		p, err := toxics.CreateProxy(name, "127.0.0.1:0", strings.TrimPrefix(upstream, "http://"))
		if err != nil {
			return fail("create the "+name+" proxy", err)
		}
		proxies[name] = p
	}
	if dynamo, err = testenv.NewDynamoObserver("http://" + proxies["dynamodb"].Listen); err != nil {
		return fail("start the DynamoDB observer", err)
	}
	defer dynamo.Close()

	// The SDK takes the endpoint from its standard variable when the function is built; the
	// setting tells the function that the endpoint is a local one.
	if err := os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo.URL()); err != nil {
		return fail("point the function at the proxy", err)
	}
	settings = env.Settings("http://"+proxies["stripe"].Listen, map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": dynamo.URL()})
	if fn, err = testenv.Function(ctx, settings, logger, app.Options{Metrics: io.Discard}); err != nil {
		return fail("build the function", err)
	}
	return m.Run()
}

// startScenario gives a scenario a function of its own, as if it ran in a fresh warm container,
// and an empty log that is printed if the scenario fails. The AWS SDK's retry quota is a token
// bucket of each DynamoDB client: the retries of one scenario must not drain the quota that the
// SDK retries of the next one rely on.
func startScenario(t *testing.T) {
	t.Helper()
	logs.Reset()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function log:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if fn, err = testenv.Function(ctx, settings, logger, app.Options{Metrics: io.Discard}); err != nil {
		t.Fatalf("build the function: %v", err)
	}
}

// toxic is one Toxiproxy toxic. Upstream (towards DynamoDB or Stripe) it loses the request before
// it arrives; downstream it loses the answer after the work was done.
type toxic struct {
	proxy, kind, stream string
	attrs               toxiproxy.Attributes
}

func timeout(proxy, stream string) toxic {
	return toxic{proxy, "timeout", stream, toxiproxy.Attributes{"timeout": 0}} // drop data until removed
}

func reset(proxy, stream string) toxic {
	return toxic{proxy, "reset_peer", stream, toxiproxy.Attributes{"timeout": 0}} // RST on the first byte
}

func latency(proxy string) toxic {
	return toxic{proxy, "latency", "downstream", toxiproxy.Attributes{"latency": 100, "jitter": 50}}
}

// Each fault hits one step of the flow of a fresh cart (and a fresh traveller, so that the
// Stripe customer is created every time). After the faulty call, with the toxics removed, the
// same request must complete, and the tables must hold exactly one group of bookings for the
// cart.
func TestFaultAtEachStep(t *testing.T) {
	tests := []struct {
		name string
		// on is the call whose arrival adds the toxics: a DynamoDB operation or a Stripe
		// "METHOD /path"; "" adds them before the request.
		on         string
		toxics     []toxic
		wantStatus int
		wantCart   string        // the cart's status after the faulty call: how far the flow got
		remaining  time.Duration // Lambda time left for the faulty call; 0 means faultRemaining
	}{
		// The reads never reach DynamoDB.
		{"reads time out", "GetItem", []toxic{timeout("dynamodb", "upstream")}, 500, "OPEN", 0},
		{"reads reset", "GetItem", []toxic{reset("dynamodb", "upstream")}, 500, "OPEN", 0},
		// The transaction commits, its answer is lost (and the SDK's retries with it).
		{"transaction answer times out", "TransactWriteItems", []toxic{timeout("dynamodb", "downstream")}, 500, "CHECKING_OUT", 0},
		{"transaction answer reset", "TransactWriteItems", []toxic{reset("dynamodb", "downstream")}, 500, "CHECKING_OUT", 0},
		// Concurrent with the transaction: Stripe creates the customer, its answer is lost.
		{"customer answer reset", "POST /v1/customers", []toxic{reset("stripe", "downstream")}, 500, "CHECKING_OUT", 0},
		{"customer answer times out", "POST /v1/customers", []toxic{timeout("stripe", "downstream")}, 500, "CHECKING_OUT", 0},
		// Stripe creates the PaymentIntent (and the ephemeral key), the answers are lost.
		{"payment intent answer reset", "POST /v1/payment_intents", []toxic{reset("stripe", "downstream")}, 500, "CHECKING_OUT", 0},
		{"payment intent answer times out", "POST /v1/payment_intents", []toxic{timeout("stripe", "downstream")}, 500, "CHECKING_OUT", 0},
		// The final update never arrives, or is applied and its answer lost.
		{"final update reset", "POST /v1/payment_intents", []toxic{reset("dynamodb", "upstream")}, 500, "CHECKING_OUT", 0},
		{"final update answer times out", "POST /v1/payment_intents", []toxic{timeout("dynamodb", "downstream")}, 500, "CHECKED_OUT", 0},
		// stripe-go sleeps between its retries without looking at the deadline: with little time
		// left, the function must still answer before Lambda's deadline.
		{"payment intent reset with little time left", "POST /v1/payment_intents", []toxic{reset("stripe", "downstream")}, 500, "CHECKING_OUT", 1200 * time.Millisecond},
		// Every call slow (100 ms ± 50 ms on every answer), none failing.
		{"latency everywhere", "", []toxic{latency("dynamodb"), latency("stripe")}, 200, "CHECKED_OUT", 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			startScenario(t)
			cartID, owner := fmt.Sprintf("fault-%d", i), fmt.Sprintf("traveller-fault-%d", i)
			const items = 2
			putCart(t, cartID, owner, items)

			inj := &injector{t: t, toxics: tc.toxics}
			t.Cleanup(func() { inj.stop() })
			switch {
			case tc.on == "":
				inj.fire()
			case strings.Contains(tc.on, " "):
				stripe.SetObserve(func(method, path string) {
					if method+" "+path == tc.on {
						inj.fire()
					}
				})
			default:
				dynamo.SetObserve(func(operation string) {
					if operation == tc.on {
						inj.fire()
					}
				})
			}
			remaining := tc.remaining
			if remaining == 0 {
				remaining = faultRemaining
			}
			ev := testenv.APIEvent(owner, checkoutBody(cartID))
			resp, elapsed := invoke(t, ev, remaining)
			if !inj.stop() {
				t.Fatalf("the fault was never injected: no %q was seen", tc.on)
			}
			group, cause := checkFaultyCall(t, ev, resp, elapsed, remaining, tc.wantStatus, cartID, tc.wantCart, items)
			t.Logf("faulty call: %d in %v, cart %s; logged cause: %s",
				resp.StatusCode, elapsed.Round(10*time.Millisecond), tc.wantCart, cause)

			// The toxics are gone: the same request completes, from where the fault left it.
			retryCompletes(t, owner, cartID, items, group)
		})
	}
}

// checkFaultyCall checks what every faulty call must do, whatever the fault: answer before
// Lambda's deadline with the expected status, a failure being a generic 500 problem, and leave
// the cart in the expected status with no bookings (OPEN) or exactly its one group of them. It
// returns the cart's group ("" if none) and the logged cause of a failure ("none" for a 200).
func checkFaultyCall(t *testing.T, ev events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse,
	elapsed, remaining time.Duration, wantStatus int, cartID, wantCart string, items int) (group, cause string) {
	t.Helper()
	if elapsed >= remaining {
		t.Errorf("answered after %v: Lambda would have killed it at %v", elapsed, remaining)
	}
	if resp.StatusCode != wantStatus {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, wantStatus, resp.Body)
	}
	cause = "none"
	if resp.StatusCode != 200 {
		cause = checkInternalProblem(t, resp, ev.RequestContext.RequestID)
	}
	cart := mustCart(t, cartID)
	group = testenv.String(testenv.Map(cart["checkout"])["groupIdentifier"])
	if got := testenv.String(cart["status"]); got != wantCart {
		t.Errorf("cart is %s after the faulty call, want %s", got, wantCart)
	}
	groups := map[string]int{}
	for _, b := range mustBookingsOfCart(t, cartID) {
		groups[testenv.String(b["groupIdentifier"])]++
	}
	switch {
	case wantCart == "OPEN" && len(groups) != 0:
		t.Errorf("bookings per group %v although the cart is still OPEN", groups)
	case wantCart != "OPEN" && (len(groups) != 1 || groups[group] != items):
		t.Errorf("bookings per group %v, want %d in the cart's group %s only", groups, items, group)
	}
	if resp.StatusCode == 200 {
		var answer struct {
			GroupIdentifier string `json:"groupIdentifier"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &answer); err != nil || answer.GroupIdentifier != group {
			t.Errorf("answered %s (%v), the cart holds group %s", resp.Body, err, group)
		}
	}
	return group, cause
}

// retryCompletes sends the request of a faulty call again, the faults gone: it answers 200 with
// the group the fault left on the cart, if any, and every invariant holds.
func retryCompletes(t *testing.T, owner, cartID string, items int, group string) {
	t.Helper()
	retry, elapsed := invoke(t, testenv.APIEvent(owner, checkoutBody(cartID)), retryRemaining)
	if retry.StatusCode != 200 {
		t.Fatalf("retry: status %d, want 200: %s", retry.StatusCode, retry.Body)
	}
	t.Logf("retry: 200 in %v", elapsed.Round(10*time.Millisecond))
	answer := mustAnswer(t, "retry", retry)
	if group != "" && answer.GroupIdentifier != group {
		t.Errorf("retry answered group %s, the faulty call left the cart with %s", answer.GroupIdentifier, group)
	}
	checkInvariants(t, cartID, items, answer)
}

// injector adds a test's toxics once, when fired, and never after it is stopped: a hook may
// still run after the faulty call returned (an SDK retry on its way), and must not leak toxics
// into the retry.
type injector struct {
	t      *testing.T
	toxics []toxic

	mu          sync.Mutex
	fired, over bool
}

func (in *injector) fire() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fired || in.over {
		return
	}
	in.fired = true
	for _, tx := range in.toxics {
		if _, err := proxies[tx.proxy].AddToxic("", tx.kind, tx.stream, 1, tx.attrs); err != nil {
			in.t.Errorf("add %s %s to %s: %v", tx.stream, tx.kind, tx.proxy, err)
		}
	}
}

// stop removes the hooks and every toxic, and tells whether the toxics were added.
func (in *injector) stop() (fired bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.over {
		in.over = true
		dynamo.SetObserve(nil)
		stripe.SetObserve(nil)
		if err := toxics.ResetState(); err != nil {
			in.t.Errorf("remove the toxics: %v", err)
		}
	}
	return in.fired
}

func putCart(t *testing.T, id, owner string, items int) {
	t.Helper()
	cart := sample.Cart{ID: id, Owner: owner, Currency: "EUR", ExpiresAt: time.Now().Add(time.Hour)}
	for i := range items {
		cart.Items = append(cart.Items, sample.Item{HotelName: fmt.Sprintf("Hotel %d", i+1), Amount: fmt.Sprintf("%d.50", 40+i)})
	}
	if err := sample.PutCart(context.Background(), env.DB, testenv.Tables["CartsTable"], cart); err != nil {
		t.Fatal(err)
	}
}

func checkoutBody(cartID string) string {
	return `{"shoppingCartIdentifier":"` + cartID + `","redirectUrl":"https://book.example.com/thanks"}`
}

// invoke calls the handler as Lambda would, with remaining time left before Lambda's deadline.
func invoke(t *testing.T, ev events.APIGatewayV2HTTPRequest, remaining time.Duration) (events.APIGatewayV2HTTPResponse, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	start := time.Now()
	resp, err := fn.Handler.Handle(ctx, ev)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("handler returned an error: %v", err)
	}
	apispec.Check(t, apispec.Checkout, resp)
	return resp, elapsed
}

// checkInternalProblem checks that a failed call answered a generic 500 problem: none of the
// cause's text (which the log line of the same request carries) reaches the caller. It returns
// that cause.
func checkInternalProblem(t *testing.T, resp events.APIGatewayV2HTTPResponse, requestID string) (cause string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem %q: %v", resp.Body, err)
	}
	if resp.StatusCode != 500 || p.Status != 500 || !strings.HasSuffix(p.Type, "/internal") ||
		resp.Headers["Content-Type"] != "application/problem+json" {
		t.Errorf("answer %d %v %s, want a 500 internal problem", resp.StatusCode, resp.Headers, resp.Body)
	}
	cause = loggedCause(t, requestID)
	if cause == "" {
		t.Errorf("no log line of request %s carries the failure's cause", requestID)
	} else if strings.Contains(resp.Body, cause) {
		t.Errorf("the answer carries the internal error %q", cause)
	}
	detail := strings.ToLower(p.Detail)
	for _, leak := range []string{"127.0.0.1", "dynamodb", "stripe", "operation error", "connection", "reset", "timeout", "deadline", "context", "eof"} {
		if strings.Contains(detail, leak) {
			t.Errorf("the problem's detail %q is not generic: it mentions %q", p.Detail, leak)
		}
	}
	return cause
}

// loggedCause returns the error that the "checkout failed" log line of a request carries.
func loggedCause(t *testing.T, requestID string) string {
	t.Helper()
	lines := bufio.NewScanner(strings.NewReader(logs.String()))
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var line struct {
			Msg          string `json:"msg"`
			APIRequestID string `json:"apiRequestId"`
			Error        string `json:"error"`
		}
		if json.Unmarshal(lines.Bytes(), &line) == nil && line.Msg == "checkout failed" && line.APIRequestID == requestID {
			return line.Error
		}
	}
	return ""
}

// checkInvariants checks what no fault may break, once a request answered, straight from
// DynamoDB Local and the Stripe layer: the cart is CHECKED_OUT (never left CHECKING_OUT) and
// points at exactly one group, that group holds one booking per item and nothing else, no
// booking of the cart lies outside it, the answer names it, the client secret answered is the
// one of the PaymentIntent the cart records (and that intent is the group's), and every
// PaymentIntent create for the cart sent the same parameters under one of the group's keys.
func checkInvariants(t *testing.T, cartID string, items int, answered answer) {
	t.Helper()
	cart := mustCart(t, cartID)
	state := testenv.Map(cart["checkout"])
	group, codes := testenv.String(state["groupIdentifier"]), testenv.Strings(state["bookingCodes"])
	if status := testenv.String(cart["status"]); status != "CHECKED_OUT" || group == "" {
		t.Errorf("cart is %s with group %q, want CHECKED_OUT with a group", status, group)
	}
	if answered.GroupIdentifier != group || !slices.Equal(answered.BookingCodes, codes) {
		t.Errorf("answered group %s codes %v, the cart holds %s %v", answered.GroupIdentifier, answered.BookingCodes, group, codes)
	}
	recorded, ok := stripe.PaymentIntent(testenv.String(state["paymentIntentId"]))
	switch {
	case !ok:
		t.Errorf("the cart records PaymentIntent %q, which Stripe does not know", testenv.String(state["paymentIntentId"]))
	case answered.ClientSecret != recorded.ClientSecret || recorded.Metadata["groupIdentifier"] != group:
		t.Errorf("answered client secret %s; the recorded intent %s of group %s has %s",
			answered.ClientSecret, recorded.ID, recorded.Metadata["groupIdentifier"], recorded.ClientSecret)
	}
	if len(codes) != items {
		t.Errorf("cart holds %d booking codes for %d items", len(codes), items)
	}

	groups := map[string]int{}
	for _, b := range mustBookingsOfCart(t, cartID) {
		groups[testenv.String(b["groupIdentifier"])]++
	}
	if len(groups) != 1 || groups[group] != items {
		t.Errorf("bookings of the cart per group: %v, want %d in the cart's group %s only", groups, items, group)
	}
	inGroup, err := env.BookingsOfGroup(context.Background(), group)
	if err != nil {
		t.Fatalf("query byGroup: %v", err)
	}
	var groupCodes []string
	for _, b := range inGroup {
		groupCodes = append(groupCodes, testenv.String(b["bookingCode"]))
		if other := testenv.String(b["shoppingCartIdentifier"]); other != cartID {
			t.Errorf("group %s holds booking %s of cart %s", group, testenv.String(b["bookingCode"]), other)
		}
	}
	slices.Sort(groupCodes)
	if want := slices.Sorted(slices.Values(codes)); !slices.Equal(groupCodes, want) {
		t.Errorf("group %s holds bookings %v, the cart points at %v", group, groupCodes, want)
	}

	var intents []testenv.StripeRequest
	for _, pi := range stripe.Calls("POST", "/v1/payment_intents") {
		if pi.Form.Get("metadata[shoppingCartIdentifier]") == cartID {
			intents = append(intents, pi)
		}
	}
	if len(intents) == 0 {
		t.Fatalf("no PaymentIntent create for cart %s", cartID)
	}
	groupKey := regexp.MustCompile(`^checkout-payment-intent-` + regexp.QuoteMeta(group) + `(-[0-9]+)?$`)
	for _, pi := range intents {
		if !groupKey.MatchString(pi.IdempotencyKey) || pi.Form.Encode() != intents[0].Form.Encode() {
			t.Errorf("PaymentIntent create %q %v, want a key of group %s and the parameters %v",
				pi.IdempotencyKey, pi.Form, group, intents[0].Form)
		}
	}
}

func mustCart(t *testing.T, id string) testenv.Item {
	t.Helper()
	cart, err := env.Cart(context.Background(), id)
	if err != nil || cart == nil {
		t.Fatalf("read cart %s: %v", id, err)
	}
	return cart
}

func mustBookingsOfCart(t *testing.T, cartID string) []testenv.Item {
	t.Helper()
	bookings, err := env.BookingsOfCart(context.Background(), cartID)
	if err != nil {
		t.Fatalf("scan bookings: %v", err)
	}
	return bookings
}
