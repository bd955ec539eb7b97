package tables_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/winktravel/checkout/internal/tables"
)

// fakeDynamo answers the four operations Create uses, over the real JSON protocol, so the test
// drives the real SDK client. Tables are ACTIVE as soon as they are created, as in DynamoDB Local.
type fakeDynamo struct {
	mu      sync.Mutex
	tables  map[string]map[string]any // name -> CreateTable request
	ttl     map[string]string         // name -> TTL attribute
	creates int
	ttlSets int
}

func (f *fakeDynamo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name, _ := in["TableName"].(string)
	reply := func(status int, body any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	fail := func(kind string) {
		reply(http.StatusBadRequest, map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + kind, "message": kind})
	}
	describe := func(req map[string]any) map[string]any {
		d := map[string]any{"TableName": name, "TableStatus": "ACTIVE", "KeySchema": req["KeySchema"]}
		if gsis, ok := req["GlobalSecondaryIndexes"].([]any); ok {
			var out []any
			for _, g := range gsis {
				g := g.(map[string]any)
				out = append(out, map[string]any{"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "IndexStatus": "ACTIVE"})
			}
			d["GlobalSecondaryIndexes"] = out
		}
		return d
	}
	switch op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810."); op {
	case "CreateTable":
		if _, ok := f.tables[name]; ok {
			fail("ResourceInUseException")
			return
		}
		f.creates++
		f.tables[name] = in
		reply(http.StatusOK, map[string]any{"TableDescription": describe(in)})
	case "DescribeTable":
		req, ok := f.tables[name]
		if !ok {
			fail("ResourceNotFoundException")
			return
		}
		reply(http.StatusOK, map[string]any{"Table": describe(req)})
	case "DescribeTimeToLive":
		d := map[string]any{"TimeToLiveStatus": "DISABLED"}
		if attr, ok := f.ttl[name]; ok {
			d = map[string]any{"TimeToLiveStatus": "ENABLED", "AttributeName": attr}
		}
		reply(http.StatusOK, map[string]any{"TimeToLiveDescription": d})
	case "UpdateTimeToLive":
		spec := in["TimeToLiveSpecification"].(map[string]any)
		if _, ok := f.ttl[name]; ok {
			fail("ValidationException") // what DynamoDB answers when TTL is already enabled
			return
		}
		f.ttlSets++
		f.ttl[name] = spec["AttributeName"].(string)
		reply(http.StatusOK, map[string]any{"TimeToLiveSpecification": spec})
	default:
		fail("UnknownOperationException")
	}
}

func newFakeDynamo(t *testing.T) (*fakeDynamo, *dynamodb.Client) {
	t.Helper()
	fake := &fakeDynamo{tables: map[string]map[string]any{}, ttl: map[string]string{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	db := dynamodb.New(dynamodb.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
	})
	return fake, db
}

var testNames = map[string]string{
	"CartsTable":          "test-carts",
	"BookingsTable":       "test-bookings",
	"CustomizationsTable": "test-customizations",
	"CustomersTable":      "test-customers",
	"HoldsTable":          "test-holds",
}

func TestCreateMakesTheTemplateTablesAndIsIdempotent(t *testing.T) {
	fake, db := newFakeDynamo(t)
	all := loadProjectTables(t)
	ctx := context.Background()

	for run := 1; run <= 2; run++ {
		if err := tables.Create(ctx, db, all, testNames); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if fake.creates != len(testNames) || len(fake.tables) != len(testNames) {
		t.Errorf("created %d tables (%d kept), want %d", fake.creates, len(fake.tables), len(testNames))
	}
	for id, name := range testNames {
		req, ok := fake.tables[name]
		if !ok {
			t.Errorf("%s not created as %s", id, name)
			continue
		}
		if req["BillingMode"] != "PAY_PER_REQUEST" {
			t.Errorf("%s BillingMode = %v", name, req["BillingMode"])
		}
	}
	if gsis, _ := fake.tables["test-bookings"]["GlobalSecondaryIndexes"].([]any); len(gsis) != 1 {
		t.Errorf("bookings indexes = %v, want byGroup", gsis)
	}
	if fake.ttlSets != 1 || fake.ttl["test-carts"] != "expiresAt" {
		t.Errorf("TTL set %d times: %v, want once, expiresAt on carts", fake.ttlSets, fake.ttl)
	}
	if all["CartsTable"].Input.TableName != nil {
		t.Error("Create changed the loaded input")
	}
}

func TestCreateRefusesATableWithAnotherSchema(t *testing.T) {
	fake, db := newFakeDynamo(t)
	all := loadProjectTables(t)
	fake.tables["test-bookings"] = map[string]any{"KeySchema": []any{map[string]any{"AttributeName": "id", "KeyType": "HASH"}}}

	err := tables.Create(context.Background(), db, all, testNames)
	if err == nil || !strings.Contains(err.Error(), "another schema") || !strings.Contains(err.Error(), "test-bookings") {
		t.Fatalf("Create error = %v, want the bookings table's schema mismatch", err)
	}
}

func TestCreateNeedsANameForEveryTableAndNoOther(t *testing.T) {
	_, db := newFakeDynamo(t)
	all := loadProjectTables(t)
	missing := map[string]string{"CartsTable": "c"}
	extra := map[string]string{"OrdersTable": "o"}
	for id, name := range testNames {
		extra[id] = name
	}
	for _, tt := range []struct {
		name    string
		names   map[string]string
		wantErr string
	}{
		{"missing", missing, "no table name given for"},
		{"unknown", extra, "OrdersTable, which is no table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tables.Create(context.Background(), db, all, tt.names)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
