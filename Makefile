# weir — make targets. `make test` is the one command that runs every test;
# it installs what the tests need by itself.

GO        ?= go
PKGS      := ./...
TESTFLAGS ?= -race -timeout 20m

GOLANGCI_VERSION := v2.6.2
LINT := bin/golangci-lint-$(GOLANGCI_VERSION)

.PHONY: all build test vet lint unit chromium nexmark-check bench bench-peers bench-nexmark fuzz reliability clean

all: build

build:
	$(GO) build -o bin/weir ./cmd/weir

test: vet lint unit nexmark-check

vet:
	$(GO) vet $(PKGS)

# The linter is installed by go install at a pinned version, once.
$(LINT):
	mkdir -p bin/.install
	GOBIN=$(CURDIR)/bin/.install $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv bin/.install/golangci-lint $(LINT)

lint: $(LINT)
	$(LINT) run ./...

# The web UI test (test/e2e) drives a real headless Chromium: Debian's
# chromium package, installed here when missing. With
# WEIR_REQUIRE_CHROMIUM set, a missing browser fails that test instead of
# skipping it. Test artifacts (the UI screenshot) go to test-artifacts/.
unit: chromium
	mkdir -p test-artifacts
	WEIR_REQUIRE_CHROMIUM=1 $(GO) test $(TESTFLAGS) -artifacts -outputdir $(CURDIR)/test-artifacts $(PKGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; }

# The Nexmark queries (bench/nexmark/*.yaml) on a million events each,
# checked against brute-force references; without -race (under it they
# skip, so unit does not run them).
nexmark-check:
	$(GO) test -count 1 ./bench/nexmark/

# Go benchmarks: runtime overhead (ns/event, allocs/event) and the
# end-to-end JSON pipeline (events/s, events/s per CPU second).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/runtime/ ./internal/jsondoc/ ./internal/expr/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 5x ./bench/

# The Nexmark queries with checkpoints on: events/s and events/s per core
# (NEXMARK_EVENTS events per query, default 10000000; not part of make test).
bench-nexmark:
	bash bench/nexmark/run.sh

# Side by side with Benthos v4.38.0 on the same input (not part of make test).
bench-peers:
	bash bench/peers/benthos.sh

# The crash test in its long form: SIGKILL and simulated power loss, 25
# cycles (make test runs 4). Prints acked=N acked_lost=0 dups_at_output=0 cycles=K.
reliability:
	WEIR_RELIABILITY_CYCLES=$${WEIR_RELIABILITY_CYCLES:-25} $(GO) test -count 1 -run 'TestCrashLoop|TestWindowCrashes' -v ./test/reliability/

# Run every fuzzer for a short while.
fuzz:
	@for pkg in ./internal/jsondoc ./internal/expr ./internal/config ./internal/log ./internal/collector; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin

# The collector (http input) side by side with Benthos v4.38.0 as
# http_server, under wrk on this machine (not part of make test).
.PHONY: bench-collector
bench-collector:
	bash bench/peers/collector.sh

# Restart with 1.1 GB of window state (the real binary, SIGKILLed, started
# again): prints restart_ms and the RSS while building, holding and after
# the restart (not part of make test; a 20 MB version is).
.PHONY: bench-restart
bench-restart:
	WEIR_RESTART_STATE_MB=$${WEIR_RESTART_STATE_MB:-1100} WEIR_RESTART_CACHE=$${WEIR_RESTART_CACHE:-64MiB} \
	  $(GO) test -count 1 -timeout 60m -run TestRestartWithLargeWindowState -v ./bench/restart/
