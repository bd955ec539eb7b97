package app_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/testenv"
)

// No checkout is ever stuck: what Stripe, support or an affiliate does to a checkout, with Stripe
// behaving as it documents (the Stripe layer of internal/testenv keeps idempotency keys and
// object state), never locks a cart or a traveller out.

// failOnce answers the first request to path with status and body, then lets requests through.
func failOnce(h *harness, path string, status int, body string) {
	failed := false
	h.stripe.SetIntercept(func(method, p string) (int, string) {
		if method == "POST" && p == path && !failed {
			failed = true
			return status, body
		}
		return 0, ""
	})
}

const stripe500 = `{"error":{"type":"api_error","message":"An unknown error occurred"}}`

// mustProblem fails the test unless the answer is a problem of kind with status.
func mustProblem(t *testing.T, status int, body map[string]any, wantStatus int, kind string) {
	t.Helper()
	if status != wantStatus || body["type"] != "https://api.example.com/problems/"+kind {
		t.Fatalf("status %d type %v, want %d %s (%v)", status, body["type"], wantStatus, kind, body)
	}
}

// checkRecordedSecret checks that an answer's client secret is the one of the PaymentIntent the
// cart records, and that this intent is the group's.
func checkRecordedSecret(t *testing.T, h *harness, cartID string, answer map[string]any) {
	t.Helper()
	state := stateOf(getCart(t, cartID))
	pi, ok := h.stripe.PaymentIntent(str(state["paymentIntentId"]))
	if !ok {
		t.Fatalf("the cart records PaymentIntent %q, which Stripe does not know", str(state["paymentIntentId"]))
	}
	if answer["clientSecret"] != pi.ClientSecret || pi.Metadata["groupIdentifier"] != answer["groupIdentifier"] {
		t.Errorf("answered secret %v of group %v; the recorded intent %s has %s of group %s",
			answer["clientSecret"], answer["groupIdentifier"], pi.ID, pi.ClientSecret, pi.Metadata["groupIdentifier"])
	}
}

// Stripe stores a 500 with its idempotency key and replays it for a day: one 500 on the
// PaymentIntent create must not fail every retry. The retry uses the next key generation.
func TestStored500OnPaymentIntentCreate(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "stored-500-pi", owner: "traveller-500-pi", items: []itemSpec{{amount: "60"}, {amount: "40"}}})
	failOnce(h, "/v1/payment_intents", 500, stripe500)
	status, body := h.checkout("traveller-500-pi", checkoutBody("stored-500-pi", ""))
	mustProblem(t, status, body, 500, "internal")
	if got := str(getCart(t, "stored-500-pi")["status"]); got != "CHECKING_OUT" {
		t.Fatalf("cart is %s after the 500, want CHECKING_OUT", got)
	}

	var answer map[string]any
	for attempt := range 2 { // the retry completes, and so does a retry of it
		answer = h.mustCheckout("traveller-500-pi", checkoutBody("stored-500-pi", ""))
		if attempt == 1 && answer["clientSecret"] == nil {
			t.Fatal("no client secret on the second retry")
		}
	}
	if got := str(getCart(t, "stored-500-pi")["status"]); got != "CHECKED_OUT" {
		t.Errorf("cart is %s, want CHECKED_OUT", got)
	}
	intents := h.stripe.PaymentIntents()
	if len(intents) != 1 {
		t.Fatalf("%d PaymentIntents in Stripe, want 1", len(intents))
	}
	checkRecordedSecret(t, h, "stored-500-pi", answer)
	keys := map[string]bool{}
	for _, c := range h.stripe.Calls("POST", "/v1/payment_intents") {
		keys[c.IdempotencyKey] = true
	}
	if len(keys) != 2 {
		t.Errorf("PaymentIntent creates used keys %v, want the poisoned one and the next", keys)
	}
}

