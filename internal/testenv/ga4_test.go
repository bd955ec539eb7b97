package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The collector's validation finds what GA4's validation server documents: each broken request
// gets the finding it should, and a good one none.
func TestValidateMeasurement(t *testing.T) {
	now := time.Now()
	event := func(params string) string { return `{"name":"purchase","params":{` + params + `}}` }
	good := `"transaction_id":"g","value":1.5,"currency":"EUR","items":[{"item_id":"r","item_name":"h","price":1.5,"quantity":1}]`
	body := func(events ...string) string {
		return `{"client_id":"1.2","timestamp_micros":` + fmt.Sprint(now.UnixMicro()) + `,"events":[` + strings.Join(events, ",") + `]}`
	}
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	params := []string{}
	for i := range 26 {
		params = append(params, fmt.Sprintf(`"p%d":1`, i))
	}
	tests := []struct {
		name, body, code string
	}{
		{"valid", body(event(good)), ""},
		{"not JSON", `{"client_id":`, "VALUE_INVALID"},
		{"no client_id", `{"events":[` + event(good) + `]}`, "VALUE_REQUIRED"},
		{"no events", `{"client_id":"1.2","events":[]}`, "VALUE_REQUIRED"},
		{"26 events", body(many(26, event(good))...), "EXCEEDED_MAX_ENTITIES"},
		{"bad event name", body(`{"name":"1purchase","params":{}}`), "NAME_INVALID"},
		{"long event name", body(`{"name":"` + strings.Repeat("a", 41) + `","params":{}}`), "NAME_INVALID"},
		{"reserved event name", body(`{"name":"session_start","params":{}}`), "NAME_RESERVED"},
		{"26 parameters", body(event(strings.Join(params, ","))), "EXCEEDED_MAX_ENTITIES"},
		{"reserved parameter prefix", body(event(`"ga_thing":1`)), "NAME_INVALID"},
		{"value of 101 characters", body(event(`"note":"` + strings.Repeat("é", 101) + `"`)), "VALUE_OUT_OF_BOUNDS"},
		{"value without currency", body(event(`"value":1`)), "VALUE_INVALID"},
		{"value as a string", body(event(`"value":"1","currency":"EUR"`)), "VALUE_INVALID"},
		{"item without id or name", body(event(`"items":[{"price":1}]`)), "VALUE_REQUIRED"},
		{"item name of 101 characters", body(event(`"items":[{"item_id":"r","item_name":"` + strings.Repeat("x", 101) + `"}]`)), "VALUE_OUT_OF_BOUNDS"},
		{"price as a string", body(event(`"items":[{"item_id":"r","price":"1"}]`)), "VALUE_INVALID"},
		{"201 items", body(event(`"items":[` + strings.Join(many(201, `{"item_id":"r"}`), ",") + `]`)), "EXCEEDED_MAX_ENTITIES"},
		{"timestamp in the future", `{"client_id":"1","timestamp_micros":` + fmt.Sprint(now.Add(time.Hour).UnixMicro()) + `,"events":[` + event(good) + `]}`, "VALUE_OUT_OF_BOUNDS"},
		{"timestamp over 72 hours ago", `{"client_id":"1","timestamp_micros":` + fmt.Sprint(now.Add(-73*time.Hour).UnixMicro()) + `,"events":[` + event(good) + `]}`, "VALUE_OUT_OF_BOUNDS"},
		{"over 130 kB", body(event(good + `,"note":"` + strings.Repeat("x", 130_000) + `"`)), "VALUE_OUT_OF_BOUNDS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs := ValidateMeasurement([]byte(tc.body), now)
			if tc.code == "" {
				if len(msgs) > 0 {
					t.Errorf("a valid request: %+v", msgs)
				}
				return
			}
			for _, m := range msgs {
				if m.ValidationCode == tc.code {
					return
				}
			}
			t.Errorf("findings %+v, want one %s", msgs, tc.code)
		})
	}
}

// The debug endpoint answers the findings as GA4's validation server does.
func TestCollectorDebugEndpoint(t *testing.T) {
	c, err := StartGA4Collector(map[string]string{GA4MeasurementID: GA4APISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := httpPost(c.url+"/debug/mp/collect?measurement_id="+GA4MeasurementID+"&api_secret=wrong", `{"events":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ValidationMessages []ValidationMessage `json:"validationMessages"`
	}
	if err := json.Unmarshal(resp, &answer); err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, m := range answer.ValidationMessages {
		codes[m.FieldPath+" "+m.ValidationCode] = true
	}
	for _, want := range []string{"client_id VALUE_REQUIRED", "events VALUE_REQUIRED", "api_secret VALUE_INVALID"} {
		if !codes[want] {
			t.Errorf("findings %+v lack %s", answer.ValidationMessages, want)
		}
	}
	if n := len(c.Received()); n != 0 {
		t.Errorf("the debug endpoint recorded %d requests", n)
	}
}

func httpPost(url, body string) ([]byte, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
