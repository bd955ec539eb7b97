package money

import (
	"strings"

	"golang.org/x/text/currency"
)

// Stripe's currency rules, from https://docs.stripe.com/currencies (see
// docs/money.md for the quotes and the archived copies relied on).
//
// Stripe: "Currencies are two-decimal currencies unless otherwise specified."
// The exponent used to scale an amount into Stripe's integer "amount" is
// therefore Stripe's, not the one golang.org/x/text reports: x/text's
// currency.Standard scale comes from CLDR (version 32), which gives 0 digits
// for several currencies Stripe charges with two decimals (IDR, COP, PKR,
// ...). Using it as the scale would send those amounts 100 times too small.
// x/text decides which codes are recognised, current legal tender.

// stripeZeroDecimal lists Stripe's zero-decimal currencies: the amount is sent
// as is. Stripe also lists UGX here, but its special-cases table overrides
// that (see stripeWholeUnitsTwoDecimal).
var stripeZeroDecimal = []string{
	"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
	"PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF",
}

// stripeThreeDecimal lists Stripe's three-decimal currencies: the amount is in
// thousandths, and Stripe requires its last digit to be 0, so at most two
// decimals of the major unit can be charged.
var stripeThreeDecimal = []string{"BHD", "JOD", "KWD", "OMR", "TND"}

// stripeWholeUnitsTwoDecimal lists Stripe's special cases ISK and UGX: they
// "transitioned to a zero-decimal currency, but backward compatibility
// requires you to represent it as a two-decimal value, where the decimal
// amount is always 00 ... You can't charge fractions of ISK/UGX". So 5 ISK is
// sent as 500, and only whole units are expressible.
//
// The other two special cases, HUF and TWD, restrict manual payouts only
// ("even though you can charge two-decimal amounts"); for charges they are
// ordinary two-decimal currencies and need no entry.
var stripeWholeUnitsTwoDecimal = []string{"ISK", "UGX"}

// stripePresentment lists the currencies Stripe can charge in (its "Supported presentment
// currencies"). A current ISO 4217 currency outside it (CUP, IRR, KPW, SYP, VES, ...) is refused
// before anything is written, instead of after the checkout started.
var stripePresentment = strings.Fields(`
	USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BWP
	BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP
	GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS KHR KMF KRW KWD KYD KZT
	LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
	NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD
	SZL THB TJS TND TOP TRY TTD TWD TZS UAH UGX UYU UZS VND VUV WST XAF XCD XCG XOF XPF YER ZAR
	ZMW`)

// stripeMinimumCharge is Stripe's "Minimum charge amount by currency" table,
// in minor units of the currency (the documented major-unit value in the
// comment). Stripe states these minimums for the settlement currency; this
// package applies them to the cart (presentment) currency, which is exact
// only when that is also the account's settlement currency.
var stripeMinimumCharge = map[string]int64{
	"USD": 50,    // 0.50
	"AED": 200,   // 2.00
	"ARS": 50,    // 0.50
	"AUD": 50,    // 0.50
	"BRL": 50,    // 0.50
	"CAD": 50,    // 0.50
	"CHF": 50,    // 0.50
	"COP": 50,    // 0.50
	"CZK": 1500,  // 15.00
	"DKK": 250,   // 2.50
	"EUR": 50,    // 0.50
	"GBP": 30,    // 0.30
	"HKD": 400,   // 4.00
	"HUF": 17500, // 175.00
	"IDR": 50,    // 0.50
	"ILS": 50,    // 0.50
	"INR": 50,    // 0.50
	"JPY": 50,    // 50
	"KRW": 50,    // 50
	"MXN": 1000,  // 10
	"MYR": 200,   // 2.00
	"NOK": 300,   // 3.00
	"NZD": 50,    // 0.50
	"PHP": 50,    // 0.50
	"PLN": 200,   // 2.00
	"RON": 200,   // 2.00
	"RUB": 50,    // 0.50
	"SEK": 300,   // 3.00
	"SGD": 50,    // 0.50
	"THB": 1000,  // 10
	"ZAR": 50,    // 0.50
}

// rule is how one currency's decimal amounts map onto Stripe minor units.
type rule struct {
	exp      int   // amount × 10^exp = Stripe minor units
	step     int64 // minor units must be a multiple of step
	decimals int   // decimals of the major unit Stripe can charge (exp - log10(step))
	min      int64 // Stripe's minimum charge in minor units; 0 when unknown
}

// rules holds every currency this package accepts, keyed by upper-case code.
var rules = buildRules()

func buildRules() map[string]rule {
	override := make(map[string]rule)
	for _, c := range stripeZeroDecimal {
		override[c] = rule{exp: 0, step: 1, decimals: 0}
	}
	for _, c := range stripeThreeDecimal {
		override[c] = rule{exp: 3, step: 10, decimals: 2}
	}
	for _, c := range stripeWholeUnitsTwoDecimal {
		override[c] = rule{exp: 2, step: 100, decimals: 0}
	}

	presentable := make(map[string]bool, len(stripePresentment))
	for _, c := range stripePresentment {
		presentable[c] = true
	}
	m := make(map[string]rule)
	// The default query yields the units that x/text (CLDR) knows as current
	// legal tender in some region: no historical codes (DEM), no test or
	// no-currency codes (XTS, XXX), no metals or funds (XAU, XDR, CLF).
	for it := currency.Query(); it.Next(); {
		u := it.Unit()
		code := u.String()
		if !presentable[code] {
			continue
		}
		r, ok := override[code]
		if !ok {
			if scale, _ := currency.Standard.Rounding(u); scale > 2 {
				// ISO/CLDR has more than two decimals (e.g. LYD) but Stripe
				// documents no three-decimal handling for it: the scale
				// Stripe would use is unknown, so refuse rather than guess.
				continue
			}
			r = rule{exp: 2, step: 1, decimals: 2}
		}
		r.min = stripeMinimumCharge[code]
		m[code] = r
	}
	return m
}

// lookup returns the rule for an upper-case ISO 4217 code.
func lookup(code string) (rule, bool) {
	if !wellFormedCode(code) {
		return rule{}, false
	}
	r, ok := rules[code]
	return r, ok
}

func wellFormedCode(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}
