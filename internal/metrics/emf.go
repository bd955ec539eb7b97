// Package metrics writes CloudWatch metrics in the Embedded Metric Format (EMF): one JSON log
// line per request or run, which CloudWatch Logs turns into metrics, with no API call and no
// agent. No maintained Go library for EMF exists; this one keeps to the specification's limits
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
// and refuses, rather than writes, a line CloudWatch would reject.
package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units used here (CloudWatch knows more).
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Seconds      Unit = "Seconds"
)

// The specification's limits.
const (
	MaxMetrics          = 100  // metric definitions in one directive
	MaxDimensionsPerSet = 30   // dimension names in one dimension set
	MaxNameChars        = 255  // a metric or dimension name, a namespace
	MaxDimensionValue   = 1024 // a dimension value's characters
	// CloudWatch rejects values of magnitude beyond 2^360 or, other than zero, below 2^-260.
	maxMagnitude = 0x1p360
	minMagnitude = 0x1p-260
)

// Writer writes metric lines to w (the function's stdout, which Lambda sends to CloudWatch Logs),
// one Write per line, so that lines from concurrent requests never interleave.
type Writer struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	now       func() time.Time
}

// NewWriter returns a Writer of namespace to w.
func NewWriter(w io.Writer, namespace string) *Writer {
	return &Writer{w: w, namespace: namespace, now: time.Now}
}

// Entry is one metric line: its dimensions (each with one value), the dimension sets its metrics
// are published under, the metrics, and properties (searchable in Logs Insights, not metrics).
type Entry struct {
	w          *Writer
	dims       map[string]string
	sets       [][]string
	metrics    []definition
	values     map[string]float64
	properties map[string]any
}

type definition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

// New starts an entry whose metrics are published under each of sets (dimension names).
func (w *Writer) New(sets ...[]string) *Entry {
	if sets == nil {
		sets = [][]string{} // "Dimensions": [], never null
	}
	return &Entry{w: w, dims: map[string]string{}, sets: sets, values: map[string]float64{}, properties: map[string]any{}}
}

// Dimension sets a dimension's value.
func (e *Entry) Dimension(name, value string) *Entry {
	e.dims[name] = value
	return e
}

// Add adds v to the metric name (defined once, with its first unit).
func (e *Entry) Add(name string, unit Unit, v float64) *Entry {
	if _, ok := e.values[name]; !ok {
		e.metrics = append(e.metrics, definition{Name: name, Unit: unit})
	}
	e.values[name] += v
	return e
}

// Count adds n to a count.
func (e *Entry) Count(name string, n int) *Entry { return e.Add(name, Count, float64(n)) }

// Duration records d, in milliseconds.
func (e *Entry) Duration(name string, d time.Duration) *Entry {
	return e.Add(name, Milliseconds, float64(d.Microseconds())/1000)
}

// Property sets a value carried on the line that is neither a metric nor a dimension.
func (e *Entry) Property(name string, v any) *Entry {
	e.properties[name] = v
	return e
}

