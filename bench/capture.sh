#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/capture.sh - how fast a change made through IMAP reaches the
# replica (change capture, doc/replication-protocol.md §7.6): stowd A
# replicating to stowd B on loopback (mutual TLS, replication_sync_acks =
# 1), MESSAGES delivered to A over LMTP (lmtp-load) for USERS users and
# found on B; then a private Dovecot IMAP on A's homes, and
# bench/capture-helper.py changes flags through it at RATE changes a
# second (UID STORE, cycling +\Flagged +\Seen -\Flagged -\Seen over the
# messages) and times each change from Dovecot's OK until B's file of that
# message (found by the G<guid> of its name) carries the new letters.
# Prints the settings (capture delay included), the rate achieved, the
# IMAP STORE round trip, p50/p90/p99/max latency in ms and whether every
# change arrived within the timeout.
#
# usage: bench/capture.sh [-n MESSAGES] [-r RATE] [-c CHANGES] [-u USERS]
#                         [-M MODE] [-D DELAY] [-T SECONDS] [-d DIR]
#                         [-B BUILD_DIR] [-k]
#   -n  messages delivered (default 1000), spread over the users
#   -r  changes a second (default 100)
#   -c  changes in all (default: one per message); each message is changed
#       again after MESSAGES/RATE seconds, which should stay above the
#       latency (a later change of a message counts the earlier as arrived)
#   -u  users (default 1); one IMAP connection each, changes in turn
#   -M  delivery_mode of both servers, seteuid or fork (default seteuid)
#   -D  replication_capture_delay of A (default: stowd's, 200ms)
#   -T  a change not on B this many seconds after its OK is late (default 10)
#   -d  where the temporary tree goes; a disk, not tmpfs (default /var/tmp)
#   -B  build directory (default /tmp/build-bench, or $BUILD_DIR)
#   -k  keep the tree (logs, configs, Maildirs)
# Needs root and Dovecot's imap server (Debian: dovecot-imapd).  Exit 0
# when every change arrived in time, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-/tmp/build-bench}
messages=1000
rate=100
changes=0
users=1
mode=seteuid
delay=
timeout=10
base=/var/tmp
keep=no

usage() { sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2; }
while getopts "n:r:c:u:M:D:T:d:B:kh" opt; do
	case $opt in
	n) messages=$OPTARG ;;
	r) rate=$OPTARG ;;
	c) changes=$OPTARG ;;
	u) users=$OPTARG ;;
	M) mode=$OPTARG ;;
	D) delay=$OPTARG ;;
	T) timeout=$OPTARG ;;
	d) base=$OPTARG ;;
	B) build=$OPTARG ;;
	k) keep=yes ;;
	*) usage ;;
	esac
done
case $mode in seteuid | fork) ;; *) usage ;; esac
if [ "$messages" -lt "$users" ]; then
	echo "capture.sh: fewer messages than users" >&2
	exit 2
fi

# shellcheck source=lib.sh
. "$here/lib.sh"
bench_require_root capture.sh
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ]; then
	echo "capture.sh: Dovecot's IMAP server is not installed (dovecot-imapd)" >&2
	exit 1
fi
bench_build "$build" "$src"
load=$build/bench/lmtp-load
stowd=$build/privsep/sup/stowd

dir=$(mktemp -d "$base/stowd-capture.XXXXXX")
A_PID=
B_PID=
imap_conf=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	stop_imap
	STOWD_PID=$A_PID; bench_stop_stowd || true
	STOWD_PID=$B_PID; bench_stop_stowd || true
	if [ "$keep" = yes ]; then
		echo "kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

# Dovecot's master, once started, until it has gone (its children with it)
# shellcheck disable=SC2317  # called from cleanup
stop_imap() {
	local pid i
	[ -n "$imap_conf" ] || return 0
	pid=$(cat "$dir/imap/run/master.pid" 2> /dev/null || true)
	dovecot -c "$imap_conf" stop 2> /dev/null || true
	imap_conf=
	[ -n "$pid" ] || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2> /dev/null || return 0
		sleep 0.1
	done
	echo "capture.sh: Dovecot (pid $pid) did not stop" >&2
}

# the same users (names, uids) with their own homes on A and on B
mkdir -p "$dir/a" "$dir/b"
chmod 0755 "$dir"
# a fresh top directory for the homes (see doc/performance.md, "A trap of
# this file system")
chattr +T "$dir" "$dir/a" "$dir/b" 2> /dev/null || true
passwd_a=$("$here/setup-users.sh" "$dir/a" "$users")
passwd_b=$("$here/setup-users.sh" "$dir/b" "$users")

pki=$dir/pki
bench_make_certs "$pki" a.bench b.bench
port=$(bench_free_port)

bench_write_stowd_conf "$dir/b" "$passwd_b"
{
	echo "server_id = b.bench"
	echo "delivery_mode = $mode"
	echo "replication_listen = tcp:127.0.0.1:$port"
	bench_tls_conf "$pki"
} >> "$dir/b/stowd.conf"
bench_write_stowd_conf "$dir/a" "$passwd_a"
{
	echo "server_id = a.bench"
	echo "delivery_mode = $mode"
	bench_tls_conf "$pki"
	echo "replication_sync_acks = 1"
	echo "replication_sync_timeout = 30s"
	[ -n "$delay" ] && echo "replication_capture_delay = $delay"
	echo "replica b {"
	echo "  address = tcp:127.0.0.1:$port"
	echo "}"
} >> "$dir/a/stowd.conf"
# the delay in effect: A's setting, or stowd's default
delay_used=$("$stowd" -n -c "$dir/a/stowd.conf" |
	awk -F' = ' '$1 == "replication_capture_delay" { print $2 }')
