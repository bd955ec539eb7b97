// Package app assembles the checkout function from its configuration: AWS and Stripe clients,
// the adapters, the use case and the HTTP handler. The Lambda's main, the local server and the
// tests all build the function through it.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/payments"
)

// Options tune how the function is built; the zero value is production.
type Options struct {
	// Serial switches the flow's concurrency off (benchmarks compare both).
	Serial bool
}

// Function is the assembled checkout function.
type Function struct {
	Handler *httpapi.Handler
	Service *checkout.Service
}

// New builds the function: it loads the AWS configuration, reads the Stripe secret once and
// wires the adapters. Every error here is a cold-start failure.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (*Function, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 64 // concurrent requests in the local server reuse connections
	})
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	stripeKey, err := stripeSecretKey(ctx, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	stripe, err := payments.New(payments.Config{
		SecretKey:           stripeKey,
		APIBase:             cfg.StripeAPIBase,
		EphemeralKeyVersion: cfg.StripeEphemeralKeyVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("configure stripe: %w", err)
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		// DynamoDB Local's CRC32 response checksums do not always match what the SDK computes;
		// skip that check for a local endpoint only, never against AWS.
		o.DisableValidateResponseChecksum = cfg.DynamoDBEndpoint != ""
	})
	service := checkout.New(
		dynamo.NewCarts(db, cfg.CartsTable, cfg.BookingsTable, cfg.HoldsTable),
		dynamo.NewCustomizations(db, cfg.CustomizationsTable),
		dynamo.NewCustomers(db, cfg.CustomersTable),
		stripe,
		checkout.Options{RedirectHosts: cfg.AllowedRedirectHosts, Hold: cfg.CheckoutHold, Serial: opts.Serial, Logger: logger},
	)
	handler := httpapi.NewHandler(service, httpapi.Config{
		ProblemTypeBase: cfg.ProblemTypeBase,
		IdentityClaim:   cfg.IdentityClaim,
		LocalMode:       cfg.LocalMode,
		DeadlineMargin:  httpapi.DefaultDeadlineMargin,
		Logger:          logger,
	})
	return &Function{Handler: handler, Service: service}, nil
}

// stripeSecretKey reads the Stripe secret key from Secrets Manager, or takes STRIPE_SECRET_KEY
// when no secret ARN is configured.
func stripeSecretKey(ctx context.Context, cfg config.Config, awsCfg aws.Config) (string, error) {
	if cfg.StripeSecretARN == "" {
		return cfg.StripeSecretKey, nil
	}
	out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: &cfg.StripeSecretARN,
	})
	if err != nil {
		return "", fmt.Errorf("read the Stripe secret %s: %w", cfg.StripeSecretARN, err)
	}
	key := strings.TrimSpace(aws.ToString(out.SecretString))
	if key == "" {
		return "", fmt.Errorf("the Stripe secret %s is empty", cfg.StripeSecretARN)
	}
	return key, nil
}

// NewLogger returns the function's logger: JSON or text per Lambda's log format setting through
// aws-lambda-go's handler (which adds Lambda's request id), filtered at LOG_LEVEL.
func NewLogger(base slog.Handler, level slog.Level) *slog.Logger {
	return slog.New(levelFilter{Handler: base, level: level})
}

type levelFilter struct {
	slog.Handler
	level slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.level && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFilter{Handler: f.Handler.WithAttrs(attrs), level: f.level}
}

func (f levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{Handler: f.Handler.WithGroup(name), level: f.level}
}
