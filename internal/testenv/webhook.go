package testenv

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/winktravel/checkout/internal/app"
	"github.com/winktravel/checkout/internal/config"
)

// WebhookSecret is the signing secret of the local Stripe webhook endpoint (tests, make run).
const WebhookSecret = "whsec_localCheckoutWebhookSigningSecret"

// Webhook builds the Stripe webhook function as its Lambda's main does, from settings.
func Webhook(ctx context.Context, settings func(string) string, logger *slog.Logger, opts app.Options) (*app.Webhook, error) {
	cfg, err := config.WebhookFromEnv(settings)
	if err != nil {
		return nil, err
	}
	return app.NewWebhook(ctx, cfg, logger, opts)
}

var eventCounter atomic.Int64

// PaymentIntentEvent is a Stripe event of type eventType (payment_intent.succeeded, ...) about pi,
// as Stripe sends it to a webhook endpoint, created at created.
func PaymentIntentEvent(eventType string, pi PaymentIntentState, created time.Time) []byte {
	object := map[string]any{
		"id": pi.ID, "object": "payment_intent", "amount": pi.Amount, "currency": strings.ToLower(pi.Currency),
		"status": pi.Status, "customer": pi.Customer, "metadata": pi.Metadata, "client_secret": pi.ClientSecret,
		"livemode": false, "created": created.Unix(),
	}
	if object["metadata"] == nil {
		object["metadata"] = map[string]string{}
	}
	return Event("evt_test_"+strconv.FormatInt(eventCounter.Add(1), 10), eventType, object, created)
}

// Event is a Stripe event of eventType whose data.object is object.
func Event(id, eventType string, object any, created time.Time) []byte {
	body, _ := json.Marshal(map[string]any{ // cannot fail: maps, strings and numbers
		"id": id, "object": "event", "api_version": "2023-10-16", "created": created.Unix(),
		"type": eventType, "livemode": false, "pending_webhooks": 1,
		"data":    map[string]any{"object": object},
		"request": map[string]any{"id": nil, "idempotency_key": nil},
	})
	return body
}

// Signature is the Stripe-Signature header Stripe sends with body, signed with secret at at.
func Signature(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

// WebhookRequest is a POST /api/stripe/webhook as API Gateway (HTTP API, payload 2.0) delivers
// it: no authorizer, the body as Stripe sent it, signature "" for none.
func WebhookRequest(body []byte, signature string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "POST /api/stripe/webhook",
		RawPath:  "/api/stripe/webhook",
		Headers:  map[string]string{"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
		Body:     string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "req-" + strconv.FormatInt(requestCounter.Add(1), 10),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/stripe/webhook"},
		},
	}
	if signature != "" {
		ev.Headers["stripe-signature"] = signature
	}
	return ev
}

// Releaser builds the hold releaser as its Lambda's main does, from settings, on the clock now.
func Releaser(ctx context.Context, settings func(string) string, logger *slog.Logger, opts app.Options) (*app.Releaser, error) {
	cfg, err := config.ReleaserFromEnv(settings)
	if err != nil {
		return nil, err
	}
	return app.NewReleaser(ctx, cfg, logger, opts)
}
