package tables_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/winktravel/checkout/internal/tables"
)

func loadProjectTables(t *testing.T) map[string]tables.Table {
	t.Helper()
	path, err := tables.TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	all, err := tables.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func keys(schema []types.KeySchemaElement) []string {
	var out []string
	for _, k := range schema {
		out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return out
}

func attributes(defs []types.AttributeDefinition) []string {
	var out []string
	for _, d := range defs {
		out = append(out, aws.ToString(d.AttributeName)+" "+string(d.AttributeType))
	}
	return out
}

// The schema of the four tables, as the template must describe it.
func TestLoadTemplateTables(t *testing.T) {
	all := loadProjectTables(t)

	type gsi struct{ name, keys, projection string }
	want := map[string]struct {
		keys       []string
		attributes []string
		gsis       []gsi
		ttl        string
	}{
		"CartsTable":          {keys: []string{"identifier HASH"}, attributes: []string{"identifier S"}, ttl: "expiresAt"},
		"BookingsTable":       {keys: []string{"bookingCode HASH"}, attributes: []string{"bookingCode S", "groupIdentifier S"}, gsis: []gsi{{"byGroup", "groupIdentifier HASH", "ALL"}}},
		"CustomizationsTable": {keys: []string{"identifier HASH"}, attributes: []string{"identifier S"}},
		"CustomersTable":      {keys: []string{"ownerIdentifier HASH"}, attributes: []string{"ownerIdentifier S"}},
		"HoldsTable": {keys: []string{"groupIdentifier HASH"}, attributes: []string{"groupIdentifier S", "holdShard S", "holdEndsAt N"},
			gsis: []gsi{{"byDue", "holdShard HASH,holdEndsAt RANGE", "ALL"}}},
	}
	if len(all) != len(want) {
		var got []string
		for id := range all {
			got = append(got, id)
		}
		t.Fatalf("tables = %v, want the five checkout tables", got)
	}
	for id, w := range want {
		t.Run(id, func(t *testing.T) {
			table, ok := all[id]
			if !ok {
				t.Fatalf("no %s in template.yaml", id)
			}
			in := table.Input
			if table.LogicalID != id {
				t.Errorf("LogicalID = %q", table.LogicalID)
			}
			if in.TableName != nil {
				t.Errorf("TableName = %q, want it left to Create", aws.ToString(in.TableName))
			}
			if in.BillingMode != types.BillingModePayPerRequest {
				t.Errorf("BillingMode = %q", in.BillingMode)
			}
			if got := keys(in.KeySchema); !reflect.DeepEqual(got, w.keys) {
				t.Errorf("KeySchema = %v, want %v", got, w.keys)
			}
			if got := attributes(in.AttributeDefinitions); !reflect.DeepEqual(got, w.attributes) {
				t.Errorf("AttributeDefinitions = %v, want %v", got, w.attributes)
			}
			var gsis []gsi
			for _, g := range in.GlobalSecondaryIndexes {
				gsis = append(gsis, gsi{aws.ToString(g.IndexName), strings.Join(keys(g.KeySchema), ","), string(g.Projection.ProjectionType)})
			}
			if !reflect.DeepEqual(gsis, w.gsis) {
				t.Errorf("GlobalSecondaryIndexes = %v, want %v", gsis, w.gsis)
			}
			if len(in.LocalSecondaryIndexes) != 0 {
				t.Errorf("LocalSecondaryIndexes = %v, want none", in.LocalSecondaryIndexes)
			}
			if table.TTLAttribute != w.ttl {
				t.Errorf("TTLAttribute = %q, want %q", table.TTLAttribute, w.ttl)
			}
		})
	}
}

func writeTemplate(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadReadsEveryIndexKindAndIgnoresIntrinsicsElsewhere(t *testing.T) {
	path := writeTemplate(t, `
Conditions:
  Make: !Equals [!Ref Name, ""]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-q"
  Orders:
    Type: AWS::DynamoDB::Table
    Condition: Make
    Properties:
      TableName: !If [Make, !Ref AWS::NoValue, !Ref Name]
      BillingMode: PROVISIONED
      AttributeDefinitions: &defs
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: N}
        - {AttributeName: byStatus, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: status
          KeySchema: [{AttributeName: byStatus, KeyType: HASH}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [total, currency]}
      LocalSecondaryIndexes:
        - IndexName: local
          KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: byStatus, KeyType: RANGE}]
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: gone, Enabled: false}
      SSESpecification: {SSEEnabled: true, KMSMasterKeyId: !GetAtt Key.Arn}
`)
	all, err := tables.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	orders, ok := all["Orders"]
	if !ok || len(all) != 1 {
		t.Fatalf("tables = %v, want only Orders", all)
	}
	in := orders.Input
	if got := keys(in.KeySchema); !reflect.DeepEqual(got, []string{"pk HASH", "sk RANGE"}) {
		t.Errorf("KeySchema = %v", got)
	}
	if in.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("BillingMode = %q, want on-demand whatever the template says", in.BillingMode)
	}
	if g := in.GlobalSecondaryIndexes; len(g) != 1 || aws.ToString(g[0].IndexName) != "status" ||
		!reflect.DeepEqual(g[0].Projection.NonKeyAttributes, []string{"total", "currency"}) {
		t.Errorf("GlobalSecondaryIndexes = %+v", g)
	}
	if l := in.LocalSecondaryIndexes; len(l) != 1 || l[0].Projection.ProjectionType != types.ProjectionTypeKeysOnly {
		t.Errorf("LocalSecondaryIndexes = %+v", l)
	}
	if orders.TTLAttribute != "" {
		t.Errorf("TTLAttribute = %q for a disabled TTL", orders.TTLAttribute)
	}
}

func TestLoadRejectsWhatCannotBeCreated(t *testing.T) {
	table := func(props string) string {
		return "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n" + props
	}
	const defs = "      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n"
	const key = "      KeySchema: [{AttributeName: id, KeyType: HASH}]\n"
	tests := []struct {
		name, template, wantErr string
	}{
		{"no tables", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", "no AWS::DynamoDB::Table"},
		{"no resources", "Parameters: {}\n", "no Resources"},
		{"not yaml", "Resources: [\n", "load tables"},
		{"no key schema", table(defs), "KeySchema is missing"},
		{"intrinsic key name", table(defs + "      KeySchema: [{AttributeName: !Ref Key, KeyType: HASH}]\n"), "not !Ref"},
		{"long-form intrinsic", table(defs + "      KeySchema: [{AttributeName: {Ref: Key}, KeyType: HASH}]\n"), "must be a literal"},
		{"bad key type", table(defs + "      KeySchema: [{AttributeName: id, KeyType: PRIMARY}]\n"), "neither HASH nor RANGE"},
		{"range first", table(defs + "      KeySchema: [{AttributeName: id, KeyType: RANGE}]\n"), "must be a HASH key"},
		{"bad attribute type", table("      AttributeDefinitions: [{AttributeName: id, AttributeType: BOOL}]\n" + key), "not S, N or B"},
		{"undefined key", table("      AttributeDefinitions: []\n" + key), `"id" has no AttributeDefinitions`},
		{"unused definition", table("      AttributeDefinitions: [{AttributeName: id, AttributeType: S}, {AttributeName: x, AttributeType: S}]\n" + key), `"x", which is no key`},
		{"index without projection", table(defs + key + "      GlobalSecondaryIndexes: [{IndexName: i, KeySchema: [{AttributeName: id, KeyType: HASH}]}]\n"), "Projection is missing"},
		{"ttl by condition", table(defs + key + "      TimeToLiveSpecification: {AttributeName: e, Enabled: !If [C, true, false]}\n"), "Enabled must be a literal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tables.Load(writeTemplate(t, tt.template))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTemplatePathFromASubdirectory(t *testing.T) {
	path, err := tables.TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "template.yaml" {
		t.Fatalf("TemplatePath = %s", path)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "go.mod")); err != nil {
		t.Fatalf("TemplatePath = %s, not beside go.mod: %v", path, err)
	}
}
