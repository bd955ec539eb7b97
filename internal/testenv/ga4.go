package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// GA4MeasurementID and GA4APISecret are the local stream's: the sample events' measurement id,
// with a secret that is not one (GA4_API_SECRETS of tests and make run).
const (
	GA4MeasurementID = "G-XHFTY1BDSD"
	GA4APISecret     = "local-ga4-api-secret"
)

// GA4Collector is a local Measurement Protocol endpoint for tests and make run. It checks every
// request the way GA4's validation server (/debug/mp/collect) documents (required fields, names,
// limits), and records it. On /mp/collect it answers 204 to anything, as GA4 does; on
// /debug/mp/collect it answers the validation messages. GET /received lists what it recorded.
// Beyond GA4, it refuses (records as invalid) an api_secret that is not its stream's.
type GA4Collector struct {
	url     string
	srv     *http.Server
	secrets map[string]string

	mu       sync.Mutex
	now      func() time.Time // the clock timestamps are checked against
	received []CollectedRequest
	hang     chan struct{} // non-nil: requests wait until it is closed (or their client gives up)
	status   int           // non-zero: the answer to every request, recorded as not received
}

// CollectedRequest is one request the collector received.
type CollectedRequest struct {
	MeasurementID string
	Body          json.RawMessage
	Messages      []ValidationMessage // none: the request is valid
	At            time.Time
}

// ValidationMessage is one finding, as the validation server words it.
type ValidationMessage struct {
	FieldPath      string `json:"fieldPath"`
	Description    string `json:"description"`
	ValidationCode string `json:"validationCode"`
}

// StartGA4Collector starts a collector on a free loopback port whose streams are secrets
// (measurement id -> API secret).
func StartGA4Collector(secrets map[string]string) (*GA4Collector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the GA4 collector: %w", err)
	}
	c := &GA4Collector{url: "http://" + ln.Addr().String(), secrets: secrets, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mp/collect", func(w http.ResponseWriter, r *http.Request) { c.collect(w, r, false) })
	mux.HandleFunc("POST /debug/mp/collect", func(w http.ResponseWriter, r *http.Request) { c.collect(w, r, true) })
	mux.HandleFunc("GET /received", c.list)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Endpoint is the collector's /mp/collect URL (GA4_ENDPOINT).
func (c *GA4Collector) Endpoint() string { return c.url + "/mp/collect" }

// ReceivedURL lists what the collector recorded.
func (c *GA4Collector) ReceivedURL() string { return c.url + "/received" }

// Close stops the collector: from then on a send finds nobody listening.
func (c *GA4Collector) Close() {
	c.Release()
	_ = c.srv.Close()
}

// Hang makes every request wait, unanswered, until Release (or its client gives up).
func (c *GA4Collector) Hang() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hang == nil {
		c.hang = make(chan struct{})
	}
}

// Release ends Hang.
func (c *GA4Collector) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hang != nil {
		close(c.hang)
		c.hang = nil
	}
}

// SetClock sets the clock the collector checks timestamps against (a test's releaser runs on a
// clock of its own).
func (c *GA4Collector) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// FailWith answers every request with status (0: normally again), recording none.
func (c *GA4Collector) FailWith(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = status
}

// Received returns the requests recorded on /mp/collect.
func (c *GA4Collector) Received() []CollectedRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.received)
}

// ReceivedFor returns the recorded requests whose purchase has transactionID.
func (c *GA4Collector) ReceivedFor(transactionID string) []CollectedRequest {
	var out []CollectedRequest
	for _, r := range c.Received() {
		if bytes.Contains(r.Body, []byte(`"transaction_id":"`+transactionID+`"`)) {
			out = append(out, r)
		}
	}
	return out
}

