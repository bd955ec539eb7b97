// Package money converts the cart service's decimal amounts into Stripe's integer minor units, exactly.
//
// Amounts arrive as DynamoDB numbers: decimal strings in major units ("123.45"
// EUR, "1500" JPY, "1.2E+2"). They are never converted through a
// floating-point type. An amount the currency cannot express exactly in
// Stripe is refused (ErrInexpressible), never rounded; the caller treats that
// as "the cart is not checkoutable".
//
// The per-currency rules (Stripe's zero-decimal, three-decimal and special
// cases, minimum and maximum charges) and their sources are in docs/money.md.
//
// Error texts name the amount, the currency and the reason in plain words, so
// that they can be shown to a client as the reason a cart is not checkoutable;
// use errors.Is with the Err values to branch on the kind of failure.
package money

import (
	"errors"
	"fmt"
	"strconv"
)

var (
	// ErrUnknownCurrency: the code is not a three-letter upper-case ISO 4217
	// code of a current currency (per golang.org/x/text) that this package
	// can map onto Stripe's amounts.
	ErrUnknownCurrency = errors.New("unknown or unsupported currency")

	// ErrInexpressible: the amount has more precision than Stripe can charge
	// in the currency (1.5 JPY, 1.234 EUR, 1.235 KWD, 1.5 ISK).
	ErrInexpressible = errors.New("amount cannot be charged exactly in this currency")

	// ErrInvalidAmount: the amount is not a non-negative decimal number, its
	// exponent is out of range, or it (or a total) is above MaxMinor.
	ErrInvalidAmount = errors.New("invalid amount")

	// ErrBelowMinimum: the total is zero or under Stripe's minimum charge for
	// the currency.
	ErrBelowMinimum = errors.New("total is below the minimum charge")
)

// MaxMinor is the largest amount, in minor units, that ToMinor and Total
// return: Stripe's documented ceiling of 12 digits (card payments). Many
// payment methods and card networks accept less (8 digits for most non-card
// methods, 9 for American Express); Stripe enforces those itself.
const MaxMinor int64 = 999_999_999_999

// ToMinor converts one amount, a non-negative decimal string as DynamoDB
// returns numbers ("123.45", "100", "0.5", "1E+2", "1.20e1", "12.50"), into
// Stripe minor units for currency (an upper-case ISO 4217 code such as "EUR").
//
// Zero is allowed (a free item). A sign is not: "-1" and "-0" are
// ErrInvalidAmount. The result is at most MaxMinor.
func ToMinor(amount, currency string) (int64, error) {
	r, err := currencyRule(currency)
	if err != nil {
		return 0, err
	}
	return toMinor(amount, currency, r)
}

func toMinor(amount, cur string, r rule) (int64, error) {
	body, negative := amount, false
	if len(body) > 0 && body[0] == '-' {
		body, negative = body[1:], true
	}
	d, serr := parseDecimal(body)
	if serr != "" {
		return 0, amountError(amount, cur, string(serr), ErrInvalidAmount)
	}
	if negative {
		return 0, amountError(amount, cur, "negative amounts are not allowed", ErrInvalidAmount)
	}
	minor, res := d.scale(r.exp)
	switch {
	case res == tooPrecise || (res == scaled && minor%r.step != 0):
		return 0, amountError(amount, cur, precisionReason(cur, r), ErrInexpressible)
	case res == tooManyDigit || minor > MaxMinor:
		return 0, amountError(amount, cur, "above the largest amount Stripe accepts", ErrInvalidAmount)
	}
	return minor, nil
}

