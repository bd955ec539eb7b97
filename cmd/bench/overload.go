package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/testenv"
)

// The overload run (SPEC section 10): a flash sale against an account that Stripe limits. The
// function reaches Stripe through a limiter that answers 429 rate_limit beyond Stripe's live-mode
// limits, in front of the Stripe layer (idempotency and objects as Stripe keeps them); checkouts
// arrive at a fixed rate, more than the limits allow, for a bounded time, half of them for a
// returning traveller (2 Stripe requests: PaymentIntent and ephemeral key) and half for new
// ones (3: the customer first). The limiter notes every Idempotency-Key it sees (stripe-go sends
// one with every POST), so a request sent twice, by stripe-go or by the function, is counted.

type overloadOptions struct {
	rate          float64 // checkouts started a second
	duration      time.Duration
	globalLimit   int // Stripe's requests a second for the account
	endpointLimit int // and for one endpoint
}

var defaultOverload = overloadOptions{rate: 60, duration: 10 * time.Second, globalLimit: 100, endpointLimit: 25}

// overloadResult is what the run did.
type overloadResult struct {
	opts                 overloadOptions
	attempted, succeeded int
	byStatus             map[int]int   // the function's answers
	succeededOver        time.Duration // from the first start to the last success
	needed               int           // Stripe requests the attempted checkouts need without failures
	stripe               map[string]testenv.RateCount
	inFlight             map[string]int // the carts right after the flash sale, by state
	released             int            // checkouts the hold releaser released afterwards
	releaseFailed        int            // releases that failed (retried by its next run)
	intents              int            // PaymentIntents created in the run
	problems             []string       // anything lost or written twice
}

func (r *overloadResult) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r overloadResult) repeated() (n int) {
	for _, c := range r.stripe {
		n += c.Repeated
	}
	return n
}

func (r overloadResult) sent() (passed, limited int) {
	for _, c := range r.stripe {
		passed, limited = passed+c.Passed, limited+c.Limited
	}
	return passed, limited
}