func (c *GA4Collector) collect(w http.ResponseWriter, r *http.Request, debug bool) {
	c.mu.Lock()
	hang, status, now := c.hang, c.status, c.now
	c.mu.Unlock()
	// Read first: only then does the server watch the connection, and see a sender give up.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		if r.Context().Err() != nil {
			return // the sender gave up: nothing received
		}
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	q := r.URL.Query()
	id := q.Get("measurement_id")
	msgs := ValidateMeasurement(body, now())
	switch {
	case id == "":
		msgs = append(msgs, ValidationMessage{"measurement_id", "measurement_id is required", "VALUE_REQUIRED"})
	case q.Get("api_secret") == "" || q.Get("api_secret") != c.secrets[id]:
		msgs = append(msgs, ValidationMessage{"api_secret", "api_secret is not this stream's", "VALUE_INVALID"})
	}
	if debug {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"validationMessages": nonNil(msgs)})
		return
	}
	raw := json.RawMessage(body)
	if !json.Valid(body) {
		raw, _ = json.Marshal(string(body))
	}
	c.mu.Lock()
	c.received = append(c.received, CollectedRequest{MeasurementID: id, Body: raw, Messages: msgs, At: time.Now().UTC()})
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *GA4Collector) list(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(nonNil(c.Received()))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// The Measurement Protocol's limits, as GA4 documents them.
const (
	mpMaxBody         = 130_000
	mpMaxEvents       = 25
	mpMaxParams       = 25
	mpMaxUserProps    = 25
	mpMaxNameChars    = 40
	mpMaxValueChars   = 100
	mpMaxItems        = 200
	mpMaxItemCustom   = 10
	mpBackdateWindow  = 72 * time.Hour
	mpFutureTolerance = time.Minute
)

var (
	mpName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// The event names GA4 reserves.
	mpReservedEvents = []string{"ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
		"adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_install", "app_remove",
		"app_store_refund", "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
		"dynamic_link_first_open", "error", "firebase_campaign", "firebase_in_app_message_action",
		"firebase_in_app_message_dismiss", "firebase_in_app_message_impression", "first_open", "first_visit",
		"in_app_purchase", "notification_dismiss", "notification_foreground", "notification_open",
		"notification_receive", "notification_send", "os_update", "screen_view", "session_start", "user_engagement"}
	mpReservedPrefixes = []string{"google_", "ga_", "firebase_"}
	// The item parameters GA4 defines; any other is a custom one.
	mpItemParams = []string{"item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand",
		"item_category", "item_category2", "item_category3", "item_category4", "item_category5", "item_list_id",
		"item_list_name", "item_variant", "location_id", "price", "quantity"}
	mpCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidateMeasurement checks a Measurement Protocol body as GA4's validation server does and
// returns its findings (none: valid). Timestamps are checked against now.
func ValidateMeasurement(body []byte, now time.Time) []ValidationMessage {
	var msgs []ValidationMessage
	add := func(path, code, format string, args ...any) {
		msgs = append(msgs, ValidationMessage{FieldPath: path, Description: fmt.Sprintf(format, args...), ValidationCode: code})
	}
	if len(body) > mpMaxBody {
		add("", "VALUE_OUT_OF_BOUNDS", "the body is %d bytes, over %d", len(body), mpMaxBody)
	}
	var req struct {
		ClientID        *string                    `json:"client_id"`
		AppInstanceID   *string                    `json:"app_instance_id"`
		TimestampMicros *json.Number               `json:"timestamp_micros"`
		UserProperties  map[string]json.RawMessage `json:"user_properties"`
		Events          []json.RawMessage          `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		add("", "VALUE_INVALID", "the body is not a JSON request: %v", err)
		return msgs
	}
	if dec.More() {
		add("", "VALUE_INVALID", "the body holds more than one JSON value")
	}
	if (req.ClientID == nil || *req.ClientID == "") && (req.AppInstanceID == nil || *req.AppInstanceID == "") {
		add("client_id", "VALUE_REQUIRED", "client_id is required")
	}
	if req.TimestampMicros != nil {
		micros, err := req.TimestampMicros.Int64()
		at := time.UnixMicro(micros)
		switch {
		case err != nil:
			add("timestamp_micros", "VALUE_INVALID", "timestamp_micros must be an integer")
		case at.After(now.Add(mpFutureTolerance)):
			add("timestamp_micros", "VALUE_OUT_OF_BOUNDS", "timestamp_micros is in the future")
		case at.Before(now.Add(-mpBackdateWindow)):
			add("timestamp_micros", "VALUE_OUT_OF_BOUNDS", "timestamp_micros is more than 72 hours ago")
		}
	}
	if len(req.UserProperties) > mpMaxUserProps {
		add("user_properties", "EXCEEDED_MAX_ENTITIES", "at most %d user properties", mpMaxUserProps)
	}
	switch {
	case len(req.Events) == 0:
		add("events", "VALUE_REQUIRED", "at least one event is required")
	case len(req.Events) > mpMaxEvents:
		add("events", "EXCEEDED_MAX_ENTITIES", "at most %d events, not %d", mpMaxEvents, len(req.Events))
	}
	for i, raw := range req.Events {
		msgs = append(msgs, validateEvent(fmt.Sprintf("events[%d]", i), raw)...)
	}
	return msgs
}

func validateEvent(path string, raw json.RawMessage) []ValidationMessage {
	var msgs []ValidationMessage
	add := func(p, code, format string, args ...any) {
		msgs = append(msgs, ValidationMessage{FieldPath: p, Description: fmt.Sprintf(format, args...), ValidationCode: code})
	}
	var ev struct {
		Name   string                     `json:"name"`
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := decodeNumbers(raw, &ev); err != nil {
		add(path, "VALUE_INVALID", "an event must be an object with a name and params")
		return msgs
	}
	switch {
	case ev.Name == "":
		add(path+".name", "VALUE_REQUIRED", "the event name is required")
	case !validName(ev.Name):
		add(path+".name", "NAME_INVALID", "%q: at most 40 letters, digits and underscores, starting with a letter", ev.Name)
	case slices.Contains(mpReservedEvents, ev.Name) || reservedPrefix(ev.Name):
		add(path+".name", "NAME_RESERVED", "%q is reserved", ev.Name)
	}
	if len(ev.Params) > mpMaxParams {
		add(path+".params", "EXCEEDED_MAX_ENTITIES", "at most %d parameters, not %d", mpMaxParams, len(ev.Params))
	}
	for name, value := range ev.Params {
		p := path + ".params." + name
		if !validName(name) || reservedPrefix(name) {
			add(p, "NAME_INVALID", "parameter name %q: at most 40 letters, digits and underscores, starting with a letter, no reserved prefix", name)
		}
		if name == "items" {
			msgs = append(msgs, validateItems(p, value)...)
			continue
		}
		msgs = append(msgs, validateScalar(p, value)...)
	}
	if _, hasValue := ev.Params["value"]; hasValue {
		var currency string
		if raw, ok := ev.Params["currency"]; !ok || json.Unmarshal(raw, &currency) != nil || !mpCurrency.MatchString(currency) {
			add(path+".params.currency", "VALUE_INVALID", "an event with a value needs an ISO 4217 currency")
		}
		if !isJSONNumber(ev.Params["value"]) {
			add(path+".params.value", "VALUE_INVALID", "value must be a number")
		}
	}
	return msgs
}

func validateItems(path string, raw json.RawMessage) []ValidationMessage {
	var msgs []ValidationMessage
	add := func(p, code, format string, args ...any) {
		msgs = append(msgs, ValidationMessage{FieldPath: p, Description: fmt.Sprintf(format, args...), ValidationCode: code})
	}
	var items []map[string]json.RawMessage
	if err := decodeNumbers(raw, &items); err != nil {
		add(path, "VALUE_INVALID", "items must be an array of objects")
		return msgs
	}
	if len(items) > mpMaxItems {
		add(path, "EXCEEDED_MAX_ENTITIES", "at most %d items, not %d", mpMaxItems, len(items))
	}
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		_, id := it["item_id"]
		_, name := it["item_name"]
		if !id && !name {
			add(p, "VALUE_REQUIRED", "an item needs item_id or item_name")
		}
		custom := 0
		for k, v := range it {
			if !slices.Contains(mpItemParams, k) {
				custom++
			}
			if !validName(k) || reservedPrefix(k) {
				add(p+"."+k, "NAME_INVALID", "item parameter name %q is invalid", k)
			}
			msgs = append(msgs, validateScalar(p+"."+k, v)...)
		}
		if custom > mpMaxItemCustom {
			add(p, "EXCEEDED_MAX_ENTITIES", "at most %d custom item parameters", mpMaxItemCustom)
		}
		for _, k := range []string{"price", "quantity"} {
			if v, ok := it[k]; ok && !isJSONNumber(v) {
				add(p+"."+k, "VALUE_INVALID", "%s must be a number", k)
			}
		}
	}
	return msgs
}

// validateScalar checks a parameter value: a string of at most 100 characters, a number or a
// boolean.
func validateScalar(path string, raw json.RawMessage) []ValidationMessage {
	var v any
	if err := decodeNumbers(raw, &v); err != nil {
		return []ValidationMessage{{path, "the value is not JSON", "VALUE_INVALID"}}
	}
	switch v := v.(type) {
	case string:
		if n := utf8.RuneCountInString(v); n > mpMaxValueChars {
			return []ValidationMessage{{path, fmt.Sprintf("%d characters, over %d", n, mpMaxValueChars), "VALUE_OUT_OF_BOUNDS"}}
		}
	case json.Number, bool:
	default:
		return []ValidationMessage{{path, "a parameter value must be a string, a number or a boolean", "VALUE_INVALID"}}
	}
	return nil
}

func validName(s string) bool { return len(s) <= mpMaxNameChars && mpName.MatchString(s) }

func reservedPrefix(s string) bool {
	for _, p := range mpReservedPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isJSONNumber(raw json.RawMessage) bool {
	var v any
	return decodeNumbers(raw, &v) == nil && func() bool { _, ok := v.(json.Number); return ok }()
}

func decodeNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one value")
	}
	return nil
}
