package app

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connStates counts a test server's connections as they open and close, and its requests.
type connStates struct {
	opened, closed, requests atomic.Int64
}

func (c *connStates) track(srv *httptest.Server) {
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			c.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			c.closed.Add(1)
		}
	}
}

// countedServer starts a plain HTTP/1.1 test server of h whose connections states counts.
func countedServer(t *testing.T, h http.Handler) (*httptest.Server, *connStates) {
	t.Helper()
	states := &connStates{}
	srv := httptest.NewUnstartedServer(h)
	states.track(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, states
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// Over TLS: open completes the handshakes and sends no request; the first request takes an
// opened connection and still speaks HTTP/2, as the transport without the warmer would.
func TestWarmerOpensTLSConnectionsAndKeepsHTTP2(t *testing.T) {
	var states connStates
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		states.requests.Add(1)
	}))
	srv.EnableHTTP2 = true
	states.track(srv)
	srv.StartTLS()
	defer srv.Close()

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	w := newWarmer(transport)
	if got := w.open(context.Background(), srv.URL, 2); got != 2 {
		t.Fatalf("opened %d connections, want 2", got)
	}
	waitFor(t, "2 connections at the server", func() bool { return states.opened.Load() == 2 })
	if n := states.requests.Load(); n != 0 {
		t.Errorf("opening sent %d requests, want none", n)
	}

	resp, err := (&http.Client{Transport: transport}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("the request spoke %s, want HTTP/2", resp.Proto)
	}
	if n := states.opened.Load(); n != 2 {
		t.Errorf("the server saw %d connections after the request, want still 2", n)
	}
}

// Over plain HTTP/1.1: three requests at once take the three opened connections, and dial none.
func TestWarmerServesConcurrentRequestsFromOpenedConnections(t *testing.T) {
	var (
		requests atomic.Int64
		arrived  sync.WaitGroup
	)
	arrived.Add(3)
	srv, states := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		arrived.Done()
		all := make(chan struct{})
		go func() { arrived.Wait(); close(all) }()
		select { // all three in flight at once: each holds its own connection
		case <-all:
		case <-time.After(5 * time.Second):
		}
	}))

	transport := http.DefaultTransport.(*http.Transport).Clone()
	w := newWarmer(transport)
	if got := w.open(context.Background(), srv.URL, 3); got != 3 {
		t.Fatalf("opened %d connections, want 3", got)
	}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if o, r := states.opened.Load(), requests.Load(); o != 3 || r != 3 {
		t.Errorf("the server saw %d connections for %d requests, want 3 for 3", o, r)
	}
}

// A connection no request takes within its age is closed, and a later request dials its own.
func TestWarmerClosesWhatNoRequestTook(t *testing.T) {
	srv, states := countedServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	transport := http.DefaultTransport.(*http.Transport).Clone()
	w := newWarmer(transport)
	w.maxAge = 50 * time.Millisecond
	if got := w.open(context.Background(), srv.URL, 2); got != 2 {
		t.Fatalf("opened %d connections, want 2", got)
	}
	waitFor(t, "closed by the warmer", func() bool { return states.closed.Load() == 2 })
	resp, err := (&http.Client{Transport: transport}).Get(srv.URL)
	if err != nil {
		t.Fatalf("a request after the opened connections were closed: %v", err)
	}
	resp.Body.Close()
	if n := states.opened.Load(); n != 3 {
		t.Errorf("the server saw %d connections, want 3 (2 opened, then the request's own)", n)
	}
}

// Nothing is opened to a host the transport reaches through a proxy, nor to a bad base.
func TestWarmerOpensNothingThroughAProxyOrToABadBase(t *testing.T) {
	srv, states := countedServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.invalid:3128"})
	if got := newWarmer(transport).open(context.Background(), srv.URL, 2); got != 0 {
		t.Errorf("opened %d connections past the proxy, want 0", got)
	}
	direct := newWarmer(http.DefaultTransport.(*http.Transport).Clone())
	for _, base := range []string{"", "not a url\x7f", "ftp://" + srv.Listener.Addr().String()} {
		if got := direct.open(context.Background(), base, 1); got != 0 {
			t.Errorf("open(%q) opened %d connections, want 0", base, got)
		}
	}
	if n := states.opened.Load(); n != 0 {
		t.Errorf("the server saw %d connections, want none", n)
	}
}

// A transport with no settings of its own keeps negotiating HTTP/2 once its dials go through the
// warmer (a custom dialer alone would turn it off).
func TestWarmerKeepsTheDefaultProtocolsOfABareTransport(t *testing.T) {
	bare := &http.Transport{}
	newWarmer(bare)
	if !bare.ForceAttemptHTTP2 {
		t.Errorf("a bare transport lost HTTP/2")
	}
	if bare.TLSClientConfig == nil || len(bare.TLSClientConfig.NextProtos) == 0 || bare.TLSClientConfig.NextProtos[0] != "h2" {
		t.Errorf("the handshakes would offer %v, want h2 first", bare.TLSClientConfig)
	}
	own := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	newWarmer(own)
	if own.ForceAttemptHTTP2 || len(own.TLSClientConfig.NextProtos) != 0 {
		t.Errorf("a transport with its own TLS settings (HTTP/1.1 only) now offers %v", own.TLSClientConfig.NextProtos)
	}
}

// A dial takes no opened connection older than its age, even before the timer closes it.
func TestWarmerDialsAfreshPastTheAge(t *testing.T) {
	srv, states := countedServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	w := newWarmer(transport)
	w.maxAge = time.Hour
	if got := w.open(context.Background(), srv.URL, 1); got != 1 {
		t.Fatalf("opened %d connections, want 1", got)
	}
	w.maxAge = 0 // the opened connection is now too old
	resp, err := (&http.Client{Transport: transport}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := states.opened.Load(); n != 2 {
		t.Errorf("the server saw %d connections, want 2 (the old one not taken, the request's own)", n)
	}
	waitFor(t, "the old connection closed", func() bool { return states.closed.Load() >= 1 })
}
