package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/winktravel/checkout/internal/testenv"
)

// nextPath is the Lambda Runtime API's "next invocation" request: a function's runtime sends it
// first thing once its initialisation is done.
const nextPath = "/2018-06-01/runtime/invocation/next"

// runtimeAPI is just enough of the Lambda Runtime API to time a cold start: it notes when the
// first "next invocation" request arrives and never answers it.
type runtimeAPI struct {
	addr    string
	srv     *http.Server
	arrived chan time.Time
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &runtimeAPI{addr: ln.Addr().String(), arrived: make(chan time.Time, 1)}
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != nextPath {
			http.NotFound(w, r)
			return
		}
		select {
		case a.arrived <- time.Now():
		default:
		}
		<-r.Context().Done() // held until the process is killed
	})}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *runtimeAPI) close() { a.srv.Close() }

// coldStart starts bin with env and returns the time from the start of the process to its
// first request to the Runtime API; then it kills the process.
func (a *runtimeAPI) coldStart(bin string, env []string) (time.Duration, error) {
	select { // a late arrival of the previous process, if any
	case <-a.arrived:
	default:
	}
	var output bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = dieWithParent()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case at := <-a.arrived:
		_ = cmd.Process.Kill()
		<-exited
		return at.Sub(start), nil
	case err := <-exited:
		return 0, fmt.Errorf("%s exited before asking for an invocation (%v):\n%s", filepath.Base(bin), err, output.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return 0, fmt.Errorf("%s did not ask for an invocation within 30s:\n%s", filepath.Base(bin), output.String())
	}
}

// coldStarts holds the cold starts of the function and of the empty function.
type coldStarts struct {
	function, empty []time.Duration
}

// measureColdStarts alternates the two binaries, runs times each, swapping which goes first
// in every pair so that neither always follows the other. One unmeasured start of each comes
// first, to bring both into the page cache.
func measureColdStarts(ctx context.Context, fnBin, emptyBin string, env []string, runs int) (coldStarts, error) {
	var c coldStarts
	api, err := startRuntimeAPI()
	if err != nil {
		return c, err
	}
	defer api.close()
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+api.addr)
	for i := -1; i < runs; i++ {
		if ctx.Err() != nil {
			return c, ctx.Err()
		}
		order := []string{fnBin, emptyBin}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, bin := range order {
			d, err := api.coldStart(bin, env)
			if err != nil {
				return c, err
			}
			switch {
			case i < 0:
			case bin == fnBin:
				c.function = append(c.function, d)
			default:
				c.empty = append(c.empty, d)
			}
		}
	}
	return c, nil
}

// coldStartEnv is the environment Lambda gives the function, pointed at the local stack: the
// settings of template.yaml with the Stripe key in Secrets Manager (read at every cold start,
// as in AWS), credentials in variables and a home without any AWS configuration files.
func coldStartEnv(env *testenv.Env, secretARN, tmp string) []string {
	home := filepath.Join(tmp, "home")
	_ = os.MkdirAll(home, 0o755)
	vars := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"TZ=:UTC",
		"AWS_LAMBDA_FUNCTION_NAME=checkout",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_SESSION_TOKEN=local",
		"AWS_ENDPOINT_URL_DYNAMODB=" + env.Stack.DynamoEndpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + env.Stack.SecretsManagerEndpoint,
		"STRIPE_SECRET_ARN=" + secretARN,
	}
	settings := env.Settings(env.Stack.StripeURL, nil)
	for _, name := range []string{"CARTS_TABLE", "BOOKINGS_TABLE", "CUSTOMIZATIONS_TABLE", "CUSTOMERS_TABLE",
		"HOLDS_TABLE", "STRIPE_API_BASE", "ALLOWED_REDIRECT_HOSTS", "PROBLEM_TYPE_BASE"} {
		vars = append(vars, name+"="+settings(name))
	}
	return vars
}
