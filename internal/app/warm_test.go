package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/testenv"
)

// connCounter is a TCP proxy that counts the connections made through it.
type connCounter struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func countConnections(t *testing.T, upstream string) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &connCounter{ln: ln}
	target := strings.TrimPrefix(upstream, "http://")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			c.wg.Go(func() {
				defer conn.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, conn); up.Close() }()
				io.Copy(conn, up)
			})
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *connCounter) url() string { return "http://" + c.ln.Addr().String() }

// TestInitOpensTheConnectionsTheFirstCheckoutUses: the cold start opens as many connections to
// DynamoDB and to Stripe as the flow uses at once (3 and 2), while the Stripe secret is read, and
// the first checkout, a new traveller's (customer, PaymentIntent and ephemeral key), opens none.
// Opening them sends no request.
// Not parallel: the SDK's endpoint is a variable of the process.
func TestInitOpensTheConnectionsTheFirstCheckoutUses(t *testing.T) {
	stripe, err := testenv.NewStripeRecorder(local.Stack.StripeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stripe.Close)
	dynamoConns, stripeConns := countConnections(t, local.Stack.DynamoEndpoint), countConnections(t, stripe.URL())
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoConns.url())
	settings := local.Settings(stripeConns.url(), map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": dynamoConns.url()})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fn, err := testenv.Function(ctx, settings, slog.New(slog.DiscardHandler), app.Options{Metrics: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	// A connection is open once its handshake is done, which can be before the proxy's Accept
	// has counted it: poll the counts.
	for deadline := time.Now().Add(5 * time.Second); dynamoConns.accepted.Load() < 3 || stripeConns.accepted.Load() < 2; {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if d, s := dynamoConns.accepted.Load(), stripeConns.accepted.Load(); d != 3 || s != 2 {
		t.Fatalf("init opened %d connections to DynamoDB and %d to Stripe, want 3 and 2", d, s)
	}
	if calls := stripe.Calls("GET", "/"); len(calls) != 0 {
		t.Errorf("Stripe saw %d requests in init, want none (opening a connection sends nothing)", len(calls))
	}

	run := strconv.FormatInt(time.Now().UnixNano(), 36) // a new cart and traveller each run (-count)
	cart, traveller := "warm-"+run, "traveller-warm-"+run
	putCart(t, cartSpec{id: cart, owner: traveller, items: []itemSpec{{amount: "120"}, {amount: "80"}}})
	h := &harness{t: t, fn: fn, stripe: stripe}
	h.mustCheckout(traveller, checkoutBody(cart, ""))
	if len(stripe.Calls("POST", "/v1/customers")) != 1 || len(stripe.Calls("POST", "/v1/ephemeral_keys")) != 1 {
		t.Fatalf("the first checkout was not a new traveller's")
	}
	if d, s := dynamoConns.accepted.Load(), stripeConns.accepted.Load(); d != 3 || s != 2 {
		t.Errorf("after the first checkout: %d connections to DynamoDB and %d to Stripe, want still 3 and 2", d, s)
	}
}

// A bad Stripe secret still fails the cold start while the connections open, and the cold start
// does not wait for a dependency that never answers longer than its bound.
func TestInitFailsOnABadSecretWhileWarming(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// https: the TLS handshake of the connections opened in init never completes.
	settings := local.Settings("https://"+silent.Addr().String(), map[string]string{"STRIPE_SECRET_KEY": "pk_test_4eC39HqLyjWDarjtT1zdp7dc"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = testenv.Function(ctx, settings, slog.New(slog.DiscardHandler), app.Options{Metrics: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "secret (sk_) or restricted (rk_)") {
		t.Fatalf("cold start with a publishable key: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the cold start took %s with Stripe silent: the opening of connections is not bounded", took)
	}
}
