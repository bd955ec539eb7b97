package money_test

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/currency"

	"github.com/winktravel/checkout/internal/money"
)

type toMinorCase struct {
	name     string
	amount   string
	currency string
	want     int64
	err      error
}

var toMinorCases = []toMinorCase{
	// Two-decimal currencies.
	{"EUR cents", "123.45", "EUR", 12345, nil},
	{"EUR integer", "100", "EUR", 10000, nil},
	{"EUR half", "0.5", "EUR", 50, nil},
	{"EUR one cent", "0.01", "EUR", 1, nil},
	{"EUR zero", "0", "EUR", 0, nil},
	{"EUR zero with decimals", "0.000", "EUR", 0, nil},
	{"EUR too precise", "1.234", "EUR", 0, money.ErrInexpressible},
	{"EUR sub-cent", "0.001", "EUR", 0, money.ErrInexpressible},
	{"USD", "19.99", "USD", 1999, nil},

	// Trailing and leading zeros, as DynamoDB may return them.
	{"trailing zero", "12.50", "EUR", 1250, nil},
	{"many trailing zeros", "1.230000000", "EUR", 123, nil},
	{"leading zeros", "000123.4500", "EUR", 12345, nil},
	{"trailing zeros beyond precision in JPY", "1500.000", "JPY", 1500, nil},

	// Exponent forms.
	{"exponent upper plus", "1E+2", "EUR", 10000, nil},
	{"exponent lower fraction", "1.20e1", "EUR", 1200, nil},
	{"exponent negative", "12345e-2", "EUR", 12345, nil},
	{"exponent shifts into cents", "1.2345e2", "EUR", 12345, nil},
	{"exponent zero", "5E0", "EUR", 500, nil},
	{"exponent minus zero", "5e-0", "EUR", 500, nil},
	{"exponent padded", "1e+002", "EUR", 10000, nil},
	{"exponent one cent", "1e-2", "EUR", 1, nil},
	{"exponent too precise", "1e-3", "EUR", 0, money.ErrInexpressible},
	{"exponent zero mantissa", "0e5", "EUR", 0, nil},
	{"exponent JPY", "1.5e3", "JPY", 1500, nil},
	{"exponent JPY too precise", "15e-1", "JPY", 0, money.ErrInexpressible},
	{"trailing zeros cancel negative exponent", "100000e-5", "JPY", 1, nil},
	{"long zero fraction then exponent", "0.0000000000000000000000000001e28", "EUR", 100, nil},

	// Zero-decimal currencies.
	{"JPY", "1500", "JPY", 1500, nil},
	{"JPY fraction", "1500.5", "JPY", 0, money.ErrInexpressible},
	{"JPY small fraction", "1.5", "JPY", 0, money.ErrInexpressible},
	{"JPY point zero", "1500.0", "JPY", 1500, nil},
	{"KRW", "50000", "KRW", 50000, nil},
	{"XOF", "1000", "XOF", 1000, nil},
	{"CLP fraction", "100.10", "CLP", 0, money.ErrInexpressible},

	// Three-decimal currencies: last of 3 decimals must be 0.
	{"KWD", "1.230", "KWD", 1230, nil},
	{"KWD two decimals", "1.23", "KWD", 1230, nil},
	{"KWD integer", "5", "KWD", 5000, nil},
	{"KWD last digit not zero", "1.235", "KWD", 0, money.ErrInexpressible},
	{"KWD four decimals", "1.2350", "KWD", 0, money.ErrInexpressible},
	{"KWD smallest", "0.01", "KWD", 10, nil},
	{"KWD below smallest", "0.001", "KWD", 0, money.ErrInexpressible},
	{"BHD", "5.12", "BHD", 5120, nil},
	{"BHD last digit", "5.124", "BHD", 0, money.ErrInexpressible},
	{"JOD", "0.5", "JOD", 500, nil},
	{"OMR", "2.340", "OMR", 2340, nil},
	{"TND", "7.005", "TND", 0, money.ErrInexpressible},

	// Special cases. ISK and UGX: two-decimal amounts whose decimals are
	// always 00 (whole units only).
	{"ISK whole", "5", "ISK", 500, nil},
	{"ISK zero decimals", "5.00", "ISK", 500, nil},
	{"ISK exponent", "1.2e3", "ISK", 120000, nil},
	{"ISK fraction", "5.5", "ISK", 0, money.ErrInexpressible},
	{"ISK cent", "5.01", "ISK", 0, money.ErrInexpressible},
	{"UGX whole", "5", "UGX", 500, nil},
	{"UGX large", "250000", "UGX", 25000000, nil},
	{"UGX fraction", "5000.5", "UGX", 0, money.ErrInexpressible},
	// HUF and TWD: two-decimal for charges (the divisible-by-100 rule is
	// for manual payouts only).
	{"HUF fraction", "10.45", "HUF", 1045, nil},
	{"HUF whole", "175", "HUF", 17500, nil},
	{"HUF too precise", "10.455", "HUF", 0, money.ErrInexpressible},
	{"TWD fraction", "800.45", "TWD", 80045, nil},
	{"TWD whole", "800", "TWD", 80000, nil},
	{"TWD too precise", "800.001", "TWD", 0, money.ErrInexpressible},
	// Stripe two-decimal although CLDR (x/text) says 0 digits.
	{"IDR two-decimal in Stripe", "15000.50", "IDR", 1500050, nil},
	{"COP two-decimal in Stripe", "4200.25", "COP", 420025, nil},

	// Maximum and overflow.
	{"EUR at maximum", "9999999999.99", "EUR", money.MaxMinor, nil},
	{"EUR above maximum", "10000000000", "EUR", 0, money.ErrInvalidAmount},
	{"JPY at maximum", "999999999999", "JPY", money.MaxMinor, nil},
	{"JPY above maximum", "1000000000000", "JPY", 0, money.ErrInvalidAmount},
	{"JPY exponent at 11 zeros", "1e11", "JPY", 100000000000, nil},
	{"JPY exponent above maximum", "1e12", "JPY", 0, money.ErrInvalidAmount},
	{"KWD above maximum", "1e9", "KWD", 0, money.ErrInvalidAmount},
	{"int64 max", "9223372036854775807", "JPY", 0, money.ErrInvalidAmount},
	{"beyond int64", "99999999999999999999999999999999999999", "EUR", 0, money.ErrInvalidAmount},
	{"huge exponent", "1e999999999", "EUR", 0, money.ErrInvalidAmount},
	{"huge exponent digits", "1e99999999999999999999999999", "EUR", 0, money.ErrInvalidAmount},
	{"huge negative exponent", "1e-999999999", "EUR", 0, money.ErrInvalidAmount},
	{"huge exponent on zero", "0e999999999", "EUR", 0, money.ErrInvalidAmount},
	{"large exponent within cap", "1e1000", "EUR", 0, money.ErrInvalidAmount},
	{"small exponent within cap", "1e-1000", "EUR", 0, money.ErrInexpressible},
	{"zero with small exponent", "0e-1000", "EUR", 0, nil},

	// Not a non-negative decimal number.
	{"empty", "", "EUR", 0, money.ErrInvalidAmount},
	{"letters", "abc", "EUR", 0, money.ErrInvalidAmount},
	{"two points", "1.2.3", "EUR", 0, money.ErrInvalidAmount},
	{"double minus", "--1", "EUR", 0, money.ErrInvalidAmount},
	{"leading space", " 1", "EUR", 0, money.ErrInvalidAmount},
	{"trailing space", "1 ", "EUR", 0, money.ErrInvalidAmount},
	{"negative", "-1", "EUR", 0, money.ErrInvalidAmount},
	{"negative fraction", "-0.50", "EUR", 0, money.ErrInvalidAmount},
	{"negative zero", "-0", "EUR", 0, money.ErrInvalidAmount},
	{"plus sign", "+1", "EUR", 0, money.ErrInvalidAmount},
	{"bare fraction", ".5", "EUR", 0, money.ErrInvalidAmount},
	{"bare point", "5.", "EUR", 0, money.ErrInvalidAmount},
	{"point only", ".", "EUR", 0, money.ErrInvalidAmount},
	{"exponent without digits", "1e", "EUR", 0, money.ErrInvalidAmount},
	{"exponent sign only", "1e+", "EUR", 0, money.ErrInvalidAmount},
	{"point before exponent", "1.e5", "EUR", 0, money.ErrInvalidAmount},
	{"exponent only", "e5", "EUR", 0, money.ErrInvalidAmount},
	{"fractional exponent", "1e5.5", "EUR", 0, money.ErrInvalidAmount},
	{"exponent then garbage", "1e5x", "EUR", 0, money.ErrInvalidAmount},
	{"huge exponent then garbage", "1e99999999999x", "EUR", 0, money.ErrInvalidAmount},
	{"NaN", "NaN", "EUR", 0, money.ErrInvalidAmount},
	{"Inf", "Inf", "EUR", 0, money.ErrInvalidAmount},
	{"Infinity", "-Infinity", "EUR", 0, money.ErrInvalidAmount},
	{"hex", "0x10", "EUR", 0, money.ErrInvalidAmount},
	{"underscore", "1_000", "EUR", 0, money.ErrInvalidAmount},
	{"comma decimal", "1,50", "EUR", 0, money.ErrInvalidAmount},
	{"thousands separator", "1,000.00", "EUR", 0, money.ErrInvalidAmount},
	{"arabic-indic digit", "\u0661", "EUR", 0, money.ErrInvalidAmount},
	{"currency symbol", "€1", "EUR", 0, money.ErrInvalidAmount},
	{"NUL byte", "1\x00", "EUR", 0, money.ErrInvalidAmount},

	// Currency codes.
	{"lower-case currency", "1", "eur", 0, money.ErrUnknownCurrency},
	{"mixed-case currency", "1", "Eur", 0, money.ErrUnknownCurrency},
	{"empty currency", "1", "", 0, money.ErrUnknownCurrency},
	{"four letters", "1", "EURO", 0, money.ErrUnknownCurrency},
	{"symbol", "1", "€", 0, money.ErrUnknownCurrency},
	{"not ISO", "1", "ABC", 0, money.ErrUnknownCurrency},
	{"no currency code", "1", "XXX", 0, money.ErrUnknownCurrency},
	{"test code", "1", "XTS", 0, money.ErrUnknownCurrency},
	{"gold", "1", "XAU", 0, money.ErrUnknownCurrency},
	{"historical", "1", "DEM", 0, money.ErrUnknownCurrency},
	{"ISO three decimals, not in Stripe's list", "1", "LYD", 0, money.ErrUnknownCurrency},
	{"bad currency wins over bad amount", "abc", "eur", 0, money.ErrUnknownCurrency},
}

