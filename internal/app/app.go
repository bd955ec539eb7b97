// Package app assembles the checkout function from its configuration: AWS and Stripe clients,
// the adapters, the use case and the HTTP handler. The Lambda's main, the local server and the
// tests all build the function through it.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/httpapi"
	"github.com/winktravel/checkout/internal/metrics"
	"github.com/winktravel/checkout/internal/payments"
)

// Options tune how the function is built; the zero value is production.
type Options struct {
	// Serial switches the flow's concurrency off (benchmarks compare both).
	Serial bool
	// Metrics receives the functions' EMF lines (nil: stdout, which Lambda sends to CloudWatch
	// Logs; io.Discard for none).
	Metrics io.Writer
	// Now is the hold releaser's clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// MetricsNamespace is the CloudWatch namespace of every metric the functions write.
const MetricsNamespace = "WinkCheckout"

func (o Options) metrics() *metrics.Writer {
	w := o.Metrics
	if w == nil {
		w = os.Stdout
	}
	return metrics.NewWriter(w, MetricsNamespace)
}

// Function is the assembled checkout function.
type Function struct {
	Handler *httpapi.Handler
	Service *checkout.Service
}

// New builds the function: it loads the AWS configuration, reads the Stripe secret once and
// wires the adapters. Every error here is a cold-start failure.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (*Function, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	stripeKey, err := secretValue(ctx, awsCfg, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	if err != nil {
		return nil, err
	}
	stripe, err := newStripe(stripeKey, cfg.Stripe, cfg.StripeEphemeralKeyVersion)
	if err != nil {
		return nil, err
	}
	db := dynamoClient(awsCfg, cfg.DynamoDBEndpoint)
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
		Metrics:         opts.metrics(),
		FunctionName:    cfg.FunctionName,
	})
	return &Function{Handler: handler, Service: service}, nil
}

// newStripe is the Stripe adapter on the key read at cold start.
func newStripe(key string, cfg config.Stripe, ephemeralKeyVersion string) (*payments.Stripe, error) {
	stripe, err := payments.New(payments.Config{SecretKey: key, APIBase: cfg.StripeAPIBase, EphemeralKeyVersion: ephemeralKeyVersion})
	if err != nil {
		return nil, fmt.Errorf("configure stripe: %w", err)
	}
	return stripe, nil
}

// loadAWS loads the AWS configuration of a function.
func loadAWS(ctx context.Context) (aws.Config, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 64 // concurrent requests in the local server reuse connections
	})
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(httpClient))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return awsCfg, nil
}

// dynamoClient is the DynamoDB client of a function. DynamoDB Local's CRC32 response checksums do
// not always match what the SDK computes: that check is skipped for a local endpoint only, never
// against AWS.
func dynamoClient(awsCfg aws.Config, localEndpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = localEndpoint != ""
	})
}

// secretValue reads a secret's SecretString from Secrets Manager, or takes local (a setting for
// local runs and tests) when no ARN is configured. The value never appears in an error.
func secretValue(ctx context.Context, awsCfg aws.Config, arn, local, what string) (string, error) {
	if arn == "" {
		return local, nil
	}
	out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return "", fmt.Errorf("read the %s %s: %w", what, arn, err)
	}
	value := strings.TrimSpace(aws.ToString(out.SecretString))
	if value == "" {
		return "", fmt.Errorf("the %s %s is empty", what, arn)
	}
	return value, nil
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
