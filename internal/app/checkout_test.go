package app_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/payments"
	"github.com/winktravel/checkout/internal/sample"
)

var bookingCodePattern = regexp.MustCompile(`^WK-[0-9A-HJKMNP-TV-Z]{8}$`)

func codesOf(body map[string]any) []string {
	var codes []string
	list, _ := body["bookingCodes"].([]any)
	for _, c := range list {
		s, _ := c.(string)
		codes = append(codes, s)
	}
	return codes
}

func mustOK(t *testing.T, status int, body map[string]any) {
	t.Helper()
	if status != 200 {
		t.Fatalf("status %d, body %v", status, body)
	}
	for _, f := range []string{"clientSecret", "ephemeralKey", "customerId", "groupIdentifier"} {
		if v, _ := body[f].(string); v == "" {
			t.Errorf("response field %s is empty: %v", f, body)
		}
	}
}

func TestCheckoutThreeItemCart(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "three-items", owner: "traveller-3", currency: "EUR",
		items: []itemSpec{{amount: "100.00"}, {amount: "250.5"}, {amount: "49.99"}}})

	status, body := h.checkout("traveller-3", checkoutBody("three-items", `,"ga4ClientId":"1234567890.1700000000","ga4MeasurementId":"G-XHFTY1BDSD"`))
	mustOK(t, status, body)
	group := body["groupIdentifier"].(string)
	codes := codesOf(body)
	if len(codes) != 3 {
		t.Fatalf("bookingCodes %v, want 3", codes)
	}
	for _, c := range codes {
		if !bookingCodePattern.MatchString(c) {
			t.Errorf("booking code %q is not WK- and 8 Crockford base32 characters", c)
		}
	}
	if !strings.HasPrefix(body["ephemeralKey"].(string), "ek_") {
		t.Errorf("ephemeralKey %q is not an ephemeral key secret", body["ephemeralKey"])
	}

	// Three bookings in one group, codes in cart order.
	bookings := bookingsOfCart(t, "three-items")
	if len(bookings) != 3 {
		t.Fatalf("%d bookings, want 3", len(bookings))
	}
	for _, b := range bookings {
		code := str(b["bookingCode"])
		i := slices.Index(codes, code)
		if i < 0 {
			t.Fatalf("booking %s not in the answer %v", code, codes)
		}
		if want := fmt.Sprintf("three-items-item-%d", i+1); str(b["itemIdentifier"]) != want {
			t.Errorf("code %s is for item %s, want %s (cart order)", code, str(b["itemIdentifier"]), want)
		}
		if str(b["hotelName"]) != fmt.Sprintf("Hotel %d", i+1) || str(b["startDate"]) != "2027-03-01" || str(b["createdAt"]) == "" {
			t.Errorf("booking %s lacks its item's stay: %v", code, b)
		}
		if total, ok := b["total"].(*types.AttributeValueMemberM); !ok || str(total.Value["amount"]) == "" || str(total.Value["currency"]) != "EUR" {
			t.Errorf("booking %s total %v", code, b["total"])
		}
		if str(b["groupIdentifier"]) != group || str(b["status"]) != "PENDING_PAYMENT" || str(b["ownerIdentifier"]) != "traveller-3" {
			t.Errorf("booking %s: group %s status %s owner %s", code, str(b["groupIdentifier"]), str(b["status"]), str(b["ownerIdentifier"]))
		}
	}

	// The cart is CHECKED_OUT, out of TTL, and points at its group and PaymentIntent.
	cart := getCart(t, "three-items")
	checkoutState := cart["checkout"].(*types.AttributeValueMemberM).Value
	if str(cart["status"]) != "CHECKED_OUT" || str(checkoutState["groupIdentifier"]) != group {
		t.Errorf("cart status %s group %s", str(cart["status"]), str(checkoutState["groupIdentifier"]))
	}
	if _, ok := cart["expiresAt"]; ok {
		t.Errorf("checked-out cart still has a TTL attribute")
	}
	if str(checkoutState["expiresAt"]) == "" || str(checkoutState["paymentIntentId"]) == "" || str(checkoutState["customerId"]) != body["customerId"] {
		t.Errorf("checkout state %v lacks expiresAt, paymentIntentId or customerId", checkoutState)
	}

	// Exactly one PaymentIntent, with the right parameters, as stripe-mock saw it.
	intents := h.stripe.Calls("POST", "/v1/payment_intents")
	if len(intents) != 1 {
		t.Fatalf("%d PaymentIntent creates, want 1", len(intents))
	}
	pi := intents[0]
	want := map[string]string{
		"amount":                             "40049",
		"currency":                           "eur",
		"customer":                           body["customerId"].(string),
		"automatic_payment_methods[enabled]": "true",
		"metadata[groupIdentifier]":          group,
		"metadata[shoppingCartIdentifier]":   "three-items",
		"metadata[bookingCodes]":             strings.Join(codes, ","),
		"metadata[ga4ClientId]":              "1234567890.1700000000",
		"metadata[ga4MeasurementId]":         "G-XHFTY1BDSD",
	}
	for k, v := range want {
		if got := pi.Form.Get(k); got != v {
			t.Errorf("PaymentIntent %s = %q, want %q", k, got, v)
		}
	}
	for _, absent := range []string{"metadata[ga4SessionId]", "metadata[customizationIdentifier]", "statement_descriptor_suffix"} {
		if pi.Form.Has(absent) {
			t.Errorf("PaymentIntent has %s although the request had none", absent)
		}
	}
	if pi.IdempotencyKey != "checkout-payment-intent-"+group {
		t.Errorf("PaymentIntent idempotency key %q", pi.IdempotencyKey)
	}
	customers := h.stripe.Calls("POST", "/v1/customers")
	if len(customers) != 1 || customers[0].IdempotencyKey != payments.CustomerIdempotencyKey("traveller-3", 1) {
		t.Errorf("customer creates %+v, want one keyed by the owner", customers)
	}
	keys := h.stripe.Calls("POST", "/v1/ephemeral_keys")
	if len(keys) != 1 || keys[0].StripeVersion != "2023-10-16" || keys[0].Form.Get("customer") != body["customerId"] {
		t.Errorf("ephemeral key calls %+v", keys)
	}
}