func TestToMinor(t *testing.T) {
	for _, tc := range toMinorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := money.ToMinor(tc.amount, tc.currency)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ToMinor(%q, %q) = %d, %v; want error %v", tc.amount, tc.currency, got, err, tc.err)
				}
				if got != 0 {
					t.Errorf("ToMinor(%q, %q) returned %d with an error", tc.amount, tc.currency, got)
				}
				checkErrorText(t, err, tc.currency)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ToMinor(%q, %q) = %d, %v; want %d", tc.amount, tc.currency, got, err, tc.want)
			}
		})
	}
}

// checkErrorText checks an error can be shown to a client: short, one line,
// and naming what was wrong.
func checkErrorText(t *testing.T, err error, cur string) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 300 || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error text not fit for a client: %q", msg)
	}
	if errors.Is(err, money.ErrUnknownCurrency) {
		if !strings.Contains(msg, "currency") {
			t.Errorf("currency error does not say so: %q", msg)
		}
		return
	}
	if !strings.Contains(msg, cur) {
		t.Errorf("error %q does not name the currency %s", msg, cur)
	}
}

func TestErrorTextIsBounded(t *testing.T) {
	long := strings.Repeat("9", 1<<20)
	for _, amount := range []string{long, long + "x", "0." + long, "1e" + long} {
		_, err := money.ToMinor(amount, "EUR")
		if !errors.Is(err, money.ErrInvalidAmount) && !errors.Is(err, money.ErrInexpressible) {
			t.Fatalf("ToMinor(<%d bytes>) error = %v", len(amount), err)
		}
		if n := len(err.Error()); n > 200 {
			t.Errorf("error text is %d bytes for a %d-byte amount", n, len(amount))
		}
	}
	_, err := money.ToMinor("1.5", "JPY")
	if want := `amount "1.5" in JPY`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestTotal(t *testing.T) {
	manyMax := make([]string, 10000)
	for i := range manyMax {
		manyMax[i] = "999999999999"
	}
	tests := []struct {
		name     string
		amounts  []string
		currency string
		want     int64
		err      error
	}{
		{"sum EUR", []string{"10.00", "2.50", "0"}, "EUR", 1250, nil},
		{"sum mixed forms", []string{"1E+2", "1.20e1", "12.50", "0.05"}, "EUR", 12455, nil},
		{"sum JPY", []string{"1500", "2500"}, "JPY", 4000, nil},
		{"sum KWD", []string{"1.230", "0.77"}, "KWD", 2000, nil},
		{"sum ISK", []string{"5", "10"}, "ISK", 1500, nil},
		{"single item", []string{"123.45"}, "EUR", 12345, nil},

		{"EUR at minimum", []string{"0.50"}, "EUR", 50, nil},
		{"EUR minimum from parts", []string{"0.25", "0.25"}, "EUR", 50, nil},
		{"EUR below minimum", []string{"0.49"}, "EUR", 0, money.ErrBelowMinimum},
		{"GBP at minimum", []string{"0.30"}, "GBP", 30, nil},
		{"GBP below minimum", []string{"0.29"}, "GBP", 0, money.ErrBelowMinimum},
		{"JPY below minimum", []string{"49"}, "JPY", 0, money.ErrBelowMinimum},
		{"JPY at minimum", []string{"50"}, "JPY", 50, nil},
		{"HUF below minimum", []string{"174.99"}, "HUF", 0, money.ErrBelowMinimum},
		{"HUF at minimum", []string{"175"}, "HUF", 17500, nil},
		{"MXN below minimum", []string{"9.99"}, "MXN", 0, money.ErrBelowMinimum},
		{"no known minimum", []string{"0.01"}, "KWD", 10, nil},
		{"no known minimum ISK", []string{"1"}, "ISK", 100, nil},
		{"zero total", []string{"0", "0.00"}, "EUR", 0, money.ErrBelowMinimum},
		{"zero total, no known minimum", []string{"0"}, "ISK", 0, money.ErrBelowMinimum},
		{"empty cart", nil, "EUR", 0, money.ErrBelowMinimum},

		{"at maximum", []string{"500000000000", "499999999999"}, "JPY", money.MaxMinor, nil},
		{"above maximum", []string{"999999999999", "1"}, "JPY", 0, money.ErrInvalidAmount},
		{"above maximum EUR", []string{"9999999999.99", "0.01"}, "EUR", 0, money.ErrInvalidAmount},
		{"would overflow int64", manyMax, "JPY", 0, money.ErrInvalidAmount},

		{"inexpressible item", []string{"1.00", "1.234"}, "EUR", 0, money.ErrInexpressible},
		{"invalid item", []string{"1.00", "abc"}, "EUR", 0, money.ErrInvalidAmount},
		{"negative item", []string{"10.00", "-5.00"}, "EUR", 0, money.ErrInvalidAmount},
		{"lower-case currency", []string{"1"}, "eur", 0, money.ErrUnknownCurrency},
		{"unknown currency, empty cart", nil, "ABC", 0, money.ErrUnknownCurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := money.Total(tc.amounts, tc.currency)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || got != 0 {
					t.Fatalf("Total(%q) = %d, %v; want error %v", tc.currency, got, err, tc.err)
				}
				checkErrorText(t, err, tc.currency)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Total(%v, %q) = %d, %v; want %d", tc.amounts, tc.currency, got, err, tc.want)
			}
		})
	}
}

