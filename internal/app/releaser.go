package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
)

// Releaser is the assembled hold releaser: one run releases the checkouts whose hold has ended.
type Releaser struct {
	Lifecycle *checkout.Lifecycle
	log       *slog.Logger
}

// NewReleaser builds the hold releaser. now is the clock (nil: time.Now); tests set it. Every
// error here is a cold-start failure.
func NewReleaser(ctx context.Context, cfg config.Releaser, logger *slog.Logger, now func() time.Time) (*Releaser, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	var (
		analytics checkout.Analytics
		wg        sync.WaitGroup
	)
	wg.Go(func() { analytics = newAnalytics(ctx, awsCfg, cfg.GA4, logger) })
	stripeKey, err := secretValue(ctx, awsCfg, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	wg.Wait()
	if err != nil {
		return nil, err
	}
	stripe, err := newStripe(stripeKey, cfg.Stripe, config.DefaultStripeEphemeralKeyVersion)
	if err != nil {
		return nil, err
	}
	db := dynamoClient(awsCfg, cfg.DynamoDBEndpoint)
	lifecycle := newLifecycle(db, cfg.Lifecycle, stripe, analytics, checkout.Options{Hold: cfg.CheckoutHold, Logger: logger, Now: now})
	return &Releaser{Lifecycle: lifecycle, log: logger}, nil
}

// Run is one scheduled run (the Lambda handler: the schedule's event carries nothing it needs).
// It logs one line with what the run did. Only a run that could not look for due holds at all
// fails; a hold that could not be released is left, logged, for the next run.
func (r *Releaser) Run(ctx context.Context) (checkout.Sweep, error) {
	start := time.Now()
	sweep, err := r.Lifecycle.ReleaseDue(ctx)
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
