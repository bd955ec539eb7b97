package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/ga4"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/payments"
)

// newLifecycle wires the lifecycle use case on its tables.
func newLifecycle(db *dynamodb.Client, tables config.Lifecycle, stripe *payments.Stripe, analytics checkout.Analytics, opts checkout.Options) *checkout.Lifecycle {
	return checkout.NewLifecycle(
		dynamo.NewCarts(db, tables.CartsTable, tables.BookingsTable, tables.HoldsTable),
		dynamo.NewBookings(db, tables.BookingsTable),
		dynamo.NewHolds(db, tables.HoldsTable),
		stripe,
		analytics,
		opts,
	)
}

// newAnalytics reads the GA4 API secrets (Secrets Manager, or the local setting) and returns
// the Measurement Protocol client. Analytics never stops a confirmation: a secret that cannot be
// read or is not the documented JSON is logged, and every purchase then fails (they stay pending,
// retried by the hold releaser after the next cold start) instead of failing this one.
func newAnalytics(ctx context.Context, aws awsEnv, cfg config.GA4, logger *slog.Logger) checkout.Analytics {
	text, err := aws.secretValue(ctx, cfg.GA4SecretsARN, cfg.GA4Secrets, "GA4 API secrets")
	var secrets map[string]string
	if err == nil {
		secrets, err = ga4.ParseSecrets(text)
	}
	if err != nil {
		logger.ErrorContext(ctx, "no GA4 API secrets: purchases wait for a cold start that can read them", slog.String("error", err.Error()))
		return ga4.Unavailable(err)
	}
	return ga4.New(cfg.GA4Endpoint, secrets, nil)
}

// Webhook is the assembled Stripe webhook function.
type Webhook struct {
	Handler   *httpapi.WebhookHandler
	Lifecycle *checkout.Lifecycle
}

// NewWebhook builds the webhook function: the AWS configuration, the Stripe secret key, the
// endpoint's signing secret and the GA4 secrets (read concurrently, once, while a connection to
// DynamoDB opens), the adapters. Every error here is a
// cold-start failure.
func NewWebhook(ctx context.Context, cfg config.Webhook, logger *slog.Logger, opts Options) (*Webhook, error) {
	aws, err := loadAWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	db := aws.dynamoClient(cfg.DynamoDBEndpoint)
	dynamoURL, err := aws.dynamoURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve the DynamoDB endpoint: %w", err)
	}
	var (
		stripeKey, signingSecret string
		analytics                checkout.Analytics
		keyErr, secretErr        error
		wg                       sync.WaitGroup
	)
	wg.Go(func() {
		stripeKey, keyErr = aws.secretValue(ctx, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	})
	wg.Go(func() { analytics = newAnalytics(ctx, aws, cfg.GA4, logger) })
	wg.Go(func() { aws.warm.open(ctx, dynamoURL, 1) }) // a delivery's moves are one call at a time
	signingSecret, secretErr = aws.secretValue(ctx, cfg.WebhookSecretARN, cfg.WebhookSecret, "Stripe webhook signing secret")
	wg.Wait()
	if err := errors.Join(keyErr, secretErr); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(signingSecret, "whsec_") {
		return nil, errors.New("the Stripe webhook signing secret must be the endpoint's whsec_ secret")
	}
	stripe, err := newStripe(stripeKey, cfg.Stripe, config.DefaultStripeEphemeralKeyVersion, nil)
	if err != nil {
		return nil, err
	}
	lifecycle := newLifecycle(db, cfg.Lifecycle, stripe, analytics, checkout.Options{Hold: cfg.CheckoutHold, Logger: logger})
	handler := httpapi.NewWebhookHandler(lifecycle, httpapi.WebhookConfig{
		SigningSecret:   signingSecret,
		ProblemTypeBase: cfg.ProblemTypeBase,
		DeadlineMargin:  httpapi.DefaultDeadlineMargin,
		Logger:          logger,
		Metrics:         opts.metrics(),
		FunctionName:    cfg.FunctionName,
	})
	return &Webhook{Handler: handler, Lifecycle: lifecycle}, nil
}
