package checkout

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxRedirectURLLength bounds redirectUrl, in characters.
const MaxRedirectURLLength = 2048

// Redirect is a syntactically valid redirectUrl.
type Redirect struct {
	URL  string
	Host string // normalised: IDNA A-label, lower case, no port
	// Loopback marks http(s)://localhost or 127.0.0.1 accepted in local mode, which needs no
	// allow-list entry.
	Loopback bool
}

// ParseRedirect checks everything about redirectUrl that does not depend on the allow-list.
// allowLoopback is true in local mode only.
func ParseRedirect(raw string, allowLoopback bool) (Redirect, error) {
	if utf8.RuneCountInString(raw) > MaxRedirectURLLength {
		return Redirect{}, errors.New("must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return Redirect{}, errors.New("must be an absolute https URL")
	}
	if u.User != nil {
		return Redirect{}, errors.New("must not contain user information")
	}
	host, err := NormalizeHost(u.Hostname())
	if err != nil {
		return Redirect{}, errors.New("must have a valid host name")
	}
	loopback := allowLoopback && (host == "localhost" || host == "127.0.0.1")
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return Redirect{}, errors.New("must be an absolute https URL")
	}
	return Redirect{URL: raw, Host: host, Loopback: loopback}, nil
}

// NormalizeHost turns a host name into its comparable form: IDNA A-labels in lower case, without
// a trailing dot. IP addresses are kept as they are.
func NormalizeHost(host string) (string, error) {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", errors.New("empty host")
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", err
	}
	// idna accepts some degenerate names ("xn--" becomes "", "a..b" stays): refuse them here.
	if ascii == "" || len(ascii) > 253 || strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", errors.New("invalid host name")
	}
	return strings.ToLower(ascii), nil
}

// HostPatterns is a redirect allow-list: exact hosts and `*.domain` patterns, which match every
// sub-domain at any depth but not the domain itself.
type HostPatterns []string

// ParseHostPatterns normalises allow-list entries, dropping empty ones. An entry that is not a
// host name or `*.` pattern is an error.
func ParseHostPatterns(entries []string) (HostPatterns, error) {
	var patterns HostPatterns
	for _, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		wildcard := strings.HasPrefix(entry, "*.")
		host, err := NormalizeHost(strings.TrimPrefix(entry, "*."))
		if err != nil || strings.ContainsAny(host, "*/:@") {
			return nil, errors.New("invalid redirect host " + entry)
		}
		if wildcard {
			host = "*." + host
		}
		patterns = append(patterns, host)
	}
	return patterns, nil
}

// ParseHostPatternsSkipping is ParseHostPatterns for lists that others maintain (a
// customization's): an invalid entry is skipped and returned in invalid, the rest still count.
func ParseHostPatternsSkipping(entries []string) (patterns HostPatterns, invalid []string) {
	for _, entry := range entries {
		p, err := ParseHostPatterns([]string{entry})
		if err != nil {
			invalid = append(invalid, entry)
			continue
		}
		patterns = append(patterns, p...)
	}
	return patterns, invalid
}

// Allows reports whether the normalised host matches one of the patterns.
func (p HostPatterns) Allows(host string) bool {
	for _, pattern := range p {
		if domain, ok := strings.CutPrefix(pattern, "*"); ok {
			if strings.HasSuffix(host, domain) && len(host) > len(domain) {
				return true
			}
		} else if host == pattern {
			return true
		}
	}
	return false
}
