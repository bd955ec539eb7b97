package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// unsignedToken returns an unsecured JWT (RFC 7519 section 6: alg "none", empty signature)
// carrying claims. The local server never checks signatures, so this is all a caller needs; the
// same claims always give the same token, so a saved token keeps working across runs.
func unsignedToken(claims map[string]string) string {
	header := []byte(`{"alg":"none","typ":"JWT"}`)
	payload, _ := json.Marshal(claims) // cannot fail: strings only, keys sorted
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// ownerToken is the sample token of a traveller: the owner in `sub` and, when the function reads
// another claim (IDENTITY_CLAIM), in that claim too.
func ownerToken(owner, identityClaim string) string {
	claims := map[string]string{"sub": owner}
	if identityClaim != "" {
		claims[identityClaim] = owner
	}
	return unsignedToken(claims)
}

// bearerClaims decodes the JWT of an Authorization header into the claims map that API
// Gateway's JWT authorizer hands the function. Nothing is verified: no signature, issuer,
// audience or expiry check (sam local does not run JWT authorizers either). The "Bearer " prefix
// is optional, as for API Gateway.
func bearerClaims(authorization string) (map[string]string, error) {
	token := strings.TrimSpace(authorization)
	if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT (want header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload is not base64url: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // keep exp and iat as the integers they are
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New("JWT payload is not a JSON object")
	}
	claims := make(map[string]string, len(raw))
	for name, v := range raw {
		if v != nil {
			claims[name] = claimString(v)
		}
	}
	return claims, nil
}

// claimString renders a claim the way API Gateway's JWT authorizer does in its claims map:
// strings as they are, numbers as plain text ("1795431600", not "1.7954316e+09"), booleans as
// true/false, arrays as "[a b]". Objects become compact JSON, which is simpler than API
// Gateway's own rendering; the checkout reads only the identity claim.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		b, _ := json.Marshal(v) // cannot fail: decoded from JSON; keys come out sorted
		return string(b)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
