package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/testenv"
	"github.com/winktravel/checkout/internal/testenv/apispec"
)

// The faults of this file hit the paths that a second request for a cart takes: the replay of a
// CHECKED_OUT cart, the re-read after losing the transaction to another checkout, and many
// checkouts of one cart at once.

// answer is a 200's body.
type answer struct {
	ClientSecret    string   `json:"clientSecret"`
	EphemeralKey    string   `json:"ephemeralKey"`
	CustomerID      string   `json:"customerId"`
	GroupIdentifier string   `json:"groupIdentifier"`
	BookingCodes    []string `json:"bookingCodes"`
}

// sameAs tells what differs from want among the fields a replay must repeat (all but the
// ephemeral key, which is fresh on every call).
func (a answer) sameAs(want answer) error {
	switch {
	case a.GroupIdentifier != want.GroupIdentifier:
		return fmt.Errorf("group %s, want %s", a.GroupIdentifier, want.GroupIdentifier)
	case !slices.Equal(a.BookingCodes, want.BookingCodes):
		return fmt.Errorf("booking codes %v, want %v", a.BookingCodes, want.BookingCodes)
	case a.CustomerID != want.CustomerID:
		return fmt.Errorf("customer %s, want %s", a.CustomerID, want.CustomerID)
	case a.ClientSecret != want.ClientSecret:
		return fmt.Errorf("client secret %s, want %s", a.ClientSecret, want.ClientSecret)
	}
	return nil
}

// outcome is one handler call, made off the test's goroutine (a hook, a concurrent request):
// checked afterwards, on the test's goroutine.
type outcome struct {
	ev      events.APIGatewayV2HTTPRequest
	resp    events.APIGatewayV2HTTPResponse
	err     error
	elapsed time.Duration
}

// call checks a cart out with the scenario's function.
func call(owner, cartID string, remaining time.Duration) outcome {
	o := outcome{ev: testenv.APIEvent(owner, checkoutBody(cartID))}
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	start := time.Now()
	o.resp, o.err = fn.Handler.Handle(ctx, o.ev)
	o.elapsed = time.Since(start)
	return o
}

// checkAnswered checks that the call answered before its Lambda deadline, as api/openapi.yaml
// describes.
func (o outcome) checkAnswered(t *testing.T, what string, remaining time.Duration) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("%s: the handler returned an error: %v", what, o.err)
	}
	apispec.Check(t, apispec.Checkout, o.resp)
	if o.elapsed >= remaining {
		t.Errorf("%s answered after %v: Lambda would have killed it at %v", what, o.elapsed, remaining)
	}
}

// mustAnswer checks a 200 and decodes it.
func mustAnswer(t *testing.T, what string, resp events.APIGatewayV2HTTPResponse) answer {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d, want 200: %s", what, resp.StatusCode, resp.Body)
	}
	var a answer
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		t.Fatalf("%s: answer %q: %v", what, resp.Body, err)
	}
	if a.ClientSecret == "" || a.EphemeralKey == "" || a.CustomerID == "" || a.GroupIdentifier == "" {
		t.Errorf("%s: answer with an empty field: %s", what, resp.Body)
	}
	return a
}

// paymentIntentCreates counts the PaymentIntent creates that Stripe received for a cart.
func paymentIntentCreates(cartID string) int {
	n := 0
	for _, pi := range stripe.Calls("POST", "/v1/payment_intents") {
		if pi.Form.Get("metadata[shoppingCartIdentifier]") == cartID {
			n++
		}
	}
	return n
}

var ids atomic.Int64

// newID returns an identifier no other test of this process uses (go test -count=n runs the
// tests again against the same tables and Stripe recorder).
func newID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, ids.Add(1)) }

