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
	"sync"
	"time"

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

// Connections opened in init, as many as the flow uses at once: the three reads of step 2
// (cart, customization, customer) go to DynamoDB together, the PaymentIntent and the ephemeral
// key to Stripe.
const (
	initDynamoConnections = 3
	initStripeConnections = 2
)

// New builds the function. Its cold start does three things at once and waits for nothing else:
// it reads the Stripe secret and opens the connections to DynamoDB and to Stripe that the first
// checkout then reuses. Every error here is a cold-start failure; a connection that could not be
// opened is not one (the first request opens it).
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (*Function, error) {
	aws, err := loadAWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	db := aws.dynamoClient(cfg.DynamoDBEndpoint)
	dynamoURL, err := aws.dynamoURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve the DynamoDB endpoint: %w", err)
	}
	stripeTransport := payments.NewTransport()
	stripeWarm := newWarmer(stripeTransport)
	var (
		wg                     sync.WaitGroup
		dynamoOpen, stripeOpen int
	)
	wg.Go(func() { dynamoOpen = aws.warm.open(ctx, dynamoURL, initDynamoConnections) })
	wg.Go(func() {
		stripeOpen = stripeWarm.open(ctx, payments.BaseURL(cfg.Stripe.StripeAPIBase), initStripeConnections)
	})
	stripeKey, err := aws.secretValue(ctx, cfg.StripeSecretARN, cfg.StripeSecretKey, "Stripe secret")
	wg.Wait()
	if err != nil {
		return nil, err
	}
	logger.DebugContext(ctx, "connections opened in init", slog.Int("dynamodb", dynamoOpen), slog.Int("stripe", stripeOpen))
	stripe, err := newStripe(stripeKey, cfg.Stripe, cfg.StripeEphemeralKeyVersion, payments.NewHTTPClient(stripeTransport))
	if err != nil {
		return nil, err
	}
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

// newStripe is the Stripe adapter on the key read at cold start (hc nil: a client of its own).
func newStripe(key string, cfg config.Stripe, ephemeralKeyVersion string, hc *http.Client) (*payments.Stripe, error) {
	stripe, err := payments.New(payments.Config{SecretKey: key, APIBase: cfg.StripeAPIBase, EphemeralKeyVersion: ephemeralKeyVersion, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("configure stripe: %w", err)
	}
	return stripe, nil
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
