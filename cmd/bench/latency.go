package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// kind is what serves a checkout.
type kind int

const (
	handlerKind kind = iota // the function, as deployed
	floorKind               // the same calls made directly
	serialKind              // the function with app.Options{Serial: true}
)

var kindNames = [...]string{"handler", "floor", "serial"}

// variant is a kind serving one kind of traveller.
type variant struct {
	kind     kind
	newOwner bool // a traveller without a Stripe customer yet: it is created and mapped
}

// variants are measured together, in a new random order every round.
var variants = []variant{
	{handlerKind, false}, {floorKind, false}, {serialKind, false},
	{handlerKind, true}, {floorKind, true}, {serialKind, true},
}

type runner struct {
	env             *testenv.Env
	handler, serial *httpapi.Handler
	floor           *floor
	runID           string
	seq             atomic.Int64
	cartExpiry      time.Time
	ga4             http.Client // the floor's GA4 sends
	collector       string      // the local GA4 collector's URL, with its query
}

func newRunner(ctx context.Context, env *testenv.Env, secretARN string) (*runner, error) {
	fn, err := benchFunction(ctx, env, secretARN, app.Options{Metrics: devNull()})
	if err != nil {
		return nil, fmt.Errorf("build the function: %w", err)
	}
	serial, err := benchFunction(ctx, env, secretARN, app.Options{Serial: true, Metrics: devNull()})
	if err != nil {
		return nil, fmt.Errorf("build the serial function: %w", err)
	}
	fl, err := newFloor(ctx, env.Stack.StripeURL, testenv.StripeKey)
	if err != nil {
		return nil, fmt.Errorf("build the floor's clients: %w", err)
	}
	r := &runner{
		env: env, handler: fn.Handler, serial: serial.Handler, floor: fl,
		runID: randomID()[:8], cartExpiry: time.Now().Add(24 * time.Hour),
	}
	// The returning traveller's first checkout creates its Stripe customer and mapping.
	j, err := r.newJob(ctx, false)
	if err == nil {
		_, err = invoke(ctx, r.handler, testenv.APIEvent(j.owner, requestBody(j.cartID)))
	}
	if err != nil {
		return nil, fmt.Errorf("first checkout of the returning traveller: %w", err)
	}
	if err := r.checkFloor(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// job is one checkout to do: a fresh open cart of its owner.
type job struct {
	cartID, owner string
}

// newJob writes a fresh cart. Carts are written before the clock starts, never while it runs.
func (r *runner) newJob(ctx context.Context, newOwner bool) (job, error) {
	if newOwner {
		return r.newJobOf(ctx, "")
	}
	return r.newJobOf(ctx, knownOwner)
}

// newJobOf writes a fresh cart of owner, or of a new traveller if owner is "".
func (r *runner) newJobOf(ctx context.Context, owner string) (job, error) {
	n := strconv.FormatInt(r.seq.Add(1), 10)
	j := job{cartID: "bench-" + r.runID + "-cart-" + n, owner: owner}
	if owner == "" {
		j.owner = "bench-" + r.runID + "-traveller-" + n
	}
	err := sample.PutCart(ctx, r.env.DB, cartsTable, sample.NewCart(j.cartID, j.owner, benchCurrency, benchRooms, r.cartExpiry))
	return j, err
}

func requestBody(cartID string) string {
	return `{"shoppingCartIdentifier":"` + cartID + `","customizationIdentifier":"` + benchCustomization +
		`","redirectUrl":"` + benchRedirect + `","ga4ClientId":"` + benchGA4ClientID +
		`","ga4SessionId":"` + benchGA4SessionID + `","ga4MeasurementId":"` + benchGA4MeasurementID + `"}`
}

// do runs one checkout and times it.
func (r *runner) do(ctx context.Context, k kind, j job) (time.Duration, error) {
	if k == floorKind {
		start := time.Now()
		err := r.floor.checkout(ctx, j.cartID, j.owner)
		return time.Since(start), err
	}
	h := r.handler
	if k == serialKind {
		h = r.serial
	}
	return invoke(ctx, h, testenv.APIEvent(j.owner, requestBody(j.cartID)))
}

// invoke calls the handler the way the Lambda runtime does: the event as API Gateway sends it,
// a context with the function's deadline and the invocation's Lambda context. Only the handler
// is timed.
func invoke(ctx context.Context, h *httpapi.Handler, ev events.APIGatewayV2HTTPRequest) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, functionTimeout)
	defer cancel()
	ctx = lambdaContext(ctx, ev.RequestContext.RequestID)
	start := time.Now()
	resp, err := h.Handle(ctx, ev)
	elapsed := time.Since(start)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("handler answered %d: %s", resp.StatusCode, resp.Body)
	}
	return elapsed, err
}

