# Checkout service: one entry point for building, testing and running locally.
# Every tool is installed, pinned, into .tools/ (git-ignored); nothing is needed by hand.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

TOOLS := $(CURDIR)/.tools
export CHECKOUT_TOOLS_DIR := $(TOOLS)

GO_BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: test unit vet build tools clean

## test: everything CI runs (tools installed first).
test: tools vet
	go test -race -count=1 -timeout 12m ./...

## vet: go vet and staticcheck.
vet: tools
	go vet ./...
	$(TOOLS)/bin/staticcheck ./...

## build: stripped linux/arm64 bootstrap in bin/.
build:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GO_BUILD_FLAGS) -o bin/bootstrap ./functions/checkout

# ---- tools (pinned) ---------------------------------------------------------
# (owned by the local-stack work: DynamoDB Local, stripe-mock, moto, staticcheck)

# ---- template (SAM) ---------------------------------------------------------
# (owned by the template work: venv with aws-sam-cli and cfn-lint, lint-template)

clean:
	rm -rf bin .aws-sam
