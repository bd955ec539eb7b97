package dynamo

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// ItemSize is an item's size as DynamoDB counts it against its 400 KB limit, rounded up: the
// UTF-8 length of each attribute name plus the size of its value.
func ItemSize(item map[string]types.AttributeValue) int {
	size := 0
	for name, v := range item {
		size += len(name) + valueSize(v)
	}
	return size
}

// valueSize follows DynamoDB's item-size rules: strings and binaries by length, a number by its
// digits (about one byte per two, plus one; counted here as the longest it can be), one byte for
// a boolean or null, and three bytes plus one per element for a list or map.
func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 2
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 3
		for _, s := range v.Value {
			n += len(s) + 1
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 3
		for _, s := range v.Value {
			n += len(s)/2 + 3
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 3
		for _, b := range v.Value {
			n += len(b) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for name, e := range v.Value {
			n += len(name) + valueSize(e) + 1
		}
		return n
	}
	return 0
}
