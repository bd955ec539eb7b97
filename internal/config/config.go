// Package config reads the functions' settings from the environment and checks them, so that a
// misconfiguration fails the cold start instead of the first request. Each function reads only
// the settings it uses.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/ga4"
)

// Config is the checkout function's configuration.
type Config struct {
	CartsTable          string
	BookingsTable       string
	CustomizationsTable string
	CustomersTable      string
	HoldsTable          string
	// CheckoutHold is how long a checkout holds its bookings before the hold releaser may free
	// them (CHECKOUT_HOLD).
	CheckoutHold time.Duration
	Stripe
	StripeEphemeralKeyVersion string
	AllowedRedirectHosts      checkout.HostPatterns
	IdentityClaim             string
	ProblemTypeBase           string
	LocalMode                 bool
	LogLevel                  slog.Level
	// DynamoDBEndpoint is the SDK's own AWS_ENDPOINT_URL_DYNAMODB, read here only to know that
	// DynamoDB is a local emulator.
	DynamoDBEndpoint string
	// FunctionName is Lambda's AWS_LAMBDA_FUNCTION_NAME: the Function dimension of the metrics.
	FunctionName string
}

// Stripe is where the Stripe API and its secret key are.
type Stripe struct {
	// StripeSecretARN names the Secrets Manager secret holding the Stripe secret key. When it is
	// empty, StripeSecretKey is used (local runs and tests only).
	StripeSecretARN string
	StripeSecretKey string
	StripeAPIBase   string
}

// Lifecycle is what the functions that move started checkouts (the webhook, the hold releaser)
// share: the tables a move writes, and the hold of checkouts whose state predates holdEndsAt.
type Lifecycle struct {
	CartsTable    string
	BookingsTable string
	HoldsTable    string
	CheckoutHold  time.Duration
	GA4
}

// GA4 is where confirmed checkouts' purchases go (docs/ga4.md).
type GA4 struct {
	// GA4Endpoint is the Measurement Protocol's collect URL (GA4_ENDPOINT; default Google's).
	GA4Endpoint string
	// GA4SecretsARN names the Secrets Manager secret holding the API secrets, a JSON object from
	// measurement id to secret (GA4_API_SECRETS_ARN); GA4Secrets is that JSON itself, used
	// when the ARN is empty (GA4_API_SECRETS: local runs and tests only). With neither, every
	// purchase is skipped.
	GA4SecretsARN string
	GA4Secrets    string
}

// Webhook is the Stripe webhook function's configuration.
type Webhook struct {
	Lifecycle
	Stripe
	// WebhookSecretARN names the Secrets Manager secret holding the endpoint's signing secret
	// (whsec_...); WebhookSecret is used when it is empty (local runs and tests only).
	WebhookSecretARN string
	WebhookSecret    string
	ProblemTypeBase  string
	LocalMode        bool
	LogLevel         slog.Level
	DynamoDBEndpoint string
	FunctionName     string
}

// Releaser is the hold releaser's configuration.
type Releaser struct {
	Lifecycle
	Stripe
	LocalMode        bool
	LogLevel         slog.Level
	DynamoDBEndpoint string
	FunctionName     string
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

// FromEnv reads and checks the checkout function's configuration; the error names every bad
// setting.
func FromEnv(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		CartsTable:                r.get("CARTS_TABLE", DefaultCartsTable),
		BookingsTable:             r.get("BOOKINGS_TABLE", DefaultBookingsTable),
		CustomizationsTable:       r.get("CUSTOMIZATIONS_TABLE", DefaultCustomizationsTable),
		CustomersTable:            r.get("CUSTOMERS_TABLE", DefaultCustomersTable),
		HoldsTable:                r.get("HOLDS_TABLE", DefaultHoldsTable),
		Stripe:                    r.stripe(),
		StripeEphemeralKeyVersion: r.get("STRIPE_EPHEMERAL_KEY_VERSION", DefaultStripeEphemeralKeyVersion),
		IdentityClaim:             r.get("IDENTITY_CLAIM", DefaultIdentityClaim),
		ProblemTypeBase:           r.problemTypeBase(),
		DynamoDBEndpoint:          r.get("AWS_ENDPOINT_URL_DYNAMODB", ""),
	}
	hosts, err := checkout.ParseHostPatterns(strings.Split(getenv("ALLOWED_REDIRECT_HOSTS"), ","))
	if err != nil {
		r.fail(fmt.Errorf("ALLOWED_REDIRECT_HOSTS: %w", err))
	}
	c.AllowedRedirectHosts = hosts
	c.LocalMode = r.localMode()
	c.CheckoutHold = r.checkoutHold(c.LocalMode)
	c.LogLevel = r.logLevel()
	c.FunctionName = r.get("AWS_LAMBDA_FUNCTION_NAME", "")
	return c, r.err()
}

// WebhookFromEnv reads and checks the Stripe webhook function's configuration.
func WebhookFromEnv(getenv func(string) string) (Webhook, error) {
	r := reader{getenv: getenv}
	c := Webhook{
		Lifecycle:        r.lifecycle(),
		Stripe:           r.stripe(),
		WebhookSecretARN: r.get("STRIPE_WEBHOOK_SECRET_ARN", ""),
		WebhookSecret:    r.get("STRIPE_WEBHOOK_SECRET", ""),
		ProblemTypeBase:  r.problemTypeBase(),
		DynamoDBEndpoint: r.get("AWS_ENDPOINT_URL_DYNAMODB", ""),
	}
	switch {
	case c.WebhookSecretARN == "" && c.WebhookSecret == "":
		r.fail(errors.New("STRIPE_WEBHOOK_SECRET_ARN (or, for local runs, STRIPE_WEBHOOK_SECRET) must be set"))
	case c.WebhookSecretARN != "" && !strings.HasPrefix(c.WebhookSecretARN, "arn:"):
		r.fail(errors.New("STRIPE_WEBHOOK_SECRET_ARN must be a Secrets Manager ARN"))
	}
	c.LocalMode = r.localMode()
	c.CheckoutHold = r.checkoutHold(c.LocalMode)
	c.GA4 = r.ga4(c.LocalMode)
	c.LogLevel = r.logLevel()
	c.FunctionName = r.get("AWS_LAMBDA_FUNCTION_NAME", "")
	return c, r.err()
}

