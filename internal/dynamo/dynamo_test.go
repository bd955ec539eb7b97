package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// The adapters run against DynamoDB Local with the tables of template.yaml.
var (
	db       *dynamodb.Client
	endpoint string // DynamoDB Local's
	names    = testenv.Tables
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, localstack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Stop()
	db, endpoint = env.DB, env.Stack.DynamoEndpoint
	return m.Run()
}

func draft(cart checkout.Cart, codes ...string) (checkout.State, []checkout.Booking) {
	state := checkout.State{GroupIdentifier: checkout.NewGroupIdentifier(), BookingCodes: codes, StartedAt: time.Now(), RedirectURL: "https://x.example", AmountMinor: 100, Currency: "EUR", ExpiresAt: cart.ExpiresAt}
	bookings := make([]checkout.Booking, len(codes))
	for i, code := range codes {
		bookings[i] = checkout.Booking{BookingCode: code, GroupIdentifier: state.GroupIdentifier, ShoppingCartIdentifier: cart.Identifier,
			Room: checkout.Room{Total: checkout.Amount{Amount: "1.00", Currency: "EUR"}}, Status: checkout.BookingPendingPayment, CreatedAt: time.Now()}
	}
	return state, bookings
}

func seedCart(t *testing.T, id string) checkout.Cart {
	t.Helper()
	ctx := context.Background()
	if err := sample.PutCart(ctx, db, names["CartsTable"], sample.Cart{ID: id, Owner: "o", Currency: "EUR",
		Items: []sample.Item{{HotelName: "h", Amount: "1.00"}}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cart, err := dynamo.NewCarts(db, names["CartsTable"], names["BookingsTable"]).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return cart
}

func TestCartsRoundTrip(t *testing.T) {
	ctx := context.Background()
	carts := dynamo.NewCarts(db, names["CartsTable"], names["BookingsTable"])
	if _, err := carts.Get(ctx, "no-such-cart"); !errors.Is(err, checkout.ErrNotFound) {
		t.Fatalf("Get of a missing cart: %v", err)
	}
	cart := seedCart(t, "adapter-1")
	if cart.Version != 1 || cart.Status != checkout.CartOpen || len(cart.Items) != 1 || cart.Items[0].Total.Amount != "1" && cart.Items[0].Total.Amount != "1.00" {
		t.Fatalf("cart %+v", cart)
	}
	code := checkout.NewBookingCode()
	state, bookings := draft(cart, code)
	if err := carts.Begin(ctx, cart, state, bookings); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	// The same transaction again (an SDK retry after a lost answer) is idempotent.
	if err := carts.Begin(ctx, cart, state, bookings); err != nil {
		t.Fatalf("Begin repeated with the same token: %v", err)
	}
	// Another checkout of the same cart version loses the race.
	other, otherBookings := draft(cart, checkout.NewBookingCode())
	if err := carts.Begin(ctx, cart, other, otherBookings); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("second Begin: %v, want ErrCartChanged", err)
	}
	got, _ := carts.Get(ctx, "adapter-1")
	if got.Status != checkout.CartCheckingOut || got.ExpiresAt != 0 || got.Checkout == nil || got.Checkout.GroupIdentifier != state.GroupIdentifier || got.Checkout.ExpiresAt != cart.ExpiresAt {
		t.Fatalf("after Begin: %+v %+v", got, got.Checkout)
	}
	if err := carts.Complete(ctx, "adapter-1", "another-group", "cus_1", "pi_1"); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("Complete with another group: %v", err)
	}
	if err := carts.Complete(ctx, "adapter-1", state.GroupIdentifier, "cus_1", "pi_1"); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got, _ = carts.Get(ctx, "adapter-1")
	if got.Status != checkout.CartCheckedOut || got.Checkout.PaymentIntentID != "pi_1" || got.Checkout.CustomerID != "cus_1" || len(got.Checkout.BookingCodes) != 1 {
		t.Fatalf("after Complete: %+v", got.Checkout)
	}
}

func TestBookingCodeCollisionWritesNothing(t *testing.T) {
	ctx := context.Background()
	carts := dynamo.NewCarts(db, names["CartsTable"], names["BookingsTable"])
	first := seedCart(t, "adapter-collision-1")
	taken := checkout.NewBookingCode()
	state, bookings := draft(first, taken)
	if err := carts.Begin(ctx, first, state, bookings); err != nil {
		t.Fatal(err)
	}
	second := seedCart(t, "adapter-collision-2")
	state2, bookings2 := draft(second, checkout.NewBookingCode(), taken)
	if err := carts.Begin(ctx, second, state2, bookings2); !errors.Is(err, checkout.ErrBookingCodeTaken) {
		t.Fatalf("Begin with a taken code: %v, want ErrBookingCodeTaken", err)
	}
	got, _ := carts.Get(ctx, "adapter-collision-2")
	if got.Status != checkout.CartOpen {
		t.Errorf("cart is %s after a cancelled transaction", got.Status)
	}
	out, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(names["BookingsTable"]),
		Key: map[string]types.AttributeValue{"bookingCode": &types.AttributeValueMemberS{Value: taken}}})
	if g := out.Item["groupIdentifier"].(*types.AttributeValueMemberS).Value; g != state.GroupIdentifier {
		t.Errorf("the taken booking was overwritten by group %s", g)
	}
}