// A 500 on the customer create is stored under the owner's key: the traveller must still check
// this cart and the next one out, with no cart left CHECKING_OUT.
func TestStored500OnCustomerCreate(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "stored-500-cus-1", owner: "traveller-500-cus", items: []itemSpec{{amount: "42"}}})
	putCart(t, cartSpec{id: "stored-500-cus-2", owner: "traveller-500-cus", items: []itemSpec{{amount: "43"}}})
	failOnce(h, "/v1/customers", 500, stripe500)
	status, body := h.checkout("traveller-500-cus", checkoutBody("stored-500-cus-1", ""))
	mustProblem(t, status, body, 500, "internal")

	first := h.mustCheckout("traveller-500-cus", checkoutBody("stored-500-cus-1", ""))
	second := h.mustCheckout("traveller-500-cus", checkoutBody("stored-500-cus-2", ""))
	if first["customerId"] != second["customerId"] {
		t.Errorf("the traveller's carts have customers %v and %v, want one", first["customerId"], second["customerId"])
	}
	for _, id := range []string{"stored-500-cus-1", "stored-500-cus-2"} {
		if got := str(getCart(t, id)["status"]); got != "CHECKED_OUT" {
			t.Errorf("cart %s is %s, want CHECKED_OUT", id, got)
		}
	}
	checkRecordedSecret(t, h, "stored-500-cus-2", second)
}

// A customer deleted in the Stripe Dashboard, or a mapping made with the other mode's key: the
// traveller's next checkout completes with a new customer, and the mapping is replaced.
func TestCustomerStripeNoLongerKnows(t *testing.T) {
	t.Run("deleted in the Dashboard", func(t *testing.T) {
		h := newHarness(t, nil)
		putCart(t, cartSpec{id: "deleted-cus-1", owner: "traveller-deleted", items: []itemSpec{{amount: "42"}}})
		putCart(t, cartSpec{id: "deleted-cus-2", owner: "traveller-deleted", items: []itemSpec{{amount: "43"}}})
		first := h.mustCheckout("traveller-deleted", checkoutBody("deleted-cus-1", ""))
		gone := first["customerId"].(string)
		if err := h.stripe.DeleteCustomer(gone); err != nil {
			t.Fatal(err)
		}
		second := h.mustCheckout("traveller-deleted", checkoutBody("deleted-cus-2", ""))
		checkReplaced(t, h, "traveller-deleted", "deleted-cus-2", gone, second)
	})
	t.Run("made with the other mode's key", func(t *testing.T) {
		h := newHarness(t, nil)
		putMapping(t, "traveller-live-mapping", "cus_MadeWithTheLiveKey")
		putCart(t, cartSpec{id: "live-mapping-1", owner: "traveller-live-mapping", items: []itemSpec{{amount: "42"}}})
		answer := h.mustCheckout("traveller-live-mapping", checkoutBody("live-mapping-1", ""))
		checkReplaced(t, h, "traveller-live-mapping", "live-mapping-1", "cus_MadeWithTheLiveKey", answer)
	})
	t.Run("deleted while a checkout is open", func(t *testing.T) {
		// The checked-out cart's customer can no longer get an ephemeral key: its PaymentIntent
		// is canceled, the checkout released, and the retry checks the cart out anew.
		h := newHarness(t, nil)
		putCart(t, cartSpec{id: "deleted-open-1", owner: "traveller-deleted-open", items: []itemSpec{{amount: "42"}}})
		first := h.mustCheckout("traveller-deleted-open", checkoutBody("deleted-open-1", ""))
		oldIntent := str(stateOf(getCart(t, "deleted-open-1"))["paymentIntentId"])
		if err := h.stripe.DeleteCustomer(first["customerId"].(string)); err != nil {
			t.Fatal(err)
		}
		second := h.mustCheckout("traveller-deleted-open", checkoutBody("deleted-open-1", ""))
		checkReplaced(t, h, "traveller-deleted-open", "deleted-open-1", first["customerId"].(string), second)
		if second["groupIdentifier"] == first["groupIdentifier"] {
			t.Errorf("the retry answered the released group %v", first["groupIdentifier"])
		}
		if pi, _ := h.stripe.PaymentIntent(oldIntent); pi.Status != "canceled" || pi.CancellationReason != "abandoned" {
			t.Errorf("the old PaymentIntent is %s (%s), want canceled as abandoned", pi.Status, pi.CancellationReason)
		}
		checkCancelled(t, first["groupIdentifier"].(string), "payment-canceled")
	})
}