// ReleaserFromEnv reads and checks the hold releaser's configuration.
func ReleaserFromEnv(getenv func(string) string) (Releaser, error) {
	r := reader{getenv: getenv}
	c := Releaser{
		Lifecycle:        r.lifecycle(),
		Stripe:           r.stripe(),
		DynamoDBEndpoint: r.get("AWS_ENDPOINT_URL_DYNAMODB", ""),
	}
	c.LocalMode = r.localMode()
	c.CheckoutHold = r.checkoutHold(c.LocalMode)
	c.GA4 = r.ga4(c.LocalMode)
	c.LogLevel = r.logLevel()
	c.FunctionName = r.get("AWS_LAMBDA_FUNCTION_NAME", "")
	return c, r.err()
}

// reader reads settings and collects every bad one, to be reported on one line.
type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) get(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) fail(err error) { r.errs = append(r.errs, err) }

func (r *reader) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(r.errs))
	for i, err := range r.errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// lifecycle reads the tables of a lifecycle move; its hold comes with LOCAL_MODE, later.
func (r *reader) lifecycle() Lifecycle {
	return Lifecycle{
		CartsTable:    r.get("CARTS_TABLE", DefaultCartsTable),
		BookingsTable: r.get("BOOKINGS_TABLE", DefaultBookingsTable),
		HoldsTable:    r.get("HOLDS_TABLE", DefaultHoldsTable),
	}
}

// ga4 reads the GA4 settings: an https endpoint (http only to a loopback address or in local
// mode: the local collector), the secrets' ARN or, locally, the secrets themselves.
func (r *reader) ga4(local bool) GA4 {
	g := GA4{
		GA4Endpoint:   r.get("GA4_ENDPOINT", ga4.DefaultEndpoint),
		GA4SecretsARN: r.get("GA4_API_SECRETS_ARN", ""),
		GA4Secrets:    r.get("GA4_API_SECRETS", ""),
	}
	u, err := url.Parse(g.GA4Endpoint)
	plain := u != nil && u.Scheme == "http" && (local || isLoopback(u.Hostname()))
	if err != nil || u.Host == "" || !(u.Scheme == "https" || plain) || u.RawQuery != "" {
		r.fail(errors.New("GA4_ENDPOINT must be an absolute https URL without a query (http only to a local collector)"))
	}
	if g.GA4SecretsARN != "" && !strings.HasPrefix(g.GA4SecretsARN, "arn:") {
		r.fail(errors.New("GA4_API_SECRETS_ARN must be a Secrets Manager ARN"))
	}
	if g.GA4SecretsARN == "" {
		if _, err := ga4.ParseSecrets(g.GA4Secrets); err != nil {
			r.fail(fmt.Errorf("GA4_API_SECRETS: %w", err))
		}
	}
	return g
}

func (r *reader) stripe() Stripe {
	s := Stripe{
		StripeSecretARN: r.get("STRIPE_SECRET_ARN", ""),
		StripeSecretKey: r.get("STRIPE_SECRET_KEY", ""),
		StripeAPIBase:   r.get("STRIPE_API_BASE", ""),
	}
	if s.StripeSecretARN == "" && s.StripeSecretKey == "" {
		r.fail(errors.New("STRIPE_SECRET_ARN (or, for local runs, STRIPE_SECRET_KEY) must be set"))
	}
	if s.StripeSecretARN != "" && !strings.HasPrefix(s.StripeSecretARN, "arn:") {
		r.fail(errors.New("STRIPE_SECRET_ARN must be a Secrets Manager ARN"))
	}
	if s.StripeAPIBase != "" && !isHTTPURL(s.StripeAPIBase) {
		r.fail(errors.New("STRIPE_API_BASE must be an absolute http(s) URL"))
	}
	return s
}

func (r *reader) problemTypeBase() string {
	base := r.get("PROBLEM_TYPE_BASE", DefaultProblemTypeBase)
	if !isHTTPURL(base) {
		r.fail(errors.New("PROBLEM_TYPE_BASE must be an absolute http(s) URL"))
	}
	return base
}

func (r *reader) localMode() bool {
	local, err := strconv.ParseBool(r.get("LOCAL_MODE", "false"))
	if err != nil {
		r.fail(errors.New("LOCAL_MODE must be true or false"))
	}
	return local
}

// checkoutHold reads CHECKOUT_HOLD: at least 5 minutes (10 seconds in local mode, to watch a hold
// expire) and at most 23 hours, inside Stripe's 24-hour idempotency window.
func (r *reader) checkoutHold(local bool) time.Duration {
	hold, err := time.ParseDuration(r.get("CHECKOUT_HOLD", DefaultCheckoutHold))
	least, leastText := 5*time.Minute, "5m"
	if local {
		least, leastText = 10*time.Second, "10s"
	}
	if err != nil || hold < least || hold > 23*time.Hour {
		r.fail(fmt.Errorf("CHECKOUT_HOLD must be a duration from %s to 23h", leastText))
		return 0
	}
	return hold
}

func (r *reader) logLevel() slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(r.get("LOG_LEVEL", "INFO"))); err != nil {
		r.fail(errors.New("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR"))
	}
	return level
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
