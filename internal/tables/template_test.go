package tables

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Guards on template.yaml that cfn-lint does not give: least-privilege IAM, the authorized route
// and the function settings the build relies on.

func parseYAML(t *testing.T, data string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func projectTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	path, err := TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseYAML(t, string(data))
}

// intrinsic names a short-form (!Ref x) or long-form ({Ref: x}) intrinsic function and its argument.
func intrinsic(n *yaml.Node) (string, *yaml.Node) {
	n = resolve(n)
	if n == nil {
		return "", nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		return name, n
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		if key := n.Content[0].Value; key == "Ref" || strings.HasPrefix(key, "Fn::") {
			return key, resolve(n.Content[1])
		}
	}
	return "", nil
}

// scalars lists every scalar value under n, through lists, mappings and intrinsics.
func scalars(n *yaml.Node) []string {
	n = resolve(n)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, scalars(c)...)
		}
		return out
	case yaml.MappingNode:
		var out []string
		for i := 1; i < len(n.Content); i += 2 {
			out = append(out, scalars(n.Content[i])...)
		}
		return out
	}
	return nil
}

// walk calls fn for every mapping entry in the document, with the path to it.
func walk(n *yaml.Node, path string, fn func(path, key string, value *yaml.Node)) {
	n = resolve(n)
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, path, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walk(c, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i].Value, resolve(n.Content[i+1])
			fn(path, key, value)
			walk(value, path+"."+key, fn)
		}
	}
}