// A CHECKED_OUT cart replays: it reads the PaymentIntent and creates an ephemeral key,
// concurrently, and writes nothing. A fault on either call fails the replay, and nothing else:
// the cart keeps its group and PaymentIntent, and the next retry replays the first answer.
//
// The toxic stays until the faulty call has answered, so stripe-go's own network retries (two,
// with backoff) meet it too and cannot heal the call: the outcome is always a 500.
func TestFaultDuringReplay(t *testing.T) {
	tests := []struct {
		name string
		// on is the Stripe call of the replay whose arrival adds the toxic; "{pi}" stands for
		// the cart's PaymentIntent id.
		on     string
		toxic  toxic
		causes []string // the logged cause starts with one of these
	}{
		{"payment intent read reset", "GET /v1/payment_intents/{pi}", reset("stripe", "downstream"),
			[]string{"read payment intent"}},
		{"payment intent read times out", "GET /v1/payment_intents/{pi}", timeout("stripe", "downstream"),
			[]string{"read payment intent"}},
		// The PaymentIntent read runs at the same time: when its answer is still on its way, it
		// fails too, and is the error reported.
		{"ephemeral key reset", "POST /v1/ephemeral_keys", reset("stripe", "downstream"),
			[]string{"create ephemeral key", "read payment intent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			startScenario(t)
			cartID, owner := newID("replay"), newID("traveller-replay")
			const items = 2
			putCart(t, cartID, owner, items)

			first := call(owner, cartID, retryRemaining)
			first.checkAnswered(t, "first checkout", retryRemaining)
			want := mustAnswer(t, "first checkout", first.resp)
			cart := mustCart(t, cartID)
			pi := testenv.String(testenv.Map(cart["checkout"])["paymentIntentId"])
			if pi == "" {
				t.Fatalf("the cart holds no PaymentIntent after the first checkout")
			}
			creates := paymentIntentCreates(cartID)

			on := strings.ReplaceAll(tc.on, "{pi}", pi)
			inj := &injector{t: t, toxics: []toxic{tc.toxic}}
			t.Cleanup(func() { inj.stop() })
			stripe.SetObserve(func(method, path string) {
				if method+" "+path == on {
					inj.fire()
				}
			})
			faulty := call(owner, cartID, faultRemaining)
			if !inj.stop() {
				t.Fatalf("the fault was never injected: no %q was seen", on)
			}
			faulty.checkAnswered(t, "faulty replay", faultRemaining)
			cause := checkInternalProblem(t, faulty.resp, faulty.ev.RequestContext.RequestID)
			if !slices.ContainsFunc(tc.causes, func(c string) bool { return strings.HasPrefix(cause, c) }) {
				t.Errorf("logged cause %q, want one starting with one of %q", cause, tc.causes)
			}
			t.Logf("faulty replay: %d in %v; logged cause: %s", faulty.resp.StatusCode, faulty.elapsed.Round(10*time.Millisecond), cause)

			cart = mustCart(t, cartID)
			state := testenv.Map(cart["checkout"])
			if status, group, got := testenv.String(cart["status"]), testenv.String(state["groupIdentifier"]),
				testenv.String(state["paymentIntentId"]); status != "CHECKED_OUT" || group != want.GroupIdentifier || got != pi {
				t.Errorf("after the faulty replay the cart is %s with group %s and PaymentIntent %s, want CHECKED_OUT with %s and %s",
					status, group, got, want.GroupIdentifier, pi)
			}

			retry := call(owner, cartID, retryRemaining)
			retry.checkAnswered(t, "retry", retryRemaining)
			got := mustAnswer(t, "retry", retry.resp)
			if err := got.sameAs(want); err != nil {
				t.Errorf("the retry after the faulty replay answered differently from the first checkout: %v", err)
			}
			if n := paymentIntentCreates(cartID); n != creates {
				t.Errorf("%d PaymentIntent creates for the cart after the replays, %d before: a replay created one", n, creates)
			}
			checkInvariants(t, cartID, items, got)
		})
	}
}

