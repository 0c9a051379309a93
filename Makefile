# AutoCrane's build. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Builds (once, then cached outside the repo) kube-apiserver, etcd,
# kube-controller-manager and kubectl, and prints their directory.
ASSETS = $(shell hack/envtest-assets.sh)
GOTEST_FLAGS ?= -race -count=1

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: assets
assets: ## Build or reuse the control-plane binaries; print their directory.
	@hack/envtest-assets.sh

.PHONY: build
build: ## Build every program into bin/.
	$(GO) build -trimpath -o bin/ ./cmd/...

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: test
# E2E=auto runs make e2e after the other tests when running as root (it
# starts a real cluster on the machine); E2E=1 requires it, E2E=0 leaves it out.
E2E ?= auto

test: lint ## Lint, then every test: envtest against a real kube-apiserver, then (as root) make e2e on a real cluster.
	@assets=$$(hack/envtest-assets.sh); \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS=$$assets $(GO) test $(GOTEST_FLAGS) ./...
	@if [ "$(E2E)" = 1 ] || { [ "$(E2E)" = auto ] && [ "$$(id -u)" = 0 ]; }; then \
	  $(MAKE) --no-print-directory e2e; \
	else \
	  echo "make test: not running make e2e (E2E=$(E2E); it needs root to start a cluster)"; \
	fi

.PHONY: demo
demo: ## Show injection, validation, the watchdog and data stories: on a real cluster as root, else a control plane (DEMO_FLAGS=--cluster=yes|no, --exit).
	@assets=$$(hack/envtest-assets.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) run ./hack/demo $(DEMO_FLAGS)

# Every package with a fuzz target.
FUZZ_PACKAGES ?= $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
# Each target runs a fixed number of inputs, under a generous timeout: Go's
# fuzzer does not report an input that hangs a worker when -fuzztime is a
# duration, but a run that cannot reach its count hits the timeout, fails
# and keeps the input. Neither number is a performance budget.
FUZZEXECS ?= 50000
FUZZTIMEOUT ?= 10m

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZEXECS inputs each; crashers and hangs land in testdata/fuzz/.
	@for pkg in $(FUZZ_PACKAGES); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target ($(FUZZEXECS) inputs)"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZEXECS)x -fuzzminimizetime 5s -timeout $(FUZZTIMEOUT) || exit 1; \
	  done; \
	done

.PHONY: bench
bench: ## Run the benchmarks (see docs/benchmarks.md).
	$(GO) test -run '^$$' -bench . -benchmem -count 6 -cpu 1 ./webhook/ ./injector/ ./sidecars/datarepository/ ./sidecars/datadeployer/...

.PHONY: update-golden
update-golden: ## Rewrite golden files and generated docs after an intended change.
	UPDATE_GOLDEN=1 $(GO) test ./spec/ ./injector/ ./cli/ ./cmd/... ./hack/cluster/ ./hack/imagebuild/

# A real single-node cluster for the end-to-end tests (docs/cluster.md).
# cluster-up and e2e need root; they change host networking and undo it.
.PHONY: images
images: ## Build the AutoCrane image and the pause image into _output/images.
	$(GO) run ./hack/imagebuild $(IMAGEBUILD_FLAGS)

.PHONY: cluster-up
cluster-up: images ## Start a real single-node cluster (root); prints its KUBECONFIG.
	hack/cluster-up $(CLUSTER_FLAGS)

.PHONY: cluster-down
cluster-down: ## Stop the cluster and restore the machine.
	hack/cluster-down $(CLUSTER_FLAGS)

E2E_TIMEOUT ?= 30m
.PHONY: e2e
e2e: ## End-to-end tests on a real cluster, started and stopped unless E2E_KUBECONFIG is set (root).
	$(GO) test -tags e2e -count=1 -v -timeout $(E2E_TIMEOUT) ./test/e2e/ $(E2E_FLAGS)
