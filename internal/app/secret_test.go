package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
)

// TestStripeKeyFromSecretsManager reads the Stripe key from a real Secrets Manager API (moto's
// server, reached through AWS_ENDPOINT_URL_SECRETS_MANAGER) and uses it for every Stripe call.
func TestStripeKeyFromSecretsManager(t *testing.T) {
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const key = "sk_test_FromSecretsManager4eC39HqLyjWDarjt"
	out, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("checkout/stripe-" + time.Now().Format("150405.000000")),
		SecretString: aws.String(key + "\n"),
	})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}

	h := newHarness(t, map[string]string{"STRIPE_SECRET_ARN": aws.ToString(out.ARN), "STRIPE_SECRET_KEY": ""})
	putCart(t, cartSpec{id: "secret-1", owner: "traveller-k", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-k", checkoutBody("secret-1", ""))
	for _, path := range []string{"/v1/customers", "/v1/payment_intents", "/v1/ephemeral_keys"} {
		calls := h.stripe.Calls("POST", path)
		if len(calls) == 0 || calls[0].Authorization != "Bearer "+key {
			t.Errorf("%s was not called with the key from Secrets Manager", path)
		}
	}
	if strings.Contains(h.logs.String(), key) {
		t.Errorf("the Stripe key reached the log")
	}
}

// TestMissingSecretFailsColdStart: an unreadable secret is a cold-start error naming the ARN.
func TestMissingSecretFailsColdStart(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf"
	cfg, err := config.FromEnv(local.Settings(local.Stack.StripeURL, map[string]string{"STRIPE_SECRET_ARN": arn, "STRIPE_SECRET_KEY": ""}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err == nil || !strings.Contains(err.Error(), arn) {
		t.Fatalf("app.New with a missing secret: %v", err)
	}
}

// A Stripe secret that cannot be a secret or restricted key (a publishable key, a JSON document
// pasted into the secret) fails the cold start instead of every request, without quoting it.
func TestBadStripeSecretFailsColdStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const publishable, document = "pk_test_4eC39HqLyjWDarjtT1zdp7dc", `{"stripeSecretKey":"sk_test_4eC39HqLyjWDarjtT1zdp7dc"}`
	out, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("checkout/stripe-json-" + time.Now().Format("150405.000000")),
		SecretString: aws.String(document),
	})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	for name, overrides := range map[string]map[string]string{
		"publishable key":           {"STRIPE_SECRET_KEY": publishable},
		"JSON in Secrets Manager":   {"STRIPE_SECRET_ARN": aws.ToString(out.ARN), "STRIPE_SECRET_KEY": ""},
		"key with a trailing blank": {"STRIPE_SECRET_KEY": "sk_test_4eC39 HqLyj"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.FromEnv(local.Settings(local.Stack.StripeURL, overrides))
			if err != nil {
				t.Fatal(err)
			}
			_, err = app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{})
			if err == nil || !strings.Contains(err.Error(), "secret (sk_) or restricted (rk_)") && !strings.Contains(err.Error(), "characters no Stripe key has") {
				t.Fatalf("app.New: %v, want the cold start to fail on the key's form", err)
			}
			if strings.Contains(err.Error(), "4eC39") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}
