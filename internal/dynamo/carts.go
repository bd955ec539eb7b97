package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Carts reads carts and moves checkouts through their lifecycle over the carts, bookings and
// holds tables, each move in one transaction.
type Carts struct {
	db       *dynamodb.Client
	carts    string
	bookings string
	holds    string
}

var _ checkout.Carts = (*Carts)(nil)

// NewCarts returns the carts adapter on the named tables.
func NewCarts(db *dynamodb.Client, cartsTable, bookingsTable, holdsTable string) *Carts {
	return &Carts{db: db, carts: cartsTable, bookings: bookingsTable, holds: holdsTable}
}

// Get reads a cart with a strongly consistent read.
func (c *Carts) Get(ctx context.Context, id string) (checkout.Cart, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &c.carts,
		Key:            c.cartKey(id),
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
	cart.StoredSize = ItemSize(out.Item)
	return cart, nil
}

// maxItemSize is DynamoDB's limit on one item. The margin leaves room for what the lifecycle
// adds to the checkout map later (customer, PaymentIntent, confirmation time).
const (
	maxItemSize    = 400 * 1024
	checkoutGrowth = 512
	holdShards     = 16
)

// Begin writes the cart's checkout state, the checkout's hold and every booking in one
// TransactWriteItems. The group identifier is the transaction's client request token, so an SDK
// retry of a transaction that did commit succeeds instead of failing its own condition.
func (c *Carts) Begin(ctx context.Context, cart checkout.Cart, state checkout.State, bookings []checkout.Booking) error {
	stateItem, err := attributevalue.Marshal(newCheckoutRecord(state))
	if err != nil {
		return fmt.Errorf("encode checkout state: %w", err)
	}
	// Known before the transaction: the cart with its checkout state must still fit one item.
	if cart.StoredSize+len("checkout")+valueSize(stateItem)+len(checkout.CartCheckingOut)+checkoutGrowth > maxItemSize {
		return checkout.ErrCartTooLarge
	}
	hold, err := attributevalue.MarshalMap(holdRecord{
		GroupIdentifier:        state.GroupIdentifier,
		HoldShard:              HoldShard(state.GroupIdentifier),
		HoldEndsAt:             state.HoldEndsAt.Unix(),
		ShoppingCartIdentifier: cart.Identifier,
	})
	if err != nil {
		return fmt.Errorf("encode hold: %w", err)
	}
	condition := "#status = :open AND #version = :version"
	if cart.Version == 0 {
		condition = "#status = :open AND (attribute_not_exists(#version) OR #version = :version)"
	}
	items := make([]types.TransactWriteItem, 0, 2+len(bookings))
	items = append(items, types.TransactWriteItem{Update: &types.Update{
		TableName:           &c.carts,
		Key:                 c.cartKey(cart.Identifier),
		UpdateExpression:    aws.String("SET #status = :checkingOut, #checkout = :checkout REMOVE #expiresAt"),
		ConditionExpression: &condition,
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#version": "version", "#checkout": "checkout", "#expiresAt": "expiresAt",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open":        stringValue(string(checkout.CartOpen)),
			":checkingOut": stringValue(string(checkout.CartCheckingOut)),
			":version":     &types.AttributeValueMemberN{Value: strconv.FormatInt(cart.Version, 10)},
			":checkout":    stateItem,
		},
	}}, types.TransactWriteItem{Put: &types.Put{
		TableName:           &c.holds,
		Item:                hold,
		ConditionExpression: aws.String("attribute_not_exists(groupIdentifier)"),
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
		case i > 1 && code == "ConditionalCheckFailed":
			return checkout.ErrBookingCodeTaken
		}
	}
	return err
}