// latencies holds the measured durations of each variant, by its index in variants.
type latencies [][]time.Duration

// latency runs warmup unmeasured rounds, then iterations measured ones. Each round writes one
// cart per variant, then checks them out one at a time in a random order: slow phases of a
// shared machine, DynamoDB Local's garbage collections and the tables' growth hit every
// variant alike.
func (r *runner) latency(ctx context.Context, warmup, iterations int) (latencies, error) {
	out := make(latencies, len(variants))
	rng := rand.New(rand.NewPCG(1, 2))
	jobs := make([]job, len(variants))
	for round := -warmup; round < iterations; round++ {
		for i, v := range variants {
			var err error
			if jobs[i], err = r.newJob(ctx, v.newOwner); err != nil {
				return nil, err
			}
		}
		for _, i := range rng.Perm(len(variants)) {
			d, err := r.do(ctx, variants[i].kind, jobs[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kindNames[variants[i].kind], err)
			}
			if round >= 0 {
				out[i] = append(out[i], d)
			}
		}
		if round > 0 && round%100 == 0 {
			progress("latency: %d/%d rounds", round, iterations)
		}
	}
	return out, nil
}

// throughput sends batches of n returning-traveller checkouts at once to the handler and
// returns each batch's requests per second.
func (r *runner) throughput(ctx context.Context, batches, n int) ([]float64, error) {
	var rps []float64
	for range batches {
		events := make([]events.APIGatewayV2HTTPRequest, n)
		for i := range events {
			j, err := r.newJob(ctx, false)
			if err != nil {
				return nil, err
			}
			events[i] = testenv.APIEvent(j.owner, requestBody(j.cartID))
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range events {
			wg.Go(func() { _, errs[i] = invoke(ctx, r.handler, events[i]) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		rps = append(rps, float64(n)/elapsed.Seconds())
	}
	return rps, nil
}

// allocation is the heap allocation of one checkout, on average.
type allocation struct {
	objects, bytes float64
}

// allocs holds handler and floor allocations for returning and new travellers.
type allocs struct {
	handler, floor [2]allocation // by newOwner
}

// allocations counts the heap allocations of runs sequential checkouts (runtime.MemStats
// before and after) for the handler and the floor, returning and new travellers. Carts and
// events are made before counting starts; what counts includes the SDKs' HTTP work.
func (r *runner) allocations(ctx context.Context, runs int) (allocs, error) {
	var a allocs
	for _, newOwner := range []bool{false, true} {
		for _, k := range []kind{handlerKind, floorKind} {
			jobs := make([]job, runs)
			evs := make([]events.APIGatewayV2HTTPRequest, runs)
			for i := range jobs {
				var err error
				if jobs[i], err = r.newJob(ctx, newOwner); err != nil {
					return a, err
				}
				evs[i] = testenv.APIEvent(jobs[i].owner, requestBody(jobs[i].cartID))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range jobs {
				var err error
				if k == floorKind {
					err = r.floor.checkout(ctx, jobs[i].cartID, jobs[i].owner)
				} else {
					_, err = invoke(ctx, r.handler, evs[i])
				}
				if err != nil {
					return a, err
				}
			}
			runtime.ReadMemStats(&after)
			got := allocation{
				objects: float64(after.Mallocs-before.Mallocs) / float64(runs),
				bytes:   float64(after.TotalAlloc-before.TotalAlloc) / float64(runs),
			}
			idx := 0
			if newOwner {
				idx = 1
			}
			if k == floorKind {
				a.floor[idx] = got
			} else {
				a.handler[idx] = got
			}
		}
	}
	return a, nil
}

// writeCSV writes the latencies in microseconds, one round a line, one column per variant.
func (l latencies) writeCSV(w io.Writer) error {
	var b strings.Builder
	for i, v := range variants {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s_%s", kindNames[v.kind], map[bool]string{false: "returning", true: "new"}[v.newOwner])
	}
	b.WriteByte('\n')
	for round := range l[0] {
		for i := range l {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(l[i][round].Microseconds(), 10))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// pairedRatio is the median over rounds of a's latency over b's in the same round: the two ran
// seconds apart, so unlike the ratio of p50s it is blind to drift between rounds.
func pairedRatio(a, b []time.Duration) float64 {
	ratios := make([]float64, len(a))
	for i := range a {
		ratios[i] = float64(a[i]) / float64(b[i])
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2]
}

// percentile returns the q-quantile (0 < q <= 1) of ds by the nearest-rank method.
func percentile(ds []time.Duration, q float64) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
