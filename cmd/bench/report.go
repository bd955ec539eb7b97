package main

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// results is everything bench measured.
type results struct {
	latency       latencies
	webhook       []time.Duration // a payment_intent.succeeded through the webhook's handler
	webhookFloor  []time.Duration // the same DynamoDB calls made directly
	rps           []float64
	allocs        allocs
	cold          coldStarts
	peakRSS       int64
	bootstrapSize int64
	metricLine    time.Duration // one checkout metric line, built and written
	taps          firstTaps     // the first tap under production-like latency
	overload      overloadResult
}

// table writes the results as one Markdown table and tells whether every budget holds.
func (r results) table(w io.Writer, o options) (passed bool) {
	passed = true
	rows := [][]string{{"measure", "value", "budget", "result"}}
	info := func(measure, value string) { rows = append(rows, []string{measure, value, "", ""}) }
	budget := func(measure, value, limit string, ok bool) {
		result := "PASS"
		if !ok {
			result, passed = "FAIL", false
		}
		rows = append(rows, []string{measure, value, limit, result})
	}

	for _, newOwner := range []bool{false, true} {
		who := "returning traveller"
		if newOwner {
			who = "new traveller (Stripe customer created)"
		}
		var p [3][3]time.Duration // [kind][p50, p95, p99]
		var ds [3][]time.Duration // [kind]
		for i, v := range variants {
			if v.newOwner == newOwner {
				ds[v.kind] = r.latency[i]
				p[v.kind] = [3]time.Duration{percentile(ds[v.kind], 0.50), percentile(ds[v.kind], 0.95), percentile(ds[v.kind], 0.99)}
			}
		}
		for k := range kindNames {
			info(fmt.Sprintf("%s, %s: p50 / p95 / p99", kindNames[k], who),
				fmt.Sprintf("%s / %s / %s ms", ms(p[k][0]), ms(p[k][1]), ms(p[k][2])))
		}
		ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
		overFloor := ratio(p[handlerKind][0], p[floorKind][0])
		budget(fmt.Sprintf("handler / floor, %s: p50 (p95, p99; paired)", who),
			fmt.Sprintf("%.3fx (%.3fx, %.3fx; %.3fx)", overFloor, ratio(p[handlerKind][1], p[floorKind][1]),
				ratio(p[handlerKind][2], p[floorKind][2]), pairedRatio(ds[handlerKind], ds[floorKind])),
			fmt.Sprintf("p50 <= %.2fx", maxFloorRatio), overFloor <= maxFloorRatio)
		if !newOwner {
			share := ratio(r.metricLine, p[handlerKind][0])
			budget("metric line (EMF, built and written) / handler p50, returning",
				fmt.Sprintf("%.2f%% (%.1f us of %s ms)", 100*share, float64(r.metricLine.Nanoseconds())/1000, ms(p[handlerKind][0])),
				fmt.Sprintf("< %.0f%%", 100*maxMetricLineShare), share < maxMetricLineShare)
		}
		serialOver := ratio(p[serialKind][0], p[handlerKind][0])
		budget(fmt.Sprintf("serial / handler, %s: p50 (paired)", who),
			fmt.Sprintf("%.3fx (%.3fx): overlap saves %s ms", serialOver, pairedRatio(ds[serialKind], ds[handlerKind]), ms(p[serialKind][0]-p[handlerKind][0])),
			"> 1x", serialOver > 1)
	}

	hp, fp := percentile(r.webhook, 0.5), percentile(r.webhookFloor, 0.5)
	info("webhook (payment_intent.succeeded, 2 bookings) / floor: p50 / p95",
		fmt.Sprintf("%s / %s ms (%s / %s ms)", ms(hp), ms(percentile(r.webhook, 0.95)), ms(fp), ms(percentile(r.webhookFloor, 0.95))))
	budget("webhook / floor: p50 (paired)", fmt.Sprintf("%.3fx (%.3fx)", float64(hp)/float64(fp), pairedRatio(r.webhook, r.webhookFloor)),
		fmt.Sprintf("p50 <= %.2fx", maxFloorRatio), float64(hp)/float64(fp) <= maxFloorRatio)

	sorted := slices.Clone(r.rps)
	slices.Sort(sorted)
	info(fmt.Sprintf("throughput, handler, %d at once (returning)", o.concurrency),
		fmt.Sprintf("%.0f req/s (median of %d batches, %.0f to %.0f)", sorted[len(sorted)/2], len(sorted), sorted[0], sorted[len(sorted)-1]))
	for i, who := range []string{"returning", "new"} {
		h, f := r.allocs.handler[i], r.allocs.floor[i]
		info(fmt.Sprintf("allocations per checkout, %s: handler (floor)", who),
			fmt.Sprintf("%.0f objects, %.0f KiB (%.0f, %.0f KiB)", h.objects, h.bytes/1024, f.objects, f.bytes/1024))
	}
	budget(fmt.Sprintf("peak RSS, local server, %d at once", o.concurrency), mb(r.peakRSS),
		"< "+mb(maxPeakRSSBytes), r.peakRSS < maxPeakRSSBytes)
	budget("bootstrap, linux/arm64, stripped", mb(r.bootstrapSize),
		"< "+mb(maxBootstrapBytes), r.bootstrapSize < maxBootstrapBytes)
	fn, empty := percentile(r.cold.function, 0.5), percentile(r.cold.empty, 0.5)
	info(fmt.Sprintf("cold start to first /next, median of %d: function / empty", len(r.cold.function)),
		fmt.Sprintf("%s / %s ms", ms(fn), ms(empty)))
	budget("init cost: function - empty", ms(fn-empty)+" ms", fmt.Sprintf("<= %s ms", ms(maxInitCost)), fn-empty <= maxInitCost)

	r.taps.rows(info, budget)
	r.overload.rows(info, budget)

	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	line := func(row []string) {
		for i, cell := range row {
			fmt.Fprintf(w, "| %-*s ", width[i], cell)
		}
		fmt.Fprintln(w, "|")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	return passed
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mb(bytes int64) string { return fmt.Sprintf("%.1f MB", float64(bytes)/1e6) }

// bootstrapSize checks that path is a stripped linux/arm64 executable and returns its size.
func bootstrapSize(path string) (int64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w (run `make build` first)", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		return 0, fmt.Errorf("%s is %s, not arm64: run `make build`", path, f.Machine)
	}
	if f.Section(".symtab") != nil {
		return 0, fmt.Errorf("%s is not stripped: run `make build`", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
