package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"unicode"

	"github.com/aws/smithy-go"
	"github.com/stripe/stripe-go/v76"

	"github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/metrics"
)

// The metrics' dimension sets (docs/runbook.md lists every metric). Dimensions are kept few and
// never carry an id, an amount or anything a traveller typed: the function, the outcome (a
// problem kind, an event's result), the event type, the failing dependency and its error code.
var (
	byFunction        = []string{"Function"}
	byOutcome         = []string{"Function", "Outcome"}
	byResult          = []string{"Function", "Result"}
	byEventResult     = []string{"Function", "EventType", "Result"}
	byDependencyError = []string{"Function", "Dependency", "ErrorCode"}
)

// stepMetric is the metric of a checkout step's duration: ReadsDuration, TransactionDuration, ...
func stepMetric(s checkout.Step) string {
	name := string(s)
	return string(unicode.ToUpper(rune(name[0]))) + name[1:] + "Duration"
}

// stepAttrs are the step timings of a request's log line, in milliseconds.
func stepAttrs(st *checkout.StepTimes) slog.Attr {
	var attrs []any
	for _, s := range checkout.Steps {
		if d, ok := st.Get(s); ok {
			attrs = append(attrs, slog.Float64(string(s), float64(d.Microseconds())/1000))
		}
	}
	return slog.Group("stepsMs", attrs...)
}

// emit writes an entry; a line the writer refuses is a bug, logged, never the request's failure.
func emit(ctx context.Context, log *slog.Logger, e *metrics.Entry) {
	if e == nil {
		return
	}
	if err := e.Emit(); err != nil {
		log.ErrorContext(ctx, "metric line refused", slog.String("error", err.Error()))
	}
}

// dependencyError names the dependency and the error code of an internal error: Stripe's error
// code (or type), an AWS service's error code, a deadline; "" when err names neither.
func dependencyError(err error) (dependency, code string) {
	var se *stripe.Error
	var ae smithy.APIError
	switch {
	case errors.As(err, &se):
		code = string(se.Code)
		if code == "" {
			code = string(se.Type)
		}
		return "Stripe", orUnknown(code)
	case errors.As(err, &ae):
		service := "AWS"
		var oe *smithy.OperationError
		if errors.As(err, &oe) {
			service = oe.ServiceID
		}
		return service, orUnknown(ae.ErrorCode())
	case errors.Is(err, context.DeadlineExceeded):
		return "Deadline", "DeadlineExceeded"
	}
	return "", ""
}

func orUnknown(s string) string {
	if s = strings.TrimSpace(s); s == "" || len(s) > 64 {
		return "unknown"
	}
	return s
}

// dependencyEntry is the DependencyErrors metric of an internal error, nil if err names no
// dependency.
func dependencyEntry(w *metrics.Writer, function string, err error) *metrics.Entry {
	dep, code := dependencyError(err)
	if w == nil || dep == "" {
		return nil
	}
	return w.New(byDependencyError).Dimension("Function", function).Dimension("Dependency", dep).
		Dimension("ErrorCode", code).Count("DependencyErrors", 1)
}

// functionName is the Function dimension: Lambda's function name, else def (local runs).
func functionName(name, def string) string {
	if name == "" {
		return def
	}
	return name
}
