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

// Customers maps travellers to their Stripe customers. A mapping, once stored, never changes.
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

// Get returns the traveller's Stripe customer id.
func (c *Customers) Get(ctx context.Context, owner string) (string, error) {
	return c.get(ctx, owner, false)
}

func (c *Customers) get(ctx context.Context, owner string, consistent bool) (string, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &c.table,
		Key:            map[string]types.AttributeValue{"ownerIdentifier": &types.AttributeValueMemberS{Value: owner}},
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return "", err
	}
	if out.Item == nil {
		return "", checkout.ErrNotFound
	}
	var r customerRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return "", fmt.Errorf("decode customer: %w", err)
	}
	return r.StripeCustomerID, nil
}

// Add stores the mapping unless the traveller has one already; either way it returns the stored one.
func (c *Customers) Add(ctx context.Context, owner, customerID string) (string, error) {
	item, err := attributevalue.MarshalMap(customerRecord{
		OwnerIdentifier:  owner,
		StripeCustomerID: customerID,
		CreatedAt:        c.now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return "", fmt.Errorf("encode customer: %w", err)
	}
	_, err = c.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &c.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(ownerIdentifier)"),
	})
	var exists *types.ConditionalCheckFailedException
	if errors.As(err, &exists) {
		return c.get(ctx, owner, true)
	}
	if err != nil {
		return "", err
	}
	return customerID, nil
}