// measureOverload runs the flash sale and checks every cart it touched.
func (r *runner) measureOverload(ctx context.Context, secretARN string, o overloadOptions) (overloadResult, error) {
	res := overloadResult{opts: o, byStatus: map[int]int{}, inFlight: map[string]int{}}
	layer, err := testenv.NewStripeLayer(r.env.Stack.StripeURL)
	if err != nil {
		return res, err
	}
	defer layer.Close()
	limiter, err := testenv.NewStripeRateLimiter(layer.URL(), o.globalLimit, o.endpointLimit)
	if err != nil {
		return res, err
	}
	defer limiter.Close()
	// A holds table of the run's own: the releaser afterwards sweeps only the run's checkouts.
	holds, err := r.env.NewTable(ctx, "HoldsTable")
	if err != nil {
		return res, err
	}
	overrides := map[string]string{"STRIPE_SECRET_ARN": secretARN, "STRIPE_SECRET_KEY": "", "HOLDS_TABLE": holds}
	fn, err := testenv.Function(ctx, r.env.Settings(limiter.URL(), overrides), discardLogger(), app.Options{Metrics: devNull()})
	if err != nil {
		return res, fmt.Errorf("build the function: %w", err)
	}

	// The returning traveller's customer must be one this Stripe layer knows (the runner's
	// returning traveller was made against stripe-mock directly): a first checkout makes it.
	returning, err := r.newJob(ctx, true)
	if err != nil {
		return res, err
	}
	resp, err := fn.Handler.Handle(lambdaContext(ctx, "overload-returning"), testenv.APIEvent(returning.owner, requestBody(returning.cartID)))
	if err != nil || resp.StatusCode != 200 {
		return res, fmt.Errorf("the overload run's returning traveller: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	n := int(o.rate * o.duration.Seconds())
	jobs := make([]job, n)
	for i := range jobs {
		owner := returning.owner // even: the returning traveller; odd: a new one
		if i%2 == 1 {
			owner = ""
		}
		if jobs[i], err = r.newJobOf(ctx, owner); err != nil {
			return res, err
		}
		res.needed += 2 + i%2
	}
	// The cart writes took seconds: the returning traveller's requests are out of the window.
	limiter.ResetCounts()

	type answer struct {
		status int
		body   string
		at     time.Time
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / o.rate)
	for i, j := range jobs {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			<-time.After(d)
		}
		wg.Go(func() {
			ev := testenv.APIEvent(j.owner, requestBody(j.cartID))
			cctx, cancel := context.WithTimeout(lambdaContext(ctx, ev.RequestContext.RequestID), functionTimeout)
			defer cancel()
			resp, err := fn.Handler.Handle(cctx, ev)
			answers[i] = answer{status: resp.StatusCode, body: resp.Body, at: time.Now()}
			if err != nil {
				answers[i].status = -1
			}
		})
	}
	wg.Wait()
	res.attempted = n
	res.stripe = limiter.Counts()
	var last time.Time
	secrets := map[string]string{} // cart: the client secret answered
	for i, a := range answers {
		res.byStatus[a.status]++
		if a.status == 200 {
			res.succeeded++
			last = later(last, a.at)
			var body struct{ ClientSecret string }
			if err := json.Unmarshal([]byte(a.body), &body); err != nil {
				return res, err
			}
			secrets[jobs[i].cartID] = body.ClientSecret
		}
	}
	res.succeededOver = last.Sub(start)
	if err := r.checkInFlight(ctx, &res, jobs, secrets, layer); err != nil {
		return res, err
	}
	return res, r.releaseAll(ctx, &res, jobs, overrides, layer)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkInFlight reads every cart of the run and its bookings right after the flash sale. An
// answered cart is CHECKED_OUT with the client secret of the intent it records; one that was not
// is CHECKED_OUT (its intent recorded, the ephemeral key refused), CHECKING_OUT (left for the
// traveller's retry or the hold releaser) or OPEN; a checked-out cart's bookings are all in its
// group; no group has two PaymentIntents.
func (r *runner) checkInFlight(ctx context.Context, res *overloadResult, jobs []job, secrets map[string]string, layer *testenv.StripeRecorder) error {
	bookings, err := r.bookingsByCart(ctx, "bench-"+r.runID+"-cart-")
	if err != nil {
		return err
	}
	intents := map[string]testenv.PaymentIntentState{}
	perGroup := map[string]int{}
	for _, pi := range layer.PaymentIntents() {
		intents[pi.ID] = pi
		perGroup[pi.Metadata["groupIdentifier"]]++
	}
	for _, j := range jobs {
		cart, err := r.env.Cart(ctx, j.cartID)
		if err != nil {
			return err
		}
		status := testenv.String(cart["status"])
		state := testenv.Map(cart["checkout"])
		group, intent := testenv.String(state["groupIdentifier"]), testenv.String(state["paymentIntentId"])
		secret, answered := secrets[j.cartID]
		switch {
		case status == "CHECKED_OUT" && answered:
			res.inFlight["CHECKED_OUT answered"]++
			if pi, ok := intents[intent]; !ok || pi.ClientSecret != secret {
				res.problem("cart %s: answered a client secret that is not its recorded intent %s's", j.cartID, intent)
			}
		case answered:
			res.problem("cart %s answered 200 but is %s", j.cartID, status)
		case status == "CHECKED_OUT" && intent != "":
			res.inFlight["CHECKED_OUT unanswered (intent recorded, key refused)"]++
		case status == "CHECKING_OUT":
			res.inFlight["CHECKING_OUT (for a retry or the releaser)"]++
		case status == "OPEN":
			res.inFlight["OPEN"]++
		default:
			res.problem("cart %s is %s (intent %q)", j.cartID, status, intent)
		}
		held := status == "CHECKED_OUT" || status == "CHECKING_OUT"
		for _, b := range bookings[j.cartID] {
			bg, bs := testenv.String(b["groupIdentifier"]), testenv.String(b["status"])
			if held && bg != group || !held && bs != "CANCELLED" {
				res.problem("cart %s (%s, group %s) has booking %s in group %s, %s", j.cartID, status, group, testenv.String(b["bookingCode"]), bg, bs)
			}
		}
		if held && len(bookings[j.cartID]) != benchRooms {
			res.problem("cart %s: %d bookings, want %d", j.cartID, len(bookings[j.cartID]), benchRooms)
		}
		if group != "" && perGroup[group] > 1 {
			res.problem("group %s has %d PaymentIntents", group, perGroup[group])
		}
	}
	return nil
}

// releaseAll runs the hold releaser past every hold of the run (on a clock set after them, on the
// run's own holds table, reaching the Stripe layer directly: the flash sale is over) until it
// finds nothing due, then checks that every cart is OPEN, every booking CANCELLED and every
// PaymentIntent of the run canceled: every started checkout ended, and nothing can charge.
func (r *runner) releaseAll(ctx context.Context, res *overloadResult, jobs []job, overrides map[string]string, layer *testenv.StripeRecorder) error {
	at := time.Now().Add(checkout.DefaultHold + time.Minute)
	rel, err := testenv.Releaser(ctx, r.env.Settings(layer.URL(), overrides), discardLogger(), app.Options{Metrics: devNull(), Now: func() time.Time { return at }})
	if err != nil {
		return fmt.Errorf("build the hold releaser: %w", err)
	}
	for run := 0; run < 10; run++ {
		rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		sweep, err := rel.Run(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("hold releaser: %w", err)
		}
		res.released += sweep.Released
		res.releaseFailed += sweep.Failed
		if sweep.Due == 0 {
			break
		}
	}
	bookings, err := r.bookingsByCart(ctx, "bench-"+r.runID+"-cart-")
	if err != nil {
		return err
	}
	for _, j := range jobs {
		cart, err := r.env.Cart(ctx, j.cartID)
		if err != nil {
			return err
		}
		if status := testenv.String(cart["status"]); status != "OPEN" {
			res.problem("after the releaser, cart %s is %s", j.cartID, status)
		}
		for _, b := range bookings[j.cartID] {
			if bs := testenv.String(b["status"]); bs != "CANCELLED" {
				res.problem("after the releaser, booking %s of cart %s is %s", testenv.String(b["bookingCode"]), j.cartID, bs)
			}
		}
	}
	for _, pi := range layer.PaymentIntents() {
		res.intents++
		if pi.Status != "canceled" {
			res.problem("after the releaser, PaymentIntent %s is %s", pi.ID, pi.Status)
		}
	}
	return nil
}

// bookingsByCart scans the bookings table once for the bookings of the carts whose identifier
// starts with prefix.
func (r *runner) bookingsByCart(ctx context.Context, prefix string) (map[string][]testenv.Item, error) {
	out := map[string][]testenv.Item{}
	p := dynamodb.NewScanPaginator(r.env.DB, &dynamodb.ScanInput{
		TableName:                 aws.String(bookingsTable),
		FilterExpression:          aws.String("begins_with(shoppingCartIdentifier, :p)"),
		ExpressionAttributeValues: testenv.Item{":p": &types.AttributeValueMemberS{Value: prefix}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			cart := testenv.String(item["shoppingCartIdentifier"])
			out[cart] = append(out[cart], item)
		}
	}
	return out, nil
}

// rows adds the overload rows to bench's table.
func (r overloadResult) rows(info func(measure, value string), budget func(measure, value, limit string, ok bool)) {
	o := r.opts
	info(fmt.Sprintf("overload: %.0f checkouts/s for %s, Stripe limited to %d req/s (%d an endpoint)", o.rate, o.duration, o.globalLimit, o.endpointLimit),
		fmt.Sprintf("%d attempted, %d answered 200; answers %s", r.attempted, r.succeeded, statusList(r.byStatus)))
	info("overload: checkouts a second sustained", fmt.Sprintf("%.1f /s (%d over %s)", float64(r.succeeded)/r.succeededOver.Seconds(),
		r.succeeded, r.succeededOver.Round(10*time.Millisecond)))
	passed, limited := r.sent()
	routes := slices.SortedFunc(maps.Keys(r.stripe), func(a, b string) int {
		return cmp.Compare(r.stripe[b].Passed+r.stripe[b].Limited, r.stripe[a].Passed+r.stripe[a].Limited)
	})
	var each []string
	for _, route := range routes {
		c := r.stripe[route]
		each = append(each, fmt.Sprintf("%s %d+%d", route, c.Passed, c.Limited))
	}
	info("overload: Stripe requests, passed + limited (429)", fmt.Sprintf("%d + %d: %s", passed, limited, strings.Join(each, ", ")))
	info("overload: Stripe requests sent / needed without failures",
		fmt.Sprintf("%.3fx (%.2f a checkout attempted; %d needed)", float64(passed+limited)/float64(r.needed),
			float64(passed+limited)/float64(r.attempted), r.needed))
	repeated := r.repeated()
	budget("overload: Stripe requests sent again (an Idempotency-Key already seen): no retry storm",
		fmt.Sprintf("%d", repeated), "0", repeated == 0)
	var states []string
	for _, state := range slices.Sorted(maps.Keys(r.inFlight)) {
		states = append(states, fmt.Sprintf("%s %d", state, r.inFlight[state]))
	}
	info("overload: the carts right after it", strings.Join(states, ", "))
	value := fmt.Sprintf("%d released (%d failed and retried), every cart OPEN, every booking CANCELLED, all %d PaymentIntents canceled",
		r.released, r.releaseFailed, r.intents)
	if len(r.problems) > 0 {
		value = fmt.Sprintf("%d problems, first: %s", len(r.problems), r.problems[0])
	}
	budget("overload: nothing lost (bookings only in their group, one intent a group; then the hold releaser ends every checkout)",
		value, "nothing lost", len(r.problems) == 0)
}

func statusList(byStatus map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(byStatus)) {
		parts = append(parts, fmt.Sprintf("%d x%d", s, byStatus[s]))
	}
	return strings.Join(parts, ", ")
}
