#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/watch-scale.sh - what watching many users costs (change capture,
# doc/replication-protocol.md §7.6): USERS users, each with a Maildir++
# tree of FOLDERS folders (Maildir/{cur,new,tmp} and
# .FolderK/{cur,new,tmp,maildirfolder}, owned by the user), and one stowd
# with a replica configured (not reachable; capture is on all the same).
# Prints the time to READY=1 (it must not grow with the users: the
# watches are added after it), repl-hook's "initial watches set" line
# (users, watches, time of the first pass), the watches on repl-hook's
# inotify descriptor as the kernel lists them, VmRSS and Pss of repl-hook
# and of the supervisor (at READY and after the first pass) and of all
# stowd processes, and the kernel memory of the inotify marks (slab
# inotify_inode_mark; its per-inode connectors, fsnotify_mark_connector).
#
# usage: bench/watch-scale.sh [-u USERS] [-f FOLDERS] [-M MODE] [-d DIR]
#                             [-B BUILD_DIR] [-k]
#   -u  users (default 10000)
#   -f  folders per user besides INBOX (default 10); each user costs
#       1 + 2 * (FOLDERS + 1) watches
#   -M  delivery_mode, seteuid or fork (default seteuid): the writers add
#       the watches
#   -d  where the temporary tree goes; a disk, not tmpfs (default /var/tmp)
#   -B  build directory (default /tmp/build-bench, or $BUILD_DIR)
#   -k  keep the tree
# Needs root.  Raises fs.inotify.max_user_watches (a per-user limit;
# run_user owns every watch) when it is below the watches needed plus a
# margin, and sets the old value back on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-/tmp/build-bench}
users=10000
folders=10
mode=seteuid
base=/var/tmp
keep=no

usage() { sed -n '2,/^set /p' "$0" | sed '$d' >&2; exit 2; }
while getopts "u:f:M:d:B:kh" opt; do
	case $opt in
	u) users=$OPTARG ;;
	f) folders=$OPTARG ;;
	M) mode=$OPTARG ;;
	d) base=$OPTARG ;;
	B) build=$OPTARG ;;
	k) keep=yes ;;
	*) usage ;;
	esac
done
case $mode in seteuid | fork) ;; *) usage ;; esac
case $users$folders in *[!0-9]*) usage ;; esac
if [ "$users" -lt 1 ] || [ "$users" -gt 100000 ] || [ "$folders" -gt 1000 ]; then
	echo "watch-scale.sh: USERS must be 1..100000, FOLDERS 0..1000" >&2
	exit 2
fi

# shellcheck source=lib.sh
. "$here/lib.sh"
bench_require_root watch-scale.sh
bench_build "$build" "$src"
stowd=$build/privsep/sup/stowd

sysctl_path=/proc/sys/fs/inotify/max_user_watches
sysctl_old=
sysctl_set=
dir=$(mktemp -d "$base/stowd-watch.XXXXXX")
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	bench_stop_stowd || true
	# the old limit again, unless someone changed it meanwhile
	if [ -n "$sysctl_set" ] && [ "$(cat "$sysctl_path")" = "$sysctl_set" ]; then
		echo "$sysctl_old" > "$sysctl_path"
	fi
	if [ "$keep" = yes ]; then
		echo "kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

watches=$((users * (1 + 2 * (folders + 1))))
need=$((watches + watches / 10 + 1000))
sysctl_old=$(cat "$sysctl_path")
if [ "$sysctl_old" -lt "$need" ]; then
	echo "$need" > "$sysctl_path"
	sysctl_set=$need
fi

# the users and their trees: the home as root, the rest as the user (so
# nothing needs a chown), in one process
chmod 0755 "$dir"
chattr +T "$dir" 2> /dev/null || true
t0=$EPOCHREALTIME
python3 - "$dir" "$users" "$folders" <<'EOF'
import os
import sys

