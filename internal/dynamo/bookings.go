package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Bookings reads bookings by group, through the byGroup index.
type Bookings struct {
	db    *dynamodb.Client
	table string
}

var _ checkout.Bookings = (*Bookings)(nil)

// NewBookings returns the bookings adapter on the named table.
func NewBookings(db *dynamodb.Client, table string) *Bookings {
	return &Bookings{db: db, table: table}
}

// OfGroup queries the byGroup index for a group's bookings.
func (b *Bookings) OfGroup(ctx context.Context, groupID string) ([]checkout.Booking, error) {
	var bookings []checkout.Booking
	p := dynamodb.NewQueryPaginator(b.db, &dynamodb.QueryInput{
		TableName:                 &b.table,
		IndexName:                 aws.String("byGroup"),
		KeyConditionExpression:    aws.String("groupIdentifier = :group"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":group": stringValue(groupID)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			var r bookingRecord
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return nil, fmt.Errorf("decode booking: %w", err)
			}
			bookings = append(bookings, r.booking())
		}
	}
	return bookings, nil
}

// maxBatchGet is how many keys one BatchGetItem takes.
const maxBatchGet = 100

// Read gets the bookings of codes with strongly consistent reads, in batches of 100, retrying
// the keys DynamoDB leaves unprocessed until ctx ends.
func (b *Bookings) Read(ctx context.Context, codes []string) ([]checkout.Booking, error) {
	bookings := make([]checkout.Booking, 0, len(codes))
	for start := 0; start < len(codes); start += maxBatchGet {
		keys := make([]map[string]types.AttributeValue, 0, min(maxBatchGet, len(codes)-start))
		for _, code := range codes[start:min(start+maxBatchGet, len(codes))] {
			keys = append(keys, map[string]types.AttributeValue{"bookingCode": stringValue(code)})
		}
		request := map[string]types.KeysAndAttributes{b.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for len(request) > 0 {
			out, err := b.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: request})
			if err != nil {
				return nil, fmt.Errorf("read bookings: %w", err)
			}
			for _, item := range out.Responses[b.table] {
				var r bookingRecord
				if err := attributevalue.UnmarshalMap(item, &r); err != nil {
					return nil, fmt.Errorf("decode booking: %w", err)
				}
				bookings = append(bookings, r.booking())
			}
			request = out.UnprocessedKeys
			if len(request) > 0 { // throttled: back off a little before the rest
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("read bookings: %w", ctx.Err())
				case <-time.After(25 * time.Millisecond):
				}
			}
		}
	}
	return bookings, nil
}

func (r bookingRecord) booking() checkout.Booking {
	created, _ := time.Parse(time.RFC3339, r.CreatedAt) // informative only
	return checkout.Booking{
		BookingCode:             r.BookingCode,
		GroupIdentifier:         r.GroupIdentifier,
		ShoppingCartIdentifier:  r.ShoppingCartIdentifier,
		ItemIdentifier:          r.ItemIdentifier,
		OwnerIdentifier:         r.OwnerIdentifier,
		Room:                    r.room(),
		Status:                  r.Status,
		CreatedAt:               created,
		CustomizationIdentifier: r.CustomizationIdentifier,
		PaymentIntentID:         r.PaymentIntentID,
	}
}
