package checkout

import (
	"strings"
	"testing"
)

func TestPaymentIntentMetadataStaysWithinStripeLimits(t *testing.T) {
	codes := make([]string, MaxItems)
	for i := range codes {
		codes[i] = NewBookingCode()
	}
	req := paymentIntentRequest("cart-1", State{GroupIdentifier: "g-1", BookingCodes: codes, GA4ClientID: "1.2", CustomerID: "cus_1"})
	var joined []string
	for i := 1; ; i++ {
		key := "bookingCodes"
		if i > 1 {
			key += string(rune('0' + i))
		}
		v, ok := req.Metadata[key]
		if !ok {
			break
		}
		if len(v) > metadataValueLimit {
			t.Errorf("%s is %d characters", key, len(v))
		}
		joined = append(joined, v)
	}
	if got := strings.Join(joined, ","); got != strings.Join(codes, ",") {
		t.Errorf("booking codes across metadata keys do not add up to the cart's codes")
	}
	if len(req.Metadata) > 50 {
		t.Errorf("%d metadata keys", len(req.Metadata))
	}
	if _, ok := req.Metadata["ga4SessionId"]; ok {
		t.Errorf("absent GA4 field sent")
	}
	if req.IdempotencyKey != "checkout-payment-intent-g-1" {
		t.Errorf("idempotency key %q", req.IdempotencyKey)
	}
}

func TestValidDescriptorSuffix(t *testing.T) {
	for suffix, want := range map[string]bool{
		"WINK PARTNER":            true,
		"A1":                      true,
		"1234":                    false, // no letter
		"TWENTY-THREE CHARACTERS": false,
		"BAD*STAR":                false,
		`QUOTE"`:                  false,
		"ÜBER":                    false,
		"TAB\tX":                  false,
	} {
		if got := validDescriptorSuffix(suffix); got != want {
			t.Errorf("validDescriptorSuffix(%q) = %v, want %v", suffix, got, want)
		}
	}
}
