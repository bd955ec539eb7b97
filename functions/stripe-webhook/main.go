// Command stripe-webhook is the POST /api/stripe/webhook Lambda function: Stripe's events confirm,
// suspend and release checkouts. It only wires: configuration, then clients and adapters
// (internal/app), then lambda.Start.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
)

func main() {
	cfg, err := config.WebhookFromEnv(os.Getenv)
	logger := app.NewLogger(lambdacontext.NewLogHandler(), cfg.LogLevel)
	if err != nil {
		logger.Error("invalid configuration: " + err.Error())
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	fn, err := app.NewWebhook(ctx, cfg, logger, app.Options{})
	cancel()
	if err != nil {
		logger.Error("cold start failed: " + err.Error())
		os.Exit(1)
	}
	slog.SetDefault(logger)
	lambda.Start(fn.Handler.Handle)
}
