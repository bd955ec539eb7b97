package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// The GA4 purchase of a confirmed checkout, through the webhook and the hold releaser, against
// DynamoDB Local, the Stripe layer and the local Measurement Protocol collector, which validates
// each request as GA4's validation server documents.

const ga4IDs = `,"ga4ClientId":"1234567890.1700000000","ga4SessionId":"1700000000","ga4MeasurementId":"` + testenv.GA4MeasurementID + `"`

// mpBody is a Measurement Protocol request body as the collector received it, numbers kept as
// their JSON text.
type mpBody struct {
	ClientID        string      `json:"client_id"`
	TimestampMicros json.Number `json:"timestamp_micros"`
	Events          []struct {
		Name   string `json:"name"`
		Params struct {
			TransactionID      string      `json:"transaction_id"`
			Value              json.Number `json:"value"`
			Currency           string      `json:"currency"`
			SessionID          string      `json:"session_id"`
			EngagementTimeMsec json.Number `json:"engagement_time_msec"`
			Items              []struct {
				ItemID   string      `json:"item_id"`
				ItemName string      `json:"item_name"`
				Price    json.Number `json:"price"`
				Quantity json.Number `json:"quantity"`
			} `json:"items"`
		} `json:"params"`
	} `json:"events"`
}

// onePurchase fails unless the collector received exactly one valid request for group, and
// returns it decoded.
func onePurchase(t *testing.T, c *testenv.GA4Collector, group string) mpBody {
	t.Helper()
	got := c.ReceivedFor(group)
	if len(got) != 1 {
		t.Fatalf("the collector received %d purchases of %s, want 1", len(got), group)
	}
	r := got[0]
	if len(r.Messages) > 0 || r.MeasurementID != testenv.GA4MeasurementID {
		t.Fatalf("the purchase of %s is invalid for %s: %+v", group, r.MeasurementID, r.Messages)
	}
	var body mpBody
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || len(body.Events) != 1 {
		t.Fatalf("purchase body %s: %v", r.Body, err)
	}
	return body
}

func purchaseOf(t *testing.T, cartID string) string {
	t.Helper()
	return str(stateOf(getCart(t, cartID))["purchase"])
}

// releaserWith builds a hold releaser on the harness's tables and Stripe with settings changed
// by overrides, whose clock reads at.
func (h *harness) releaserWith(at time.Time, overrides map[string]string) *app.Releaser {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	settings := func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return h.settings(k)
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := testenv.Releaser(ctx, settings, logger, app.Options{Metrics: h.logs, Now: func() time.Time { return at }})
	if err != nil {
		h.t.Fatalf("build the releaser: %v", err)
	}
	return r
}