func items(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

// iamProblems finds wildcards and policies whose permissions the template does not show.
func iamProblems(doc *yaml.Node) (problems []string, statements int) {
	walk(doc, "", func(path, key string, value *yaml.Node) {
		switch key {
		case "ManagedPolicyArns":
			problems = append(problems, path+": managed policies are not in the template; write the statements inline")
		case "Statement":
			for i, st := range items(value) {
				statements++
				at := fmt.Sprintf("%s.Statement[%d]", path, i)
				for _, not := range []string{"NotAction", "NotResource"} {
					if field(st, not) != nil {
						problems = append(problems, at+": "+not+" allows everything else")
					}
				}
				for _, a := range scalars(field(st, "Action")) {
					if strings.Contains(a, "*") {
						problems = append(problems, fmt.Sprintf("%s: wildcard action %q", at, a))
					}
				}
				resource := field(st, "Resource")
				if resource == nil && field(st, "Principal") == nil {
					problems = append(problems, at+": no Resource")
				}
				for _, r := range scalars(resource) {
					if strings.Contains(r, "*") {
						problems = append(problems, fmt.Sprintf("%s: wildcard resource %q", at, r))
					}
				}
			}
		}
	})
	// A SAM policy template or a managed policy name would bring statements this scan cannot see.
	for id, fn := range resourcesOfType(doc, "AWS::Serverless::Function") {
		for i, p := range items(field(field(fn, "Properties"), "Policies")) {
			if field(p, "Statement") == nil {
				problems = append(problems, fmt.Sprintf("%s.Policies[%d]: not an inline policy document", id, i))
			}
		}
	}
	return problems, statements
}

func resourcesOfType(doc *yaml.Node, typ string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	resources := field(doc, "Resources")
	if resources == nil {
		return out
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		if r := resolve(resources.Content[i+1]); field(r, "Type") != nil && field(r, "Type").Value == typ {
			out[resources.Content[i].Value] = r
		}
	}
	return out
}

// routeProblems checks that CheckoutFunction serves POST /api/checkout on the template's HttpApi
// behind a JWT authorizer.
func routeProblems(doc *yaml.Node) []string {
	apis := resourcesOfType(doc, "AWS::Serverless::HttpApi")
	fn := resourcesOfType(doc, "AWS::Serverless::Function")["CheckoutFunction"]
	if fn == nil {
		return []string{"no AWS::Serverless::Function CheckoutFunction"}
	}
	events := field(field(fn, "Properties"), "Events")
	var problems []string
	if events == nil || events.Kind != yaml.MappingNode {
		return []string{"CheckoutFunction has no Events"}
	}
	for i := 0; i+1 < len(events.Content); i += 2 {
		name, event := events.Content[i].Value, resolve(events.Content[i+1])
		props := field(event, "Properties")
		if field(event, "Type") == nil || field(event, "Type").Value != "HttpApi" ||
			!strings.EqualFold(scalarOf(field(props, "Method")), "POST") || scalarOf(field(props, "Path")) != "/api/checkout" {
			continue
		}
		fnName, ref := intrinsic(field(props, "ApiId"))
		if fnName != "Ref" || apis[ref.Value] == nil {
			return []string{"event " + name + ": ApiId is not a !Ref to the template's AWS::Serverless::HttpApi"}
		}
		auth := field(field(apis[ref.Value], "Properties"), "Auth")
		authorizer := scalarOf(field(field(props, "Auth"), "Authorizer"))
		if authorizer == "" {
			authorizer = scalarOf(field(auth, "DefaultAuthorizer"))
		}
		if authorizer == "" || authorizer == "NONE" {
			return []string{"event " + name + ": POST /api/checkout has no authorizer"}
		}
		def := field(field(auth, "Authorizers"), authorizer)
		jwt := field(def, "JwtConfiguration")
		if jwt == nil || field(jwt, "issuer") == nil || field(jwt, "audience") == nil {
			problems = append(problems, "authorizer "+authorizer+": not a JWT authorizer with issuer and audience")
		}
		if scalarOf(field(def, "IdentitySource")) != "$request.header.Authorization" {
			problems = append(problems, "authorizer "+authorizer+": IdentitySource is not $request.header.Authorization")
		}
		return problems
	}
	return []string{"CheckoutFunction has no HttpApi event for POST /api/checkout"}
}

func scalarOf(n *yaml.Node) string {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// functionProblems compares CheckoutFunction with the settings the Makefile build and the runtime
// rely on.
func functionProblems(doc *yaml.Node) []string {
	return functionSettingsProblems(doc, "CheckoutFunction")
}

// functionSettingsProblems compares a function with the settings the Makefile build (a
// build-<id> target) and the runtime rely on.
func functionSettingsProblems(doc *yaml.Node, id string) []string {
	fn := resourcesOfType(doc, "AWS::Serverless::Function")[id]
	if fn == nil {
		return []string{"no AWS::Serverless::Function " + id}
	}
	props := field(fn, "Properties")
	var problems []string
	want := func(what string, n *yaml.Node, value string) {
		if n = resolve(n); n == nil || n.Kind != yaml.ScalarNode || n.Value != value || n.Tag != "!!str" {
			problems = append(problems, fmt.Sprintf("%s: %s is not %q", id, what, value))
		}
	}
	want("Runtime", field(props, "Runtime"), "provided.al2023")
	want("Handler", field(props, "Handler"), "bootstrap")
	want("CodeUri", field(props, "CodeUri"), ".")
	want("Tracing", field(props, "Tracing"), "Active")
	want("Metadata.BuildMethod", field(field(fn, "Metadata"), "BuildMethod"), "makefile")
	if arch := resolve(field(props, "Architectures")); arch == nil || arch.Kind != yaml.SequenceNode || len(arch.Content) != 1 {
		problems = append(problems, id+": Architectures is not [arm64]")
	} else {
		want("Architectures[0]", arch.Content[0], "arm64")
	}
	return problems
}

func TestTemplateIAMHasNoWildcard(t *testing.T) {
	problems, statements := iamProblems(projectTemplate(t))
	for _, p := range problems {
		t.Error(p)
	}
	if statements < 5 {
		t.Errorf("found %d IAM statements, want the function's five: is the policy still in the template?", statements)
	}
}

func TestTemplateRoutesCheckoutThroughTheJWTAuthorizer(t *testing.T) {
	for _, p := range routeProblems(projectTemplate(t)) {
		t.Error(p)
	}
}

func TestTemplateCheckoutFunctionSettings(t *testing.T) {
	for _, p := range functionProblems(projectTemplate(t)) {
		t.Error(p)
	}
}

// Every function is built the same way, by a Makefile target of its own.
func TestTemplateEveryFunctionIsBuiltAlike(t *testing.T) {
	doc := projectTemplate(t)
	makefile, err := os.ReadFile(strings.TrimSuffix(mustTemplatePath(t), "template.yaml") + "Makefile")
	if err != nil {
		t.Fatal(err)
	}
	functions := resourcesOfType(doc, "AWS::Serverless::Function")
	if len(functions) < 2 {
		t.Errorf("%d functions, want the checkout and the Stripe webhook", len(functions))
	}
	for id := range functions {
		for _, p := range functionSettingsProblems(doc, id) {
			t.Error(p)
		}
		if !strings.Contains(string(makefile), "\nbuild-"+id+":") {
			t.Errorf("the Makefile has no build-%s target for sam build", id)
		}
	}
}

// The webhook route is on the same HTTP API, without the JWT authorizer: Stripe signs its calls
// instead, and the function verifies the signature.
func TestTemplateRoutesTheWebhookWithoutAuthorizer(t *testing.T) {
	doc := projectTemplate(t)
	fn := resourcesOfType(doc, "AWS::Serverless::Function")["StripeWebhookFunction"]
	event := field(field(field(fn, "Properties"), "Events"), "StripeWebhook")
	props := field(event, "Properties")
	if scalarOf(field(event, "Type")) != "HttpApi" || scalarOf(field(props, "Method")) != "POST" || scalarOf(field(props, "Path")) != "/api/stripe/webhook" {
		t.Fatalf("StripeWebhookFunction has no HttpApi event for POST /api/stripe/webhook")
	}
	if name, ref := intrinsic(field(props, "ApiId")); name != "Ref" || ref.Value != "CheckoutApi" {
		t.Errorf("the webhook is not on the checkout's HTTP API")
	}
	if got := scalarOf(field(field(props, "Auth"), "Authorizer")); got != "NONE" {
		t.Errorf("the webhook's Authorizer is %q, want NONE (the API's default is the JWT authorizer)", got)
	}
}

func mustTemplatePath(t *testing.T) string {
	t.Helper()
	path, err := TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The guards themselves must catch what they are for.
func TestTemplateGuardsCatchMistakes(t *testing.T) {
	const fn = `
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: !Ref Issuer, audience: [a]}
  CheckoutFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Architectures: [arm64]
      Tracing: Active
      Policies: %s
      Events:
        Checkout:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: post, Path: /api/checkout, Auth: {Authorizer: %s}}
`
	good := fmt.Sprintf(fn, `[{Statement: [{Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt T.Arn}]}]`, "Jwt")
	if p, n := iamProblems(parseYAML(t, good)); len(p) != 0 || n != 1 {
		t.Errorf("good policy: problems %v, %d statements", p, n)
	}
	if p := routeProblems(parseYAML(t, good)); len(p) != 0 {
		t.Errorf("good route: %v", p)
	}
	if p := functionProblems(parseYAML(t, good)); len(p) != 0 {
		t.Errorf("good function: %v", p)
	}

	iam := []struct{ name, policies, want string }{
		{"action star", `[{Statement: [{Effect: Allow, Action: "*", Resource: x}]}]`, `wildcard action "*"`},
		{"service star", `[{Statement: {Effect: Allow, Action: ["dynamodb:Get*"], Resource: x}}]`, `wildcard action "dynamodb:Get*"`},
		{"resource star", `[{Statement: [{Effect: Allow, Action: s3:GetObject, Resource: "*"}]}]`, `wildcard resource "*"`},
		{"resource prefix", `[{Statement: [{Effect: Allow, Action: s3:GetObject, Resource: !Sub "arn:${AWS::Partition}:s3:::b/*"}]}]`, "wildcard resource"},
		{"resource in if", `[{Statement: [{Effect: Allow, Action: s3:GetObject, Resource: !If [C, !GetAtt T.Arn, "arn:aws:dynamodb:eu-west-1:1:table/*"]}]}]`, "wildcard resource"},
		{"not action", `[{Statement: [{Effect: Allow, NotAction: s3:GetObject, Resource: x}]}]`, "NotAction"},
		{"policy template", `[{DynamoDBCrudPolicy: {TableName: !Ref T}}]`, "not an inline policy document"},
		{"managed policy", `[AmazonDynamoDBFullAccess]`, "not an inline policy document"},
	}
	for _, tt := range iam {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := iamProblems(parseYAML(t, fmt.Sprintf(fn, tt.policies, "Jwt")))
			if !strings.Contains(strings.Join(p, "\n"), tt.want) {
				t.Errorf("problems %v, want one with %q", p, tt.want)
			}
		})
	}

	if p := routeProblems(parseYAML(t, fmt.Sprintf(fn, "[]", "NONE"))); len(p) == 0 {
		t.Error("a route with Authorizer NONE passed")
	}
	if p := routeProblems(parseYAML(t, strings.Replace(good, "/api/checkout", "/api/cart", 1))); len(p) == 0 {
		t.Error("a function without POST /api/checkout passed")
	}
	if p := routeProblems(parseYAML(t, strings.Replace(good, "JwtConfiguration", "FunctionArn", 1))); len(p) == 0 {
		t.Error("a non-JWT authorizer passed")
	}
	for _, change := range [][2]string{
		{"provided.al2023", "go1.x"}, {"[arm64]", "[x86_64]"}, {"[arm64]", "[arm64, x86_64]"},
		{"Handler: bootstrap", "Handler: main"}, {"CodeUri: .", "CodeUri: functions/checkout"},
		{"Tracing: Active", "Tracing: PassThrough"}, {"makefile", "go1.x"},
	} {
		bad := strings.Replace(good, change[0], change[1], 1)
		if p := functionProblems(parseYAML(t, bad)); len(p) == 0 {
			t.Errorf("%s -> %s passed", change[0], change[1])
		}
	}
}

// The hold releaser runs on a schedule of the template, at most a minute apart, and a run ends
// (its Timeout) before the next one starts: releases stay within two minutes of a hold's end.
func TestTemplateSchedulesTheHoldReleaser(t *testing.T) {
	fn := resourcesOfType(projectTemplate(t), "AWS::Serverless::Function")["ReleaseHoldsFunction"]
	if fn == nil {
		t.Fatal("no AWS::Serverless::Function ReleaseHoldsFunction")
	}
	props := field(fn, "Properties")
	event := field(field(props, "Events"), "EveryMinute")
	if typ := scalarOf(field(event, "Type")); typ != "ScheduleV2" && typ != "Schedule" {
		t.Fatalf("the releaser's event is %q, want a schedule", typ)
	}
	expr := scalarOf(field(field(event, "Properties"), "ScheduleExpression"))
	if expr != "rate(1 minute)" {
		t.Errorf("schedule %q, want rate(1 minute)", expr)
	}
	if timeout, err := strconv.Atoi(scalarOf(field(props, "Timeout"))); err != nil || timeout >= 60 {
		t.Errorf("Timeout %d (%v), want under a minute (the schedule's interval)", timeout, err)
	}
}

// grants returns the resources (as the template writes them: "BookingsTable.Arn" for a GetAtt,
// "Ga4ApiSecrets" for a Ref) on which fn's policies allow action.
func grants(fn *yaml.Node, action string) []string {
	var out []string
	for _, p := range items(field(field(fn, "Properties"), "Policies")) {
		for _, st := range items(field(p, "Statement")) {
			if scalarOf(field(st, "Effect")) == "Allow" && slices.Contains(scalars(field(st, "Action")), action) {
				out = append(out, scalars(field(st, "Resource"))...)
			}
		}
	}
	return out
}

// The webhook and the hold releaser send GA4 purchases: each reads the GA4 API secrets (their
// ARN in its environment, GetSecretValue on exactly that secret), reads bookings by code
// (BatchGetItem), and updates and deletes entries of the holds table.
func TestTemplateLetsTheLifecycleSendPurchases(t *testing.T) {
	doc := projectTemplate(t)
	if resourcesOfType(doc, "AWS::SecretsManager::Secret")["Ga4ApiSecrets"] == nil {
		t.Fatal("no AWS::SecretsManager::Secret Ga4ApiSecrets")
	}
	functions := resourcesOfType(doc, "AWS::Serverless::Function")
	for _, name := range []string{"StripeWebhookFunction", "ReleaseHoldsFunction"} {
		fn := functions[name]
		vars := field(field(field(field(fn, "Properties"), "Environment"), "Variables"), "GA4_API_SECRETS_ARN")
		if vars == nil || vars.Tag != "!Ref" || vars.Value != "Ga4ApiSecrets" {
			t.Errorf("%s: GA4_API_SECRETS_ARN is not !Ref Ga4ApiSecrets", name)
		}
		for _, g := range []struct{ action, resource string }{
			{"secretsmanager:GetSecretValue", "Ga4ApiSecrets"},
			{"dynamodb:BatchGetItem", "BookingsTable.Arn"},
			{"dynamodb:UpdateItem", "HoldsTable.Arn"},
			{"dynamodb:DeleteItem", "HoldsTable.Arn"},
		} {
			if !slices.Contains(grants(fn, g.action), g.resource) {
				t.Errorf("%s may not %s on %s", name, g.action, g.resource)
			}
		}
	}
	// The checkout confirms a checkout it finds paid: with GA4 ids, that keeps (updates) the hold.
	for _, action := range []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} {
		if !slices.Contains(grants(functions["CheckoutFunction"], action), "HoldsTable.Arn") {
			t.Errorf("CheckoutFunction may not %s on HoldsTable.Arn", action)
		}
	}
	if got := grants(functions["CheckoutFunction"], "secretsmanager:GetSecretValue"); slices.Contains(got, "Ga4ApiSecrets") {
		t.Error("the checkout function may read the GA4 API secrets, which it never sends")
	}
}

