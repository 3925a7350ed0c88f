#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/setup-users.sh - creates COUNT benchmark users under ROOT:
#   ROOT/passwd        Dovecot-style passwd-file, one line per user:
#                      uN:x:UID:GID::ROOT/home/uN::
#   ROOT/home/uN/      home directory, mode 0700, owned by UID:GID
# UIDs (and GIDs) are BASE+1 .. BASE+COUNT (BASE defaults to 62000, so u1 is
# 62001).  No system account is created.  ROOT and ROOT/home are made
# traversable (0755) so a writer running as the user can reach its home.
# Prints the passwd-file path.  Needs root (chown).
#
# usage: setup-users.sh ROOT COUNT [BASE]
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 ROOT COUNT [BASE_UID]" >&2
	exit 2
fi
root=$1
count=$2
base=${3:-62000}
case $count in ''|*[!0-9]*) echo "$0: COUNT must be a number" >&2; exit 2;; esac
case $base in ''|*[!0-9]*) echo "$0: BASE_UID must be a number" >&2; exit 2;; esac
if [ "$count" -lt 1 ] || [ "$count" -gt 100000 ]; then
	echo "$0: COUNT must be 1..100000" >&2
	exit 2
fi
case $root in /*) ;; *) root=$(pwd)/$root;; esac

mkdir -p "$root/home"
chmod 0755 "$root" "$root/home"
passwd=$root/passwd
: > "$passwd.tmp"
i=1
while [ "$i" -le "$count" ]; do
	uid=$((base + i))
	home=$root/home/u$i
	mkdir -p "$home"
	chown "$uid:$uid" "$home"
	chmod 0700 "$home"
	printf 'u%d:x:%d:%d::%s::\n' "$i" "$uid" "$uid" "$home" >> "$passwd.tmp"
	i=$((i + 1))
done
chmod 0644 "$passwd.tmp"
mv "$passwd.tmp" "$passwd"
echo "$passwd"
