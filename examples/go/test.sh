#!/usr/bin/env bash
# Builds libpodvisor and runs the Go package's tests twice: linked against the static library,
# then against the shared one. PODVISOR_SIGNAL_TEST_SECS sets the signal test's length (60).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cargo="${CARGO:-cargo}"
"$cargo" build -p podvisor-ffi --lib --manifest-path "$root/Cargo.toml"
target="$("$cargo" metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
lib="$target/debug"
abi="$(sed -n 's/^#define PODVISOR_ABI_VERSION \([0-9]*\).*/\1/p' "$root/include/podvisor.h")"
# Programs linked with -lpodvisor load the library by its soname.
ln -sf libpodvisor.so "$lib/libpodvisor.so.$abi"
cd "$here"
export GOFLAGS=-mod=mod GOPROXY=off
echo "podvisor go: static libpodvisor.a"
CGO_LDFLAGS="$lib/libpodvisor.a -ldl -lm -lrt -lutil -lgcc_s" go test -count=1 -v ./podvisor/
echo "podvisor go: shared libpodvisor.so"
CGO_LDFLAGS="-L$lib -lpodvisor -Wl,-rpath,$lib" go test -count=1 -v ./podvisor/
