package app_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/testenv"
)

// Retries with different GA4 fields send Stripe exactly the parameters of the first attempt.
func TestRetriesSendIdenticalPaymentIntentParameters(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "ga4-1", owner: "traveller-g", items: []itemSpec{{amount: "42"}}})
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/payment_intents" })
	if status, _ := h.checkout("traveller-g", checkoutBody("ga4-1", `,"ga4ClientId":"111.222","ga4SessionId":"1"`)); status != 500 {
		t.Fatalf("status %d with Stripe down, want 500", status)
	}
	h.stripe.SetUnavailable(nil)
	h.mustCheckout("traveller-g", checkoutBody("ga4-1", `,"ga4ClientId":"333.444","ga4SessionId":"2","ga4MeasurementId":"G-ABCDEF"`))
	intents := h.stripe.Calls("POST", "/v1/payment_intents")
	if len(intents) < 2 {
		t.Fatalf("%d PaymentIntent creates, want the failed one and the retry", len(intents))
	}
	// Stripe answered the first attempt 503: the retry moves to the next key generation, with the
	// same parameters.
	last := intents[len(intents)-1]
	if last.IdempotencyKey != intents[0].IdempotencyKey+"-2" || last.Form.Encode() != intents[0].Form.Encode() {
		t.Errorf("retry sent %q %v, first attempt %q %v", last.IdempotencyKey, last.Form, intents[0].IdempotencyKey, intents[0].Form)
	}
	if got := intents[0].Form.Get("metadata[ga4ClientId]"); got != "111.222" || intents[0].Form.Has("metadata[ga4MeasurementId]") {
		t.Errorf("GA4 metadata %v, want the stored first attempt's", intents[0].Form)
	}
}

// With little time left, the function answers a 500 problem before Lambda's deadline instead of
// being killed mid-write, and the retry completes.
func TestAnswersBeforeLambdaDeadline(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "deadline-1", owner: "traveller-d", items: []itemSpec{{amount: "42"}, {amount: "8"}}})
	h.stripe.SetStall(func(method, path string) bool { return path == "/v1/payment_intents" })
	const remaining = 1500 * time.Millisecond
	start := time.Now()
	resp := h.invoke(apiEvent("traveller-d", checkoutBody("deadline-1", "")), remaining)
	if elapsed := time.Since(start); elapsed >= remaining {
		t.Errorf("answered after %v, Lambda would have killed it at %v", elapsed, remaining)
	}
	if resp.StatusCode != 500 || !strings.Contains(resp.Body, `/internal"`) {
		t.Fatalf("status %d %s, want a 500 problem", resp.StatusCode, resp.Body)
	}
	h.stripe.SetStall(nil)
	body := h.mustCheckout("traveller-d", checkoutBody("deadline-1", ""))
	if n := len(bookingsOfCart(t, "deadline-1")); n != 2 || len(codesOf(body)) != 2 {
		t.Errorf("%d bookings, %d codes after the retry, want 2", n, len(codesOf(body)))
	}
}

