package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/checkout"
)

// MaxBodyBytes bounds the decoded request body.
const MaxBodyBytes = 16 << 10

// parseRequest validates the event and returns the checkout request, or every broken field.
func parseRequest(ev *events.APIGatewayV2HTTPRequest, caller string, localMode bool) (checkout.Request, []checkout.FieldError) {
	var errs []checkout.FieldError
	fail := func(field, message string) { errs = append(errs, checkout.FieldError{Field: field, Message: message}) }

	if ct, ok := header(ev.Headers, "Content-Type"); ok {
		mediaType, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil || mediaType != "application/json":
			fail("Content-Type", "must be application/json")
		case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
			fail("Content-Type", "charset must be utf-8")
		}
	}
	if v, ok := header(ev.Headers, "Wink-Version"); ok && v != "2.0" && v != "2.0.0" {
		fail("Wink-Version", "must be 2.0 or 2.0.0")
	}

	fields, bodyErr := decodeBody(ev)
	if bodyErr != "" {
		fail("body", bodyErr)
		return checkout.Request{}, errs
	}
	req := checkout.Request{Caller: caller}
	str := func(name string, required bool) string {
		raw, present := fields[name]
		if present && raw.dup {
			fail(name, "must appear only once")
			return ""
		}
		var s string
		if present && string(raw.value) != "null" {
			if err := json.Unmarshal(raw.value, &s); err != nil {
				fail(name, "must be a string")
				return ""
			}
		}
		if s == "" && required {
			fail(name, "is required")
		}
		return s
	}
	req.ShoppingCartIdentifier = str("shoppingCartIdentifier", true)
	req.CustomizationIdentifier = str("customizationIdentifier", false)
	redirectURL := str("redirectUrl", true)
	req.GA4ClientID = str("ga4ClientId", false)
	req.GA4SessionID = str("ga4SessionId", false)
	req.GA4MeasurementID = str("ga4MeasurementId", false)

	if s := req.ShoppingCartIdentifier; s != "" && !isIdentifier(s) {
		fail("shoppingCartIdentifier", "must be 1 to 128 letters, digits, '-', '_', '.' or ':'")
	}
	if s := req.CustomizationIdentifier; s != "" && !isIdentifier(s) {
		fail("customizationIdentifier", "must be 1 to 128 letters, digits, '-', '_', '.' or ':'")
	}
	if redirectURL != "" {
		redirect, err := checkout.ParseRedirect(redirectURL, localMode)
		if err != nil {
			fail("redirectUrl", err.Error())
		}
		req.Redirect = redirect
	}
	if s := req.GA4ClientID; s != "" && !isGA4ClientID(s) {
		fail("ga4ClientId", "must be digits, a dot and digits, at most 64 characters")
	}
	if s := req.GA4SessionID; s != "" && (len(s) > 32 || !allDigits(s)) {
		fail("ga4SessionId", "must be at most 32 digits")
	}
	if s := req.GA4MeasurementID; s != "" && !isGA4MeasurementID(s) {
		fail("ga4MeasurementId", "must be G- followed by 4 to 20 upper-case letters or digits")
	}
	return req, errs
}

// rawField is one top-level member of the body; dup marks a name that appeared twice.
type rawField struct {
	value json.RawMessage
	dup   bool
}

// decodeBody reads the body as exactly one JSON object. It returns a message when it cannot.
func decodeBody(ev *events.APIGatewayV2HTTPRequest) (map[string]rawField, string) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(ev.Body)) > MaxBodyBytes+2 {
			return nil, "must be at most 16 KiB"
		}
		decoded, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, "is not valid base64"
		}
		body = decoded
	}
	switch {
	case len(body) > MaxBodyBytes:
		return nil, "must be at most 16 KiB"
	case len(bytes.TrimSpace(body)) == 0:
		return nil, "is required"
	case !utf8.Valid(body):
		return nil, "must be valid UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "must be a JSON object"
	}
	fields := make(map[string]rawField, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "is not valid JSON"
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, "is not valid JSON"
		}
		_, seen := fields[name]
		fields[name] = rawField{value: value, dup: seen}
	}
	if _, err := dec.Token(); err != nil {
		return nil, "is not valid JSON"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "must be a single JSON object"
	}
	return fields, ""
}

// header finds a header regardless of the case of its name.
func header(headers map[string]string, name string) (string, bool) {
	if v, ok := headers[strings.ToLower(name)]; ok {
		return v, true
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func isIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func isGA4ClientID(s string) bool {
	before, after, ok := strings.Cut(s, ".")
	return ok && len(s) <= 64 && allDigits(before) && allDigits(after)
}

func isGA4MeasurementID(s string) bool {
	rest, ok := strings.CutPrefix(s, "G-")
	if !ok || len(rest) < 4 || len(rest) > 20 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
