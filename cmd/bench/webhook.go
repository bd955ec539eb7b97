package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/testenv"
)

// The webhook's latency: a payment_intent.succeeded delivered to the handler, against its floor,
// the same DynamoDB calls made directly (the cart read, then the confirmation transaction over
// the cart, the hold and every booking). Each round checks two fresh carts out first (not
// timed), then confirms one through each, in a random order.

// paidCheckout is a checked-out cart whose PaymentIntent the traveller has just paid.
type paidCheckout struct {
	cartID, group, intentID string
	codes                   []string
}

func (r *runner) paidCheckout(ctx context.Context) (paidCheckout, error) {
	j, err := r.newJob(ctx, false)
	if err != nil {
		return paidCheckout{}, err
	}
	if _, err := invoke(ctx, r.handler, testenv.APIEvent(j.owner, requestBody(j.cartID))); err != nil {
		return paidCheckout{}, err
	}
	out, err := r.env.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(cartsTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"identifier": s(j.cartID)},
	})
	if err != nil {
		return paidCheckout{}, err
	}
	state := testenv.Map(out.Item["checkout"])
	return paidCheckout{cartID: j.cartID, group: testenv.String(state["groupIdentifier"]),
		intentID: testenv.String(state["paymentIntentId"]), codes: testenv.Strings(state["bookingCodes"])}, nil
}