// Revise changes the checkout's customer and key generation, conditionally on both as read.
func (c *Carts) Revise(ctx context.Context, cartID string, from, to checkout.State) error {
	values := map[string]types.AttributeValue{
		":group":       stringValue(from.GroupIdentifier),
		":checkingOut": stringValue(string(checkout.CartCheckingOut)),
		":customer":    stringValue(to.CustomerID),
		":next":        numberValue(int64(to.KeyGeneration)),
	}
	condition := []string{"#status = :checkingOut", "#checkout.#group = :group", "attribute_not_exists(#checkout.#pi)"}
	if from.CustomerID == "" {
		condition = append(condition, "attribute_not_exists(#checkout.#customer)")
	} else {
		values[":fromCustomer"] = stringValue(from.CustomerID)
		condition = append(condition, "#checkout.#customer = :fromCustomer")
	}
	values[":generation"] = numberValue(int64(max(from.KeyGeneration, 1)))
	condition = append(condition, generationIs(from.KeyGeneration))
	_, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &c.carts,
		Key:                 c.cartKey(cartID),
		UpdateExpression:    aws.String("SET #checkout.#customer = :customer, #checkout.#generation = :next"),
		ConditionExpression: aws.String(strings.Join(condition, " AND ")),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier", "#pi": "paymentIntentId",
			"#customer": "customerId", "#generation": "keyGeneration",
		},
		ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return checkout.ErrCartChanged
	}
	return err
}

// Complete records the PaymentIntent on the cart and marks it CHECKED_OUT.
func (c *Carts) Complete(ctx context.Context, cartID string, state checkout.State, paymentIntentID string) error {
	_, err := c.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &c.carts,
		Key:              c.cartKey(cartID),
		UpdateExpression: aws.String("SET #status = :checkedOut, #checkout.#paymentIntentId = :intent"),
		// The intent of the checkout's current key generation, and none other recorded: a
		// request still on an older generation cannot record its intent over the current one.
		ConditionExpression: aws.String("#checkout.#group = :group AND #checkout.#customerId = :customer" +
			" AND #status IN (:checkingOut, :checkedOut)" +
			" AND (attribute_not_exists(#checkout.#paymentIntentId) OR #checkout.#paymentIntentId = :intent)" +
			" AND " + generationIs(state.KeyGeneration)),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier",
			"#customerId": "customerId", "#paymentIntentId": "paymentIntentId", "#generation": "keyGeneration",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":checkedOut":  stringValue(string(checkout.CartCheckedOut)),
			":checkingOut": stringValue(string(checkout.CartCheckingOut)),
			":customer":    stringValue(state.CustomerID),
			":intent":      stringValue(paymentIntentID),
			":group":       stringValue(state.GroupIdentifier),
			":generation":  numberValue(int64(max(state.KeyGeneration, 1))),
		},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return checkout.ErrCartChanged
	}
	return err
}

