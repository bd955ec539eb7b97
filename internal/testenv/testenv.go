// Package testenv runs the checkout function against the real local stack: it starts DynamoDB
// Local, stripe-mock and moto, creates the tables of template.yaml, and puts a recording proxy in
// front of Stripe. Tests and benchmarks use it; the deployed function never does.
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/tables"
)

// StripeKey is the test-mode key the function uses against stripe-mock (which accepts any
// `sk_test_` key of letters and digits).
const StripeKey = "sk_test_4eC39HqLyjWDarjtT1zdp7dcCheckoutTests"

// Tables maps the template's table logical ids to the names used locally.
var Tables = map[string]string{
	"CartsTable":          "carts",
	"BookingsTable":       "bookings",
	"CustomizationsTable": "customizations",
	"CustomersTable":      "customers",
	"HoldsTable":          "holds",
}

// Env is a running local stack with the checkout tables.
type Env struct {
	Stack *localstack.Stack
	DB    *dynamodb.Client
}

// Start starts the stack, points this process's AWS SDK at it (the SDK's standard variables,
// as the function reads them) and creates the tables.
func Start(ctx context.Context, opts localstack.Options) (*Env, error) {
	stack, err := localstack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	e := &Env{Stack: stack}
	if err := e.init(ctx); err != nil {
		stack.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) init(ctx context.Context) error {
	vars := localstack.AWSEnv()
	vars["AWS_ENDPOINT_URL_DYNAMODB"] = e.Stack.DynamoEndpoint
	if e.Stack.SecretsManagerEndpoint != "" {
		vars["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = e.Stack.SecretsManagerEndpoint
	}
	for k, v := range vars {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	e.DB = localstack.DynamoDBClient(e.Stack.DynamoEndpoint)
	if err := tables.CreateFromTemplate(ctx, e.DB, Tables); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return nil
}

// Stop stops the stack.
func (e *Env) Stop() error { return e.Stack.Stop() }

// Settings returns the function's environment against this stack, with Stripe reached at
// stripeURL (a recorder or a proxy), overridden by overrides.
func (e *Env) Settings(stripeURL string, overrides map[string]string) func(string) string {
	vars := map[string]string{
		"CARTS_TABLE":               Tables["CartsTable"],
		"BOOKINGS_TABLE":            Tables["BookingsTable"],
		"CUSTOMIZATIONS_TABLE":      Tables["CustomizationsTable"],
		"CUSTOMERS_TABLE":           Tables["CustomersTable"],
		"HOLDS_TABLE":               Tables["HoldsTable"],
		"STRIPE_SECRET_KEY":         StripeKey,
		"STRIPE_WEBHOOK_SECRET":     WebhookSecret,
		"STRIPE_API_BASE":           stripeURL,
		"ALLOWED_REDIRECT_HOSTS":    "book.example.com,*.wink.test",
		"PROBLEM_TYPE_BASE":         "https://api.example.com/problems/",
		"AWS_ENDPOINT_URL_DYNAMODB": e.Stack.DynamoEndpoint,
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

// Function builds the checkout function as the Lambda's main does, from settings.
func Function(ctx context.Context, settings func(string) string, logger *slog.Logger, opts app.Options) (*app.Function, error) {
	cfg, err := config.FromEnv(settings)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, logger, opts)
}

var tableCounter atomic.Int64

// NewTable creates one more table of template.yaml's table logicalID, under a fresh name, and
// returns the name: for a test that needs a table to itself (a hold releaser sweeps the whole
// holds table).
func (e *Env) NewTable(ctx context.Context, logicalID string) (string, error) {
	path, err := tables.TemplatePath()
	if err != nil {
		return "", err
	}
	defs, err := tables.Load(path)
	if err != nil {
		return "", err
	}
	def, ok := defs[logicalID]
	if !ok {
		return "", fmt.Errorf("template.yaml has no table %s", logicalID)
	}
	name := fmt.Sprintf("%s-%d", Tables[logicalID], tableCounter.Add(1))
	if err := tables.Create(ctx, e.DB, map[string]tables.Table{logicalID: def}, map[string]string{logicalID: name}); err != nil {
		return "", err
	}
	return name, nil
}
