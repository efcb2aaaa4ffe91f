# keyship — build, test, generate, lint, bench, demo.
#
#   make demo   run keyship end to end on a throwaway CA (no server)
#   make test   every test tier: unit, conformance, subprocess, real peers
#
# Tools are pinned and cached under $(CACHE); nothing is assumed installed
# beyond Go (tools/install-deps.sh installs Java and OpenSSL when missing).

SHELL     := bash
.SHELLFLAGS := -eu -o pipefail -c
GO        ?= go
CACHE     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/keyship
BUF_VERSION         := v1.75.0
STATICCHECK_VERSION := v0.8.2
BUF         := $(CACHE)/buf-$(BUF_VERSION)/buf
STATICCHECK := $(CACHE)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
FUZZTIME  ?= 10s

.PHONY: all build test generate lint bench demo fuzz deps vault kube check-generate clean

all: build

# Stripped binaries (-s -w; panics still print stack traces): a plugin is
# hashed and exec'd at every host start, so its size is start-up time.
# grpcnotrace (grpc-go's own build option) leaves out golang.org/x/net/trace
# and the html/template it links, which keyship never turns on
# (grpc.EnableTracing): less for the pin to hash at every plugin start, a
# smaller keyship, and their package init.
# CGO_ENABLED=0: static binaries, as Vault's and kubectl's are. They run in
# any container or Mesos sandbox whatever its libc, and each process starts
# without the dynamic loader: a cold ship is 6-7% faster (BenchmarkColdStart,
# static ÷ dynamic). Names resolve with Go's own resolver (/etc/hosts, then
# DNS per /etc/resolv.conf), not the system's NSS modules.
# -buildvcs=auto: `keyship --version` names the commit it was built from
# (whatever GOFLAGS says), when built inside the repository.
BUILD_FLAGS := -trimpath -buildvcs=auto -ldflags='-s -w' -tags grpcnotrace
build:
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o bin/ ./cmd/...

deps:
	@tools/install-deps.sh

# vault builds the pinned Vault server the Vault backend's tests run, into
# $(CACHE)/vault-<version>/ (once: a cold build takes 10-25 minutes and 3-4 GB
# of module downloads on 2 cores; later runs return at once).
vault:
	@tools/vault/build.sh

# kube builds the pinned kube-apiserver the Kubernetes tests run (with
# Debian's etcd, from deps), into $(CACHE)/kube-apiserver-<version>/ (once:
# about a minute of module downloads and 6+ minutes of compiling on 2 cores;
# later runs return at once).
kube:
	@tools/kube/build.sh

# KEYSHIP_REQUIRE_PEERS makes tests fail, not skip, when keytool, javac,
# openssl, curl, the Vault server, etcd or kube-apiserver is missing: `make
# test` provides them.
# -race: the host is concurrent by design (one build per job shared by many
# callers, atomic sandbox swaps, plugin restarts), and the detector costs
# about a minute here.
test: deps build vault kube
	KEYSHIP_REQUIRE_PEERS=1 $(GO) test -race -count=1 ./...

$(BUF):
	GOBIN=$(dir $@) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# generate runs offline: buf with local plugins from go.mod's tool lines, and
# the Python stubs of the example plugin with Debian's protoc and
# grpc_python_plugin (tools/install-deps.sh).
generate: $(BUF)
	$(BUF) generate
	$(BUF) generate --template buf.gen.python.yaml

check-generate: generate
	git diff --exit-code -- proto examples
	test -z "$$(git status --porcelain -- proto examples)"

lint: $(BUF) $(STATICCHECK)
	$(BUF) lint
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

# bench runs every hot-path benchmark BENCH_COUNT times and prints each
# figure's median and spread beside its target (tools/benchreport).
# BenchmarkColdStart runs once, on make build's binaries: it times whole
# processes side by side, 15 interleaved rounds (KEYSHIP_COLD_ROUNDS), and
# prints ratios to a Go hello world, the built-in backend and openssl+keytool;
# with KEYSHIP_BASELINE_BIN=/path/to/other/keyship it times that build in the
# same rounds (before and after, side by side).
BENCH_PKGS  := ./host/loader ./shipper/server ./cmd/keyship ./shipper/fetch ./host/materialize/...
BENCH_COUNT ?= 5
bench: build
	{ $(GO) test -run '^$$' -skip '^BenchmarkColdStart$$' -bench . -benchmem -count $(BENCH_COUNT) $(BENCH_PKGS); \
	  KEYSHIP_BIN=$(CURDIR)/bin/keyship $(GO) test -run '^$$' -bench '^BenchmarkColdStart$$' -benchtime 1x ./host/materialize/benchcmp; } \
	  | $(GO) run ./tools/benchreport

demo: build
	./bin/keyship demo

fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
