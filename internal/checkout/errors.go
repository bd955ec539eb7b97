package checkout

import (
	"errors"
	"fmt"
)

// Kind is a kind of failure the caller can act on. The HTTP layer maps each to a status and a
// problem type; every error without a Kind is internal.
type Kind string

// The kinds of failure, in the order of precedence used when several apply.
const (
	KindUnauthorized          Kind = "unauthorized"
	KindInvalid               Kind = "validation"
	KindCartNotFound          Kind = "cart-not-found"
	KindForbidden             Kind = "forbidden"
	KindNotCheckoutable       Kind = "cart-not-checkoutable"
	KindPaymentInProgress     Kind = "payment-in-progress"
	KindAlreadyPaid           Kind = "cart-already-paid"
	KindCustomizationNotFound Kind = "customization-not-found"
)

// FieldError names one broken request field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a failure of a known kind. Detail is safe to show to the caller.
type Error struct {
	Kind   Kind
	Detail string
	Fields []FieldError // for KindInvalid
}

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Detail }

// ErrorKind returns the kind of err, or "" for an internal error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

func failure(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Invalid reports broken request fields.
func Invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Detail: "The request is not valid.", Fields: fields}
}

// Errors returned by the adapters behind the ports.
var (
	ErrNotFound         = errors.New("not found")
	ErrCartChanged      = errors.New("cart changed concurrently")
	ErrBookingCodeTaken = errors.New("booking code already taken")
	ErrCartTooLarge     = errors.New("cart too large for its checkout state")
	// ErrKeyPoisoned: Stripe answered a create with a 5xx or an idempotency_error, and replays
	// that answer for every later request with the key (for at least 24 hours).
	ErrKeyPoisoned = errors.New("stripe idempotency key answered with an error it will replay")
	// ErrCustomerMissing: Stripe does not know the customer (deleted, or made with the other
	// mode's key).
	ErrCustomerMissing = errors.New("stripe customer does not exist")
	// The payment provider refuses the cart as it is; retrying cannot change that.
	ErrAmountTooSmall  = errors.New("amount below the payment provider's minimum")
	ErrAmountTooLarge  = errors.New("amount above the payment provider's maximum")
	ErrCurrencyRefused = errors.New("currency refused by the payment provider")
)
