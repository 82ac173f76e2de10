# Every routine task. `make run` and `make test` work on a fresh machine:
# they install what they need first.
SHELL := /bin/bash
GO    ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Code generators and test tools, pinned; installed with `go install` because
# the Buf Schema Registry is not reachable from where this is built.
BUF_VERSION               := v1.75.0
PROTOC_GEN_GO_VERSION     := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION:= v1.6.2
GRPC_GATEWAY_VERSION      := v2.33.0
GRPCURL_VERSION           := v1.9.4
STATICCHECK_VERSION       := v0.8.2

.PHONY: run run-cluster test fuzz build proto proto-check lint tools deps web-deps bench bench-short soak clean

run: ## Run one node with embedded defaults (dev mode).
	$(GO) run ./server/cmd/tertulia serve --dev

# run-cluster: a redis-server on REDIS_PORT and two dev nodes sharing it
# (HTTP 8001/8002, gRPC 9091/9092) with one JWT secret, so a token from one
# node works on the other. Ctrl-C stops all three.
REDIS_PORT ?= 6390
run-cluster: ## Run Redis and two nodes sharing it, dev mode; Ctrl-C stops everything.
	@command -v redis-server >/dev/null || $(MAKE) deps
	$(GO) build -o bin/tertulia ./server/cmd/tertulia
	@set -uo pipefail; \
	secret=$${TERTULIA_JWT_SECRET:-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}; \
	trap 'kill $$(jobs -p) 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; \
	redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save "" --appendonly no --loglevel warning & \
	for i in $$(seq 50); do redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	for n in 1 2; do \
		TERTULIA_JWT_SECRET=$$secret bin/tertulia serve --dev --broker redis \
			--redis-url redis://127.0.0.1:$(REDIS_PORT)/0 --http-addr :800$$n --grpc-addr :909$$n & \
	done; \
	sleep 1; \
	echo; \
	echo "Tertulia cluster: redis-server on 127.0.0.1:$(REDIS_PORT), two nodes sharing it."; \
	echo "  node 1: browser http://localhost:8001/   gRPC localhost:9091"; \
	echo "  node 2: browser http://localhost:8002/   gRPC localhost:9092"; \
	echo "Open one page on each node: what is said on one shows on the other."; \
	echo "  curl -s http://localhost:8001/api/v1/websocket/stats   # counts both nodes"; \
	echo "  curl -s -X POST 'http://localhost:8002/api/v1/websocket/test-token?username=alice'   # valid on both"; \
	echo "Ctrl-C stops everything."; \
	wait

test: deps tools web-deps ## Run every test, with the race detector (browser tests in headless Chromium included).
	$(GO) test -race -count=1 -timeout 20m ./...

# Each fuzz target, as package:Target; its seed corpus is in the package's testdata/fuzz.
FUZZ_TARGETS = bridge:FuzzDecodeFrame bridge:FuzzReadHead server/grpcapi:FuzzCommandFromFrame server/auth:FuzzVerify
FUZZTIME ?= 5s
fuzz: ## Fuzz every target for FUZZTIME each; a crasher is written to testdata/fuzz and fails.
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t"; $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "./$${t%%:*}"; \
	done

build: ## Build bin/tertulia.
	$(GO) build -o bin/tertulia ./server/cmd/tertulia

proto: tools ## Regenerate the code under proto/ from proto/chat/v1.
	buf lint
	buf generate

proto-check: proto ## Fail if the committed generated code is stale.
	git diff --exit-code -- proto

lint: tools ## buf lint, gofmt, go vet, staticcheck.
	buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

tools: $(GOBIN)/buf $(GOBIN)/protoc-gen-go $(GOBIN)/protoc-gen-go-grpc $(GOBIN)/protoc-gen-grpc-gateway $(GOBIN)/protoc-gen-openapiv2 $(GOBIN)/grpcurl $(GOBIN)/staticcheck ## Install the pinned tools.

$(GOBIN)/buf:
	$(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(GOBIN)/protoc-gen-go:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(GOBIN)/protoc-gen-go-grpc:
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(GOBIN)/protoc-gen-grpc-gateway:
	$(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(GOBIN)/protoc-gen-openapiv2:
	$(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
$(GOBIN)/grpcurl:
	$(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(GOBIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

web-deps: ## Install playwright-core for the browser tests (clients/web), from the lock file.
	npm ci --prefix clients/web --no-audit --no-fund

deps: ## Install the system packages the tests use (Debian), if missing.
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

BENCH_PKGS := ./server/hub/ ./server/grpcapi/ $(wildcard ./bridge/)

bench: tools ## Go benchmarks of the fan-out path, then every load scenario pinned (taskset); writes BENCHMARKS.md. Takes ~15 min.
	@mkdir -p bench-out
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count 5 $(BENCH_PKGS) | tee bench-out/go-bench.txt
	clients/load/run.sh full

soak: ## Thousands of connections churning against a fresh server for SOAK_DURATION (default 3m); memory and goroutines must come back near the baseline. Not in CI.
	clients/load/soak.sh

bench-short: tools ## A quick check: the Go benchmarks once, short load scenarios (~2 min).
	@mkdir -p bench-out
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime 100ms $(BENCH_PKGS) | tee bench-out/go-bench-short.txt
	clients/load/run.sh short

clean:
	rm -rf bin
