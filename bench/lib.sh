# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# bench/lib.sh - shell helpers shared by quick.sh and smoke.sh (and later
# comparison scripts); source it from bash:
#   bench_write_stowd_conf DIR PASSWD      -> DIR/stowd.conf
#   bench_start_stowd STOWD CONF DIR       starts `stowd -F -c CONF` and
#                                          waits for its READY=1 (systemd
#                                          notify protocol); sets STOWD_PID
#                                          and BENCH_READY_MS (start to
#                                          READY=1)
#   bench_stop_stowd                       SIGTERM + wait
#   bench_start_dovecot DIR PASSWD         private Dovecot LMTP from
#                                          dovecot.conf.in; socket DIR/run/lmtp
#   bench_stop_dovecot DIR
#   bench_field FILE KEY                   value of "KEY: value" in FILE
#   bench_require_root NAME                exit 1 unless root
#   bench_build BUILD SRC                  meson setup (-Dtests=disabled) if
#                                          missing; build lmtp-load, stowd
#                                          and stowctl
#   bench_make_certs DIR [ID...]           a CA and one certificate for
#                                          127.0.0.1 and the server ids ID
#                                          (server and client) in DIR:
#                                          ca.pem, srv.pem, srv.key
#   bench_tls_conf DIR                     the replication_tls_* lines for
#                                          the certificates in DIR
#   bench_free_port                        a free TCP port on 127.0.0.1
#   bench_stowd_ticks SUP_PID...           CPU ticks of those stowd trees
#   bench_machine_jiffies                  idle and total jiffies
#   bench_wait_full_sync LOG REPLICA       until LOG says the full sync
#                                          with REPLICA is done (300 s)
# Readiness is always a signal (a datagram, a pid file), never a sleep.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-30}
STOWD_PID=
BENCH_READY_MS=

# Waits for READY=1 on the datagram socket $1; the watched pid arrives on
# stdin after "bound" was printed.  Gives up when that process exits or
# after $2 seconds.
bench_notify_py='
import os, select, socket, sys, time
path, limit = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("bound", flush=True)
pid = int(sys.stdin.readline())
end = time.monotonic() + limit
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], 0.2)
    if r:
        msg = s.recv(4096).decode("utf-8", "replace")
        if "READY=1" in msg.split("\n"):
            print("ready", flush=True)
            sys.exit(0)
        continue
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = "X"
    if state in ("Z", "X"):
        print("died", flush=True)
        sys.exit(1)
print("timeout", flush=True)
sys.exit(1)
'

bench_write_stowd_conf() {
	local dir=$1 passwd=$2
	mkdir -p "$dir/state"
	chmod 0700 "$dir/state"
	cat > "$dir/stowd.conf" <<EOF
# written by bench/lib.sh for a benchmark run
lmtp_listen = unix:$dir/lmtp
userdb = passwd-file:$passwd
mail_location = maildir:~/Maildir
run_user = nobody
first_valid_uid = 62000
log_debug = no
state_dir = $dir/state
control_socket = $dir/control
EOF
}

