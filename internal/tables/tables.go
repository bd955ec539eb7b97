// Package tables builds the DynamoDB tables described in template.yaml, so that tests and the
// local stack use the deployed schema instead of a copy of it.
package tables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/winktravel/checkout/internal/project"
)

// Table is one AWS::DynamoDB::Table of the template.
type Table struct {
	// LogicalID is the resource's name in the template, e.g. "CartsTable".
	LogicalID string
	// Input creates the table: keys, attribute definitions, indexes, on-demand billing.
	// TableName is left empty; Create sets it.
	Input *dynamodb.CreateTableInput
	// TTLAttribute is the attribute of TimeToLiveSpecification when TTL is enabled, else "".
	TTLAttribute string
}

// TemplatePath finds template.yaml in the module root.
func TemplatePath() (string, error) {
	root, err := project.Root()
	if err != nil {
		return "", fmt.Errorf("find template.yaml: %w", err)
	}
	path := filepath.Join(root, "template.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("find template.yaml in module root: %w", err)
	}
	return path, nil
}

// CreateFromTemplate creates the tables of the project's template.yaml under names (logical
// id -> table name): Load and Create in one call.
func CreateFromTemplate(ctx context.Context, db *dynamodb.Client, names map[string]string) error {
	path, err := TemplatePath()
	if err != nil {
		return err
	}
	defs, err := Load(path)
	if err != nil {
		return err
	}
	return Create(ctx, db, defs, names)
}

// Load reads the template and returns its DynamoDB tables keyed by logical id. A table counts
// whatever its Condition: the schema is the same when the stack reuses an existing table.
func Load(templatePath string) (map[string]Table, error) {
	data, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("load tables: %w", err)
	}
	tables, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("load tables from %s: %w", templatePath, err)
	}
	return tables, nil
}

func parse(data []byte) (map[string]Table, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	resources := field(&doc, "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("no Resources mapping")
	}
	tables := make(map[string]Table)
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, resource := resources.Content[i].Value, resolve(resources.Content[i+1])
		if typ := field(resource, "Type"); typ == nil || typ.Value != "AWS::DynamoDB::Table" {
			continue
		}
		table, err := parseTable(id, field(resource, "Properties"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		tables[id] = table
	}
	if len(tables) == 0 {
		return nil, errors.New("no AWS::DynamoDB::Table resource")
	}
	return tables, nil
}

func parseTable(id string, props *yaml.Node) (Table, error) {
	if props == nil || props.Kind != yaml.MappingNode {
		return Table{}, errors.New("no Properties mapping")
	}
	in := &dynamodb.CreateTableInput{BillingMode: types.BillingModePayPerRequest}
	var err error
	if in.KeySchema, err = keySchema(field(props, "KeySchema"), "KeySchema"); err != nil {
		return Table{}, err
	}
	if in.AttributeDefinitions, err = attributeDefinitions(field(props, "AttributeDefinitions")); err != nil {
		return Table{}, err
	}
	if gsis := field(props, "GlobalSecondaryIndexes"); gsis != nil {
		err := eachItem(gsis, "GlobalSecondaryIndexes", func(i int, n *yaml.Node) error {
			name, keys, projection, err := index(n, fmt.Sprintf("GlobalSecondaryIndexes[%d]", i))
			if err != nil {
				return err
			}
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
				IndexName: name, KeySchema: keys, Projection: projection,
			})
			return nil
		})
		if err != nil {
			return Table{}, err
		}
	}
	if lsis := field(props, "LocalSecondaryIndexes"); lsis != nil {
		err := eachItem(lsis, "LocalSecondaryIndexes", func(i int, n *yaml.Node) error {
			name, keys, projection, err := index(n, fmt.Sprintf("LocalSecondaryIndexes[%d]", i))
			if err != nil {
				return err
			}
			in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
				IndexName: name, KeySchema: keys, Projection: projection,
			})
			return nil
		})
		if err != nil {
			return Table{}, err
		}
	}
	if err := checkAttributes(in); err != nil {
		return Table{}, err
	}
	ttl, err := ttlAttribute(field(props, "TimeToLiveSpecification"))
	if err != nil {
		return Table{}, err
	}
	return Table{LogicalID: id, Input: in, TTLAttribute: ttl}, nil
}

