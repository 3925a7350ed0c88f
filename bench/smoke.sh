#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/smoke.sh - keeps the bench tools from rotting (meson test
# `bench_smoke`, suite integration): the quick.sh flow with a tiny load.
# 5 users in a temp dir, stowd started with NOTIFY_SOCKET and awaited on
# READY=1, lmtp-load with 2 sessions, 20 messages, pipelining, then the
# Maildir check, then SIGTERM.  Exit 77 (skip) when not root.
#
# usage: smoke.sh LMTP_LOAD STOWD
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 LMTP_LOAD STOWD" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench_smoke: not root, skipping"
	exit 77
fi
load=$1
stowd=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

dir=$(mktemp -d /tmp/stowd-smoke.XXXXXX)
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	bench_stop_stowd || true
	rm -rf "$dir"
}
trap cleanup EXIT

passwd=$("$here/setup-users.sh" "$dir" 5)
bench_write_stowd_conf "$dir" "$passwd"
bench_start_stowd "$stowd" "$dir/stowd.conf" "$dir"

rc=0
for mode in "-P" "-P -1" ""; do
	# shellcheck disable=SC2086
	if ! "$load" -a "unix:$dir/lmtp" -s 2 -m 20 -b 2000 -r 2 -u 5 \
		-f 'u%d@example.com' $mode -t 60 -V "$dir/home/u%d/Maildir" \
		> "$dir/load.txt"; then
		echo "bench_smoke: lmtp-load ${mode:-(lock-step)} failed:"
		sed 's/^/  /' "$dir/load.txt"
		rc=1
	fi
done
if ! bench_stop_stowd; then
	echo "bench_smoke: stowd did not exit cleanly on SIGTERM"
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	echo "bench_smoke: last lines of the stowd log:"
	tail -n 40 "$dir/stowd.log" | sed 's/^/  /'
else
	echo "bench_smoke: ok"
fi
exit "$rc"
