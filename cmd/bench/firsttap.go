package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/winktravel/checkout/internal/testenv"
)

// The latencies of SPEC section 10's production-like mode, each way.
const (
	dynamoLatency  = 2 * time.Millisecond
	stripeLatency  = 40 * time.Millisecond
	secretsLatency = 40 * time.Millisecond
)

// The first tap: the traveller's view of a cold start. The built function runs as a process under
// a Lambda Runtime API that serves it real invocations; its three dependencies are reached over
// TLS through Toxiproxy, which adds the latencies above to every byte each way. Each process
// answers one first checkout (init included: process start to the answer) and then warm ones.
//
// Toxiproxy accepts a connection at once and cannot delay the TCP handshake; the TLS front behind
// it answers a new connection's TLS hello one round trip after it arrives, so that a new
// connection costs what it does in AWS: one round trip for TCP, one for TLS 1.3, then the
// request's own.

// latencyFront is one dependency as the function sees it in the latency mode: an https URL whose
// bytes cross Toxiproxy (latency each way) and then a TLS front that forwards the plain bytes to
// the local component.
type latencyFront struct {
	ln       net.Listener
	upstream string // host:port of the local component
	cfg      *tls.Config
	rtt      time.Duration
	conns    sync.WaitGroup
}

func (f *latencyFront) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.conns.Add(1)
		go func() {
			defer f.conns.Done()
			f.forward(c)
		}()
	}
}

