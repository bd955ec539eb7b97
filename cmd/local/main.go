// Command local runs the checkout function on this machine, the way `make run` starts it:
// DynamoDB Local and stripe-mock (internal/localstack), the tables of template.yaml with the
// sample data (internal/sample), and POST /api/checkout on 127.0.0.1, where every request goes
// through the function's real handler as an API Gateway HTTP API event. `local seed` adds a cart
// to a running instance. docs/local.md describes both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/tables"
	"github.com/winktravel/checkout/internal/testenv"
)

// The server's own settings (the function's settings keep their names: CARTS_TABLE, ...).
const (
	envPort         = "LOCAL_PORT"
	envDynamoPort   = "LOCAL_DYNAMODB_PORT"
	envStripePort   = "LOCAL_STRIPE_PORT"
	envDataDir      = "LOCAL_DATA_DIR"
	envReleaseEvery = "LOCAL_RELEASE_EVERY"
)

// The defaults match events/env.json, so that `sam local invoke` reaches what `make run` started.
const (
	defaultPort          = 3000
	defaultDynamoPort    = 8000
	defaultStripePort    = 12111
	defaultRedirectHosts = "ota.wink.travel"
	defaultReleaseEvery  = 5 * time.Second
)

// functionTimeout is the function's Timeout in template.yaml: each request gets that deadline.
const functionTimeout = 10 * time.Second

// stripeKey is the function's Stripe key; stripe-mock accepts any sk_test_ key of letters and
// digits.
const stripeKey = "sk_test_localCheckoutServer"

// webhookSecret is the local Stripe webhook endpoint's signing secret: `local pay` signs with it.
const webhookSecret = "whsec_localCheckoutServerSigningSecret"