func keySchema(n *yaml.Node, where string) ([]types.KeySchemaElement, error) {
	if n == nil {
		return nil, fmt.Errorf("%s is missing", where)
	}
	var keys []types.KeySchemaElement
	err := eachItem(n, where, func(i int, item *yaml.Node) error {
		at := fmt.Sprintf("%s[%d]", where, i)
		name, err := literal(item, "AttributeName", at)
		if err != nil {
			return err
		}
		keyType, err := literal(item, "KeyType", at)
		if err != nil {
			return err
		}
		if keyType != string(types.KeyTypeHash) && keyType != string(types.KeyTypeRange) {
			return fmt.Errorf("%s.KeyType %q is neither HASH nor RANGE", at, keyType)
		}
		keys = append(keys, types.KeySchemaElement{AttributeName: aws.String(name), KeyType: types.KeyType(keyType)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 || len(keys) > 2 || keys[0].KeyType != types.KeyTypeHash {
		return nil, fmt.Errorf("%s must be a HASH key, optionally followed by a RANGE key", where)
	}
	return keys, nil
}

func attributeDefinitions(n *yaml.Node) ([]types.AttributeDefinition, error) {
	if n == nil {
		return nil, errors.New("AttributeDefinitions is missing")
	}
	var defs []types.AttributeDefinition
	err := eachItem(n, "AttributeDefinitions", func(i int, item *yaml.Node) error {
		at := fmt.Sprintf("AttributeDefinitions[%d]", i)
		name, err := literal(item, "AttributeName", at)
		if err != nil {
			return err
		}
		typ, err := literal(item, "AttributeType", at)
		if err != nil {
			return err
		}
		switch types.ScalarAttributeType(typ) {
		case types.ScalarAttributeTypeS, types.ScalarAttributeTypeN, types.ScalarAttributeTypeB:
		default:
			return fmt.Errorf("%s.AttributeType %q is not S, N or B", at, typ)
		}
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeType(typ)})
		return nil
	})
	return defs, err
}

func index(n *yaml.Node, where string) (*string, []types.KeySchemaElement, *types.Projection, error) {
	name, err := literal(n, "IndexName", where)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := keySchema(field(n, "KeySchema"), where+".KeySchema")
	if err != nil {
		return nil, nil, nil, err
	}
	p := field(n, "Projection")
	if p == nil {
		return nil, nil, nil, fmt.Errorf("%s.Projection is missing", where)
	}
	projectionType, err := literal(p, "ProjectionType", where+".Projection")
	if err != nil {
		return nil, nil, nil, err
	}
	projection := &types.Projection{ProjectionType: types.ProjectionType(projectionType)}
	switch projection.ProjectionType {
	case types.ProjectionTypeAll, types.ProjectionTypeKeysOnly:
	case types.ProjectionTypeInclude:
		err := eachItem(field(p, "NonKeyAttributes"), where+".Projection.NonKeyAttributes", func(i int, item *yaml.Node) error {
			attr, err := scalar(item, fmt.Sprintf("%s.Projection.NonKeyAttributes[%d]", where, i))
			if err != nil {
				return err
			}
			projection.NonKeyAttributes = append(projection.NonKeyAttributes, attr)
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	default:
		return nil, nil, nil, fmt.Errorf("%s.Projection.ProjectionType %q is not ALL, KEYS_ONLY or INCLUDE", where, projectionType)
	}
	return aws.String(name), keys, projection, nil
}

// checkAttributes applies DynamoDB's rule that AttributeDefinitions holds exactly the key
// attributes of the table and its indexes, so a template mistake fails here, not at deploy.
func checkAttributes(in *dynamodb.CreateTableInput) error {
	keys := map[string]bool{}
	addKeys := func(schema []types.KeySchemaElement) {
		for _, k := range schema {
			keys[aws.ToString(k.AttributeName)] = true
		}
	}
	addKeys(in.KeySchema)
	for _, gsi := range in.GlobalSecondaryIndexes {
		addKeys(gsi.KeySchema)
	}
	for _, lsi := range in.LocalSecondaryIndexes {
		addKeys(lsi.KeySchema)
	}
	defined := map[string]bool{}
	for _, d := range in.AttributeDefinitions {
		name := aws.ToString(d.AttributeName)
		if !keys[name] {
			return fmt.Errorf("AttributeDefinitions names %q, which is no key of the table or its indexes", name)
		}
		defined[name] = true
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !defined[name] {
			return fmt.Errorf("key attribute %q has no AttributeDefinitions entry", name)
		}
	}
	return nil
}

func ttlAttribute(n *yaml.Node) (string, error) {
	if n == nil {
		return "", nil
	}
	enabled := field(n, "Enabled")
	if enabled == nil {
		return "", errors.New("TimeToLiveSpecification.Enabled is missing")
	}
	var on bool
	if err := literalNode(enabled, "TimeToLiveSpecification.Enabled"); err != nil {
		return "", err
	}
	if err := enabled.Decode(&on); err != nil {
		return "", fmt.Errorf("TimeToLiveSpecification.Enabled: %w", err)
	}
	if !on {
		return "", nil
	}
	return literal(n, "AttributeName", "TimeToLiveSpecification")
}

// field returns the value of key in mapping n (a document is looked into), or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = resolve(n.Content[0])
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// literal returns the plain scalar value of key in mapping n.
func literal(n *yaml.Node, key, where string) (string, error) {
	v := field(n, key)
	if v == nil {
		return "", fmt.Errorf("%s.%s is missing", where, key)
	}
	return scalar(v, where+"."+key)
}

func scalar(n *yaml.Node, where string) (string, error) {
	if err := literalNode(n, where); err != nil {
		return "", err
	}
	return n.Value, nil
}

// literalNode refuses anything but a plain scalar: a short-form intrinsic (!Ref, !Sub, ...) has a
// local tag, a long-form one is a mapping, and neither can be resolved outside CloudFormation.
func literalNode(n *yaml.Node, where string) error {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s must be a literal value", where)
	}
	if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
		return fmt.Errorf("%s must be a literal value, not %s", where, n.Tag)
	}
	return nil
}

func eachItem(n *yaml.Node, where string, fn func(int, *yaml.Node) error) error {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s must be a list", where)
	}
	for i, item := range n.Content {
		if err := fn(i, resolve(item)); err != nil {
			return err
		}
	}
	return nil
}