// A paid checkout with GA4 ids: one purchase, valid, with the traveller's session, the group as
// transaction, the exact total and one item per booking; recorded on the checkout, its hold gone;
// every later delivery of the event, and the releaser, send nothing more.
func TestPaidCheckoutSendsOnePurchase(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "ga4-paid", owner: "traveller-ga4-paid", items: []itemSpec{{amount: "10.50"}, {amount: "20"}, {amount: "30.25"}}})
	group := h.mustCheckout("traveller-ga4-paid", checkoutBody("ga4-paid", ga4IDs))["groupIdentifier"].(string)
	pi := h.intentOf("ga4-paid", "succeeded")
	if n := len(h.ga4.Received()); n != 0 {
		t.Fatalf("%d purchases sent before the payment", n)
	}

	mustReceive(t, h.deliver(checkout.EventSucceeded, pi))
	body := onePurchase(t, h.ga4, group)
	ev := body.Events[0]
	confirmedAt, err := time.Parse(time.RFC3339Nano, str(stateOf(getCart(t, "ga4-paid"))["confirmedAt"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ field, got, want string }{
		{"client_id", body.ClientID, "1234567890.1700000000"},
		{"timestamp_micros", body.TimestampMicros.String(), fmt.Sprint(confirmedAt.UnixMicro())},
		{"name", ev.Name, "purchase"},
		{"transaction_id", ev.Params.TransactionID, group},
		{"value", ev.Params.Value.String(), "60.75"},
		{"currency", ev.Params.Currency, "EUR"},
		{"session_id", ev.Params.SessionID, "1700000000"},
		{"engagement_time_msec", ev.Params.EngagementTimeMsec.String(), "100"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	rates := map[string]string{} // hotel -> room rate, as booked
	for _, b := range bookingsOfGroup(t, group) {
		rates[str(b["hotelName"])] = str(b["roomRateIdentifier"])
	}
	want := map[string]string{"Hotel 1": "10.50", "Hotel 2": "20.00", "Hotel 3": "30.25"} // hotel -> price
	if len(ev.Params.Items) != len(want) || len(rates) != len(want) {
		t.Fatalf("%d items for %d bookings, want %d", len(ev.Params.Items), len(rates), len(want))
	}
	for _, it := range ev.Params.Items {
		price, ok := want[it.ItemName]
		if !ok || it.ItemID != rates[it.ItemName] || it.Price.String() != price || it.Quantity.String() != "1" {
			t.Errorf("item %+v, want rate %s at %s", it, rates[it.ItemName], price)
		}
		delete(want, it.ItemName)
	}
	if got := purchaseOf(t, "ga4-paid"); got != "SENT" {
		t.Errorf("the checkout's purchase is %q, want SENT", got)
	}
	if hold := holdIn(t, h.settings("HOLDS_TABLE"), group); hold != nil {
		t.Errorf("a sent purchase keeps its entry %v", hold)
	}

	// Stripe delivers the event again, ten times at once; the releaser runs later.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { mustReceive(t, h.deliver(checkout.EventSucceeded, pi)) })
	}
	wg.Wait()
	sweep := runReleaser(t, h.releaser(time.Now().Add(time.Hour)))
	if n := len(h.ga4.ReceivedFor(group)); n != 1 || sweep.PurchasesSent != 0 {
		t.Errorf("%d purchases received, %d sent by the releaser: want 1 and 0", n, sweep.PurchasesSent)
	}
}

// The total and the prices reach GA4 as the exact decimals of the cart, in the currency's
// decimals: no float64 on the way.
func TestPurchaseValueIsExact(t *testing.T) {
	tests := []struct {
		currency string
		amounts  []string
		value    string
		prices   []string
	}{
		{"JPY", []string{"1000", "500"}, "1500", []string{"1000", "500"}},
		{"KWD", []string{"1.5", "0.23"}, "1.730", []string{"1.500", "0.230"}},
		{"EUR", []string{"0.1", "0.45"}, "0.55", []string{"0.10", "0.45"}},
	}
	h := newHarness(t, nil)
	for _, tc := range tests {
		t.Run(tc.currency, func(t *testing.T) {
			cartID, owner := "ga4-exact-"+tc.currency, "traveller-ga4-exact-"+tc.currency
			spec := cartSpec{id: cartID, owner: owner, currency: tc.currency}
			for _, a := range tc.amounts {
				spec.items = append(spec.items, itemSpec{amount: a})
			}
			putCart(t, spec)
			group := h.mustCheckout(owner, checkoutBody(cartID, ga4IDs))["groupIdentifier"].(string)
			mustReceive(t, h.deliver(checkout.EventSucceeded, h.intentOf(cartID, "succeeded")))
			onePurchase(t, h.ga4, group)
			raw := string(h.ga4.ReceivedFor(group)[0].Body)
			if want := `"value":` + tc.value + `,"currency":"` + tc.currency + `"`; !strings.Contains(raw, want) {
				t.Errorf("body %s lacks %s", raw, want)
			}
			for _, p := range tc.prices {
				if !strings.Contains(raw, `"price":`+p+`,`) {
					t.Errorf("body %s lacks the price %s", raw, p)
				}
			}
		})
	}
}

// No purchase without a client id or a measurement id; none for a measurement id without an
// API secret, which is recorded SKIPPED and counted in the webhook's line.
func TestPurchaseOnlyWithKnownIDs(t *testing.T) {
	tests := []struct {
		name, ids, recorded, logged string
	}{
		{"no GA4 ids", "", "", ""},
		{"no client id", `,"ga4MeasurementId":"` + testenv.GA4MeasurementID + `"`, "", ""},
		{"no measurement id", `,"ga4ClientId":"1234567890.1700000000"`, "", ""},
		{"unknown measurement id", `,"ga4ClientId":"1234567890.1700000000","ga4MeasurementId":"G-UNKNOWN123"`, "SKIPPED", `"purchase":"skipped"`},
	}
	h := newHarness(t, nil)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cartID, owner := fmt.Sprintf("ga4-ids-%d", i), fmt.Sprintf("traveller-ga4-ids-%d", i)
			putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "25"}}})
			group := h.mustCheckout(owner, checkoutBody(cartID, tc.ids))["groupIdentifier"].(string)
			mustReceive(t, h.deliver(checkout.EventSucceeded, h.intentOf(cartID, "succeeded")))
			if n := len(h.ga4.ReceivedFor(group)); n != 0 {
				t.Errorf("%d purchases sent", n)
			}
			if got := purchaseOf(t, cartID); got != tc.recorded {
				t.Errorf("the checkout's purchase is %q, want %q", got, tc.recorded)
			}
			if hold := holdIn(t, h.settings("HOLDS_TABLE"), group); hold != nil {
				t.Errorf("the confirmed checkout keeps an entry %v", hold)
			}
			if tc.logged != "" && !strings.Contains(h.logs.String(), tc.logged) {
				t.Errorf("the webhook's line does not count %s", tc.logged)
			}
		})
	}
}