// 100 concurrent requests over 10 carts, with double submits and an intruder on every cart; a
// checker then scans the tables for the invariants.
func TestConcurrentCheckoutsKeepInvariants(t *testing.T) {
	h := newHarness(t, nil)
	const carts, perCart = 10, 10
	for c := range carts {
		items := make([]itemSpec, c%4+1)
		for i := range items {
			items[i] = itemSpec{amount: fmt.Sprintf("%d.50", 10+i)}
		}
		putCart(t, cartSpec{id: fmt.Sprintf("many-%d", c), owner: fmt.Sprintf("owner-%d", c), items: items})
	}
	type answer struct {
		cart   int
		caller string
		status int
		body   map[string]any
	}
	answers := make(chan answer, carts*perCart)
	var wg sync.WaitGroup
	for c := range carts {
		for r := range perCart {
			caller := fmt.Sprintf("owner-%d", c)
			if r == perCart-1 {
				caller = fmt.Sprintf("owner-%d", (c+1)%carts) // someone else's cart
			}
			wg.Go(func() {
				resp := h.invoke(apiEvent(caller, checkoutBody(fmt.Sprintf("many-%d", c), "")), 10*time.Second)
				answers <- answer{cart: c, caller: caller, status: resp.StatusCode, body: decodeJSON(t, resp.Body)}
			})
		}
	}
	wg.Wait()
	close(answers)
	first := map[int]map[string]any{}
	for a := range answers {
		owner := a.caller == fmt.Sprintf("owner-%d", a.cart)
		switch {
		case !owner && a.status != 403:
			t.Errorf("intruder on cart %d got %d", a.cart, a.status)
		case owner && a.status != 200:
			t.Errorf("owner of cart %d got %d: %v", a.cart, a.status, a.body)
		case owner:
			if prev, ok := first[a.cart]; ok {
				if prev["groupIdentifier"] != a.body["groupIdentifier"] || !slices.Equal(codesOf(prev), codesOf(a.body)) || prev["clientSecret"] != a.body["clientSecret"] {
					t.Errorf("cart %d answered differently: %v vs %v", a.cart, prev, a.body)
				}
			} else {
				first[a.cart] = a.body
			}
		}
	}

	// The checker: one group per cart, bookings equal to items, codes unique, every booking
	// reachable from its cart.
	allCodes := map[string]string{}
	for c := range carts {
		id := fmt.Sprintf("many-%d", c)
		cart := getCart(t, id)
		state := cart["checkout"].(*types.AttributeValueMemberM).Value
		var cartCodes []string
		for _, v := range state["bookingCodes"].(*types.AttributeValueMemberL).Value {
			cartCodes = append(cartCodes, str(v))
		}
		items := len(cart["items"].(*types.AttributeValueMemberL).Value)
		group := str(state["groupIdentifier"])
		groupBookings := bookingsOfGroup(t, group)
		if len(cartCodes) != items || len(groupBookings) != items || len(bookingsOfCart(t, id)) != items {
			t.Errorf("cart %s: %d items, %d codes, %d bookings in its group", id, items, len(cartCodes), len(groupBookings))
		}
		for _, b := range groupBookings {
			code := str(b["bookingCode"])
			if !slices.Contains(cartCodes, code) {
				t.Errorf("booking %s of group %s is not reachable from cart %s", code, group, id)
			}
			if other, dup := allCodes[code]; dup {
				t.Errorf("booking code %s used by %s and %s", code, other, id)
			}
			allCodes[code] = id
		}
		if str(cart["status"]) != "CHECKED_OUT" || first[c]["groupIdentifier"] != group {
			t.Errorf("cart %s is %s with group %s, answered %v", id, str(cart["status"]), group, first[c]["groupIdentifier"])
		}
	}
}

// Every log line of a full run, failures included, is free of secrets.
func TestLogsCarryNoSecrets(t *testing.T) {
	h := newHarness(t, map[string]string{"LOG_LEVEL": "DEBUG"})
	putCart(t, cartSpec{id: "logs-1", owner: "traveller-l", items: []itemSpec{{amount: "42"}}})
	const bearer = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0cmF2ZWxsZXItbCJ9."
	send := func(body string) (int, map[string]any) {
		ev := apiEvent("traveller-l", body)
		ev.Headers["authorization"] = "Bearer " + bearer
		resp := h.invoke(ev, 10*time.Second)
		return resp.StatusCode, decodeJSON(t, resp.Body)
	}
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/ephemeral_keys" })
	if status, _ := send(checkoutBody("logs-1", "")); status != 500 {
		t.Fatalf("status %d with Stripe failing, want 500", status)
	}
	h.stripe.SetUnavailable(nil)
	_, ok := send(checkoutBody("logs-1", ""))
	_, again := send(checkoutBody("logs-1", ""))
	send(`{"shoppingCartIdentifier":`)
	send(checkoutBody("logs-missing", ""))
	logs := h.logs.String()
	if !strings.Contains(logs, "checkout failed") || !strings.Contains(logs, "checkout answered") {
		t.Fatalf("the run did not log both a failure and a success:\n%s", logs)
	}
	secrets := []string{testenv.StripeKey, bearer, "_secret_"}
	for _, body := range []map[string]any{ok, again} {
		for _, f := range []string{"clientSecret", "ephemeralKey"} {
			if v, _ := body[f].(string); v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret (%.12s...) reached the log", secret)
		}
	}
}