if [ -z "$delay_used" ]; then
	delay_used="$("$stowd" -a -c "$dir/a/stowd.conf" |
		awk -F' = ' '$1 == "replication_capture_delay" { print $2 }') (default)"
fi
case $delay_used in
0 | 0s | 0ms)
	echo "capture.sh: replication_capture_delay = 0 turns capture off" >&2
	exit 2
	;;
esac

bench_start_stowd "$stowd" "$dir/b/stowd.conf" "$dir/b"
B_PID=$STOWD_PID
bench_start_stowd "$stowd" "$dir/a/stowd.conf" "$dir/a"
A_PID=$STOWD_PID

# every 250 waited for B's ack (replication_sync_acks = 1)
"$load" -a "unix:$dir/a/lmtp" -s 4 -m "$messages" -b 2048 -u "$users" \
	-f 'u%d@example.com' -P -t 300 -V "$dir/a/home/u%d/Maildir" > "$dir/load.txt" ||
	true
if [ "$(bench_field "$dir/load.txt" errors)" != 0 ] ||
	[ "$(bench_field "$dir/load.txt" verify)" != ok ]; then
	echo "capture.sh: delivery failed:" >&2
	sed 's/^/  /' "$dir/load.txt" >&2
	exit 1
fi

# B holds the same GUIDs as A (user and G<guid> of each file name)
list_guids() {
	(cd "$1/home" && find . -path '*/Maildir/new/*' -type f |
		sed 's|^\./\([^/]*\)/.*G\([0-9a-f]\{32\}\).*|\1 \2|' | sort)
}
for ((i = 0; ; i++)); do
	if diff -q <(list_guids "$dir/a") <(list_guids "$dir/b") > /dev/null; then
		break
	fi
	if [ "$i" -ge 600 ]; then
		echo "capture.sh: B does not hold A's messages after 60 s" >&2
		exit 1
	fi
	sleep 0.1
done

# a private Dovecot IMAP on A's homes: loopback, plaintext login, one
# password for every user
password=bench
mkdir -p "$dir/imap/run" "$dir/imap/state"
sed "s/^\([^:]*\):x:/\1:{PLAIN}$password:/" "$passwd_a" > "$dir/imap/passwd"
imap_port=$(bench_free_port)
cat > "$dir/imap/dovecot.conf" <<EOF
# written by bench/capture.sh: Dovecot IMAP on stowd A's Maildirs
instance_name = stowd-capture-${dir##*.}
base_dir = $dir/imap/run
state_dir = $dir/imap/state
log_path = $dir/imap/dovecot.log
info_log_path = $dir/imap/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 62000
mail_location = maildir:~/Maildir
# a file renamed behind Dovecot's back is seen at its next sync
maildir_very_dirty_syncs = no
mail_fsync = optimized
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/imap/passwd
}
userdb {
  driver = passwd-file
  args = $dir/imap/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
# dovecot daemonises once its master has set up the listeners
dovecot -c "$dir/imap/dovecot.conf"
imap_conf=$dir/imap/dovecot.conf

settle=$(awk -v d="${delay_used%% *}" 'BEGIN {
	v = d + 0; if (d ~ /ms$/) v /= 1000; else if (d ~ /m$/) v *= 60
	s = 5 * v; if (s < 1) s = 1; print s }')
echo "stowd:           $(git -C "$src" describe --always --dirty 2> /dev/null || echo unknown)"
echo "capture delay:   $delay_used"
echo "delivery mode:   $mode"
echo "messages:        $messages to $users user(s), on A and B"
echo "changes:         $([ "$changes" -gt 0 ] && echo "$changes" || echo "$messages") at $rate/s through Dovecot IMAP on A"
rc=0
python3 "$here/capture-helper.py" --port "$imap_port" --password "$password" \
	--users "$users" --replica-home "$dir/b/home" --rate "$rate" \
	--changes "$changes" --timeout "$timeout" --settle "$settle" \
	> "$dir/capture.txt" || rc=$?
f=$dir/capture.txt
if [ -z "$(bench_field "$f" within_timeout)" ]; then
	echo "capture.sh: the IMAP side failed" >&2
	exit 1
fi
echo "rate achieved:   $(bench_field "$f" rate_achieved)/s  (IMAP STORE p50" \
	"$(bench_field "$f" store_ms_p50) ms, p99 $(bench_field "$f" store_ms_p99) ms)"
echo "latency ms:      p50 $(bench_field "$f" latency_ms_p50)  p90" \
	"$(bench_field "$f" latency_ms_p90)  p99 $(bench_field "$f" latency_ms_p99)" \
	"max $(bench_field "$f" latency_ms_max)"
echo "arrived:         $(bench_field "$f" arrived) of $(bench_field "$f" changes)," \
	"late $(bench_field "$f" late), missing $(bench_field "$f" missing)" \
	"(timeout $(bench_field "$f" timeout_s) s): $(bench_field "$f" within_timeout)"
for who in a b; do
	n=$(grep -c -E ': (warn|err)' "$dir/$who/stowd.log" || true)
	[ "${n:-0}" -gt 0 ] && echo "stowd $who:         $n warning/error lines in its log" >&2
done
exit "$rc"
