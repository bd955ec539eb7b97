package money

// maxExponent bounds the exponent part of an amount ("1e999999999" is refused
// without any work proportional to the exponent). DynamoDB numbers stay
// within 10^-130 .. 10^126, so real amounts never come near it.
const maxExponent = 1000

// maxDigits is the number of decimal digits of MaxMinor.
const maxDigits = 12

// decimal is a parsed non-negative decimal number. Its digits are
// intPart followed by fracPart; value = digits × 10^(exp - len(fracPart)).
type decimal struct {
	intPart, fracPart string
	exp               int
}

// syntaxError says why a string is not a decimal number; the messages are
// safe to show to a client.
type syntaxError string

const (
	errSyntax   syntaxError = "not a decimal number"
	errExponent syntaxError = "exponent out of range"
)

// parseDecimal parses an unsigned decimal in the form DynamoDB returns:
//
//	digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ]
//
// Leading and trailing zeros are fine; signs on the number, spaces, a bare
// "." at either end, hexadecimal, "NaN" and "Inf" are not.
func parseDecimal(s string) (decimal, syntaxError) {
	var d decimal
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return d, errSyntax
	}
	d.intPart = s[:i]
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return d, errSyntax
		}
		d.fracPart = s[start:i]
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		start := i
		exp, tooBig := 0, false
		for i < len(s) && isDigit(s[i]) {
			if !tooBig {
				exp = exp*10 + int(s[i]-'0')
				tooBig = exp > maxExponent
			}
			i++
		}
		if i == start {
			return d, errSyntax
		}
		if i != len(s) {
			return d, errSyntax
		}
		if tooBig {
			return d, errExponent
		}
		if neg {
			exp = -exp
		}
		d.exp = exp
	}
	if i != len(s) {
		return d, errSyntax
	}
	return d, ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digit returns the i-th digit of intPart followed by fracPart.
func (d decimal) digit(i int) byte {
	if i < len(d.intPart) {
		return d.intPart[i]
	}
	return d.fracPart[i-len(d.intPart)]
}

// scaleResult is the outcome of decimal.scale.
type scaleResult int

const (
	scaled       scaleResult = iota
	tooPrecise               // value × 10^exp is not an integer
	tooManyDigit             // value × 10^exp has more than maxDigits digits
)

// scale returns value × 10^exp as an integer when that is exact and has at
// most maxDigits digits. It does not allocate.
func (d decimal) scale(exp int) (int64, scaleResult) {
	n := len(d.intPart) + len(d.fracPart)
	lo, hi := 0, n // significant digits are digit(lo) .. digit(hi-1)
	for lo < hi && d.digit(lo) == '0' {
		lo++
	}
	for hi > lo && d.digit(hi-1) == '0' {
		hi--
	}
	if lo == hi {
		return 0, scaled // zero, whatever the exponent
	}
	// value = sig × 10^(d.exp - len(fracPart) + trailing zeros); scaled by 10^exp:
	k := d.exp - len(d.fracPart) + (n - hi) + exp
	if k < 0 {
		return 0, tooPrecise // sig has no trailing zero to absorb a negative power
	}
	if (hi-lo)+k > maxDigits {
		return 0, tooManyDigit
	}
	var v int64
	for i := lo; i < hi; i++ {
		v = v*10 + int64(d.digit(i)-'0')
	}
	for ; k > 0; k-- {
		v *= 10
	}
	return v, scaled
}
