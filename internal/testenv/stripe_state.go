package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The objects the checkout depends on, with the state stripe-mock does not keep: customers,
// PaymentIntents and refunds. Their answers are stripe-mock's fixtures with the modelled fields
// replaced.

// PaymentIntent statuses (https://docs.stripe.com/payments/paymentintents/lifecycle).
const (
	statusRequiresPaymentMethod = "requires_payment_method"
	statusRequiresConfirmation  = "requires_confirmation"
	statusRequiresAction        = "requires_action"
	statusProcessing            = "processing"
	statusRequiresCapture       = "requires_capture"
	statusCanceled              = "canceled"
	statusSucceeded             = "succeeded"
)

// CustomerState is a customer as the layer knows it.
type CustomerState struct {
	ID             string
	Metadata       map[string]string
	Deleted        bool
	IdempotencyKey string // the key of the create; "" if seeded
}

// PaymentIntentState is a PaymentIntent as the layer knows it.
type PaymentIntentState struct {
	ID, ClientSecret          string
	Status                    string
	Amount                    int64
	Currency                  string
	Customer                  string
	Metadata                  map[string]string
	CancellationReason        string
	StatementDescriptorSuffix string
	IdempotencyKey            string // the key of the create; "" if seeded

	canceledAt int64
}

// RefundState is a refund as the layer knows it.
type RefundState struct {
	ID, PaymentIntent string
	Amount            int64
	Currency          string
	Status            string
	Reason            string
	Metadata          map[string]string
	IdempotencyKey    string
}

type stripeState struct {
	mu            sync.Mutex
	customers     map[string]*CustomerState
	customerOrder []string
	intents       map[string]*PaymentIntentState
	intentOrder   []string
	refunds       []RefundState
}

// serve answers a request to a modelled object; forward gets stripe-mock's answer.
func (s *stripeState) serve(c *stripeCall, forward func() *stripeAnswer) *stripeAnswer {
	resource, id, action := route(c.path)
	switch {
	case c.method == http.MethodPost && resource == "customers" && id == "":
		return s.createCustomer(c, forward)
	case c.method == http.MethodGet && resource == "customers" && id != "" && id != "search" && action == "":
		return s.getCustomer(id, forward)
	case c.method == http.MethodDelete && resource == "customers" && id != "" && action == "":
		return s.deleteCustomer(id, forward)
	case c.method == http.MethodPost && resource == "payment_intents" && id == "":
		return s.createPaymentIntent(c, forward)
	case c.method == http.MethodGet && resource == "payment_intents" && id == "search":
		return s.searchPaymentIntents(c, forward)
	case c.method == http.MethodGet && resource == "payment_intents" && id != "" && action == "":
		return s.getPaymentIntent(id, forward)
	case c.method == http.MethodPost && resource == "payment_intents" && id != "" && action == "cancel":
		return s.cancelPaymentIntent(c, id, forward)
	case c.method == http.MethodPost && resource == "refunds" && id == "":
		return s.createRefund(c, forward)
	case c.method == http.MethodPost && resource == "ephemeral_keys" && id == "":
		if a := s.checkCustomer(c.form.Get("customer")); a != nil {
			return a
		}
	}
	return forward()
}

// route splits /v1/resource/id/action.
func route(path string) (resource, id, action string) {
	parts := strings.SplitN(strings.TrimPrefix(path, "/v1/"), "/", 3)
	parts = append(parts, "", "")
	return parts[0], parts[1], parts[2]
}

// Customers.

func (s *stripeState) createCustomer(c *stripeCall, forward func() *stripeAnswer) *stripeAnswer {
	a := forward()
	obj := a.object()
	if obj == nil {
		return a
	}
	cus := CustomerState{ID: "cus_" + randomAlnum(14), Metadata: metadataOf(c), IdempotencyKey: c.key}
	s.mu.Lock()
	s.putCustomer(cus)
	s.mu.Unlock()
	obj["id"] = cus.ID
	obj["metadata"] = cus.Metadata
	a.setJSON(obj)
	return a
}

func (s *stripeState) getCustomer(id string, forward func() *stripeAnswer) *stripeAnswer {
	cus, ok := s.customer(id)
	if !ok {
		return noSuchCustomer(http.StatusNotFound, "id", id, false)
	}
	if cus.Deleted {
		return deletedCustomer(id)
	}
	a := forward()
	if obj := a.object(); obj != nil {
		obj["id"] = id
		obj["metadata"] = cus.Metadata
		a.setJSON(obj)
	}
	return a
}

