package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/ephemeralkey"
	"github.com/stripe/stripe-go/v76/paymentintent"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/dynamo"
	"github.com/winktravel/checkout/internal/payments"
)

// floor makes the DynamoDB and Stripe calls of one checkout directly, with raw SDK calls and
// no handler logic: no event decoding, validation, domain types, attributevalue reflection,
// money arithmetic or logging. Its calls and payloads are the ones the adapters send, arranged
// on the critical path the flow allows. Its clients are built as internal/app builds the
// function's, so the two differ only by what the handler does.
type floor struct {
	db                  *dynamodb.Client
	customers           customer.Client
	intents             paymentintent.Client
	ephemeralKeys       ephemeralkey.Client
	ephemeralKeyVersion string
}

func newFloor(ctx context.Context, stripeURL, stripeKey string) (*floor, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 64
	})
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(httpClient))
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		HTTPClient:    &http.Client{Transport: transport},
		URL:           stripe.String(stripeURL),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &floor{
		db:                  db,
		customers:           customer.Client{B: backend, Key: stripeKey},
		intents:             paymentintent.Client{B: backend, Key: stripeKey},
		ephemeralKeys:       ephemeralkey.Client{B: backend, Key: stripeKey},
		ephemeralKeyVersion: "2023-10-16",
	}, nil
}

// both runs a and b at once and waits for both, as the checkout's concurrent steps do.
func both(a, b func()) {
	var wg sync.WaitGroup
	wg.Go(b)
	a()
	wg.Wait()
}

func s(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }
func n(v string) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: v} }

