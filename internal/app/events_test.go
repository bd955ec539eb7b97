package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/winktravel/checkout/internal/sample"
)

// eventStatus is the documented status of every sample event in events/.
var eventStatus = map[string]int{
	"checkout-success.json":  200,
	"missing-field.json":     400,
	"bad-wink-version.json":  400,
	"unknown-cart.json":      400,
	"other-owners-cart.json": 403,
	"missing-identity.json":  401,
}

// TestSampleEvents runs every file of events/ through aws-lambda-go's own handler wrapper, as
// the Lambda runtime (and `sam local invoke`) would, against the sample data of the local stack.
func TestSampleEvents(t *testing.T) {
	ctx := context.Background()
	if err := sample.Seed(ctx, db, tableNames["CartsTable"], tableNames["CustomizationsTable"], time.Now()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, map[string]string{"ALLOWED_REDIRECT_HOSTS": "ota.wink.travel"})
	handler := lambda.NewHandler(h.fn.Handler.Handle)

	files, err := filepath.Glob("../../events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, file := range files {
		name := filepath.Base(file)
		if name == "env.json" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			want, ok := eventStatus[name]
			if !ok {
				t.Fatalf("events/%s has no documented status in this test", name)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			invokeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			out, err := handler.Invoke(invokeCtx, raw)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("response %s: %v", out, err)
			}
			if resp.StatusCode != want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, want, resp.Body)
			}
			wantType := "application/json"
			if want != 200 {
				wantType = "application/problem+json"
			}
			if resp.Headers["Content-Type"] != wantType {
				t.Errorf("Content-Type %q, want %q", resp.Headers["Content-Type"], wantType)
			}
		})
	}
	if seen != len(eventStatus) {
		t.Errorf("%d events in events/, %d documented here", seen, len(eventStatus))
	}
}

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
	vars := env["CheckoutFunction"]
	for _, k := range []string{"CARTS_TABLE", "BOOKINGS_TABLE", "CUSTOMIZATIONS_TABLE", "CUSTOMERS_TABLE", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "AWS_ENDPOINT_URL_DYNAMODB"} {
		if vars[k] == "" {
			t.Errorf("events/env.json does not set %s", k)
		}
	}
	if vars["STRIPE_SECRET_ARN"] != "" || !strings.Contains(vars["AWS_ENDPOINT_URL_DYNAMODB"], "host.docker.internal") || !strings.Contains(vars["STRIPE_API_BASE"], "host.docker.internal") {
		t.Errorf("events/env.json must clear STRIPE_SECRET_ARN and reach the host through host.docker.internal: %v", vars)
	}
}
