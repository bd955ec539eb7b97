package checkout

import "time"

// CheckoutStatus is where a started checkout (its group of bookings) stands.
type CheckoutStatus string

// The lifecycle states. A checkout starts PENDING_PAYMENT and ends CONFIRMED or RELEASED.
const (
	PendingPayment CheckoutStatus = "PENDING_PAYMENT"
	Processing     CheckoutStatus = "PROCESSING" // an asynchronous payment is under way: the hold is suspended
	Confirmed      CheckoutStatus = "CONFIRMED"
	Released       CheckoutStatus = "RELEASED"
)

// HoldChange is what a move does to the checkout's hold (the entry the hold releaser finds).
type HoldChange int

const (
	HoldKept    HoldChange = iota // left as it is
	HoldEnded                     // removed: the checkout has ended
	HoldAtEnd                     // set at the checkout's HoldEndsAt: the hold runs (again)
	HoldRecheck                   // set ProcessingRecheck after the move: the releaser asks Stripe then
	// HoldPurchase turns the hold into its confirmed checkout's GA4 purchase, due purchaseRetry
	// after the move: the hold releaser sends the purchase if nobody recorded it sent by then.
	HoldPurchase
)

// ProcessingRecheck is how long a suspended checkout waits before the hold releaser asks Stripe
// how its payment stands. Events alone could leave it suspended for ever: a payment_failed
// delivered before a late processing, or lost after Stripe's three days of retries.
const ProcessingRecheck = time.Hour

// Move is one row of the lifecycle table: from which states it applies, the state it leads to,
// and what it does to the bookings, the cart and the hold. Adapters apply a move in one
// conditional transaction, so a move that does not start from one of its From states changes
// nothing (ErrCartChanged).
type Move struct {
	Name     string
	From     []CheckoutStatus
	To       CheckoutStatus
	Bookings string     // the bookings' new status; "" leaves them
	Cart     CartStatus // the cart's new status; "" leaves it
	Hold     HoldChange
}

// The moves, as the lifecycle table of the specification lists them. The checkout, the Stripe
// webhook and the hold releaser all move a checkout with these and only these.
var (
	// payment_intent.processing: the payment is under way; the hold stops counting, and the
	// releaser checks on the payment now and then.
	Suspend = Move{Name: "suspend", From: []CheckoutStatus{PendingPayment}, To: Processing,
		Cart: CartCheckedOut, Hold: HoldRecheck}
	// payment_intent.succeeded: the bookings are confirmed and the cart paid.
	Confirm = Move{Name: "confirm", From: []CheckoutStatus{PendingPayment, Processing}, To: Confirmed,
		Bookings: BookingConfirmed, Cart: CartPaid, Hold: HoldEnded}
	// payment_intent.payment_failed: the traveller may try again in PaymentSheet; the hold runs.
	RecordFailure = Move{Name: "record-failure", From: []CheckoutStatus{PendingPayment, Processing}, To: PendingPayment,
		Hold: HoldAtEnd}
	// payment_intent.canceled, a hold expired, or Stripe refusing the cart: the bookings are
	// cancelled and the cart is open again (its checkout state removed, its expiry restored, its
	// version incremented). Only once Stripe says the intent is canceled, which is final: Stripe
	// can, rarely, cancel an intent that was processing, so a suspended checkout is released too.
	Release = Move{Name: "release", From: []CheckoutStatus{PendingPayment, Processing}, To: Released,
		Bookings: BookingCancelled, Cart: CartOpen, Hold: HoldEnded}
)

// Allows reports whether the move applies to a checkout in state from.
func (m Move) Allows(from CheckoutStatus) bool {
	for _, f := range m.From {
		if f == from {
			return true
		}
	}
	return false
}

// CancellationReason says why a released booking was cancelled.
type CancellationReason string

// The reasons of the lifecycle table.
const (
	ReasonPaymentCanceled CancellationReason = "payment-canceled"
	ReasonExpired         CancellationReason = "expired"
	ReasonRefused         CancellationReason = "refused"
)

// Transition is a move applied to one checkout, as it was read: the adapter's transaction is
// conditional on the cart still carrying that checkout, in one of the move's From states, with
// the same recorded PaymentIntent (none if the checkout recorded none).
type Transition struct {
	Move   Move
	CartID string
	State  State // the checkout as read
	// PaymentIntentID is the intent the move is about; Confirm and Suspend record it.
	PaymentIntentID string
	Reason          CancellationReason // for Release
	At              time.Time
	// PurchaseDue is when the hold releaser first retries a HoldPurchase transition's purchase
	// (mover.apply sets it: purchaseRetry after the move is made, whatever At says).
	PurchaseDue time.Time
}

// Hold is what the transition does to the checkout's hold: a confirmation whose purchase is to
// be sent to GA4 keeps it, as the purchase's retry.
func (t Transition) Hold() HoldChange {
	if t.Move.To == Confirmed && t.State.WantsPurchase() {
		return HoldPurchase
	}
	return t.Move.Hold
}

// confirmed is the checkout as a Confirm transition leaves it.
func (t Transition) confirmed() State {
	s := t.State
	s.Status, s.PaymentIntentID, s.ConfirmedAt = Confirmed, t.PaymentIntentID, t.At
	if s.WantsPurchase() {
		s.Purchase = PurchasePending
	}
	return s
}
