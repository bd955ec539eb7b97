package main

import (
	"os"
	"time"

	"github.com/winktravel/checkout/internal/metrics"
)

// maxMetricLineShare is the metric line's budget: under 2% of a checkout's p50.
const maxMetricLineShare = 0.02

// devNull is where the benchmarked functions write their metric lines: a real write, as to
// Lambda's stdout pipe, without the terminal.
func devNull() *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		panic(err) // /dev/null exists on every machine bench runs on
	}
	return f
}

// metricLineCost is the mean time to build, check, encode and write one checkout's metric line
// (the shape the handler writes: two dimension sets, eight metrics) to /dev/null.
func metricLineCost(lines int) time.Duration {
	w := metrics.NewWriter(devNull(), "WinkCheckout")
	steps := []string{"ReadsDuration", "TransactionDuration", "CustomerDuration", "PaymentIntentDuration", "EphemeralKeyDuration", "FinalUpdateDuration"}
	start := time.Now()
	for i := range lines {
		e := w.New([]string{"Function"}, []string{"Function", "Outcome"}).
			Dimension("Function", "wink-checkout-prod-CheckoutFunction-AbCdEf123456").Dimension("Outcome", "ok").
			Count("Checkouts", 1).Duration("Duration", time.Duration(4000+i%100)*time.Microsecond)
		for j, s := range steps {
			e.Duration(s, time.Duration(500+j*100+i%50)*time.Microsecond)
		}
		if err := e.Emit(); err != nil {
			panic(err)
		}
	}
	return time.Since(start) / time.Duration(lines)
}
