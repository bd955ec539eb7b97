package httpapi_test

import (
	"context"
	"testing"

	"github.com/winktravel/checkout/internal/checkout"
)

// BenchmarkHandle measures the HTTP layer alone: event decoding, validation, the call to the use
// case (a fake answering at once) and response encoding.
func BenchmarkHandle(b *testing.B) {
	f := &fakeCheckout{result: checkout.Result{ClientSecret: "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH", EphemeralKey: "ek_test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4LEVMT0hSdz", CustomerID: "cus_NffrFeUfNV2Hib", GroupIdentifier: "8d3b0c1e-4d5f-4a6b-9c7d-0e1f2a3b4c5d", BookingCodes: []string{"WK-7F3K9Q2M", "WK-P4D8XH1C", "WK-A1B2C3D4"}}}
	h := newRawHandler(f, false)
	ev := event(`{"shoppingCartIdentifier":"8d3b0c1e-1111-4222-8333-444455556666","customizationIdentifier":"cz-1","redirectUrl":"https://book.example.com/thanks","ga4ClientId":"1234567890.1700000000","ga4SessionId":"1700000000","ga4MeasurementId":"G-XHFTY1BDSD"}`, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := h.Handle(ctx, ev)
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkHandleInvalid measures a request refused by validation (every field broken).
func BenchmarkHandleInvalid(b *testing.B) {
	h := newRawHandler(&fakeCheckout{}, false)
	ev := event(`{"shoppingCartIdentifier":"a b","redirectUrl":"http://book.example.com","ga4ClientId":"abc","ga4SessionId":"12a","ga4MeasurementId":"UA-1"}`, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := h.Handle(ctx, ev)
		if resp.StatusCode != 400 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
