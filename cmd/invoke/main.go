// Command invoke is `sam local invoke` without Docker: it builds a function of template.yaml for
// this machine, runs it under the Lambda Runtime Interface Emulator that the aws-sam-cli package
// ships (what `sam local invoke` runs inside its container), with the variables of
// events/env.json, sends it one event file and prints the function's response and its log.
//
//	make invoke EVENT=events/checkout-success.json [FUNCTION=CheckoutFunction]
//	go run ./cmd/invoke -event events/checkout-success.json [-function F] [-set NAME=VALUE ...]
//
// It runs against the stack of a running `make run` (the ports events/env.json names). The
// function is the event's (stripe-webhook-*.json: StripeWebhookFunction, release-holds-*.json:
// ReleaseHoldsFunction, any other: CheckoutFunction) unless -function says otherwise. See
// docs/local.md, "make invoke".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/winktravel/checkout/internal/project"
)

type setFlags map[string]string

func (s setFlags) String() string { return "" }
func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("-set wants NAME=VALUE, not %q", v)
	}
	s[k] = val
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	event := fs.String("event", "", "the event file, e.g. events/checkout-success.json")
	fn := fs.String("function", "", "the template's function (default: the event's)")
	envFile := fs.String("env", "events/env.json", "the functions' variables, as for sam local invoke --env-vars")
	overrides := setFlags{}
	fs.Var(overrides, "set", "NAME=VALUE: a variable over events/env.json's (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*event); *event == "" || err != nil {
		return fmt.Errorf("no event file %q: make invoke EVENT=events/NAME.json, one of %s", *event, strings.Join(eventFiles(), ", "))
	}
	if *fn == "" {
		*fn = functionOf(*event)
	}
	if _, ok := functions[*fn]; !ok {
		return fmt.Errorf("no function %q: CheckoutFunction, StripeWebhookFunction or ReleaseHoldsFunction", *fn)
	}
	root, err := project.Root()
	if err != nil {
		return err
	}
	vars, err := settings(*envFile, *fn, overrides)
	if err != nil {
		return err
	}
	if !answers(vars["AWS_ENDPOINT_URL_DYNAMODB"]) {
		return errNoStack
	}
	raw, err := prepare(*event, *fn, vars)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "checkout-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stdout, "Building %s for this machine and starting it under SAM's Lambda emulator ...\n", *fn)
	bin, err := build(ctx, root, dir, *fn)
	if err != nil {
		return err
	}
	emu, err := StartEmulator(ctx, *fn, bin, vars)
	if err != nil {
		return err
	}
	defer emu.Stop()
	invokeCtx, cancel := context.WithTimeout(ctx, time.Duration(functions[*fn].timeout+5)*time.Second)
	defer cancel()
	resp, log, err := emu.Invoke(invokeCtx, raw)
	fmt.Fprintf(stdout, "\nLog of %s:\n%s\n", *fn, strings.TrimRight(log, "\n"))
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, resp, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(resp)
	}
	fmt.Fprintf(stdout, "\nResponse:\n%s\n", pretty.String())
	var api struct {
		Body *string `json:"body"`
	}
	if json.Unmarshal(resp, &api) == nil && api.Body != nil {
		var body bytes.Buffer
		if json.Indent(&body, []byte(*api.Body), "", "  ") == nil {
			fmt.Fprintf(stdout, "\nBody:\n%s\n", body.String())
		}
	}
	if bytes.Contains(resp, []byte(`"errorType"`)) {
		return fmt.Errorf("%s failed (its log is above)", *fn)
	}
	return nil
}

// answers reports whether something listens at endpoint's host and port.
func answers(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func eventFiles() []string {
	files, _ := filepath.Glob("events/*.json")
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "env.json" {
			out = append(out, f)
		}
	}
	return out
}
