package checkout_test

import (
	"testing"

	"github.com/winktravel/checkout/internal/checkout"
)

func TestHostPatterns(t *testing.T) {
	patterns, err := checkout.ParseHostPatterns([]string{" book.example.com ", "*.Wink.Test", "", "bücher.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url   string
		allow bool
	}{
		{"https://book.example.com/x", true},
		{"https://BOOK.example.com/x", true},
		{"https://book.example.com:8443/x", true},
		{"https://book.example.com./x", true},
		{"https://app.wink.test/", true},
		{"https://a.b.c.wink.test/", true},
		{"https://wink.test/", false},
		{"https://evilwink.test/", false},
		{"https://xn--bcher-kva.example/", true},
		{"https://bücher.example/", true},
		{"https://BÜCHER.example/", true},
		{"https://evil.test#book.example.com", false},
		{"https://book.example.com.evil.test/", false},
		{"https://evil.test/book.example.com", false},
		{"https://evil.test?book.example.com", false},
		{"https://example.com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			r, err := checkout.ParseRedirect(tt.url, false)
			if err != nil {
				t.Fatalf("ParseRedirect: %v", err)
			}
			if got := patterns.Allows(r.Host); got != tt.allow {
				t.Errorf("Allows(%q) = %v, want %v", r.Host, got, tt.allow)
			}
		})
	}
}

func TestParseRedirectRefuses(t *testing.T) {
	for _, raw := range []string{
		"http://book.example.com/",
		"https://book.example.com@evil.test/",
		"https://user:pass@book.example.com/",
		"javascript:alert(1)",
		"data:text/html,<script>",
		"//book.example.com/x",
		"https:book.example.com",
		"https://",
		"ftp://book.example.com/",
		"https://exa mple.com/",
		"https://a\x00b.com/",
		"https://xn--/",
		"https://a..b/",
		"https://book.example.com../",
		"https://exa_mple.com/",
	} {
		if _, err := checkout.ParseRedirect(raw, false); err == nil {
			t.Errorf("ParseRedirect(%q) accepted", raw)
		}
	}
	if _, err := checkout.ParseRedirect("http://localhost:3000/x", false); err == nil {
		t.Errorf("http://localhost accepted outside local mode")
	}
	r, err := checkout.ParseRedirect("http://localhost:3000/x", true)
	if err != nil || !r.Loopback {
		t.Errorf("local mode: %+v %v", r, err)
	}
	if _, err := checkout.ParseRedirect("http://localhost.evil.test/", true); err == nil {
		t.Errorf("http to a non-loopback host accepted in local mode")
	}
}

func TestParseHostPatternsRejectsJunk(t *testing.T) {
	for _, entry := range []string{"https://book.example.com", "book.example.com/path", "*.*.example.com", "user@host"} {
		if _, err := checkout.ParseHostPatterns([]string{entry}); err == nil {
			t.Errorf("ParseHostPatterns accepted %q", entry)
		}
	}
}

func TestIdentifiers(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		code := checkout.NewBookingCode()
		if len(code) != 11 || code[:3] != "WK-" {
			t.Fatalf("booking code %q", code)
		}
		for _, c := range code[3:] {
			if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
				t.Fatalf("booking code %q has %q, not Crockford base32", code, c)
			}
		}
		seen[code] = true
	}
	if len(seen) < 999 {
		t.Errorf("%d distinct codes in 1000", len(seen))
	}
	g := checkout.NewGroupIdentifier()
	if len(g) != 36 || g[14] != '4' || g[8] != '-' || g[23] != '-' {
		t.Errorf("group identifier %q is not a v4 UUID", g)
	}
}
