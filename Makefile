# OpenDUS make targets: the interface for developers and CI alike.
GO      ?= go
BIN     := bin
PKGS    := ./...
# The cabinet conformance corpus; tests skip it when absent (CI sets it).
OPENDUS_CAB_CORPUS ?= $(abspath ../shared/testdata/cab)
export OPENDUS_CAB_CORPUS

.PHONY: all build test check fmt vet lint drift deps bench fuzz generate demo screenshots clean

all: build

# VERSION is what devsvc version prints: the nearest tag and commit, with
# -dirty for uncommitted changes; the build info adds the commit and time.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/opendus/opendus/devsvc.version=$(VERSION)

build:
	$(GO) build -buildvcs=auto -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/... ./device-sim

## deps: install the Debian packages the tests use (cabextract, gcab, curl, slapd, ...)
deps:
	@bash scripts/install-deps.sh

## test: the README's test command; race detector on.
test: deps build
	$(GO) test -race -timeout 40m -count=1 $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint:
	$(GO) tool staticcheck $(PKGS)

## drift: go mod tidy and go generate leave the tree unchanged.
drift:
	@bash scripts/drift.sh

## check: everything CI checks.
check: fmt vet lint drift test

bench: build
	@bash scripts/bench.sh

fuzz:
	@bash scripts/fuzz.sh

## demo: the service and 1,000 simulated devices through two days, on loopback.
demo: build
	@bash scripts/demo.sh

generate:
	$(GO) generate $(PKGS)

## screenshots: the console's main pages, from its browser test, into docs/screenshots.
screenshots: deps
	OPENDUS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./e2e

clean:
	rm -rf $(BIN)
