package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/testenv"
)

// The layer is driven with stripe-go itself, against the real stripe-mock, so that the shapes of
// its answers are proven against the client the function uses.

var stripeMockURL string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The stack has no stripe-mock-only mode: DynamoDB Local comes along, unused.
	st, err := localstack.Start(ctx, localstack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the local stack:", err)
		return 1
	}
	defer st.Stop()
	stripeMockURL = st.StripeURL
	return m.Run()
}

func newRecorder(t *testing.T) *testenv.StripeRecorder {
	t.Helper()
	rec, err := testenv.NewStripeRecorder(stripeMockURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	return rec
}

// newClient is a stripe-go client of rec with the given API key and retries (0 unless a test
// wants stripe-go's own handling of a 409).
func newClient(rec *testenv.StripeRecorder, key string, retries int64) *client.API {
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(rec.URL()),
		MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
	})
	api := &client.API{}
	api.Init(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return api
}

func intentParams(key, customer, group string) *stripe.PaymentIntentParams {
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(1000), Currency: stripe.String("eur")}
	if customer != "" {
		p.Customer = stripe.String(customer)
	}
	if group != "" {
		p.AddMetadata("groupIdentifier", group)
	}
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	return p
}

func stripeErr(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *stripe.Error", err, err)
	}
	return se
}

func replayed(r *stripe.APIResponse) bool {
	return r != nil && r.Header.Get("Idempotent-Replayed") == "true"
}

// A fault's answer is stored under the key, or not, as Stripe stores it; the test clears the
// fault before the retry with the same key.
func TestIdempotencyStoresWhatStripeStores(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		stored bool
	}{
		{"500", 500, `{"error":{"type":"api_error","message":"boom"}}`, true},
		{"402", 402, `{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}`, true},
		{"503", 503, `{"error":{"type":"api_error","message":"unavailable"}}`, false},
		{"400", 400, `{"error":{"type":"invalid_request_error","message":"refused by the test"}}`, false},
		{"429", 429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			sc := newClient(rec, testenv.StripeKey, 0)
			rec.SetIntercept(func(method, path string) (int, string) {
				if path == "/v1/payment_intents" {
					return tc.status, tc.body
				}
				return 0, ""
			})
			_, err := sc.PaymentIntents.New(intentParams("key-"+tc.name, "", "g"))
			if se := stripeErr(t, err); se.HTTPStatusCode != tc.status || replayed(se.LastResponse) {
				t.Fatalf("first answer %d (replayed %v), want %d, not replayed", se.HTTPStatusCode, replayed(se.LastResponse), tc.status)
			}
			rec.SetIntercept(nil)

			for attempt := range 2 {
				pi, err := sc.PaymentIntents.New(intentParams("key-"+tc.name, "", "g"))
				if tc.stored {
					se := stripeErr(t, err)
					if se.HTTPStatusCode != tc.status || !replayed(se.LastResponse) {
						t.Errorf("retry %d: %d (replayed %v), want the stored %d replayed", attempt+1, se.HTTPStatusCode, replayed(se.LastResponse), tc.status)
					}
					continue
				}
				if err != nil {
					t.Fatalf("retry %d: %v, want the request executed", attempt+1, err)
				}
				if replayed(pi.LastResponse) != (attempt == 1) {
					t.Errorf("retry %d replayed %v, want only the second replayed", attempt+1, replayed(pi.LastResponse))
				}
			}
			if n := len(rec.Calls("POST", "/v1/payment_intents")); n != 3 {
				t.Errorf("%d requests recorded, want 3: replays are recorded too", n)
			}
			if tc.stored {
				// A new key executes.
				pi, err := sc.PaymentIntents.New(intentParams("key-"+tc.name+"-2", "", "g"))
				if err != nil || pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod {
					t.Fatalf("new key: %v, %v", pi, err)
				}
			}
			if n := len(rec.PaymentIntents()); n != 1 {
				t.Errorf("%d PaymentIntents, want 1", n)
			}
		})
	}
}

