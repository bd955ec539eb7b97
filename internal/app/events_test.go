package app_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The sample events themselves go through SAM's Lambda emulator in cmd/invoke
// (TestEveryEventGivesItsDocumentedResult), each checked against docs/local.md's table.

// TestEnvJSONPointsAtTheLocalStack keeps events/env.json in step with the settings the function reads.
func TestEnvJSONPointsAtTheLocalStack(t *testing.T) {
	raw, err := os.ReadFile("../../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"CheckoutFunction", "StripeWebhookFunction", "ReleaseHoldsFunction"} {
		vars := env[fn]
		for _, k := range []string{"CARTS_TABLE", "BOOKINGS_TABLE", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "AWS_ENDPOINT_URL_DYNAMODB"} {
			if vars[k] == "" {
				t.Errorf("events/env.json does not set %s's %s", fn, k)
			}
		}
		if vars["STRIPE_SECRET_ARN"] != "" || !strings.Contains(vars["AWS_ENDPOINT_URL_DYNAMODB"], "host.docker.internal") || !strings.Contains(vars["STRIPE_API_BASE"], "host.docker.internal") {
			t.Errorf("events/env.json must clear %s's STRIPE_SECRET_ARN and reach the host through host.docker.internal: %v", fn, vars)
		}
	}
}
