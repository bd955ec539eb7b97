package sample

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The sample owners: each is the `sub` of a traveller.
const (
	Alice = "traveller-alice"
	Bob   = "traveller-bob"
)

// RedirectURL is the sample redirect; its host is in the local allow-list.
const RedirectURL = "https://ota.wink.travel/thank-you"

// Customizations returns the sample customizations.
func Customizations() []Customization {
	return []Customization{
		{ID: "cz-partner", Active: true, AllowedRedirectHosts: []string{"*.partner.example"}, StatementDescriptorSuffix: "PARTNER"},
		{ID: "cz-retired", Active: false, AllowedRedirectHosts: []string{"retired.example"}},
	}
}

// LongExpired is an expiry that TTL leaves alone: DynamoDB Local, like DynamoDB, does not delete
// an item whose TTL timestamp lies more than five years in the past, while one that expired
// recently is gone within seconds locally. Sample and test carts that must stay expired use it.
func LongExpired(now time.Time) time.Time { return now.AddDate(-6, 0, 0) }

// Carts returns the sample carts, expiring a week after now (one long expired).
func Carts(now time.Time) []Cart {
	week := now.Add(7 * 24 * time.Hour)
	return []Cart{
		{ID: "cart-alice-lisbon", Owner: Alice, Currency: "EUR", ExpiresAt: week, Items: []Item{
			{HotelName: "Hotel Avenida", Amount: "320.00"},
			{HotelName: "Casa do Rio", Amount: "189.90"},
			{HotelName: "Pousada Alfama", Amount: "95.5"},
		}},
		{ID: "cart-alice-tokyo", Owner: Alice, Currency: "JPY", ExpiresAt: week, Items: []Item{
			{HotelName: "Shinjuku Stay", Amount: "42000"},
			{HotelName: "Asakusa Inn", Amount: "18500"},
		}},
		{ID: "cart-alice-expired", Owner: Alice, Currency: "EUR", ExpiresAt: LongExpired(now), Items: []Item{
			{HotelName: "Hotel Yesterday", Amount: "120.00"},
		}},
		{ID: "cart-bob-kuwait", Owner: Bob, Currency: "KWD", ExpiresAt: week, Items: []Item{
			{HotelName: "Gulf Towers", Amount: "85.250"},
		}},
		{ID: "cart-bob-paris", Owner: Bob, Currency: "EUR", ExpiresAt: week, Items: []Item{
			{HotelName: "Le Petit Hôtel", Amount: "210.00"},
		}},
	}
}

// Seed writes the sample customizations and carts; carts already there are reset to OPEN.
func Seed(ctx context.Context, db *dynamodb.Client, cartsTable, customizationsTable string, now time.Time) error {
	for _, c := range Customizations() {
		if err := PutCustomization(ctx, db, customizationsTable, c); err != nil {
			return err
		}
	}
	for _, c := range Carts(now) {
		if err := PutCart(ctx, db, cartsTable, c); err != nil {
			return err
		}
	}
	return nil
}

// extraHotels and extraAmounts fill the carts of NewCart. The amounts are whole major units, so
// they are valid in every currency Stripe charges (zero-, two- and three-decimal), and each is
// above Stripe's largest minimum charge (HUF 175), so any number of rooms can be checked out.
var (
	extraHotels  = []string{"Hotel Avenida", "Shinjuku Stay", "Gulf Towers", "Le Petit Hôtel", "Casa do Rio", "Asakusa Inn"}
	extraAmounts = []string{"180", "245", "320", "199", "410", "275"}
)

// NewCart returns an open cart of owner with the given number of rooms in currency, expiring at
// expiresAt, for adding carts by hand to a running local stack (`make seed`).
func NewCart(id, owner, currency string, rooms int, expiresAt time.Time) Cart {
	c := Cart{ID: id, Owner: owner, Currency: currency, ExpiresAt: expiresAt}
	for i := range rooms {
		c.Items = append(c.Items, Item{
			HotelName: extraHotels[i%len(extraHotels)],
			Amount:    extraAmounts[i%len(extraAmounts)],
		})
	}
	return c
}
