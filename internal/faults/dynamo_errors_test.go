package faults_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winktravel/checkout/internal/testenv"
)

// DynamoDB's error answers, as it sends them. Throttling is a 400 with a code the SDK retries
// (with a backoff of up to 1 s, then 2 s); InternalServerError is a 500, retried after a few
// tens of milliseconds; the SDK makes at most 3 attempts of a call.
var (
	throttled = testenv.DynamoError{Status: 400, Code: "ProvisionedThroughputExceededException",
		Message: "The level of configured provisioned throughput for the table was exceeded."}
	internalAfterWork = testenv.DynamoError{Status: 500, Code: "InternalServerError",
		Message: "Internal server error", After: true}
	inProgress = testenv.DynamoError{Status: 400, Code: "TransactionInProgressException",
		Message: "Transaction is in progress"}
)

// canceled is a TransactionCanceledException of the checkout transaction (the cart, then one
// booking per item) with the given reason on item i and None on the others.
func canceled(items, i int, reason string) testenv.DynamoError {
	reasons := make([]string, 1+items)
	for j := range reasons {
		reasons[j] = "None"
	}
	reasons[i] = reason
	return testenv.DynamoError{Status: 400, Code: "TransactionCanceledException",
		Message: "Transaction cancelled, please refer cancellation reasons for specific reasons", CancellationReasons: reasons}
}

