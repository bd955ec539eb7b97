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

// BackfillHolds puts a hold for every started checkout of the carts table whose state predates
// holds (no holdEndsAt), due at its start plus hold, unless it has one. It returns how many it
// added. It scans the table: a one-off after a deploy (cmd/backfill-holds), never a request path.
func BackfillHolds(ctx context.Context, db *dynamodb.Client, cartsTable, holdsTable string, hold time.Duration) (int, error) {
	added := 0
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{
		TableName:                &cartsTable,
		FilterExpression:         aws.String("#status IN (:checkingOut, :checkedOut) AND attribute_not_exists(#checkout.#holdEndsAt)"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#checkout": "checkout", "#holdEndsAt": "holdEndsAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":checkingOut": stringValue(string(checkout.CartCheckingOut)), ":checkedOut": stringValue(string(checkout.CartCheckedOut)),
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return added, fmt.Errorf("scan %s: %w", cartsTable, err)
		}
		for _, item := range page.Items {
			var r cartRecord
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return added, fmt.Errorf("decode cart: %w", err)
			}
			cart, err := r.cart()
			if err != nil || cart.Checkout == nil || cart.Checkout.GroupIdentifier == "" {
				return added, fmt.Errorf("cart %s: started without a readable checkout state (%v)", r.Identifier, err)
			}
			state := cart.Checkout.WithDefaults(hold)
			h, err := attributevalue.MarshalMap(holdRecord{
				GroupIdentifier: state.GroupIdentifier, HoldShard: HoldShard(state.GroupIdentifier),
				HoldEndsAt: state.HoldEndsAt.Unix(), ShoppingCartIdentifier: cart.Identifier,
			})
			if err != nil {
				return added, err
			}
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: &holdsTable, Item: h, ConditionExpression: aws.String("attribute_not_exists(groupIdentifier)"),
			})
			var exists *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &exists):
			case err != nil:
				return added, fmt.Errorf("put the hold of cart %s: %w", cart.Identifier, err)
			default:
				added++
			}
		}
	}
	return added, nil
}