func TestTotalErrorNamesItemAndMinimum(t *testing.T) {
	_, err := money.Total([]string{"1.00", "1.234"}, "EUR")
	if !strings.HasPrefix(err.Error(), `item 2: amount "1.234" in EUR`) {
		t.Errorf("item error = %q", err)
	}
	_, err = money.Total([]string{"0.20", "0.09"}, "GBP")
	if want := "total 0.29 GBP: below the minimum charge of 0.30 GBP"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("minimum error = %q, want prefix %q", err, want)
	}
}

// stripeMinimums is Stripe's "Minimum charge amount by currency" list as
// documented (major units), see docs/money.md.
var stripeMinimums = map[string]string{
	"USD": "0.50", "AED": "2.00", "ARS": "0.50", "AUD": "0.50", "BRL": "0.50",
	"CAD": "0.50", "CHF": "0.50", "COP": "0.50", "CZK": "15.00", "DKK": "2.50",
	"EUR": "0.50", "GBP": "0.30", "HKD": "4.00", "HUF": "175.00", "IDR": "0.50",
	"ILS": "0.50", "INR": "0.50", "JPY": "50", "KRW": "50", "MXN": "10",
	"MYR": "2.00", "NOK": "3.00", "NZD": "0.50", "PHP": "0.50", "PLN": "2.00",
	"RON": "2.00", "RUB": "0.50", "SEK": "3.00", "SGD": "0.50", "THB": "10",
	"ZAR": "0.50",
}

