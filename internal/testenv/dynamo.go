package testenv

import (
	"encoding/json"
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
// of the flow. A second hook can answer an operation with an error of DynamoDB's own (SetFault).
// It changes nothing else, and a connection failure upstream reaches the function as a failure
// of its own connection, not as an HTTP answer.
type DynamoObserver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	observe func(operation string)
	fault   func(operation string) *DynamoError
}

// DynamoError is an error answer in DynamoDB's JSON protocol: the status, the Content-Type
// application/x-amz-json-1.0 and a body {"__type":"com.amazonaws.dynamodb.v20120810#<Code>",
// "message":...}, as DynamoDB sends it and the SDK decodes it (retrying it or not).
type DynamoError struct {
	// Status is the HTTP status: 400 for throttling and the other client errors, 500 for
	// InternalServerError.
	Status int
	// Code is the error code, e.g. "ProvisionedThroughputExceededException".
	Code    string
	Message string
	// CancellationReasons are the reason codes of a TransactionCanceledException, one per item
	// of the transaction in its order ("None" for an item without error).
	CancellationReasons []string
	// After forwards the request first: DynamoDB does the work (commits the transaction, applies
	// the update) and the function receives this error instead of DynamoDB's answer. Otherwise
	// the observer answers at once and DynamoDB never sees the request.
	After bool
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
		observe, fault := o.observe, o.fault
		o.mu.Unlock()
		operation := Operation(req)
		if observe != nil {
			observe(operation)
		}
		var answer *DynamoError
		if fault != nil {
			answer = fault(operation)
		}
		switch {
		case answer == nil:
			proxy.ServeHTTP(w, req)
		case answer.After:
			// DynamoDB's answer is dropped; the function gets the error instead.
			proxy.ServeHTTP(httptest.NewRecorder(), req)
			answer.write(w)
		default:
			answer.write(w)
		}
	}))
	return o, nil
}

func (e *DynamoError) write(w http.ResponseWriter) {
	type reason struct {
		Code string `json:"Code"`
	}
	body := struct {
		Type    string   `json:"__type"`
		Message string   `json:"message"`
		Reasons []reason `json:"CancellationReasons,omitempty"`
	}{Type: "com.amazonaws.dynamodb.v20120810#" + e.Code, Message: e.Message}
	for _, code := range e.CancellationReasons {
		body.Reasons = append(body.Reasons, reason{Code: code})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
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

// SetFault calls f with the operation of every request as it arrives, after the SetObserve
// hook; when f returns an error, the function receives that error instead of DynamoDB's answer,
// before or after DynamoDB did the work (DynamoError.After). nil: none.
func (o *DynamoObserver) SetFault(f func(operation string) *DynamoError) {
	o.mu.Lock()
	o.fault = f
	o.mu.Unlock()
}
