// Package localstack starts the project's local stack: DynamoDB Local, stripe-mock and
// (optionally) moto's server as a local Secrets Manager and Toxiproxy's server for fault
// injection.
//
// Every component is a real child process taken from the tools directory that
// `make tools` fills (see ToolsDir). Start picks free ports, waits until each
// component answers a real request and returns their endpoints; Stop kills them
// all. It is meant for a TestMain:
//
//	func TestMain(m *testing.M) {
//		st, err := localstack.Start(context.Background(), localstack.Options{Log: os.Stderr})
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		_ = st.Stop()
//		os.Exit(code)
//	}
//
// Children cannot outlive the process that started them: each runs in its own
// process group with a parent-death signal (on Linux), and Stop kills the whole
// group. Ports are bound on 127.0.0.1, except that DynamoDB Local has no
// bind-address option and listens on every interface of its port.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/winktravel/checkout/internal/project"
)

// EnvToolsDir names the environment variable that overrides the tools directory.
// The Makefile exports it for `make test`.
const EnvToolsDir = "CHECKOUT_TOOLS_DIR"

// DefaultStartTimeout bounds Start when its context has no deadline. DynamoDB
// Local's JVM takes a few seconds to answer on a 2-core machine.
const DefaultStartTimeout = 90 * time.Second

// StripeEphemeralKeySecret is the secret that the tools' stripe-mock fixtures
// give every ephemeral key (stripe-mock's own fixture has none).
const StripeEphemeralKeySecret = "ek_test_localstack"

// Options configures Start. The zero value starts DynamoDB Local (in memory) and
// stripe-mock on free ports, without Secrets Manager or Toxiproxy, discarding their output.
type Options struct {
	// DynamoPort, StripePort, SecretsPort and ToxiproxyPort are the ports to listen
	// on; 0 picks a free port (and retries with another one if it is taken meanwhile).
	DynamoPort, StripePort, SecretsPort, ToxiproxyPort int
	// DynamoDataDir keeps DynamoDB Local's data in that directory between runs
	// (-dbPath, created if missing); "" runs it in memory.
	DynamoDataDir string
	// WithSecretsManager also starts moto's server as a Secrets Manager endpoint.
	WithSecretsManager bool
	// WithToxiproxy also starts Toxiproxy's server (its API only; the caller creates
	// the proxies it needs, on whatever ports it likes).
	WithToxiproxy bool
	// Log receives the children's stdout and stderr, each line prefixed with the
	// component's name; nil discards them (the last lines still appear in errors).
	Log io.Writer
	// ToolsDir is where `make tools` installed the components; "" means ToolsDir().
	ToolsDir string
}

// Stack is a running local stack. Its endpoints are base URLs without a trailing
// slash; use them as the AWS SDK's BaseEndpoint and stripe-go's backend URL.
type Stack struct {
	DynamoEndpoint         string // http://127.0.0.1:PORT
	StripeURL              string // http://127.0.0.1:PORT
	SecretsManagerEndpoint string // http://127.0.0.1:PORT, "" unless WithSecretsManager
	ToxiproxyURL           string // Toxiproxy's API, http://127.0.0.1:PORT, "" unless WithToxiproxy

	tmpDir   string
	mu       sync.Mutex // guards children and the endpoints while starting
	children []*child
	stopOnce sync.Once
	stopErr  error
}

// ToolsDir returns the tools directory: $CHECKOUT_TOOLS_DIR if set, else .tools at
// the module root, found by walking up from the working directory to go.mod. It
// fails with a message that says to run `make tools` if the directory is missing.
func ToolsDir() (string, error) {
	dir := os.Getenv(EnvToolsDir)
	if dir == "" {
		root, err := project.Root()
		if err != nil {
			return "", fmt.Errorf("localstack: %w: set %s or run `make tools` at the module root", err, EnvToolsDir)
		}
		dir = filepath.Join(root, ".tools")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("localstack: tools directory %s is missing: run `make tools` at the module root", dir)
	}
	return dir, nil
}