// checkout checks out the cart of owner: the three reads at once, the transaction at once with
// the Stripe customer and its mapping (when the owner has none), the PaymentIntent at once with
// the ephemeral key, then the final update.
func (f *floor) checkout(ctx context.Context, cartID, owner string) error {
	var cartOut, czOut, customerOut *dynamodb.GetItemOutput
	var cartErr, czErr, customerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		czOut, czErr = f.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(customizationsTable),
			Key:       map[string]types.AttributeValue{"identifier": s(benchCustomization)},
		})
	})
	wg.Go(func() {
		customerOut, customerErr = f.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(customersTable),
			Key:            map[string]types.AttributeValue{"ownerIdentifier": s(owner)},
			ConsistentRead: aws.Bool(true),
		})
	})
	cartOut, cartErr = f.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(cartsTable),
		Key:            map[string]types.AttributeValue{"identifier": s(cartID)},
		ConsistentRead: aws.Bool(true),
	})
	wg.Wait()
	if err := errors.Join(cartErr, czErr, customerErr); err != nil {
		return err
	}
	if cartOut.Item == nil || czOut.Item == nil {
		return fmt.Errorf("floor: cart %s or the customization is missing", cartID)
	}
	customerID := ""
	if v, ok := customerOut.Item["stripeCustomerId"].(*types.AttributeValueMemberS); ok {
		customerID = v.Value
	}
	newTraveller := customerID == ""

	// The transaction: the cart to CHECKING_OUT with its checkout state, and one conditional
	// put per room, copied from the cart item as read.
	items := cartOut.Item["items"].(*types.AttributeValueMemberL).Value
	group := randomID()
	now := time.Now().UTC()
	codes := make([]string, len(items))
	codeValues := make([]types.AttributeValue, len(items))
	for i := range items {
		codes[i] = "WK-" + strings.ToUpper(randomID()[:8])
		codeValues[i] = s(codes[i])
	}
	state := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"groupIdentifier":           s(group),
		"status":                    s("PENDING_PAYMENT"),
		"keyGeneration":             n("1"),
		"holdEndsAt":                s(now.Add(checkout.DefaultHold).Format(time.RFC3339Nano)),
		"bookingCodes":              &types.AttributeValueMemberL{Value: codeValues},
		"startedAt":                 s(now.Format(time.RFC3339Nano)),
		"customizationIdentifier":   s(benchCustomization),
		"redirectUrl":               s(benchRedirect),
		"ga4ClientId":               s(benchGA4ClientID),
		"ga4SessionId":              s(benchGA4SessionID),
		"ga4MeasurementId":          s(benchGA4MeasurementID),
		"statementDescriptorSuffix": s(benchDescriptorSuffix),
		"amountMinor":               n(strconv.FormatInt(benchAmountMinor, 10)),
		"currency":                  s(benchCurrency),
		"expiresAt":                 cartOut.Item["expiresAt"],
	}}
	if !newTraveller {
		state.Value["customerId"] = s(customerID)
	}
	tx := make([]types.TransactWriteItem, 0, 2+len(items))
	tx = append(tx, types.TransactWriteItem{Update: &types.Update{
		TableName:           aws.String(cartsTable),
		Key:                 map[string]types.AttributeValue{"identifier": s(cartID)},
		UpdateExpression:    aws.String("SET #status = :checkingOut, #checkout = :checkout REMOVE #expiresAt"),
		ConditionExpression: aws.String("#status = :open AND #version = :version"),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#version": "version", "#checkout": "checkout", "#expiresAt": "expiresAt",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open": s("OPEN"), ":checkingOut": s("CHECKING_OUT"), ":version": cartOut.Item["version"], ":checkout": state,
		},
	}})
	tx = append(tx, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(holdsTable),
		Item: map[string]types.AttributeValue{
			"groupIdentifier": s(group), "holdShard": s(dynamo.HoldShard(group)),
			"holdEndsAt":             &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(checkout.DefaultHold).Unix(), 10)},
			"shoppingCartIdentifier": s(cartID),
		},
		ConditionExpression: aws.String("attribute_not_exists(groupIdentifier)"),
	}})
	for i, it := range items {
		booking := map[string]types.AttributeValue{
			"bookingCode":             s(codes[i]),
			"groupIdentifier":         s(group),
			"shoppingCartIdentifier":  s(cartID),
			"ownerIdentifier":         s(owner),
			"status":                  s("PENDING_PAYMENT"),
			"createdAt":               s(now.Format(time.RFC3339)),
			"customizationIdentifier": s(benchCustomization),
		}
		for k, v := range it.(*types.AttributeValueMemberM).Value {
			if k == "identifier" {
				k = "itemIdentifier"
			}
			booking[k] = v
		}
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{
			TableName:           aws.String(bookingsTable),
			Item:                booking,
			ConditionExpression: aws.String("attribute_not_exists(bookingCode)"),
		}})
	}
	var txErr, newCustomerErr error
	both(
		func() {
			_, txErr = f.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx, ClientRequestToken: &group})
		},
		func() {
			if customerID != "" {
				return
			}
			params := &stripe.CustomerParams{}
			params.Context = ctx
			params.AddMetadata("ownerIdentifier", owner)
			params.SetIdempotencyKey(payments.CustomerIdempotencyKey(owner, 1))
			c, err := f.customers.New(params)
			if err != nil {
				newCustomerErr = err
				return
			}
			customerID = c.ID
			_, newCustomerErr = f.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                aws.String(customersTable),
				Key:                      map[string]types.AttributeValue{"ownerIdentifier": s(owner)},
				UpdateExpression:         aws.String("SET #customer = :customer, #createdAt = :now"),
				ConditionExpression:      aws.String("attribute_not_exists(#customer)"),
				ExpressionAttributeNames: map[string]string{"#customer": "stripeCustomerId", "#createdAt": "createdAt"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":customer": s(c.ID), ":now": s(now.Format(time.RFC3339)),
				},
			})
		},
	)
	if err := errors.Join(txErr, newCustomerErr); err != nil {
		return err
	}
	if newTraveller {
		// The customer is recorded in the checkout state before the PaymentIntent is created.
		_, err := f.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:        aws.String(cartsTable),
			Key:              map[string]types.AttributeValue{"identifier": s(cartID)},
			UpdateExpression: aws.String("SET #checkout.#customer = :customer, #checkout.#generation = :one"),
			ConditionExpression: aws.String("#status = :checkingOut AND #checkout.#group = :group AND attribute_not_exists(#checkout.#pi)" +
				" AND attribute_not_exists(#checkout.#customer) AND (attribute_not_exists(#checkout.#generation) OR #checkout.#generation = :one)"),
			ExpressionAttributeNames: map[string]string{
				"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier", "#pi": "paymentIntentId",
				"#customer": "customerId", "#generation": "keyGeneration",
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":checkingOut": s("CHECKING_OUT"), ":group": s(group), ":customer": s(customerID),
				":one": &types.AttributeValueMemberN{Value: "1"},
			},
		})
		if err != nil {
			return err
		}
	}

	var intent *stripe.PaymentIntent
	var piErr, ekErr error
	both(
		func() {
			params := &stripe.PaymentIntentParams{
				Amount:                    stripe.Int64(benchAmountMinor),
				Currency:                  stripe.String(strings.ToLower(benchCurrency)),
				Customer:                  stripe.String(customerID),
				AutomaticPaymentMethods:   &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
				StatementDescriptorSuffix: stripe.String(benchDescriptorSuffix),
			}
			params.Context = ctx
			params.SetIdempotencyKey("checkout-payment-intent-" + group)
			params.AddMetadata("groupIdentifier", group)
			params.AddMetadata("shoppingCartIdentifier", cartID)
			params.AddMetadata("bookingCodes", strings.Join(codes, ","))
			params.AddMetadata("customizationIdentifier", benchCustomization)
			params.AddMetadata("ga4ClientId", benchGA4ClientID)
			params.AddMetadata("ga4SessionId", benchGA4SessionID)
			params.AddMetadata("ga4MeasurementId", benchGA4MeasurementID)
			intent, piErr = f.intents.New(params)
		},
		func() {
			params := &stripe.EphemeralKeyParams{Customer: stripe.String(customerID), StripeVersion: stripe.String(f.ephemeralKeyVersion)}
			params.Context = ctx
			_, ekErr = f.ephemeralKeys.New(params)
		},
	)
	if err := errors.Join(piErr, ekErr); err != nil {
		return err
	}

	_, err := f.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(cartsTable),
		Key:                 map[string]types.AttributeValue{"identifier": s(cartID)},
		UpdateExpression:    aws.String("SET #status = :checkedOut, #checkout.#paymentIntentId = :intent"),
		ConditionExpression: aws.String("#checkout.#group = :group AND #checkout.#customerId = :customer AND #status IN (:checkingOut, :checkedOut)"),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#checkout": "checkout", "#group": "groupIdentifier",
			"#customerId": "customerId", "#paymentIntentId": "paymentIntentId",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":checkedOut": s("CHECKED_OUT"), ":checkingOut": s("CHECKING_OUT"),
			":customer": s(customerID), ":intent": s(intent.ID), ":group": s(group),
		},
	})
	return err
}

