package metrics

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestEntryIsWhatCloudWatchReads(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, "Checkout")
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return at }
	err := w.New([]string{"Function"}, []string{"Function", "Outcome"}).
		Dimension("Function", "checkout").Dimension("Outcome", "cart-not-found").
		Count("Checkouts", 1).Duration("Duration", 1500*time.Microsecond).Duration("Duration", 500*time.Microsecond).
		Property("requestId", "r-1").Emit()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(out.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", out.String())
	}
	d, err := Decode(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if d.Namespace != "Checkout" || !d.Timestamp.Equal(at) || len(d.Sets) != 2 || d.Dimensions["Outcome"] != "cart-not-found" {
		t.Errorf("decoded %+v", d)
	}
	if d.Metrics["Checkouts"] != 1 || d.Metrics["Duration"] != 2 || d.Units["Duration"] != Milliseconds || d.Units["Checkouts"] != Count {
		t.Errorf("metrics %v, units %v: want Checkouts 1 Count, Duration 2 ms (summed)", d.Metrics, d.Units)
	}
	if d.Root["requestId"] != "r-1" {
		t.Errorf("property lost: %v", d.Root)
	}
}

// Every limit of the specification is enforced: nothing CloudWatch would drop is written.
func TestLimitsAreEnforced(t *testing.T) {
	w := NewWriter(&bytes.Buffer{}, "Checkout")
	long := strings.Repeat("x", MaxDimensionValue+1)
	tests := map[string]*Entry{
		"no metric":               w.New([]string{"F"}).Dimension("F", "f"),
		"101 metrics":             manyMetrics(w, MaxMetrics+1),
		"31 dimensions in a set":  manyDimensions(w, MaxDimensionsPerSet+1),
		"a dimension not set":     w.New([]string{"F"}).Count("N", 1),
		"an empty dimension":      w.New([]string{"F"}).Dimension("F", "").Count("N", 1),
		"a dimension too long":    w.New([]string{"F"}).Dimension("F", long).Count("N", 1),
		"NaN":                     w.New([]string{}).Add("N", Count, math.NaN()),
		"infinity":                w.New([]string{}).Add("N", Count, math.Inf(1)),
		"too large":               w.New([]string{}).Add("N", Count, 0x1p361),
		"too small":               w.New([]string{}).Add("N", Count, 0x1p-261),
		"a name too long":         w.New([]string{}).Count(strings.Repeat("n", MaxNameChars+1), 1),
		"a metric as a dimension": w.New([]string{"N"}).Dimension("N", "x").Count("N", 1),
		"the _aws name":           w.New([]string{}).Count("_aws", 1),
		"a bad namespace":         NewWriter(&bytes.Buffer{}, "").New([]string{}).Count("N", 1),
		"a non-ASCII value":       w.New([]string{"F"}).Dimension("F", "café").Count("N", 1),
		"a blank value":           w.New([]string{"F"}).Dimension("F", "   ").Count("N", 1),
		"a control character":     w.New([]string{"F"}).Dimension("F", "a\nb").Count("N", 1),
		"a non-ASCII name":        w.New([]string{}).Count("Durée", 1),
	}
	for name, e := range tests {
		if _, err := e.Marshal(); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if _, err := manyMetrics(w, MaxMetrics).Marshal(); err != nil {
		t.Errorf("100 metrics refused: %v", err)
	}
	if _, err := manyDimensions(w, MaxDimensionsPerSet).Marshal(); err != nil {
		t.Errorf("30 dimensions refused: %v", err)
	}
	line, err := w.New().Count("N", 1).Marshal() // no dimension set: "Dimensions": [], which Decode takes
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(line); err != nil {
		t.Errorf("a line without dimensions: %v: %s", err, line)
	}
}

func manyMetrics(w *Writer, n int) *Entry {
	e := w.New([]string{})
	for i := range n {
		e.Count("M"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 1)
	}
	return e
}

func manyDimensions(w *Writer, n int) *Entry {
	e := w.New()
	var set []string
	for i := range n {
		name := "D" + strings.Repeat("x", i)
		set = append(set, name)
		e.Dimension(name, "v")
	}
	e.sets = [][]string{set}
	return e.Count("N", 1)
}

// Decode refuses what CloudWatch would drop, so that tests reading lines through it can fail.
func TestDecodeRefusesBrokenLines(t *testing.T) {
	for _, line := range []string{
		`not json`,
		`{"N":1}`,
		`{"_aws":{"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[[]],"Metrics":[{"Name":"N"}]}]},"N":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[["F"]],"Metrics":[{"Name":"N"}]}]},"N":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[[]],"Metrics":[{"Name":"N"}]}]},"N":"1"}`,
	} {
		if _, err := Decode([]byte(line)); err == nil {
			t.Errorf("decoded %s", line)
		}
	}
}
