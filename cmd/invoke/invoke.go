package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/testenv"
)

// function is one function of template.yaml: its package, and its Timeout and MemorySize, which
// the emulator gives it as Lambda would.
type function struct {
	pkg     string
	timeout int // seconds
	memory  int // MB
}

// functions are the template's functions (TestEveryTemplateFunctionCanBeInvoked keeps the two in
// step).
var functions = map[string]function{
	"CheckoutFunction":      {pkg: "./functions/checkout", timeout: 10, memory: 256},
	"StripeWebhookFunction": {pkg: "./functions/stripe-webhook", timeout: 10, memory: 256},
	"ReleaseHoldsFunction":  {pkg: "./functions/release-holds", timeout: 45, memory: 256},
}

// functionOf is the function an event file is for: stripe-webhook-*.json the webhook's,
// release-holds-*.json the hold releaser's, any other the checkout's.
func functionOf(event string) string {
	switch name := filepath.Base(event); {
	case strings.HasPrefix(name, "stripe-webhook-"):
		return "StripeWebhookFunction"
	case strings.HasPrefix(name, "release-holds-"):
		return "ReleaseHoldsFunction"
	}
	return "CheckoutFunction"
}

// SignPlaceholder, as an event's Stripe-Signature header, is replaced by a signature made at
// invoke time with the function's STRIPE_WEBHOOK_SECRET: Stripe's signatures expire after five
// minutes, so a signed sample event could not stay valid.
const SignPlaceholder = "signed-at-invoke-time"

// settings reads events/env.json's variables for fn, as `sam local invoke --env-vars` does, with
// host.docker.internal (how a container reaches the host) read as 127.0.0.1 (the emulator runs
// on the host), then overrides applied.
func settings(envFile, fn string, overrides map[string]string) (map[string]string, error) {
	raw, err := os.ReadFile(envFile)
	if err != nil {
		return nil, err
	}
	var all map[string]map[string]string
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("%s: %w", envFile, err)
	}
	vars, ok := all[fn]
	if !ok {
		return nil, fmt.Errorf("%s has no variables for %s", envFile, fn)
	}
	out := make(map[string]string, len(vars)+len(overrides))
	for k, v := range vars {
		out[k] = strings.ReplaceAll(v, "host.docker.internal", "127.0.0.1")
	}
	maps.Copy(out, overrides)
	return out, nil
}

// Emulator is one function built for this machine and running under SAM's Lambda Runtime
// Interface Emulator, as `sam local invoke` runs it inside its container.
type Emulator struct {
	Function string
	url      string
	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
}

// findEmulator returns the aws-lambda-rie binary for this machine that the aws-sam-cli package
// ships in the SAM virtualenv of `make lint-template`.
func findEmulator() (string, error) {
	arch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]
	if runtime.GOOS != "linux" || arch == "" {
		return "", fmt.Errorf("the Lambda emulator runs on linux/amd64 and linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	tools, err := localstack.ToolsDir()
	if err != nil {
		return "", err
	}
	pattern := filepath.Join(tools, "sam-venv", "lib", "python*", "site-packages", "samcli", "local", "rapid", "aws-lambda-rie-"+arch)
	found, _ := filepath.Glob(pattern)
	if len(found) == 0 {
		return "", fmt.Errorf("no %s: install the SAM CLI with `make lint-template` (or `make invoke`, which does)", pattern)
	}
	return found[0], nil
}

// build compiles fn's package for this machine into dir/bootstrap, as the Makefile builds it for
// Lambda (lambda.norpc: the Runtime API only).
func build(ctx context.Context, root, dir, fn string) (string, error) {
	bin := filepath.Join(dir, fn, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, functions[fn].pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", fn, err, out)
	}
	return bin, nil
}

// StartEmulator runs bootstrap under the emulator on a free loopback port with vars as the
// function's environment (and the local AWS region and credentials), and waits until it listens.
func StartEmulator(ctx context.Context, fn, bootstrap string, vars map[string]string) (*Emulator, error) {
	rie, err := findEmulator()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	f := functions[fn]
	cmd := exec.Command(rie, "--log-level", "error",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]), bootstrap)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_NAME=" + fn, "AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(f.timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(f.memory), "AWS_LAMBDA_LOG_FORMAT=Text"}
	for k, v := range localstack.AWSEnv() {
		env = append(env, k+"="+v)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	cmd.Env = env
	e := &Emulator{Function: fn, url: "http://" + addr + "/2015-03-31/functions/function/invocations", cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulator: %w", err)
	}
	go func() { _ = cmd.Wait(); close(e.done) }()
	for { // poll until it listens
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("the emulator exited before it listened:\n%s", e.log.String())
		case <-ctx.Done():
			e.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Invoke sends event to the function and returns its response, and what the function and the
// emulator logged meanwhile.
func (e *Emulator) Invoke(ctx context.Context, event []byte) (response []byte, log string, err error) {
	from := e.log.Len()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(event))
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, e.log.From(from), fmt.Errorf("invoke %s: %w", e.Function, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	// The function's last lines may follow the answer by a moment: wait for the emulator's END.
	for range 50 {
		if strings.Contains(e.log.From(from), "END RequestId") {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return body, e.log.From(from), err
}

// Stop ends the emulator and the function under it.
func (e *Emulator) Stop() {
	_ = e.cmd.Process.Kill()
	<-e.done
}

// prepare reads an event file and, for the webhook, signs it if it asks to be signed.
func prepare(path, fn string, vars map[string]string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if fn != "StripeWebhookFunction" {
		return raw, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	headers, _ := ev["headers"].(map[string]any)
	if headers["stripe-signature"] != SignPlaceholder {
		return raw, nil
	}
	body, _ := ev["body"].(string)
	headers["stripe-signature"] = testenv.Signature([]byte(body), vars["STRIPE_WEBHOOK_SECRET"], time.Now())
	return json.Marshal(ev)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// syncBuffer is the emulator's output, written by its process and read by Invoke.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *syncBuffer) From(i int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[i:])
}

func (b *syncBuffer) String() string { return b.From(0) }

var errNoStack = errors.New("nothing answers on the DynamoDB endpoint of events/env.json: start `make run` in another terminal first")
