// Package sample writes carts and customizations the way the cart service and the affiliate
// back office do, for the local stack, its sample data and the tests.
package sample

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is one room of a cart. Amount is a decimal in major units, stored as a DynamoDB number.
type Item struct {
	HotelName string
	Amount    string
	Currency  string // "" means the cart's currency
}

// Cart is a shopping cart to write.
type Cart struct {
	ID        string
	Owner     string
	Status    string // "" means OPEN
	Currency  string
	Items     []Item
	ExpiresAt time.Time // zero: no expiresAt attribute
}

// Customization is an affiliate customization to write.
type Customization struct {
	ID                        string
	Active                    bool
	AllowedRedirectHosts      []string
	StatementDescriptorSuffix string
}

// PutCart writes (or overwrites) a cart, with version 1.
func PutCart(ctx context.Context, db *dynamodb.Client, table string, c Cart) error {
	status := c.Status
	if status == "" {
		status = "OPEN"
	}
	items := make([]types.AttributeValue, len(c.Items))
	for i, it := range c.Items {
		currency := it.Currency
		if currency == "" {
			currency = c.Currency
		}
		n := strconv.Itoa(i + 1)
		items[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"identifier":         str(c.ID + "-item-" + n),
			"hotelIdentifier":    str("hotel-" + n),
			"hotelName":          str(it.HotelName),
			"roomRateIdentifier": str("rate-" + n),
			"startDate":          str("2027-03-01"),
			"endDate":            str("2027-03-04"),
			"adults":             num("2"),
			"children":           num("0"),
			"total": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"amount": num(it.Amount), "currency": str(currency),
			}},
		}}
	}
	item := map[string]types.AttributeValue{
		"identifier":      str(c.ID),
		"ownerIdentifier": str(c.Owner),
		"status":          str(status),
		"currency":        str(c.Currency),
		"items":           &types.AttributeValueMemberL{Value: items},
		"version":         num("1"),
	}
	if !c.ExpiresAt.IsZero() {
		item["expiresAt"] = num(strconv.FormatInt(c.ExpiresAt.Unix(), 10))
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("put cart %s: %w", c.ID, err)
	}
	return nil
}

// PutCustomization writes (or overwrites) a customization.
func PutCustomization(ctx context.Context, db *dynamodb.Client, table string, c Customization) error {
	hosts := make([]types.AttributeValue, len(c.AllowedRedirectHosts))
	for i, h := range c.AllowedRedirectHosts {
		hosts[i] = str(h)
	}
	item := map[string]types.AttributeValue{
		"identifier":           str(c.ID),
		"affiliateIdentifier":  str("affiliate-" + c.ID),
		"active":               &types.AttributeValueMemberBOOL{Value: c.Active},
		"allowedRedirectHosts": &types.AttributeValueMemberL{Value: hosts},
	}
	if c.StatementDescriptorSuffix != "" {
		item["statementDescriptorSuffix"] = str(c.StatementDescriptorSuffix)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("put customization %s: %w", c.ID, err)
	}
	return nil
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