// A request loses the race for the cart: its transaction is held at the DynamoDB observer while
// another request checks the same cart out, then goes on and fails its condition on the cart. The
// loser reads the cart again and continues from the winner's stored state: a replay when the
// winner completed, the rest of the checkout (under the group's idempotency key) when the winner
// stopped after its transaction. A fault on that re-read fails the loser alone.
//
// The traveller has checked out before, so the loser already knows its Stripe customer: after
// the winner, the only DynamoDB read of the loser is the re-read of the cart.
func TestLostRace(t *testing.T) {
	tests := []struct {
		name string
		// winnerStops: Stripe refuses the winner's PaymentIntent create (a 400, which stripe-go
		// does not retry): the winner answers 500 and leaves the cart CHECKING_OUT.
		winnerStops bool
		toxics      []toxic // added when the re-read arrives; none: the race alone
		wantStatus  int
		wantLog     string // a line the loser logs on its way to a 200
	}{
		{"without a fault", false, nil, 200, "replaying checkout completed concurrently"},
		{"winner stopped after its transaction", true, nil, 200, "resuming checkout"},
		{"re-read reset", false, []toxic{reset("dynamodb", "upstream")}, 500, ""},
		{"re-read answer times out", false, []toxic{timeout("dynamodb", "downstream")}, 500, ""},
	}
	// The loser's clock runs while the winner checks the cart out: more time than faultRemaining.
	const loserRemaining = 4 * time.Second
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			startScenario(t)
			cartID, owner := newID("lost-race"), newID("traveller-lost-race")
			const items = 2
			putCart(t, cartID+"-earlier", owner, 1)
			earlier := call(owner, cartID+"-earlier", retryRemaining)
			earlier.checkAnswered(t, "the traveller's earlier checkout", retryRemaining)
			mustAnswer(t, "the traveller's earlier checkout", earlier.resp)
			putCart(t, cartID, owner, items)

			// phase: 0 until the loser's transaction arrives, 1 while the winner runs, 2 after.
			var phase atomic.Int32
			var winner outcome
			var winnerCart testenv.Item // the cart as the winner left it, read around the proxies
			var winnerCartErr error
			inj := &injector{t: t, toxics: tc.toxics}
			t.Cleanup(func() { inj.stop(); stripe.SetIntercept(nil) })
			dynamo.SetObserve(func(operation string) {
				switch {
				case operation == "TransactWriteItems" && phase.CompareAndSwap(0, 1):
					if tc.winnerStops {
						stripe.SetIntercept(refusePaymentIntentCreate)
					}
					winner = call(owner, cartID, retryRemaining)
					stripe.SetIntercept(nil)
					winnerCart, winnerCartErr = env.Cart(context.Background(), cartID)
					phase.Store(2)
				case operation == "GetItem" && phase.Load() == 2:
					inj.fire()
				}
			})
			loser := call(owner, cartID, loserRemaining)
			if !inj.stop() {
				t.Fatalf("the loser never read the cart again (race phase %d)", phase.Load())
			}
			if phase.Load() != 2 { // also orders the hook's writes before the reads below
				t.Fatal("the winner never finished")
			}
			if winnerCartErr != nil || winnerCart == nil {
				t.Fatalf("read the cart after the winner: %v", winnerCartErr)
			}
			winner.checkAnswered(t, "winner", retryRemaining)
			wonState := testenv.Map(winnerCart["checkout"])
			won := answer{
				GroupIdentifier: testenv.String(wonState["groupIdentifier"]),
				BookingCodes:    testenv.Strings(wonState["bookingCodes"]),
			}
			if tc.winnerStops {
				if status := testenv.String(winnerCart["status"]); winner.resp.StatusCode != 500 || status != "CHECKING_OUT" {
					t.Fatalf("the stopped winner answered %d and left the cart %s, want 500 and CHECKING_OUT: %s",
						winner.resp.StatusCode, status, winner.resp.Body)
				}
			} else {
				won = mustAnswer(t, "winner", winner.resp)
				if status := testenv.String(winnerCart["status"]); status != "CHECKED_OUT" {
					t.Fatalf("the winner left the cart %s, want CHECKED_OUT", status)
				}
			}

			loser.checkAnswered(t, "loser", loserRemaining)
			if loser.resp.StatusCode != tc.wantStatus {
				t.Fatalf("loser: status %d, want %d: %s", loser.resp.StatusCode, tc.wantStatus, loser.resp.Body)
			}
			if tc.wantStatus == 200 {
				lost := mustAnswer(t, "loser", loser.resp)
				if tc.winnerStops {
					// No answer of the winner to compare with but its stored group.
					if lost.GroupIdentifier != won.GroupIdentifier || !slices.Equal(lost.BookingCodes, won.BookingCodes) {
						t.Errorf("the loser answered group %s %v, the winner stored %s %v",
							lost.GroupIdentifier, lost.BookingCodes, won.GroupIdentifier, won.BookingCodes)
					}
					won = lost
				} else if err := lost.sameAs(won); err != nil {
					t.Errorf("the loser answered differently from the winner: %v", err)
				}
				if !strings.Contains(logs.String(), tc.wantLog) {
					t.Errorf("no log line %q: the loser did not take the expected way", tc.wantLog)
				}
			} else {
				cause := checkInternalProblem(t, loser.resp, loser.ev.RequestContext.RequestID)
				if !strings.HasPrefix(cause, "read cart "+cartID+" again") {
					t.Errorf("logged cause %q, want the re-read of the cart", cause)
				}
				t.Logf("loser: %d in %v; logged cause: %s", loser.resp.StatusCode, loser.elapsed.Round(10*time.Millisecond), cause)
			}

			// The loser's transaction wrote nothing: the cart's group and bookings are the winner's.
			cart := mustCart(t, cartID)
			if group := testenv.String(testenv.Map(cart["checkout"])["groupIdentifier"]); group != won.GroupIdentifier {
				t.Errorf("after the race the cart holds group %s, the winner's is %s", group, won.GroupIdentifier)
			}
			for _, b := range mustBookingsOfCart(t, cartID) {
				if g := testenv.String(b["groupIdentifier"]); g != won.GroupIdentifier {
					t.Errorf("booking %s in group %s, the winner's is %s", testenv.String(b["bookingCode"]), g, won.GroupIdentifier)
				}
			}
			creates := paymentIntentCreates(cartID)

			retry := call(owner, cartID, retryRemaining)
			retry.checkAnswered(t, "retry", retryRemaining)
			got := mustAnswer(t, "retry", retry.resp)
			if err := got.sameAs(won); err != nil {
				t.Errorf("the retry answered differently from the winner: %v", err)
			}
			// The winner's create, and a stopped winner's loser's: a replay creates none.
			if n := paymentIntentCreates(cartID); n != creates {
				t.Errorf("%d PaymentIntent creates for the cart after the retry, %d before: the replay created one", n, creates)
			}
			if want := map[bool]int{false: 1, true: 2}[tc.winnerStops]; creates != want {
				t.Errorf("%d PaymentIntent creates for the cart, want %d", creates, want)
			}
			checkInvariants(t, cartID, items, got)
		})
	}
}

