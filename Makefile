# Strata's two entry points: `make run` runs a broker, `make test` runs every
# test, installing what the tests need first. CI runs `make test` (.ci/run).

GO      ?= go
GOFLAGS ?=
# Debian packages the tests need beyond Go: the Kafka clients the end-to-end
# tests (cmd/strata/e2e) drive the built broker with, and ZooKeeper for the
# cluster tests (coordination/zk/zktest runs it). Installed by `make deps`
# when missing.
DEBS    := python3-kafka kcat python3-confluent-kafka zookeeper

.PHONY: test deps vet test-race fuzz bench-engines bench-broker run build proto

test: deps vet test-race

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(GO) version

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Every package under the race detector: the storage layer has one appender
# racing many readers, the broker a goroutine or two per connection.
test-race:
	$(GO) test -count=1 -race -timeout 20m ./...

# Fuzz every decoder of untrusted bytes, FUZZTIME each: segment recovery,
# batch framing, whole requests against a running broker, and the tiered
# engine's cold objects.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRecover$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./engines/segment/
	$(GO) test -run '^$$' -fuzz '^FuzzCheckBatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./broker/
	$(GO) test -run '^$$' -fuzz '^FuzzColdFrame$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./engines/tiered/

# Engines side by side with the raw-file baseline (see bench/README.md).
BENCHTIME ?= 1s
bench-engines:
	$(GO) test -run '^$$' -bench '^BenchmarkEngine$$' -benchtime $(BENCHTIME) -benchmem ./bench/

# The whole broker beside franz-go's kfake, each its own process (see
# bench/README.md): BROKER_BENCHTIME=10s make bench-broker for longer runs.
BROKER_BENCHTIME ?= 2s
bench-broker:
	$(GO) test -run '^$$' -bench '^BenchmarkBroker$$' -benchtime $(BROKER_BENCHTIME) -benchmem ./bench/

# A broker on 127.0.0.1:9092 with embedded coordination, logs in
# /tmp/strata-logs (override with ARGS="--override log.dirs=...").
run:
	$(GO) run ./cmd/strata serve $(ARGS)

build:
	$(GO) build -o bin/strata ./cmd/strata

# Regenerate the plugin service's Go code (plugins/enginepb) from its
# .proto: protoc from Debian's protobuf-compiler (installed with apt-get
# if missing) and the Go generators at the versions the committed code
# names, installed into bin/.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
proto:
	@command -v protoc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler; }
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH=$(CURDIR)/bin:$$PATH protoc -I plugins/enginepb --go_out=paths=source_relative:plugins/enginepb --go-grpc_out=paths=source_relative:plugins/enginepb plugins/enginepb/engine.proto