func TestRetryOfCheckedOutCartReplays(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "retry-1", owner: "traveller-r", items: []itemSpec{{amount: "80"}, {amount: "20"}}})
	status, first := h.checkout("traveller-r", checkoutBody("retry-1", ""))
	mustOK(t, status, first)
	status, second := h.checkout("traveller-r", checkoutBody("retry-1", `,"ga4SessionId":"999"`))
	mustOK(t, status, second)
	for _, f := range []string{"groupIdentifier", "clientSecret", "customerId"} {
		if first[f] != second[f] {
			t.Errorf("%s changed on retry: %v then %v", f, first[f], second[f])
		}
	}
	if !slices.Equal(codesOf(first), codesOf(second)) {
		t.Errorf("booking codes changed on retry: %v then %v", codesOf(first), codesOf(second))
	}
	if n := len(h.stripe.Calls("POST", "/v1/payment_intents")); n != 1 {
		t.Errorf("%d PaymentIntent creates, want 1", n)
	}
	pid := str(getCart(t, "retry-1")["checkout"].(*types.AttributeValueMemberM).Value["paymentIntentId"])
	if n := len(h.stripe.Calls("GET", "/v1/payment_intents/"+pid)); n != 1 {
		t.Errorf("the retry read the PaymentIntent %d times, want 1", n)
	}
	if n := len(h.stripe.Calls("POST", "/v1/ephemeral_keys")); n != 2 {
		t.Errorf("%d ephemeral keys, want a fresh one per call", n)
	}
	if n := len(bookingsOfCart(t, "retry-1")); n != 2 {
		t.Errorf("%d bookings after a retry, want 2", n)
	}
}