// DynamoDB cancels the checkout transaction with one reason per item (the cart first): a failed
// condition or a conflict on the cart is a lost race, a failed condition on a booking is a taken
// code, and any other reason stays the SDK's error (an internal error). The answers come from an
// observer in front of DynamoDB Local, which never sees the transactions.
func TestBeginMapsCancellationReasons(t *testing.T) {
	ctx := context.Background()
	observer, err := testenv.NewDynamoObserver(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	carts := dynamo.NewCarts(localstack.DynamoDBClient(observer.URL()), names["CartsTable"], names["BookingsTable"])
	cart := seedCart(t, "adapter-reasons")
	tests := []struct {
		reasons []string
		want    error // nil: the SDK's *types.TransactionCanceledException itself
	}{
		{[]string{"ConditionalCheckFailed", "None"}, checkout.ErrCartChanged},
		{[]string{"TransactionConflict", "None"}, checkout.ErrCartChanged},
		{[]string{"None", "ConditionalCheckFailed"}, checkout.ErrBookingCodeTaken},
		{[]string{"None", "None", "ConditionalCheckFailed"}, checkout.ErrBookingCodeTaken},
		{[]string{"None", "TransactionConflict"}, nil},
		{[]string{"ThrottlingError", "None"}, nil},
		{[]string{"None", "ValidationError"}, nil},
	}
	for _, tc := range tests {
		var calls atomic.Int32
		observer.SetFault(func(operation string) *testenv.DynamoError {
			if operation != "TransactWriteItems" {
				return nil
			}
			calls.Add(1)
			return &testenv.DynamoError{Status: 400, Code: "TransactionCanceledException",
				Message: "Transaction cancelled", CancellationReasons: tc.reasons}
		})
		codes := make([]string, len(tc.reasons)-1)
		for i := range codes {
			codes[i] = checkout.NewBookingCode()
		}
		state, bookings := draft(cart, codes...)
		err := carts.Begin(ctx, cart, state, bookings)
		var canceled *types.TransactionCanceledException
		switch {
		case calls.Load() != 1:
			t.Errorf("reasons %v: %d transactions sent, want 1", tc.reasons, calls.Load())
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("reasons %v: %v, want %v", tc.reasons, err, tc.want)
		case tc.want == nil && (!errors.As(err, &canceled) ||
			errors.Is(err, checkout.ErrCartChanged) || errors.Is(err, checkout.ErrBookingCodeTaken)):
			t.Errorf("reasons %v: %v, want the TransactionCanceledException itself", tc.reasons, err)
		}
	}
	observer.SetFault(nil)
	if got, err := carts.Get(ctx, "adapter-reasons"); err != nil || got.Status != checkout.CartOpen {
		t.Errorf("cart %+v %v, want it OPEN", got, err)
	}
}

func TestCustomersFirstWriterWins(t *testing.T) {
	ctx := context.Background()
	customers := dynamo.NewCustomers(db, names["CustomersTable"])
	if _, err := customers.Get(ctx, "owner-c"); !errors.Is(err, checkout.ErrNotFound) {
		t.Fatalf("Get of an unknown owner: %v", err)
	}
	if id, err := customers.Add(ctx, "owner-c", "cus_first"); err != nil || id != "cus_first" {
		t.Fatalf("first Add: %q %v", id, err)
	}
	if id, err := customers.Add(ctx, "owner-c", "cus_second"); err != nil || id != "cus_first" {
		t.Fatalf("second Add: %q %v, want the first mapping", id, err)
	}
	if id, err := customers.Get(ctx, "owner-c"); err != nil || id != "cus_first" {
		t.Fatalf("Get: %q %v", id, err)
	}
}

func TestCustomizationsReadListAndSetHosts(t *testing.T) {
	ctx := context.Background()
	if err := sample.PutCustomization(ctx, db, names["CustomizationsTable"], sample.Customization{ID: "cz-list", Active: true, AllowedRedirectHosts: []string{"a.example", "*.b.example"}, StatementDescriptorSuffix: "SFX"}); err != nil {
		t.Fatal(err)
	}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(names["CustomizationsTable"]), Item: map[string]types.AttributeValue{
		"identifier":           &types.AttributeValueMemberS{Value: "cz-set"},
		"active":               &types.AttributeValueMemberBOOL{Value: false},
		"allowedRedirectHosts": &types.AttributeValueMemberSS{Value: []string{"c.example"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	customizations := dynamo.NewCustomizations(db, names["CustomizationsTable"])
	list, err := customizations.Get(ctx, "cz-list")
	if err != nil || !list.Active || len(list.AllowedRedirectHosts) != 2 || list.StatementDescriptorSuffix != "SFX" {
		t.Fatalf("cz-list: %+v %v", list, err)
	}
	set, err := customizations.Get(ctx, "cz-set")
	if err != nil || set.Active || len(set.AllowedRedirectHosts) != 1 || set.AllowedRedirectHosts[0] != "c.example" {
		t.Fatalf("cz-set: %+v %v", set, err)
	}
	if _, err := customizations.Get(ctx, "cz-missing"); !errors.Is(err, checkout.ErrNotFound) {
		t.Fatalf("missing customization: %v", err)
	}
}
