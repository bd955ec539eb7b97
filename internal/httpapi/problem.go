package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/winktravel/checkout/internal/checkout"
)

// kindInternal is the problem kind of every error that has no checkout.Kind.
const kindInternal checkout.Kind = "internal"

// problemKinds maps each kind of failure to its status and title: the one place where domain
// errors become HTTP.
var problemKinds = map[checkout.Kind]struct {
	status int
	title  string
}{
	checkout.KindInvalid:               {http.StatusBadRequest, "Invalid request"},
	checkout.KindCartNotFound:          {http.StatusBadRequest, "Shopping cart not found"},
	checkout.KindNotCheckoutable:       {http.StatusBadRequest, "Shopping cart cannot be checked out"},
	checkout.KindPaymentInProgress:     {http.StatusBadRequest, "Payment in progress"},
	checkout.KindAlreadyPaid:           {http.StatusBadRequest, "Shopping cart already paid"},
	checkout.KindCustomizationNotFound: {http.StatusBadRequest, "Customization not found"},
	checkout.KindUnauthorized:          {http.StatusUnauthorized, "Unauthorized"},
	checkout.KindForbidden:             {http.StatusForbidden, "Forbidden"},
	kindInternal:                       {http.StatusInternalServerError, "Internal error"},
}

const internalDetail = "The checkout could not be completed. Retrying the same request is safe; " +
	"if the problem persists, contact support with the requestId."

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Status     int               `json:"status"`
	Detail     string            `json:"detail"`
	Instance   string            `json:"instance"`
	Properties ProblemProperties `json:"properties"`
}

// ProblemProperties are the problem's extension members.
type ProblemProperties struct {
	RequestID string                `json:"requestId"`
	Errors    []checkout.FieldError `json:"errors,omitempty"`
}

// problemResponse answers err as a problem. Errors without a checkout.Kind become a generic
// internal problem: their text never reaches the caller.
func problemResponse(typeBase string, err error, instance, requestID string) (events.APIGatewayV2HTTPResponse, checkout.Kind) {
	p := Problem{Detail: internalDetail, Instance: instance, Properties: ProblemProperties{RequestID: requestID}}
	kind := kindInternal
	var known *checkout.Error
	if errors.As(err, &known) {
		if _, ok := problemKinds[known.Kind]; ok {
			kind = known.Kind
			p.Detail = known.Detail
			p.Properties.Errors = known.Fields
		}
	}
	p.Type = typeBase + string(kind)
	p.Title = problemKinds[kind].title
	p.Status = problemKinds[kind].status
	body, _ := json.Marshal(p) // cannot fail: strings and ints only
	return events.APIGatewayV2HTTPResponse{
		StatusCode: p.Status,
		Headers:    map[string]string{"Content-Type": "application/problem+json", "Cache-Control": "no-store"},
		Body:       string(body),
	}, kind
}

// joinBase makes sure the problem type base ends in exactly one slash.
func joinBase(base string) string {
	return strings.TrimRight(base, "/") + "/"
}