func refusePaymentIntentCreate(method, path string) (int, string) {
	if method == "POST" && path == "/v1/payment_intents" {
		return 400, `{"error":{"type":"invalid_request_error","message":"refused by the test"}}`
	}
	return 0, ""
}

// heal removes the toxics of one kind that the injector added, and keeps the others; false if
// the injector has not fired yet.
func (in *injector) heal(kind string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.fired {
		return false
	}
	for _, tx := range in.toxics {
		if tx.kind != kind {
			continue
		}
		present, err := proxies[tx.proxy].Toxics()
		if err != nil {
			in.t.Errorf("list the toxics of %s: %v", tx.proxy, err)
			continue
		}
		for _, p := range present {
			if p.Type == kind && p.Stream == tx.stream {
				if err := proxies[tx.proxy].RemoveToxic(p.Name); err != nil {
					in.t.Errorf("remove %s from %s: %v", p.Name, tx.proxy, err)
				}
			}
		}
	}
	return true
}

// Ten checkouts of one cart at once, every answer of DynamoDB and Stripe 100 ms ± 50 ms late,
// and DynamoDB's answers reset from the arrival of the first transaction until the first request
// has answered. That first answer is a 500: every way to a 200 waits for a DynamoDB answer to a
// request sent after the first transaction arrived (the transaction's own answer, a re-read of
// the cart, the final update), and the reset is in the way of all of them. The other requests
// fail or succeed depending on where the reset caught them: every 200 names the one group, every
// failure is a generic 500, and the retry completes with that group.
func TestConcurrentCheckoutsUnderFaults(t *testing.T) {
	startScenario(t)
	const items, requests = 3, 10
	cartID, owner := newID("concurrent-faults"), newID("traveller-concurrent-faults")
	putCart(t, cartID, owner, items)
	slow := &injector{t: t, toxics: []toxic{latency("dynamodb"), latency("stripe")}}
	broken := &injector{t: t, toxics: []toxic{reset("dynamodb", "downstream")}}
	t.Cleanup(func() { slow.stop(); broken.stop() })
	slow.fire()
	dynamo.SetObserve(func(operation string) {
		if operation == "TransactWriteItems" {
			broken.fire()
		}
	})

	outcomes := make([]outcome, requests)
	var healed atomic.Bool
	var firstAfterReset atomic.Int32 // 1 + the index of the request whose answer healed
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			outcomes[i] = call(owner, cartID, faultRemaining)
			if !healed.Load() && broken.heal("reset_peer") && healed.CompareAndSwap(false, true) {
				firstAfterReset.Store(int32(i) + 1)
			}
		})
	}
	wg.Wait()
	fired := broken.stop()
	slow.stop()
	if !fired {
		t.Fatal("the fault was never injected: no TransactWriteItems was seen")
	}

	var ok, failed int
	var winner *answer
	for i, o := range outcomes {
		what := fmt.Sprintf("request %d", i)
		o.checkAnswered(t, what, faultRemaining)
		if o.resp.StatusCode == 200 {
			ok++
			a := mustAnswer(t, what, o.resp)
			if winner == nil {
				winner = &a
			} else if a.GroupIdentifier != winner.GroupIdentifier || !slices.Equal(a.BookingCodes, winner.BookingCodes) {
				t.Errorf("%s answered group %s %v, another request %s %v", what, a.GroupIdentifier, a.BookingCodes,
					winner.GroupIdentifier, winner.BookingCodes)
			}
			continue
		}
		failed++
		cause := checkInternalProblem(t, o.resp, o.ev.RequestContext.RequestID)
		t.Logf("%s: %d in %v; logged cause: %s", what, o.resp.StatusCode, o.elapsed.Round(10*time.Millisecond), cause)
	}
	t.Logf("%d answered 200, %d failed", ok, failed)
	if n := firstAfterReset.Load(); n == 0 {
		t.Errorf("no request answered after the reset was added")
	} else if first := outcomes[n-1]; first.resp.StatusCode == 200 {
		t.Errorf("request %d answered 200 while DynamoDB's answers were being reset", n-1)
	}

	retry := call(owner, cartID, retryRemaining)
	retry.checkAnswered(t, "retry", retryRemaining)
	got := mustAnswer(t, "retry", retry.resp)
	if winner != nil && (got.GroupIdentifier != winner.GroupIdentifier || !slices.Equal(got.BookingCodes, winner.BookingCodes)) {
		t.Errorf("the retry answered group %s %v, the concurrent requests %s %v", got.GroupIdentifier, got.BookingCodes,
			winner.GroupIdentifier, winner.BookingCodes)
	}
	checkInvariants(t, cartID, items, got)
}

