#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/quick.sh - quick end-to-end throughput check of stowd:
#   build lmtp-load and stowd, create USERS test users in a temp dir, write a
#   stowd config, start `stowd -F` and wait for READY=1, run lmtp-load for
#   each session count (pipelining on, MESSAGES messages of BYTES bytes,
#   recipients round-robin over the users), verify every Maildir, print a
#   table, stop stowd and remove the temp dir.
#
# usage: bench/quick.sh [-m MESSAGES] [-b BYTES] [-u USERS] [-s "1 8"]
#                       [-r RCPTS] [-B BUILD_DIR] [-k]
#   -B  meson build dir (default $BUILD_DIR or /tmp/build-bench; created
#       with -Dtests=disabled if missing)
#   -k  keep the temp dir (for looking at logs and Maildirs)
# Needs root (users' homes are chowned; stowd drops privileges).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-/tmp/build-bench}
messages=2000
bytes=4096
users=100
rcpts=1
sessions="1 8"
keep=no

while getopts "m:b:u:s:r:B:kh" opt; do
	case $opt in
	m) messages=$OPTARG ;;
	b) bytes=$OPTARG ;;
	u) users=$OPTARG ;;
	s) sessions=$OPTARG ;;
	r) rcpts=$OPTARG ;;
	B) build=$OPTARG ;;
	k) keep=yes ;;
	*) sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done

# shellcheck source=lib.sh
. "$here/lib.sh"
bench_require_root quick.sh
bench_build "$build" "$src"
load=$build/bench/lmtp-load
stowd=$build/privsep/sup/stowd

dir=$(mktemp -d /tmp/stowd-quick.XXXXXX)
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	bench_stop_stowd || true
	if [ "$keep" = yes ]; then
		echo "kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

passwd=$("$here/setup-users.sh" "$dir" "$users")
bench_write_stowd_conf "$dir" "$passwd"
bench_start_stowd "$stowd" "$dir/stowd.conf" "$dir"

rc=0
printf '%-8s %-8s %-9s %-9s %-8s %-8s %-8s %-6s %s\n' \
	sessions messages msg/s deliv/s p50_ms p99_ms max_ms cpu% files
for s in $sessions; do
	out=$dir/load-$s.txt
	"$load" -a "unix:$dir/lmtp" -s "$s" -m "$messages" -b "$bytes" \
		-r "$rcpts" -u "$users" -f 'u%d@example.com' -P -t 300 \
		-V "$dir/home/u%d/Maildir" > "$out" || rc=1
	printf '%-8s %-8s %-9s %-9s %-8s %-8s %-8s %-6s %s\n' "$s" \
		"$(bench_field "$out" messages)" \
		"$(bench_field "$out" messages_per_s)" \
		"$(bench_field "$out" deliveries_per_s)" \
		"$(bench_field "$out" latency_ms_p50)" \
		"$(bench_field "$out" latency_ms_p99)" \
		"$(bench_field "$out" latency_ms_max)" \
		"$(bench_field "$out" cpu_percent)" \
		"$(bench_field "$out" verify)"
	if [ "$(bench_field "$out" errors)" != 0 ] ||
	   [ "$(bench_field "$out" verify)" != ok ]; then
		echo "  run with $s sessions failed:" >&2
		sed 's/^/    /' "$out" >&2
	fi
done

bench_stop_stowd || { echo "quick.sh: stowd exited with an error" >&2; rc=1; }
exit "$rc"
