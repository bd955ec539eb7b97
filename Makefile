# Checkout service: one entry point for building, testing and running locally.
# Every tool is installed, pinned, into .tools/ (git-ignored); nothing is needed by hand.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

TOOLS := $(CURDIR)/.tools
export CHECKOUT_TOOLS_DIR := $(TOOLS)

GO_BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
# Every long step says what it does and about how long it takes, then every 20 s that it is still
# at it (.ci/step), so that a first run is never silent.
STEP := $(CURDIR)/.ci/step

.PHONY: test vet build tools clean help

## test: everything CI runs: the tools (installed side by side, while go vet compiles every package
## with -race, as go test needs them), staticcheck, the template checks, a short fuzz run and go test -race.
test:
	@$(MAKE) --no-print-directory -j6 tools $(SAM_STAMP) $(CHECKOV_STAMP) go-vet arm64-compile
	@$(MAKE) --no-print-directory -j4 go-test staticcheck lint-template fuzz-short

# go test leaves a core idle for much of its run (its packages wait on DynamoDB Local and the
# servers they start), so make test runs the checks and the short fuzzing beside it.
go-test:
	@$(STEP) "go test -race over every package" "about 2 to 3 min" go test -race -count=1 -timeout 12m ./...

## help: this list.
help:
	@grep -hE '^## [a-zA-Z_-]+:' $(MAKEFILE_LIST) | sed -E 's/^## ([a-zA-Z_-]+): /  make \1\t/' | expand -t 24

## vet: go vet and staticcheck (installs staticcheck only).
vet: go-vet staticcheck

# go vet with -race: it compiles every package, tests included, the way go test -race does, so
# that go test then finds them built (a plain go vet would compile the whole graph once more).
.PHONY: go-vet staticcheck arm64-compile go-test
go-vet:
	@$(STEP) "go vet, compiling every package with -race for go test" "about 4 min on a fresh 2-core machine, seconds after" go vet -race ./...

# Compiles what sam build needs while the tools install, so that sam build itself only links.
arm64-compile:
	@$(STEP) "compiling the functions for linux/arm64, for sam build" "about 1.5 min on a fresh machine, seconds after" \
		env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath ./functions/...

# staticcheck reads the export data of the packages it checks from go list; with -race in
# GOFLAGS that is the race build go vet -race just made (without it, a whole second compile).
staticcheck: $(STATICCHECK_STAMP)
	@$(STEP) "staticcheck" "about 30 s the first time, 10 s after" env GOFLAGS="-race $${GOFLAGS:-}" $(TOOLS)/bin/staticcheck ./...

## build: stripped linux/arm64 bootstraps in bin/ (the checkout's bin/bootstrap, the others' bin/<function>/bootstrap).
build:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o bin/bootstrap ./functions/checkout
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o bin/stripe-webhook/bootstrap ./functions/stripe-webhook
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o bin/release-holds/bootstrap ./functions/release-holds

# ---- fuzzing ----------------------------------------------------------------
# (owned by the hostile-input work: FuzzHandle in internal/httpapi/hostile, its seed corpus in
# internal/httpapi/hostile/testdata/fuzz/FuzzHandle/, FuzzToMinor in internal/money). A failure leaves
# its input in the package's testdata/fuzz/, where plain `go test` replays it.
.PHONY: fuzz fuzz-short

## fuzz: the long fuzz runs, about 4 minutes for FuzzHandle and 2 for FuzzToMinor here.
fuzz:
	go test -run='^$$' -fuzz='^FuzzHandle$$' -fuzztime=1200000x -timeout=60m ./internal/httpapi/hostile/
	go test -run='^$$' -fuzz='^FuzzToMinor$$' -fuzztime=5000000x -timeout=60m ./internal/money/