// Total converts every item amount (all in currency) with ToMinor and sums
// them. The total must not exceed MaxMinor, must not be zero (Stripe charges
// a positive amount), and must reach MinimumCharge where that is known.
func Total(amounts []string, currency string) (int64, error) {
	r, err := currencyRule(currency)
	if err != nil {
		return 0, err
	}
	var total int64
	for i, a := range amounts {
		m, err := toMinor(a, currency, r)
		if err != nil {
			return 0, fmt.Errorf("item %d: %w", i+1, err)
		}
		// Both are ≤ MaxMinor, so the sum cannot overflow int64.
		total += m
		if total > MaxMinor {
			return 0, fmt.Errorf("total of %d items in %s: above the largest amount Stripe accepts: %w",
				len(amounts), currency, ErrInvalidAmount)
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("total 0 %s: nothing to charge: %w", currency, ErrBelowMinimum)
	}
	if r.min > 0 && total < r.min {
		return 0, fmt.Errorf("total %s %s: below the minimum charge of %s %s: %w",
			format(total, r), currency, format(r.min, r), currency, ErrBelowMinimum)
	}
	return total, nil
}

// MinimumCharge returns Stripe's minimum charge for currency in minor units,
// and whether Stripe documents one for it. Stripe states the minimums for the
// settlement currency; they are exact here only when the cart currency is the
// account's settlement currency (see docs/money.md).
func MinimumCharge(currency string) (minor int64, known bool) {
	r, ok := lookup(currency)
	if !ok || r.min == 0 {
		return 0, false
	}
	return r.min, true
}

// FormatMinor formats minor units of currency back as a major-unit decimal
// with Stripe's decimals for the currency: 12345 EUR -> "123.45", 1500 JPY ->
// "1500", 1230 KWD -> "1.230", 500 ISK -> "5.00". It is the inverse of ToMinor:
// it refuses what ToMinor never returns (negative, above MaxMinor, or not a
// multiple of the currency's step, like 1235 KWD or 150 ISK).
func FormatMinor(minor int64, currency string) (string, error) {
	r, err := currencyRule(currency)
	if err != nil {
		return "", err
	}
	if minor < 0 || minor > MaxMinor {
		return "", fmt.Errorf("%d minor units of %s: out of range: %w", minor, currency, ErrInvalidAmount)
	}
	if minor%r.step != 0 {
		return "", fmt.Errorf("%d minor units of %s: %s: %w", minor, currency, precisionReason(currency, r), ErrInexpressible)
	}
	return format(minor, r), nil
}

// format writes minor (0 ≤ minor ≤ MaxMinor) with r.exp decimals.
func format(minor int64, r rule) string {
	var buf [32]byte
	digits := strconv.AppendInt(buf[:0], minor, 10)
	if r.exp == 0 {
		return string(digits)
	}
	// Left-pad with zeros so there is at least one integer digit.
	for len(digits) <= r.exp {
		digits = append(digits[:1], digits...)
		digits[0] = '0'
	}
	point := len(digits) - r.exp
	out := make([]byte, 0, len(digits)+1)
	out = append(out, digits[:point]...)
	out = append(out, '.')
	out = append(out, digits[point:]...)
	return string(out)
}

func currencyRule(cur string) (rule, error) {
	if !wellFormedCode(cur) {
		return rule{}, fmt.Errorf("currency %s: must be a three-letter upper-case ISO 4217 code: %w",
			quote(cur), ErrUnknownCurrency)
	}
	r, ok := rules[cur]
	if !ok {
		return rule{}, fmt.Errorf("currency %s: %w", cur, ErrUnknownCurrency)
	}
	return r, nil
}

func amountError(amount, cur, reason string, kind error) error {
	return fmt.Errorf("amount %s in %s: %s: %w", quote(amount), cur, reason, kind)
}

func precisionReason(cur string, r rule) string {
	switch {
	case r.decimals == 0:
		return cur + " can only be charged in whole units"
	case r.decimals < r.exp:
		return cur + " can be charged with at most " + strconv.Itoa(r.decimals) +
			" decimals (Stripe requires the last of its " + strconv.Itoa(r.exp) + " decimals to be 0)"
	default:
		return cur + " has at most " + strconv.Itoa(r.decimals) + " decimals"
	}
}

// quote quotes s for an error message, cut to a readable length.
func quote(s string) string {
	const maxLen = 32
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "..."
	}
	return strconv.Quote(s)
}
