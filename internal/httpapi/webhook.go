package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/metrics"
)

// PaymentEventHandler is the use case the webhook serves.
type PaymentEventHandler interface {
	HandlePaymentEvent(ctx context.Context, ev checkout.PaymentEvent) (checkout.EventResult, error)
}

// WebhookConfig configures the Stripe webhook handler.
type WebhookConfig struct {
	SigningSecret   string // the endpoint's whsec_ secret
	ProblemTypeBase string
	DeadlineMargin  time.Duration
	Logger          *slog.Logger
	Metrics         *metrics.Writer // one EMF line per delivery (nil: none)
	FunctionName    string
}

// SignatureTolerance is how old a signed event may be: Stripe's own default, against replays.
const SignatureTolerance = 300 * time.Second

// MaxEventBytes bounds a webhook body; Stripe's payment_intent events are a few KiB.
const MaxEventBytes = 256 * 1024

// WebhookHandler is the Lambda handler for POST /api/stripe/webhook.
type WebhookHandler struct {
	events          PaymentEventHandler
	secret          string
	problemTypeBase string
	deadlineMargin  time.Duration
	log             *slog.Logger
	metrics         *metrics.Writer
	function        string
}

// NewWebhookHandler returns the webhook handler for the lifecycle use case.
func NewWebhookHandler(events PaymentEventHandler, cfg WebhookConfig) *WebhookHandler {
	h := &WebhookHandler{
		events:          events,
		secret:          cfg.SigningSecret,
		problemTypeBase: joinBase(cfg.ProblemTypeBase),
		deadlineMargin:  cfg.DeadlineMargin,
		log:             cfg.Logger,
		metrics:         cfg.Metrics,
		function:        functionName(cfg.FunctionName, "stripe-webhook"),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Handle serves one delivery: 200 {"received":true} for an event handled or ignored, a 400
// problem for a missing or bad signature or body (Stripe does not retry those), a 500 problem
// for an internal failure (Stripe retries it, for up to three days). It always returns a nil
// error.
func (h *WebhookHandler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, _ error) {
	start := time.Now()
	requestID := requestIDOf(ctx, &ev)
	instance := ev.RawPath
	if instance == "" {
		instance = "/api/stripe/webhook"
	}
	log := h.log.With(slog.String("apiRequestId", requestID))
	defer func() {
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "webhook panicked", slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			resp, _ = problemResponse(h.problemTypeBase, fmt.Errorf("panic: %v", r), instance, requestID)
			h.emit(ctx, log, "unknown", string(kindInternal), checkout.EventResult{}, time.Since(start))
		}
	}()
	ctx, cancel := withMargin(ctx, h.deadlineMargin)
	defer cancel()

	event, err := h.verify(&ev)
	if err != nil {
		resp, _ := problemResponse(h.problemTypeBase, err, instance, requestID)
		result := refusal(err)
		log.WarnContext(ctx, "webhook refused", slog.Int("status", resp.StatusCode), slog.String("result", result),
			slog.String("error", err.Error()), slog.Duration("duration", time.Since(start)))
		h.emit(ctx, log, "unknown", result, checkout.EventResult{}, time.Since(start))
		return resp, nil
	}
	log = log.With(slog.String("eventId", event.ID), slog.String("eventType", event.Type))
	result, err := h.handle(ctx, event)
	if err != nil {
		resp, kind := problemResponse(h.problemTypeBase, err, instance, requestID)
		attrs := []any{slog.Int("status", resp.StatusCode), slog.String("error", err.Error()), slog.Duration("duration", time.Since(start))}
		if kind == kindInternal {
			log.ErrorContext(ctx, "webhook failed", attrs...)
			emit(ctx, log, dependencyEntry(h.metrics, h.function, err))
		} else {
			log.WarnContext(ctx, "webhook refused", attrs...)
		}
		h.emit(ctx, log, event.Type, string(kind), checkout.EventResult{}, time.Since(start))
		return resp, nil
	}
	attrs := []any{slog.String("outcome", string(result.Outcome))}
	if result.Purchase != "" {
		attrs = append(attrs, slog.String("purchase", string(result.Purchase)))
	}
	attrs = append(attrs, slog.Int("status", http.StatusOK), slog.Duration("duration", time.Since(start)))
	log.InfoContext(ctx, "webhook handled", attrs...)
	h.emit(ctx, log, event.Type, string(result.Outcome), result, time.Since(start))
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       `{"received":true}`,
	}, nil
}

// ResultBadSignature is the Result of a delivery refused for its Stripe-Signature: a rotated
// signing secret, or someone other than Stripe calling.
const ResultBadSignature = "bad-signature"

// refusal is the Result of a delivery refused before it was read.
func refusal(err error) string {
	var e *checkout.Error
	if errors.As(err, &e) && len(e.Fields) > 0 && e.Fields[0].Field == "Stripe-Signature" {
		return ResultBadSignature
	}
	return string(checkout.ErrorKind(err))
}