func checkReplaced(t *testing.T, h *harness, owner, cartID, gone string, answer map[string]any) {
	t.Helper()
	customer, _ := answer["customerId"].(string)
	if customer == "" || customer == gone {
		t.Fatalf("answered customer %q, want a new one instead of %s", customer, gone)
	}
	if _, ok := h.stripe.Customer(customer); !ok {
		t.Errorf("answered customer %s, which Stripe does not know", customer)
	}
	if got := str(mappingOf(t, owner)["stripeCustomerId"]); got != customer {
		t.Errorf("the mapping holds %q, want the new customer %s", got, customer)
	}
	if got := str(stateOf(getCart(t, cartID))["customerId"]); got != customer {
		t.Errorf("the checkout records customer %q, want %s", got, customer)
	}
	if pi, _ := h.stripe.PaymentIntent(str(stateOf(getCart(t, cartID))["paymentIntentId"])); pi.Customer != customer {
		t.Errorf("the recorded PaymentIntent is for customer %q, want %s", pi.Customer, customer)
	}
	checkRecordedSecret(t, h, cartID, answer)
}

// A PaymentIntent canceled by support or by Stripe cannot be paid: the retry releases its
// checkout and answers a new one.
func TestCanceledPaymentIntentStartsANewCheckout(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "canceled-pi", owner: "traveller-canceled", items: []itemSpec{{amount: "30"}, {amount: "70"}}})
	first := h.mustCheckout("traveller-canceled", checkoutBody("canceled-pi", ""))
	pi := str(stateOf(getCart(t, "canceled-pi"))["paymentIntentId"])
	if err := h.stripe.SetPaymentIntentStatus(pi, "canceled"); err != nil {
		t.Fatal(err)
	}
	second := h.mustCheckout("traveller-canceled", checkoutBody("canceled-pi", ""))
	if second["groupIdentifier"] == first["groupIdentifier"] || second["clientSecret"] == first["clientSecret"] {
		t.Fatalf("the retry answered group %v secret %v, want a new checkout", second["groupIdentifier"], second["clientSecret"])
	}
	if slices.Equal(codesOf(first), codesOf(second)) || len(codesOf(second)) != 2 {
		t.Errorf("booking codes %v then %v, want two new ones", codesOf(first), codesOf(second))
	}
	checkCancelled(t, first["groupIdentifier"].(string), "payment-canceled")
	for _, b := range bookingsOfGroup(t, second["groupIdentifier"].(string)) {
		if str(b["status"]) != "PENDING_PAYMENT" {
			t.Errorf("new booking %s is %s", str(b["bookingCode"]), str(b["status"]))
		}
	}
	if got := str(getCart(t, "canceled-pi")["status"]); got != "CHECKED_OUT" {
		t.Errorf("cart is %s, want CHECKED_OUT with the new checkout", got)
	}
	checkRecordedSecret(t, h, "canceled-pi", second)
}

func checkCancelled(t *testing.T, group, reason string) {
	t.Helper()
	bookings := bookingsOfGroup(t, group)
	if len(bookings) == 0 {
		t.Fatalf("group %s has no bookings", group)
	}
	for _, b := range bookings {
		if str(b["status"]) != "CANCELLED" || str(b["cancellationReason"]) != reason {
			t.Errorf("booking %s of the released group: %s %s, want CANCELLED %s",
				str(b["bookingCode"]), str(b["status"]), str(b["cancellationReason"]), reason)
		}
	}
}

// A payment being processed (SEPA, ACH) is neither payable again nor finished.
func TestProcessingPaymentIntentAnswersPaymentInProgress(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "processing-pi", owner: "traveller-processing", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-processing", checkoutBody("processing-pi", ""))
	pi := str(stateOf(getCart(t, "processing-pi"))["paymentIntentId"])
	for _, s := range []string{"processing", "requires_capture"} {
		if err := h.stripe.SetPaymentIntentStatus(pi, s); err != nil {
			t.Fatal(err)
		}
		status, body := h.checkout("traveller-processing", checkoutBody("processing-pi", ""))
		mustProblem(t, status, body, 400, "payment-in-progress")
	}
	if got := str(getCart(t, "processing-pi")["status"]); got != "CHECKED_OUT" {
		t.Errorf("cart is %s, want CHECKED_OUT", got)
	}
}

