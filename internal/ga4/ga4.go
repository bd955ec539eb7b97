// Package ga4 sends the checkout's purchases to Google Analytics 4 through the Measurement
// Protocol (docs/ga4.md).
package ga4

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/winktravel/checkout/internal/checkout"
)

// The Measurement Protocol's endpoints: Google's default, and the one that collects in the EU.
const (
	DefaultEndpoint = "https://www.google-analytics.com/mp/collect"
	EUEndpoint      = "https://region1.google-analytics.com/mp/collect"
)

// MaxBodyBytes is the Measurement Protocol's limit on a request body (130 kB).
const MaxBodyBytes = 130_000

// EngagementTimeMsec is sent with every purchase: GA4 shows an event without engagement time in
// no user-activity report.
const EngagementTimeMsec = 100

// Client sends purchases to one endpoint, with the API secret of each measurement id.
type Client struct {
	endpoint string
	secrets  map[string]string
	http     *http.Client
}

var _ checkout.Analytics = (*Client)(nil)

// New returns a client of endpoint with secrets (measurement id -> API secret). A nil hc uses a
// client of its own, whose connections are kept between sends.
func New(endpoint string, secrets map[string]string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 2 * time.Second,
		}}
	}
	return &Client{endpoint: endpoint, secrets: secrets, http: hc}
}

// SendPurchase posts one purchase event. GA4 answers 2xx to any request it received, valid or
// not; anything else, and a request that did not complete, is an error (its text never carries
// the API secret).
func (c *Client) SendPurchase(ctx context.Context, p checkout.Purchase) error {
	secret, ok := c.secrets[p.MeasurementID]
	if !ok {
		return checkout.ErrUnknownMeasurement
	}
	body, err := Body(p)
	if err != nil {
		return err
	}
	u, err := url.Parse(c.endpoint)
	if err != nil {
		return fmt.Errorf("the GA4 endpoint: %w", err)
	}
	u.RawQuery = url.Values{"measurement_id": {p.MeasurementID}, "api_secret": {secret}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("a GA4 request: %w", withoutURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post a purchase to GA4 at %s: %w", u.Host, withoutURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so that the connection is kept
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GA4 at %s answered %d", u.Host, resp.StatusCode)
	}
	return nil
}

// Unavailable is the analytics of a function whose API secrets could not be read: every send
// fails with why (never ErrUnknownMeasurement: the purchases stay pending, for a later cold start).
func Unavailable(why error) checkout.Analytics { return unavailable{why} }

type unavailable struct{ why error }

func (u unavailable) SendPurchase(context.Context, checkout.Purchase) error {
	return fmt.Errorf("the GA4 API secrets could not be read at the cold start: %w", u.why)
}

// withoutURL drops the request URL (it carries the API secret) from net/http's errors.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

type request struct {
	ClientID        string  `json:"client_id"`
	TimestampMicros int64   `json:"timestamp_micros,omitempty"`
	Events          []event `json:"events"`
}

type event struct {
	Name   string `json:"name"`
	Params params `json:"params"`
}

type params struct {
	TransactionID      string      `json:"transaction_id"`
	Value              json.Number `json:"value"`
	Currency           string      `json:"currency"`
	SessionID          string      `json:"session_id,omitempty"`
	EngagementTimeMsec int         `json:"engagement_time_msec"`
	Items              []item      `json:"items"`
}

type item struct {
	ItemID   string      `json:"item_id"`
	ItemName string      `json:"item_name"`
	Price    json.Number `json:"price"`
	Quantity int         `json:"quantity"`
}

// Body is the Measurement Protocol request body of p: value and prices are the exact decimals
// p carries, written as JSON numbers.
func Body(p checkout.Purchase) ([]byte, error) {
	items := make([]item, len(p.Items))
	for i, it := range p.Items {
		items[i] = item{ItemID: it.ID, ItemName: it.Name, Price: json.Number(it.Price), Quantity: 1}
	}
	r := request{
		ClientID: p.ClientID,
		Events: []event{{Name: "purchase", Params: params{
			TransactionID: p.TransactionID, Value: json.Number(p.Value), Currency: p.Currency, SessionID: p.SessionID,
			EngagementTimeMsec: EngagementTimeMsec, Items: items,
		}}},
	}
	if !p.At.IsZero() {
		r.TimestampMicros = p.At.UnixMicro()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "&" in a hotel's name stays one byte
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode the purchase of %s: %w", p.TransactionID, err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("the purchase of %s is %d bytes, over the Measurement Protocol's %d", p.TransactionID, len(body), MaxBodyBytes)
	}
	return body, nil
}

var measurementID = regexp.MustCompile(`^G-[A-Z0-9]{4,20}$`)

// ParseSecrets reads the API secrets setting: a JSON object from measurement id ("G-...") to
// that stream's Measurement Protocol API secret. "" is no secrets (every purchase skipped).
func ParseSecrets(s string) (map[string]string, error) {
	secrets := map[string]string{}
	if s == "" {
		return secrets, nil
	}
	if err := json.Unmarshal([]byte(s), &secrets); err != nil {
		// Never the text: it is the secret.
		return nil, errors.New(`the GA4 API secrets must be a JSON object {"G-...": "secret"}`)
	}
	for id, secret := range secrets {
		switch {
		case !measurementID.MatchString(id):
			// Never the key either: a map written the wrong way round has secrets for keys.
			return nil, errors.New("every key of the GA4 API secrets must be a measurement id (G- and 4 to 20 upper-case letters or digits)")
		case secret == "":
			return nil, fmt.Errorf("the GA4 API secret of %s is empty", id)
		}
	}
	return secrets, nil
}
