package testenv

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// DynamoObserver sits between the function and a DynamoDB endpoint (typically a Toxiproxy
// listener in front of DynamoDB Local): before forwarding a request it tells a hook which
// operation it is, from the X-Amz-Target header, so that a test can inject a fault at that step
// of the flow. It changes nothing else, and a connection failure upstream reaches the function
// as a failure of its own connection, not as an HTTP answer.
type DynamoObserver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	observe func(operation string)
}

// NewDynamoObserver starts an observer forwarding to target.
func NewDynamoObserver(target string) (*DynamoObserver, error) {
	to, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	o := &DynamoObserver{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			// The Host header is signed (SigV4): keep the one the function signed.
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: resetClient,
	}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		o.mu.Lock()
		observe := o.observe
		o.mu.Unlock()
		if observe != nil {
			observe(Operation(req))
		}
		proxy.ServeHTTP(w, req)
	}))
	return o, nil
}

// resetClient passes an upstream connection failure (a reset, a connection closed without an
// answer) on as a reset of the client's connection. Answering 502 instead would turn a network
// fault into an HTTP error, which the SDK treats differently.
func resetClient(w http.ResponseWriter, _ *http.Request, _ error) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close with RST, not FIN
	}
	_ = conn.Close()
}

// Operation is the DynamoDB operation a request calls, e.g. "TransactWriteItems".
func Operation(req *http.Request) string {
	target := req.Header.Get("X-Amz-Target")
	return target[strings.LastIndexByte(target, '.')+1:]
}

// URL is the observer's base URL, the function's AWS_ENDPOINT_URL_DYNAMODB.
func (o *DynamoObserver) URL() string { return o.srv.URL }

// Close stops the observer.
func (o *DynamoObserver) Close() { o.srv.Close() }

// SetObserve calls f with the operation of every request as it arrives, before it is forwarded
// (nil: none).
func (o *DynamoObserver) SetObserve(f func(operation string)) {
	o.mu.Lock()
	o.observe = f
	o.mu.Unlock()
}
