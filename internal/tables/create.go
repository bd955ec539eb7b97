package tables

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// activeTimeout bounds the wait for one table to become ACTIVE.
const activeTimeout = 2 * time.Minute

// api is the part of *dynamodb.Client that Create uses.
type api interface {
	dynamodb.DescribeTableAPIClient
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

var _ api = (*dynamodb.Client)(nil)

// Create creates every table under its name in names (logical id -> table name), waits until it
// is ACTIVE and enables its TTL. A table that already exists with that name is kept, provided its
// keys and indexes match the template, so Create can run before every test or local start.
func Create(ctx context.Context, db *dynamodb.Client, tables map[string]Table, names map[string]string) error {
	return create(ctx, db, tables, names)
}

func create(ctx context.Context, db api, tables map[string]Table, names map[string]string) error {
	for id := range names {
		if _, ok := tables[id]; !ok {
			return fmt.Errorf("create tables: a name is given for %s, which is no table of the template", id)
		}
	}
	ids := make([]string, 0, len(tables))
	for id := range tables {
		if names[id] == "" {
			return fmt.Errorf("create tables: no table name given for %s", id)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := createOne(ctx, db, tables[id], names[id]); err != nil {
			return fmt.Errorf("create table %s (%s): %w", names[id], id, err)
		}
	}
	return nil
}

func createOne(ctx context.Context, db api, table Table, name string) error {
	in := *table.Input
	in.TableName = aws.String(name)
	_, err := db.CreateTable(ctx, &in)
	var inUse *types.ResourceInUseException
	exists := errors.As(err, &inUse)
	if err != nil && !exists {
		return err
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	described, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, activeTimeout)
	if err != nil {
		return fmt.Errorf("wait until ACTIVE: %w", err)
	}
	if exists {
		if err := sameSchema(&in, described.Table); err != nil {
			return fmt.Errorf("table exists with another schema: %w", err)
		}
	}
	if table.TTLAttribute == "" {
		return nil
	}
	return enableTTL(ctx, db, name, table.TTLAttribute)
}

func enableTTL(ctx context.Context, db api, name, attribute string) error {
	current, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL: %w", err)
	}
	if d := current.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if got := aws.ToString(d.AttributeName); got != attribute {
				return fmt.Errorf("TTL is on %q, the template says %q", got, attribute)
			}
			return nil
		}
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attribute), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", attribute, err)
	}
	return nil
}

// sameSchema compares what cannot change without recreating the table: its keys and the keys
// of its global secondary indexes.
func sameSchema(want *dynamodb.CreateTableInput, got *types.TableDescription) error {
	if got == nil {
		return errors.New("no table description")
	}
	if w, g := keyString(want.KeySchema), keyString(got.KeySchema); w != g {
		return fmt.Errorf("keys are %s, the template says %s", g, w)
	}
	wantIndexes := map[string]string{}
	for _, gsi := range want.GlobalSecondaryIndexes {
		wantIndexes[aws.ToString(gsi.IndexName)] = keyString(gsi.KeySchema)
	}
	gotIndexes := map[string]string{}
	for _, gsi := range got.GlobalSecondaryIndexes {
		gotIndexes[aws.ToString(gsi.IndexName)] = keyString(gsi.KeySchema)
	}
	for name, keys := range wantIndexes {
		if gotIndexes[name] != keys {
			return fmt.Errorf("index %s has keys %q, the template says %s", name, gotIndexes[name], keys)
		}
	}
	for name := range gotIndexes {
		if _, ok := wantIndexes[name]; !ok {
			return fmt.Errorf("index %s is not in the template", name)
		}
	}
	return nil
}

func keyString(keys []types.KeySchemaElement) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