// The PaymentIntent's parameters come from the stored checkout, the customer included: a mapping
// changed while a checkout is open must not reuse its key with another customer (Stripe would
// answer idempotency_error for a day).
func TestChangedMappingDoesNotChangeThePaymentIntent(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "mapping-changed", owner: "traveller-mapping", items: []itemSpec{{amount: "42"}}})
	// The PaymentIntent is created, but the request fails on the ephemeral key.
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/ephemeral_keys" })
	status, body := h.checkout("traveller-mapping", checkoutBody("mapping-changed", ""))
	mustProblem(t, status, body, 500, "internal")
	h.stripe.SetUnavailable(nil)
	created := h.stripe.PaymentIntents()
	if len(created) != 1 {
		t.Fatalf("%d PaymentIntents, want the one the failed request created", len(created))
	}
	h.stripe.AddCustomer("cus_AnotherOne")
	putMapping(t, "traveller-mapping", "cus_AnotherOne")

	answer := h.mustCheckout("traveller-mapping", checkoutBody("mapping-changed", ""))
	if answer["clientSecret"] != created[0].ClientSecret || answer["customerId"] != created[0].Customer {
		t.Errorf("answered %v for %v, want the intent created first (%s for %s)",
			answer["clientSecret"], answer["customerId"], created[0].ClientSecret, created[0].Customer)
	}
	if n := len(h.stripe.PaymentIntents()); n != 1 {
		t.Errorf("%d PaymentIntents, want 1", n)
	}
}

// The same when the first request's PaymentIntent create failed at Stripe (a stored 500): the
// retry creates it under the next key generation, with the customer the checkout recorded, not
// the mapping's new one.
func TestChangedMappingDoesNotChangeAResumedPaymentIntentCreate(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "mapping-changed-create", owner: "traveller-mapping-create", items: []itemSpec{{amount: "42"}}})
	h.stripe.SetIntercept(func(method, path string) (int, string) {
		if method == "POST" && path == "/v1/payment_intents" {
			return 500, `{"error":{"type":"api_error","message":"An unknown error occurred"}}`
		}
		return 0, ""
	})
	status, body := h.checkout("traveller-mapping-create", checkoutBody("mapping-changed-create", ""))
	mustProblem(t, status, body, 500, "internal")
	h.stripe.SetIntercept(nil)
	recorded := str(stateOf(getCart(t, "mapping-changed-create"))["customerId"])
	if recorded == "" || len(h.stripe.PaymentIntents()) != 0 {
		t.Fatalf("after the failed create: customer %q recorded, %d PaymentIntents (want one customer, none)", recorded, len(h.stripe.PaymentIntents()))
	}
	h.stripe.AddCustomer("cus_AnotherOneForTheCreate")
	putMapping(t, "traveller-mapping-create", "cus_AnotherOneForTheCreate")

	answer := h.mustCheckout("traveller-mapping-create", checkoutBody("mapping-changed-create", ""))
	created := h.stripe.PaymentIntents()
	if len(created) != 1 || created[0].Customer != recorded || answer["customerId"] != recorded {
		t.Fatalf("PaymentIntents %+v, answered customer %v: want one, for the recorded customer %s", created, answer["customerId"], recorded)
	}
	if answer["clientSecret"] != created[0].ClientSecret {
		t.Errorf("answered %v, want the created intent's secret", answer["clientSecret"])
	}
}

// A cart item that cannot become a booking is refused before anything is written or created.
func TestIncompleteItemsAreRefused(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct{ name, update, detail string }{
		{"no hotel", "REMOVE #items[1].hotelIdentifier", "item 2 is incomplete: hotelIdentifier is missing"},
		{"no room rate", "REMOVE #items[0].roomRateIdentifier", "item 1 is incomplete: roomRateIdentifier is missing"},
		{"no identifier", "REMOVE #items[0].#identifier", "identifier is missing"},
		{"no adults", "SET #items[0].adults = :zero", "adults must be at least 1"},
		{"negative children", "SET #items[0].children = :minus", "children must not be negative"},
		{"no dates", "REMOVE #items[0].startDate", "startDate must be a YYYY-MM-DD date"},
		{"not a date", "SET #items[0].endDate = :notADate", "endDate must be a YYYY-MM-DD date"},
		{"end before start", "SET #items[0].endDate = :early", "endDate must be after startDate"},
		{"no total", "REMOVE #items[0].#total", "total is missing"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "incomplete-" + string(rune('a'+i))
			putCart(t, cartSpec{id: id, owner: "traveller-incomplete", items: []itemSpec{{amount: "42"}, {amount: "8"}}})
			updateCart(t, id, tc.update)
			status, body := h.checkout("traveller-incomplete", checkoutBody(id, ""))
			mustProblem(t, status, body, 400, "cart-not-checkoutable")
			if detail, _ := body["detail"].(string); !strings.Contains(detail, tc.detail) {
				t.Errorf("detail %q, want it to say %q", detail, tc.detail)
			}
			if n := len(bookingsOfCart(t, id)); n != 0 || str(getCart(t, id)["status"]) != "OPEN" {
				t.Errorf("%d bookings, cart %s: want none and OPEN", n, str(getCart(t, id)["status"]))
			}
		})
	}
	if n := len(h.stripe.Calls("POST", "/v1/customers")) + len(h.stripe.Calls("POST", "/v1/payment_intents")); n != 0 {
		t.Errorf("%d Stripe creates for refused carts", n)
	}
}

