package main

import (
	"errors"
	"strings"
	"testing"
)

func TestReadSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := readSettings(env(nil))
	if err != nil || s.port != 3000 || s.dynamoPort != 8000 || s.stripePort != 12111 || s.dataDir != "" {
		t.Errorf("defaults: %+v %v", s, err)
	}
	for _, bad := range []map[string]string{
		{envPort: "http"}, {envDynamoPort: "0"}, {envStripePort: "70000"}, {envPort: "8000"},
	} {
		if _, err := readSettings(env(bad)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	fn := functionEnv(env(map[string]string{"STRIPE_SECRET_ARN": "arn:aws:secretsmanager:x", "LOCAL_MODE": "false", "CARTS_TABLE": "c2"}), "http://d", "http://s")
	for name, want := range map[string]string{
		"STRIPE_SECRET_ARN": "", "STRIPE_SECRET_KEY": stripeKey, "STRIPE_API_BASE": "http://s", "AWS_ENDPOINT_URL_DYNAMODB": "http://d",
		"LOCAL_MODE": "true", "CARTS_TABLE": "c2", "ALLOWED_REDIRECT_HOSTS": defaultRedirectHosts,
	} {
		if got := fn(name); got != want {
			t.Errorf("function's %s = %q, want %q", name, got, want)
		}
	}
}

// A child that could not bind its port (taken after the check) is reported in the same one line.
func TestStartErrorNamesThePort(t *testing.T) {
	s := settings{port: 3000, dynamoPort: 8000, stripePort: 12111}
	for raw, want := range map[string]string{
		"localstack: dynamodb exited before answering (exit status 1); last output:\n\tjava.io.IOException: Failed to bind to 0.0.0.0/0.0.0.0:8000\n\tCaused by: java.net.BindException: Address already in use": "port 8000 (DynamoDB Local) is already in use, perhaps by another `make run`: stop that, or set LOCAL_DYNAMODB_PORT to a free port",
		"localstack: stripe-mock exited before answering (exit status 1); last output:\n\terror listening at address: listen tcp 127.0.0.1:12111: bind: address already in use":                                  "port 12111 (stripe-mock) is already in use, perhaps by another `make run`: stop that, or set LOCAL_STRIPE_PORT to a free port",
		"localstack: java not found on PATH (DynamoDB Local needs Java 17)": "start the local stack: localstack: java not found on PATH (DynamoDB Local needs Java 17)",
	} {
		got := startError(errors.New(raw), s).Error()
		if got != want || strings.Contains(want, "in use") && strings.Contains(got, "\n") {
			t.Errorf("startError(%.40q) = %q, want %q", raw, got, want)
		}
	}
}
