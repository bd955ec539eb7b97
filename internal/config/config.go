// Package config reads the function's settings from the environment and checks
// them, so that a misconfiguration fails the cold start instead of the first request.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
)

// Config is the function's configuration.
type Config struct {
	CartsTable          string
	BookingsTable       string
	CustomizationsTable string
	CustomersTable      string
	HoldsTable          string
	// CheckoutHold is how long a checkout holds its bookings before the hold releaser may free
	// them (CHECKOUT_HOLD).
	CheckoutHold time.Duration
	// StripeSecretARN names the Secrets Manager secret holding the Stripe secret key. When it is
	// empty, StripeSecretKey is used (local runs and tests only).
	StripeSecretARN           string
	StripeSecretKey           string
	StripeAPIBase             string
	StripeEphemeralKeyVersion string
	AllowedRedirectHosts      checkout.HostPatterns
	IdentityClaim             string
	ProblemTypeBase           string
	LocalMode                 bool
	LogLevel                  slog.Level
	// DynamoDBEndpoint is the SDK's own AWS_ENDPOINT_URL_DYNAMODB, read here only to know that
	// DynamoDB is a local emulator.
	DynamoDBEndpoint string
}

// Defaults of the optional settings.
const (
	DefaultCartsTable                = "carts"
	DefaultBookingsTable             = "bookings"
	DefaultCustomizationsTable       = "customizations"
	DefaultCustomersTable            = "customers"
	DefaultHoldsTable                = "holds"
	DefaultCheckoutHold              = "30m"
	DefaultStripeEphemeralKeyVersion = "2023-10-16"
	DefaultIdentityClaim             = "sub"
	DefaultProblemTypeBase           = "https://api.wink.travel/problems/"
)

// FromEnv reads and checks the configuration; the error names every bad setting.
func FromEnv(getenv func(string) string) (Config, error) {
	var errs []error // every bad setting, reported on one line
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		CartsTable:                get("CARTS_TABLE", DefaultCartsTable),
		BookingsTable:             get("BOOKINGS_TABLE", DefaultBookingsTable),
		CustomizationsTable:       get("CUSTOMIZATIONS_TABLE", DefaultCustomizationsTable),
		CustomersTable:            get("CUSTOMERS_TABLE", DefaultCustomersTable),
		HoldsTable:                get("HOLDS_TABLE", DefaultHoldsTable),
		StripeSecretARN:           get("STRIPE_SECRET_ARN", ""),
		StripeSecretKey:           get("STRIPE_SECRET_KEY", ""),
		StripeAPIBase:             get("STRIPE_API_BASE", ""),
		StripeEphemeralKeyVersion: get("STRIPE_EPHEMERAL_KEY_VERSION", DefaultStripeEphemeralKeyVersion),
		IdentityClaim:             get("IDENTITY_CLAIM", DefaultIdentityClaim),
		ProblemTypeBase:           get("PROBLEM_TYPE_BASE", DefaultProblemTypeBase),
		DynamoDBEndpoint:          get("AWS_ENDPOINT_URL_DYNAMODB", ""),
	}
	if c.StripeSecretARN == "" && c.StripeSecretKey == "" {
		errs = append(errs, errors.New("STRIPE_SECRET_ARN (or, for local runs, STRIPE_SECRET_KEY) must be set"))
	}
	if c.StripeSecretARN != "" && !strings.HasPrefix(c.StripeSecretARN, "arn:") {
		errs = append(errs, errors.New("STRIPE_SECRET_ARN must be a Secrets Manager ARN"))
	}
	if c.StripeAPIBase != "" && !isHTTPURL(c.StripeAPIBase) {
		errs = append(errs, errors.New("STRIPE_API_BASE must be an absolute http(s) URL"))
	}
	if !isHTTPURL(c.ProblemTypeBase) {
		errs = append(errs, errors.New("PROBLEM_TYPE_BASE must be an absolute http(s) URL"))
	}
	hosts, err := checkout.ParseHostPatterns(strings.Split(getenv("ALLOWED_REDIRECT_HOSTS"), ","))
	if err != nil {
		errs = append(errs, fmt.Errorf("ALLOWED_REDIRECT_HOSTS: %w", err))
	}
	c.AllowedRedirectHosts = hosts
	local, err := strconv.ParseBool(get("LOCAL_MODE", "false"))
	if err != nil {
		errs = append(errs, errors.New("LOCAL_MODE must be true or false"))
	}
	c.LocalMode = local
	if c.CheckoutHold, err = checkoutHold(get("CHECKOUT_HOLD", DefaultCheckoutHold), local); err != nil {
		errs = append(errs, err)
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "INFO"))); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR"))
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return c, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

// checkoutHold reads CHECKOUT_HOLD: at least 5 minutes (10 seconds in local mode, to watch a hold
// expire) and at most 23 hours, inside Stripe's 24-hour idempotency window.
func checkoutHold(value string, local bool) (time.Duration, error) {
	hold, err := time.ParseDuration(value)
	least, leastText := 5*time.Minute, "5m"
	if local {
		least, leastText = 10*time.Second, "10s"
	}
	if err != nil || hold < least || hold > 23*time.Hour {
		return 0, fmt.Errorf("CHECKOUT_HOLD must be a duration from %s to 23h", leastText)
	}
	return hold, nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
