// Command empty is the smallest aws-lambda-go function that serves the same event type as the
// checkout. cmd/bench builds it exactly like the checkout and compares their cold starts: the
// difference is what the checkout's own initialisation costs.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	})
}