// randomID returns 32 random hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// checkFloor checks that the floor writes what the function writes: the same attributes, of
// the same types, on the cart, its bookings and the customer mapping, for a new traveller (the
// flow's every write). A floor that did less would flatter nothing but itself.
func (r *runner) checkFloor(ctx context.Context) error {
	var shapes [2]string
	for i, k := range []kind{handlerKind, floorKind} {
		j, err := r.newJob(ctx, true)
		if err != nil {
			return err
		}
		if _, err := r.do(ctx, k, j); err != nil {
			return fmt.Errorf("%s: %w", kindNames[k], err)
		}
		cart, err := r.env.Cart(ctx, j.cartID)
		if err != nil {
			return err
		}
		bookings, err := r.env.BookingsOfCart(ctx, j.cartID)
		if err != nil {
			return err
		}
		customer, err := r.env.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(customersTable),
			Key:       map[string]types.AttributeValue{"ownerIdentifier": s(j.owner)},
		})
		if err != nil {
			return err
		}
		shapes[i] = fmt.Sprintf("cart %s, %d bookings %s, customer %s", shape(&types.AttributeValueMemberM{Value: cart}),
			len(bookings), shape(&types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: bookings[0]}}}),
			shape(&types.AttributeValueMemberM{Value: customer.Item}))
	}
	if shapes[0] != shapes[1] {
		return fmt.Errorf("the floor does not write what the function writes:\nfunction: %s\nfloor:    %s", shapes[0], shapes[1])
	}
	return nil
}

// shape describes an attribute value's structure: names and types, not values.
func shape(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberM:
		keys := slices.Sorted(maps.Keys(v.Value))
		for i, k := range keys {
			keys[i] = k + ":" + shape(v.Value[k])
		}
		return "{" + strings.Join(keys, " ") + "}"
	case *types.AttributeValueMemberL:
		if len(v.Value) == 0 {
			return "[]"
		}
		return "[" + shape(v.Value[0]) + "]"
	default:
		return strings.TrimPrefix(fmt.Sprintf("%T", av), "*types.AttributeValueMember")
	}
}