// A cart that its checkout state would push over DynamoDB's 400 KB item limit is refused
// before the transaction: a 500 ("retrying is safe") would be a lie.
func TestCartTooLargeForOneItem(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "too-large", owner: "traveller-large", items: []itemSpec{{amount: "42"}}})
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(tableNames["CartsTable"]),
		Key:                       map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: "too-large"}},
		UpdateExpression:          aws.String("SET #items[0].hotelName = :name"),
		ExpressionAttributeNames:  map[string]string{"#items": "items"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":name": &types.AttributeValueMemberS{Value: strings.Repeat("x", 399*1024)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	status, body := h.checkout("traveller-large", checkoutBody("too-large", ""))
	mustProblem(t, status, body, 400, "cart-not-checkoutable")
	if n := len(bookingsOfCart(t, "too-large")); n != 0 || str(getCart(t, "too-large")["status"]) != "OPEN" {
		t.Errorf("%d bookings, cart %s: want none and OPEN", n, str(getCart(t, "too-large")["status"]))
	}
}

// A cart in a status the checkout does not know is a bug to look at: 500, and nothing created in
// Stripe for it.
func TestUnknownCartStatusCreatesNothing(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "unknown-status", owner: "traveller-unknown", status: "ARCHIVED", items: []itemSpec{{amount: "42"}}})
	status, body := h.checkout("traveller-unknown", checkoutBody("unknown-status", ""))
	mustProblem(t, status, body, 500, "internal")
	if n := len(h.stripe.Calls("POST", "/v1/customers")); n != 0 {
		t.Errorf("%d Stripe customers created for a cart in an unknown status", n)
	}
	if !strings.Contains(h.logs.String(), `unknown status \"ARCHIVED\"`) {
		t.Errorf("the log does not say why: %s", h.logs.String())
	}
}

// A retry of a started checkout answers from its stored state: a customization deactivated (or
// its hosts changed) since the checkout started does not block it.
func TestRetryOfStartedCheckoutIgnoresChangedCustomization(t *testing.T) {
	h := newHarness(t, nil)
	putCustomization(t, "cz-later-off", true, []string{"partner-later.example.org"}, "")
	putCart(t, cartSpec{id: "cz-changed", owner: "traveller-cz", items: []itemSpec{{amount: "42"}}})
	body := `{"shoppingCartIdentifier":"cz-changed","customizationIdentifier":"cz-later-off","redirectUrl":"https://partner-later.example.org/done"}`
	first := h.mustCheckout("traveller-cz", body)
	putCustomization(t, "cz-later-off", false, nil, "")
	second := h.mustCheckout("traveller-cz", body)
	if second["groupIdentifier"] != first["groupIdentifier"] || second["clientSecret"] != first["clientSecret"] {
		t.Errorf("the retry answered %v, want the stored checkout %v", second["groupIdentifier"], first["groupIdentifier"])
	}
	// Another traveller's request still gets the checks first (validation before 403).
	status, problem := h.checkout("intruder", body)
	mustProblem(t, status, problem, 400, "validation")
}

