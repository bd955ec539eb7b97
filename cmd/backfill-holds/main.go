// Command backfill-holds gives a hold to every checkout started before holds existed, once,
// after the first deploy of the hold releaser: without one, such a checkout nobody pays would
// keep its bookings for ever. It scans the carts table (a one-off, not a request path), and for
// each cart CHECKING_OUT or CHECKED_OUT whose checkout state has no holdEndsAt, puts the hold the
// checkout would have had (its start plus CHECKOUT_HOLD), unless one exists. Running it again
// changes nothing. docs/deploy.md says when to run it.
//
//	go run ./cmd/backfill-holds                # tables and hold from the usual settings
//	CARTS_TABLE=... HOLDS_TABLE=... CHECKOUT_HOLD=30m AWS_REGION=... go run ./cmd/backfill-holds
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/dynamo"
)

func main() {
	cfg, err := config.ReleaserFromEnv(func(name string) string {
		if name == "STRIPE_SECRET_KEY" && os.Getenv("STRIPE_SECRET_ARN") == "" && os.Getenv(name) == "" {
			return "sk_unused" // the backfill calls no Stripe API
		}
		return os.Getenv(name)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "backfill-holds: invalid setting:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backfill-holds:", err)
		os.Exit(1)
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = strings.TrimSpace(os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")) != ""
	})
	n, err := dynamo.BackfillHolds(ctx, db, cfg.CartsTable, cfg.HoldsTable, cfg.CheckoutHold)
	fmt.Printf("backfill-holds: %d hold(s) added to %s\n", n, cfg.HoldsTable)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backfill-holds:", err)
		os.Exit(1)
	}
}
