package checkout

import (
	"context"
	"sync"
	"time"
)

// Step is one timed part of a checkout: the request's log line and its metrics carry how long
// each took, so that a slow request explains itself.
type Step string

// The steps of a checkout, in the order they happen (some overlap: the customer with the
// transaction, the PaymentIntent with the ephemeral key).
const (
	StepReads         Step = "reads"         // the cart, the customization and the customer mapping, at once
	StepTransaction   Step = "transaction"   // the bookings and the checkout state, one transaction
	StepCustomer      Step = "customer"      // the Stripe customer created and its mapping stored
	StepPaymentIntent Step = "paymentIntent" // created (or looked up, or read on a replay)
	StepEphemeralKey  Step = "ephemeralKey"
	StepFinalUpdate   Step = "finalUpdate" // the PaymentIntent recorded on the cart
)

// Steps is the order the steps are reported in.
var Steps = []Step{StepReads, StepTransaction, StepCustomer, StepPaymentIntent, StepEphemeralKey, StepFinalUpdate}

// StepTimes records how long each step of one request took (summed, when a step runs twice).
// It is safe for the concurrent parts of a checkout.
type StepTimes struct {
	mu    sync.Mutex
	times map[Step]time.Duration
}

type stepsKey struct{}

// WithStepTimes returns ctx carrying a new StepTimes, which the checkout fills.
func WithStepTimes(ctx context.Context) (context.Context, *StepTimes) {
	st := &StepTimes{times: map[Step]time.Duration{}}
	return context.WithValue(ctx, stepsKey{}, st), st
}

// Get returns how long step took, and whether it ran.
func (st *StepTimes) Get(step Step) (time.Duration, bool) {
	if st == nil {
		return 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	d, ok := st.times[step]
	return d, ok
}

// timed starts step and returns the function that ends it (a no-op without StepTimes in ctx).
func timed(ctx context.Context, step Step) (end func()) {
	st, _ := ctx.Value(stepsKey{}).(*StepTimes)
	if st == nil {
		return func() {}
	}
	start := time.Now()
	return func() {
		d := time.Since(start)
		st.mu.Lock()
		st.times[step] += d
		st.mu.Unlock()
	}
}