## fuzz-short: the same, briefly (about 20 s and 8 s here); part of test.
# The budgets are execution counts, not durations: with a duration, Go 1.26's fuzz
# coordinator can report its own deadline as a failure ("context deadline exceeded",
# golang/go#75804, fixed in Go 1.27) when a worker is busy as the time runs out. A new
# interesting input is minimized for 1000 runs at most (the default, up to 60 s each, stalled
# the short runs for 10 to 15 s at a time).
fuzz-short:
	@$(STEP) "fuzzing the handler briefly" "about 20 s" go test -run='^$$' -fuzz='^FuzzHandle$$' -fuzztime=100000x -fuzzminimizetime=1000x ./internal/httpapi/hostile/
	@$(STEP) "fuzzing the money conversion briefly" "about 10 s" go test -run='^$$' -fuzz='^FuzzToMinor$$' -fuzztime=300000x -fuzzminimizetime=1000x ./internal/money/

# ---- tools (pinned) ---------------------------------------------------------
# (owned by the local-stack work: DynamoDB Local, stripe-mock, moto, staticcheck)
DYNAMODB_LOCAL_VERSION := 2.6.1
STRIPE_MOCK_VERSION    := v0.203.0
MOTO_VERSION           := 5.2.5
STATICCHECK_VERSION    := v0.8.2
TOXIPROXY_VERSION      := v2.5.0
MVN_DEPENDENCY_PLUGIN  := org.apache.maven.plugins:maven-dependency-plugin:3.9.0

DYNAMODB_LOCAL_DIR   := $(TOOLS)/dynamodb-local
STRIPE_MOCK_FIXTURES := $(TOOLS)/stripe-mock/fixtures3.json
MOTO_VENV            := $(TOOLS)/moto-venv
# Each stamp names its version and lives beside what it stands for: a second run is a
# no-op, a version bump (or a deleted tool) reinstalls that tool only.
DYNAMODB_LOCAL_STAMP := $(DYNAMODB_LOCAL_DIR)/.installed-$(DYNAMODB_LOCAL_VERSION)
STRIPE_MOCK_STAMP    := $(TOOLS)/bin/.installed-stripe-mock-$(STRIPE_MOCK_VERSION)
MOTO_STAMP           := $(MOTO_VENV)/.installed-moto-$(MOTO_VERSION)
STATICCHECK_STAMP    := $(TOOLS)/bin/.installed-staticcheck-$(STATICCHECK_VERSION)
TOXIPROXY_STAMP      := $(TOOLS)/bin/.installed-toxiproxy-$(TOXIPROXY_VERSION)

## tools: install the pinned local stack and linters into .tools/ (idempotent).
tools: local-tools $(MOTO_STAMP) $(STATICCHECK_STAMP) $(TOXIPROXY_STAMP)

## local-tools: only what `make run` needs (DynamoDB Local, stripe-mock), so that it starts sooner.
.PHONY: local-tools
local-tools: $(DYNAMODB_LOCAL_STAMP) $(STRIPE_MOCK_STAMP) $(STRIPE_MOCK_FIXTURES)

# DynamoDB Local from Maven Central: DynamoDBLocal.jar plus its runtime jars and the
# sqlite4java native library in DynamoDBLocal_lib/ (Windows/macOS natives left out).
$(DYNAMODB_LOCAL_STAMP): .ci/dynamodb-local/pom.xml
	rm -rf $(DYNAMODB_LOCAL_DIR) $(DYNAMODB_LOCAL_DIR).tmp
	$(STEP) "installing DynamoDB Local $(DYNAMODB_LOCAL_VERSION) from Maven Central" "about 40 s" \
	mvn -B -q -f .ci/dynamodb-local/pom.xml -Ddynamodb.local.version=$(DYNAMODB_LOCAL_VERSION) \
		$(MVN_DEPENDENCY_PLUGIN):copy-dependencies -DincludeScope=runtime -DexcludeTypes=dll,dylib \
		-DoutputDirectory=$(DYNAMODB_LOCAL_DIR).tmp/DynamoDBLocal_lib
	mv $(DYNAMODB_LOCAL_DIR).tmp/DynamoDBLocal_lib/DynamoDBLocal-$(DYNAMODB_LOCAL_VERSION).jar \
		$(DYNAMODB_LOCAL_DIR).tmp/DynamoDBLocal.jar
	cd $(DYNAMODB_LOCAL_DIR).tmp/DynamoDBLocal_lib && for so in libsqlite4java-linux-*.so; do \
		mv "$$so" "$${so%-[0-9]*.so}.so"; done
	touch $(DYNAMODB_LOCAL_DIR).tmp/$(notdir $@)
	mv $(DYNAMODB_LOCAL_DIR).tmp $(DYNAMODB_LOCAL_DIR)