// The collector slow, failing or down: the webhook still confirms and answers 200 (its attempt
// is cut off long before the collector answers), the purchase stays pending, and the next
// releaser run past its retry sends it once; later runs send nothing more.
func TestPurchaseRetriedByTheReleaser(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(h *harness) (restore map[string]string)
	}{
		{"collector slow", func(h *harness) map[string]string { h.ga4.Hang(); return nil }},
		{"collector failing", func(h *harness) map[string]string { h.ga4.FailWith(503); return nil }},
		{"collector down", func(h *harness) map[string]string {
			h.ga4.Close()
			next, err := testenv.StartGA4Collector(map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret})
			if err != nil {
				h.t.Fatal(err)
			}
			h.t.Cleanup(next.Close)
			h.ga4 = next
			return map[string]string{"GA4_ENDPOINT": next.Endpoint()}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := holdHarness(t)
			cartID, owner := fmt.Sprintf("ga4-retry-%d", i), fmt.Sprintf("traveller-ga4-retry-%d", i)
			putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "80"}, {amount: "40"}}})
			group := h.mustCheckout(owner, checkoutBody(cartID, ga4IDs))["groupIdentifier"].(string)
			pi := h.intentOf(cartID, "succeeded")
			h.webhook() // built while the collector is up
			overrides := tc.breakIt(h)

			mustReceive(t, h.deliver(checkout.EventSucceeded, pi)) // returns while a hanging collector still holds the request
			checkConfirmed := func() {
				if s := str(stateOf(getCart(t, cartID))["status"]); s != "CONFIRMED" {
					t.Fatalf("the checkout is %s, want CONFIRMED", s)
				}
			}
			checkConfirmed()
			if got := purchaseOf(t, cartID); got != "PENDING" {
				t.Fatalf("the checkout's purchase is %q, want PENDING", got)
			}
			hold := holdIn(t, h.settings("HOLDS_TABLE"), group)
			if hold == nil || str(hold["purchase"]) != "true" {
				t.Fatalf("the pending purchase has no entry for the releaser: %v", hold)
			}
			if !strings.Contains(h.logs.String(), `"purchase":"failed"`) {
				t.Error("the webhook's line does not say the purchase failed")
			}
			h.ga4.Release()
			h.ga4.FailWith(0)
			if n := len(h.ga4.ReceivedFor(group)); n != 0 {
				t.Fatalf("%d purchases received while the collector was broken", n)
			}

			// A run before the retry is due leaves it; the first run after sends it.
			if sweep := runReleaser(t, h.releaserWith(time.Now().Add(30*time.Second), overrides)); sweep.PurchasesSent != 0 {
				t.Errorf("a run before the retry sent %d purchases", sweep.PurchasesSent)
			}
			sweep := runReleaser(t, h.releaserWith(time.Now().Add(2*time.Minute), overrides))
			if sweep.PurchasesSent != 1 || sweep.Released+sweep.Confirmed != 0 {
				t.Errorf("the releaser's run %+v, want one purchase sent and no move", sweep)
			}
			onePurchase(t, h.ga4, group)
			if got := purchaseOf(t, cartID); got != "SENT" {
				t.Errorf("the checkout's purchase is %q, want SENT", got)
			}
			if hold := holdIn(t, h.settings("HOLDS_TABLE"), group); hold != nil {
				t.Errorf("a sent purchase keeps its entry %v", hold)
			}
			runReleaser(t, h.releaserWith(time.Now().Add(time.Hour), overrides))
			mustReceive(t, h.deliver(checkout.EventSucceeded, pi))
			onePurchase(t, h.ga4, group)
			checkConfirmed()
			if strings.Contains(h.logs.String(), testenv.GA4APISecret) {
				t.Error("the GA4 API secret reached the logs")
			}
		})
	}
}