// One invalid entry in a customization's allowedRedirectHosts is skipped, not the whole list.
func TestOneBadRedirectHostIsSkipped(t *testing.T) {
	h := newHarness(t, nil)
	putCustomization(t, "cz-bad-entry", true, []string{"not a host!", "good.partner.example.org"}, "")
	putCart(t, cartSpec{id: "bad-entry", owner: "traveller-hosts", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-hosts", `{"shoppingCartIdentifier":"bad-entry","customizationIdentifier":"cz-bad-entry","redirectUrl":"https://good.partner.example.org/done"}`)
	if !strings.Contains(h.logs.String(), "not a host!") {
		t.Errorf("the skipped entry is not logged")
	}
}

// A paid cart answers cart-already-paid even when the ephemeral key fails.
func TestPaidCartWithFailingEphemeralKey(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "paid-no-key", owner: "traveller-paid-no-key", items: []itemSpec{{amount: "42"}}})
	h.mustCheckout("traveller-paid-no-key", checkoutBody("paid-no-key", ""))
	if err := h.stripe.SetPaymentIntentStatus(str(stateOf(getCart(t, "paid-no-key"))["paymentIntentId"]), "succeeded"); err != nil {
		t.Fatal(err)
	}
	h.stripe.SetUnavailable(func(method, path string) bool { return path == "/v1/ephemeral_keys" })
	status, body := h.checkout("traveller-paid-no-key", checkoutBody("paid-no-key", ""))
	mustProblem(t, status, body, 400, "cart-already-paid")
}

// A checkout started by an earlier version of the function (no lifecycle status, key generation
// or hold in its state, no hold entry) completes after a deploy.
func TestCheckoutStartedByAnEarlierVersionCompletes(t *testing.T) {
	h := newHarness(t, nil)
	group, code := "5f0c2c1e-2b7a-4c39-9d51-legacy000001", "WK-LEGACY01"
	putLegacyCheckout(t, "legacy-state", "traveller-legacy", group, code, time.Now().Add(-time.Hour))
	answer := h.mustCheckout("traveller-legacy", checkoutBody("legacy-state", ""))
	if answer["groupIdentifier"] != group || !slices.Equal(codesOf(answer), []string{code}) {
		t.Errorf("answered %v %v, want the stored group %s and code %s", answer["groupIdentifier"], codesOf(answer), group, code)
	}
	if keys := h.stripe.Calls("POST", "/v1/payment_intents"); len(keys) != 1 || keys[0].IdempotencyKey != "checkout-payment-intent-"+group {
		t.Errorf("PaymentIntent creates %v, want one under the first generation's key", keys)
	}
	checkRecordedSecret(t, h, "legacy-state", answer)
}