// emit writes the delivery's metric line: WebhookEvents and Duration by function, and by event
// type and result; refunds and the GA4 purchase's outcome as counts.
func (h *WebhookHandler) emit(ctx context.Context, log *slog.Logger, eventType, result string, r checkout.EventResult, took time.Duration) {
	if h.metrics == nil {
		return
	}
	if !strings.HasPrefix(eventType, "payment_intent.") && eventType != "unknown" {
		eventType = "other" // the dimension stays small: the events acted on, and the rest
	}
	e := h.metrics.New(byFunction, byResult, byEventResult).Dimension("Function", h.function).Dimension("EventType", eventType).
		Dimension("Result", result).Count("WebhookEvents", 1).Duration("Duration", took)
	if r.Outcome == checkout.OutcomeRefunded {
		e.Count("Refunds", 1)
	}
	if r.Purchase != "" {
		e.Count(purchaseMetric[r.Purchase], 1)
	}
	emit(ctx, log, e)
}

// purchaseMetric is the count of each purchase outcome.
var purchaseMetric = map[checkout.PurchaseOutcome]string{
	checkout.PurchaseOutcomeSent: "PurchasesSent", checkout.PurchaseOutcomeSkipped: "PurchasesSkipped",
	checkout.PurchaseOutcomeFailed: "PurchasesFailed", checkout.PurchaseOutcomeAbandoned: "PurchasesAbandoned",
}

// signedEvent is what the webhook reads of a Stripe event.
type signedEvent struct {
	ID      string
	Type    string
	Created int64
	Object  json.RawMessage // data.object
}

// verify checks the Stripe-Signature header over the raw body (API Gateway may have base64'd
// it) with the endpoint's secret, and decodes the event. Events of any API version are read: only
// the fields used must be there.
func (h *WebhookHandler) verify(ev *events.APIGatewayV2HTTPRequest) (signedEvent, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "body", Message: "is not valid base64"})
		}
		body = decoded
	}
	if len(body) > MaxEventBytes {
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "body", Message: "must be at most 256 KiB"})
	}
	signature, _ := header(ev.Headers, "Stripe-Signature")
	if strings.TrimSpace(signature) == "" {
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "Stripe-Signature", Message: "is required"})
	}
	event, err := webhook.ConstructEventWithOptions(body, signature, h.secret, webhook.ConstructEventOptions{
		Tolerance: SignatureTolerance, IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader):
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "Stripe-Signature", Message: "is malformed"})
	case errors.Is(err, webhook.ErrTooOld):
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "Stripe-Signature", Message: "is older than 5 minutes"})
	case errors.Is(err, webhook.ErrNoValidSignature):
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "Stripe-Signature", Message: "does not match the body"})
	case err != nil: // signed, but not an event
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "body", Message: "must be a Stripe event"})
	case event.ID == "" || event.Type == "" || event.Data == nil:
		return signedEvent{}, checkout.Invalid(checkout.FieldError{Field: "body", Message: "must be a Stripe event"})
	}
	return signedEvent{ID: event.ID, Type: string(event.Type), Created: event.Created, Object: event.Data.Raw}, nil
}

// eventIntent is what the webhook reads of a PaymentIntent in an event.
type eventIntent struct {
	ID       string            `json:"id"`
	Object   string            `json:"object"`
	Status   string            `json:"status"`
	Amount   int64             `json:"amount"`
	Currency string            `json:"currency"`
	Metadata map[string]string `json:"metadata"`
}

// handle passes a PaymentIntent event to the use case; any other event is ignored.
func (h *WebhookHandler) handle(ctx context.Context, event signedEvent) (checkout.EventResult, error) {
	if !strings.HasPrefix(event.Type, "payment_intent.") {
		return checkout.EventResult{Outcome: checkout.OutcomeIgnored}, nil
	}
	var pi eventIntent
	if err := json.Unmarshal(event.Object, &pi); err != nil || pi.Object != "payment_intent" || pi.ID == "" {
		return checkout.EventResult{}, checkout.Invalid(checkout.FieldError{Field: "data.object", Message: "must be a payment intent"})
	}
	return h.events.HandlePaymentEvent(ctx, checkout.PaymentEvent{
		ID: event.ID, Type: event.Type, Created: time.Unix(event.Created, 0).UTC(),
		Intent: checkout.PaymentIntent{
			ID: pi.ID, Status: checkout.PaymentStatus(pi.Status), AmountMinor: pi.Amount,
			Currency:               strings.ToUpper(pi.Currency),
			GroupIdentifier:        pi.Metadata["groupIdentifier"],
			ShoppingCartIdentifier: pi.Metadata["shoppingCartIdentifier"],
		},
	})
}

// requestIDOf is API Gateway's request id, else Lambda's.
func requestIDOf(ctx context.Context, ev *events.APIGatewayV2HTTPRequest) string {
	if ev.RequestContext.RequestID != "" {
		return ev.RequestContext.RequestID
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// withMargin ends ctx margin before Lambda's deadline, so that an answer goes out in time.
func withMargin(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-margin))
	}
	return context.WithCancel(ctx)
}
