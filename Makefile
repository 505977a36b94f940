# OpenDUS make targets: the interface for developers and CI alike.
GO      ?= go
BIN     := bin
PKGS    := ./...
# The cabinet conformance corpus; tests skip it when absent (CI sets it).
OPENDUS_CAB_CORPUS ?= $(abspath ../shared/testdata/cab)
export OPENDUS_CAB_CORPUS

.PHONY: all build test check fmt vet lint drift deps bench fuzz generate demo screenshots clean deb deb-test install uninstall

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

## deb: the Debian package bin/opendus_VERSION_ARCH.deb (nfpm; see packaging/)
deb:
	@VERSION=$(VERSION) bash scripts/deb.sh

## deb-test: build the package, lintian it, install, init, serve, upgrade and
## remove it for real (root; skips without, fails in CI). .ci/run runs it.
deb-test:
	@VERSION=$(VERSION) bash scripts/deb-test.sh

# make install: the binaries, the systemd unit, man pages and completion
# under PREFIX (DESTDIR for staging). The unit's ExecStart follows PREFIX.
PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(BIN)/devsvc $(BIN)/device-sim $(DESTDIR)$(PREFIX)/bin/
	sed 's,/usr/bin/devsvc,$(PREFIX)/bin/devsvc,' packaging/opendus.service >$(DESTDIR)$(UNITDIR)/opendus.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/opendus.service
	$(BIN)/devsvc man >$(DESTDIR)$(PREFIX)/share/man/man1/devsvc.1
	$(BIN)/device-sim man >$(DESTDIR)$(PREFIX)/share/man/man1/device-sim.1
	$(BIN)/devsvc completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/devsvc
	$(BIN)/devsvc completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devsvc
	$(BIN)/devsvc completion fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/devsvc.fish
	@echo "Installed under $(DESTDIR)$(PREFIX). For the service: create the opendus user and"
	@echo "/var/lib/opendus (docs/operations.md), then systemctl daemon-reload; systemctl enable --now opendus."

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/devsvc $(DESTDIR)$(PREFIX)/bin/device-sim $(DESTDIR)$(UNITDIR)/opendus.service \
		$(DESTDIR)$(PREFIX)/share/man/man1/devsvc.1 $(DESTDIR)$(PREFIX)/share/man/man1/device-sim.1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/devsvc $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devsvc \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/devsvc.fish

## screenshots: the console's main pages, from its browser tests, into docs/screenshots.
screenshots: deps
	OPENDUS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestConsole(InBrowser|RolloutInBrowser)$$' ./e2e

clean:
	rm -rf $(BIN) build