// Each scenario answers one DynamoDB operation of the flow of a fresh cart (and a fresh
// traveller, so that the customer mapping is written every time) with an error of DynamoDB's
// own, before DynamoDB saw the request or after it did the work. After the faulty call, with the
// errors gone, the same request must complete and the tables must hold exactly one group of
// bookings for the cart, as in TestFaultAtEachStep.
func TestDynamoErrorAtEachStep(t *testing.T) {
	const items = 2
	tests := []struct {
		name   string
		op     string // the DynamoDB operation answered with the error
		answer testenv.DynamoError
		times  int // how many calls of op get the error; 0: every one
		skip   int // how many calls of op pass before the error starts
		// calls is how many calls of op DynamoDB's endpoint must see, the SDK's retries
		// included: [min, max].
		calls      [2]int
		wantStatus int
		wantCart   string // the cart's status after the faulty call: how far the flow got
		wantCause  string // in the logged cause of a 500; "" means answer.Code
		wantLog    string // a message the faulty call must log, if any
		// deadlineOK: the SDK's backoff may meet Lambda's deadline before its last attempt (a
		// loaded machine), and the cause is then the deadline.
		deadlineOK bool
	}{
		// The two reads (the cart, the traveller's customer) run concurrently; the SDK retries a
		// throttled one.
		{name: "reads throttled once", op: "GetItem", answer: throttled, times: 1,
			calls: [2]int{3, 3}, wantStatus: 200, wantCart: "CHECKED_OUT"},
		// Both reads throttled at every attempt: the SDK gives up after 3 attempts or at the
		// deadline, whichever comes first.
		{name: "reads always throttled", op: "GetItem", answer: throttled,
			calls: [2]int{4, 6}, wantStatus: 500, wantCart: "OPEN", deadlineOK: true},
		// The transaction commits; the function gets a 500 instead of its answer. The SDK's
		// retry carries the same client request token, and DynamoDB answers it with success.
		{name: "transaction committed, answered InternalServerError once", op: "TransactWriteItems", answer: internalAfterWork, times: 1,
			calls: [2]int{2, 2}, wantStatus: 200, wantCart: "CHECKED_OUT"},
		{name: "transaction committed, answered InternalServerError always", op: "TransactWriteItems", answer: internalAfterWork,
			calls: [2]int{3, 3}, wantStatus: 500, wantCart: "CHECKING_OUT"},
		// A conflict on the cart is another writer of the cart: a lost race. Nothing was
		// written; the function reads the cart again and runs a new transaction.
		{name: "transaction conflict on the cart once", op: "TransactWriteItems", answer: canceled(items, 0, "TransactionConflict"), times: 1,
			calls: [2]int{2, 2}, wantStatus: 200, wantCart: "CHECKED_OUT", wantLog: "cart changed during checkout, reading it again"},
		{name: "transaction conflict on the cart always", op: "TransactWriteItems", answer: canceled(items, 0, "TransactionConflict"),
			calls: [2]int{3, 3}, wantStatus: 500, wantCart: "OPEN", wantCause: "after 3 attempts: cart changed concurrently",
			wantLog: "cart changed during checkout, reading it again"},
		// A conflict on a new booking is not a lost race of the cart: a 500, nothing written.
		{name: "transaction conflict on a booking", op: "TransactWriteItems", answer: canceled(items, 1, "TransactionConflict"), times: 1,
			calls: [2]int{1, 1}, wantStatus: 500, wantCart: "OPEN"},
		// TransactionInProgressException is a throttling code to the SDK: it retries it with the
		// same token. Once, after the transaction committed: the retry succeeds.
		{name: "transaction committed, answered in progress once", op: "TransactWriteItems", answer: withAfter(inProgress), times: 1,
			calls: [2]int{2, 2}, wantStatus: 200, wantCart: "CHECKED_OUT"},
		{name: "transaction always in progress", op: "TransactWriteItems", answer: inProgress,
			calls: [2]int{2, 3}, wantStatus: 500, wantCart: "OPEN", deadlineOK: true},
		// The final update (the third UpdateItem of a new traveller's checkout, after the customer
		// mapping and recording the customer on the cart) is applied; the function gets a 500
		// instead of its answer. The SDK's retry of the conditional update finds the cart
		// CHECKED_OUT with the same group, and succeeds.
		{name: "final update applied, answered InternalServerError once", op: "UpdateItem", answer: internalAfterWork, times: 1, skip: 2,
			calls: [2]int{4, 4}, wantStatus: 200, wantCart: "CHECKED_OUT"},
		{name: "final update applied, answered InternalServerError always", op: "UpdateItem", answer: internalAfterWork, skip: 2,
			calls: [2]int{5, 5}, wantStatus: 500, wantCart: "CHECKED_OUT"},
		// The customer is recorded on the checkout (the second UpdateItem), and the function gets
		// a 500 instead of the answer: the SDK's retry finds it recorded, a condition that fails;
		// the function reads the cart again and goes on.
		{name: "customer recorded, answered InternalServerError once", op: "UpdateItem", answer: internalAfterWork, times: 1, skip: 1,
			calls: [2]int{4, 4}, wantStatus: 200, wantCart: "CHECKED_OUT"},
		// The customer mapping (the first UpdateItem) cannot be stored; the transaction,
		// concurrent with it, stands.
		{name: "customer mapping always throttled", op: "UpdateItem", answer: throttled,
			calls: [2]int{2, 3}, wantStatus: 500, wantCart: "CHECKING_OUT"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			startScenario(t)
			cartID, owner := fmt.Sprintf("dynamo-error-%d", i), fmt.Sprintf("traveller-dynamo-error-%d", i)
			putCart(t, cartID, owner, items)

			fault := &dynamoFault{op: tc.op, answer: tc.answer, times: tc.times, skip: tc.skip}
			fault.start()
			t.Cleanup(func() { fault.stop() })
			ev := testenv.APIEvent(owner, checkoutBody(cartID))
			resp, elapsed := invoke(t, ev, faultRemaining)
			seen, answered := fault.stop()
			if answered == 0 {
				t.Fatalf("the error was never answered: %v calls seen, none of them %s", seen, tc.op)
			}
			if n := seen[tc.op]; n < tc.calls[0] || n > tc.calls[1] {
				t.Errorf("%d calls of %s seen (%d answered with %s), want %d to %d", n, tc.op, answered, tc.answer.Code, tc.calls[0], tc.calls[1])
			}
			if tc.times > 0 && answered != tc.times {
				t.Errorf("%d calls answered with %s, want %d", answered, tc.answer.Code, tc.times)
			}
			group, cause := checkFaultyCall(t, ev, resp, elapsed, faultRemaining, tc.wantStatus, cartID, tc.wantCart, items)
			if resp.StatusCode != 200 {
				want := tc.wantCause
				if want == "" {
					want = tc.answer.Code
				}
				if !strings.Contains(cause, want) && !(tc.deadlineOK && strings.Contains(cause, "context deadline exceeded")) {
					t.Errorf("logged cause %q, want one mentioning %q", cause, want)
				}
			}
			if tc.wantLog != "" && !strings.Contains(logs.String(), `"msg":"`+tc.wantLog+`"`) {
				t.Errorf("the function never logged %q", tc.wantLog)
			}
			t.Logf("faulty call: %d in %v, cart %s, %d calls of %s (%d answered %s); logged cause: %s",
				resp.StatusCode, elapsed.Round(10*time.Millisecond), tc.wantCart,
				seen[tc.op], tc.op, answered, tc.answer.Code, cause)

			// The errors are gone: the same request completes, from where the fault left it.
			retryCompletes(t, owner, cartID, items, group)
		})
	}
}

func withAfter(e testenv.DynamoError) testenv.DynamoError {
	e.After = true
	return e
}

// dynamoFault lets the first skip calls of one operation through, then answers the next times
// calls (every call when times is 0) with an error, counts the calls of every operation, and
// stops for good when stopped: a hook still running after the faulty call returned must not
// answer the retry.
type dynamoFault struct {
	op     string
	answer testenv.DynamoError
	times  int
	skip   int

	mu       sync.Mutex
	seen     map[string]int
	answered int
	over     bool
}

func (f *dynamoFault) start() {
	f.seen = map[string]int{}
	dynamo.SetFault(f.hook)
}

func (f *dynamoFault) hook(operation string) *testenv.DynamoError {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.over {
		return nil
	}
	f.seen[operation]++
	if operation != f.op || f.seen[operation] <= f.skip || f.times > 0 && f.answered == f.times {
		return nil
	}
	f.answered++
	answer := f.answer
	return &answer
}

// stop removes the hook and returns the calls seen per operation and how many were answered
// with the error.
func (f *dynamoFault) stop() (seen map[string]int, answered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.over {
		f.over = true
		dynamo.SetFault(nil)
	}
	return f.seen, f.answered
}
