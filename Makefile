# Strata's two entry points: `make run` runs a broker, `make test` runs every
# test, installing what the tests need first. CI runs `make test` (.ci/run).

GO      ?= go
GOFLAGS ?=
# Debian packages the tests need beyond Go (end-to-end clients, ZooKeeper):
# installed by `make deps` when missing. None yet for the storage layer.
DEBS    :=

# Packages whose tests run under the race detector: the storage layer, where
# one appender races many readers.
RACE_PKGS := ./engine/... ./engines/...

.PHONY: test deps vet test-race test-rest fuzz bench-engines run

test: deps vet test-race test-rest

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(GO) version

vet:
	$(GO) vet ./...

test-race:
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)

# Everything outside the storage layer (the race run above already covers it).
test-rest:
	@pkgs=$$($(GO) list ./... | grep -v -e '/engine$$' -e '/engine/' -e '/engines/'); \
	if [ -n "$$pkgs" ]; then $(GO) test -count=1 -timeout 20m $$pkgs; fi

# Fuzz segment recovery: FUZZTIME=5m make fuzz
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRecover$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./engines/segment/

# Engines side by side with the raw-file baseline (see bench/README.md).
BENCHTIME ?= 1s
bench-engines:
	$(GO) test -run '^$$' -bench '^BenchmarkEngine$$' -benchtime $(BENCHTIME) -benchmem ./bench/

run:
	@echo "The broker (strata serve) lands next; the storage layer is in engine/ and engines/."