// Apply makes a lifecycle move in one TransactWriteItems: the cart (conditional on carrying the
// checkout as read), the hold, and every booking of the group.
func (c *Carts) Apply(ctx context.Context, t checkout.Transition) error {
	m, state := t.Move, t.State
	at := t.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	names := map[string]string{
		"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier",
		"#lifecycle": "status", "#pi": "paymentIntentId",
	}
	values := map[string]types.AttributeValue{
		":group":       stringValue(state.GroupIdentifier),
		":checkingOut": stringValue(string(checkout.CartCheckingOut)),
		":checkedOut":  stringValue(string(checkout.CartCheckedOut)),
	}
	// The checkout as read: its group, one of the move's From states (an earlier version wrote
	// no state: pending), the same recorded PaymentIntent.
	from := make([]string, len(m.From))
	for i, f := range m.From {
		from[i] = ":from" + strconv.Itoa(i)
		values[from[i]] = stringValue(string(f))
	}
	lifecycle := "#checkout.#lifecycle IN (" + strings.Join(from, ", ") + ")"
	if m.Allows(checkout.PendingPayment) {
		lifecycle = "(attribute_not_exists(#checkout.#lifecycle) OR " + lifecycle + ")"
	}
	condition := []string{"#status IN (:checkingOut, :checkedOut)", "#checkout.#group = :group", lifecycle}
	if state.PaymentIntentID == "" {
		condition = append(condition, "attribute_not_exists(#checkout.#pi)")
	} else {
		values[":recorded"] = stringValue(state.PaymentIntentID)
		condition = append(condition, "#checkout.#pi = :recorded")
	}

	var set, remove []string
	if m.Cart != "" {
		values[":cartStatus"] = stringValue(string(m.Cart))
		set = append(set, "#status = :cartStatus")
	}
	switch m.To {
	case checkout.Released:
		// The cart goes back to the cart service as it was before checkout, one version on.
		names["#version"] = "version"
		values[":zero"], values[":one"] = numberValue(0), numberValue(1)
		set = append(set, "#version = if_not_exists(#version, :zero) + :one")
		if state.ExpiresAt != 0 {
			names["#expiresAt"] = "expiresAt"
			values[":expiresAt"] = numberValue(state.ExpiresAt)
			set = append(set, "#expiresAt = :expiresAt")
		}
		remove = append(remove, "#checkout")
	case checkout.Confirmed:
		names["#confirmedAt"] = "confirmedAt"
		values[":to"], values[":intent"], values[":at"] = stringValue(string(m.To)), stringValue(t.PaymentIntentID), stringValue(at)
		set = append(set, "#checkout.#lifecycle = :to", "#checkout.#pi = :intent", "#checkout.#confirmedAt = :at")
		if t.Hold() == checkout.HoldPurchase {
			names["#purchase"] = "purchase"
			values[":purchase"] = stringValue(string(checkout.PurchasePending))
			set = append(set, "#checkout.#purchase = :purchase")
		}
	case checkout.Processing:
		values[":to"], values[":intent"] = stringValue(string(m.To)), stringValue(t.PaymentIntentID)
		set = append(set, "#checkout.#lifecycle = :to", "#checkout.#pi = :intent")
	case checkout.PendingPayment: // a payment failed: recorded, and the traveller may try again
		names["#failedAt"] = "lastPaymentFailedAt"
		values[":to"], values[":at"] = stringValue(string(m.To)), stringValue(at)
		set = append(set, "#checkout.#lifecycle = :to", "#checkout.#failedAt = :at")
	default:
		values[":to"] = stringValue(string(m.To))
		set = append(set, "#checkout.#lifecycle = :to")
	}
	update := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	items := make([]types.TransactWriteItem, 0, 2+len(state.BookingCodes))
	items = append(items, types.TransactWriteItem{Update: &types.Update{
		TableName:                 &c.carts,
		Key:                       c.cartKey(t.CartID),
		UpdateExpression:          &update,
		ConditionExpression:       aws.String(strings.Join(condition, " AND ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}})

	holdKey := map[string]types.AttributeValue{"groupIdentifier": stringValue(state.GroupIdentifier)}
	switch t.Hold() {
	case checkout.HoldEnded:
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &c.holds, Key: holdKey}})
	case checkout.HoldPurchase:
		// The hold becomes the purchase's retry, unclaimed: due when the webhook's attempt is
		// long over.
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:        &c.holds,
			Key:              holdKey,
			UpdateExpression: aws.String("SET #shard = :shard, #endsAt = :endsAt, #cart = :cart, #purchase = :true REMOVE #claimedUntil"),
			ExpressionAttributeNames: map[string]string{"#shard": "holdShard", "#endsAt": "holdEndsAt", "#cart": "shoppingCartIdentifier",
				"#purchase": "purchase", "#claimedUntil": "claimedUntil"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": stringValue(HoldShard(state.GroupIdentifier)), ":endsAt": numberValue(t.PurchaseDue.Unix()),
				":cart": stringValue(t.CartID), ":true": &types.AttributeValueMemberBOOL{Value: true},
			},
		}})
	case checkout.HoldAtEnd, checkout.HoldRecheck:
		// An update, not a put: a releaser's claim on the hold stays.
		ends := state.HoldEndsAt
		if m.Hold == checkout.HoldRecheck {
			ends = t.At.Add(checkout.ProcessingRecheck)
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                &c.holds,
			Key:                      holdKey,
			UpdateExpression:         aws.String("SET #shard = :shard, #endsAt = :endsAt, #cart = :cart"),
			ExpressionAttributeNames: map[string]string{"#shard": "holdShard", "#endsAt": "holdEndsAt", "#cart": "shoppingCartIdentifier"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": stringValue(HoldShard(state.GroupIdentifier)), ":endsAt": numberValue(ends.Unix()), ":cart": stringValue(t.CartID),
			},
		}})
	}

	if m.Bookings != "" {
		update := "SET #status = :status, #updatedAt = :at"
		bookingValues := map[string]types.AttributeValue{
			":status": stringValue(m.Bookings), ":at": stringValue(at), ":group": stringValue(state.GroupIdentifier),
		}
		bookingNames := map[string]string{"#status": "status", "#updatedAt": "updatedAt", "#group": "groupIdentifier"}
		if t.Reason != "" {
			update += ", #reason = :reason"
			bookingNames["#reason"] = "cancellationReason"
			bookingValues[":reason"] = stringValue(string(t.Reason))
		}
		if m.To == checkout.Confirmed { // the intent that paid, so that a duplicate is told from a second payment
			update += ", #pi = :intent"
			bookingNames["#pi"] = "paymentIntentId"
			bookingValues[":intent"] = stringValue(t.PaymentIntentID)
		}
		for _, code := range state.BookingCodes {
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				TableName:                 &c.bookings,
				Key:                       map[string]types.AttributeValue{"bookingCode": stringValue(code)},
				UpdateExpression:          aws.String(update),
				ConditionExpression:       aws.String("#group = :group"), // never creates a booking
				ExpressionAttributeNames:  bookingNames,
				ExpressionAttributeValues: bookingValues,
			}})
		}
	}

	_, err := c.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      items,
		ClientRequestToken: aws.String(callToken()),
	})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 {
		// The cart no longer carries the checkout as read, or another transaction is moving it
		// right now: either way the checkout is no longer what the caller saw.
		switch aws.ToString(canceled.CancellationReasons[0].Code) {
		case "ConditionalCheckFailed", "TransactionConflict":
			return checkout.ErrCartChanged
		}
	}
	if err != nil {
		return fmt.Errorf("%s group %s: %w", m.Name, state.GroupIdentifier, err)
	}
	return nil
}

