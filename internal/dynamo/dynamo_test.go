package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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

func newCarts(db *dynamodb.Client) *dynamo.Carts {
	return dynamo.NewCarts(db, names["CartsTable"], names["BookingsTable"], names["HoldsTable"])
}

func draft(cart checkout.Cart, codes ...string) (checkout.State, []checkout.Booking) {
	now := time.Now()
	state := checkout.State{GroupIdentifier: checkout.NewGroupIdentifier(), Status: checkout.PendingPayment, KeyGeneration: 1,
		HoldEndsAt: now.Add(30 * time.Minute), BookingCodes: codes, StartedAt: now, RedirectURL: "https://x.example",
		AmountMinor: 100, Currency: "EUR", ExpiresAt: cart.ExpiresAt}
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
	cart, err := newCarts(db).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return cart
}

func TestCartsRoundTrip(t *testing.T) {
	ctx := context.Background()
	carts := newCarts(db)
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
	if got.Checkout.Status != checkout.PendingPayment || got.Checkout.KeyGeneration != 1 || !got.Checkout.HoldEndsAt.Equal(state.HoldEndsAt) {
		t.Fatalf("lifecycle fields after Begin: %+v", got.Checkout)
	}
	if hold := holdOf(t, state.GroupIdentifier); hold == nil || str(hold["holdEndsAt"]) != fmt.Sprint(state.HoldEndsAt.Unix()) ||
		str(hold["shoppingCartIdentifier"]) != "adapter-1" || str(hold["holdShard"]) != dynamo.HoldShard(state.GroupIdentifier) {
		t.Fatalf("hold after Begin: %v", hold)
	}
	withCustomer := *got.Checkout
	withCustomer.CustomerID = "cus_1"
	if err := carts.Revise(ctx, "adapter-1", *got.Checkout, withCustomer); err != nil {
		t.Fatalf("Revise to record the customer: %v", err)
	}
	if err := carts.Revise(ctx, "adapter-1", *got.Checkout, withCustomer); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("Revise from a customer no longer recorded: %v, want ErrCartChanged", err)
	}
	other.GroupIdentifier, other.CustomerID = "another-group", "cus_1"
	if err := carts.Complete(ctx, "adapter-1", other, "pi_1"); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("Complete with another group: %v", err)
	}
	stale := withCustomer
	stale.KeyGeneration = 2
	if err := carts.Complete(ctx, "adapter-1", stale, "pi_1"); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("Complete at another key generation: %v, want ErrCartChanged", err)
	}
	if err := carts.Complete(ctx, "adapter-1", withCustomer, "pi_1"); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := carts.Complete(ctx, "adapter-1", withCustomer, "pi_1"); err != nil {
		t.Fatalf("Complete again with the same intent: %v", err)
	}
	if err := carts.Complete(ctx, "adapter-1", withCustomer, "pi_other"); !errors.Is(err, checkout.ErrCartChanged) {
		t.Fatalf("Complete with another intent than the recorded one: %v, want ErrCartChanged", err)
	}
	got, _ = carts.Get(ctx, "adapter-1")
	if got.Status != checkout.CartCheckedOut || got.Checkout.PaymentIntentID != "pi_1" || got.Checkout.CustomerID != "cus_1" || len(got.Checkout.BookingCodes) != 1 {
		t.Fatalf("after Complete: %+v", got.Checkout)
	}
}

