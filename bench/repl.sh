#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/repl.sh - what synchronous replication costs: the same LMTP load
# against stowd A without replication and with `replication_sync_acks = 1`
# to a replica B on loopback (mutual TLS), interleaved, ROUNDS times;
# prints each run and the medians, and the ratio replicated/unreplicated,
# with the CPU of all stowd processes per message (A's; A's and B's when
# replicating) and how idle the machine was during the run.
# Afterwards every message delivered with replication must be on B exactly
# once (B's new/ holds the same GUIDs as A's).
#
# usage: bench/repl.sh [-m MESSAGES] [-b BYTES] [-u USERS] [-s SESSIONS]
#                      [-n ROUNDS] [-d DIR] [-B BUILD_DIR] [-S SECONDS] [-C] [-E] [-k]
#   -d  where the temporary tree goes; a disk, not tmpfs (default /var/tmp)
#   -S  print `stowctl status` of A this many seconds into each replicated
#       run (what an admin sees of a pair under load)
#   -C  also run A replicating with change capture off
#       (replication_capture_delay = 0): what capture costs deliveries
#   -E  B runs with libeatmydata (Debian: eatmydata): its fsync and
#       fdatasync return at once, so B's commits cost nothing.  Not a
#       setting for use: the ratio it gives bounds what any grouping of
#       the replica's commits could reach on this machine
# Needs root.  Both servers share the disk, the CPU and the users' uids;
# each has its own homes, state_dir and config.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-/tmp/build-bench}
messages=2000
bytes=4096
users=100
sessions=8
rounds=3
base=/var/tmp
keep=no
status_after=
kinds="plain repl"
nosync_b=no

while getopts "m:b:u:s:n:d:B:S:CEkh" opt; do
	case $opt in
	m) messages=$OPTARG ;;
	b) bytes=$OPTARG ;;
	u) users=$OPTARG ;;
	s) sessions=$OPTARG ;;
	n) rounds=$OPTARG ;;
	d) base=$OPTARG ;;
	B) build=$OPTARG ;;
	S) status_after=$OPTARG ;;
	C) kinds="plain repl nocap" ;;
	E) nosync_b=yes ;;
	k) keep=yes ;;
	*) sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done

# shellcheck source=lib.sh
. "$here/lib.sh"
bench_require_root repl.sh
bench_build "$build" "$src"
load=$build/bench/lmtp-load
stowd=$build/privsep/sup/stowd
stowctl=$build/privsep/sup/ctl/stowctl

dir=$(mktemp -d "$base/stowd-repl.XXXXXX")
A_PID=
B_PID=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	STOWD_PID=$A_PID; bench_stop_stowd || true
	STOWD_PID=$B_PID; bench_stop_stowd || true
	if [ "$keep" = yes ]; then
		echo "kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

# users: the same names and uids in three trees with their own homes: P
# (A without replication), A (A replicating) and B (the replica), so that
# A's start-up SYNC never has to copy the unreplicated runs' mail
mkdir -p "$dir/p" "$dir/a" "$dir/b"
chmod 0755 "$dir"
# the Orlov "top directory" flag spreads each tree's homes over other
# block groups, away from inodes deleted by an earlier run (on ext4
# without a journal, creating a file next to them is slow; see
# doc/performance.md, "A trap of this file system")
chattr +T "$dir" "$dir/p" "$dir/a" "$dir/b" 2> /dev/null || true
passwd_p=$("$here/setup-users.sh" "$dir/p" "$users")
passwd_a=$("$here/setup-users.sh" "$dir/a" "$users")
passwd_b=$("$here/setup-users.sh" "$dir/b" "$users")

# one CA, one certificate for both servers (127.0.0.1)
pki=$dir/pki
bench_make_certs "$pki" a.bench b.bench
port=$(bench_free_port)
tls_conf() { bench_tls_conf "$pki"; }

