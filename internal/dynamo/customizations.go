package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Customizations reads affiliate customizations.
type Customizations struct {
	db    *dynamodb.Client
	table string
}

var _ checkout.Customizations = (*Customizations)(nil)

// NewCustomizations returns the customizations adapter on the named table.
func NewCustomizations(db *dynamodb.Client, table string) *Customizations {
	return &Customizations{db: db, table: table}
}

// Get reads one customization.
func (c *Customizations) Get(ctx context.Context, id string) (checkout.Customization, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &c.table,
		Key:       map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		return checkout.Customization{}, err
	}
	if out.Item == nil {
		return checkout.Customization{}, checkout.ErrNotFound
	}
	var r customizationRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return checkout.Customization{}, fmt.Errorf("decode customization: %w", err)
	}
	return checkout.Customization{
		Identifier:                r.Identifier,
		AffiliateIdentifier:       r.AffiliateIdentifier,
		Active:                    r.Active,
		AllowedRedirectHosts:      r.AllowedRedirectHosts,
		StatementDescriptorSuffix: r.StatementDescriptorSuffix,
	}, nil
}
