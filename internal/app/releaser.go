package app

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/metrics"
)

// Releaser is the assembled hold releaser: one run releases the checkouts whose hold has ended.
type Releaser struct {
	Lifecycle *checkout.Lifecycle
	log       *slog.Logger
	metrics   *metrics.Writer
	function  string
}

// NewReleaser builds the hold releaser (opts.Now is its clock). Every error here is a cold-start
// failure.
func NewReleaser(ctx context.Context, cfg config.Releaser, logger *slog.Logger, opts Options) (*Releaser, error) {
	aws, err := loadAWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	var (
		analytics checkout.Analytics
		wg        sync.WaitGroup
	)
	wg.Go(func() { analytics = newAnalytics(ctx, aws, cfg.GA4, logger) })
	stripeKey, err := aws.secretValue(ctx, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	wg.Wait()
	if err != nil {
		return nil, err
	}
	stripe, err := newStripe(stripeKey, cfg.Stripe, config.DefaultStripeEphemeralKeyVersion, nil)
	if err != nil {
		return nil, err
	}
	db := aws.dynamoClient(cfg.DynamoDBEndpoint)
	lifecycle := newLifecycle(db, cfg.Lifecycle, stripe, analytics, checkout.Options{Hold: cfg.CheckoutHold, Logger: logger, Now: opts.Now})
	function := cfg.FunctionName
	if function == "" {
		function = "release-holds"
	}
	return &Releaser{Lifecycle: lifecycle, log: logger, metrics: opts.metrics(), function: function}, nil
}

// Run is one scheduled run (the Lambda handler: the schedule's event carries nothing it needs).
// It logs one line with what the run did. Only a run that could not look for due holds at all
// fails; a hold that could not be released is left, logged, for the next run.
func (r *Releaser) Run(ctx context.Context) (checkout.Sweep, error) {
	start := time.Now()
	sweep, err := r.Lifecycle.ReleaseDue(ctx)
	r.emit(ctx, sweep, err, time.Since(start))
	if err != nil {
		r.log.ErrorContext(ctx, "hold release run failed", slog.String("error", err.Error()), slog.Duration("duration", time.Since(start)))
		return sweep, err
	}
	level := slog.LevelInfo
	switch {
	case sweep.Failed > 0 || sweep.PurchasesFailed > 0 || sweep.PurchasesAbandoned > 0:
		level = slog.LevelWarn
	case sweep.Due == 0:
		level = slog.LevelDebug // nothing was due: the common case, every minute
	}
	r.log.Log(ctx, level, "hold release run", slog.Int("due", sweep.Due), slog.Int("released", sweep.Released),
		slog.Int("confirmed", sweep.Confirmed), slog.Int("suspended", sweep.Suspended), slog.Int("skipped", sweep.Skipped),
		slog.Int("failed", sweep.Failed), slog.Int("purchasesSent", sweep.PurchasesSent), slog.Int("purchasesSkipped", sweep.PurchasesSkipped),
		slog.Int("purchasesFailed", sweep.PurchasesFailed), slog.Int("purchasesAbandoned", sweep.PurchasesAbandoned),
		slog.Duration("oldestDue", sweep.OldestDue), slog.Duration("duration", time.Since(start)))
	return sweep, nil
}

// emit writes the run's metric line: that it ran (HoldReleaserRuns, the releaser-not-running
// alarm's), whether it failed, what it did, and the oldest due hold's lag (the overdue alarm's).
func (r *Releaser) emit(ctx context.Context, s checkout.Sweep, err error, took time.Duration) {
	failed := 0
	if err != nil {
		failed = 1
	}
	e := r.metrics.New([]string{"Function"}).Dimension("Function", r.function).
		Count("HoldReleaserRuns", 1).Count("HoldReleaserRunsFailed", failed).Duration("Duration", took).
		Count("HoldsDue", s.Due).Count("HoldsReleased", s.Released).Count("HoldsConfirmed", s.Confirmed).
		Count("HoldsSuspended", s.Suspended).Count("HoldsSkipped", s.Skipped).Count("HoldsFailed", s.Failed).
		Add("OldestDueHold", metrics.Seconds, s.OldestDue.Seconds()).
		Count("PurchasesSent", s.PurchasesSent).Count("PurchasesSkipped", s.PurchasesSkipped).
		Count("PurchasesFailed", s.PurchasesFailed).Count("PurchasesAbandoned", s.PurchasesAbandoned)
	if err := e.Emit(); err != nil {
		r.log.ErrorContext(ctx, "metric line refused", slog.String("error", err.Error()))
	}
}