func TestMinimumCharge(t *testing.T) {
	for cur, major := range stripeMinimums {
		t.Run(cur, func(t *testing.T) {
			want, err := money.ToMinor(major, cur)
			if err != nil {
				t.Fatal(err)
			}
			got, known := money.MinimumCharge(cur)
			if !known || got != want {
				t.Fatalf("MinimumCharge(%s) = %d, %v; want %d (%s %s)", cur, got, known, want, major, cur)
			}
			if _, err := money.Total([]string{major}, cur); err != nil {
				t.Errorf("Total at the minimum: %v", err)
			}
			below, _ := money.FormatMinor(want-1, cur)
			if _, err := money.Total([]string{below}, cur); !errors.Is(err, money.ErrBelowMinimum) {
				t.Errorf("Total one minor unit below the minimum (%s): %v", below, err)
			}
		})
	}
	for _, cur := range []string{"KWD", "ISK", "UGX", "TWD", "XOF", "eur", "usd", "", "XXX", "ABC"} {
		t.Run("unknown "+cur, func(t *testing.T) {
			if got, known := money.MinimumCharge(cur); known || got != 0 {
				t.Errorf("MinimumCharge(%q) = %d, %v; want 0, false", cur, got, known)
			}
		})
	}
}

// TestCurrencyGroups checks the scale of every currency in Stripe's lists,
// and that the lists agree with ISO 4217/CLDR as golang.org/x/text has it.
func TestCurrencyGroups(t *testing.T) {
	groups := []struct {
		name    string
		codes   []string
		one     int64 // minor units for "1"
		xtScale int   // currency.Standard scale in x/text
	}{
		{"zero-decimal", []string{"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"}, 1, 0},
		{"three-decimal", []string{"BHD", "JOD", "KWD", "OMR", "TND"}, 1000, 3},
		{"whole units, two-decimal (ISK, UGX)", []string{"ISK", "UGX"}, 100, 0},
		{"two-decimal for charges (HUF, TWD)", []string{"HUF", "TWD"}, 100, 2},
		{"two-decimal", []string{"USD", "EUR", "GBP", "CHF", "AUD", "CAD", "SEK", "NOK", "DKK", "PLN", "CZK", "MXN", "BRL", "INR", "AED", "SGD", "HKD", "ZAR", "THB"}, 100, 2},
		{"two-decimal in Stripe, zero in CLDR", []string{"IDR", "COP", "PKR", "ALL", "AMD", "LBP", "RSD", "TZS", "UZS"}, 100, 0},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.codes {
				got, err := money.ToMinor("1", c)
				if err != nil || got != g.one {
					t.Errorf("ToMinor(\"1\", %s) = %d, %v; want %d", c, got, err, g.one)
				}
				u, err := currency.ParseISO(c)
				if err != nil {
					t.Errorf("x/text does not know %s: %v", c, err)
					continue
				}
				if scale, _ := currency.Standard.Rounding(u); scale != g.xtScale {
					t.Errorf("x/text scale of %s = %d; want %d", c, scale, g.xtScale)
				}
			}
		})
	}
}

