# podvisor's entry points. `make demo` runs the main job, `make test` every test and check,
# `make bench` the benchmarks. Each installs what it needs first (idempotent apt-get).

CARGO ?= cargo
# Guest kernels and other fetched artifacts live outside the tree.
export PODVISOR_CACHE ?= $(HOME)/.cache/podvisor

.PHONY: all deps kernel build lint test test-layering test-unit test-vmm test-store test-sandbox \
        test-cluster test-ffi header test-hw demo demo-vm bench bench-sandbox bench-vmm bench-store \
        crash-loop-long \
        examples

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

test: lint test-layering test-vmm test-store test-sandbox test-cluster test-ffi test-hw test-cli

# The crates stand apart: dependencies point one way, the VMM and the store embed alone.
test-layering: deps
	$(CARGO) test -p podvisor-tests

# Tiny guests, bad input and the Debian kernel's early boot (serially: PVM boots are slow).
test-vmm: kernel
	$(CARGO) test -p podvisor-vmm

# The store's tests start three-master clusters, in-process and as processes; two at a time
# keeps them within a 2-core machine's means. The crash loop runs CRASH_CYCLES (30) cycles.
test-store: deps
	$(CARGO) test -p podvisor-store -- --test-threads=2

# The long crash loop: 500 cycles of kill -9 and restart of one master under load.
crash-loop-long: deps
	CRASH_CYCLES=500 $(CARGO) test --release -p podvisor-store --test crash_loop -- --nocapture

# Put throughput, latency and failover of the store against a three-member etcd.
bench-store: deps
	$(CARGO) bench -p podvisor-store --features bench-etcd --bench store_put

# The sandbox tests run real containers with the static agent (the one the guest image holds).
test-sandbox: deps
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && \
	    PODVISOR_AGENT=$$agent $(CARGO) test -p podvisor-agent -p podvisor-sandbox

# Pod start latency against crun, on the same rootfs in the same run.
bench-sandbox: deps
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && \
	    PODVISOR_AGENT=$$agent $(CARGO) bench -p podvisor-sandbox --bench pod_start

# The control plane against a real three-master store, with node agents running namespace
# sandboxes of the static agent, in this process and as `podvisor node-agent` processes.
test-cluster: deps
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && \
	    $(CARGO) build -q -p podvisor-cli && \
	    PODVISOR_AGENT=$$agent PODVISOR_BIN=$${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug/podvisor \
	    $(CARGO) test -p podvisor-cluster

# The C ABI: the header and symbol-list checks, the C tests under AddressSanitizer against the
# static and shared library, and the Go package's tests; the sandbox tests run busybox
# containers with the static agent.
test-ffi: deps
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && image=$$(examples/images/build-busybox) && \
	    PODVISOR_AGENT=$$agent PODVISOR_TEST_IMAGE=$$image $(CARGO) test -p podvisor-ffi && \
	    PODVISOR_AGENT=$$agent PODVISOR_TEST_IMAGE=$$image CARGO=$(CARGO) examples/go/test.sh && \
	    PODVISOR_AGENT=$$agent CARGO=$(CARGO) examples/host-agents.sh

# The C and Go host agents, built against the static and the shared libpodvisor, each run with
# an embedded cluster and against a local three-master cluster.
examples: deps
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && examples/images/build-busybox >/dev/null && \
	    PODVISOR_AGENT=$$agent CARGO=$(CARGO) examples/host-agents.sh

# Regenerates include/podvisor.h and appends new symbols to ffi/abi/symbols.txt.
header:
	PODVISOR_BLESS=1 $(CARGO) test -p podvisor-ffi --test header -- --test-threads=1
	PODVISOR_BLESS=1 $(CARGO) test -p podvisor-ffi --test header -- --test-threads=1

# Tests that need hardware-assisted KVM run only where the host probe says so; elsewhere this
# prints why they did not run.
test-hw: kernel
	@if $(CARGO) run -q -p podvisor-examples --example host-probe; then \
	    $(CARGO) test -p podvisor-vmm --test debian_kernel -- --ignored; \
	else \
	    echo "not run: debian_kernel_boots_to_userspace_and_powers_off (needs hardware-assisted KVM, see the probe above)"; \
	fi

# The main job on this machine: three masters, two node agents, the example manifests, a
# leader killed, everything removed (examples/demo.sh says what each step shows).
demo: kernel
	$(CARGO) build -p podvisor-cli
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && \
	    image=$$(examples/images/build-busybox) && echo "podvisor: image $$image, agent $$agent" && \
	    PODVISOR=$(or $(CARGO_TARGET_DIR),target)/debug/podvisor PODVISOR_AGENT=$$agent \
	    examples/demo.sh

# The CLI: every verb with good and bad input, against a local cluster, and the demo asserted
# step by step. Clusters share the pod subnet, so the tests run one at a time.
test-cli: kernel
	agent=$$(CARGO=$(CARGO) vmm/agent/build-static) && examples/images/build-busybox >/dev/null && \
	    PODVISOR_AGENT=$$agent $(CARGO) test -p podvisor-cli -- --test-threads=1

# Boots the cached kernel and streams its console; on PVM it stops at the timeout.
DEMO_VM_TIMEOUT ?= 120
demo-vm: kernel
	$(CARGO) run -q -p podvisor-examples --example boot -- \
	    --kernel $(PODVISOR_CACHE)/kernel/vmlinux --vcpus 2 --memory-mib 256 \
	    --cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1" \
	    --timeout $(DEMO_VM_TIMEOUT)

# VMM start, overhead and create rate against QEMU microvm on the same tiny guest.
bench-vmm: kernel
	$(CARGO) bench -p podvisor-vmm --bench vmm

bench: kernel bench-sandbox bench-store bench-vmm