func TestConcurrentCheckoutsOfOneCart(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "race-1", owner: "traveller-race", items: []itemSpec{{amount: "10"}, {amount: "20"}, {amount: "30"}}})
	const requests = 20
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			resp := h.invoke(apiEvent("traveller-race", checkoutBody("race-1", "")), 10*time.Second)
			answers[i].status = resp.StatusCode
			answers[i].body = decodeJSON(t, resp.Body)
		})
	}
	wg.Wait()
	for i, a := range answers {
		mustOK(t, a.status, a.body)
		for _, f := range []string{"groupIdentifier", "clientSecret", "customerId"} {
			if a.body[f] != answers[0].body[f] {
				t.Errorf("answer %d: %s %v differs from %v", i, f, a.body[f], answers[0].body[f])
			}
		}
		if !slices.Equal(codesOf(a.body), codesOf(answers[0].body)) {
			t.Errorf("answer %d: codes %v differ from %v", i, codesOf(a.body), codesOf(answers[0].body))
		}
	}
	bookings := bookingsOfCart(t, "race-1")
	if len(bookings) != 3 {
		t.Fatalf("%d bookings for a 3-item cart after %d concurrent checkouts", len(bookings), requests)
	}
	for _, b := range bookings {
		if str(b["groupIdentifier"]) != answers[0].body["groupIdentifier"] {
			t.Errorf("booking %s in group %s", str(b["bookingCode"]), str(b["groupIdentifier"]))
		}
	}
	intents := h.stripe.Calls("POST", "/v1/payment_intents")
	for _, pi := range intents {
		if pi.IdempotencyKey != intents[0].IdempotencyKey || pi.Form.Encode() != intents[0].Form.Encode() {
			t.Errorf("PaymentIntent creates differ: %q %v vs %q %v", pi.IdempotencyKey, pi.Form, intents[0].IdempotencyKey, intents[0].Form)
		}
	}
	customerKeys := map[string]bool{}
	for _, c := range h.stripe.Calls("POST", "/v1/customers") {
		customerKeys[c.IdempotencyKey] = true
	}
	if len(customerKeys) != 1 {
		t.Errorf("customer creates used %d idempotency keys, want 1", len(customerKeys))
	}
}

func TestStripeUnavailableAfterBookingsThenRetryCompletes(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "outage-1", owner: "traveller-o", items: []itemSpec{{amount: "10"}, {amount: "20"}, {amount: "30"}}})
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/payment_intents" })

	resp := h.invoke(apiEvent("traveller-o", checkoutBody("outage-1", "")), 10*time.Second)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d with Stripe down, want 500: %s", resp.StatusCode, resp.Body)
	}
	problem := decodeJSON(t, resp.Body)
	if !strings.HasSuffix(problem["type"].(string), "/internal") || problem["properties"].(map[string]any)["requestId"] == "" {
		t.Errorf("problem %v", problem)
	}
	if strings.Contains(resp.Body, "unavailable") || strings.Contains(resp.Body, "stripe") {
		t.Errorf("internal error leaked: %s", resp.Body)
	}
	cart := getCart(t, "outage-1")
	stored := cart["checkout"].(*types.AttributeValueMemberM).Value
	if str(cart["status"]) != "CHECKING_OUT" {
		t.Fatalf("cart status %s after the failure, want CHECKING_OUT", str(cart["status"]))
	}
	before := bookingsOfCart(t, "outage-1")
	if len(before) != 3 {
		t.Fatalf("%d bookings written before Stripe failed, want 3", len(before))
	}

	h.stripe.SetUnavailable(nil)
	status, body := h.checkout("traveller-o", checkoutBody("outage-1", ""))
	mustOK(t, status, body)
	if body["groupIdentifier"] != str(stored["groupIdentifier"]) {
		t.Errorf("retry answered group %v, stored %s", body["groupIdentifier"], str(stored["groupIdentifier"]))
	}
	var storedCodes []string
	for _, c := range stored["bookingCodes"].(*types.AttributeValueMemberL).Value {
		storedCodes = append(storedCodes, str(c))
	}
	if !slices.Equal(codesOf(body), storedCodes) {
		t.Errorf("retry answered codes %v, stored %v", codesOf(body), storedCodes)
	}
	if after := bookingsOfCart(t, "outage-1"); len(after) != 3 {
		t.Errorf("%d bookings after the retry, want the same 3", len(after))
	}
	if got := str(getCart(t, "outage-1")["status"]); got != "CHECKED_OUT" {
		t.Errorf("cart status %s after the retry", got)
	}
	if n := len(h.stripe.Calls("GET", "/v1/payment_intents/search")); n != 0 {
		t.Errorf("%d PaymentIntent searches within the idempotency window, want none: the key is enough", n)
	}
}