func (s *stripeState) deleteCustomer(id string, forward func() *stripeAnswer) *stripeAnswer {
	if cus, ok := s.customer(id); !ok || cus.Deleted {
		return noSuchCustomer(http.StatusNotFound, "id", id, ok)
	}
	a := forward()
	if a.object() == nil {
		return a
	}
	s.mu.Lock()
	s.customers[id].Deleted = true
	s.mu.Unlock()
	a.replace(deletedCustomer(id))
	return a
}

// checkCustomer answers the error of a request naming a customer that does not exist; nil if
// id is "" or exists.
func (s *stripeState) checkCustomer(id string) *stripeAnswer {
	if id == "" {
		return nil
	}
	cus, ok := s.customer(id)
	if ok && !cus.Deleted {
		return nil
	}
	return noSuchCustomer(http.StatusBadRequest, "customer", id, ok)
}

// noSuchCustomer is Stripe's answer naming a missing customer. Stripe adds that a similar object
// exists in live mode when a live-mode id is used with a test key: an id the layer never saw is
// taken to be one (a mapping created with the other key).
func noSuchCustomer(status int, param, id string, seen bool) *stripeAnswer {
	msg := "No such customer: '" + id + "'"
	if !seen {
		msg += "; a similar object exists in live mode, but a test mode key was used to make this request."
	}
	return errorAnswer(status, stripeError{Type: "invalid_request_error", Code: "resource_missing", Param: param, Message: msg})
}

func deletedCustomer(id string) *stripeAnswer {
	return objectAnswer(http.StatusOK, map[string]any{"id": id, "object": "customer", "deleted": true})
}

func (s *stripeState) customer(id string) (CustomerState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return CustomerState{}, false
	}
	return c.copy(), true
}

// putCustomer adds or replaces a customer; s.mu is held.
func (s *stripeState) putCustomer(c CustomerState) {
	if s.customers == nil {
		s.customers = map[string]*CustomerState{}
	}
	if _, ok := s.customers[c.ID]; !ok {
		s.customerOrder = append(s.customerOrder, c.ID)
	}
	c = c.copy()
	s.customers[c.ID] = &c
}

func (c CustomerState) copy() CustomerState {
	c.Metadata = cloneMetadata(c.Metadata)
	return c
}

// PaymentIntents.

func (s *stripeState) createPaymentIntent(c *stripeCall, forward func() *stripeAnswer) *stripeAnswer {
	if a := s.checkCustomer(c.form.Get("customer")); a != nil {
		return a
	}
	a := forward()
	obj := a.object()
	if obj == nil {
		return a
	}
	amount, _ := strconv.ParseInt(c.form.Get("amount"), 10, 64)
	id := "pi_" + randomAlnum(24)
	pi := PaymentIntentState{
		ID: id, ClientSecret: id + "_secret_" + randomAlnum(25),
		Status:                    statusRequiresPaymentMethod,
		Amount:                    amount,
		Currency:                  c.form.Get("currency"),
		Customer:                  c.form.Get("customer"),
		Metadata:                  metadataOf(c),
		StatementDescriptorSuffix: c.form.Get("statement_descriptor_suffix"),
		IdempotencyKey:            c.key,
	}
	s.mu.Lock()
	s.putIntent(pi)
	s.mu.Unlock()
	a.setJSON(renderIntent(obj, pi))
	return a
}

func (s *stripeState) getPaymentIntent(id string, forward func() *stripeAnswer) *stripeAnswer {
	if _, ok := s.intent(id); !ok {
		return noSuchIntent(http.StatusNotFound, "intent", id)
	}
	a := forward()
	if obj := a.object(); obj != nil {
		pi, _ := s.intent(id) // as it is now, after stripe-mock answered
		a.setJSON(renderIntent(obj, pi))
	}
	return a
}

// cancelable are the statuses Stripe cancels from. Stripe cancels some processing intents too
// (some payment methods); the layer models processing as not cancelable.
var cancelable = []string{statusRequiresPaymentMethod, statusRequiresCapture, statusRequiresConfirmation, statusRequiresAction}