// toolPaths are the files Start runs, all under the tools directory.
type toolPaths struct {
	dynamoJar, dynamoLib      string
	stripeMock, stripeFixture string
	motoServer                string
	toxiproxyServer           string // the Makefile renames upstream's cmd/server to this
}

func findTools(dir string, opts Options) (toolPaths, error) {
	t := toolPaths{
		dynamoJar:       filepath.Join(dir, "dynamodb-local", "DynamoDBLocal.jar"),
		dynamoLib:       filepath.Join(dir, "dynamodb-local", "DynamoDBLocal_lib"),
		stripeMock:      filepath.Join(dir, "bin", "stripe-mock"),
		stripeFixture:   filepath.Join(dir, "stripe-mock", "fixtures3.json"),
		motoServer:      filepath.Join(dir, "moto-venv", "bin", "moto_server"),
		toxiproxyServer: filepath.Join(dir, "bin", "toxiproxy-server"),
	}
	need := []string{t.dynamoJar, t.dynamoLib, t.stripeMock, t.stripeFixture}
	if opts.WithSecretsManager {
		need = append(need, t.motoServer)
	}
	if opts.WithToxiproxy {
		need = append(need, t.toxiproxyServer)
	}
	var missing []string
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("localstack: missing %s: run `make tools` at the module root", strings.Join(missing, ", "))
	}
	return t, nil
}

func javaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if p := filepath.Join(home, "bin", "java"); isExecutable(p) {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if p := filepath.Join(dir, "java"); isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("localstack: java not found on PATH (DynamoDB Local needs Java 17)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// component is one child of the stack: how to run it and how to tell it is up.
type component struct {
	name  string
	port  int // requested port, 0 = free port
	argv  func(port int) []string
	env   []string
	probe func(ctx context.Context, base string) error
	set   func(s *Stack, base string)
}

// Start starts the stack and returns once every component answers. ctx bounds the
// start only (DefaultStartTimeout if it has no deadline); the children run until
// Stop. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	dir := opts.ToolsDir
	if dir == "" {
		var err error
		if dir, err = ToolsDir(); err != nil {
			return nil, err
		}
	}
	tools, err := findTools(dir, opts)
	if err != nil {
		return nil, err
	}
	java, err := javaPath()
	if err != nil {
		return nil, err
	}
	if opts.DynamoDataDir != "" {
		if err := os.MkdirAll(opts.DynamoDataDir, 0o755); err != nil {
			return nil, fmt.Errorf("localstack: DynamoDB data dir: %w", err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}

	// A private temp dir holds what the children create: stripe-mock's HTTPS socket
	// and, where no prebuilt sqlite4java library fits, the one DynamoDB Local extracts.
	// Its name carries this process's id: a stack whose process was killed (kill -9 skips Stop)
	// leaves its folder, and the next start removes it.
	removeStaleTempDirs(os.TempDir())
	tmpDir, err := os.MkdirTemp("", tempDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	s := &Stack{tmpDir: tmpDir}
	sink := &logSink{w: opts.Log}

	comps := []component{
		dynamoComponent(java, tools, opts, tmpDir),
		stripeComponent(tools, opts, tmpDir),
	}
	if opts.WithSecretsManager {
		comps = append(comps, motoComponent(tools, opts))
	}
	if opts.WithToxiproxy {
		comps = append(comps, toxiproxyComponent(tools, opts))
	}

	// Reserve all free ports at once so that they differ from each other.
	ports, err := reservePorts(comps)
	if err != nil {
		_ = s.Stop()
		return nil, err
	}

	// The first component to fail cancels the others' start.
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = s.startComponent(startCtx, comps[i], ports[i], sink); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = s.Stop()
		// Report the causes, not the components cancelled because of them.
		var causes []error
		for _, e := range errs {
			if e != nil && (ctx.Err() != nil || !errors.Is(e, context.Canceled)) {
				causes = append(causes, e)
			}
		}
		if len(causes) > 0 {
			err = errors.Join(causes...)
		}
		return nil, err
	}
	return s, nil
}

func dynamoComponent(java string, t toolPaths, opts Options, tmpDir string) component {
	return component{
		name: "dynamodb",
		port: opts.DynamoPort,
		argv: func(port int) []string {
			argv := []string{java,
				"-Xmx1g",
				"-Djava.library.path=" + t.dynamoLib,
				// Where DynamoDB Local extracts its bundled sqlite library if it must.
				"-Dorg.sqlite.tmpdir=" + tmpDir,
			}
			// Prefer the prebuilt library from Maven (no extraction at all).
			if name := "libsqlite4java-" + runtime.GOOS + "-" + runtime.GOARCH + ".so"; fileExists(filepath.Join(t.dynamoLib, name)) {
				argv = append(argv, "-Dorg.sqlite.lib.path="+t.dynamoLib, "-Dorg.sqlite.lib.name="+name)
			}
			// The Maven artifact's manifest Class-Path names the jars of AWS's zip
			// download, not Maven's, so `-jar` cannot work: give the class path.
			argv = append(argv,
				"-cp", t.dynamoJar+string(os.PathListSeparator)+filepath.Join(t.dynamoLib, "*"),
				"com.amazonaws.services.dynamodbv2.local.main.ServerRunner",
				"-port", strconv.Itoa(port), "-sharedDb", "-disableTelemetry")
			if opts.DynamoDataDir != "" {
				return append(argv, "-dbPath", opts.DynamoDataDir)
			}
			return append(argv, "-inMemory")
		},
		probe: func(ctx context.Context, base string) error {
			return probeAWSJSON(ctx, base, "dynamodb", "application/x-amz-json-1.0", "DynamoDB_20120810.ListTables", `"TableNames"`)
		},
		set: func(s *Stack, base string) { s.DynamoEndpoint = base },
	}
}

func stripeComponent(t toolPaths, opts Options, tmpDir string) component {
	return component{
		name: "stripe-mock",
		port: opts.StripePort,
		argv: func(port int) []string {
			// -http-addr alone still starts HTTPS on :12112 (all interfaces); moving
			// HTTPS to a private unix socket leaves plain HTTP on 127.0.0.1:port only.
			return []string{t.stripeMock,
				"-http-addr", "127.0.0.1:" + strconv.Itoa(port),
				"-https-unix", filepath.Join(tmpDir, "stripe-mock-https-"+strconv.Itoa(port)+".sock"),
				"-fixtures", t.stripeFixture,
			}
		},
		probe: func(ctx context.Context, base string) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/customers", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer sk_test_123")
			return doProbe(req, `"object"`)
		},
		set: func(s *Stack, base string) { s.StripeURL = base },
	}
}

func motoComponent(t toolPaths, opts Options) component {
	return component{
		name: "moto",
		port: opts.SecretsPort,
		argv: func(port int) []string {
			return []string{t.motoServer, "-H", "127.0.0.1", "-p", strconv.Itoa(port)}
		},
		env: []string{"PYTHONUNBUFFERED=1"},
		probe: func(ctx context.Context, base string) error {
			return probeAWSJSON(ctx, base, "secretsmanager", "application/x-amz-json-1.1", "secretsmanager.ListSecrets", `"SecretList"`)
		},
		set: func(s *Stack, base string) { s.SecretsManagerEndpoint = base },
	}
}

func toxiproxyComponent(t toolPaths, opts Options) component {
	return component{
		name: "toxiproxy",
		port: opts.ToxiproxyPort,
		argv: func(port int) []string {
			return []string{t.toxiproxyServer, "-host", "127.0.0.1", "-port", strconv.Itoa(port)}
		},
		// It reads LOG_LEVEL too: do not let the function's setting leak into it.
		env: []string{"LOG_LEVEL=info"},
		probe: func(ctx context.Context, base string) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
			if err != nil {
				return err
			}
			return doProbe(req, "")
		},
		set: func(s *Stack, base string) { s.ToxiproxyURL = base },
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// reservePorts returns each component's port, picking distinct free ones on
// 127.0.0.1 for those that asked for 0. A fixed port must be free: a server
// already listening there would answer the readiness probe in the child's place.
func reservePorts(comps []component) ([]int, error) {
	ports := make([]int, len(comps))
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for i, c := range comps {
		if c.port != 0 {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(c.port))
			if err != nil {
				return nil, fmt.Errorf("localstack: %s: port %d is not free: %w", c.name, c.port, err)
			}
			held = append(held, l)
			ports[i] = c.port
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localstack: picking a free port: %w", err)
		}
		held = append(held, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

const maxStartAttempts = 3

// startComponent runs c until it answers, retrying on another free port if the
// picked one was taken meanwhile.
func (s *Stack) startComponent(ctx context.Context, c component, port int, sink *logSink) error {
	for attempt := 1; ; attempt++ {
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		ch, err := startChild(c.name, c.argv(port), c.env, sink)
		if err != nil {
			return fmt.Errorf("localstack: starting %s: %w", c.name, err)
		}
		s.mu.Lock()
		s.children = append(s.children, ch)
		s.mu.Unlock()
		err = waitReady(ctx, ch, base, c.probe)
		if err == nil {
			s.mu.Lock()
			c.set(s, base)
			s.mu.Unlock()
			return nil
		}
		ch.stop()
		if c.port != 0 || attempt == maxStartAttempts || !ch.exited() || !ch.out.contains("address already in use") {
			return err
		}
		p, perr := reservePorts([]component{{}})
		if perr != nil {
			return errors.Join(err, perr)
		}
		port = p[0]
	}
}

// waitReady polls probe until it succeeds, the child exits or ctx ends.
func waitReady(ctx context.Context, ch *child, base string, probe func(context.Context, string) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = probe(pctx, base)
		cancel()
		if last == nil && !ch.exited() {
			return nil
		}
		select {
		case <-ch.done:
			return fmt.Errorf("localstack: %s exited before answering (%v); last output:\n%s", ch.name, ch.waitErr, ch.out.tail())
		case <-ctx.Done():
			return fmt.Errorf("localstack: %s did not answer on %s: %w (last probe: %v); last output:\n%s", ch.name, base, ctx.Err(), last, ch.out.tail())
		case <-tick.C:
		}
	}
}

// probeClient never proxies and keeps no idle connections to the children.
var probeClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// probeAWSJSON sends an AWS JSON-protocol request with a dummy SigV4 header,
// enough for DynamoDB Local and moto, and expects 200 and want in the body.
func probeAWSJSON(ctx context.Context, base, service, contentType, target, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("X-Amz-Date", "20240101T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/"+service+
		"/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000")
	return doProbe(req, want)
}

func doProbe(req *http.Request, want string) error {
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
	}
	return nil
}

// Stop stops every child (SIGTERM to its process group, SIGKILL after a grace
// period), waits for them and removes the stack's temp dir. It is safe to call
// more than once and from several goroutines: every call returns once all is
// stopped, with the first call's result.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		children := s.children
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, ch := range children {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch.stop()
			}()
		}
		wg.Wait()
		if err := os.RemoveAll(s.tmpDir); err != nil {
			s.stopErr = fmt.Errorf("localstack: removing temp dir: %w", err)
		}
	})
	return s.stopErr
}

const tempDirPrefix = "localstack-"

// removeStaleTempDirs removes the temp folders of stacks whose process is gone: localstack-<pid>-*
// in dir, with no process <pid> running. Another running stack's folder stays.
func removeStaleTempDirs(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempDirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if !ok || !e.IsDir() || err != nil || pid <= 0 || processRunning(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
