package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// awsEnv is the AWS side of a function, from the variables Lambda sets: the region, the execution
// role's credentials and, for local runs, the SDK's standard endpoint variables. It stands in for
// config.LoadDefaultConfig, whose shared files, SSO, STS, process and instance-metadata
// credential providers a Lambda function never uses: they were about 1 MB of every bootstrap.
type awsEnv struct {
	cfg aws.Config
	// warm opens connections for the one HTTP transport of the AWS clients: those opened in init
	// serve the first requests.
	warm *warmer
	// dynamoEndpoint and secretsEndpoint are AWS_ENDPOINT_URL_DYNAMODB and
	// AWS_ENDPOINT_URL_SECRETS_MANAGER (or AWS_ENDPOINT_URL); empty means AWS's own.
	dynamoEndpoint, secretsEndpoint string
}

// loadAWS reads the AWS configuration of a function from getenv (the process's environment). A
// function without a region or credentials fails its cold start here, not at its first request.
func loadAWS(getenv func(string) string) (awsEnv, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	region := get("AWS_REGION")
	if region == "" {
		region = get("AWS_DEFAULT_REGION")
	}
	keyID, secret := get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
	var errs []error
	if region == "" {
		errs = append(errs, errors.New("AWS_REGION is not set (Lambda sets it)"))
	}
	if keyID == "" || secret == "" {
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (Lambda sets them from the function's role)"))
	}
	if err := errors.Join(errs...); err != nil {
		return awsEnv{}, fmt.Errorf("AWS configuration: %w", err)
	}

	transport := awshttp.NewBuildableClient().GetTransport() // the SDK's defaults (timeouts, pool)
	transport.MaxIdleConnsPerHost = 64                       // concurrent requests in the local server reuse connections
	env := awsEnv{
		cfg: aws.Config{
			Region:      region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(keyID, secret, get("AWS_SESSION_TOKEN"))),
			// No AWS API answers with a redirect; like the SDK's own client, never follow one.
			HTTPClient: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		},
		warm: newWarmer(transport),
	}
	if !strings.EqualFold(get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		global := get("AWS_ENDPOINT_URL")
		env.dynamoEndpoint = firstSet(get("AWS_ENDPOINT_URL_DYNAMODB"), global)
		env.secretsEndpoint = firstSet(get("AWS_ENDPOINT_URL_SECRETS_MANAGER"), global)
	}
	return env, nil
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// dynamoClient is the DynamoDB client of a function. DynamoDB Local's CRC32 response checksums do
// not always match what the SDK computes: that check is skipped for a local endpoint only, never
// against AWS.
func (e awsEnv) dynamoClient(localEndpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(e.cfg, func(o *dynamodb.Options) {
		if e.dynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(e.dynamoEndpoint)
		}
		o.DisableValidateResponseChecksum = localEndpoint != ""
	})
}

// dynamoURL is the URL the DynamoDB client sends its requests to, resolved by the SDK's own rules.
func (e awsEnv) dynamoURL(ctx context.Context) (string, error) {
	params := dynamodb.EndpointParameters{Region: aws.String(e.cfg.Region)}
	if e.dynamoEndpoint != "" {
		params.Endpoint = aws.String(e.dynamoEndpoint)
	}
	ep, err := dynamodb.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, params)
	if err != nil {
		return "", err
	}
	return ep.URI.String(), nil
}

// secretsClient is the Secrets Manager client of a function.
func (e awsEnv) secretsClient() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(e.cfg, func(o *secretsmanager.Options) {
		if e.secretsEndpoint != "" {
			o.BaseEndpoint = aws.String(e.secretsEndpoint)
		}
	})
}

// secretValue reads a secret's SecretString from Secrets Manager, or takes local (a setting for
// local runs and tests) when no ARN is configured. The value never appears in an error.
func (e awsEnv) secretValue(ctx context.Context, arn, local, what string) (string, error) {
	if arn == "" {
		return local, nil
	}
	out, err := e.secretsClient().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return "", fmt.Errorf("read the %s %s: %w", what, arn, err)
	}
	value := strings.TrimSpace(aws.ToString(out.SecretString))
	if value == "" {
		return "", fmt.Errorf("the %s %s is empty", what, arn)
	}
	return value, nil
}
