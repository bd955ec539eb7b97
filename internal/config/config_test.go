package config_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/config"
)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaults(t *testing.T) {
	c, err := config.FromEnv(getenv(map[string]string{"STRIPE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe-AbCdEf"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CartsTable != "carts" || c.BookingsTable != "bookings" || c.CustomizationsTable != "customizations" || c.CustomersTable != "customers" {
		t.Errorf("table defaults %+v", c)
	}
	if c.IdentityClaim != "sub" || c.StripeEphemeralKeyVersion != "2023-10-16" || c.LogLevel != slog.LevelInfo || c.LocalMode || c.ProblemTypeBase == "" {
		t.Errorf("defaults %+v", c)
	}
}

func TestSettings(t *testing.T) {
	c, err := config.FromEnv(getenv(map[string]string{
		"CARTS_TABLE": "c", "BOOKINGS_TABLE": "b", "CUSTOMIZATIONS_TABLE": "z", "CUSTOMERS_TABLE": "u",
		"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:12111",
		"STRIPE_EPHEMERAL_KEY_VERSION": "2024-06-20", "ALLOWED_REDIRECT_HOSTS": "a.example.com, *.b.example.com",
		"IDENTITY_CLAIM": "custom:id", "PROBLEM_TYPE_BASE": "https://errors.example.com/p", "LOCAL_MODE": "true", "LOG_LEVEL": "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CartsTable != "c" || c.StripeSecretKey != "sk_test_x" || c.IdentityClaim != "custom:id" || !c.LocalMode || c.LogLevel != slog.LevelDebug {
		t.Errorf("settings %+v", c)
	}
	if !c.AllowedRedirectHosts.Allows("a.example.com") || !c.AllowedRedirectHosts.Allows("x.b.example.com") || c.AllowedRedirectHosts.Allows("b.example.com") {
		t.Errorf("redirect hosts %v", c.AllowedRedirectHosts)
	}
}

func TestBadSettingsAreAllReportedOnOneLine(t *testing.T) {
	_, err := config.FromEnv(getenv(map[string]string{
		"STRIPE_API_BASE": "not a url", "PROBLEM_TYPE_BASE": "/relative", "LOCAL_MODE": "maybe",
		"LOG_LEVEL": "LOUD", "ALLOWED_REDIRECT_HOSTS": "https://x.example.com",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, name := range []string{"STRIPE_SECRET_ARN", "STRIPE_API_BASE", "PROBLEM_TYPE_BASE", "LOCAL_MODE", "LOG_LEVEL", "ALLOWED_REDIRECT_HOSTS"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s: %q", name, msg)
		}
	}
}

func TestSecretARNMustBeAnARN(t *testing.T) {
	if _, err := config.FromEnv(getenv(map[string]string{"STRIPE_SECRET_ARN": "stripe-key"})); err == nil {
		t.Error("a secret name accepted as an ARN")
	}
}

func TestSecretKeyNeverInError(t *testing.T) {
	_, err := config.FromEnv(getenv(map[string]string{"STRIPE_SECRET_KEY": "sk_test_supersecret", "LOG_LEVEL": "nope"}))
	if err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Errorf("error %v", err)
	}
}

// CHECKOUT_HOLD: 30 minutes by default, from 5 minutes to 23 hours (inside Stripe's idempotency
// window), down to 10 seconds in local mode only.
func TestCheckoutHold(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe-AbCdEf"
	for _, tc := range []struct {
		hold, local string
		want        time.Duration // 0: refused
	}{
		{"", "", 30 * time.Minute},
		{"5m", "", 5 * time.Minute},
		{"23h", "", 23 * time.Hour},
		{"4m59s", "", 0},
		{"24h", "", 0},
		{"10s", "", 0},
		{"10s", "true", 10 * time.Second},
		{"9s", "true", 0},
		{"half an hour", "", 0},
	} {
		c, err := config.FromEnv(getenv(map[string]string{"STRIPE_SECRET_ARN": arn, "CHECKOUT_HOLD": tc.hold, "LOCAL_MODE": tc.local}))
		switch {
		case tc.want == 0 && (err == nil || !strings.Contains(err.Error(), "CHECKOUT_HOLD")):
			t.Errorf("CHECKOUT_HOLD=%q LOCAL_MODE=%q: %v, want it refused", tc.hold, tc.local, err)
		case tc.want != 0 && (err != nil || c.CheckoutHold != tc.want):
			t.Errorf("CHECKOUT_HOLD=%q LOCAL_MODE=%q: %v %v, want %v", tc.hold, tc.local, c.CheckoutHold, err, tc.want)
		}
	}
}

// The GA4 settings of the webhook and the hold releaser: Google's endpoint by default, https
// only (http to a local collector), the secrets' ARN or valid local JSON, never echoed.
func TestGA4Settings(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe-AbCdEf"
	base := map[string]string{"STRIPE_SECRET_ARN": arn, "STRIPE_WEBHOOK_SECRET_ARN": arn}
	for _, tc := range []struct {
		name string
		vars map[string]string
		ok   bool
	}{
		{"defaults", nil, true},
		{"EU endpoint", map[string]string{"GA4_ENDPOINT": "https://region1.google-analytics.com/mp/collect"}, true},
		{"local collector", map[string]string{"GA4_ENDPOINT": "http://127.0.0.1:4000/mp/collect"}, true},
		{"plain http elsewhere", map[string]string{"GA4_ENDPOINT": "http://collector.example.com/mp/collect"}, false},
		{"plain http in local mode", map[string]string{"GA4_ENDPOINT": "http://collector:4000/mp/collect", "LOCAL_MODE": "true"}, true},
		{"endpoint with a query", map[string]string{"GA4_ENDPOINT": "https://www.google-analytics.com/mp/collect?api_secret=x"}, false},
		{"secrets ARN", map[string]string{"GA4_API_SECRETS_ARN": arn}, true},
		{"secrets not an ARN", map[string]string{"GA4_API_SECRETS_ARN": "ga4-secrets"}, false},
		{"local secrets", map[string]string{"GA4_API_SECRETS": `{"G-XHFTY1BDSD":"s3cr3t"}`}, true},
		{"local secrets not JSON", map[string]string{"GA4_API_SECRETS": `G-XHFTY1BDSD=s3cr3t`}, false},
	} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range tc.vars {
			vars[k] = v
		}
		hook, hookErr := config.WebhookFromEnv(getenv(vars))
		rel, relErr := config.ReleaserFromEnv(getenv(vars))
		for fn, err := range map[string]error{"webhook": hookErr, "releaser": relErr} {
			if (err == nil) != tc.ok {
				t.Errorf("%s, %s: %v, want ok=%v", tc.name, fn, err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%s, %s: the error shows the secret: %v", tc.name, fn, err)
			}
		}
		if tc.name == "defaults" && (hook.GA4Endpoint != "https://www.google-analytics.com/mp/collect" || rel.GA4Endpoint != hook.GA4Endpoint) {
			t.Errorf("default endpoints %q and %q", hook.GA4Endpoint, rel.GA4Endpoint)
		}
	}
}