const usage = `Usage:
  local          run the checkout on 127.0.0.1 with DynamoDB Local, stripe-mock and sample data
  local seed     add a cart to a running local server (local seed -h for its flags)
  local pay      send the running server's Stripe webhook a signed event for a cart (local pay -h)

Settings (environment):
  LOCAL_PORT              port of POST /api/checkout on 127.0.0.1 (3000)
  LOCAL_DYNAMODB_PORT     port of DynamoDB Local (8000)
  LOCAL_STRIPE_PORT       port of stripe-mock on 127.0.0.1 (12111)
  LOCAL_DATA_DIR          keep DynamoDB's data in this directory between runs (default: in memory)
  LOCAL_RELEASE_EVERY     how often the hold releaser runs (5s; AWS: every minute)
  CHECKOUT_HOLD           how long a checkout holds its bookings (30m; 10s or more locally)
  CARTS_TABLE, BOOKINGS_TABLE, CUSTOMIZATIONS_TABLE, CUSTOMERS_TABLE, HOLDS_TABLE
                          table names (carts, bookings, customizations, customers, holds)
  ALLOWED_REDIRECT_HOSTS  redirect hosts the function accepts (ota.wink.travel)
  LOG_LEVEL, IDENTITY_CLAIM, PROBLEM_TYPE_BASE, STRIPE_EPHEMERAL_KEY_VERSION
                          passed to the function as in AWS
  CHECKOUT_TOOLS_DIR      where 'make tools' installed DynamoDB Local and stripe-mock (.tools)

See docs/local.md.
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		os.Exit(seedCommand(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "pay" {
		os.Exit(payCommand(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, stop, os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

var errInterrupted = errors.New("interrupted before it was ready; everything it started is stopped")

// settings are the server's own settings.
type settings struct {
	port, dynamoPort, stripePort int
	dataDir                      string
	releaseEvery                 time.Duration
}

func readSettings(getenv func(string) string) (settings, error) {
	var s settings
	var errs []error
	for _, p := range []struct {
		dst  *int
		name string
		def  int
	}{{&s.port, envPort, defaultPort}, {&s.dynamoPort, envDynamoPort, defaultDynamoPort}, {&s.stripePort, envStripePort, defaultStripePort}} {
		*p.dst = p.def
		if v := strings.TrimSpace(getenv(p.name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("%s must be a port number (1-65535), not %q", p.name, v))
			}
			*p.dst = n
		}
	}
	if s.port == s.dynamoPort || s.port == s.stripePort || s.dynamoPort == s.stripePort {
		errs = append(errs, fmt.Errorf("%s, %s and %s must differ", envPort, envDynamoPort, envStripePort))
	}
	s.dataDir = strings.TrimSpace(getenv(envDataDir))
	s.releaseEvery = defaultReleaseEvery
	if v := strings.TrimSpace(getenv(envReleaseEvery)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("%s must be a duration of at least 1s, not %q", envReleaseEvery, v))
		}
		s.releaseEvery = d
	}
	return s, errors.Join(errs...)
}

// functionEnv is the environment the function is configured from: the caller's, with the
// local stack's endpoints, stripe-mock's key and LOCAL_MODE imposed.
func functionEnv(getenv func(string) string, dynamoURL, stripeURL string) func(string) string {
	imposed := map[string]string{
		"STRIPE_SECRET_ARN":         "", // never Secrets Manager locally
		"STRIPE_SECRET_KEY":         stripeKey,
		"STRIPE_WEBHOOK_SECRET_ARN": "",
		"STRIPE_WEBHOOK_SECRET":     webhookSecret,
		"STRIPE_API_BASE":           stripeURL,
		"AWS_ENDPOINT_URL_DYNAMODB": dynamoURL,
		"LOCAL_MODE":                "true",
	}
	return func(name string) string {
		if v, ok := imposed[name]; ok {
			return v
		}
		if v := getenv(name); v != "" {
			return v
		}
		if name == "ALLOWED_REDIRECT_HOSTS" {
			return defaultRedirectHosts
		}
		return ""
	}
}

func loopbackURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// run serves until ctx ends, then shuts down: requests in flight finish, then the children
// stop. stopSignals is called once shutting down starts, so that a second Ctrl-C kills the
// process at once (its children die with it).
func run(ctx context.Context, stopSignals func(), getenv func(string) string, stdout, stderr io.Writer) error {
	begin := time.Now()
	srv, err := start(ctx, getenv, stderr)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.http.Serve(srv.listener) }()
	releasing, stopReleasing := context.WithCancel(context.Background())
	released := make(chan struct{})
	go func() { defer close(released); srv.releaseHolds(releasing) }()
	srv.banner.startup = time.Since(begin)
	fmt.Fprint(stdout, banner(srv.banner))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	stopSignals()
	fmt.Fprintln(stderr, "local: stopping: requests in flight finish, then DynamoDB Local and stripe-mock stop")
	stopReleasing()
	<-released
	shutdownCtx, cancel := context.WithTimeout(context.Background(), functionTimeout+5*time.Second)
	defer cancel()
	if err := srv.http.Shutdown(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("shut the server down: %w", err))
	}
	srv.stripeLayer.Close()
	srv.collector.Close()
	if err := srv.stack.Stop(); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	fmt.Fprintln(stderr, "local: stopped")
	return nil
}

// server is a started local server, not yet serving.
type server struct {
	listener     net.Listener
	http         *http.Server
	stack        *localstack.Stack
	banner       bannerInfo
	stripeLayer  *testenv.StripeRecorder
	collector    *testenv.GA4Collector
	releaser     *app.Releaser
	releaseEvery time.Duration
}

// releaseHolds runs the hold releaser every releaseEvery until ctx ends, as the schedule does in
// AWS (every minute there).
func (s *server) releaseHolds(ctx context.Context) {
	tick := time.NewTicker(s.releaseEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			run, cancel := context.WithTimeout(ctx, 45*time.Second) // the function's Timeout
			_, _ = s.releaser.Run(run)                              // it logs what it did
			cancel()
		}
	}
}

// start checks the settings and ports, starts DynamoDB Local and stripe-mock, creates and seeds
// the tables and builds the function. On error nothing is left running.
func start(ctx context.Context, getenv func(string) string, stderr io.Writer) (_ *server, err error) {
	s, err := readSettings(getenv)
	if err != nil {
		return nil, err
	}
	// Every setting is checked before anything starts. localstack serves on these exact URLs.
	fnEnv := functionEnv(getenv, loopbackURL(s.dynamoPort), loopbackURL(s.stripePort))
	cfg, err := config.FromEnv(fnEnv)
	if err != nil {
		return nil, fmt.Errorf("invalid setting: %w", err)
	}
	hookCfg, err := config.WebhookFromEnv(fnEnv)
	if err != nil {
		return nil, fmt.Errorf("invalid setting: %w", err)
	}
	releaserCfg, err := config.ReleaserFromEnv(fnEnv)
	if err != nil {
		return nil, fmt.Errorf("invalid setting: %w", err)
	}

	// The server's own port is held from here on; the children's ports are only probed, since
	// they must bind them themselves. All three are checked before any child starts.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		return nil, portError(err, s.port, envPort, "the checkout server")
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	// DynamoDB Local cannot be bound to loopback: it takes its port on every interface.
	if err := checkPortFree(":"+strconv.Itoa(s.dynamoPort), s.dynamoPort, envDynamoPort, "DynamoDB Local"); err != nil {
		return nil, err
	}
	if err := checkPortFree("127.0.0.1:"+strconv.Itoa(s.stripePort), s.stripePort, envStripePort, "stripe-mock"); err != nil {
		return nil, err
	}

	setLocalAWSEnv()
	logger := app.NewLogger(requestIDHandler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})}, cfg.LogLevel)
	var childLog io.Writer // the children's chatter only at DEBUG; start errors quote it anyway
	if cfg.LogLevel <= slog.LevelDebug {
		childLog = stderr
	}
	fmt.Fprintln(stderr, "local: starting DynamoDB Local and stripe-mock ...")
	stack, err := localstack.Start(ctx, localstack.Options{
		DynamoPort:    s.dynamoPort,
		StripePort:    s.stripePort,
		DynamoDataDir: s.dataDir,
		Log:           childLog,
	})
	if err != nil {
		return nil, startError(err, s)
	}
	defer func() {
		if err != nil {
			_ = stack.Stop()
		}
	}()
	// The SDK inside the function finds DynamoDB Local through the standard variable.
	os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.DynamoEndpoint)
	// The functions reach stripe-mock through the Stripe layer of the tests: stripe-mock alone
	// is stateless (every PaymentIntent the same, a cancel that cancels nothing), and the
	// lifecycle (the hold releaser's cancel, a replay's status) needs Stripe's behaviour.
	stripeLayer, err := testenv.NewStripeLayer(stack.StripeURL)
	if err != nil {
		return nil, fmt.Errorf("start the Stripe layer: %w", err)
	}
	defer func() {
		if err != nil {
			stripeLayer.Close()
		}
	}()
	// GA4 purchases go to the local collector, unless GA4_ENDPOINT names another.
	collector, err := testenv.StartGA4Collector(map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			collector.Close()
		}
	}()
	if getenv("GA4_ENDPOINT") == "" {
		local := config.GA4{GA4Endpoint: collector.Endpoint(), GA4Secrets: `{"` + testenv.GA4MeasurementID + `":"` + testenv.GA4APISecret + `"}`}
		hookCfg.GA4, releaserCfg.GA4 = local, local
	}
	cfg.DynamoDBEndpoint, cfg.StripeAPIBase = stack.DynamoEndpoint, stripeLayer.URL()
	hookCfg.DynamoDBEndpoint, hookCfg.StripeAPIBase = stack.DynamoEndpoint, stripeLayer.URL()
	releaserCfg.DynamoDBEndpoint, releaserCfg.StripeAPIBase = stack.DynamoEndpoint, stripeLayer.URL()

	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := createTablesAndSeed(setupCtx, localstack.DynamoDBClient(stack.DynamoEndpoint), cfg); err != nil {
		return nil, err
	}
	fn, err := app.New(setupCtx, cfg, logger, app.Options{Metrics: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("build the function: %w", err)
	}
	hook, err := app.NewWebhook(setupCtx, hookCfg, logger, app.Options{Metrics: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("build the webhook function: %w", err)
	}
	releaser, err := app.NewReleaser(setupCtx, releaserCfg, logger, app.Options{Metrics: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("build the hold releaser: %w", err)
	}
	routes := map[string]route{
		routeKey:        {invoke: fn.Handler.Handle, jwt: true},
		webhookRouteKey: {invoke: hook.Handler.Handle}, // no authorizer: Stripe signs
	}
	return &server{
		listener: ln,
		http: &http.Server{
			Handler:           &gateway{routes: routes, timeout: functionTimeout, log: logger, now: time.Now},
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		stack:        stack,
		stripeLayer:  stripeLayer,
		collector:    collector,
		releaser:     releaser,
		releaseEvery: s.releaseEvery,
		banner: bannerInfo{
			url:           loopbackURL(s.port) + routePath,
			webhookURL:    loopbackURL(s.port) + webhookRoutePath,
			identityClaim: cfg.IdentityClaim,
			tables:        []string{cfg.CartsTable, cfg.BookingsTable, cfg.CustomizationsTable, cfg.CustomersTable, cfg.HoldsTable},
			dynamoURL:     stack.DynamoEndpoint,
			stripeURL:     stack.StripeURL,
			stripeLayer:   stripeLayer.URL(),
			dataDir:       s.dataDir,
			redirectHosts: fnEnv("ALLOWED_REDIRECT_HOSTS"),
			hold:          cfg.CheckoutHold,
			releaseEvery:  s.releaseEvery,
			ga4Endpoint:   hookCfg.GA4Endpoint,
			ga4Received:   collector.ReceivedURL(),
		},
	}, nil
}

// createTablesAndSeed creates the tables of template.yaml (kept if they exist, with
// LOCAL_DATA_DIR) and writes the sample customizations and carts, the carts reset to OPEN.
func createTablesAndSeed(ctx context.Context, db *dynamodb.Client, cfg config.Config) error {
	names := map[string]string{
		"CartsTable":          cfg.CartsTable,
		"BookingsTable":       cfg.BookingsTable,
		"CustomizationsTable": cfg.CustomizationsTable,
		"CustomersTable":      cfg.CustomersTable,
		"HoldsTable":          cfg.HoldsTable,
	}
	if err := tables.CreateFromTemplate(ctx, db, names); err != nil {
		return fmt.Errorf("create the tables in DynamoDB Local: %w", err)
	}
	if err := sample.Seed(ctx, db, cfg.CartsTable, cfg.CustomizationsTable, time.Now()); err != nil {
		return fmt.Errorf("write the sample data: %w", err)
	}
	return nil
}

// setLocalAWSEnv gives the function's AWS SDK dummy credentials and a region, and drops every
// other AWS_ variable of the caller's shell (a profile, AWS_ENDPOINT_URL,
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, ...) so that nothing can send a request to AWS.
func setLocalAWSEnv() {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			os.Unsetenv(name)
		}
	}
	for name, value := range localstack.AWSEnv() {
		os.Setenv(name, value)
	}
}

// portInUseError is the one line printed when a port is taken.
type portInUseError struct {
	port      int
	envVar    string
	component string
}

func (e *portInUseError) Error() string {
	return fmt.Sprintf("port %d (%s) is already in use, perhaps by another `make run`: stop that, or set %s to a free port",
		e.port, e.component, e.envVar)
}

func portError(err error, port int, envVar, component string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &portInUseError{port: port, envVar: envVar, component: component}
	}
	return fmt.Errorf("cannot listen on port %d (%s, set by %s): %w", port, component, envVar, err)
}

func checkPortFree(addr string, port int, envVar, component string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return portError(err, port, envVar, component)
	}
	return l.Close()
}

// startError turns localstack's report of a child that could not bind its port (taken between
// the check and the child's start) into the same one line.
func startError(err error, s settings) error {
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "address already in use") {
		switch {
		case strings.HasPrefix(msg, "localstack: dynamodb"):
			return &portInUseError{port: s.dynamoPort, envVar: envDynamoPort, component: "DynamoDB Local"}
		case strings.HasPrefix(msg, "localstack: stripe-mock"):
			return &portInUseError{port: s.stripePort, envVar: envStripePort, component: "stripe-mock"}
		}
	}
	return fmt.Errorf("start the local stack: %w", err)
}

// requestIDHandler adds the invocation's Lambda request id to each record, as aws-lambda-go's
// own log handler does in Lambda (which can only write to stdout, where the banner goes).
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
