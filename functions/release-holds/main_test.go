package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A misconfigured hold releaser fails its cold start with one clear log line naming every bad setting,
// and no secret in it.
func TestColdStartFailsOnBadConfiguration(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_LEVEL=LOUD", "STRIPE_SECRET_KEY=sk_test_hidden"}
	out, err := cmd.Output()
	if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "invalid configuration") ||
		!strings.Contains(lines[0], "LOG_LEVEL") {
		t.Errorf("log %q, want one line naming the bad settings", out)
	}
	if strings.Contains(string(out), "sk_test_hidden") {
		t.Errorf("the Stripe key reached the log")
	}
}
