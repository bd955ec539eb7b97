// Command bench measures the checkout against the performance budgets of docs/performance.md and
// prints one table, with PASS or FAIL for each budget; it exits 1 if a budget fails (2 if the
// measurement itself fails). `make bench` runs it; docs/performance.md explains every number.
//
// On the local stack (DynamoDB Local, stripe-mock, moto as Secrets Manager) it measures:
//
//   - latency of the handler invoked as Lambda does, of the same DynamoDB and Stripe calls made
//     directly (the floor: floor.go) and of the handler with its concurrency switched off, in
//     interleaved rounds so that the machine's drift hits all three alike; for a returning
//     traveller (Stripe customer known) and a new one (customer created);
//   - throughput with 50 requests at once, and allocations per request;
//   - the cold start: process start to the first request to the Lambda Runtime API, against an
//     empty aws-lambda-go function built the same way (coldstart.go);
//   - peak RSS of the local server (cmd/local) serving 50 requests at once (rss.go);
//   - the size of the stripped linux/arm64 bootstrap of `make build`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/project"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// The performance budgets. MB is 10^6 bytes.
const (
	maxFloorRatio     = 1.15
	maxInitCost       = 20 * time.Millisecond
	maxBootstrapBytes = 20_000_000
	maxPeakRSSBytes   = 64_000_000
)

// What every benchmarked checkout looks like: a cart of two rooms in EUR (180 + 245), a named
// customization (so the three reads all happen) whose host allows the redirect, GA4 fields.
const (
	benchRooms            = 2
	benchCurrency         = "EUR"
	benchAmountMinor      = 42500
	benchCustomization    = "cz-bench"
	benchDescriptorSuffix = "WINK BENCH"
	benchRedirect         = "https://shop.bench.example/thank-you"
	benchGA4ClientID      = "1234567890.1700000000"
	benchGA4SessionID     = "1700000000"
	benchGA4MeasurementID = "G-XHFTY1BDSD"
	// knownOwner is the returning traveller: its Stripe customer mapping exists.
	knownOwner = "bench-returning-traveller"
	// functionTimeout is the function's Timeout in template.yaml: each invocation's deadline.
	functionTimeout = 10 * time.Second
)

var (
	cartsTable          = testenv.Tables["CartsTable"]
	bookingsTable       = testenv.Tables["BookingsTable"]
	customizationsTable = testenv.Tables["CustomizationsTable"]
	customersTable      = testenv.Tables["CustomersTable"]
	holdsTable          = testenv.Tables["HoldsTable"]
)

type options struct {
	iterations, warmup   int
	concurrency, batches int
	allocRuns, initRuns  int
	webhookRounds        int
	tapRuns, tapWarm     int
	overload             overloadOptions
	bootstrap, tableOut  string
	samplesOut           string
}

