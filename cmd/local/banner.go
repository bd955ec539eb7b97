package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// readyLine ends the banner: once it is printed, everything answers.
const readyLine = "Ready. Ctrl-C stops the server, DynamoDB Local and stripe-mock."

type bannerInfo struct {
	url                  string // POST endpoint
	webhookURL           string // the Stripe webhook's
	identityClaim        string
	tables               []string
	dynamoURL, stripeURL string
	stripeLayer          string // what the functions call: stripe-mock with Stripe's state
	dataDir              string
	redirectHosts        string
	hold, releaseEvery   time.Duration
	ga4Endpoint          string // where purchases go
	ga4Received          string // what the local collector received
	startup              time.Duration
}

// banner is what `make run` prints once everything is up: every line is ready to paste.
func banner(b bannerInfo) string {
	storage := "in memory: gone when the server stops"
	if b.dataDir != "" {
		storage = "data kept in " + b.dataDir
	}
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	p("")
	p("Checkout running locally (started in %.1fs), listening on 127.0.0.1 only:", b.startup.Seconds())
	p("")
	p("  POST %s", b.url)
	p("  POST %s   (Stripe webhook, signing secret %s)", b.webhookURL, webhookSecret)
	p("")
	p("Identity: send 'Authorization: Bearer <JWT>'. The JWT is decoded, NOT verified: there is no")
	p("authorizer locally (no signature, issuer, audience or expiry check). Sample tokens (alg none):")
	p("")
	p("  ALICE_TOKEN=%s", ownerToken(sample.Alice, b.identityClaim))
	p("  BOB_TOKEN=%s", ownerToken(sample.Bob, b.identityClaim))
	p("")
	p("Sample carts:   cart-alice-lisbon (3 rooms, EUR), cart-alice-tokyo (JPY), cart-alice-expired (400),")
	p("                cart-bob-kuwait (KWD), cart-bob-paris (403 with Alice's token)")
	p("Tables:         %s", strings.Join(b.tables, ", "))
	p("DynamoDB Local: %s (%s; it listens on every interface of its port)", b.dynamoURL, storage)
	p("stripe-mock:    %s (the functions call it through %s, which keeps Stripe's state)", b.stripeURL, b.stripeLayer)
	p("Redirect hosts: %s, and http://localhost or http://127.0.0.1 (LOCAL_MODE)", b.redirectHosts)
	p("Holds:          %v (CHECKOUT_HOLD); the hold releaser runs every %v (LOCAL_RELEASE_EVERY)", b.hold, b.releaseEvery)
	p("GA4 purchases:  sent to %s; what the local collector received: curl -sS %s", b.ga4Endpoint, b.ga4Received)
	p("")
	p("Check out Alice's Lisbon cart (the same command again answers the same booking group):")
	p("")
	p("%s", curlCommand(b.url, ownerToken(sample.Alice, b.identityClaim), "cart-alice-lisbon"))
	p("")
	p("Pay it, as Stripe would tell the webhook (its bookings CONFIRMED, the cart PAID, a GA4 purchase sent):")
	p("")
	p("  make pay CART=cart-alice-lisbon")
	p("")
	p("More carts: make seed OWNER=%s ITEMS=2 CURRENCY=EUR    (docs/local.md)", sample.Alice)
	p("%s", readyLine)
	return sb.String()
}

// curlCommand is a ready-to-paste checkout of cartID with token.
func curlCommand(url, token, cartID string) string {
	return "  curl -sS " + url + " \\\n" +
		"    -H 'Authorization: Bearer " + token + "' \\\n" +
		"    -H 'Content-Type: application/json' \\\n" +
		`    -d '{"shoppingCartIdentifier":"` + cartID + `","redirectUrl":"` + sample.RedirectURL + `",` +
		`"ga4ClientId":"1234567890.1700000000","ga4MeasurementId":"` + testenv.GA4MeasurementID + `"}'`
}
