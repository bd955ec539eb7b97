package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/checkout"
)

// Holds finds due holds through the holds table's byDue index: one query per shard for the
// holds ended by now, so that a sweep reads the due holds and nothing else (docs/design.md,
// "Holds").
type Holds struct {
	db    *dynamodb.Client
	table string
	read  atomic.Int64
}

var _ checkout.Holds = (*Holds)(nil)

// NewHolds returns the holds adapter on the named table.
func NewHolds(db *dynamodb.Client, table string) *Holds {
	return &Holds{db: db, table: table}
}

// ItemsRead is how many index items Due has read since the adapter was made (what a sweep costs).
func (h *Holds) ItemsRead() int64 { return h.read.Load() }

// Due queries every shard at once for holds that ended at or before now, each shard's oldest
// first, up to limit in all.
func (h *Holds) Due(ctx context.Context, now time.Time, limit int) ([]checkout.Hold, error) {
	perShard := max(1, limit/holdShards) // the same share for every shard
	results := make([][]checkout.Hold, holdShards)
	errs := make([]error, holdShards)
	var wg sync.WaitGroup
	for shard := range holdShards {
		wg.Go(func() { results[shard], errs[shard] = h.dueInShard(ctx, fmt.Sprintf("%02d", shard), now, perShard) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var due []checkout.Hold
	for _, r := range results {
		due = append(due, r...)
	}
	return due[:min(len(due), limit)], nil
}

func (h *Holds) dueInShard(ctx context.Context, shard string, now time.Time, limit int) ([]checkout.Hold, error) {
	out, err := h.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                &h.table,
		IndexName:                aws.String("byDue"),
		KeyConditionExpression:   aws.String("#shard = :shard AND #endsAt <= :now"),
		ExpressionAttributeNames: map[string]string{"#shard": "holdShard", "#endsAt": "holdEndsAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard": stringValue(shard), ":now": numberValue(now.Unix()),
		},
		Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, fmt.Errorf("query shard %s of the due holds: %w", shard, err)
	}
	h.read.Add(int64(out.ScannedCount))
	holds := make([]checkout.Hold, 0, len(out.Items))
	for _, item := range out.Items {
		var r holdRecord
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			return nil, fmt.Errorf("decode hold: %w", err)
		}
		holds = append(holds, checkout.Hold{
			GroupIdentifier: r.GroupIdentifier, ShoppingCartIdentifier: r.ShoppingCartIdentifier,
			EndsAt: time.Unix(r.HoldEndsAt, 0).UTC(), Purchase: r.Purchase,
		})
	}
	return holds, nil
}

// Claim marks the hold claimed until until, unless another releaser's claim still runs or the
// hold no longer ends when it did.
func (h *Holds) Claim(ctx context.Context, hold checkout.Hold, now, until time.Time) (bool, error) {
	_, err := h.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &h.table,
		Key:              map[string]types.AttributeValue{"groupIdentifier": stringValue(hold.GroupIdentifier)},
		UpdateExpression: aws.String("SET #claimedUntil = :until"),
		// Still as found (a move since, which sets holdEndsAt, makes the find stale), and unclaimed.
		ConditionExpression:      aws.String("#endsAt = :endsAt AND (attribute_not_exists(#claimedUntil) OR #claimedUntil <= :now)"),
		ExpressionAttributeNames: map[string]string{"#endsAt": "holdEndsAt", "#claimedUntil": "claimedUntil"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": numberValue(now.UnixMilli()), ":until": numberValue(until.UnixMilli()),
			":endsAt": numberValue(hold.EndsAt.Unix()),
		},
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return false, nil
	}
	return err == nil, err
}

// Defer moves the hold, provided it still ends when it did, to end at until, and drops its claim.
func (h *Holds) Defer(ctx context.Context, hold checkout.Hold, until time.Time) error {
	_, err := h.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &h.table,
		Key:                      map[string]types.AttributeValue{"groupIdentifier": stringValue(hold.GroupIdentifier)},
		UpdateExpression:         aws.String("SET #endsAt = :until REMOVE #claimedUntil"),
		ConditionExpression:      aws.String("#endsAt = :endsAt"),
		ExpressionAttributeNames: map[string]string{"#endsAt": "holdEndsAt", "#claimedUntil": "claimedUntil"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":endsAt": numberValue(hold.EndsAt.Unix()), ":until": numberValue(until.Unix()),
		},
	})
	var changed *types.ConditionalCheckFailedException
	if errors.As(err, &changed) {
		return nil // moved meanwhile (the checkout's own move sets it)
	}
	return err
}

// Forget deletes the hold, provided it still ends when it did (a hold put back since stays).
func (h *Holds) Forget(ctx context.Context, hold checkout.Hold) error {
	_, err := h.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &h.table,
		Key:                       map[string]types.AttributeValue{"groupIdentifier": stringValue(hold.GroupIdentifier)},
		ConditionExpression:       aws.String("#endsAt = :endsAt"),
		ExpressionAttributeNames:  map[string]string{"#endsAt": "holdEndsAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":endsAt": numberValue(hold.EndsAt.Unix())},
	})
	var changed *types.ConditionalCheckFailedException
	if errors.As(err, &changed) {
		return nil
	}
	return err
}
