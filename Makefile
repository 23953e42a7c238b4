# The two commands a new machine needs:
#   make demo   build and run `ccevents serve --demo`
#   make test   install test dependencies and run the whole suite with -race
GO ?= go
FUZZTIME ?= 10s

.PHONY: demo build test unit fuzz vet bench generate test-clients

demo:
	$(GO) run ./cmd/ccevents serve --demo

# The version and commit `ccevents version` and /healthz report.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo "(devel)")
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS = -X github.com/ccevents/ccevents/internal/buildinfo.version=$(VERSION) -X github.com/ccevents/ccevents/internal/buildinfo.commit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ccevents ./cmd/ccevents

test: vet
	./scripts/install-test-deps.sh
	./scripts/install-client-deps.sh
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) test-clients
	$(MAKE) fuzz

unit:
	$(GO) test -short -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# The TypeScript and Python clients (clients/), each against a real
# `ccevents serve` its tests start; install-client-deps.sh brings Node, npm
# and Debian's Python packages, and the npm dependencies from the lock file.
test-clients:
	./scripts/install-client-deps.sh
	cd clients/typescript && npm test
	cd clients/python && /usr/bin/python3 -m pytest -q -p no:cacheprovider

# Each fuzz target runs for FUZZTIME on top of its checked-in seed corpus.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./internal/... | tee bench.out

generate:
	$(GO) generate ./...

# The soak test (internal/soak): the real binary for minutes under thousands
# of churning connections, hostile clients, slow readers and restarts. It
# runs without -race, which caps a process at 8,128 goroutines. A longer run:
#   CCEVENTS_SOAK_DURATION=10m CCEVENTS_SOAK_CONNS=5000 go test -count=1 -run TestSoak -timeout 30m ./internal/soak
soak:
	$(GO) test -count=1 -v -run TestSoak -timeout 10m ./internal/soak
