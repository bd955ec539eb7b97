package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/tables"
)

// holdsTable creates a holds table of the test's own, from template.yaml's definition.
func holdsTable(t *testing.T) string {
	t.Helper()
	path, err := tables.TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	defs, err := tables.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	name := "holds-" + t.Name()
	if err := tables.Create(context.Background(), db, map[string]tables.Table{"HoldsTable": defs["HoldsTable"]}, map[string]string{"HoldsTable": name}); err != nil {
		t.Fatal(err)
	}
	return name
}

// putHolds writes holds as Begin does, n at a time with BatchWriteItem.
func putHolds(t *testing.T, table string, holds []checkout.Hold) {
	t.Helper()
	for start := 0; start < len(holds); start += 25 {
		var writes []types.WriteRequest
		for _, h := range holds[start:min(start+25, len(holds))] {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"groupIdentifier":        &types.AttributeValueMemberS{Value: h.GroupIdentifier},
				"holdShard":              &types.AttributeValueMemberS{Value: dynamo.HoldShard(h.GroupIdentifier)},
				"holdEndsAt":             &types.AttributeValueMemberN{Value: fmt.Sprint(h.EndsAt.Unix())},
				"shoppingCartIdentifier": &types.AttributeValueMemberS{Value: h.ShoppingCartIdentifier},
			}}})
		}
		for len(writes) > 0 {
			out, err := db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: writes}})
			if err != nil {
				t.Fatal(err)
			}
			writes = out.UnprocessedItems[table]
		}
	}
}

// Finding due holds reads the due holds and nothing else: a sweep over 10,000 pending checkouts
// of which 10 are due reads 10 index items, not 10,000.
func TestDueHoldsReadOnlyTheDue(t *testing.T) {
	table := holdsTable(t)
	now := time.Now().UTC().Truncate(time.Second)
	var holds []checkout.Hold
	for i := range 10_000 {
		holds = append(holds, checkout.Hold{GroupIdentifier: checkout.NewGroupIdentifier(), ShoppingCartIdentifier: fmt.Sprintf("cart-%d", i),
			EndsAt: now.Add(time.Duration(1+i%1800) * time.Second)})
	}
	due := map[string]bool{}
	for i := range 10 {
		h := checkout.Hold{GroupIdentifier: checkout.NewGroupIdentifier(), ShoppingCartIdentifier: fmt.Sprintf("due-%d", i),
			EndsAt: now.Add(-time.Duration(i) * time.Minute)}
		holds, due[h.GroupIdentifier] = append(holds, h), true
	}
	putHolds(t, table, holds)

	adapter := dynamo.NewHolds(db, table)
	found, err := adapter.Due(context.Background(), now, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 10 {
		t.Fatalf("%d due holds found, want 10", len(found))
	}
	for _, h := range found {
		if !due[h.GroupIdentifier] || h.EndsAt.After(now) || h.ShoppingCartIdentifier == "" {
			t.Errorf("found %+v, which is not due", h)
		}
	}
	if read := adapter.ItemsRead(); read != 10 {
		t.Errorf("the sweep read %d items of the index, want the 10 due ones", read)
	}
	// A bounded run takes at most its limit.
	if few, err := adapter.Due(context.Background(), now, 3); err != nil || len(few) != 3 {
		t.Errorf("Due with limit 3: %d holds, %v", len(few), err)
	}
}

// A claim keeps a second releaser off a hold until it expires; a removed hold cannot be claimed;
// Forget removes a hold only if it still ends when it did.
func TestHoldClaimsAndForget(t *testing.T) {
	table := holdsTable(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	hold := checkout.Hold{GroupIdentifier: checkout.NewGroupIdentifier(), ShoppingCartIdentifier: "cart-claim", EndsAt: now.Add(-time.Minute)}
	putHolds(t, table, []checkout.Hold{hold})
	adapter := dynamo.NewHolds(db, table)
	for _, tc := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"first claim", now, true},
		{"second releaser, claim running", now.Add(10 * time.Second), false},
		{"after the claim expired", now.Add(51 * time.Second), true},
	} {
		got, err := adapter.Claim(ctx, hold, tc.at, tc.at.Add(50*time.Second))
		if err != nil || got != tc.want {
			t.Errorf("%s: claimed %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
	moved := hold
	moved.EndsAt = now.Add(time.Hour)
	if err := adapter.Forget(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if out, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"groupIdentifier": &types.AttributeValueMemberS{Value: hold.GroupIdentifier}}}); out.Item == nil {
		t.Fatal("Forget of another hold end removed the hold")
	}
	if err := adapter.Forget(ctx, hold); err != nil {
		t.Fatal(err)
	}
	if got, err := adapter.Claim(ctx, hold, now.Add(2*time.Minute), now.Add(3*time.Minute)); err != nil || got {
		t.Errorf("claim of a removed hold: %v %v, want false", got, err)
	}
}