func TestMoneyReachesStripeExactly(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		currency string
		amounts  []string
		minor    string
	}{
		{"JPY", []string{"1500", "2500"}, "4000"},
		{"KWD", []string{"12.340"}, "12340"},
		{"EUR", []string{"123.45", "0.1"}, "12355"},
		{"EUR", []string{"1E+2", "2.50"}, "10250"},
	}
	for i, tt := range tests {
		t.Run(tt.currency, func(t *testing.T) {
			id := fmt.Sprintf("money-%d", i)
			items := make([]itemSpec, len(tt.amounts))
			for j, a := range tt.amounts {
				items[j] = itemSpec{amount: a}
			}
			putCart(t, cartSpec{id: id, owner: "traveller-m", currency: tt.currency, items: items})
			h.mustCheckout("traveller-m", checkoutBody(id, ""))
			intents := h.stripe.Calls("POST", "/v1/payment_intents")
			pi := intents[len(intents)-1]
			if pi.Form.Get("amount") != tt.minor || pi.Form.Get("currency") != strings.ToLower(tt.currency) {
				t.Errorf("PaymentIntent amount %s %s, want %s %s", pi.Form.Get("amount"), pi.Form.Get("currency"), tt.minor, strings.ToLower(tt.currency))
			}
		})
	}
}

func TestBase64EncodedBody(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "b64-1", owner: "traveller-b", items: []itemSpec{{amount: "42"}}})
	ev := apiEvent("traveller-b", base64Encode(checkoutBody("b64-1", "")))
	ev.IsBase64Encoded = true
	resp := h.invoke(ev, 10*time.Second)
	mustOK(t, resp.StatusCode, decodeJSON(t, resp.Body))
}

func TestStatementDescriptorSuffixFromCustomization(t *testing.T) {
	h := newHarness(t, nil)
	putCustomization(t, "cz-suffix", true, []string{"partner.example.org"}, "WINK PARTNER")
	putCart(t, cartSpec{id: "suffix-1", owner: "traveller-s", items: []itemSpec{{amount: "42"}}})
	body := `{"shoppingCartIdentifier":"suffix-1","customizationIdentifier":"cz-suffix","redirectUrl":"https://partner.example.org/done"}`
	h.mustCheckout("traveller-s", body)
	pi := h.stripe.Calls("POST", "/v1/payment_intents")[0]
	if pi.Form.Get("statement_descriptor_suffix") != "WINK PARTNER" || pi.Form.Get("metadata[customizationIdentifier]") != "cz-suffix" {
		t.Errorf("PaymentIntent form %v", pi.Form)
	}
}

// A retry that finds the PaymentIntent paid answers cart-already-paid and, the webhook not having
// done it yet, confirms the checkout: bookings CONFIRMED, cart PAID.
func TestPaidPaymentIntentAnswersAlreadyPaid(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "paid-pi", owner: "traveller-p", items: []itemSpec{{amount: "42"}, {amount: "8"}}})
	first := h.mustCheckout("traveller-p", checkoutBody("paid-pi", ""))
	pi := str(stateOf(getCart(t, "paid-pi"))["paymentIntentId"])
	if err := h.stripe.SetPaymentIntentStatus(pi, "succeeded"); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		status, body := h.checkout("traveller-p", checkoutBody("paid-pi", ""))
		if status != 400 || !strings.HasSuffix(body["type"].(string), "/cart-already-paid") {
			t.Fatalf("attempt %d: status %d body %v, want cart-already-paid", attempt+1, status, body)
		}
	}
	cart := getCart(t, "paid-pi")
	if str(cart["status"]) != "PAID" || str(stateOf(cart)["status"]) != "CONFIRMED" || str(stateOf(cart)["paymentIntentId"]) != pi {
		t.Errorf("cart %s, checkout %v: want PAID and CONFIRMED with %s", str(cart["status"]), stateOf(cart), pi)
	}
	for _, b := range bookingsOfGroup(t, first["groupIdentifier"].(string)) {
		if str(b["status"]) != "CONFIRMED" {
			t.Errorf("booking %s is %s, want CONFIRMED", str(b["bookingCode"]), str(b["status"]))
		}
	}
}

