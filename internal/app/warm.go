package app

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// warmer opens a transport's first connections before its first requests: opening one is its
// TCP handshake and, for https, its TLS handshake, and sends no request, so a dependency sees a
// connection and nothing else. An opened connection waits for the transport's next dial to its
// address, which takes it instead of dialing; none is taken past warmConnMaxAge.
type warmer struct {
	transport *http.Transport
	dial      func(ctx context.Context, network, addr string) (net.Conn, error) // the transport's own
	maxAge    time.Duration                                                     // warmConnMaxAge

	mu    sync.Mutex
	ready map[warmKey][]openedConn
}

type openedConn struct {
	conn   net.Conn
	opened time.Time
}

type warmKey struct {
	tls  bool
	addr string // host:port
}

// warmConnMaxAge is how long an opened connection waits for its request: a dial takes none
// older, and a timer closes those left. In a cold start the first request follows init at once;
// a function initialised long before its first request (Lambda may do that) dials afresh. A
// connection handed to the transport is new to it, so one the server had closed meanwhile would
// fail its request rather than be retried on another; the bound keeps that unlikely.
const warmConnMaxAge = 10 * time.Second

// newWarmer makes t's dials take the connections w opens; it runs before t's first request. t
// keeps its own dialer, TLS settings and protocols (HTTP/2 where it would negotiate it): they
// are settled first, so that the handshakes made here offer what t's own would.
func newWarmer(t *http.Transport) *warmer {
	w := &warmer{transport: t, dial: t.DialContext, maxAge: warmConnMaxAge, ready: map[warmKey][]openedConn{}}
	if w.dial == nil {
		w.dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	// A custom TLS dialer turns off HTTP/2 unless ForceAttemptHTTP2 (or Protocols) asks for it:
	// keep what t did without one. CloseIdleConnections then has t settle its protocols into
	// TLSClientConfig.NextProtos, as its first request would.
	if t.Protocols == nil && t.TLSNextProto == nil && t.TLSClientConfig == nil && t.DialContext == nil && t.DialTLSContext == nil {
		t.ForceAttemptHTTP2 = true
	}
	t.DialContext = w.dialPlain
	t.DialTLSContext = w.dialTLS
	t.CloseIdleConnections()
	return w
}

func (w *warmer) dialPlain(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := w.take(warmKey{addr: addr}); c != nil {
		return c, nil
	}
	return w.dial(ctx, network, addr)
}

// dialTLS returns a *tls.Conn itself, never a wrapper: the transport reads the negotiated
// protocol from it.
func (w *warmer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := w.take(warmKey{tls: true, addr: addr}); c != nil {
		return c, nil
	}
	c, err := w.handshake(ctx, network, addr)
	if err != nil {
		return nil, err // not a nil *tls.Conn in a non-nil net.Conn
	}
	return c, nil
}

// handshake dials addr and completes TLS as the transport would: its TLS settings, the host as
// server name, its handshake timeout.
func (w *warmer) handshake(ctx context.Context, network, addr string) (*tls.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := w.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := w.transport.TLSClientConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if d := w.transport.TLSHandshakeTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// take returns an opened connection to k young enough to use, or nil; it closes older ones.
func (w *warmer) take(k warmKey) net.Conn {
	w.mu.Lock()
	conns := w.ready[k]
	var fresh net.Conn
	for len(conns) > 0 && fresh == nil {
		c := conns[len(conns)-1]
		conns = conns[:len(conns)-1]
		if time.Since(c.opened) < w.maxAge {
			fresh = c.conn
		} else {
			defer c.conn.Close() // after the lock: a TLS close may wait on its write
		}
	}
	w.ready[k] = conns
	w.mu.Unlock()
	return fresh
}

// closeLeft closes the opened connections no dial took.
func (w *warmer) closeLeft() {
	w.mu.Lock()
	left := w.ready
	w.ready = map[warmKey][]openedConn{}
	w.mu.Unlock()
	for _, conns := range left {
		for _, c := range conns {
			c.conn.Close()
		}
	}
}

// warmTimeout bounds the opening of connections in init: a dependency slower than that is
// connected to by the first request that needs it, as it would have been without warming.
const warmTimeout = time.Second

// open opens n connections to base's host at once, for the transport's next n dials there, and
// returns how many it opened. A failure is no error: the request that needs the connection opens
// it. Nothing is opened to a base reached through a proxy (the transport would not dial it).
func (w *warmer) open(ctx context.Context, base string, n int) (opened int) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return 0
	}
	if w.transport.Proxy != nil {
		if proxy, err := w.transport.Proxy(&http.Request{URL: u}); err != nil || proxy != nil {
			return 0
		}
	}
	key := warmKey{tls: u.Scheme == "https", addr: u.Host}
	if u.Port() == "" {
		port := "80"
		if key.tls {
			port = "443"
		}
		key.addr = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var (
				c   net.Conn
				err error
			)
			if key.tls {
				c, err = w.handshake(ctx, "tcp", key.addr)
			} else {
				c, err = w.dial(ctx, "tcp", key.addr)
			}
			if err != nil {
				return
			}
			w.mu.Lock()
			w.ready[key] = append(w.ready[key], openedConn{conn: c, opened: time.Now()})
			opened++
			w.mu.Unlock()
		})
	}
	wg.Wait()
	if opened > 0 {
		time.AfterFunc(w.maxAge, w.closeLeft)
	}
	return opened
}
