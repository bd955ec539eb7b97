package testenv

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Helpers shared by the end-to-end tests: requests as API Gateway sends them, and reads of the
// tables as a checker sees them (strongly consistent, straight from DynamoDB Local).

var requestCounter atomic.Int64

// APIEvent returns a `POST /api/checkout` event as an API Gateway HTTP API (payload 2.0) sends
// it, with a JWT whose sub claim is caller ("" for no identity) and a fresh request id.
func APIEvent(caller, body string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "POST /api/checkout",
		RawPath:  "/api/checkout",
		Headers:  map[string]string{"content-type": "application/json", "wink-version": "2.0"},
		Body:     body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "req-" + strconv.FormatInt(requestCounter.Add(1), 10),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/checkout"},
		},
	}
	if caller != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": caller}},
		}
	}
	return ev
}

// Item is a raw DynamoDB item.
type Item = map[string]types.AttributeValue

// Cart reads a cart's raw item; nil if there is none.
func (e *Env) Cart(ctx context.Context, id string) (Item, error) {
	out, err := e.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(Tables["CartsTable"]),
		Key:            Item{"identifier": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// BookingsOfCart scans the bookings table for a cart's bookings, whichever group they are in.
func (e *Env) BookingsOfCart(ctx context.Context, cartID string) ([]Item, error) {
	var items []Item
	p := dynamodb.NewScanPaginator(e.DB, &dynamodb.ScanInput{
		TableName:                 aws.String(Tables["BookingsTable"]),
		FilterExpression:          aws.String("shoppingCartIdentifier = :c"),
		ExpressionAttributeValues: Item{":c": &types.AttributeValueMemberS{Value: cartID}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// BookingsOfGroup queries the byGroup index for a group's bookings.
func (e *Env) BookingsOfGroup(ctx context.Context, group string) ([]Item, error) {
	var items []Item
	p := dynamodb.NewQueryPaginator(e.DB, &dynamodb.QueryInput{
		TableName:                 aws.String(Tables["BookingsTable"]),
		IndexName:                 aws.String("byGroup"),
		KeyConditionExpression:    aws.String("groupIdentifier = :g"),
		ExpressionAttributeValues: Item{":g": &types.AttributeValueMemberS{Value: group}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// String returns a string, number or boolean attribute's text, "" for anything else.
func String(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return strconv.FormatBool(v.Value)
	}
	return ""
}

// Strings returns a list attribute's strings.
func Strings(av types.AttributeValue) []string {
	l, _ := av.(*types.AttributeValueMemberL)
	if l == nil {
		return nil
	}
	out := make([]string, len(l.Value))
	for i, v := range l.Value {
		out[i] = String(v)
	}
	return out
}

// Map returns a map attribute's members, nil for anything else.
func Map(av types.AttributeValue) Item {
	m, _ := av.(*types.AttributeValueMemberM)
	if m == nil {
		return nil
	}
	return m.Value
}

// LogBuffer collects a function's log lines from concurrent requests.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns what was written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Reset forgets what was written so far.
func (b *LogBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = nil
}