// A purchase GA4 kept refusing is given up once its payment is older than GA4 takes events, and
// counted; a checkout the releaser itself finds paid is confirmed and its purchase sent.
func TestReleaserGivesUpOrSendsPurchases(t *testing.T) {
	h := holdHarness(t)
	putCart(t, cartSpec{id: "ga4-old", owner: "traveller-ga4-old", items: []itemSpec{{amount: "30"}}})
	old := h.mustCheckout("traveller-ga4-old", checkoutBody("ga4-old", ga4IDs))["groupIdentifier"].(string)
	h.ga4.FailWith(500)
	mustReceive(t, h.deliver(checkout.EventSucceeded, h.intentOf("ga4-old", "succeeded")))
	h.ga4.FailWith(0)

	putCart(t, cartSpec{id: "ga4-missed", owner: "traveller-ga4-missed", items: []itemSpec{{amount: "45"}}})
	missed := h.mustCheckout("traveller-ga4-missed", checkoutBody("ga4-missed", ga4IDs))["groupIdentifier"].(string)
	h.intentOf("ga4-missed", "succeeded") // paid, but its event never arrives

	later := time.Now().Add(72 * time.Hour)
	h.ga4.SetClock(func() time.Time { return later }) // GA4 sees the releaser's confirmation as recent
	sweep := runReleaser(t, h.releaser(later))
	if sweep.PurchasesAbandoned != 1 || sweep.Confirmed != 1 || sweep.PurchasesSent != 1 {
		t.Errorf("the run %+v, want one purchase abandoned, one checkout confirmed and its purchase sent", sweep)
	}
	if n := len(h.ga4.ReceivedFor(old)); n != 0 {
		t.Errorf("a purchase past GA4's window was sent %d times", n)
	}
	if got := purchaseOf(t, "ga4-old"); got != "ABANDONED" {
		t.Errorf("the old checkout's purchase is %q, want ABANDONED", got)
	}
	onePurchase(t, h.ga4, missed)
	if got := purchaseOf(t, "ga4-missed"); got != "SENT" {
		t.Errorf("the purchase of the checkout the releaser confirmed is %q, want SENT", got)
	}
	for _, g := range []string{old, missed} {
		if hold := holdIn(t, h.settings("HOLDS_TABLE"), g); hold != nil {
			t.Errorf("group %s keeps an entry %v", g, hold)
		}
	}
}