// Emit checks the entry against the specification's limits and writes it as one line.
func (e *Entry) Emit() error {
	line, err := e.Marshal()
	if err != nil {
		return err
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	_, err = e.w.w.Write(line)
	return err
}

// Marshal returns the entry's line (ending in a newline), or why CloudWatch would reject it.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	root := make(map[string]any, len(e.dims)+len(e.values)+len(e.properties)+1)
	for k, v := range e.properties {
		root[k] = v
	}
	for k, v := range e.dims {
		root[k] = v
	}
	for k, v := range e.values {
		root[k] = v
	}
	root["_aws"] = map[string]any{
		"Timestamp": e.w.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": e.w.namespace, "Dimensions": e.sets, "Metrics": e.metrics,
		}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("metrics: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func (e *Entry) check() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf("metrics: "+format, args...)) }
	if !validName(e.w.namespace) {
		fail("namespace %q: 1 to %d characters", e.w.namespace, MaxNameChars)
	}
	if len(e.metrics) == 0 {
		fail("no metric")
	}
	if len(e.metrics) > MaxMetrics {
		fail("%d metrics, over %d", len(e.metrics), MaxMetrics)
	}
	for _, set := range e.sets {
		if len(set) > MaxDimensionsPerSet {
			fail("a dimension set of %d, over %d", len(set), MaxDimensionsPerSet)
		}
		for _, name := range set {
			v, ok := e.dims[name]
			switch {
			case !ok:
				fail("dimension %q has no value", name)
			case !printable(v, MaxDimensionValue):
				fail("dimension %q: a value of 1 to %d printable ASCII characters, not all spaces", name, MaxDimensionValue)
			}
		}
	}
	for name := range e.dims {
		if !validName(name) || name == "_aws" {
			fail("dimension name %q", name)
		}
	}
	for _, m := range e.metrics {
		v := e.values[m.Name]
		if !validName(m.Name) || m.Name == "_aws" {
			fail("metric name %q", m.Name)
		}
		if _, clash := e.dims[m.Name]; clash {
			fail("%q is both a metric and a dimension", m.Name)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > maxMagnitude || v != 0 && math.Abs(v) < minMagnitude {
			fail("metric %q: %v is not a value CloudWatch takes", m.Name, v)
		}
	}
	return errors.Join(errs...)
}

// validName: 1 to 255 printable ASCII characters, not all spaces, not starting with a colon (the
// specification's rule for names, and CloudWatch's for dimension values).
func validName(s string) bool { return printable(s, MaxNameChars) && s[0] != ':' }

// printable: 1 to max printable ASCII characters, not all spaces.
func printable(s string, max int) bool {
	if s == "" || len(s) > max || strings.TrimSpace(s) == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Decoded is a metric line as CloudWatch reads it.
type Decoded struct {
	Namespace  string
	Timestamp  time.Time
	Sets       [][]string
	Dimensions map[string]string  // every dimension a set names, with its value
	Metrics    map[string]float64 // every metric the directive defines, with its value
	Units      map[string]Unit
	Root       map[string]any // the whole line
}

// Decode reads one line as the specification says CloudWatch does, and fails where CloudWatch
// would drop it: _aws with a millisecond Timestamp and one CloudWatchMetrics directive whose
// dimension sets name top-level strings and whose metrics name top-level numbers.
func Decode(line []byte) (Decoded, error) {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return Decoded{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string       `json:"Namespace"`
			Dimensions [][]string   `json:"Dimensions"`
			Metrics    []definition `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, _ := json.Marshal(root["_aws"])
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Timestamp == nil {
		return Decoded{}, fmt.Errorf("no _aws with a Timestamp: %s", raw)
	}
	if len(meta.CloudWatchMetrics) != 1 {
		return Decoded{}, fmt.Errorf("%d directives, want 1", len(meta.CloudWatchMetrics))
	}
	d := meta.CloudWatchMetrics[0]
	out := Decoded{Namespace: d.Namespace, Timestamp: time.UnixMilli(*meta.Timestamp), Sets: d.Dimensions,
		Dimensions: map[string]string{}, Metrics: map[string]float64{}, Units: map[string]Unit{}, Root: root}
	if !validName(d.Namespace) || d.Dimensions == nil || len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
		return Decoded{}, fmt.Errorf("directive %+v: a namespace, dimension sets and 1 to %d metrics", d, MaxMetrics)
	}
	for _, set := range d.Dimensions {
		if len(set) > MaxDimensionsPerSet {
			return Decoded{}, fmt.Errorf("a dimension set of %d", len(set))
		}
		for _, name := range set {
			v, ok := root[name].(string)
			if !ok || v == "" {
				return Decoded{}, fmt.Errorf("dimension %q is not a top-level string", name)
			}
			out.Dimensions[name] = v
		}
	}
	for _, m := range d.Metrics {
		n, ok := root[m.Name].(json.Number)
		if !ok {
			return Decoded{}, fmt.Errorf("metric %q is not a top-level number", m.Name)
		}
		v, err := n.Float64()
		if err != nil {
			return Decoded{}, fmt.Errorf("metric %q: %w", m.Name, err)
		}
		out.Metrics[m.Name], out.Units[m.Name] = v, m.Unit
	}
	return out, nil
}

// DecodeAll decodes the metric lines among log lines (those with an _aws member), in order.
func DecodeAll(logs []byte) ([]Decoded, error) {
	var out []Decoded
	for _, line := range bytes.Split(logs, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"_aws"`)) {
			continue
		}
		d, err := Decode(line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, line)
		}
		out = append(out, d)
	}
	return out, nil
}