func TestFormatMinor(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
		err      error
	}{
		{12345, "EUR", "123.45", nil},
		{5, "EUR", "0.05", nil},
		{50, "EUR", "0.50", nil},
		{0, "EUR", "0.00", nil},
		{money.MaxMinor, "EUR", "9999999999.99", nil},
		{1500, "JPY", "1500", nil},
		{0, "JPY", "0", nil},
		{1230, "KWD", "1.230", nil},
		{10, "KWD", "0.010", nil},
		{500, "ISK", "5.00", nil},
		{1045, "HUF", "10.45", nil},
		{1235, "KWD", "", money.ErrInexpressible},
		{150, "ISK", "", money.ErrInexpressible},
		{-1, "EUR", "", money.ErrInvalidAmount},
		{money.MaxMinor + 1, "EUR", "", money.ErrInvalidAmount},
		{1, "eur", "", money.ErrUnknownCurrency},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.minor, tc.currency), func(t *testing.T) {
			got, err := money.FormatMinor(tc.minor, tc.currency)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("FormatMinor = %q, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FormatMinor = %q, %v; want %q", got, err, tc.want)
			}
			back, err := money.ToMinor(got, tc.currency)
			if err != nil || back != tc.minor {
				t.Errorf("ToMinor(%q) = %d, %v; want %d", got, back, err, tc.minor)
			}
		})
	}
}

func TestToMinorDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := money.ToMinor("1.20e1", "EUR"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ToMinor allocates %v times per call", allocs)
	}
}

// Oracle for the fuzz target: the grammar and scale the package documents,
// evaluated with math/big (exact rationals; no floating point).
var (
	amountGrammar = regexp.MustCompile(`^(-?)([0-9]+(?:\.[0-9]+)?)(?:[eE]([+-]?)([0-9]+))?$`)
	fuzzRules     = []struct {
		code string
		exp  int64
		step int64
	}{
		{"EUR", 2, 1}, {"USD", 2, 1}, {"JPY", 0, 1}, {"KRW", 0, 1},
		{"KWD", 3, 10}, {"BHD", 3, 10}, {"ISK", 2, 100}, {"UGX", 2, 100},
		{"HUF", 2, 1}, {"TWD", 2, 1}, {"IDR", 2, 1}, {"eur", 0, 0},
	}
)

// expectMinor returns what ToMinor must return for amount, per the oracle.
func expectMinor(amount string, exp, step int64) (*big.Rat, int64, error) {
	m := amountGrammar.FindStringSubmatch(amount)
	if m == nil {
		return nil, 0, money.ErrInvalidAmount
	}
	e := int64(0)
	if digits := strings.TrimLeft(m[4], "0"); digits != "" {
		if len(digits) > 4 {
			return nil, 0, money.ErrInvalidAmount // exponent out of range
		}
		e, _ = strconv.ParseInt(digits, 10, 64)
		if e > 1000 {
			return nil, 0, money.ErrInvalidAmount
		}
		if m[3] == "-" {
			e = -e
		}
	}
	if m[1] == "-" {
		return nil, 0, money.ErrInvalidAmount // negative, including -0
	}
	value, ok := new(big.Rat).SetString(m[2])
	if !ok {
		panic("oracle: cannot parse " + m[2])
	}
	if e != 0 {
		pow := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(e)), nil))
		if e > 0 {
			value.Mul(value, pow)
		} else {
			value.Quo(value, pow)
		}
	}
	scaled := new(big.Rat).Mul(value, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(exp), nil)))
	if !scaled.IsInt() {
		return value, 0, money.ErrInexpressible
	}
	if scaled.Num().Cmp(big.NewInt(money.MaxMinor)) > 0 {
		return value, 0, money.ErrInvalidAmount
	}
	minor := scaled.Num().Int64()
	if minor%step != 0 {
		return value, 0, money.ErrInexpressible
	}
	return value, minor, nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func FuzzToMinor(f *testing.F) {
	for _, tc := range toMinorCases {
		for i, r := range fuzzRules {
			if r.code == tc.currency {
				f.Add(tc.amount, uint8(i))
			}
		}
		f.Add(tc.amount, uint8(0))
	}
	f.Fuzz(func(t *testing.T, amount string, pick uint8) {
		r := fuzzRules[int(pick)%len(fuzzRules)]
		got, err := money.ToMinor(amount, r.code)

		if r.step == 0 { // lower-case code
			if !errors.Is(err, money.ErrUnknownCurrency) {
				t.Fatalf("ToMinor(%q, %q) = %d, %v; want ErrUnknownCurrency", amount, r.code, got, err)
			}
			return
		}
		if err != nil {
			if got != 0 {
				t.Fatalf("ToMinor(%q, %s) = %d with error %v", amount, r.code, got, err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error text is %d bytes", len(err.Error()))
			}
		}

		value, want, wantErr := expectMinor(amount, r.exp, r.step)
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("ToMinor(%q, %s) = %d, %v; want error %v", amount, r.code, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("ToMinor(%q, %s) = %d, %v; want %d", amount, r.code, got, err, want)
		}

		// Round trip: the minor units formatted with the currency's decimals
		// are numerically equal to the input, and convert back to themselves.
		s, err := money.FormatMinor(got, r.code)
		if err != nil {
			t.Fatalf("FormatMinor(%d, %s): %v", got, r.code, err)
		}
		back, ok := new(big.Rat).SetString(s)
		if !ok || back.Cmp(value) != 0 {
			t.Fatalf("FormatMinor(%d, %s) = %q, not equal to %q", got, r.code, s, amount)
		}
		if again, err := money.ToMinor(s, r.code); err != nil || again != got {
			t.Fatalf("ToMinor(%q, %s) = %d, %v; want %d", s, r.code, again, err, got)
		}
	})
}

func BenchmarkToMinor(b *testing.B) {
	inputs := []struct{ amount, currency string }{
		{"123.45", "EUR"}, {"1500", "JPY"}, {"1.230", "KWD"}, {"1.20e1", "EUR"}, {"5", "ISK"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := inputs[i%len(inputs)]
		if _, err := money.ToMinor(in.amount, in.currency); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTotal(b *testing.B) {
	amounts := make([]string, 20)
	for i := range amounts {
		amounts[i] = strconv.Itoa(100+i) + ".50"
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := money.Total(amounts, "EUR"); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleToMinor() {
	for _, in := range []struct{ amount, currency string }{
		{"123.45", "EUR"}, {"1500", "JPY"}, {"1.230", "KWD"}, {"5", "ISK"}, {"1.235", "KWD"},
	} {
		minor, err := money.ToMinor(in.amount, in.currency)
		fmt.Println(minor, err)
	}
	// Output:
	// 12345 <nil>
	// 1500 <nil>
	// 1230 <nil>
	// 500 <nil>
	// 0 amount "1.235" in KWD: KWD can be charged with at most 2 decimals (Stripe requires the last of its 3 decimals to be 0): amount cannot be charged exactly in this currency
}

// A current ISO 4217 currency that Stripe cannot charge in is refused like an unknown one, so
// that the checkout refuses the cart before writing anything.
func TestCurrenciesStripeCannotPresent(t *testing.T) {
	for _, c := range []string{"CUP", "IRR", "KPW", "SYP", "SDG"} {
		if _, err := currency.ParseISO(c); err != nil {
			t.Errorf("x/text does not know %s (the test wants a currency it knows): %v", c, err)
		}
		if _, err := money.ToMinor("1", c); !errors.Is(err, money.ErrUnknownCurrency) {
			t.Errorf("ToMinor(\"1\", %s): %v, want ErrUnknownCurrency", c, err)
		}
	}
}
