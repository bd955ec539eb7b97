// Package project locates the project's own files (template.yaml, .tools/) for the developer
// programs and tests that run from a checkout.
package project

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root returns the module root: the nearest directory, from the working directory up, that
// holds go.mod.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod in %s or above it", wd)
		}
	}
}