bench_write_stowd_conf "$dir/b" "$passwd_b"
{
	echo "server_id = b.bench"
	echo "replication_listen = tcp:127.0.0.1:$port"
	tls_conf
} >> "$dir/b/stowd.conf"
if [ "$nosync_b" = yes ]; then
	BENCH_PRELOAD=
	for f in /usr/lib/*/libeatmydata.so; do
		[ -e "$f" ] && BENCH_PRELOAD=$f
	done
	if [ -z "$BENCH_PRELOAD" ]; then
		echo "repl.sh: -E needs libeatmydata (Debian: eatmydata)" >&2
		exit 2
	fi
	echo "B: fsync and fdatasync disabled (libeatmydata): not durable"
fi
bench_start_stowd "$stowd" "$dir/b/stowd.conf" "$dir/b"
B_PID=$STOWD_PID
BENCH_PRELOAD=

bench_write_stowd_conf "$dir/p" "$passwd_p"
bench_write_stowd_conf "$dir/a" "$passwd_a"
{
	echo "server_id = a.bench"
	tls_conf
	echo "replication_sync_acks = 1"
	echo "replication_sync_timeout = 30s"
	echo "replica b {"
	echo "  address = tcp:127.0.0.1:$port"
	echo "}"
} >> "$dir/a/stowd.conf"
# the same A with change capture off (no inotify)
{
	cat "$dir/a/stowd.conf"
	echo "replication_capture_delay = 0"
} > "$dir/a/stowd-nocap.conf"

declare -A rate p50 p99 cpu idle
rc=0

hz=$(getconf CLK_TCK)
run_one() {
	local kind=$1 round=$2 out tree conf
	out=$dir/load-$kind-$round.txt
	tree=$dir/a
	[ "$kind" = plain ] && tree=$dir/p
	conf=$tree/stowd.conf
	[ "$kind" = nocap ] && conf=$tree/stowd-nocap.conf
	bench_start_stowd "$stowd" "$conf" "$tree"
	A_PID=$STOWD_PID
	# A compares every mailbox with B when it starts: measure the steady
	# state, after that pass (its end is logged)
	if [ "$kind" != plain ] && ! bench_wait_full_sync "$tree/stowd.log" b; then
		echo "  no full sync with b within 300 s" >&2
		rc=1
	fi
	local sups=("$A_PID") t0 t1 i0 a0 i1 a1
	[ "$kind" != plain ] && sups+=("$B_PID")
	local spid=
	t0=$(bench_stowd_ticks "${sups[@]}"); read -r i0 a0 < <(bench_machine_jiffies)
	if [ "$kind" = repl ] && [ -n "$status_after" ]; then
		( sleep "$status_after"; "$stowctl" -c "$conf" status ) \
			> "$dir/status-$round.txt" 2>&1 &
		spid=$!
	fi
	"$load" -a "unix:$tree/lmtp" -s "$sessions" -m "$messages" -b "$bytes" \
		-u "$users" -f 'u%d@example.com' -P -t 300 \
		-V "$tree/home/u%d/Maildir" > "$out" || rc=1
	t1=$(bench_stowd_ticks "${sups[@]}"); read -r i1 a1 < <(bench_machine_jiffies)
	if [ -n "$spid" ]; then
		wait "$spid" || true
		echo "  stowctl status of a, ${status_after}s into round $round:" >&2
		sed 's/^/    /' "$dir/status-$round.txt" >&2
	fi
	# server CPU per message (all stowd processes, A and B), machine idle %
	echo "cpu_us_per_msg: $(( (t1 - t0) * 1000000 / hz / messages ))" >> "$out"
	echo "idle_percent: $(( (i1 - i0) * 100 / (a1 - a0 > 0 ? a1 - a0 : 1) ))" >> "$out"
	STOWD_PID=$A_PID; bench_stop_stowd || rc=1; A_PID=
	if [ "$(bench_field "$out" errors)" != 0 ] || [ "$(bench_field "$out" verify)" != ok ]; then
		echo "  $kind run $round failed:" >&2
		sed 's/^/    /' "$out" >&2
		rc=1
	fi
	printf '%-6s %-5s %-9s %-8s %-8s %-9s %-6s %s\n' "$kind" "$round" \
		"$(bench_field "$out" messages_per_s)" "$(bench_field "$out" latency_ms_p50)" \
		"$(bench_field "$out" latency_ms_p99)" "$(bench_field "$out" cpu_us_per_msg)" \
		"$(bench_field "$out" idle_percent)" "$(bench_field "$out" verify)"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-6s %-5s %-9s %-8s %-8s %-9s %-6s %s\n' mode round msg/s p50_ms p99_ms \
	cpu_us/msg idle% verify
for r in $(seq 1 "$rounds"); do
	for kind in $kinds; do
		run_one "$kind" "$r"
		out=$dir/load-$kind-$r.txt
		rate[$kind]+=" $(bench_field "$out" messages_per_s)"
		p50[$kind]+=" $(bench_field "$out" latency_ms_p50)"
		p99[$kind]+=" $(bench_field "$out" latency_ms_p99)"
		cpu[$kind]+=" $(bench_field "$out" cpu_us_per_msg)"
		idle[$kind]+=" $(bench_field "$out" idle_percent)"
	done
done

echo
declare -A label=([plain]="no replication     " [repl]="sync_acks = 1      "
	[nocap]="sync_acks, capture off")
declare -A med
for kind in $kinds; do
	# shellcheck disable=SC2086  # the lists are space-separated on purpose
	med[$kind]=$(median ${rate[$kind]})
	# shellcheck disable=SC2086
	printf 'median  %s: %s msg/s  p50 %s ms  p99 %s ms  cpu %s us/msg  idle %s%%\n' \
		"${label[$kind]}" "${med[$kind]}" "$(median ${p50[$kind]})" \
		"$(median ${p99[$kind]})" "$(median ${cpu[$kind]})" "$(median ${idle[$kind]})"
done
awk -v a="${med[repl]}" -v b="${med[plain]}" \
	'BEGIN { printf "ratio   replicated / unreplicated = %.2f\n", a / b }'
if [ -n "${med[nocap]:-}" ]; then
	# shellcheck disable=SC2086
	awk -v a="${med[repl]}" -v b="${med[nocap]}" -v ca="$(median ${cpu[repl]})" \
		-v cb="$(median ${cpu[nocap]})" \
		'BEGIN { printf "ratio   capture on / capture off = %.2f msg/s, %.2f cpu/msg\n", a / b, ca / cb }'
fi

# every replicated message is on B exactly once: the same GUIDs (the
# G<guid> part of each file name) in each user's new/ on A and on B
list_new() {
	(cd "$1/home" && find . -path '*/Maildir/new/*' -type f |
		sed 's|^\./\([^/]*\)/.*G\([0-9a-f]\{32\}\).*|\1 \2|' | sort)
}
if ! diff <(list_new "$dir/a") <(list_new "$dir/b") > "$dir/diff.txt"; then
	echo "replica differs from A: $(grep -c '^>' "$dir/diff.txt") extra," \
		"$(grep -c '^<' "$dir/diff.txt") missing" >&2
	rc=1
else
	echo "replica: $(list_new "$dir/b" | wc -l) messages, the same as A's"
fi
exit "$rc"
