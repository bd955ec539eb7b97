package main_test

import (
	"strings"
	"testing"

	"github.com/winktravel/checkout/internal/testenv"
)

// A misconfigured function fails its cold start with one clear log line naming every bad
// setting, and no secret in it.
func TestColdStartFailsOnBadConfiguration(t *testing.T) {
	out, code, err := testenv.ColdStart(".", "LOG_LEVEL=LOUD", "STRIPE_SECRET_KEY=sk_test_hidden")
	if err != nil || code != 1 {
		t.Fatalf("exit %d (%v), want status 1:\n%s", code, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "invalid configuration") {
		t.Fatalf("log %q, want one line", out)
	}
	for _, setting := range []string{"LOG_LEVEL"} {
		if !strings.Contains(lines[0], setting) {
			t.Errorf("log %q does not name %s", out, setting)
		}
	}
	if strings.Contains(out, "sk_test_hidden") {
		t.Errorf("the Stripe key reached the log")
	}
}