root, users, folders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
home = os.path.join(root, "home")
os.mkdir(home, 0o755)
os.chmod(home, 0o755)
os.umask(0o077)
with open(os.path.join(root, "passwd"), "w") as pw:
    for i in range(1, users + 1):
        uid = 62000 + i
        h = "%s/u%d" % (home, i)
        os.mkdir(h, 0o700)
        os.chown(h, uid, uid)
        pw.write("u%d:x:%d:%d::%s::\n" % (i, uid, uid, h))
        os.setegid(uid)
        os.seteuid(uid)
        try:
            md = h + "/Maildir"
            for d in ("", "/cur", "/new", "/tmp"):
                os.mkdir(md + d, 0o700)
            for k in range(1, folders + 1):
                f = "%s/.Folder%d" % (md, k)
                for d in ("", "/cur", "/new", "/tmp"):
                    os.mkdir(f + d, 0o700)
                os.close(os.open(f + "/maildirfolder",
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        finally:
            os.seteuid(0)
            os.setegid(0)
os.chmod(os.path.join(root, "passwd"), 0o644)
EOF
t1=$EPOCHREALTIME
tree_ms=$(( (${t1//[.,]/} - ${t0//[.,]/}) / 1000 ))

bench_make_certs "$dir/pki" a.bench
bench_write_stowd_conf "$dir" "$dir/passwd"
{
	echo "server_id = a.bench"
	echo "delivery_mode = $mode"
	bench_tls_conf "$dir/pki"
	# nothing listens there: capture works without a connected replica
	echo "replica b {"
	echo "  address = tcp:127.0.0.1:$(bench_free_port)"
	echo "}"
} >> "$dir/stowd.conf"

# "objects object_size how" of a kernel cache: from /proc/slabinfo when it
# has its own line there, else from /sys/kernel/slab (SLUB merges caches
# of the same size and flags: the count is then the merged cache's)
slab() {
	local name=$1 line target
	line=$(awk -v n="$name" '$1 == n { print $2, $4; exit }' /proc/slabinfo 2> /dev/null || true)
	if [ -n "$line" ]; then
		echo "$line own"
	elif [ -r "/sys/kernel/slab/$name/objects" ]; then
		target=$(readlink "/sys/kernel/slab/$name" 2> /dev/null || echo "$name")
		echo "$(cut -d' ' -f1 "/sys/kernel/slab/$name/objects")" \
			"$(cat "/sys/kernel/slab/$name/object_size")" "merged:${target##*/}"
	fi
}
declare -A slab0
for c in inotify_inode_mark fsnotify_mark_connector; do
	slab0[$c]=$(slab "$c")
done

# kB of a field of /proc/PID/status or smaps_rollup
kb() { awk -v k="$2:" '$1 == k { print $2; exit }' "$1" 2> /dev/null || true; }
mem() {
	local pid=$1
	printf 'VmRSS %6.1f MiB  Pss %6.1f MiB' \
		"$(awk -v v="$(kb "/proc/$pid/status" VmRSS)" 'BEGIN { print v / 1024 }')" \
		"$(awk -v v="$(kb "/proc/$pid/smaps_rollup" Pss)" 'BEGIN { print v / 1024 }')"
}

bench_start_stowd "$stowd" "$dir/stowd.conf" "$dir"
ready_ms=$BENCH_READY_MS
hook=$(pgrep -P "$STOWD_PID" -x stowd-hook || true)
if [ -z "$hook" ]; then
	echo "watch-scale.sh: no repl-hook process (comm stowd-hook) under $STOWD_PID" >&2
	exit 1
fi
hook_ready=$(mem "$hook")
sup_ready=$(mem "$STOWD_PID")

# the first pass over the users ends with one line
limit=$((60 + users / 50))
line=
for ((i = 0; i < limit * 10; i++)); do
	line=$(grep -m1 'watch: initial watches set' "$dir/stowd.log" || true)
	[ -n "$line" ] && break
	if ! kill -0 "$STOWD_PID" 2> /dev/null; then
		echo "watch-scale.sh: stowd exited; log:" >&2
		sed 's/^/  /' "$dir/stowd.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$line" ]; then
	echo "watch-scale.sh: no 'initial watches set' line within $limit s" >&2
	exit 1
fi

# every watch, as the kernel lists it on repl-hook's inotify descriptor
kernel_watches=0
for fd in /proc/"$hook"/fd/*; do
	if [ "$(readlink "$fd" 2> /dev/null)" = "anon_inode:inotify" ]; then
		kernel_watches=$(grep -c '^inotify wd:' "/proc/$hook/fdinfo/${fd##*/}" || true)
	fi
done
descendants() {
	local p
	for p in $(pgrep -P "$1" || true); do
		echo "$p"
		descendants "$p"
	done
}
all_pss=0
nproc_stowd=0
for p in $STOWD_PID $(descendants "$STOWD_PID"); do
	v=$(kb "/proc/$p/smaps_rollup" Pss)
	[ -n "$v" ] || continue
	all_pss=$((all_pss + v))
	nproc_stowd=$((nproc_stowd + 1))
done

echo "stowd:             $(git -C "$src" describe --always --dirty 2> /dev/null || echo unknown)"
echo "tree:              $users users x $folders folders (+ INBOX), made in $((tree_ms / 1000)).$(printf '%03d' $((tree_ms % 1000))) s"
echo "delivery mode:     $mode"
echo "watches expected:  $watches ($users x (1 + 2 x $((folders + 1))))"
if [ -n "$sysctl_set" ]; then
	echo "max_user_watches:  $sysctl_set (raised from $sysctl_old for the run)"
else
	echo "max_user_watches:  $sysctl_old"
fi
echo "READY after:       $ready_ms ms"
echo "first pass:        ${line#*watch: }"
# users=N watches=M in T ms
read -r lu lw lt < <(echo "$line" | sed -n 's/.*users=\([0-9]*\) watches=\([0-9]*\) in \([0-9]*\) ms.*/\1 \2 \3/p')
if [ -n "${lt:-}" ] && [ "$lt" -gt 0 ]; then
	echo "                   $(awk -v u="$lu" -v w="$lw" -v t="$lt" \
		'BEGIN { printf "%.0f users/s, %.1f us per watch", u * 1000 / t, t * 1000 / w }')"
fi
echo "kernel watches:    $kernel_watches on repl-hook's inotify descriptor"
echo "repl-hook:         $(mem "$hook")  (at READY: $hook_ready)"
echo "supervisor:        $(mem "$STOWD_PID")  (at READY: $sup_ready)"
echo "all stowd:         Pss $(awk -v v="$all_pss" 'BEGIN { printf "%.1f", v / 1024 }') MiB in $nproc_stowd processes"
mib() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.2f", n * s / 1048576 }'; }
declare -A label=([inotify_inode_mark]="inotify marks:" \
	[fsnotify_mark_connector]="mark connectors:")
declare -A each=([inotify_inode_mark]="one per watch" \
	[fsnotify_mark_connector]="one per watched directory")
for c in inotify_inode_mark fsnotify_mark_connector; do
	read -r o0 _ _ <<< "${slab0[$c]:-x x x}"
	read -r o1 sz how <<< "$(slab "$c")" || true
	if [ -z "${o1:-}" ] || [ "$o0" = x ]; then
		printf '%-18s not available (slab %s: no /proc/slabinfo line, no /sys/kernel/slab)\n' \
			"${label[$c]}" "$c"
	elif [ "$how" = own ]; then
		printf '%-18s %d x %d B = %s MiB (active objects of slab %s, all its users; %+d since the start)\n' \
			"${label[$c]}" "$o1" "$sz" "$(mib "$o1" "$sz")" "$c" "$((o1 - o0))"
	else
		printf '%-18s %d x %d B = %s MiB (%s; slab %s is merged into %s, which grew by %d objects = %s MiB)\n' \
			"${label[$c]}" "$kernel_watches" "$sz" "$(mib "$kernel_watches" "$sz")" "${each[$c]}" "$c" \
			"${how#merged:}" "$((o1 - o0))" "$(mib "$((o1 - o0))" "$sz")"
	fi
done
n=$(grep -c -E ': (warning|error):' "$dir/stowd.log" || true)
[ "${n:-0}" -gt 0 ] && echo "stowd log:         $n warning/error lines (replica b is not reachable)"
exit 0