// The alarms of the specification's section 15, each on the metric it names (the functions' EMF
// metrics in WinkCheckout, Function being the function's name), each with a description that
// points at its runbook section, and every alarm of the template has that section.
func TestTemplateAlarmsWatchTheirMetrics(t *testing.T) {
	doc := projectTemplate(t)
	alarms := resourcesOfType(doc, "AWS::CloudWatch::Alarm")
	// dims: the alarm's dimensions, name=value, as the code publishes them (a dimension set of
	// internal/httpapi/observe.go or the releaser's; Function is the function's !Ref).
	want := map[string]struct{ namespace, metric, function, dims string }{
		"Api5xxAlarm":                 {"AWS/ApiGateway", "5xx", "", "ApiId,Stage=$default"},
		"FunctionErrorsAlarm":         {"AWS/Lambda", "Errors", "CheckoutFunction", "FunctionName"},
		"StripeWebhookErrorsAlarm":    {"AWS/Lambda", "Errors", "StripeWebhookFunction", "FunctionName"},
		"ReleaseHoldsErrorsAlarm":     {"AWS/Lambda", "Errors", "ReleaseHoldsFunction", "FunctionName"},
		"CheckoutThrottlesAlarm":      {"AWS/Lambda", "Throttles", "CheckoutFunction", "FunctionName"},
		"StripeWebhookThrottlesAlarm": {"AWS/Lambda", "Throttles", "StripeWebhookFunction", "FunctionName"},
		"ReleaseHoldsThrottlesAlarm":  {"AWS/Lambda", "Throttles", "ReleaseHoldsFunction", "FunctionName"},
		"CheckoutLatencyAlarm":        {"WinkCheckout", "Duration", "CheckoutFunction", "Function"},
		"WebhookFailuresAlarm":        {"WinkCheckout", "WebhookEvents", "StripeWebhookFunction", "Function,Result=internal"},
		"WebhookBadSignaturesAlarm":   {"WinkCheckout", "WebhookEvents", "StripeWebhookFunction", "Function,Result=bad-signature"},
		"HoldOverdueAlarm":            {"WinkCheckout", "OldestDueHold", "ReleaseHoldsFunction", "Function"},
		"HoldReleaserNotRunningAlarm": {"WinkCheckout", "HoldReleaserRuns", "ReleaseHoldsFunction", "Function"},
		"AutomaticRefundAlarm":        {"WinkCheckout", "Refunds", "StripeWebhookFunction", "Function"},
		"Ga4PurchasesFailingAlarm":    {"WinkCheckout", "PurchasesFailed", "ReleaseHoldsFunction", "Function"},
		"Ga4PurchasesAbandonedAlarm":  {"WinkCheckout", "PurchasesAbandoned", "ReleaseHoldsFunction", "Function"},
	}
	runbook, err := os.ReadFile(filepath.Join(filepath.Dir(mustTemplatePath(t)), "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		a := alarms[id]
		if a == nil {
			t.Errorf("no alarm %s", id)
			continue
		}
		props := field(a, "Properties")
		namespace, metric := scalarOf(field(props, "Namespace")), scalarOf(field(props, "MetricName"))
		dims := field(props, "Dimensions")
		if m := field(props, "Metrics"); m != nil { // metric math: the first metric's
			stat := field(field(items(m)[0], "MetricStat"), "Metric")
			namespace, metric, dims = scalarOf(field(stat, "Namespace")), scalarOf(field(stat, "MetricName")), field(stat, "Dimensions")
		}
		if namespace != w.namespace || metric != w.metric {
			t.Errorf("%s watches %s %s, want %s %s", id, namespace, metric, w.namespace, w.metric)
		}
		if w.function != "" {
			found := false
			for _, d := range items(dims) {
				v := field(d, "Value")
				if n := scalarOf(field(d, "Name")); (n == "Function" || n == "FunctionName") && v.Tag == "!Ref" && v.Value == w.function {
					found = true
				}
			}
			if !found {
				t.Errorf("%s is not on %s's metric", id, w.function)
			}
		}
		var got []string
		for _, d := range items(dims) {
			name, v := scalarOf(field(d, "Name")), field(d, "Value")
			if v.Tag == "!Ref" || v.Tag == "!GetAtt" {
				got = append(got, name)
			} else {
				got = append(got, name+"="+scalarOf(v))
			}
		}
		if strings.Join(got, ",") != w.dims {
			t.Errorf("%s's dimensions are %s, want %s (what the code publishes)", id, strings.Join(got, ","), w.dims)
		}
		if d := scalarOf(field(props, "AlarmDescription")); !strings.Contains(d, "docs/runbook.md") && !strings.Contains(d, "runbook") {
			t.Errorf("%s's description does not point at the runbook: %q", id, d)
		}
		if scalarOf(field(props, "TreatMissingData")) == "" {
			t.Errorf("%s does not say how it treats missing data", id)
		}
	}
	for id := range alarms {
		if !strings.Contains(string(runbook), "\n## "+id+"\n") {
			t.Errorf("docs/runbook.md has no section ## %s", id)
		}
	}
	if resourcesOfType(doc, "AWS::CloudWatch::Dashboard")["Dashboard"] == nil {
		t.Error("no dashboard")
	}
}
