package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/testenv"
)

// The overload run (SPEC section 10): a flash sale against an account that Stripe limits. The
// function reaches Stripe through a limiter that answers 429 rate_limit beyond Stripe's live-mode
// limits, in front of the Stripe layer (idempotency and objects as Stripe keeps them); checkouts
// arrive at a fixed rate, more than the limits allow, for a bounded time, half of them for
// returning travellers (2 Stripe requests: PaymentIntent and ephemeral key) and half for new
// ones (3: the customer first).

type overloadOptions struct {
	rate          float64 // checkouts started a second
	duration      time.Duration
	globalLimit   int // Stripe's requests a second for the account
	endpointLimit int // and for one endpoint
}

var defaultOverload = overloadOptions{rate: 60, duration: 10 * time.Second, globalLimit: 100, endpointLimit: 25}

// maxAmplification is the overload budget: Stripe requests sent per checkout attempted, over the
// requests the attempted checkouts need when nothing fails. Above 1, something retried.
const maxAmplification = 1.0

// overloadResult is what the run did.
type overloadResult struct {
	opts                 overloadOptions
	attempted, succeeded int
	byStatus             map[int]int   // the function's answers
	succeededOver        time.Duration // from the first start to the last success
	needed               int           // Stripe requests the attempted checkouts need without failures
	stripe               map[string]testenv.RateCount
	carts                map[string]int // the carts' ends: CHECKED_OUT (answered), CHECKED_OUT (pending), OPEN
	problems             []string       // anything lost or written twice
}

func (r overloadResult) sent() (passed, limited int) {
	for _, c := range r.stripe {
		passed, limited = passed+c.Passed, limited+c.Limited
	}
	return passed, limited
}

// measureOverload runs the flash sale and checks every cart it touched.
func (r *runner) measureOverload(ctx context.Context, secretARN string, o overloadOptions) (overloadResult, error) {
	res := overloadResult{opts: o, byStatus: map[int]int{}, carts: map[string]int{}}
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
	settings := r.env.Settings(limiter.URL(), map[string]string{"STRIPE_SECRET_ARN": secretARN, "STRIPE_SECRET_KEY": ""})
	logger := app.NewLogger(slog.NewJSONHandler(io.Discard, nil), slog.LevelInfo)
	fn, err := testenv.Function(ctx, settings, logger, app.Options{Metrics: devNull()})
	if err != nil {
		return res, fmt.Errorf("build the function: %w", err)
	}

	n := int(o.rate * o.duration.Seconds())
	jobs := make([]job, n)
	for i := range jobs {
		if jobs[i], err = r.newJob(ctx, i%2 == 1); err != nil {
			return res, err
		}
		res.needed += 2 + i%2
	}

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
			cctx, cancel := context.WithTimeout(ctx, functionTimeout)
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
	return res, r.checkOverload(ctx, &res, jobs, secrets, layer)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkOverload reads every cart of the run and its bookings: each is CHECKED_OUT (answered, or
// left pending for the traveller's retry or the hold releaser) or OPEN, has bookings only in its
// own group, and an answered one has its recorded intent's client secret; no group has two
// PaymentIntents.
func (r *runner) checkOverload(ctx context.Context, res *overloadResult, jobs []job, secrets map[string]string, layer *testenv.StripeRecorder) error {
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
	problem := func(format string, args ...any) { res.problems = append(res.problems, fmt.Sprintf(format, args...)) }
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
			res.carts["CHECKED_OUT, answered"]++
			if pi, ok := intents[intent]; !ok || pi.ClientSecret != secret {
				problem("cart %s: answered a client secret that is not its recorded intent %s's", j.cartID, intent)
			}
		case status == "CHECKED_OUT":
			res.carts["CHECKED_OUT, pending (retry or hold releaser)"]++
		case status == "OPEN" && !answered:
			res.carts["OPEN"]++
		default:
			problem("cart %s is %s (answered: %v)", j.cartID, status, answered)
		}
		for _, b := range bookings[j.cartID] {
			bg, bs := testenv.String(b["groupIdentifier"]), testenv.String(b["status"])
			if status != "CHECKED_OUT" && bs != "CANCELLED" || status == "CHECKED_OUT" && bg != group {
				problem("cart %s (%s, group %s) has booking %s in group %s, %s", j.cartID, status, group, testenv.String(b["bookingCode"]), bg, bs)
			}
		}
		if status == "CHECKED_OUT" && len(bookings[j.cartID]) != benchRooms {
			problem("cart %s: %d bookings, want %d", j.cartID, len(bookings[j.cartID]), benchRooms)
		}
		if group != "" && perGroup[group] > 1 {
			problem("group %s has %d PaymentIntents", group, perGroup[group])
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
	amplification := float64(passed+limited) / float64(r.needed)
	budget("overload: Stripe requests sent / needed without failures (no retry storm)",
		fmt.Sprintf("%.3fx (%.2f a checkout attempted; %d needed)", amplification, float64(passed+limited)/float64(r.attempted), r.needed),
		fmt.Sprintf("<= %.2fx", maxAmplification), amplification <= maxAmplification)
	var ends []string
	for _, end := range slices.Sorted(maps.Keys(r.carts)) {
		ends = append(ends, fmt.Sprintf("%s %d", end, r.carts[end]))
	}
	value := strings.Join(ends, ", ")
	if len(r.problems) > 0 {
		value = fmt.Sprintf("%d problems, first: %s", len(r.problems), r.problems[0])
	}
	budget("overload: every cart checked out or open, bookings only in its group, one intent a group", value, "nothing lost", len(r.problems) == 0)
}

func statusList(byStatus map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(byStatus)) {
		parts = append(parts, fmt.Sprintf("%d x%d", s, byStatus[s]))
	}
	return strings.Join(parts, ", ")
}
