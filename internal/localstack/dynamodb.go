package localstack

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoDBClient returns a client for the DynamoDB Local at endpoint, with dummy credentials
// and independent of any AWS configuration of the environment.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		// DynamoDB Local's CRC32 response checksums do not always match what the SDK computes.
		DisableValidateResponseChecksum: true,
	})
}