func (s *stripeState) cancelPaymentIntent(c *stripeCall, id string, forward func() *stripeAnswer) *stripeAnswer {
	if _, ok := s.intent(id); !ok {
		return noSuchIntent(http.StatusNotFound, "intent", id)
	}
	a := forward() // validates cancellation_reason
	obj := a.object()
	if obj == nil {
		return a
	}
	s.mu.Lock()
	p := s.intents[id]
	ok := slices.Contains(cancelable, p.Status)
	if ok {
		p.Status = statusCanceled
		p.CancellationReason = c.form.Get("cancellation_reason")
		p.canceledAt = time.Now().Unix()
	}
	pi := p.copy()
	s.mu.Unlock()
	if !ok {
		a.replace(errorAnswer(http.StatusBadRequest, stripeError{
			Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
			Message: "You cannot cancel this PaymentIntent because it has a status of " + pi.Status + ". " +
				"Only a PaymentIntent with one of the following statuses may be canceled: " +
				"requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
			PaymentIntent: renderIntent(obj, pi),
		}))
		return a
	}
	a.setJSON(renderIntent(obj, pi))
	return a
}

func (s *stripeState) searchPaymentIntents(c *stripeCall, forward func() *stripeAnswer) *stripeAnswer {
	a := forward() // validates query, limit and page
	obj := a.object()
	if obj == nil {
		return a
	}
	key, value, ok := parseMetadataQuery(c.query.Get("query"))
	if !ok {
		a.replace(errorAnswer(http.StatusBadRequest, stripeError{
			Type: "invalid_request_error", Param: "query",
			Message: "The test layer models only the search query metadata['key']:'value', not " + strconv.Quote(c.query.Get("query")) + ".",
		}))
		return a
	}
	limit := 10
	if n, err := strconv.Atoi(c.query.Get("limit")); err == nil && n > 0 {
		limit = n
	}
	offset := 0
	if page := c.query.Get("page"); page != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(page, "page_"))
		if err != nil || n < 0 {
			a.replace(errorAnswer(http.StatusBadRequest, stripeError{Type: "invalid_request_error", Param: "page", Message: "Invalid page: " + page}))
			return a
		}
		offset = n
	}
	template := map[string]any{}
	if data, _ := obj["data"].([]any); len(data) > 0 {
		template, _ = data[0].(map[string]any)
	}
	var found []PaymentIntentState
	s.mu.Lock()
	for _, id := range slices.Backward(s.intentOrder) { // newest first
		if pi := s.intents[id]; pi.Metadata[key] == value {
			found = append(found, pi.copy())
		}
	}
	s.mu.Unlock()
	data := []any{}
	for i := offset; i < len(found) && i < offset+limit; i++ {
		data = append(data, renderIntent(template, found[i]))
	}
	obj["data"] = data
	obj["has_more"] = offset+limit < len(found)
	obj["next_page"] = nil
	if offset+limit < len(found) {
		obj["next_page"] = "page_" + strconv.Itoa(offset+limit)
	}
	obj["url"] = "/v1/payment_intents/search"
	delete(obj, "total_count") // Stripe sends it only when expanded
	a.setJSON(obj)
	return a
}

// parseMetadataQuery parses metadata['key']:'value', the one search query form the layer
// models; a backslash escapes a quote or a backslash in the value.
func parseMetadataQuery(q string) (key, value string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(q), "metadata['")
	if !ok {
		return "", "", false
	}
	key, rest, ok = strings.Cut(rest, "']:'")
	if !ok || key == "" {
		return "", "", false
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		switch ch := rest[i]; {
		case ch == '\\' && i+1 < len(rest) && (rest[i+1] == '\'' || rest[i+1] == '\\'):
			i++
			b.WriteByte(rest[i])
		case ch == '\\':
			return "", "", false
		case ch == '\'':
			return key, b.String(), i == len(rest)-1
		default:
			b.WriteByte(ch)
		}
	}
	return "", "", false // no closing quote
}

// renderIntent is template (a PaymentIntent of stripe-mock's) with pi's fields.
func renderIntent(template map[string]any, pi PaymentIntentState) map[string]any {
	obj := maps.Clone(template)
	if obj == nil {
		obj = map[string]any{}
	}
	obj["id"] = pi.ID
	obj["object"] = "payment_intent"
	obj["client_secret"] = pi.ClientSecret
	obj["status"] = pi.Status
	obj["amount"] = pi.Amount
	obj["currency"] = pi.Currency
	obj["customer"] = nullable(pi.Customer)
	obj["metadata"] = cloneMetadata(pi.Metadata)
	obj["statement_descriptor_suffix"] = nullable(pi.StatementDescriptorSuffix)
	obj["cancellation_reason"] = nullable(pi.CancellationReason)
	obj["canceled_at"] = nil
	if pi.Status == statusCanceled {
		obj["canceled_at"] = pi.canceledAt
	}
	obj["amount_received"] = 0
	if pi.Status == statusSucceeded {
		obj["amount_received"] = pi.Amount
	}
	return obj
}