$(STRIPE_MOCK_STAMP):
	rm -f $(TOOLS)/bin/.installed-stripe-mock-*
	$(STEP) "installing stripe-mock $(STRIPE_MOCK_VERSION)" "about 2 min" \
		env GOBIN=$(TOOLS)/bin go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
	touch $@

# stripe-mock is stateless and its ephemeral_key fixture has no secret: add one to the
# module's own fixtures (started with -fixtures $(STRIPE_MOCK_FIXTURES)). The secret is
# localstack.StripeEphemeralKeySecret in internal/localstack.
$(STRIPE_MOCK_FIXTURES): $(STRIPE_MOCK_STAMP)
	mkdir -p $(@D)
	dir=$$(cd / && go mod download -json github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION) | \
		python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'); \
	python3 -c 'import json, sys; f = json.load(open(sys.argv[1])); \
		f["resources"]["ephemeral_key"]["secret"] = "ek_test_localstack"; \
		json.dump(f, open(sys.argv[2], "w"), indent=2)' \
		"$$dir/embedded/openapi/fixtures3.json" $@.tmp
	mv $@.tmp $@

# moto's server, used as a local Secrets Manager; transitive deps pinned by constraints.
$(MOTO_STAMP): .ci/moto-constraints.txt
	rm -rf $(MOTO_VENV)
	python3 -m venv $(MOTO_VENV)
	$(STEP) "installing moto $(MOTO_VERSION) (a local Secrets Manager) into .tools/moto-venv" "1 to 4 min" \
		$(MOTO_VENV)/bin/python -m pip install --quiet --no-compile --disable-pip-version-check --no-input \
		-c .ci/moto-constraints.txt 'moto[server]==$(MOTO_VERSION)'
	touch $@

$(STATICCHECK_STAMP):
	rm -f $(TOOLS)/bin/.installed-staticcheck-*
	$(STEP) "installing staticcheck $(STATICCHECK_VERSION)" "about 2 min" \
		env GOBIN=$(TOOLS)/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	touch $@

# Toxiproxy's server, for the fault-injection tests (internal/faults). `go install` names it
# after its directory, server: install into a private GOBIN and move it to toxiproxy-server.
# The version is stamped in as upstream's release builds do, so GET /version reports it.
$(TOXIPROXY_STAMP):
	rm -rf $(TOOLS)/bin/.installed-toxiproxy-* $(TOOLS)/toxiproxy.tmp
	$(STEP) "installing Toxiproxy $(TOXIPROXY_VERSION)" "about 2 min" \
		env GOBIN=$(TOOLS)/toxiproxy.tmp go install \
		-ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$(TOXIPROXY_VERSION:v%=%)" \
		github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	mkdir -p $(@D)
	mv $(TOOLS)/toxiproxy.tmp/server $(TOOLS)/bin/toxiproxy-server
	rm -rf $(TOOLS)/toxiproxy.tmp
	touch $@

# ---- template (SAM) ---------------------------------------------------------
# (owned by the template work: venv with aws-sam-cli and cfn-lint, venv with checkov, lint-template)
.PHONY: lint-template build-CheckoutFunction build-StripeWebhookFunction build-ReleaseHoldsFunction

SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
SAM_PYTHON ?= python3
SAM_VENV := $(TOOLS)/sam-venv
# The stamp names both versions: bumping one rebuilds the venv, otherwise it is a no-op.
SAM_STAMP := $(SAM_VENV)/.installed-aws-sam-cli-$(SAM_CLI_VERSION)-cfn-lint-$(CFN_LINT_VERSION)
# Linting and building need a region but neither credentials nor Docker.
SAM_REGION ?= eu-west-1
SAM_ENV := AWS_REGION=$(SAM_REGION) AWS_DEFAULT_REGION=$(SAM_REGION) SAM_CLI_TELEMETRY=0
SAM_FUNCTIONS := CheckoutFunction StripeWebhookFunction ReleaseHoldsFunction

# Their transitive dependencies are pinned by .ci/sam-constraints.txt: a new release of one of
# them cannot break a fresh clone's `make test`.
$(SAM_STAMP): .ci/sam-constraints.txt
	rm -rf $(SAM_VENV)
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(STEP) "installing aws-sam-cli $(SAM_CLI_VERSION) and cfn-lint $(CFN_LINT_VERSION) into .tools/sam-venv" "1 to 4 min" \
		$(SAM_VENV)/bin/python -m pip install --quiet --no-compile --disable-pip-version-check --no-input \
		-c .ci/sam-constraints.txt aws-sam-cli==$(SAM_CLI_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	touch $@

# checkov has a venv of its own: installed beside aws-sam-cli, it would downgrade boto3 below the
# SAM pins. Its transitive dependencies are pinned by .ci/checkov-constraints.txt.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(TOOLS)/checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)
# Local only: no API key (so no platform upload), --skip-download (no policies, guidelines or
# mappings fetched from the Bridgecrew/Prisma Cloud platform), and no PyPI version check.
CHECKOV_ENV := env -u BC_API_KEY CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

$(CHECKOV_STAMP): .ci/checkov-constraints.txt
	rm -rf $(CHECKOV_VENV)
	$(SAM_PYTHON) -m venv $(CHECKOV_VENV)
	$(STEP) "installing checkov $(CHECKOV_VERSION) into .tools/checkov-venv" "1 to 4 min" \
		$(CHECKOV_VENV)/bin/python -m pip install --quiet --no-compile --disable-pip-version-check --no-input \
		-c .ci/checkov-constraints.txt checkov==$(CHECKOV_VERSION)
	touch $@

## lint-template: cfn-lint (errors, warnings and informational findings all fail), sam validate --lint,
## checkov (no failed check), and sam build, which must yield an arm64 ELF bootstrap for every function.
# checkov reads the SAM resources as they are (AWS::Serverless::*, Globals applied; it does not run
# the transform): each skip is in the resource's Metadata (checkov: skip:) with its reason.
lint-template: $(SAM_STAMP) $(CHECKOV_STAMP)
	@$(STEP) "cfn-lint template.yaml" "about 15 s" env $(SAM_ENV) $(SAM_VENV)/bin/cfn-lint --regions $(SAM_REGION) \
		--include-checks I --non-zero-exit-code informational -- template.yaml
	@$(STEP) "sam validate --lint" "about 15 s" \
		env $(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint --template-file template.yaml --region $(SAM_REGION)
	@$(STEP) "checkov template.yaml" "about 10 s" $(CHECKOV_ENV) $(CHECKOV_VENV)/bin/checkov --framework cloudformation \
		--file template.yaml --quiet --compact --skip-download
	rm -rf .aws-sam/build
	@$(STEP) "sam build (the three arm64 bootstraps)" "about 2 min on a fresh machine, seconds after" \
		env $(SAM_ENV) $(SAM_VENV)/bin/sam build --build-in-source --template-file template.yaml
	@for fn in $(SAM_FUNCTIONS); do bootstrap=.aws-sam/build/$$fn/bootstrap; \
		hdr=$$(od -An -tx1 -N20 $$bootstrap | tr -d ' \n'); \
		if [[ $${hdr:0:12} != 7f454c460201 || $${hdr:36:4} != b700 ]]; then \
			echo "$$bootstrap is not a 64-bit little-endian aarch64 ELF (header $$hdr)" >&2; exit 1; \
		fi; \
		echo "$$bootstrap: ELF 64-bit LSB, ARM aarch64"; \
	done

# Called by sam build (BuildMethod: makefile) with ARTIFACTS_DIR set.
build-CheckoutFunction:
	: "$${ARTIFACTS_DIR:?is set by sam build}"
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/checkout

build-StripeWebhookFunction:
	: "$${ARTIFACTS_DIR:?is set by sam build}"
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/stripe-webhook

build-ReleaseHoldsFunction:
	: "$${ARTIFACTS_DIR:?is set by sam build}"
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/release-holds

clean:
	rm -rf bin .aws-sam

# ---- local server -----------------------------------------------------------
# (owned by the local-server work: cmd/local, docs/local.md)
.PHONY: run seed pay invoke

## run: the checkout on http://127.0.0.1:3000 over DynamoDB Local and stripe-mock, with sample
## data; settings in docs/local.md. Built then exec'd, so that Ctrl-C reaches the server itself
## (`go run` would stand in between).
run: local-tools
	go build -o bin/local ./cmd/local
	exec bin/local

# The cart that `make seed` adds: make seed OWNER=traveller-bob ITEMS=3 CURRENCY=JPY
OWNER    ?= traveller-alice
ITEMS    ?= 2
CURRENCY ?= EUR

## seed: add a cart, under a new id, to the DynamoDB Local of a running `make run`.
# The values reach the command through the environment, so that any text (OWNER="it's") stays whole.
seed: export SEED_OWNER := $(OWNER)
seed: export SEED_ITEMS := $(ITEMS)
seed: export SEED_CURRENCY := $(CURRENCY)
seed:
	go run ./cmd/local seed -owner "$$SEED_OWNER" -items "$$SEED_ITEMS" -currency "$$SEED_CURRENCY"

# The cart that `make pay` pays, and the event Stripe sends: make pay CART=cart-alice-lisbon EVENT=succeeded
CART  ?=
EVENT ?= succeeded

## pay: play Stripe for a checked-out cart of a running `make run`: a signed payment_intent event
## (succeeded by default; processing, payment_failed, canceled) to its webhook.
pay: export PAY_CART := $(CART)
pay: export PAY_EVENT := $(EVENT)
pay:
	go run ./cmd/local pay -cart "$$PAY_CART" -event "$$PAY_EVENT"

# The event that `make invoke` sends, and the function (default: the event's): docs/local.md.
FUNCTION ?=

## invoke: `sam local invoke` without Docker: a function under SAM's own Lambda emulator, with
## events/env.json, against a running `make run`: make invoke EVENT=events/checkout-success.json [FUNCTION=...]
invoke: export INVOKE_EVENT := $(if $(filter command line environment,$(origin EVENT)),$(EVENT),events/checkout-success.json)
invoke: export INVOKE_FUNCTION := $(FUNCTION)
invoke: $(SAM_STAMP)
	go run ./cmd/invoke -event "$$INVOKE_EVENT" -function "$$INVOKE_FUNCTION"

# ---- benchmarks -------------------------------------------------------------
# (owned by the performance work: cmd/bench, docs/performance.md)
.PHONY: bench

# Extra flags for cmd/bench, e.g. make bench BENCH_FLAGS='-iterations 1000'
BENCH_FLAGS ?=

## bench: the hot-path Go benchmarks, then cmd/bench: latency over the dependency floor, the
## serial variant, throughput, allocations, peak RSS, bootstrap size and cold start, as one
## table with PASS/FAIL per performance budget (fails if one fails). docs/performance.md.
bench: tools build
	go test -run='^$$' -bench=. -benchmem ./internal/httpapi/ ./internal/money/
	go run ./cmd/bench $(BENCH_FLAGS)