bench_start_stowd() {
	local stowd=$1 conf=$2 dir=$3 line='' npid nin nout t0
	local sock=$dir/notify
	rm -f "$sock"
	coproc BENCH_NOTIFY { exec python3 -c "$bench_notify_py" "$sock" "$BENCH_READY_TIMEOUT"; }
	# bash drops the coproc variables once the helper is reaped: keep copies
	npid=$BENCH_NOTIFY_PID
	exec {nin}<&"${BENCH_NOTIFY[0]}" {nout}>&"${BENCH_NOTIFY[1]}"
	if ! read -r -t "$BENCH_READY_TIMEOUT" line <&"$nin" || [ "$line" != bound ]; then
		echo "bench: notify socket helper failed" >&2
		exec {nin}<&- {nout}>&-
		return 1
	fi
	# BENCH_PRELOAD: a library preloaded into this stowd (repl.sh -E)
	NOTIFY_SOCKET=$sock env ${BENCH_PRELOAD:+LD_PRELOAD=$BENCH_PRELOAD} \
		"$stowd" -F -c "$conf" > "$dir/stowd.log" 2>&1 {nin}<&- {nout}>&- &
	STOWD_PID=$!
	t0=$EPOCHREALTIME
	echo "$STOWD_PID" >&"$nout"
	read -r -t "$((BENCH_READY_TIMEOUT + 5))" line <&"$nin" || line=timeout
	# EPOCHREALTIME has six decimals; its separator follows the locale
	# shellcheck disable=SC2034  # read by the scripts that source this file
	BENCH_READY_MS=$(( (${EPOCHREALTIME//[.,]/} - ${t0//[.,]/}) / 1000 ))
	exec {nin}<&- {nout}>&-
	wait "$npid" 2> /dev/null || true
	if [ "$line" != ready ]; then
		echo "bench: stowd not ready ($line); log:" >&2
		sed 's/^/  stowd: /' "$dir/stowd.log" >&2
		if [ "$line" = died ]; then
			wait "$STOWD_PID" 2> /dev/null || true
			STOWD_PID=
		fi
		return 1
	fi
}

bench_stop_stowd() {
	local rc=0
	[ -n "$STOWD_PID" ] || return 0
	kill -TERM "$STOWD_PID" 2> /dev/null || true
	wait "$STOWD_PID" || rc=$?
	STOWD_PID=
	return "$rc"
}

bench_start_dovecot() {
	local dir=$1 passwd=$2
	mkdir -p "$dir/run" "$dir/state"
	sed -e "s|@DIR@|$dir|g" -e "s|@PASSWD@|$passwd|g" -e "s|@FIRST_UID@|62000|g" \
		"$BENCH_LIB_DIR/dovecot.conf.in" > "$dir/dovecot.conf"
	# dovecot daemonises only after its master is set up; the listener
	# exists when it returns
	dovecot -c "$dir/dovecot.conf" || return 1
	[ -S "$dir/run/lmtp" ]
}

bench_stop_dovecot() {
	local dir=$1
	[ -f "$dir/dovecot.conf" ] || return 0
	dovecot -c "$dir/dovecot.conf" stop 2> /dev/null || true
}

bench_field() {
	awk -v k="$2" 'index($0, k ": ") == 1 { print substr($0, length(k) + 3); exit }' "$1"
}

bench_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$1: must run as root" >&2
		exit 1
	fi
}

bench_build() {
	local build=$1 src=$2
	if [ ! -f "$build/build.ninja" ]; then
		meson setup -Dtests=disabled "$build" "$src" > /dev/null
	fi
	ninja -C "$build" bench/lmtp-load privsep/sup/stowd privsep/sup/ctl/stowctl > /dev/null
}

# A replica accepts a peer's HELLO only for a server id its certificate
# names (a DNS subjectAltName): every server of a bench shares this one.
bench_make_certs() {
	local pki=$1 san=IP:127.0.0.1 id
	shift
	for id in "$@"; do
		san+=",DNS:$id"
	done
	mkdir -p "$pki"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=stowd bench CA" \
		-keyout "$pki/ca.key" -out "$pki/ca.pem" > /dev/null 2>&1 || return 1
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$pki/srv.key" -out "$pki/srv.csr" > /dev/null 2>&1 || return 1
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$pki/ext"
	openssl x509 -req -in "$pki/srv.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
		-CAcreateserial -days 2 -extfile "$pki/ext" -out "$pki/srv.pem" \
		> /dev/null 2>&1 || return 1
	chmod 0600 "$pki"/*.key
}

bench_tls_conf() {
	cat <<EOF
replication_tls_cert = $1/srv.pem
replication_tls_key = $1/srv.key
replication_tls_ca = $1/ca.pem
EOF
}

bench_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks of the stowd instances whose supervisor pids are given: each
# supervisor's own and its reaped children's (utime, stime, cutime,
# cstime), and every live descendant's own (utime, stime).  Process titles
# no longer hold the config path, so the tree is found by parent pid.
bench_stowd_ticks() {
	local pids p f t=0
	pids=$(ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
		{ parent[$1] = $2; all[NR] = $1 }
		END {
			for (i = 1; i <= NR; i++) {
				p = all[i]; q = p
				for (d = 0; d < 8 && q != "" && !(q in want); d++) q = parent[q]
				if (q in want) print p, (p in want) ? 1 : 0
			}
		}')
	while read -r p root; do
		[ -n "$p" ] || continue
		f=$(cut -d')' -f2 "/proc/$p/stat" 2> /dev/null) || continue
		# fields after "(comm)": state is $1, utime $12, stime $13,
		# cutime $14, cstime $15
		if [ "$root" = 1 ]; then
			t=$((t + $(echo "$f" | awk '{ print $12 + $13 + $14 + $15 }')))
		else
			t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
		fi
	done <<< "$pids"
	echo "$t"
}
# idle and total jiffies of the whole machine
bench_machine_jiffies() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# Waits (up to 300 s) until the log $1, written anew by each start, says
# the full sync with replica $2 is done.
bench_wait_full_sync() {
	local i
	for ((i = 0; i < 3000; i++)); do
		grep -q "sync: replica=$2 full sync done" "$1" 2> /dev/null && return 0
		sleep 0.1
	done
	return 1
}
