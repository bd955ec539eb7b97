package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/payments"
)

// newLifecycle wires the lifecycle use case on its tables.
func newLifecycle(db *dynamodb.Client, tables config.Lifecycle, stripe *payments.Stripe, opts checkout.Options) *checkout.Lifecycle {
	return checkout.NewLifecycle(
		dynamo.NewCarts(db, tables.CartsTable, tables.BookingsTable, tables.HoldsTable),
		dynamo.NewBookings(db, tables.BookingsTable),
		dynamo.NewHolds(db, tables.HoldsTable),
		stripe,
		opts,
	)
}

// Webhook is the assembled Stripe webhook function.
type Webhook struct {
	Handler   *httpapi.WebhookHandler
	Lifecycle *checkout.Lifecycle
}

// NewWebhook builds the webhook function: the AWS configuration, the Stripe secret key and the
// endpoint's signing secret (read concurrently, once), the adapters. Every error here is a
// cold-start failure.
func NewWebhook(ctx context.Context, cfg config.Webhook, logger *slog.Logger) (*Webhook, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	var (
		stripeKey, signingSecret string
		keyErr, secretErr        error
		wg                       sync.WaitGroup
	)
	wg.Go(func() {
		stripeKey, keyErr = secretValue(ctx, awsCfg, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	})
	signingSecret, secretErr = secretValue(ctx, awsCfg, cfg.WebhookSecretARN, cfg.WebhookSecret, "Stripe webhook signing secret")
	wg.Wait()
	if err := errors.Join(keyErr, secretErr); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(signingSecret, "whsec_") {
		return nil, errors.New("the Stripe webhook signing secret must be the endpoint's whsec_ secret")
	}
	stripe, err := newStripe(stripeKey, cfg.Stripe, config.DefaultStripeEphemeralKeyVersion)
	if err != nil {
		return nil, err
	}
	db := dynamoClient(awsCfg, cfg.DynamoDBEndpoint)
	lifecycle := newLifecycle(db, cfg.Lifecycle, stripe, checkout.Options{Hold: cfg.CheckoutHold, Logger: logger})
	handler := httpapi.NewWebhookHandler(lifecycle, httpapi.WebhookConfig{
		SigningSecret:   signingSecret,
		ProblemTypeBase: cfg.ProblemTypeBase,
		DeadlineMargin:  httpapi.DefaultDeadlineMargin,
		Logger:          logger,
	})
	return &Webhook{Handler: handler, Lifecycle: lifecycle}, nil
}
