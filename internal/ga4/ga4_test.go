package ga4_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/ga4"
	"github.com/winktravel/checkout/internal/testenv"
)

func purchase() checkout.Purchase {
	return checkout.Purchase{
		MeasurementID: testenv.GA4MeasurementID, ClientID: "1234567890.1700000000", SessionID: "1700000000",
		TransactionID: "group-1", At: time.Now().Add(-time.Minute), Value: "1.730", Currency: "KWD",
		Items: []checkout.PurchaseItem{{ID: "rate-1", Name: "Hotel <Lisboa> & Spa", Price: "1.500"}, {ID: "rate-2", Name: "Hotel 2", Price: "0.230"}},
	}
}

func startCollector(t *testing.T) *testenv.GA4Collector {
	t.Helper()
	c, err := testenv.StartGA4Collector(map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// The body is the Measurement Protocol's, with the exact decimals as JSON numbers, and the
// collector finds it valid.
func TestSendPurchase(t *testing.T) {
	c := startCollector(t)
	client := ga4.New(c.Endpoint(), map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret}, nil)
	p := purchase()
	if err := client.SendPurchase(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got := c.Received()
	if len(got) != 1 || len(got[0].Messages) > 0 {
		t.Fatalf("received %+v, want one valid request", got)
	}
	body := string(got[0].Body)
	for _, want := range []string{
		`"client_id":"1234567890.1700000000"`, `"name":"purchase"`, `"transaction_id":"group-1"`,
		`"value":1.730,"currency":"KWD","session_id":"1700000000","engagement_time_msec":100`,
		`{"item_id":"rate-1","item_name":"Hotel <Lisboa> & Spa","price":1.500,"quantity":1}`,
		`"timestamp_micros":` + strconv.FormatInt(p.At.UnixMicro(), 10),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
}

// An unknown measurement id sends nothing; a failure's text never carries the API secret.
func TestSendPurchaseFailures(t *testing.T) {
	c := startCollector(t)
	secrets := map[string]string{testenv.GA4MeasurementID: testenv.GA4APISecret}
	p := purchase()
	p.MeasurementID = "G-OTHER1234"
	if err := ga4.New(c.Endpoint(), secrets, nil).SendPurchase(context.Background(), p); !errors.Is(err, checkout.ErrUnknownMeasurement) {
		t.Errorf("unknown measurement id: %v, want ErrUnknownMeasurement", err)
	}
	if n := len(c.Received()); n != 0 {
		t.Errorf("%d requests sent for an unknown measurement id", n)
	}

	c.FailWith(503)
	err := ga4.New(c.Endpoint(), secrets, nil).SendPurchase(context.Background(), purchase())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a 503: %v", err)
	}
	c.FailWith(0)
	c.Hang()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	slow := ga4.New(c.Endpoint(), secrets, nil).SendPurchase(ctx, purchase())
	c.Release()
	c.Close()
	down := ga4.New(c.Endpoint(), secrets, nil).SendPurchase(context.Background(), purchase())
	for name, err := range map[string]error{"slow": slow, "down": down} {
		if err == nil || strings.Contains(err.Error(), testenv.GA4APISecret) || strings.Contains(err.Error(), "api_secret") {
			t.Errorf("%s: %v, want an error without the secret", name, err)
		}
	}
}

// A purchase over 130 kB is refused before it is sent.
func TestBodyLimit(t *testing.T) {
	p := purchase()
	p.Items = nil
	for range 400 {
		p.Items = append(p.Items, checkout.PurchaseItem{ID: strings.Repeat("r", 100), Name: strings.Repeat("\u00e9", 100), Price: "1.000"})
	}
	if _, err := ga4.Body(p); err == nil {
		t.Error("a body over 130 kB was built")
	}
}

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true},
		{`{}`, 0, true},
		{`{"G-XHFTY1BDSD":"s1","G-ABCD1234":"s2"}`, 2, true},
		{`{"G-XHFTY1BDSD":""}`, 0, false},
		{`{"s3cr3t-value":"G-XHFTY1BDSD"}`, 0, false},
		{`["G-XHFTY1BDSD"]`, 0, false},
		{`s3cr3t-value`, 0, false},
	}
	for _, tc := range tests {
		got, err := ga4.ParseSecrets(tc.in)
		if (err == nil) != tc.ok || len(got) != tc.want {
			t.Errorf("ParseSecrets(%q) = %v, %v", tc.in, len(got), err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseSecrets(%q): the error shows the secret: %v", tc.in, err)
		}
	}
}
