#!/usr/bin/env bash
# Builds the C and Go host agents (examples/c, examples/go/hostagent) against both the static
# and the shared libpodvisor, and runs each build:
#   1. with an embedded cluster (master, controllers and node agent in the agent's process);
#   2. against the three masters of a `podvisor cluster up` cluster, as beside `make demo`.
# Each run applies a pod, waits until it runs, prints its logs and deletes it; any failure
# fails the script. Needs PODVISOR_AGENT (the static agent) and the busybox image in the cache
# (examples/images/build-busybox); `make examples` provides both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cargo="${CARGO:-cargo}"
: "${PODVISOR_AGENT:?PODVISOR_AGENT must name the static podvisor agent (vmm/agent/build-static)}"

"$cargo" build -q -p podvisor-ffi --lib --manifest-path "$root/Cargo.toml"
"$cargo" build -q -p podvisor-cli --bin podvisor --manifest-path "$root/Cargo.toml"
target="$("$cargo" metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
lib="$target/debug"
abi="$(sed -n 's/^#define PODVISOR_ABI_VERSION \([0-9]*\).*/\1/p' "$root/include/podvisor.h")"
# Programs linked with -lpodvisor load the library by its soname.
ln -sf libpodvisor.so "$lib/libpodvisor.so.$abi"
out="$lib/host-agents"
mkdir -p "$out"

static_libs=(-ldl -lm -lrt -lutil -lgcc_s -pthread)
echo "host agents: building the C agent (static, shared) and the Go agent (static, shared)"
cc -std=c11 -Wall -Wextra -Werror -O1 -I "$root/include" "$here/c/host_agent.c" \
    "$lib/libpodvisor.a" "${static_libs[@]}" -o "$out/host_agent_c_static"
cc -std=c11 -Wall -Wextra -Werror -O1 -I "$root/include" "$here/c/host_agent.c" \
    -L "$lib" -lpodvisor -Wl,-rpath,"$lib" -o "$out/host_agent_c_shared"
(
    cd "$here/go"
    export GOFLAGS=-mod=mod GOPROXY=off
    CGO_LDFLAGS="$lib/libpodvisor.a ${static_libs[*]}" go build -o "$out/hostagent_go_static" ./hostagent
    CGO_LDFLAGS="-L$lib -lpodvisor -Wl,-rpath,$lib" go build -o "$out/hostagent_go_shared" ./hostagent
)
if ldd "$out/host_agent_c_static" | grep -q libpodvisor; then
    echo "host agents: host_agent_c_static loads a shared libpodvisor" >&2
    exit 1
fi
ldd "$out/host_agent_c_shared" | grep -q "libpodvisor.so.$abi" || {
    echo "host agents: host_agent_c_shared does not load libpodvisor.so.$abi" >&2
    exit 1
}

run() {
    echo
    echo "===== $*"
    "$@"
}

for agent in host_agent_c_static host_agent_c_shared; do
    run "$out/$agent" --timeout 60 2>&1 || { echo "host agents: $agent (embedded) failed" >&2; exit 1; }
done
for agent in hostagent_go_static hostagent_go_shared; do
    run "$out/$agent" --timeout 60s 2>&1 || { echo "host agents: $agent (embedded) failed" >&2; exit 1; }
done

# A local three-master cluster on its own ports, home and bridge, so a running demo is left
# alone.
podvisor="$lib/podvisor"
home="$(mktemp -d /tmp/podvisor-host-agents-XXXXXX)"
base_port=${HOST_AGENTS_BASE_PORT:-24790}
cleanup() {
    PODVISOR_HOME="$home" "$podvisor" cluster down >/dev/null 2>&1 || true
    rm -rf "$home"
}
trap cleanup EXIT
echo
echo "===== podvisor cluster up (home $home, ports from $base_port)"
PODVISOR_HOME="$home" "$podvisor" cluster up --base-port "$base_port" --nodes 1 \
    --bridge pvbr7 --pod-gateway 10.87.0.1/24 --runtime-class namespaces
masters="127.0.0.1:$base_port,127.0.0.1:$((base_port + 1)),127.0.0.1:$((base_port + 2))"
run "$out/host_agent_c_shared" --masters "$masters" --timeout 60 2>&1 \
    || { echo "host agents: host_agent_c_shared (cluster) failed" >&2; exit 1; }
run "$out/hostagent_go_static" --masters "$masters" --timeout 60s 2>&1 \
    || { echo "host agents: hostagent_go_static (cluster) failed" >&2; exit 1; }
echo
echo "host agents: all runs passed"
