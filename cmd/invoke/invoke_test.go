package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// Every file of events/ through SAM's Lambda emulator, as `make invoke` sends it, against the
// local stack with the sample data; each must give the result docs/local.md documents for it.

var (
	local *testenv.Env
	bins  string // the functions built for this machine
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	// Starting the stack and building three functions for this machine: on a fresh 2-core
	// machine the builds share it with the rest of make test, so they get minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var err error
	if local, err = testenv.Start(ctx, localstack.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "start the local stack:", err)
		return 1
	}
	defer local.Stop()
	if err := sample.Seed(ctx, local.DB, testenv.Tables["CartsTable"], testenv.Tables["CustomizationsTable"], time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		return 1
	}
	if bins, err = os.MkdirTemp("", "checkout-invoke-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bins)
	for fn := range functions {
		if _, err := build(ctx, "../..", bins, fn); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// overrides point events/env.json's settings at the test's stack (its ports are free ones).
func overrides() map[string]string {
	return map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": local.Stack.DynamoEndpoint, "STRIPE_API_BASE": local.Stack.StripeURL}
}

// documented reads docs/local.md's table of sample events: file -> result (an HTTP status, or
// "ok" for a function that answers no HTTP).
func documented(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/local.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `events/([a-z0-9-]+\\.json)` \\| ([A-Za-z]+) \\| (\\d{3}|ok) \\|").FindAllStringSubmatch(string(doc), -1)
	out := map[string]string{}
	for _, r := range rows {
		if functionOf(r[1]) != r[2] {
			t.Errorf("docs/local.md gives events/%s to %s, but make invoke sends it to %s", r[1], r[2], functionOf(r[1]))
		}
		out[r[1]] = r[3]
	}
	if len(out) == 0 {
		t.Fatal("docs/local.md has no table of the sample events")
	}
	return out
}

func TestEveryEventGivesItsDocumentedResult(t *testing.T) {
	want := documented(t)
	files, err := filepath.Glob("../../events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	emulators := map[string]*Emulator{}
	t.Cleanup(func() {
		for _, e := range emulators {
			e.Stop()
		}
	})
	seen := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		if name == "env.json" {
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			result, ok := want[name]
			if !ok {
				t.Fatalf("events/%s has no documented result in docs/local.md's table", name)
			}
			fn := functionOf(name)
			vars, err := settings("../../events/env.json", fn, overrides())
			if err != nil {
				t.Fatal(err)
			}
			if emulators[fn] == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				e, err := StartEmulator(ctx, fn, filepath.Join(bins, fn, "bootstrap"), vars)
				if err != nil {
					t.Fatal(err)
				}
				emulators[fn] = e
			}
			event, err := prepare(file, fn, vars)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(functions[fn].timeout+5)*time.Second)
			defer cancel()
			out, log, err := emulators[fn].Invoke(ctx, event)
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			checkResult(t, out, result, log)
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("docs/local.md documents events/%s, which does not exist", name)
		}
	}
}

// checkResult checks a function's response against its documented result.
func checkResult(t *testing.T, out []byte, result, log string) {
	t.Helper()
	if bytes.Contains(out, []byte(`"errorType"`)) {
		t.Fatalf("the function failed: %s\n%s", out, log)
	}
	if result == "ok" {
		var sweep struct{ Due, Failed *int }
		if err := json.Unmarshal(out, &sweep); err != nil || sweep.Due == nil || *sweep.Failed != 0 {
			t.Errorf("response %s (%v), want the run's counts with nothing failed", out, err)
		}
		return
	}
	var resp struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if strconv.Itoa(resp.StatusCode) != result {
		t.Errorf("status %d, want %s: %s\n%s", resp.StatusCode, result, resp.Body, log)
	}
	wantType := "application/json"
	if resp.StatusCode >= 400 {
		wantType = "application/problem+json"
	}
	if resp.Headers["Content-Type"] != wantType {
		t.Errorf("Content-Type %q, want %q", resp.Headers["Content-Type"], wantType)
	}
}

// What `make invoke` prints for the sample checkout: its log, and the 200 with the five fields.
func TestMakeInvokePrintsTheResponseAndTheLog(t *testing.T) {
	if err := sample.Seed(context.Background(), local.DB, testenv.Tables["CartsTable"], testenv.Tables["CustomizationsTable"], time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Chdir("../..")
	args := []string{"-event", "events/checkout-success.json"}
	for k, v := range overrides() {
		args = append(args, "-set", k+"="+v)
	}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	printed := out.String()
	for _, want := range []string{"Log of CheckoutFunction:", `message="checkout answered"`, "Response:", `"statusCode": 200`,
		"Body:", `"clientSecret": "pi_`, `"ephemeralKey": "ek_`, `"customerId": "cus_`, `"groupIdentifier": "`, `"bookingCodes": [`} {
		if !strings.Contains(printed, want) {
			t.Errorf("make invoke printed no %s:\n%s", want, printed)
		}
	}
}

// Without a running stack, make invoke says what to start.
func TestMakeInvokeWithoutAStack(t *testing.T) {
	t.Chdir("../..")
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"-event", "events/checkout-success.json",
		"-set", "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:" + strconv.Itoa(ports[0])}, &bytes.Buffer{})
	if err != errNoStack {
		t.Errorf("error %v, want %v", err, errNoStack)
	}
}

// The emulator gives every function of the template the Timeout and MemorySize it has there,
// and events/env.json sets every variable the template declares for it (sam local invoke
// passes only declared variables).
func TestEveryTemplateFunctionCanBeInvoked(t *testing.T) {
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Timeout     int `yaml:"Timeout"`
				MemorySize  int `yaml:"MemorySize"`
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	var inTemplate []string
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		inTemplate = append(inTemplate, id)
		f, ok := functions[id]
		if !ok {
			t.Errorf("make invoke does not know %s", id)
			continue
		}
		if f.timeout != r.Properties.Timeout || f.memory != r.Properties.MemorySize {
			t.Errorf("%s: make invoke gives %d s and %d MB, the template %d s and %d MB", id, f.timeout, f.memory, r.Properties.Timeout, r.Properties.MemorySize)
		}
		vars, err := settings("../../events/env.json", id, nil)
		if err != nil {
			t.Error(err)
			continue
		}
		for name := range r.Properties.Environment.Variables {
			if _, ok := vars[name]; !ok && !slices.Contains([]string{"PROBLEM_TYPE_BASE", "CHECKOUT_HOLD", "GA4_ENDPOINT", "IDENTITY_CLAIM", "STRIPE_EPHEMERAL_KEY_VERSION"}, name) {
				t.Errorf("events/env.json does not set %s's %s", id, name)
			}
		}
	}
	if len(inTemplate) != len(functions) {
		t.Errorf("the template has %v, make invoke knows %d functions", inTemplate, len(functions))
	}
}