func noSuchIntent(status int, param, id string) *stripeAnswer {
	return errorAnswer(status, stripeError{
		Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: "No such payment_intent: '" + id + "'",
	})
}

func (s *stripeState) intent(id string) (PaymentIntentState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi, ok := s.intents[id]
	if !ok {
		return PaymentIntentState{}, false
	}
	return pi.copy(), true
}

// putIntent adds or replaces an intent; s.mu is held.
func (s *stripeState) putIntent(pi PaymentIntentState) {
	if s.intents == nil {
		s.intents = map[string]*PaymentIntentState{}
	}
	if _, ok := s.intents[pi.ID]; !ok {
		s.intentOrder = append(s.intentOrder, pi.ID)
	}
	pi = pi.copy()
	s.intents[pi.ID] = &pi
}

func (pi PaymentIntentState) copy() PaymentIntentState {
	pi.Metadata = cloneMetadata(pi.Metadata)
	return pi
}

// Refunds.

func (s *stripeState) createRefund(c *stripeCall, forward func() *stripeAnswer) *stripeAnswer {
	piID := c.form.Get("payment_intent")
	if piID == "" {
		return forward() // refunds of a charge are not modelled
	}
	if _, ok := s.intent(piID); !ok {
		return noSuchIntent(http.StatusBadRequest, "payment_intent", piID)
	}
	a := forward() // validates amount, reason, metadata
	obj := a.object()
	if obj == nil {
		return a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pi := s.intents[piID]
	if pi.Status != statusSucceeded {
		a.replace(errorAnswer(http.StatusBadRequest, stripeError{
			Type: "invalid_request_error", Code: "payment_intent_unexpected_state", Param: "payment_intent",
			Message: "This PaymentIntent (" + piID + ") does not have a successful charge to refund: its status is " + pi.Status + ".",
		}))
		return a
	}
	remaining := pi.Amount
	for _, re := range s.refunds {
		if re.PaymentIntent == piID {
			remaining -= re.Amount
		}
	}
	if remaining <= 0 {
		a.replace(errorAnswer(http.StatusBadRequest, stripeError{
			Type: "invalid_request_error", Code: "charge_already_refunded",
			Message: "The charge of PaymentIntent " + piID + " has already been refunded.",
		}))
		return a
	}
	amount := remaining
	if c.form.Has("amount") {
		amount, _ = strconv.ParseInt(c.form.Get("amount"), 10, 64)
	}
	if amount <= 0 || amount > remaining {
		a.replace(errorAnswer(http.StatusBadRequest, stripeError{
			Type: "invalid_request_error", Param: "amount",
			Message: fmt.Sprintf("Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, remaining),
		}))
		return a
	}
	re := RefundState{
		ID: "re_" + randomAlnum(24), PaymentIntent: piID,
		Amount: amount, Currency: pi.Currency, Status: "succeeded",
		Reason: c.form.Get("reason"), Metadata: metadataOf(c), IdempotencyKey: c.key,
	}
	s.refunds = append(s.refunds, re)
	obj["id"] = re.ID
	obj["payment_intent"] = re.PaymentIntent
	obj["amount"] = re.Amount
	obj["currency"] = re.Currency
	obj["status"] = re.Status
	obj["reason"] = nullable(re.Reason)
	obj["metadata"] = cloneMetadata(re.Metadata)
	a.setJSON(obj)
	return a
}

// Test controls.

// AddCustomer seeds a customer created elsewhere (another test, the Dashboard).
func (r *StripeRecorder) AddCustomer(id string) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if _, ok := r.state.customers[id]; !ok {
		r.state.putCustomer(CustomerState{ID: id})
	}
}

// DeleteCustomer deletes a customer, as the Dashboard would: every later request naming it
// answers resource_missing.
func (r *StripeRecorder) DeleteCustomer(id string) error {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	c, ok := r.state.customers[id]
	if !ok {
		return fmt.Errorf("testenv: no customer %s", id)
	}
	c.Deleted = true
	return nil
}

// Customer returns a customer.
func (r *StripeRecorder) Customer(id string) (CustomerState, bool) { return r.state.customer(id) }

// Customers returns every customer, deleted ones included, in creation order.
func (r *StripeRecorder) Customers() []CustomerState {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	out := make([]CustomerState, 0, len(r.state.customerOrder))
	for _, id := range r.state.customerOrder {
		out = append(out, r.state.customers[id].copy())
	}
	return out
}

// PutPaymentIntent seeds an intent created earlier (e.g. before its create's idempotency key
// expired), or replaces one. An empty ID, ClientSecret or Status gets a fresh id, its secret and
// requires_payment_method. It returns the intent as stored.
func (r *StripeRecorder) PutPaymentIntent(pi PaymentIntentState) PaymentIntentState {
	if pi.ID == "" {
		pi.ID = "pi_" + randomAlnum(24)
	}
	if pi.ClientSecret == "" {
		pi.ClientSecret = pi.ID + "_secret_" + randomAlnum(25)
	}
	if pi.Status == "" {
		pi.Status = statusRequiresPaymentMethod
	}
	if pi.Status == statusCanceled && pi.canceledAt == 0 {
		pi.canceledAt = time.Now().Unix()
	}
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	r.state.putIntent(pi)
	return pi.copy()
}

// PaymentIntent returns an intent.
func (r *StripeRecorder) PaymentIntent(id string) (PaymentIntentState, bool) {
	return r.state.intent(id)
}

// PaymentIntents returns every intent, in creation order.
func (r *StripeRecorder) PaymentIntents() []PaymentIntentState {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	out := make([]PaymentIntentState, 0, len(r.state.intentOrder))
	for _, id := range r.state.intentOrder {
		out = append(out, r.state.intents[id].copy())
	}
	return out
}

// SetPaymentIntentStatus moves an intent to status, as the traveller (confirming, 3-D Secure),
// a bank (processing, succeeded) or support (canceling in the Dashboard) would.
func (r *StripeRecorder) SetPaymentIntentStatus(id, status string) error {
	switch status {
	case statusRequiresPaymentMethod, statusRequiresConfirmation, statusRequiresAction, statusProcessing,
		statusRequiresCapture, statusCanceled, statusSucceeded:
	default:
		return fmt.Errorf("testenv: %q is not a PaymentIntent status", status)
	}
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	pi, ok := r.state.intents[id]
	if !ok {
		return fmt.Errorf("testenv: no PaymentIntent %s", id)
	}
	pi.Status = status
	if status == statusCanceled {
		pi.canceledAt = time.Now().Unix()
	}
	return nil
}

// Refunds returns the refunds of an intent, in creation order.
func (r *StripeRecorder) Refunds(paymentIntentID string) []RefundState {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	var out []RefundState
	for _, re := range r.state.refunds {
		if re.PaymentIntent == paymentIntentID {
			re.Metadata = cloneMetadata(re.Metadata)
			out = append(out, re)
		}
	}
	return out
}

// Answers and JSON.

// stripeError is the error object of Stripe's answers (https://docs.stripe.com/api/errors).
type stripeError struct {
	Type          string         `json:"type"`
	Code          string         `json:"code,omitempty"`
	Param         string         `json:"param,omitempty"`
	Message       string         `json:"message"`
	DocURL        string         `json:"doc_url,omitempty"`
	PaymentIntent map[string]any `json:"payment_intent,omitempty"`
}

func errorAnswer(status int, e stripeError) *stripeAnswer {
	if e.Code != "" {
		e.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	return objectAnswer(status, map[string]any{"error": e})
}

func objectAnswer(status int, v any) *stripeAnswer {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of JSON values get here
	}
	return jsonAnswer(status, body)
}

// object decodes a 2xx JSON answer; nil for any other, which the layer passes on as it is.
func (a *stripeAnswer) object() map[string]any {
	if a.status < 200 || a.status > 299 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(a.body))
	d.UseNumber() // keep stripe-mock's numbers as they are
	var obj map[string]any
	if d.Decode(&obj) != nil {
		return nil
	}
	return obj
}

// setJSON replaces the body with obj.
func (a *stripeAnswer) setJSON(obj map[string]any) {
	a.body = objectAnswer(a.status, obj).body
}

// replace makes a answer what b answers, keeping what a went through.
func (a *stripeAnswer) replace(b *stripeAnswer) {
	a.status, a.body = b.status, b.body
	a.header.Set("Content-Type", "application/json")
}

func metadataOf(c *stripeCall) map[string]string {
	md := map[string]string{}
	for k, v := range c.form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") && v[0] != "" {
			md[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	return md
}

func cloneMetadata(md map[string]string) map[string]string {
	if md == nil {
		return map[string]string{}
	}
	return maps.Clone(md)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}