// The largest checkout's purchase stays within the Measurement Protocol's limits: 98 items whose
// hotel names and room rates are longer than GA4 takes are cut to 100 characters, and the body
// stays under 130 kB.
func TestLargestPurchaseWithinLimits(t *testing.T) {
	h := newHarness(t, nil)
	long := strings.Repeat("Hôtel Ünïcode & Spa ", 8) // 160 characters, many of two bytes
	cart := sample.Cart{ID: "ga4-largest", Owner: "traveller-ga4-largest", Currency: "EUR", ExpiresAt: time.Now().Add(time.Hour)}
	for range checkout.MaxItems {
		cart.Items = append(cart.Items, sample.Item{HotelName: long, Amount: "123.45"})
	}
	if err := sample.PutCart(context.Background(), db, tableNames["CartsTable"], cart); err != nil {
		t.Fatal(err)
	}
	group := h.mustCheckout(cart.Owner, checkoutBody(cart.ID, ga4IDs))["groupIdentifier"].(string)
	mustReceive(t, h.deliver(checkout.EventSucceeded, h.intentOf(cart.ID, "succeeded")))
	body := onePurchase(t, h.ga4, group)
	items := body.Events[0].Params.Items
	if len(items) != checkout.MaxItems || body.Events[0].Params.Value.String() != "12098.10" {
		t.Errorf("%d items worth %s, want %d worth 12098.10", len(items), body.Events[0].Params.Value, checkout.MaxItems)
	}
	if want := []rune(long)[:100]; len(items) > 0 && items[0].ItemName != string(want) {
		t.Errorf("item_name %q, want the first 100 characters of the hotel's name", items[0].ItemName)
	}
	if n := len(h.ga4.ReceivedFor(group)[0].Body); n > 130_000 {
		t.Errorf("the body is %d bytes", n)
	}
}

// The GA4 API secrets from Secrets Manager; a secret that cannot be read, or is not the
// documented JSON, never fails the webhook's cold start nor a confirmation: the purchase waits,
// pending, for a cold start that can read it.
func TestGA4SecretsFromSecretsManager(t *testing.T) {
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, value string) string {
		out, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(name + time.Now().Format("150405.000000")), SecretString: aws.String(value),
		})
		if err != nil {
			t.Fatalf("create secret: %v", err)
		}
		return aws.ToString(out.ARN)
	}
	tests := []struct {
		name, arn, purchase string
	}{
		{"readable", create("checkout/ga4-", `{"`+testenv.GA4MeasurementID+`":"`+testenv.GA4APISecret+`"}`), "SENT"},
		{"missing", "arn:aws:secretsmanager:us-east-1:123456789012:secret:ga4-does-not-exist-AbCdEf", "PENDING"},
		{"not the JSON", create("checkout/ga4-bad-", "G-XHFTY1BDSD=s3cr3t-value"), "PENDING"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := holdHarness(t)
			hook := h.settings
			h.settings = func(k string) string {
				switch k {
				case "GA4_API_SECRETS_ARN":
					return tc.arn
				case "GA4_API_SECRETS":
					return ""
				}
				return hook(k)
			}
			cartID, owner := fmt.Sprintf("ga4-secret-%d", i), fmt.Sprintf("traveller-ga4-secret-%d", i)
			putCart(t, cartSpec{id: cartID, owner: owner, items: []itemSpec{{amount: "33"}}})
			group := h.mustCheckout(owner, checkoutBody(cartID, ga4IDs))["groupIdentifier"].(string)
			mustReceive(t, h.deliver(checkout.EventSucceeded, h.intentOf(cartID, "succeeded")))
			if s := str(stateOf(getCart(t, cartID))["status"]); s != "CONFIRMED" {
				t.Fatalf("the checkout is %s, want CONFIRMED", s)
			}
			if got := purchaseOf(t, cartID); got != tc.purchase {
				t.Errorf("the purchase is %q, want %q", got, tc.purchase)
			}
			if n := len(h.ga4.ReceivedFor(group)); (tc.purchase == "SENT") != (n == 1) {
				t.Errorf("%d purchases received", n)
			}
			if strings.Contains(h.logs.String(), "s3cr3t") || strings.Contains(h.logs.String(), testenv.GA4APISecret) {
				t.Error("a GA4 secret reached the logs")
			}
		})
	}
}
