package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	domain "github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/testenv"
)

// payEvents are the events `local pay` plays, by the name of its -event flag, with the status
// the PaymentIntent has in each.
var payEvents = map[string]struct{ eventType, status string }{
	"succeeded":      {domain.EventSucceeded, "succeeded"},
	"processing":     {domain.EventProcessing, "processing"},
	"payment_failed": {domain.EventPaymentFailed, "requires_payment_method"},
	"canceled":       {domain.EventCanceled, "canceled"},
}

// payCommand is `local pay`: it plays Stripe for a checked-out cart of a running local server,
// sending its webhook a correctly signed payment_intent event for the cart's PaymentIntent, then
// prints the webhook's answer and where the cart and its bookings stand. It returns the exit code.
func payCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("local pay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cartID := fs.String("cart", "", "the checked-out cart to pay (required)")
	event := fs.String("event", "succeeded", "the event Stripe sends: succeeded, processing, payment_failed or canceled")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: local pay -cart id [-event succeeded]\n\n"+
			"Sends the running local server's Stripe webhook a signed event for the cart's PaymentIntent.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := pay(getenv, stdout, strings.TrimSpace(*cartID), *event); err != nil {
		fmt.Fprintln(stderr, "local pay:", err)
		return 1
	}
	return 0
}

func pay(getenv func(string) string, stdout io.Writer, cartID, event string) error {
	played, ok := payEvents[event]
	switch {
	case cartID == "":
		return errors.New("-cart is required: the id of a checked-out cart (make pay CART=cart-alice-lisbon)")
	case !ok:
		return fmt.Errorf("-event must be succeeded, processing, payment_failed or canceled, not %q", event)
	}
	s, cfg, dynamoURL, err := runningServer(getenv)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	db := localstack.DynamoDBClient(dynamoURL)
	cart, err := readCart(ctx, db, cfg.CartsTable, cartID)
	if err != nil {
		return err
	}
	state, _ := cart["checkout"].(*types.AttributeValueMemberM)
	if state == nil || testenv.String(state.Value["paymentIntentId"]) == "" {
		return fmt.Errorf("cart %s is %s with no PaymentIntent: check it out first (the banner's curl)", cartID, testenv.String(cart["status"]))
	}
	amount, _ := strconv.ParseInt(testenv.String(state.Value["amountMinor"]), 10, 64)
	intent := testenv.PaymentIntentState{
		ID: testenv.String(state.Value["paymentIntentId"]), Status: played.status, Amount: amount,
		Currency: testenv.String(state.Value["currency"]), Customer: testenv.String(state.Value["customerId"]),
		Metadata: map[string]string{
			"groupIdentifier": testenv.String(state.Value["groupIdentifier"]), "shoppingCartIdentifier": cartID,
		},
	}
	body := testenv.PaymentIntentEvent(played.eventType, intent, time.Now())
	url := loopbackURL(s.port) + webhookRoutePath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", testenv.Signature(body, webhookSecret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post the event to %s: %w", url, err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Fprintf(stdout, "Sent %s for %s (group %s) to %s: %s %s\n", played.eventType, intent.ID,
		intent.Metadata["groupIdentifier"], url, resp.Status, bytes.TrimSpace(answer))

	cart, err = readCart(ctx, db, cfg.CartsTable, cartID)
	if err != nil {
		return err
	}
	bookings, err := bookingStatuses(ctx, db, cfg.BookingsTable, intent.Metadata["groupIdentifier"])
	if err != nil {
		return err
	}
	checkoutStatus := "none (released)"
	if m, _ := cart["checkout"].(*types.AttributeValueMemberM); m != nil {
		checkoutStatus = testenv.String(m.Value["status"])
	}
	fmt.Fprintf(stdout, "Cart %s is %s, its checkout %s; bookings: %s\n", cartID, testenv.String(cart["status"]),
		checkoutStatus, strings.Join(bookings, ", "))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

func readCart(ctx context.Context, db *dynamodb.Client, table, id string) (testenv.Item, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"identifier": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		return nil, fmt.Errorf("read cart %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("no cart %s in table %s", id, table)
	}
	return out.Item, nil
}

// bookingStatuses lists the group's bookings as "CODE STATUS", sorted.
func bookingStatuses(ctx context.Context, db *dynamodb.Client, table, group string) ([]string, error) {
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: &table, IndexName: aws.String("byGroup"),
		KeyConditionExpression:    aws.String("groupIdentifier = :g"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: group}},
	})
	if err != nil {
		return nil, fmt.Errorf("read the bookings of group %s: %w", group, err)
	}
	var list []string
	for _, b := range out.Items {
		list = append(list, testenv.String(b["bookingCode"])+" "+testenv.String(b["status"]))
	}
	sort.Strings(list)
	return list, nil
}