func main() {
	var o options
	flag.IntVar(&o.iterations, "iterations", 500, "measured checkouts per variant (handler, floor, serial) and traveller kind")
	flag.IntVar(&o.warmup, "warmup", 100, "unmeasured rounds before those (DynamoDB Local's JIT warms up)")
	flag.IntVar(&o.concurrency, "concurrency", 50, "requests at once, for throughput and the local server's peak RSS")
	flag.IntVar(&o.batches, "batches", 5, "batches of concurrent requests")
	flag.IntVar(&o.allocRuns, "alloc-runs", 100, "checkouts over which allocations are counted")
	flag.IntVar(&o.webhookRounds, "webhook-rounds", 300, "measured confirmations through the webhook and through its floor each")
	flag.IntVar(&o.initRuns, "init-runs", 50, "cold starts of the function and of the empty function each")
	flag.IntVar(&o.tapRuns, "tap-runs", 10, "latency mode: processes of the function per traveller kind, each answering a first checkout")
	flag.IntVar(&o.tapWarm, "tap-warm", 4, "latency mode: warm checkouts each of those processes answers after its first")
	o.overload = defaultOverload
	flag.Float64Var(&o.overload.rate, "overload-rate", defaultOverload.rate, "overload run: checkouts started a second")
	flag.DurationVar(&o.overload.duration, "overload-duration", defaultOverload.duration, "overload run: for how long")
	flag.StringVar(&o.bootstrap, "bootstrap", "bin/bootstrap", "the linux/arm64 bootstrap built by `make build`")
	flag.StringVar(&o.tableOut, "o", "", "also write the table to this file")
	flag.StringVar(&o.samplesOut, "samples", "", "write every latency measured to this CSV file (microseconds, one round a line)")
	flag.Parse()

	passed, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if !passed {
		fmt.Fprintln(os.Stderr, "bench: a budget failed")
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, o options) (passed bool, err error) {
	began := time.Now()
	root, err := project.Root()
	if err != nil {
		return false, err
	}
	size, err := bootstrapSize(filepath.Join(root, o.bootstrap))
	if err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp("", "checkout-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)

	// Everything is compiled before anything is measured, so the compiler competes with nothing.
	progress("building the function and the empty function for the host, and the local server")
	fnBin, emptyBin, localBin := filepath.Join(tmp, "checkout"), filepath.Join(tmp, "empty"), filepath.Join(tmp, "local")
	if err := lambdaBuild(root, fnBin, "./functions/checkout"); err != nil {
		return false, err
	}
	if err := lambdaBuild(root, emptyBin, "./cmd/bench/empty"); err != nil {
		return false, err
	}
	if err := goCommand(root, nil, "build", "-o", localBin, "./cmd/local"); err != nil {
		return false, err
	}

	progress("starting DynamoDB Local, stripe-mock, moto and Toxiproxy")
	env, err := testenv.Start(ctx, localstack.Options{WithSecretsManager: true, WithToxiproxy: true})
	if err != nil {
		return false, err
	}
	defer env.Stop()
	secretARN, err := setUp(ctx, env)
	if err != nil {
		return false, err
	}

	// Cold starts first, while DynamoDB Local is idle: after the latency rounds its JVM can keep
	// compiling and collecting for a while, taking CPU from the starts being timed.
	progress("cold start: %d starts each of the function and the empty function, alternated", o.initRuns)
	cold, err := measureColdStarts(ctx, fnBin, emptyBin, coldStartEnv(env, secretARN, tmp), o.initRuns)
	if err != nil {
		return false, err
	}

	r, err := newRunner(ctx, env, secretARN)
	if err != nil {
		return false, err
	}
	progress("latency: %d warm-up rounds, then %d rounds of handler, floor and serial, each for a returning and a new traveller", o.warmup, o.iterations)
	lat, err := r.latency(ctx, o.warmup, o.iterations)
	if err != nil {
		return false, err
	}
	if o.samplesOut != "" {
		if err := writeFile(o.samplesOut, lat.writeCSV); err != nil {
			return false, err
		}
	}
	progress("webhook latency: %d warm-up rounds, then %d rounds of the webhook and its floor", o.warmup/2, o.webhookRounds)
	hook, hookFloor, err := r.webhookLatency(ctx, o.warmup/2, o.webhookRounds)
	if err != nil {
		return false, err
	}
	progress("throughput: %d batches of %d requests at once", o.batches, o.concurrency)
	rps, err := r.throughput(ctx, o.batches, o.concurrency)
	if err != nil {
		return false, err
	}
	progress("allocations over %d checkouts", o.allocRuns)
	allocs, err := r.allocations(ctx, o.allocRuns)
	if err != nil {
		return false, err
	}
	progress("first tap under latency: %d processes per traveller kind, each a first checkout and %d warm ones", o.tapRuns, o.tapWarm)
	taps, err := r.firstTapsUnderLatency(ctx, env, fnBin, coldStartEnv(env, secretARN, tmp), tmp, o)
	if err != nil {
		return false, err
	}
	progress("overload: %.0f checkouts a second for %s, Stripe limited to %d requests a second (%d an endpoint)",
		o.overload.rate, o.overload.duration, o.overload.globalLimit, o.overload.endpointLimit)
	over, err := r.measureOverload(ctx, secretARN, o.overload)
	if err != nil {
		return false, err
	}
	// The local server starts a stack of its own: stop this one first, to leave it the machine.
	if err := env.Stop(); err != nil {
		return false, err
	}
	progress("peak RSS of the local server: %d batches of %d requests at once", o.batches, o.concurrency)
	rss, err := serverPeakRSS(ctx, root, localBin, o.batches, o.concurrency)
	if err != nil {
		return false, err
	}

	progress("metric line: %d checkout metric lines written", 20000)
	metricLine := metricLineCost(20000)

	res := results{latency: lat, webhook: hook, webhookFloor: hookFloor, rps: rps, allocs: allocs, cold: cold, peakRSS: rss,
		bootstrapSize: size, metricLine: metricLine, taps: taps, overload: over}
	var out strings.Builder
	fmt.Fprintf(&out, "checkout benchmark, %s, %s: %s, %d CPUs, %s at the end; bench took %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), cpuModel(), runtime.NumCPU(),
		loadAverage(), time.Since(began).Round(time.Second))
	fmt.Fprintf(&out, "each checkout: a fresh cart of %d rooms in %s, a customization, GA4 fields; latency rows: %d checkouts each, "+
		"after %d warm-up rounds\n\n", benchRooms, benchCurrency, o.iterations, o.warmup)
	passed = res.table(&out, o)
	fmt.Print(out.String())
	if o.tableOut != "" {
		if err := os.WriteFile(o.tableOut, []byte(out.String()), 0o644); err != nil {
			return passed, err
		}
	}
	return passed, nil
}

// setUp stores the Stripe key in Secrets Manager (the function reads it at cold start, as in
// AWS) and the customization every request names.
func setUp(ctx context.Context, env *testenv.Env) (secretARN string, err error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", err
	}
	out, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("checkout/stripe-bench"),
		SecretString: aws.String(testenv.StripeKey),
	})
	if err != nil {
		return "", fmt.Errorf("create the Stripe secret: %w", err)
	}
	err = sample.PutCustomization(ctx, env.DB, customizationsTable, sample.Customization{
		ID: benchCustomization, Active: true, AllowedRedirectHosts: []string{"*.bench.example"},
		StatementDescriptorSuffix: benchDescriptorSuffix,
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ARN), nil
}

// benchFunction builds the function as the Lambda's main does, with the key from Secrets
// Manager, stripe-mock reached directly and a JSON log that is formatted, then discarded.
func benchFunction(ctx context.Context, env *testenv.Env, secretARN string, opts app.Options) (*app.Function, error) {
	settings := env.Settings(env.Stack.StripeURL, map[string]string{"STRIPE_SECRET_ARN": secretARN, "STRIPE_SECRET_KEY": ""})
	return testenv.Function(ctx, settings, discardLogger(), opts)
}

// discardLogger is the functions' logger as in Lambda (JSON, INFO), writing to nowhere: the
// lines are formatted, as they are in production, then thrown away.
func discardLogger() *slog.Logger {
	return app.NewLogger(slog.NewJSONHandler(io.Discard, nil), slog.LevelInfo)
}

// lambdaContext is ctx as Lambda gives it to an invocation: with its request id.
func lambdaContext(ctx context.Context, requestID string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
}

// lambdaBuild builds a Lambda function for this machine with the flags of `make build`.
func lambdaBuild(root, out, pkg string) error {
	return goCommand(root, []string{"CGO_ENABLED=0", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH},
		"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
}

func goCommand(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
