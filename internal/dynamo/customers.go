package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Customers maps travellers to their Stripe customers. The first customer stored wins; it is
// replaced only when Stripe no longer knows it.
type Customers struct {
	db    *dynamodb.Client
	table string
	now   func() time.Time
}

var _ checkout.Customers = (*Customers)(nil)

// NewCustomers returns the customer-mapping adapter on the named table.
func NewCustomers(db *dynamodb.Client, table string) *Customers {
	return &Customers{db: db, table: table, now: time.Now}
}

// Get returns the traveller's mapping, read consistently: a retry must see the key generation
// that the failed attempt advanced.
func (c *Customers) Get(ctx context.Context, owner string) (checkout.Customer, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &c.table,
		Key:            c.key(owner),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return checkout.Customer{}, err
	}
	if out.Item == nil {
		return checkout.Customer{}, checkout.ErrNotFound
	}
	return decodeCustomer(out.Item)
}

func decodeCustomer(item map[string]types.AttributeValue) (checkout.Customer, error) {
	var r customerRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return checkout.Customer{}, fmt.Errorf("decode customer: %w", err)
	}
	return checkout.Customer{ID: r.StripeCustomerID, KeyGeneration: max(r.KeyGeneration, 1)}, nil
}

// Add stores the mapping unless the traveller has a customer already; either way it returns the
// stored one.
func (c *Customers) Add(ctx context.Context, owner, customerID string) (string, error) {
	_, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &c.table,
		Key:                      c.key(owner),
		UpdateExpression:         aws.String("SET #customer = :customer, #createdAt = :now"),
		ConditionExpression:      aws.String("attribute_not_exists(#customer)"),
		ExpressionAttributeNames: map[string]string{"#customer": "stripeCustomerId", "#createdAt": "createdAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":customer": stringValue(customerID),
			":now":      stringValue(c.now().UTC().Format(time.RFC3339)),
		},
	})
	var exists *types.ConditionalCheckFailedException
	if errors.As(err, &exists) {
		stored, err := c.Get(ctx, owner)
		if err == nil && stored.ID == "" {
			err = errors.New("the mapping changed while it was stored")
		}
		return stored.ID, err
	}
	if err != nil {
		return "", err
	}
	return customerID, nil
}

// AdvanceKey moves the traveller's customer-create key to the generation after from.
func (c *Customers) AdvanceKey(ctx context.Context, owner string, from int) error {
	condition := "#generation = :from"
	if from <= 1 {
		condition = "attribute_not_exists(#generation) OR #generation = :from"
	}
	_, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &c.table,
		Key:                      c.key(owner),
		UpdateExpression:         aws.String("SET #generation = :next"),
		ConditionExpression:      aws.String(condition),
		ExpressionAttributeNames: map[string]string{"#generation": "keyGeneration"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":from": numberValue(int64(from)), ":next": numberValue(int64(from + 1)),
		},
	})
	var advanced *types.ConditionalCheckFailedException
	if errors.As(err, &advanced) {
		return nil // another request advanced it first
	}
	return err
}

// Replace forgets the traveller's customer gone, if the mapping still holds it, and advances the
// key generation so that the next create makes a new customer; it returns the mapping after.
func (c *Customers) Replace(ctx context.Context, owner, gone string) (checkout.Customer, error) {
	out, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &c.table,
		Key:                      c.key(owner),
		UpdateExpression:         aws.String("SET #generation = if_not_exists(#generation, :one) + :one, #replaced = :gone REMOVE #customer"),
		ConditionExpression:      aws.String("#customer = :gone"),
		ExpressionAttributeNames: map[string]string{"#generation": "keyGeneration", "#customer": "stripeCustomerId", "#replaced": "replacedCustomerId"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":gone": stringValue(gone), ":one": numberValue(1),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var changed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &changed):
		// Replaced already (or never stored): the mapping as it stands is the one to use.
		stored, err := c.Get(ctx, owner)
		if errors.Is(err, checkout.ErrNotFound) {
			return checkout.Customer{KeyGeneration: 1}, nil
		}
		return stored, err
	case err != nil:
		return checkout.Customer{}, err
	}
	return decodeCustomer(out.Attributes)
}

func (c *Customers) key(owner string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"ownerIdentifier": stringValue(owner)}
}