// putLegacyCheckout writes a cart CHECKING_OUT as the version before the lifecycle left it: a
// checkout state without status, key generation or hold end, one booking, and no hold.
func putLegacyCheckout(t *testing.T, cartID, owner, group, code string, started time.Time) {
	t.Helper()
	putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "42"}}})
	ctx := context.Background()
	_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                aws.String(tableNames["CartsTable"]),
			Key:                      map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: cartID}},
			UpdateExpression:         aws.String("SET #status = :checkingOut, #checkout = :checkout REMOVE expiresAt"),
			ExpressionAttributeNames: map[string]string{"#status": "status", "#checkout": "checkout"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":checkingOut": &types.AttributeValueMemberS{Value: "CHECKING_OUT"},
				":checkout": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
					"groupIdentifier": &types.AttributeValueMemberS{Value: group},
					"bookingCodes":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: code}}},
					"startedAt":       &types.AttributeValueMemberS{Value: started.UTC().Format(time.RFC3339Nano)},
					"redirectUrl":     &types.AttributeValueMemberS{Value: "https://book.example.com/thanks"},
					"amountMinor":     &types.AttributeValueMemberN{Value: "4200"},
					"currency":        &types.AttributeValueMemberS{Value: "EUR"},
					"expiresAt":       &types.AttributeValueMemberN{Value: "1999999999"},
				}},
			},
		}},
		{Put: &types.Put{TableName: aws.String(tableNames["BookingsTable"]), Item: map[string]types.AttributeValue{
			"bookingCode":            &types.AttributeValueMemberS{Value: code},
			"groupIdentifier":        &types.AttributeValueMemberS{Value: group},
			"shoppingCartIdentifier": &types.AttributeValueMemberS{Value: cartID},
			"status":                 &types.AttributeValueMemberS{Value: "PENDING_PAYMENT"},
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// ---- helpers ----

func updateCart(t *testing.T, id, update string) {
	t.Helper()
	names := map[string]string{}
	for _, n := range []string{"#items", "#identifier", "#total"} {
		if strings.Contains(update, n) {
			names[n] = strings.TrimPrefix(n, "#")
		}
	}
	values := map[string]types.AttributeValue{}
	for name, v := range map[string]types.AttributeValue{
		":zero": &types.AttributeValueMemberN{Value: "0"}, ":minus": &types.AttributeValueMemberN{Value: "-1"},
		":notADate": &types.AttributeValueMemberS{Value: "2027-02-30"}, ":early": &types.AttributeValueMemberS{Value: "2027-02-01"},
	} {
		if strings.Contains(update, name) {
			values[name] = v
		}
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(tableNames["CartsTable"]),
		Key:                      map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: id}},
		UpdateExpression:         aws.String(update),
		ExpressionAttributeNames: names,
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if _, err := db.UpdateItem(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// putMapping stores a traveller's Stripe customer mapping as an earlier checkout would have.
func putMapping(t *testing.T, owner, customerID string) {
	t.Helper()
	_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(tableNames["CustomersTable"]),
		Item: map[string]types.AttributeValue{
			"ownerIdentifier":  &types.AttributeValueMemberS{Value: owner},
			"stripeCustomerId": &types.AttributeValueMemberS{Value: customerID},
			"createdAt":        &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mappingOf(t *testing.T, owner string) testenv.Item {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(tableNames["CustomersTable"]),
		Key:            map[string]types.AttributeValue{"ownerIdentifier": &types.AttributeValueMemberS{Value: owner}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// holdOf reads a checkout's entry in the holds table; nil if it has none.
func holdOf(t *testing.T, group string) testenv.Item {
	t.Helper()
	return holdIn(t, tableNames["HoldsTable"], group)
}

// holdIn reads a checkout's entry in the named holds table; nil if it has none.
func holdIn(t *testing.T, table, group string) testenv.Item {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"groupIdentifier": &types.AttributeValueMemberS{Value: group}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// Two requests of one checkout on different key generations: during a Stripe brownout one
// request moves the key on, a second creates and records the new generation's intent, and a
// third, still on the old generation, creates its intent afterwards. Only the recorded intent's
// secret goes out: the late request reads the cart again and answers the recorded one.
func TestOnlyTheCurrentGenerationsIntentIsRecorded(t *testing.T) {
	h := newHarness(t, nil)
	putCart(t, cartSpec{id: "generations", owner: "traveller-generations", items: []itemSpec{{amount: "42"}}})
	arrived, proceed := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	h.stripe.SetObserve(func(method, path string) {
		if method == "POST" && path == "/v1/payment_intents" && first.CompareAndSwap(false, true) {
			close(arrived) // the first create, the late request's, waits
			<-proceed
		}
	})
	late := make(chan map[string]any, 1)
	go func() {
		status, body := h.checkout("traveller-generations", checkoutBody("generations", ""))
		if status != 200 {
			t.Errorf("the late request answered %d %v", status, body)
		}
		late <- body
	}()
	<-arrived
	// Meanwhile Stripe answers 503 (stripe-go retries it twice): the key moves to generation 2.
	h.stripe.SetUnavailable(func(method, path string) bool { return method == "POST" && path == "/v1/payment_intents" })
	status, body := h.checkout("traveller-generations", checkoutBody("generations", ""))
	mustProblem(t, status, body, 500, "internal")
	h.stripe.SetUnavailable(nil)
	current := h.mustCheckout("traveller-generations", checkoutBody("generations", ""))
	close(proceed) // the late request's generation-1 create now reaches Stripe, and creates an intent
	lateAnswer := <-late
	h.stripe.SetObserve(nil)

	if n := len(h.stripe.PaymentIntents()); n != 2 {
		t.Fatalf("%d PaymentIntents, want the two generations' (the scenario did not happen)", n)
	}
	checkRecordedSecret(t, h, "generations", current)
	if lateAnswer["clientSecret"] != current["clientSecret"] {
		t.Errorf("the late request answered secret %v, the recorded intent's is %v: two secrets are out",
			lateAnswer["clientSecret"], current["clientSecret"])
	}
}