// TestErrorRows covers every 400, 401 and 403 row of the contract, and their precedence.
func TestErrorRows(t *testing.T) {
	h := newHarness(t, nil)
	putCustomization(t, "cz-active", true, []string{"*.partner.example.org"}, "")
	putCustomization(t, "cz-inactive", false, []string{"inactive.example.org"}, "")
	putCart(t, cartSpec{id: "rows-open", owner: "traveller-e", items: []itemSpec{{amount: "42"}}})
	putCart(t, cartSpec{id: "rows-empty", owner: "traveller-e"})
	putCart(t, cartSpec{id: "rows-expired", owner: "traveller-e", items: []itemSpec{{amount: "42"}}, expiresAt: sample.LongExpired(time.Now()).Unix()})
	putCart(t, cartSpec{id: "rows-mixed", owner: "traveller-e", items: []itemSpec{{amount: "42"}, {amount: "10", currency: "USD"}}})
	many := make([]itemSpec, 99)
	for i := range many {
		many[i] = itemSpec{amount: "1"}
	}
	putCart(t, cartSpec{id: "rows-many", owner: "traveller-e", items: many})
	putCart(t, cartSpec{id: "rows-jpy-fraction", owner: "traveller-e", currency: "JPY", items: []itemSpec{{amount: "1500.5"}}})
	putCart(t, cartSpec{id: "rows-eur-too-precise", owner: "traveller-e", items: []itemSpec{{amount: "10.005"}}})
	putCart(t, cartSpec{id: "rows-kwd-last-digit", owner: "traveller-e", currency: "KWD", items: []itemSpec{{amount: "1.235"}}})
	putCart(t, cartSpec{id: "rows-small", owner: "traveller-e", items: []itemSpec{{amount: "0.20"}}})
	putCart(t, cartSpec{id: "rows-cup", owner: "traveller-e", currency: "CUP", items: []itemSpec{{amount: "100"}}})
	putCart(t, cartSpec{id: "rows-paid", owner: "traveller-e", status: "PAID", items: []itemSpec{{amount: "42"}}})
	putCart(t, cartSpec{id: "rows-others", owner: "someone-else", items: []itemSpec{{amount: "42"}}})

	tests := []struct {
		name, caller, body string
		status             int
		kind               string
		field              string
	}{
		{"malformed JSON", "traveller-e", `{"shoppingCartIdentifier":`, 400, "validation", "body"},
		{"missing fields", "traveller-e", `{}`, 400, "validation", "shoppingCartIdentifier"},
		{"redirect host not allowed", "traveller-e", `{"shoppingCartIdentifier":"rows-open","redirectUrl":"https://evil.test/"}`, 400, "validation", "redirectUrl"},
		{"redirect host allowed only by an inactive customization", "traveller-e", `{"shoppingCartIdentifier":"rows-open","customizationIdentifier":"cz-inactive","redirectUrl":"https://inactive.example.org/"}`, 400, "validation", "redirectUrl"},
		{"redirect host suffix trick", "traveller-e", `{"shoppingCartIdentifier":"rows-open","redirectUrl":"https://book.example.com.evil.test/"}`, 400, "validation", "redirectUrl"},
		{"redirect host fragment trick", "traveller-e", `{"shoppingCartIdentifier":"rows-open","redirectUrl":"https://evil.test#book.example.com"}`, 400, "validation", "redirectUrl"},
		{"cart not found", "traveller-e", checkoutBody("rows-missing", ""), 400, "cart-not-found", ""},
		{"empty cart", "traveller-e", checkoutBody("rows-empty", ""), 400, "cart-not-checkoutable", ""},
		{"expired cart", "traveller-e", checkoutBody("rows-expired", ""), 400, "cart-not-checkoutable", ""},
		{"mixed currencies", "traveller-e", checkoutBody("rows-mixed", ""), 400, "cart-not-checkoutable", ""},
		{"more than 98 items", "traveller-e", checkoutBody("rows-many", ""), 400, "cart-not-checkoutable", ""},
		{"a currency Stripe cannot charge", "traveller-e", checkoutBody("rows-cup", ""), 400, "cart-not-checkoutable", ""},
		{"JPY with a fraction", "traveller-e", checkoutBody("rows-jpy-fraction", ""), 400, "cart-not-checkoutable", ""},
		{"EUR with three decimals", "traveller-e", checkoutBody("rows-eur-too-precise", ""), 400, "cart-not-checkoutable", ""},
		{"KWD with a non-zero last digit", "traveller-e", checkoutBody("rows-kwd-last-digit", ""), 400, "cart-not-checkoutable", ""},
		{"below Stripe's minimum", "traveller-e", checkoutBody("rows-small", ""), 400, "cart-not-checkoutable", ""},
		{"already paid", "traveller-e", checkoutBody("rows-paid", ""), 400, "cart-already-paid", ""},
		{"unknown customization", "traveller-e", checkoutBody("rows-open", `,"customizationIdentifier":"cz-missing"`), 400, "customization-not-found", ""},
		{"inactive customization", "traveller-e", checkoutBody("rows-open", `,"customizationIdentifier":"cz-inactive"`), 400, "customization-not-found", ""},
		{"no identity", "", checkoutBody("rows-open", ""), 401, "unauthorized", ""},
		{"someone else's cart", "traveller-e", checkoutBody("rows-others", ""), 403, "forbidden", ""},
		// Precedence: 401, validation, cart-not-found, 403, the rest.
		{"401 before validation", "", `not json`, 401, "unauthorized", ""},
		{"validation before cart-not-found", "traveller-e", `{"shoppingCartIdentifier":"rows-missing","redirectUrl":"http://book.example.com"}`, 400, "validation", "redirectUrl"},
		{"cart-not-found before customization", "traveller-e", checkoutBody("rows-missing", `,"customizationIdentifier":"cz-missing"`), 400, "cart-not-found", ""},
		{"403 before customization", "traveller-e", checkoutBody("rows-others", `,"customizationIdentifier":"cz-missing"`), 403, "forbidden", ""},
		{"403 before paid", "intruder", checkoutBody("rows-paid", ""), 403, "forbidden", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.checkout(tt.caller, tt.body)
			if status != tt.status || body["type"] != "https://api.example.com/problems/"+tt.kind {
				t.Fatalf("status %d type %v, want %d %s (%v)", status, body["type"], tt.status, tt.kind, body)
			}
			if body["instance"] != "/api/checkout" || body["title"] == "" || body["detail"] == "" || int(body["status"].(float64)) != status {
				t.Errorf("problem %v", body)
			}
			props := body["properties"].(map[string]any)
			if !strings.HasPrefix(props["requestId"].(string), "req-") {
				t.Errorf("requestId %v", props["requestId"])
			}
			if tt.field != "" {
				errs, _ := props["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] != tt.field {
					t.Errorf("errors %v, want field %s", errs, tt.field)
				}
			}
		})
	}
	for _, id := range []string{"rows-open", "rows-empty", "rows-expired", "rows-mixed", "rows-many", "rows-jpy-fraction", "rows-small", "rows-cup", "rows-others"} {
		if n := len(bookingsOfCart(t, id)); n != 0 {
			t.Errorf("refused cart %s has %d bookings", id, n)
		}
		if st := str(getCart(t, id)["status"]); st != "OPEN" {
			t.Errorf("refused cart %s is %s", id, st)
		}
	}
	if n := len(h.stripe.Calls("POST", "/v1/payment_intents")) + len(h.stripe.Calls("POST", "/v1/customers")); n != 0 {
		t.Errorf("refused checkouts made %d Stripe creates", n)
	}
}

