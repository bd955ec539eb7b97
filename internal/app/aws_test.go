package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

var lambdaVars = map[string]string{
	"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
}

func with(overrides map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range lambdaVars {
		vars[k] = v
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return vars
}

// The variables Lambda sets are all a function's AWS configuration: the region, the role's
// credentials (session token included), and AWS's own endpoints.
func TestLoadAWSFromLambdasVariables(t *testing.T) {
	ctx := context.Background()
	e, err := loadAWS(env(lambdaVars))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.cfg.Credentials.Retrieve(ctx)
	if err != nil || creds.AccessKeyID != "ASIAEXAMPLE" || creds.SecretAccessKey != "secret" || creds.SessionToken != "token" {
		t.Errorf("credentials %+v, %v", creds, err)
	}
	if e.cfg.Region != "eu-west-1" || e.dynamoEndpoint != "" || e.secretsEndpoint != "" {
		t.Errorf("region %q, endpoints %q %q", e.cfg.Region, e.dynamoEndpoint, e.secretsEndpoint)
	}
	if url, err := e.dynamoURL(ctx); err != nil || url != "https://dynamodb.eu-west-1.amazonaws.com" {
		t.Errorf("DynamoDB URL %q, %v", url, err)
	}
	if hc, ok := e.cfg.HTTPClient.(*http.Client); !ok || e.warm == nil || hc.Transport != e.warm.transport || e.warm.transport.MaxIdleConnsPerHost != 64 {
		t.Errorf("the clients' transport is not the one that keeps connections")
	}
}

// A missing region or missing credentials fail the cold start, both named at once.
func TestLoadAWSRefusesWhatLambdaAlwaysSets(t *testing.T) {
	_, err := loadAWS(env(map[string]string{"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE"}))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("loadAWS without region and secret key: %v", err)
	}
	if strings.Contains(err.Error(), "ASIAEXAMPLE") {
		t.Errorf("the error quotes a credential: %v", err)
	}
	if e, err := loadAWS(env(with(map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-west-2"}))); err != nil || e.cfg.Region != "us-west-2" {
		t.Errorf("AWS_DEFAULT_REGION: %q, %v", e.cfg.Region, err)
	}
}

// The endpoints follow the SDK's standard variables: the service's own, then AWS_ENDPOINT_URL,
// none with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func TestLoadAWSEndpointVariables(t *testing.T) {
	for _, tc := range []struct {
		name           string
		vars           map[string]string
		dynamo, secret string
	}{
		{"service variables", map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:5000"}, "http://127.0.0.1:8000", "http://127.0.0.1:5000"},
		{"global variable", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}, "http://127.0.0.1:8000", "http://127.0.0.1:4566"},
		{"ignored", map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := loadAWS(env(with(tc.vars)))
			if err != nil {
				t.Fatal(err)
			}
			if e.dynamoEndpoint != tc.dynamo || e.secretsEndpoint != tc.secret {
				t.Errorf("endpoints %q and %q, want %q and %q", e.dynamoEndpoint, e.secretsEndpoint, tc.dynamo, tc.secret)
			}
			if tc.dynamo != "" {
				if url, err := e.dynamoURL(context.Background()); err != nil || url != tc.dynamo {
					t.Errorf("DynamoDB URL %q, %v", url, err)
				}
			}
		})
	}
}