func TestBookingCodeCollisionWritesNothing(t *testing.T) {
	ctx := context.Background()
	carts := newCarts(db)
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
	carts := newCarts(localstack.DynamoDBClient(observer.URL()))
	cart := seedCart(t, "adapter-reasons")
	tests := []struct {
		reasons []string
		want    error // nil: the SDK's *types.TransactionCanceledException itself
	}{
		{[]string{"ConditionalCheckFailed", "None"}, checkout.ErrCartChanged},
		{[]string{"TransactionConflict", "None"}, checkout.ErrCartChanged},
		{[]string{"None", "None", "ConditionalCheckFailed"}, checkout.ErrBookingCodeTaken},
		{[]string{"None", "None", "None", "ConditionalCheckFailed"}, checkout.ErrBookingCodeTaken},
		{[]string{"None", "None", "TransactionConflict"}, nil},
		{[]string{"None", "ConditionalCheckFailed", "None"}, nil}, // the hold: a group collision, a bug
		{[]string{"ThrottlingError", "None", "None"}, nil},
		{[]string{"None", "None", "ValidationError"}, nil},
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
		codes := make([]string, len(tc.reasons)-2)
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
	if c, err := customers.Get(ctx, "owner-c"); err != nil || c != (checkout.Customer{ID: "cus_first", KeyGeneration: 1}) {
		t.Fatalf("Get: %+v %v", c, err)
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

// A poisoned customer key moves the traveller to the next generation once, however many
// requests saw it; a customer Stripe lost is replaced only if the mapping still holds it.
func TestCustomersKeyGenerationsAndReplacement(t *testing.T) {
	ctx := context.Background()
	customers := dynamo.NewCustomers(db, names["CustomersTable"])
	for range 2 { // two requests saw the same failure: one advance
		if err := customers.AdvanceKey(ctx, "owner-g", 1); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := customers.Get(ctx, "owner-g"); err != nil || c != (checkout.Customer{KeyGeneration: 2}) {
		t.Fatalf("after advancing: %+v %v, want no customer at generation 2", c, err)
	}
	if id, err := customers.Add(ctx, "owner-g", "cus_g2"); err != nil || id != "cus_g2" {
		t.Fatalf("Add after advancing: %q %v", id, err)
	}
	if c, err := customers.Replace(ctx, "owner-g", "cus_other"); err != nil || c != (checkout.Customer{ID: "cus_g2", KeyGeneration: 2}) {
		t.Fatalf("Replace of a customer the mapping does not hold: %+v %v, want the mapping unchanged", c, err)
	}
	if c, err := customers.Replace(ctx, "owner-g", "cus_g2"); err != nil || c != (checkout.Customer{KeyGeneration: 3}) {
		t.Fatalf("Replace: %+v %v, want no customer at generation 3", c, err)
	}
	if c, err := customers.Replace(ctx, "owner-g", "cus_g2"); err != nil || c != (checkout.Customer{KeyGeneration: 3}) {
		t.Fatalf("Replace again: %+v %v, want it unchanged", c, err)
	}
	if id, err := customers.Add(ctx, "owner-g", "cus_g3"); err != nil || id != "cus_g3" {
		t.Fatalf("Add of the replacement: %q %v", id, err)
	}
	if c, err := customers.Replace(ctx, "owner-new", "cus_x"); err != nil || c != (checkout.Customer{KeyGeneration: 1}) {
		t.Fatalf("Replace for a traveller without mapping: %+v %v", c, err)
	}
}

// Each move of the lifecycle table is one transaction over the cart, its hold and its bookings,
// conditional on the checkout as read.
func TestApplyMoves(t *testing.T) {
	ctx := context.Background()
	carts := newCarts(db)
	start := func(t *testing.T, id string, items int) checkout.Cart {
		t.Helper()
		cart := seedCartOf(t, id, items)
		codes := make([]string, items)
		for i := range codes {
			codes[i] = checkout.NewBookingCode()
		}
		state, bookings := draft(cart, codes...)
		if err := carts.Begin(ctx, cart, state, bookings); err != nil {
			t.Fatal(err)
		}
		started, err := carts.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return started
	}
	apply := func(m checkout.Move, cart checkout.Cart, intent string, reason checkout.CancellationReason) error {
		return carts.Apply(ctx, checkout.Transition{Move: m, CartID: cart.Identifier, State: *cart.Checkout,
			PaymentIntentID: intent, Reason: reason, At: time.Now()})
	}

	t.Run("release the largest checkout", func(t *testing.T) {
		cart := start(t, "apply-release", checkout.MaxItems)
		if err := apply(checkout.Release, cart, "", checkout.ReasonExpired); err != nil {
			t.Fatalf("Release of %d bookings: %v", checkout.MaxItems, err)
		}
		got, _ := carts.Get(ctx, cart.Identifier)
		if got.Status != checkout.CartOpen || got.Checkout != nil || got.ExpiresAt != cart.Checkout.ExpiresAt || got.Version != cart.Version+1 {
			t.Errorf("released cart: status %s checkout %v expiresAt %d (want %d) version %d (want %d)",
				got.Status, got.Checkout, got.ExpiresAt, cart.Checkout.ExpiresAt, got.Version, cart.Version+1)
		}
		for _, code := range cart.Checkout.BookingCodes {
			b := bookingOf(t, code)
			if str(b["status"]) != checkout.BookingCancelled || str(b["cancellationReason"]) != "expired" {
				t.Fatalf("booking %s: %s %s", code, str(b["status"]), str(b["cancellationReason"]))
			}
		}
		if hold := holdOf(t, cart.Checkout.GroupIdentifier); hold != nil {
			t.Errorf("the hold is left: %v", hold)
		}
		if err := apply(checkout.Release, cart, "", checkout.ReasonExpired); !errors.Is(err, checkout.ErrCartChanged) {
			t.Errorf("a second release: %v, want ErrCartChanged", err)
		}
	})

	t.Run("suspend, fail, confirm", func(t *testing.T) {
		cart := start(t, "apply-confirm", 3)
		state := *cart.Checkout
		state.CustomerID = "cus_1"
		if err := carts.Revise(ctx, cart.Identifier, *cart.Checkout, state); err != nil {
			t.Fatal(err)
		}
		if err := carts.Complete(ctx, cart.Identifier, state, "pi_1"); err != nil {
			t.Fatal(err)
		}
		cart, _ = carts.Get(ctx, cart.Identifier)
		if err := apply(checkout.Confirm, withIntent(cart, "pi_other"), "pi_other", ""); !errors.Is(err, checkout.ErrCartChanged) {
			t.Fatalf("Confirm of another intent than the recorded one: %v, want ErrCartChanged", err)
		}
		suspendedAt := time.Now()
		if err := carts.Apply(ctx, checkout.Transition{Move: checkout.Suspend, CartID: cart.Identifier, State: *cart.Checkout,
			PaymentIntentID: "pi_1", At: suspendedAt}); err != nil {
			t.Fatal(err)
		}
		if hold := holdOf(t, state.GroupIdentifier); hold == nil || str(hold["holdEndsAt"]) != fmt.Sprint(suspendedAt.Add(checkout.ProcessingRecheck).Unix()) {
			t.Errorf("a suspended checkout's hold is %v, want it due for a recheck in %v", hold, checkout.ProcessingRecheck)
		}
		cart, _ = carts.Get(ctx, cart.Identifier)
		if err := apply(checkout.Suspend, cart, "pi_1", ""); !errors.Is(err, checkout.ErrCartChanged) {
			t.Fatalf("Suspend of a processing checkout: %v, want ErrCartChanged", err)
		}
		if cart.Checkout.Status != checkout.Processing {
			t.Fatalf("lifecycle %s, want PROCESSING", cart.Checkout.Status)
		}
		if err := apply(checkout.RecordFailure, cart, "pi_1", ""); err != nil {
			t.Fatal(err)
		}
		if hold := holdOf(t, state.GroupIdentifier); hold == nil || str(hold["holdEndsAt"]) != fmt.Sprint(state.HoldEndsAt.Unix()) {
			t.Errorf("after a failed payment the hold is %v, want it back at its end", hold)
		}
		cart, _ = carts.Get(ctx, cart.Identifier)
		if err := apply(checkout.Confirm, cart, "pi_1", ""); err != nil {
			t.Fatal(err)
		}
		got, _ := carts.Get(ctx, cart.Identifier)
		if got.Status != checkout.CartPaid || got.Checkout.Status != checkout.Confirmed || got.Checkout.PaymentIntentID != "pi_1" {
			t.Errorf("confirmed cart %s %+v", got.Status, got.Checkout)
		}
		for _, code := range state.BookingCodes {
			if b := bookingOf(t, code); str(b["status"]) != checkout.BookingConfirmed {
				t.Errorf("booking %s is %s", code, str(b["status"]))
			}
		}
		if holdOf(t, state.GroupIdentifier) != nil {
			t.Error("a confirmed checkout still has its hold")
		}
		if err := apply(checkout.Confirm, got, "pi_1", ""); !errors.Is(err, checkout.ErrCartChanged) {
			t.Errorf("a second confirmation: %v, want ErrCartChanged", err)
		}
	})

	t.Run("state of an earlier version", func(t *testing.T) {
		cart := seedCartOf(t, "apply-legacy", 1)
		code := checkout.NewBookingCode()
		state, bookings := draft(cart, code)
		state.Status, state.KeyGeneration, state.HoldEndsAt = "", 0, time.Time{} // what the first version wrote
		if err := carts.Begin(ctx, cart, state, bookings); err != nil {
			t.Fatal(err)
		}
		cart, _ = carts.Get(ctx, cart.Identifier)
		if cart.Checkout.Status != "" || cart.Checkout.KeyGeneration != 0 {
			t.Fatalf("legacy state reads %+v", cart.Checkout)
		}
		legacy := cart.Checkout.WithDefaults(30 * time.Minute)
		if legacy.Status != checkout.PendingPayment || legacy.KeyGeneration != 1 || !legacy.HoldEndsAt.Equal(legacy.StartedAt.Add(30*time.Minute)) {
			t.Fatalf("defaults %+v", legacy)
		}
		if err := carts.Apply(ctx, checkout.Transition{Move: checkout.Release, CartID: cart.Identifier, State: legacy,
			Reason: checkout.ReasonExpired, At: time.Now()}); err != nil {
			t.Fatalf("Release of legacy state: %v", err)
		}
	})
}

// A cart that its checkout state would push over DynamoDB's 400 KB item limit is refused before
// the transaction, with nothing written.
func TestBeginRefusesACartTooLargeForItsState(t *testing.T) {
	ctx := context.Background()
	carts := newCarts(db)
	big := strings.Repeat("x", 399*1024)
	if err := sample.PutCart(ctx, db, names["CartsTable"], sample.Cart{ID: "adapter-big", Owner: "o", Currency: "EUR",
		Items: []sample.Item{{HotelName: big, Amount: "1.00"}}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cart, err := carts.Get(ctx, "adapter-big")
	if err != nil {
		t.Fatal(err)
	}
	if cart.StoredSize < len(big) || cart.StoredSize > len(big)+2048 {
		t.Fatalf("StoredSize %d for an item of about %d bytes", cart.StoredSize, len(big))
	}
	codes := make([]string, 60)
	for i := range codes {
		codes[i] = checkout.NewBookingCode()
	}
	state, bookings := draft(cart, codes...)
	if err := carts.Begin(ctx, cart, state, bookings[:1]); !errors.Is(err, checkout.ErrCartTooLarge) {
		t.Fatalf("Begin: %v, want ErrCartTooLarge", err)
	}
	if got, _ := carts.Get(ctx, "adapter-big"); got.Status != checkout.CartOpen {
		t.Errorf("cart is %s", got.Status)
	}
	if holdOf(t, state.GroupIdentifier) != nil {
		t.Error("a hold was written")
	}
}

func withIntent(cart checkout.Cart, intent string) checkout.Cart {
	state := *cart.Checkout
	state.PaymentIntentID = intent
	cart.Checkout = &state
	return cart
}

func seedCartOf(t *testing.T, id string, items int) checkout.Cart {
	t.Helper()
	ctx := context.Background()
	c := sample.Cart{ID: id, Owner: "o", Currency: "EUR", ExpiresAt: time.Now().Add(time.Hour)}
	for range items {
		c.Items = append(c.Items, sample.Item{HotelName: "h", Amount: "1.00"})
	}
	if err := sample.PutCart(ctx, db, names["CartsTable"], c); err != nil {
		t.Fatal(err)
	}
	cart, err := newCarts(db).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return cart
}

func itemOf(t *testing.T, table, keyName, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(names[table]), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{keyName: &types.AttributeValueMemberS{Value: key}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func holdOf(t *testing.T, group string) map[string]types.AttributeValue {
	return itemOf(t, "HoldsTable", "groupIdentifier", group)
}

func bookingOf(t *testing.T, code string) map[string]types.AttributeValue {
	return itemOf(t, "BookingsTable", "bookingCode", code)
}

var str = testenv.String