func TestIdempotencyReplaysTheFirstAnswer(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	first, err := sc.PaymentIntents.New(intentParams("key-replay", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	if replayed(first.LastResponse) || first.LastResponse.IdempotencyKey != "key-replay" {
		t.Errorf("first answer replayed %v, key %q", replayed(first.LastResponse), first.LastResponse.IdempotencyKey)
	}
	// The replay is the stored answer, not the intent as it is now.
	if err := rec.SetPaymentIntentStatus(first.ID, "succeeded"); err != nil {
		t.Fatal(err)
	}
	again, err := sc.PaymentIntents.New(intentParams("key-replay", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	if !replayed(again.LastResponse) || again.ID != first.ID || again.ClientSecret != first.ClientSecret || again.Status != stripe.PaymentIntentStatusRequiresPaymentMethod {
		t.Errorf("replay %s %s %s (replayed %v), want the first answer %s %s requires_payment_method",
			again.ID, again.ClientSecret, again.Status, replayed(again.LastResponse), first.ID, first.ClientSecret)
	}

	// Keys belong to an API key: the same key sent with another one is another request.
	other, err := newClient(rec, "sk_test_otheraccount123", 0).PaymentIntents.New(intentParams("key-replay", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	if replayed(other.LastResponse) || other.ID == first.ID {
		t.Errorf("other API key got %s (replayed %v), want a new intent", other.ID, replayed(other.LastResponse))
	}
	if n := len(rec.PaymentIntents()); n != 2 {
		t.Errorf("%d PaymentIntents, want 2", n)
	}
}

func TestIdempotencyKeyWithOtherParameters(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	if _, err := sc.PaymentIntents.New(intentParams("key-params", "", "g1")); err != nil {
		t.Fatal(err)
	}
	_, err := sc.PaymentIntents.New(intentParams("key-params", "", "g2"))
	se := stripeErr(t, err)
	want := "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
		"Try using a key other than 'key-params' if you meant to execute a different request."
	if se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeIdempotency || se.Msg != want {
		t.Errorf("got %d %s %q, want 400 idempotency_error %q", se.HTTPStatusCode, se.Type, se.Msg, want)
	}
	var ie *stripe.IdempotencyError
	if !errors.As(err, &ie) {
		t.Errorf("stripe-go did not type the error as an IdempotencyError")
	}
	if n := len(rec.PaymentIntents()); n != 1 {
		t.Errorf("%d PaymentIntents, want 1", n)
	}
}

// A request with a key that another request holds answers 409; once the first is done, the key
// replays its answer.
func TestIdempotencyKeyInUse(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	entered, held := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(held) })
	t.Cleanup(release) // before rec.Close, which waits for the held request
	var first atomic.Bool
	rec.SetIntercept(func(method, path string) (int, string) {
		if path == "/v1/payment_intents" && first.CompareAndSwap(false, true) {
			close(entered)
			<-held
		}
		return 0, ""
	})
	type result struct {
		pi  *stripe.PaymentIntent
		err error
	}
	done := make(chan result, 1)
	go func() {
		pi, err := sc.PaymentIntents.New(intentParams("key-busy", "", "g"))
		done <- result{pi, err}
	}()
	select {
	case <-entered:
	case r := <-done:
		t.Fatalf("the first request was not held: %v", r.err)
	}

	_, err := sc.PaymentIntents.New(intentParams("key-busy", "", "g"))
	se := stripeErr(t, err)
	if se.HTTPStatusCode != 409 || se.Type != stripe.ErrorTypeIdempotency || se.Code != stripe.ErrorCodeIdempotencyKeyInUse {
		t.Errorf("concurrent request got %d %s %s, want 409 idempotency_error idempotency_key_in_use", se.HTTPStatusCode, se.Type, se.Code)
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("first request: %v", r.err)
	}
	again, err := sc.PaymentIntents.New(intentParams("key-busy", "", "g"))
	if err != nil || again.ID != r.pi.ID || !replayed(again.LastResponse) {
		t.Errorf("after the first: %v %v, want %s replayed", again, err, r.pi.ID)
	}
	if n := len(rec.PaymentIntents()); n != 1 {
		t.Errorf("%d PaymentIntents, want 1", n)
	}
}

// A stalled request holds its key and stores nothing: once its client gives up, the key
// executes anew.
func TestIdempotencyStalledRequest(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	stalled := make(chan struct{})
	var once sync.Once
	rec.SetStall(func(method, path string) bool {
		if path != "/v1/payment_intents" {
			return false
		}
		once.Do(func() { close(stalled) })
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before rec.Close, which waits for the stalled request
	done := make(chan error, 1)
	go func() {
		p := intentParams("key-stall", "", "g")
		p.Context = ctx
		_, err := sc.PaymentIntents.New(p)
		done <- err
	}()
	select {
	case <-stalled:
	case err := <-done:
		t.Fatalf("the request was not stalled: %v", err)
	}
	rec.SetStall(nil)
	_, err := sc.PaymentIntents.New(intentParams("key-stall", "", "g"))
	if se := stripeErr(t, err); se.HTTPStatusCode != 409 {
		t.Errorf("request during the stall got %d, want 409", se.HTTPStatusCode)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the stalled request succeeded")
	}
	// stripe-go retries a 409 itself, in case the layer has not yet seen the client go.
	pi, err := newClient(rec, testenv.StripeKey, 2).PaymentIntents.New(intentParams("key-stall", "", "g"))
	if err != nil || replayed(pi.LastResponse) {
		t.Fatalf("after the stall: %v (replayed %v), want a fresh execution", err, pi != nil && replayed(pi.LastResponse))
	}
	if n := len(rec.PaymentIntents()); n != 1 {
		t.Errorf("%d PaymentIntents, want 1", n)
	}
}

// Stripe finishes a request whose client hung up, and stores its answer: the retry gets it.
func TestIdempotencyAnswerLostOnTheWay(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	executed, gone := make(chan struct{}), make(chan struct{})
	clientGone := sync.OnceFunc(func() { close(gone) })
	t.Cleanup(clientGone) // before rec.Close, which waits for the held request
	var once sync.Once
	rec.SetRewrite(func(method, path string, body []byte) []byte {
		if path == "/v1/payment_intents" {
			once.Do(func() {
				close(executed)
				<-gone
			})
		}
		return body
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		p := intentParams("key-lost", "", "g")
		p.Context = ctx
		_, err := sc.PaymentIntents.New(p)
		done <- err
	}()
	select {
	case <-executed:
	case err := <-done:
		t.Fatalf("the request was not held after stripe-mock answered: %v", err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the client got the answer")
	}
	clientGone()
	pi, err := newClient(rec, testenv.StripeKey, 2).PaymentIntents.New(intentParams("key-lost", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	all := rec.PaymentIntents()
	if len(all) != 1 || pi.ID != all[0].ID || !replayed(pi.LastResponse) {
		t.Errorf("retry got %s (replayed %v), intents %v: want the lost answer replayed", pi.ID, replayed(pi.LastResponse), all)
	}
}

func TestForgetIdempotencyKeys(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	first, err := sc.PaymentIntents.New(intentParams("key-forget", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	rec.ForgetIdempotencyKeys()
	second, err := sc.PaymentIntents.New(intentParams("key-forget", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || replayed(second.LastResponse) {
		t.Errorf("after forgetting: %s (replayed %v), want a second intent", second.ID, replayed(second.LastResponse))
	}
	if all := rec.PaymentIntents(); len(all) != 2 || all[0].ID != first.ID || all[1].ID != second.ID || all[1].IdempotencyKey != "key-forget" {
		t.Errorf("intents %v, want %s then %s, created with key-forget", all, first.ID, second.ID)
	}
}

var (
	customerID     = regexp.MustCompile(`^cus_[A-Za-z0-9]{14}$`)
	intentID       = regexp.MustCompile(`^pi_[A-Za-z0-9]{24}$`)
	secretSuffix   = regexp.MustCompile(`^_secret_[A-Za-z0-9]{25}$`)
	refundIDFormat = regexp.MustCompile(`^re_[A-Za-z0-9]{24}$`)
)

func TestObjectsGetUniqueIDs(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	seen := map[string]bool{}
	for i := range 5 {
		cp := &stripe.CustomerParams{}
		cp.AddMetadata("owner", fmt.Sprint("traveller-", i))
		cus, err := sc.Customers.New(cp)
		if err != nil {
			t.Fatal(err)
		}
		if !customerID.MatchString(cus.ID) || seen[cus.ID] || cus.Metadata["owner"] != fmt.Sprint("traveller-", i) {
			t.Errorf("customer %s metadata %v: want a fresh cus_ id and the form's metadata", cus.ID, cus.Metadata)
		}
		seen[cus.ID] = true

		p := intentParams("", cus.ID, fmt.Sprint("group-", i))
		p.StatementDescriptorSuffix = stripe.String("WINK")
		pi, err := sc.PaymentIntents.New(p)
		if err != nil {
			t.Fatal(err)
		}
		secret, _ := strings.CutPrefix(pi.ClientSecret, pi.ID)
		if !intentID.MatchString(pi.ID) || !secretSuffix.MatchString(secret) || seen[pi.ID] || seen[pi.ClientSecret] {
			t.Errorf("PaymentIntent %s secret %s: want a fresh pi_ id and secret", pi.ID, pi.ClientSecret)
		}
		seen[pi.ID], seen[pi.ClientSecret] = true, true
		if pi.Amount != 1000 || pi.Currency != "eur" || pi.Customer == nil || pi.Customer.ID != cus.ID ||
			pi.Metadata["groupIdentifier"] != fmt.Sprint("group-", i) || pi.StatementDescriptorSuffix != "WINK" ||
			pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || pi.CancellationReason != "" {
			t.Errorf("PaymentIntent %+v, want the form's fields", pi)
		}
		st, ok := rec.PaymentIntent(pi.ID)
		if !ok || st.ClientSecret != pi.ClientSecret || st.Customer != cus.ID || st.Amount != 1000 || st.IdempotencyKey == "" {
			t.Errorf("stored %+v, want the answered intent with stripe-go's generated key", st)
		}
	}
	if n := len(rec.Customers()); n != 5 {
		t.Errorf("%d customers, want 5", n)
	}
}

func TestMissingCustomers(t *testing.T) {
	const liveMode = "; a similar object exists in live mode, but a test mode key was used to make this request."
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, rec *testenv.StripeRecorder, sc *client.API) string
		suffix string
	}{
		{"deleted in the Dashboard", func(t *testing.T, rec *testenv.StripeRecorder, sc *client.API) string {
			cus, err := sc.Customers.New(&stripe.CustomerParams{})
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.DeleteCustomer(cus.ID); err != nil {
				t.Fatal(err)
			}
			return cus.ID
		}, ""},
		{"deleted through the API", func(t *testing.T, rec *testenv.StripeRecorder, sc *client.API) string {
			cus, err := sc.Customers.New(&stripe.CustomerParams{})
			if err != nil {
				t.Fatal(err)
			}
			if del, err := sc.Customers.Del(cus.ID, nil); err != nil || !del.Deleted {
				t.Fatalf("delete: %v %v", del, err)
			}
			return cus.ID
		}, ""},
		{"never seen", func(t *testing.T, rec *testenv.StripeRecorder, sc *client.API) string {
			return "cus_CreatedWithLive"
		}, liveMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			sc := newClient(rec, testenv.StripeKey, 0)
			id := tc.setup(t, rec, sc)
			want := "No such customer: '" + id + "'" + tc.suffix
			check := func(what string, err error) {
				t.Helper()
				se := stripeErr(t, err)
				if se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeInvalidRequest || se.Code != stripe.ErrorCodeResourceMissing ||
					se.Param != "customer" || se.Msg != want {
					t.Errorf("%s: %d %s %s %s %q, want 400 invalid_request_error resource_missing customer %q", what, se.HTTPStatusCode, se.Type, se.Code, se.Param, se.Msg, want)
				}
			}
			_, err := sc.PaymentIntents.New(intentParams("key-missing", id, "g"))
			check("PaymentIntent", err)
			_, err = sc.EphemeralKeys.New(&stripe.EphemeralKeyParams{Customer: stripe.String(id), StripeVersion: stripe.String("2023-10-16")})
			check("ephemeral key", err)
			if n := len(rec.PaymentIntents()); n != 0 {
				t.Errorf("%d PaymentIntents, want none", n)
			}
			// A 400 is not stored: the same key works once the customer exists.
			if tc.suffix != "" {
				rec.AddCustomer(id)
				if _, err := sc.PaymentIntents.New(intentParams("key-missing", id, "g")); err != nil {
					t.Errorf("after AddCustomer: %v", err)
				}
				return
			}
			got, err := sc.Customers.Get(id, nil)
			if err != nil || !got.Deleted || got.ID != id {
				t.Errorf("GET of the deleted customer: %+v %v, want it deleted", got, err)
			}
		})
	}
}

func TestCustomerEndpoints(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	cus, err := sc.Customers.New(&stripe.CustomerParams{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.Customers.Get(cus.ID, nil)
	if err != nil || got.ID != cus.ID || got.Deleted {
		t.Errorf("GET: %+v %v", got, err)
	}
	key, err := sc.EphemeralKeys.New(&stripe.EphemeralKeyParams{Customer: stripe.String(cus.ID), StripeVersion: stripe.String("2023-10-16")})
	if err != nil || key.Secret != localstack.StripeEphemeralKeySecret {
		t.Errorf("ephemeral key %+v %v", key, err)
	}
	_, err = sc.Customers.Get("cus_Unknown", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Errorf("GET of an unknown customer: %d %s, want 404 resource_missing", se.HTTPStatusCode, se.Code)
	}
	if _, err := sc.Customers.Del(cus.ID, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := rec.Customer(cus.ID); !c.Deleted {
		t.Errorf("customer %+v, want deleted", c)
	}
	_, err = sc.Customers.Del(cus.ID, nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Errorf("second delete: %d %s, want 404 resource_missing", se.HTTPStatusCode, se.Code)
	}
	if err := rec.DeleteCustomer("cus_Unknown"); err == nil {
		t.Error("DeleteCustomer of an unknown customer did not fail")
	}
}

func TestCancelPaymentIntent(t *testing.T) {
	for _, tc := range []struct {
		status     string
		cancelable bool
	}{
		{"requires_payment_method", true},
		{"requires_confirmation", true},
		{"requires_action", true},
		{"requires_capture", true},
		{"processing", false},
		{"succeeded", false},
		{"canceled", false},
	} {
		t.Run(tc.status, func(t *testing.T) {
			rec := newRecorder(t)
			sc := newClient(rec, testenv.StripeKey, 0)
			pi, err := sc.PaymentIntents.New(intentParams("", "", "g"))
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.SetPaymentIntentStatus(pi.ID, tc.status); err != nil {
				t.Fatal(err)
			}
			got, err := sc.PaymentIntents.Cancel(pi.ID, &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String("abandoned")})
			if tc.cancelable {
				if err != nil || got.ID != pi.ID || got.Status != stripe.PaymentIntentStatusCanceled || got.CancellationReason != "abandoned" || got.CanceledAt == 0 {
					t.Fatalf("cancel: %+v %v, want canceled, abandoned", got, err)
				}
				// Canceling again fails as canceling any canceled intent does.
				_, err = sc.PaymentIntents.Cancel(pi.ID, &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String("duplicate")})
				checkUnexpectedState(t, err, pi.ID, "canceled")
				if st, _ := rec.PaymentIntent(pi.ID); st.CancellationReason != "abandoned" {
					t.Errorf("cancellation reason %q after the second cancel, want abandoned", st.CancellationReason)
				}
				return
			}
			checkUnexpectedState(t, err, pi.ID, tc.status)
			if st, _ := rec.PaymentIntent(pi.ID); st.Status != tc.status {
				t.Errorf("status %s after the refused cancel, want %s", st.Status, tc.status)
			}
		})
	}
}

func checkUnexpectedState(t *testing.T, err error, id, status string) {
	t.Helper()
	se := stripeErr(t, err)
	wantMsg := "You cannot cancel this PaymentIntent because it has a status of " + status + ". " +
		"Only a PaymentIntent with one of the following statuses may be canceled: " +
		"requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
	if se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodePaymentIntentUnexpectedState || se.Msg != wantMsg {
		t.Errorf("got %d %s %q, want 400 payment_intent_unexpected_state %q", se.HTTPStatusCode, se.Code, se.Msg, wantMsg)
	}
	if se.PaymentIntent == nil || se.PaymentIntent.ID != id || string(se.PaymentIntent.Status) != status {
		t.Errorf("error's PaymentIntent %+v, want %s with status %s", se.PaymentIntent, id, status)
	}
}

func TestPaymentIntentStatusAndGet(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	pi, err := sc.PaymentIntents.New(intentParams("", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{"requires_action", "processing", "succeeded"} {
		if err := rec.SetPaymentIntentStatus(pi.ID, status); err != nil {
			t.Fatal(err)
		}
		got, err := sc.PaymentIntents.Get(pi.ID, nil)
		if err != nil || got.ID != pi.ID || string(got.Status) != status || got.ClientSecret != pi.ClientSecret {
			t.Errorf("GET after %s: %+v %v", status, got, err)
		}
	}
	if err := rec.SetPaymentIntentStatus(pi.ID, "paid"); err == nil {
		t.Error("SetPaymentIntentStatus accepted a status Stripe does not have")
	}
	if err := rec.SetPaymentIntentStatus("pi_unknown", "succeeded"); err == nil {
		t.Error("SetPaymentIntentStatus accepted an unknown intent")
	}
	_, err = sc.PaymentIntents.Get("pi_unknown", nil)
	se := stripeErr(t, err)
	if se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing || se.Param != "intent" || se.Msg != "No such payment_intent: 'pi_unknown'" {
		t.Errorf("GET of an unknown intent: %d %s %s %q", se.HTTPStatusCode, se.Code, se.Param, se.Msg)
	}
	_, err = sc.PaymentIntents.Cancel("pi_unknown", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Errorf("cancel of an unknown intent: %d %s", se.HTTPStatusCode, se.Code)
	}

	// A seeded intent answers like a created one, and the SetRewrite hook still sees the answer.
	seeded := rec.PutPaymentIntent(testenv.PaymentIntentState{ID: "pi_seeded", Status: "requires_action", Amount: 500, Currency: "usd"})
	rec.SetRewrite(func(method, path string, body []byte) []byte {
		if path == "/v1/payment_intents/pi_seeded" {
			return regexp.MustCompile(`"status":"[a-z_]+"`).ReplaceAll(body, []byte(`"status":"succeeded"`))
		}
		return body
	})
	got, err := sc.PaymentIntents.Get("pi_seeded", nil)
	if err != nil || got.ClientSecret != seeded.ClientSecret || got.Amount != 500 || got.Status != stripe.PaymentIntentStatusSucceeded {
		t.Errorf("seeded intent: %+v %v, want its fields, status rewritten to succeeded", got, err)
	}
}

func TestSearchPaymentIntents(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	create := func(group string) string {
		t.Helper()
		pi, err := sc.PaymentIntents.New(intentParams("", "", group))
		if err != nil {
			t.Fatal(err)
		}
		return pi.ID
	}
	a1, b1, a2 := create("group-a"), create("group-b"), create("group-a")
	if err := rec.SetPaymentIntentStatus(a1, "canceled"); err != nil {
		t.Fatal(err)
	}
	quoted := create(`it's \ here`)
	seeded := rec.PutPaymentIntent(testenv.PaymentIntentState{Metadata: map[string]string{"groupIdentifier": "group-b"}}).ID

	search := func(query string, limit int64) ([]string, error) {
		p := &stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: query}}
		if limit > 0 {
			p.Limit = stripe.Int64(limit)
		}
		var ids []string
		it := sc.PaymentIntents.Search(p)
		for it.Next() {
			ids = append(ids, it.PaymentIntent().ID+":"+string(it.PaymentIntent().Status))
		}
		return ids, it.Err()
	}
	for _, tc := range []struct {
		name  string
		query string
		limit int64
		want  []string
	}{
		{"two of a group, newest first", "metadata['groupIdentifier']:'group-a'", 0, []string{a2 + ":requires_payment_method", a1 + ":canceled"}},
		{"one page at a time", "metadata['groupIdentifier']:'group-a'", 1, []string{a2 + ":requires_payment_method", a1 + ":canceled"}},
		{"a seeded one", "metadata['groupIdentifier']:'group-b'", 0, []string{seeded + ":requires_payment_method", b1 + ":requires_payment_method"}},
		{"none", "metadata['groupIdentifier']:'group-c'", 0, nil},
		{"escapes", `metadata['groupIdentifier']:'it\'s \\ here'`, 0, []string{quoted + ":requires_payment_method"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := search(tc.query, tc.limit)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("found %v %v, want %v", got, err, tc.want)
			}
		})
	}
	for _, query := range []string{"status:'canceled'", "metadata['groupIdentifier']:'unterminated"} {
		_, err := search(query, 0)
		if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Param != "query" {
			t.Errorf("query %s: %d %s, want 400 on query", query, se.HTTPStatusCode, se.Param)
		}
	}
}

func TestRefunds(t *testing.T) {
	rec := newRecorder(t)
	sc := newClient(rec, testenv.StripeKey, 0)
	pi, err := sc.PaymentIntents.New(intentParams("", "", "g"))
	if err != nil {
		t.Fatal(err)
	}
	refund := func(amount int64) (*stripe.Refund, error) {
		p := &stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)}
		if amount > 0 {
			p.Amount = stripe.Int64(amount)
		}
		return sc.Refunds.New(p)
	}
	_, err = refund(0)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodePaymentIntentUnexpectedState {
		t.Errorf("refund of an unpaid intent: %d %s, want payment_intent_unexpected_state", se.HTTPStatusCode, se.Code)
	}
	if err := rec.SetPaymentIntentStatus(pi.ID, "succeeded"); err != nil {
		t.Fatal(err)
	}
	_, err = refund(1001)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Param != "amount" {
		t.Errorf("refund above the amount: %d %s, want 400 on amount", se.HTTPStatusCode, se.Param)
	}
	first, err := refund(300)
	if err != nil || !refundIDFormat.MatchString(first.ID) || first.Amount != 300 || first.Status != stripe.RefundStatusSucceeded ||
		first.PaymentIntent == nil || first.PaymentIntent.ID != pi.ID || first.Currency != "eur" {
		t.Fatalf("partial refund %+v %v", first, err)
	}
	rest, err := refund(0)
	if err != nil || rest.Amount != 700 || rest.ID == first.ID {
		t.Fatalf("refund of the rest %+v %v, want 700", rest, err)
	}
	_, err = refund(0)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodeChargeAlreadyRefunded {
		t.Errorf("third refund: %d %s, want charge_already_refunded", se.HTTPStatusCode, se.Code)
	}
	got := rec.Refunds(pi.ID)
	if len(got) != 2 || got[0].ID != first.ID || got[0].Amount != 300 || got[1].Amount != 700 {
		t.Errorf("refunds %+v, want 300 then 700", got)
	}
	_, err = sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String("pi_unknown")})
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodeResourceMissing || se.Param != "payment_intent" {
		t.Errorf("refund of an unknown intent: %d %s %s", se.HTTPStatusCode, se.Code, se.Param)
	}
}
