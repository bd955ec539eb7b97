package testenv

import (
	"net/http"
	"sync"
)

// idempotencyKeys is Stripe's idempotency layer (https://docs.stripe.com/api/idempotent_requests):
// the first answer to a key is stored and replayed to every later request with the key.
type idempotencyKeys struct {
	mu   sync.Mutex
	keys map[idempotencyID]*idempotentResult
}

// idempotencyID scopes a key to the API key that sent it.
type idempotencyID struct{ authorization, key string }

type idempotentResult struct {
	request string        // method, URL and body of the first request
	answer  *stripeAnswer // nil while the first request is in flight
}

// begin looks the key up. Either the request now holds the key (held, to give to finish) or
// early is the answer to give without executing it: a replay, or a refusal.
func (k *idempotencyKeys) begin(id idempotencyID, request string) (held *idempotentResult, early *stripeAnswer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.keys[id]
	switch {
	case e == nil:
		if k.keys == nil {
			k.keys = map[idempotencyID]*idempotentResult{}
		}
		held = &idempotentResult{request: request}
		k.keys[id] = held
		return held, nil
	case e.answer == nil:
		return nil, errorAnswer(http.StatusConflict, stripeError{
			Type: "idempotency_error", Code: "idempotency_key_in_use",
			Message: "There is currently another in-progress request using this Stripe API key (or one of its restricted keys) " +
				"with the same idempotency key. Please retry your request shortly.",
		})
	case e.request != request:
		return nil, errorAnswer(http.StatusBadRequest, stripeError{
			Type: "idempotency_error",
			Message: "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
				"Try using a key other than '" + id.key + "' if you meant to execute a different request.",
		})
	default:
		replay := *e.answer
		replay.header = e.answer.header.Clone()
		replay.header.Set("Idempotent-Replayed", "true")
		return nil, &replay
	}
}

// finish stores the answer of the request that held the key if Stripe would, and frees the key
// otherwise. a is nil when the request never reached Stripe's execution (a stall).
func (k *idempotencyKeys) finish(id idempotencyID, held *idempotentResult, a *stripeAnswer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys[id] != held {
		return // forgotten meanwhile
	}
	if a == nil || !stored(a) {
		delete(k.keys, id)
		return
	}
	held.answer = a
}

// stored says whether Stripe keeps an answer under its key: only if the endpoint started
// executing. A 400 (validation), 409 (a conflict), 429 (rate limit) or 503 (the load balancer
// refusing) answers before that; a 2xx, a 402 (a declined payment) or a 500 answers after.
func stored(a *stripeAnswer) bool {
	switch s := a.status; {
	case a.unreached:
		return false
	case s >= 200 && s < 300, s == http.StatusPaymentRequired:
		return true
	case s >= 500:
		return s != http.StatusServiceUnavailable
	default:
		return false
	}
}

func (k *idempotencyKeys) forget() {
	k.mu.Lock()
	k.keys = nil
	k.mu.Unlock()
}
