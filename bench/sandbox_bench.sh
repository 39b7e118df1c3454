#!/usr/bin/env bash
# Builds and runs bench/sandbox_bench.c against a build dir's invoker core.
#   bench/sandbox_bench.sh [build-dir] [n]     (needs root)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
n=${2:-200}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/sandbox_bench" "$top/bench/sandbox_bench.c" -I"$top/invoker" -I"$top/common" \
	-I"$build/proto" "$build/invoker/libgust_invoker_core.a" "$build/common/libgust.a" \
	-lseccomp -ljansson -lprotobuf-c -lnng -lcurl -lhiredis -lpthread
cc -O2 -s -o "$out/echo_action" "$top/bench/sandbox_echo_action.c"
GUST_RUNTIME_DIR="$top/invoker/runtimes" GUST_NATIVE_LAUNCHER="$build/invoker/gust-native-launcher" \
	GUST_BENCH_NATIVE_ACTION="$out/echo_action" "$out/sandbox_bench" "$n"