func (f *latencyFront) forward(c net.Conn) {
	defer c.Close()
	// The client sent its TLS hello at once, where in AWS it waits for the TCP handshake first:
	// answering the hello one round trip after it arrives puts that round trip back.
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return
	}
	<-time.After(f.rtt)
	up, err := net.Dial("tcp", f.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	tc := tls.Server(peekedConn{c, br}, f.cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, tc); _ = up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(tc, up); _ = tc.CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// latencyStack is the local stack behind Toxiproxy and TLS: the URLs and the CA file the
// function's process is given.
type latencyStack struct {
	dynamoURL, stripeURL, secretsURL string
	caFile                           string
	fronts                           []*latencyFront
}

func (s *latencyStack) close() {
	for _, f := range s.fronts {
		f.ln.Close()
	}
	for _, f := range s.fronts {
		f.conns.Wait()
	}
}

// startLatencyStack puts a TLS front and a Toxiproxy proxy with the latencies of SPEC section 10
// in front of DynamoDB Local, stripe-mock and moto, and writes the fronts' CA to dir.
func startLatencyStack(env *testenv.Env, dir string) (*latencyStack, error) {
	if env.Stack.ToxiproxyURL == "" || env.Stack.SecretsManagerEndpoint == "" {
		return nil, errors.New("the latency mode needs the stack with Toxiproxy and Secrets Manager")
	}
	cert, caPEM, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	s := &latencyStack{caFile: filepath.Join(dir, "latency-ca.pem")}
	if err := os.WriteFile(s.caFile, caPEM, 0o644); err != nil {
		return nil, err
	}
	client := toxiproxy.NewClient(env.Stack.ToxiproxyURL)
	for _, d := range []struct {
		name, upstream string
		latency        time.Duration
		url            *string
	}{
		{"dynamodb", env.Stack.DynamoEndpoint, dynamoLatency, &s.dynamoURL},
		{"stripe", env.Stack.StripeURL, stripeLatency, &s.stripeURL},
		{"secretsmanager", env.Stack.SecretsManagerEndpoint, secretsLatency, &s.secretsURL},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.close()
			return nil, err
		}
		f := &latencyFront{ln: ln, upstream: strings.TrimPrefix(d.upstream, "http://"), rtt: 2 * d.latency,
			cfg: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
		s.fronts = append(s.fronts, f)
		go f.serve()
		proxy, err := client.CreateProxy("latency-"+d.name, "127.0.0.1:0", ln.Addr().String())
		if err != nil {
			s.close()
			return nil, fmt.Errorf("create the %s proxy: %w", d.name, err)
		}
		for _, stream := range []string{"upstream", "downstream"} {
			attrs := toxiproxy.Attributes{"latency": d.latency.Milliseconds()}
			if _, err := proxy.AddToxic("latency-"+stream, "latency", stream, 1, attrs); err != nil {
				s.close()
				return nil, fmt.Errorf("add the %s latency to %s: %w", stream, d.name, err)
			}
		}
		*d.url = "https://" + proxy.Listen
	}
	return s, nil
}

// selfSignedCert makes a throwaway certificate for 127.0.0.1 that is its own CA.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "checkout bench latency front"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// servedInvocation is one invocation the Runtime API hands out and the answer it got.
type servedInvocation struct {
	id           string
	event        []byte
	handed, done time.Time
	response     []byte
	failed       string // the function's /error or /init/error report, if any
}

// invokingRuntime is enough of the Lambda Runtime API to run real invocations: /next hands out
// the queued events in order (and holds the request once they are all out), /response and
// /error record the answer.
type invokingRuntime struct {
	addr string
	srv  *http.Server

	mu       sync.Mutex
	queue    []*servedInvocation
	next     int
	byID     map[string]*servedInvocation
	answered chan *servedInvocation
}

func startInvokingRuntime() (*invokingRuntime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &invokingRuntime{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nextPath, a.handNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", a.answer(""))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", a.answer("function error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		if a.next < len(a.queue) {
			inv := a.queue[a.next]
			inv.failed, inv.done = "init error: "+string(body), time.Now()
			a.answered <- inv
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	a.srv = &http.Server{Handler: mux}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *invokingRuntime) close() { a.srv.Close() }

func (a *invokingRuntime) handNext(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.next >= len(a.queue) {
		a.mu.Unlock()
		<-r.Context().Done() // nothing more to do: held until the process is killed
		return
	}
	inv := a.queue[a.next]
	a.next++
	inv.handed = time.Now()
	a.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.handed.Add(functionTimeout).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:checkout")
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(inv.event)
}

func (a *invokingRuntime) answer(failure string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		at := time.Now()
		a.mu.Lock()
		inv, ok := a.byID[r.PathValue("id")]
		if ok && inv.done.IsZero() {
			inv.done, inv.response = at, body
			if failure != "" {
				inv.failed = failure + ": " + string(body)
			}
			a.answered <- inv
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}
}

// tapRun is what one process did: when it started, and its invocations, the first one first.
type tapRun struct {
	start time.Time
	invs  []*servedInvocation
}

// runProcess starts bin with env, serves it events one after another, and kills it once it has
// answered them all.
func (a *invokingRuntime) runProcess(bin string, env []string, events [][]byte) (tapRun, error) {
	a.mu.Lock()
	a.queue, a.next, a.byID = nil, 0, map[string]*servedInvocation{}
	a.answered = make(chan *servedInvocation, len(events))
	for i, ev := range events {
		inv := &servedInvocation{id: fmt.Sprintf("tap-%s-%d", randomID()[:8], i), event: ev}
		a.queue = append(a.queue, inv)
		a.byID[inv.id] = inv
	}
	run := tapRun{invs: a.queue}
	a.mu.Unlock()

	var output testenv.LogBuffer // written by the process's copier while read on a failure
	cmd := exec.Command(bin)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+a.addr)
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = dieWithParent()
	run.start = time.Now()
	if err := cmd.Start(); err != nil {
		return run, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	timeout := time.After(time.Duration(len(events)) * functionTimeout)
	for range events {
		select {
		case inv := <-a.answered:
			if inv.failed != "" {
				return run, fmt.Errorf("invocation %s: %.300s\n%.2000s", inv.id, inv.failed, output.String())
			}
			if err := checkLambdaAnswer(inv.response); err != nil {
				return run, fmt.Errorf("invocation %s: %w", inv.id, err)
			}
		case err := <-exited:
			return run, fmt.Errorf("the function exited (%v):\n%.2000s", err, output.String())
		case <-timeout:
			return run, fmt.Errorf("the function did not answer %d invocations in time:\n%.2000s", len(events), output.String())
		}
	}
	return run, nil
}

// checkLambdaAnswer checks that the function answered a checkout 200.
func checkLambdaAnswer(body []byte) error {
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("not an API Gateway response: %.200s", body)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"clientSecret"`) {
		return fmt.Errorf("answered %d: %.300s", resp.StatusCode, resp.Body)
	}
	return nil
}

// firstTaps holds, for each traveller kind (returning, new), every process's first checkout
// (process start to its answer), its init (process start to its first /next) and the first
// handler alone (first /next to its answer), and the warm checkouts of the same processes.
type firstTaps struct {
	first, init, firstHandler, warm [2][]time.Duration
}

// measureFirstTaps runs processes of the function under latency, alternating the traveller kind:
// each answers one first checkout and then warm ones, every one for a fresh cart.
func (r *runner) measureFirstTaps(ctx context.Context, bin string, env []string, processes, warmPerProcess int) (firstTaps, error) {
	var t firstTaps
	api, err := startInvokingRuntime()
	if err != nil {
		return t, err
	}
	defer api.close()
	// One unmeasured process of each kind first, to bring the binary into the page cache and
	// DynamoDB Local and stripe-mock up to speed.
	for i := -2; i < 2*processes; i++ {
		if ctx.Err() != nil {
			return t, ctx.Err()
		}
		kind := (i + 2) % 2
		events := make([][]byte, 1+warmPerProcess)
		for e := range events {
			j, err := r.newJob(ctx, kind == 1)
			if err != nil {
				return t, err
			}
			if events[e], err = json.Marshal(testenv.APIEvent(j.owner, requestBody(j.cartID))); err != nil {
				return t, err
			}
		}
		run, err := api.runProcess(bin, env, events)
		if err != nil {
			return t, err
		}
		if i < 0 {
			continue
		}
		first := run.invs[0]
		t.first[kind] = append(t.first[kind], first.done.Sub(run.start))
		t.init[kind] = append(t.init[kind], first.handed.Sub(run.start))
		t.firstHandler[kind] = append(t.firstHandler[kind], first.done.Sub(first.handed))
		for _, inv := range run.invs[1:] {
			t.warm[kind] = append(t.warm[kind], inv.done.Sub(inv.handed))
		}
	}
	return t, nil
}

// latencyEnv is the function's cold-start environment pointed at the latency stack.
func latencyEnv(base []string, s *latencyStack) []string {
	replace := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB":        s.dynamoURL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.secretsURL,
		"STRIPE_API_BASE":                  s.stripeURL,
		"SSL_CERT_FILE":                    s.caFile,
	}
	var out []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := replace[name]; !ok {
			out = append(out, kv)
		}
	}
	for name, v := range replace {
		out = append(out, name+"="+v)
	}
	return out
}

// firstTapsUnderLatency puts the latency stack in front of env and measures the first taps.
func (r *runner) firstTapsUnderLatency(ctx context.Context, env *testenv.Env, bin string, base []string, dir string, o options) (firstTaps, error) {
	s, err := startLatencyStack(env, dir)
	if err != nil {
		return firstTaps{}, err
	}
	defer s.close()
	return r.measureFirstTaps(ctx, bin, latencyEnv(base, s), o.tapRuns, o.tapWarm)
}

// maxFirstTapRatio is SPEC section 10's budget: the first checkout after a cold start, init
// included, at most this many warm checkouts under the injected latency.
const maxFirstTapRatio = 1.25

// secretReadFloor is the least a cold start's Secrets Manager read can take under the injected
// latency: a new connection's TCP and TLS 1.3 handshakes, then the request, one round trip each.
const secretReadFloor = 3 * 2 * secretsLatency

// rows adds the first-tap rows to bench's table.
func (t firstTaps) rows(info func(measure, value string), budget func(measure, value, limit string, ok bool)) {
	for kind, who := range []string{"returning", "new"} {
		first, warm := percentile(t.first[kind], 0.5), percentile(t.warm[kind], 0.5)
		init, handler := percentile(t.init[kind], 0.5), percentile(t.firstHandler[kind], 0.5)
		info(fmt.Sprintf("first tap under latency, %s: first checkout (init + its handler) / warm, medians of %d / %d", who, len(t.first[kind]), len(t.warm[kind])),
			fmt.Sprintf("%s ms (%s + %s) / %s ms", ms(first), ms(init), ms(handler), ms(warm)))
		info(fmt.Sprintf("first tap, %s: first handler / warm (connections warmed in init)", who),
			fmt.Sprintf("%.3fx", float64(handler)/float64(warm)))
		floor := secretReadFloor + warm
		info(fmt.Sprintf("first tap, %s: floor (a secret read on a new connection, %s ms, + a warm checkout) / warm; first tap / floor", who, ms(secretReadFloor)),
			fmt.Sprintf("%.3fx; %.3fx", float64(floor)/float64(warm), float64(first)/float64(floor)))
		ratio := float64(first) / float64(warm)
		budget(fmt.Sprintf("first tap / warm checkout, %s: p50", who), fmt.Sprintf("%.3fx", ratio),
			fmt.Sprintf("<= %.2fx", maxFirstTapRatio), ratio <= maxFirstTapRatio)
	}
}
