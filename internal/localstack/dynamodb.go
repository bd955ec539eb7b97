package localstack

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// AWSEnv is the environment that points a function's AWS SDK at nothing real: a region, dummy
// credentials, no instance metadata and no configuration files. Add the local endpoints
// (AWS_ENDPOINT_URL_DYNAMODB, ...) to it.
func AWSEnv() map[string]string {
	return map[string]string{
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "local",
		"AWS_SECRET_ACCESS_KEY":       "local",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

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
