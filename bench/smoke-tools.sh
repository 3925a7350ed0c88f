#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/smoke-tools.sh - keeps every bench tool from rotting (meson test
# `bench_tools_smoke`, suite integration, builds without sanitizers): each
# tool once, as small as it goes, against the build under test, checked
# for its exit status and the line that carries its result.  The figures
# mean nothing at this size; bench_smoke (smoke.sh) covers lmtp-load.
# Exit 77 (skip) when not root.
#
# usage: smoke-tools.sh BUILD_DIR
set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench_tools_smoke: not root, skipping"
	exit 77
fi
build=$1
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/stowd-smoke-tools.XXXXXX)
trap 'rm -rf "$out"' EXIT
rc=0

# run NAME PATTERN CMD...: CMD must exit 0 and print a line matching PATTERN
run() {
	local name=$1 pattern=$2 t0
	shift 2
	t0=$(date +%s)
	if "$@" > "$out/$name.txt" 2>&1 && grep -qE "$pattern" "$out/$name.txt"; then
		echo "bench_tools_smoke: $name ok ($(( $(date +%s) - t0 )) s)"
	else
		echo "bench_tools_smoke: $name FAILED; its output:"
		tail -n 40 "$out/$name.txt" | sed 's/^/  /'
		rc=1
	fi
}

mkdir -p "$out/durable"
run durable-limit 'saves/s|saves_per_s' \
	"$build/bench/durable-limit" -w 2 -t 1 -d "$out/durable"
run capture-cost 'median' "$build/bench/capture-cost" 200 5
run quick.sh '^2 +40 ' "$here/quick.sh" -m 40 -u 5 -s 2 -B "$build"
run repl.sh 'same as A' "$here/repl.sh" -m 60 -u 5 -s 2 -n 1 -B "$build"
run watch-scale.sh 'initial watches set' "$here/watch-scale.sh" -u 20 -f 2 -B "$build"
run capture.sh 'p99' "$here/capture.sh" -n 30 -r 20 -u 2 -T 20 -B "$build"
run scale "doveadm sync -A pass 2" "$here/scale" -u 20 -m 5 -l 100 -D -B "$build"
run compare 'seteuid' "$here/compare" --quick -m 60 -n 1 -S s8 \
	-X "dovecot seteuid" -t 1 -B "$build"
exit "$rc"
