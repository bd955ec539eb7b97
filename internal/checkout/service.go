package checkout

import (
	"log/slog"
	"sync"
	"time"

	"github.com/winktravel/checkout/internal/rescue"
)

// Service is the checkout use case. Its methods are the things checkout does.
type Service struct {
	mover          // carts, payments, now, log
	customizations Customizations
	customers      Customers
	redirectHosts  HostPatterns
	hold           time.Duration
	serial         bool
}

// DefaultHold is how long a checkout holds its bookings unless configured otherwise.
const DefaultHold = 30 * time.Minute

// Options configure a Service.
type Options struct {
	// RedirectHosts is the deployment-wide redirect allow-list (ALLOWED_REDIRECT_HOSTS).
	RedirectHosts HostPatterns
	// Hold is how long a checkout holds its bookings (CHECKOUT_HOLD); default DefaultHold.
	Hold time.Duration
	// Serial runs the independent calls one after another instead of concurrently. It exists so
	// that benchmarks can show what the overlap buys; production never sets it.
	Serial bool
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
}

// New builds the checkout service on its ports.
func New(carts Carts, customizations Customizations, customers Customers, payments Payments, opts Options) *Service {
	return &Service{
		mover:          opts.mover(carts, payments),
		customizations: customizations,
		customers:      customers,
		redirectHosts:  opts.RedirectHosts,
		hold:           opts.hold(),
		serial:         opts.Serial,
	}
}

func (o Options) mover(carts Carts, payments Payments) mover {
	m := mover{carts: carts, payments: payments, now: o.Now, log: o.Logger}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

func (o Options) hold() time.Duration {
	if o.Hold == 0 {
		return DefaultHold
	}
	return o.Hold
}

// concurrently runs fns at once (one after another in serial mode) and waits for all of them. A
// panic in one of them is raised again here, on the caller's goroutine.
func (s *Service) concurrently(fns ...func()) {
	if s.serial {
		for _, fn := range fns {
			fn()
		}
		return
	}
	panics := make([]*rescue.Panic, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns[1:] {
		wg.Go(func() { panics[i+1] = rescue.Run(fn) })
	}
	fns[0]()
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}

// background starts fn and returns a function that waits for it (in serial mode fn runs first).
// A panic in fn is raised again by wait, on the caller's goroutine.
func (s *Service) background(fn func()) (wait func()) {
	if s.serial {
		fn()
		return func() {}
	}
	done := make(chan *rescue.Panic, 1)
	go func() { done <- rescue.Run(fn) }()
	return func() {
		if p := <-done; p != nil {
			panic(p)
		}
	}
}
