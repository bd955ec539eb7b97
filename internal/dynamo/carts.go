package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Carts reads carts and runs the checkout transaction over the carts and bookings tables.
type Carts struct {
	db       *dynamodb.Client
	carts    string
	bookings string
}

var _ checkout.Carts = (*Carts)(nil)

// NewCarts returns the carts adapter on the named tables.
func NewCarts(db *dynamodb.Client, cartsTable, bookingsTable string) *Carts {
	return &Carts{db: db, carts: cartsTable, bookings: bookingsTable}
}

// Get reads a cart with a strongly consistent read.
func (c *Carts) Get(ctx context.Context, id string) (checkout.Cart, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &c.carts,
		Key:            map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return checkout.Cart{}, err
	}
	if out.Item == nil {
		return checkout.Cart{}, checkout.ErrNotFound
	}
	var r cartRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return checkout.Cart{}, fmt.Errorf("decode cart: %w", err)
	}
	cart, err := r.cart()
	if err != nil {
		return checkout.Cart{}, fmt.Errorf("decode cart: %w", err)
	}
	return cart, nil
}

// Begin writes the cart's checkout state and every booking in one TransactWriteItems. The
// group identifier is the transaction's client request token, so an SDK retry of a transaction
// that did commit succeeds instead of failing its own condition.
func (c *Carts) Begin(ctx context.Context, cart checkout.Cart, state checkout.State, bookings []checkout.Booking) error {
	stateItem, err := attributevalue.Marshal(newCheckoutRecord(state))
	if err != nil {
		return fmt.Errorf("encode checkout state: %w", err)
	}
	condition := "#status = :open AND #version = :version"
	if cart.Version == 0 {
		condition = "#status = :open AND (attribute_not_exists(#version) OR #version = :version)"
	}
	items := make([]types.TransactWriteItem, 0, 1+len(bookings))
	items = append(items, types.TransactWriteItem{Update: &types.Update{
		TableName:           &c.carts,
		Key:                 map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: cart.Identifier}},
		UpdateExpression:    aws.String("SET #status = :checkingOut, #checkout = :checkout REMOVE #expiresAt"),
		ConditionExpression: &condition,
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#version": "version", "#checkout": "checkout", "#expiresAt": "expiresAt",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open":        &types.AttributeValueMemberS{Value: string(checkout.CartOpen)},
			":checkingOut": &types.AttributeValueMemberS{Value: string(checkout.CartCheckingOut)},
			":version":     &types.AttributeValueMemberN{Value: strconv.FormatInt(cart.Version, 10)},
			":checkout":    stateItem,
		},
	}})
	for _, b := range bookings {
		item, err := attributevalue.MarshalMap(newBookingRecord(b))
		if err != nil {
			return fmt.Errorf("encode booking %s: %w", b.BookingCode, err)
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:           &c.bookings,
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(bookingCode)"),
		}})
	}
	_, err = c.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      items,
		ClientRequestToken: &state.GroupIdentifier,
	})
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return err
	}
	// A cancelled transaction wrote nothing. A conflict on the cart is another writer of the
	// cart at the same time (another checkout of it, an edit): the same race as a failed
	// condition, and as safe to settle by reading the cart again, since the next transaction is
	// conditional on what that read saw. Any other reason, a conflict on a new booking code
	// included, is returned as it is: an internal error, and the caller's retry starts over.
	for i, reason := range canceled.CancellationReasons {
		code := aws.ToString(reason.Code)
		switch {
		case i == 0 && (code == "ConditionalCheckFailed" || code == "TransactionConflict"):
			return checkout.ErrCartChanged
		case i > 0 && code == "ConditionalCheckFailed":
			return checkout.ErrBookingCodeTaken
		}
	}
	return err
}

// Complete records the Stripe ids on the cart and marks it CHECKED_OUT.
func (c *Carts) Complete(ctx context.Context, cartID, groupID, customerID, paymentIntentID string) error {
	_, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &c.carts,
		Key:                 map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: cartID}},
		UpdateExpression:    aws.String("SET #status = :checkedOut, #checkout.#customerId = :customer, #checkout.#paymentIntentId = :intent"),
		ConditionExpression: aws.String("#checkout.#group = :group AND #status IN (:checkingOut, :checkedOut)"),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier",
			"#customerId": "customerId", "#paymentIntentId": "paymentIntentId",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":checkedOut":  &types.AttributeValueMemberS{Value: string(checkout.CartCheckedOut)},
			":checkingOut": &types.AttributeValueMemberS{Value: string(checkout.CartCheckingOut)},
			":customer":    &types.AttributeValueMemberS{Value: customerID},
			":intent":      &types.AttributeValueMemberS{Value: paymentIntentID},
			":group":       &types.AttributeValueMemberS{Value: groupID},
		},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return checkout.ErrCartChanged
	}
	return err
}