// The cart service deletes the cart (or TTL does, right at its expiry) after the function read it
// and before its transaction: the transaction's condition fails, the re-read finds nothing, and
// the answer is cart-not-found, as for a cart that never existed. Nothing is written, nothing
// reaches Stripe's PaymentIntents.
func TestCartDeletedDuringCheckout(t *testing.T) {
	startScenario(t)
	cartID, owner := newID("deleted"), newID("traveller-deleted")
	putCart(t, cartID, owner, 2)
	var deleted atomic.Bool
	var deleteErr error
	dynamo.SetObserve(func(operation string) {
		if operation == "TransactWriteItems" && deleted.CompareAndSwap(false, true) {
			_, deleteErr = env.DB.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
				TableName: aws.String(testenv.Tables["CartsTable"]),
				Key:       map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: cartID}},
			})
		}
	})
	t.Cleanup(func() { dynamo.SetObserve(nil) })

	o := call(owner, cartID, retryRemaining)
	dynamo.SetObserve(nil)
	if !deleted.Load() || deleteErr != nil {
		t.Fatalf("the cart was not deleted before the transaction (deleted %v): %v", deleted.Load(), deleteErr)
	}
	o.checkAnswered(t, "checkout", retryRemaining)
	var p struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(o.resp.Body), &p); err != nil || o.resp.StatusCode != 400 || !strings.HasSuffix(p.Type, "/cart-not-found") {
		t.Fatalf("answer %d %s, want 400 cart-not-found", o.resp.StatusCode, o.resp.Body)
	}
	if b := mustBookingsOfCart(t, cartID); len(b) != 0 {
		t.Errorf("%d bookings written for a deleted cart", len(b))
	}
	if n := paymentIntentCreates(cartID); n != 0 {
		t.Errorf("%d PaymentIntent creates for a deleted cart", n)
	}
}