// webhookLatency returns the webhook's and its floor's latencies over iterations rounds, after
// warmup unmeasured ones.
func (r *runner) webhookLatency(ctx context.Context, warmup, iterations int) (hook, floor []time.Duration, err error) {
	// The confirmation's GA4 purchase goes to a local collector, as in production to Google.
	collector, err := testenv.StartGA4Collector(map[string]string{benchGA4MeasurementID: testenv.GA4APISecret})
	if err != nil {
		return nil, nil, err
	}
	defer collector.Close()
	r.collector = collector.Endpoint() + "?" + url.Values{"measurement_id": {benchGA4MeasurementID}, "api_secret": {testenv.GA4APISecret}}.Encode()
	settings := r.env.Settings(r.env.Stack.StripeURL, map[string]string{
		"GA4_ENDPOINT": collector.Endpoint(), "GA4_API_SECRETS": `{"` + benchGA4MeasurementID + `":"` + testenv.GA4APISecret + `"}`,
	})
	fn, err := testenv.Webhook(ctx, settings, discardLogger(), app.Options{Metrics: devNull()})
	if err != nil {
		return nil, nil, fmt.Errorf("build the webhook: %w", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := -warmup; round < iterations; round++ {
		var pair [2]paidCheckout
		for i := range pair {
			if pair[i], err = r.paidCheckout(ctx); err != nil {
				return nil, nil, err
			}
		}
		var d [2]time.Duration
		for _, i := range rng.Perm(2) {
			if i == 0 {
				d[i], err = r.deliverPaid(ctx, fn, pair[i])
			} else {
				d[i], err = r.confirmDirectly(ctx, pair[i])
			}
			if err != nil {
				return nil, nil, err
			}
		}
		if round >= 0 {
			hook, floor = append(hook, d[0]), append(floor, d[1])
		}
	}
	return hook, floor, nil
}

// deliverPaid times the webhook handler on a signed payment_intent.succeeded for c.
func (r *runner) deliverPaid(ctx context.Context, fn *app.Webhook, c paidCheckout) (time.Duration, error) {
	body := testenv.PaymentIntentEvent(checkout.EventSucceeded, testenv.PaymentIntentState{
		ID: c.intentID, Status: "succeeded", Amount: benchAmountMinor, Currency: benchCurrency,
		Metadata: map[string]string{"groupIdentifier": c.group, "shoppingCartIdentifier": c.cartID},
	}, time.Now())
	ev := testenv.WebhookRequest(body, testenv.Signature(body, testenv.WebhookSecret, time.Now()))
	ctx, cancel := context.WithTimeout(ctx, functionTimeout)
	defer cancel()
	ctx = lambdaContext(ctx, ev.RequestContext.RequestID)
	start := time.Now()
	resp, err := fn.Handler.Handle(ctx, ev)
	elapsed := time.Since(start)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("webhook answered %d: %s", resp.StatusCode, resp.Body)
	}
	return elapsed, err
}

// confirmDirectly times the webhook's calls made directly: the cart read, the confirmation's
// transaction, then the GA4 purchase's: the bookings read, the send, its record.
func (r *runner) confirmDirectly(ctx context.Context, c paidCheckout) (time.Duration, error) {
	start := time.Now()
	if _, err := r.floor.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(cartsTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"identifier": s(c.cartID)},
	}); err != nil {
		return 0, err
	}
	at := s(time.Now().UTC().Format(time.RFC3339Nano))
	tx := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(cartsTable),
		Key:       map[string]types.AttributeValue{"identifier": s(c.cartID)},
		UpdateExpression: aws.String("SET #status = :paid, #checkout.#lifecycle = :confirmed, #checkout.#pi = :intent," +
			" #checkout.#confirmedAt = :at"),
		ConditionExpression: aws.String("#status IN (:checkingOut, :checkedOut) AND #checkout.#group = :group AND" +
			" (attribute_not_exists(#checkout.#lifecycle) OR #checkout.#lifecycle IN (:pending, :processing)) AND #checkout.#pi = :intent"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier",
			"#lifecycle": "status", "#pi": "paymentIntentId", "#confirmedAt": "confirmedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":paid": s("PAID"), ":confirmed": s("CONFIRMED"), ":intent": s(c.intentID), ":at": at, ":group": s(c.group),
			":checkingOut": s("CHECKING_OUT"), ":checkedOut": s("CHECKED_OUT"), ":pending": s("PENDING_PAYMENT"), ":processing": s("PROCESSING"),
		},
	}}, {Update: &types.Update{TableName: aws.String(holdsTable), Key: map[string]types.AttributeValue{"groupIdentifier": s(c.group)},
		UpdateExpression:          aws.String("SET #endsAt = :due, #purchase = :true"),
		ExpressionAttributeNames:  map[string]string{"#endsAt": "holdEndsAt", "#purchase": "purchase"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":due": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}, ":true": &types.AttributeValueMemberBOOL{Value: true}},
	}}}
	for _, code := range c.codes {
		tx = append(tx, types.TransactWriteItem{Update: &types.Update{
			TableName:                aws.String(bookingsTable),
			Key:                      map[string]types.AttributeValue{"bookingCode": s(code)},
			UpdateExpression:         aws.String("SET #status = :confirmed, #updatedAt = :at, #pi = :intent"),
			ConditionExpression:      aws.String("#group = :group"),
			ExpressionAttributeNames: map[string]string{"#status": "status", "#updatedAt": "updatedAt", "#pi": "paymentIntentId", "#group": "groupIdentifier"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":confirmed": s("CONFIRMED"), ":at": at, ":intent": s(c.intentID), ":group": s(c.group),
			},
		}})
	}
	token := "bench-confirm-" + strconv.FormatInt(r.seq.Add(1), 10)
	if _, err := r.floor.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx, ClientRequestToken: &token}); err != nil {
		return 0, err
	}
	keys := make([]map[string]types.AttributeValue, len(c.codes))
	for i, code := range c.codes {
		keys[i] = map[string]types.AttributeValue{"bookingCode": s(code)}
	}
	if _, err := r.floor.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		bookingsTable: {Keys: keys, ConsistentRead: aws.Bool(true)}}}); err != nil {
		return 0, err
	}
	body := `{"client_id":"` + benchGA4ClientID + `","timestamp_micros":` + strconv.FormatInt(time.Now().UnixMicro(), 10) +
		`,"events":[{"name":"purchase","params":{"transaction_id":"` + c.group + `","value":425.00,"currency":"EUR","session_id":"` +
		benchGA4SessionID + `","engagement_time_msec":100,"items":[{"item_id":"rate-1","item_name":"Hotel 1","price":180.00,"quantity":1},` +
		`{"item_id":"rate-2","item_name":"Hotel 2","price":245.00,"quantity":1}]}}]}`
	resp, err := r.ga4.Post(r.collector, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	token = "bench-purchase-" + strconv.FormatInt(r.seq.Add(1), 10)
	_, err = r.floor.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{ClientRequestToken: &token, TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: aws.String(cartsTable), Key: map[string]types.AttributeValue{"identifier": s(c.cartID)},
			UpdateExpression:          aws.String("SET #checkout.#purchase = :sent, #checkout.#at = :at"),
			ConditionExpression:       aws.String("#checkout.#group = :group"),
			ExpressionAttributeNames:  map[string]string{"#checkout": "checkout", "#purchase": "purchase", "#at": "purchaseRecordedAt", "#group": "groupIdentifier"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":sent": s("SENT"), ":at": at, ":group": s(c.group)}}},
		{Delete: &types.Delete{TableName: aws.String(holdsTable), Key: map[string]types.AttributeValue{"groupIdentifier": s(c.group)}}},
	}})
	return time.Since(start), err
}
