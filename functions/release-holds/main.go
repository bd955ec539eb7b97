// Command release-holds is the hold releaser, run on the schedule of template.yaml: it releases
// every checkout still pending past its hold. It only wires: configuration, then clients and
// adapters (internal/app), then lambda.Start.
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
	cfg, err := config.ReleaserFromEnv(os.Getenv)
	logger := app.NewLogger(lambdacontext.NewLogHandler(), cfg.LogLevel)
	if err != nil {
		logger.Error("invalid configuration: " + err.Error())
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	fn, err := app.NewReleaser(ctx, cfg, logger, app.Options{})
	cancel()
	if err != nil {
		logger.Error("cold start failed: " + err.Error())
		os.Exit(1)
	}
	slog.SetDefault(logger)
	lambda.Start(fn.Run)
}