func TestRedirectAllowedByCustomizationAndWildcard(t *testing.T) {
	h := newHarness(t, nil)
	putCustomization(t, "cz-hosts", true, []string{"*.partner.example.org"}, "")
	putCart(t, cartSpec{id: "redirect-1", owner: "traveller-w", items: []itemSpec{{amount: "42"}}})
	putCart(t, cartSpec{id: "redirect-2", owner: "traveller-w", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-w", `{"shoppingCartIdentifier":"redirect-1","customizationIdentifier":"cz-hosts","redirectUrl":"https://a.b.partner.example.org:8443/done"}`)
	h.mustCheckout("traveller-w", `{"shoppingCartIdentifier":"redirect-2","redirectUrl":"https://APP.Wink.Test/done"}`)
}

func TestCheckoutWithoutExpiryOrVersion(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "no-expiry", owner: "traveller-x", items: []itemSpec{{amount: "42"}}, noExpiry: true})
	h.mustCheckout("traveller-x", checkoutBody("no-expiry", ""))
}

// Stripe refusing the cart itself after the transaction (an amount it will not charge, a currency
// it does not take) answers cart-not-checkoutable, saying which, and releases the checkout: its
// bookings CANCELLED as refused, the cart OPEN again at its next version with its expiry back.
// A retry starts a new checkout, which Stripe refuses and which is released the same way.
func TestStripeRefusesTheCart(t *testing.T) {
	for i, tc := range []struct {
		name, currency, amount, refusal, detail string
	}{
		{"amount too small", "ISK", "5", `"code":"amount_too_small","param":"amount","message":"Amount must convert to at least 50 cents."`, "below the minimum charge for ISK"},
		{"amount too large", "EUR", "2000000", `"code":"amount_too_large","param":"amount","message":"Amount must be no more than 999,999.99"`, "above the maximum charge for EUR"},
		{"currency", "EUR", "100", `"param":"currency","message":"Invalid currency: eur."`, "currency EUR is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			cartID := fmt.Sprintf("refused-%d", i)
			owner := fmt.Sprintf("traveller-t-%d", i) // each harness has a Stripe of its own
			putCart(t, cartSpec{id: cartID, owner: owner, currency: tc.currency, items: []itemSpec{{amount: tc.amount}}})
			h.stripe.SetIntercept(func(method, path string) (int, string) {
				if path == "/v1/payment_intents" {
					return 400, `{"error":{"type":"invalid_request_error",` + tc.refusal + `}}`
				}
				return 0, ""
			})
			for attempt := range 2 {
				status, body := h.checkout(owner, checkoutBody(cartID, ""))
				if status != 400 || body["type"] != "https://api.example.com/problems/cart-not-checkoutable" {
					t.Fatalf("attempt %d: status %d body %v, want cart-not-checkoutable", attempt+1, status, body)
				}
				if detail, _ := body["detail"].(string); !strings.Contains(detail, tc.detail) {
					t.Errorf("attempt %d: detail %q, want it to say %q", attempt+1, detail, tc.detail)
				}
			}
			if n := len(h.stripe.Calls("POST", "/v1/payment_intents")); n != 2 {
				t.Errorf("%d PaymentIntent creates, want one per attempt, each refused", n)
			}
			cart := getCart(t, cartID)
			if str(cart["status"]) != "OPEN" || cart["checkout"] != nil || str(cart["version"]) != "3" || str(cart["expiresAt"]) == "" {
				t.Errorf("cart %v, want it OPEN at version 3 (one per release) with its expiry and no checkout", cart)
			}
			bookings := bookingsOfCart(t, cartID)
			if len(bookings) != 2 {
				t.Fatalf("%d bookings, want one per attempt", len(bookings))
			}
			for _, b := range bookings {
				if str(b["status"]) != "CANCELLED" || str(b["cancellationReason"]) != "refused" {
					t.Errorf("booking %s: %s %s, want CANCELLED refused", str(b["bookingCode"]), str(b["status"]), str(b["cancellationReason"]))
				}
			}
		})
	}
}
