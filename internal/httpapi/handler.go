// Package httpapi is the edge of the checkout function: it turns API Gateway HTTP API (payload
// 2.0) events into checkout requests, and results and errors into responses and RFC 9457 problems.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/metrics"
)

// Checkouter is the use case the handler serves.
type Checkouter interface {
	Checkout(ctx context.Context, req checkout.Request) (checkout.Result, error)
}

// Config configures the handler.
type Config struct {
	ProblemTypeBase string // PROBLEM_TYPE_BASE
	IdentityClaim   string // IDENTITY_CLAIM, default "sub"
	LocalMode       bool   // LOCAL_MODE: http://localhost redirects accepted
	// DeadlineMargin is kept free before Lambda's own deadline, so that a problem answer always
	// goes out before Lambda kills the invocation.
	DeadlineMargin time.Duration
	Logger         *slog.Logger
	// Metrics receives one EMF line per request (nil: none); FunctionName is their Function
	// dimension (Lambda's AWS_LAMBDA_FUNCTION_NAME).
	Metrics      *metrics.Writer
	FunctionName string
}

// DefaultDeadlineMargin leaves time to log and answer after the last external call gave up.
const DefaultDeadlineMargin = 300 * time.Millisecond

// Handler is the Lambda handler for POST /api/checkout.
type Handler struct {
	checkout        Checkouter
	problemTypeBase string
	identityClaim   string
	localMode       bool
	deadlineMargin  time.Duration
	log             *slog.Logger
	metrics         *metrics.Writer
	function        string
}

// NewHandler returns the handler for the checkout use case.
func NewHandler(c Checkouter, cfg Config) *Handler {
	h := &Handler{
		checkout:        c,
		problemTypeBase: joinBase(cfg.ProblemTypeBase),
		identityClaim:   cfg.IdentityClaim,
		localMode:       cfg.LocalMode,
		deadlineMargin:  cfg.DeadlineMargin,
		log:             cfg.Logger,
		metrics:         cfg.Metrics,
		function:        functionName(cfg.FunctionName, "checkout"),
	}
	if h.identityClaim == "" {
		h.identityClaim = "sub"
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// response is the 200 body: what Stripe's PaymentSheet needs.
type response struct {
	ClientSecret    string   `json:"clientSecret"`
	EphemeralKey    string   `json:"ephemeralKey"`
	CustomerID      string   `json:"customerId"`
	GroupIdentifier string   `json:"groupIdentifier"`
	BookingCodes    []string `json:"bookingCodes"`
}

// Handle serves one checkout. It always returns a nil error: API Gateway gets an answer for
// every request, a problem for every failure, including a panic.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, _ error) {
	start := time.Now()
	requestID := requestIDOf(ctx, &ev)
	instance := ev.RawPath
	if instance == "" {
		instance = "/api/checkout"
	}
	log := h.log.With(slog.String("apiRequestId", requestID))
	var req checkout.Request
	defer func() {
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "checkout panicked", slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			resp, _ = problemResponse(h.problemTypeBase, fmt.Errorf("panic: %v", r), instance, requestID)
			h.emit(ctx, log, string(kindInternal), time.Since(start), nil)
		}
	}()

	ctx, cancel := withMargin(ctx, h.deadlineMargin)
	defer cancel()

	ctx, steps := checkout.WithStepTimes(ctx)
	result, err := h.serve(ctx, &ev, &req)
	took := time.Since(start)
	attrs := []any{
		slog.String("cartId", req.ShoppingCartIdentifier),
		slog.Duration("duration", took),
		stepAttrs(steps),
	}
	if err != nil {
		resp, kind := problemResponse(h.problemTypeBase, err, instance, requestID)
		attrs = append(attrs, slog.Int("status", resp.StatusCode), slog.String("problem", string(kind)))
		if kind == kindInternal {
			log.ErrorContext(ctx, "checkout failed", append(attrs, slog.String("error", err.Error()))...)
			emit(ctx, log, dependencyEntry(h.metrics, h.function, err))
		} else {
			log.InfoContext(ctx, "checkout refused", attrs...)
		}
		h.emit(ctx, log, string(kind), took, steps)
		return resp, nil
	}
	body, err := json.Marshal(response{
		ClientSecret:    result.ClientSecret,
		EphemeralKey:    result.EphemeralKey,
		CustomerID:      result.CustomerID,
		GroupIdentifier: result.GroupIdentifier,
		BookingCodes:    result.BookingCodes,
	})
	if err != nil {
		resp, _ := problemResponse(h.problemTypeBase, err, instance, requestID)
		h.emit(ctx, log, string(kindInternal), took, steps)
		return resp, nil
	}
	log.InfoContext(ctx, "checkout answered", append(attrs, slog.Int("status", http.StatusOK), slog.String("groupId", result.GroupIdentifier))...)
	h.emit(ctx, log, OutcomeOK, took, steps)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       string(body),
	}, nil
}

// OutcomeOK is the Outcome dimension of a checkout answered 200; a refused one's is its problem
// kind.
const OutcomeOK = "ok"

// emit writes the request's metric line: Checkouts and Duration by function and by outcome, and
// each step's duration.
func (h *Handler) emit(ctx context.Context, log *slog.Logger, outcome string, took time.Duration, steps *checkout.StepTimes) {
	if h.metrics == nil {
		return
	}
	e := h.metrics.New(byFunction, byOutcome).Dimension("Function", h.function).Dimension("Outcome", outcome).
		Count("Checkouts", 1).Duration("Duration", took)
	for _, s := range checkout.Steps {
		if d, ok := steps.Get(s); ok {
			e.Duration(stepMetric(s), d)
		}
	}
	emit(ctx, log, e)
}

// serve resolves the caller, validates the request and runs the checkout.
func (h *Handler) serve(ctx context.Context, ev *events.APIGatewayV2HTTPRequest, req *checkout.Request) (checkout.Result, error) {
	caller := h.caller(ev)
	if caller == "" {
		return checkout.Result{}, &checkout.Error{Kind: checkout.KindUnauthorized, Detail: "The request carries no caller identity."}
	}
	parsed, fieldErrs := parseRequest(ev, caller, h.localMode)
	*req = parsed
	if len(fieldErrs) > 0 {
		return checkout.Result{}, checkout.Invalid(fieldErrs...)
	}
	return h.checkout.Checkout(ctx, parsed)
}

// caller reads the identity claim that API Gateway's JWT authorizer verified.
func (h *Handler) caller(ev *events.APIGatewayV2HTTPRequest) string {
	if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
		return a.JWT.Claims[h.identityClaim]
	}
	return ""
}