// RecordPurchase sets the checkout's purchase status, provided it is still pending on the
// group, and deletes the purchase's entry in the holds table, in one transaction. When the
// condition fails (recorded already, or the cart no longer carries the group) the entry is
// deleted alone and ErrCartChanged returned.
func (c *Carts) RecordPurchase(ctx context.Context, cartID, groupID string, status checkout.PurchaseStatus, at time.Time) error {
	holdKey := map[string]types.AttributeValue{"groupIdentifier": stringValue(groupID)}
	_, err := c.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{{Update: &types.Update{
			TableName:           &c.carts,
			Key:                 c.cartKey(cartID),
			UpdateExpression:    aws.String("SET #checkout.#purchase = :status, #checkout.#purchaseAt = :at"),
			ConditionExpression: aws.String("#checkout.#group = :group AND #checkout.#purchase = :pending"),
			ExpressionAttributeNames: map[string]string{
				"#checkout": "checkout", "#group": "groupIdentifier", "#purchase": "purchase", "#purchaseAt": "purchaseRecordedAt",
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":status": stringValue(string(status)), ":at": stringValue(at.UTC().Format("2006-01-02T15:04:05.000Z07:00")),
				":group": stringValue(groupID), ":pending": stringValue(string(checkout.PurchasePending)),
			},
		}}, {Delete: &types.Delete{TableName: &c.holds, Key: holdKey}}},
		ClientRequestToken: aws.String(callToken()),
	})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 &&
		aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		if _, err := c.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &c.holds, Key: holdKey}); err != nil {
			return fmt.Errorf("remove the purchase entry of group %s: %w", groupID, err)
		}
		return checkout.ErrCartChanged
	}
	if err != nil {
		return fmt.Errorf("record the purchase of group %s as %s: %w", groupID, status, err)
	}
	return nil
}

// callToken is a move's ClientRequestToken, new for every call: the SDK's retries of the call
// carry it, so a retry of a transaction that committed succeeds without writing again. Two calls
// never share one: with a shared token, the second of two identical concurrent moves would
// "succeed" as a replay of the first instead of failing its condition.
func callToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// generationIs is the condition that the checkout is at key generation n (:generation); state
// of an earlier version has none, which is generation 1.
func generationIs(n int) string {
	if n <= 1 {
		return "(attribute_not_exists(#checkout.#generation) OR #checkout.#generation = :generation)"
	}
	return "#checkout.#generation = :generation"
}

// HoldShard spreads holds over the byDue index's partitions: a group's shard is a hash of its
// identifier, so that no partition key takes more than 1/16 of the checkouts.
func HoldShard(group string) string {
	h := fnv.New32a()
	h.Write([]byte(group))
	return fmt.Sprintf("%02d", h.Sum32()%holdShards)
}

func (c *Carts) cartKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"identifier": stringValue(id)}
}

func stringValue(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func numberValue(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
