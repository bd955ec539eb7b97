package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// ColdStart builds the function in directory pkg (a functions/ package), runs its binary once with
// only env and PATH, and returns what it printed and its exit code: for the tests that a bad
// setting fails the cold start with one clear log line.
func ColdStart(pkg string, env ...string) (stdout string, exitCode int, err error) {
	dir, err := os.MkdirTemp("", "coldstart-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return string(out), 0, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode(), nil
	}
	return string(out), 0, err
}
