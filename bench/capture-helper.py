#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# bench/capture-helper.py - the IMAP side of bench/capture.sh: changes
# flags through an IMAP server on the master at a fixed rate and times
# each change until the replica's file of that message carries it.
#
# usage: capture-helper.py --port PORT --password PW --users U
#                          --replica-home DIR [--user-format u%d]
#                          [--rate PER_S] [--changes N] [--timeout S]
#                          [--settle S]
#   --replica-home  the directory of the replica's homes (DIR/uN); each
#                   Maildir/new and Maildir/cur is watched (inotify) for
#                   the renamed files
# Logs in as each user (password PW, IMAP on 127.0.0.1:PORT), selects
# INBOX and maps each UID to the message's GUID: Dovecot's X-GUID of a
# Maildir message is the file's base name, which holds stowd's G<guid>.
# After --settle seconds (the moves new/ -> cur/ that the SELECT made are
# captured meanwhile), change K goes out at K/RATE seconds: the messages
# of all users in turn, each pass over them one step of the cycle
# +\Flagged, +\Seen, -\Flagged, -\Seen.  A change has arrived when the
# replica's file of that GUID shows the letters F and S as they are after
# it (or after a later change of the same message: the replica's state
# is then at least as new).  Latency: from the tagged OK of the UID STORE
# to the rename seen on the replica.  Prints "key: value" lines; exit 0
# when every change arrived within --timeout seconds, 1 otherwise.
import argparse
import ctypes
import imaplib
import os
import re
import select
import struct
import sys
import time

IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
GUID_RE = re.compile(r"G([0-9a-f]{32})")
# the cycle: the IMAP change and the letters (F, S) it leaves
STEPS = [
    ("+FLAGS.SILENT", r"(\Flagged)", "F"),
    ("+FLAGS.SILENT", r"(\Seen)", "FS"),
    ("-FLAGS.SILENT", r"(\Flagged)", "S"),
    ("-FLAGS.SILENT", r"(\Seen)", ""),
]


def fail(msg):
    print("capture-helper: " + msg, file=sys.stderr)
    sys.exit(2)


def letters_of(name):
    """The F and S of a Maildir file name's info (":2,LETTERS")."""
    i = name.find(":2,")
    if i < 0:
        return ""
    info = name[i + 3:]
    return ("F" if "F" in info else "") + ("S" if "S" in info else "")


def percentile(sorted_vals, p):
    """Nearest rank, as lmtp-load reports its latencies."""
    if not sorted_vals:
        return 0.0
    k = max(1, -(-len(sorted_vals) * p // 100))
    return sorted_vals[int(k) - 1]


class Inotify:
    """The few inotify calls needed, through libc (no module in stdlib)."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            fail("inotify_init1: " + os.strerror(ctypes.get_errno()))

    def add(self, path):
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path),
                                         IN_MOVED_TO | IN_CREATE)
        if wd < 0:
            fail("inotify_add_watch %s: %s" %
                 (path, os.strerror(ctypes.get_errno())))
        return wd

    def read(self):
        """[(wd, mask, name)] of the events queued now."""
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            off = 0
            while off + 16 <= len(buf):
                wd, mask, _cookie, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].rstrip(b"\0")
                out.append((wd, mask, os.fsdecode(name)))
                off += 16 + n


class Replica:
    """What the replica's files show: GUID -> (user, letters)."""

    def __init__(self, homes, users):
        self.ino = Inotify()
        self.dirs = {}          # wd -> (user, path)
        self.state = {}         # guid -> letters
        for u in users:
            for sub in ("new", "cur"):
                path = os.path.join(homes, u, "Maildir", sub)
                self.dirs[self.ino.add(path)] = (u, path)
        self.rescan()

    def rescan(self):
        """Reads every watched directory (at start, after an overflow)."""
        changed = set()
        for _u, path in self.dirs.values():
            for name in os.listdir(path):
                changed |= self.seen(name)
        return changed

    def seen(self, name):
        m = GUID_RE.search(name.split(":", 1)[0])
        if m is None:
            return set()
        self.state[m.group(1)] = letters_of(name)
        return {m.group(1)}

    def events(self):
        """Applies the queued events; the GUIDs whose file was renamed."""
        changed = set()
        for _wd, mask, name in self.ino.read():
            if mask & IN_Q_OVERFLOW:
                changed |= self.rescan()
            elif name:
                changed |= self.seen(name)
        return changed


def imap_login(port, user, password):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, password)
    typ, _ = c.select("INBOX")
    if typ != "OK":
        fail("SELECT INBOX of %s failed" % user)
    return c


def map_guids(conn, user):
    """[(uid, guid)] of the user's INBOX, in UID order."""
    typ, data = conn.uid("FETCH", "1:*", "(X-GUID)")
    if typ != "OK":
        fail("UID FETCH X-GUID of %s failed" % user)
    out = []
    for item in data:
        if isinstance(item, tuple):
            item = item[0]
        text = item.decode("ascii", "replace")
        m_uid = re.search(r"UID (\d+)", text)
        m_guid = GUID_RE.search(text)
        if m_uid and m_guid:
            out.append((int(m_uid.group(1)), m_guid.group(1)))
    return sorted(out)


def schedule(per_user):
    """The messages of all users in turn: [(user, uid, guid)]."""
    order = []
    longest = max(len(v) for v in per_user.values())
    for j in range(longest):
        for u, msgs in per_user.items():
            if j < len(msgs):
                order.append((u, msgs[j][0], msgs[j][1]))
    return order


class Pending:
    """Changes sent and not yet seen on the replica, per GUID, oldest first."""

    def __init__(self):
        self.by_guid = {}
        self.lat = []           # seconds, one per change that arrived
        self.count = 0

    def add(self, guid, want, t_ok):
        self.by_guid.setdefault(guid, []).append((want, t_ok))
        self.count += 1

    def check(self, guid, letters, now):
        """The replica shows `letters` for guid: the newest pending change
        they match has arrived, and every older one with it."""
        lst = self.by_guid.get(guid)
        if not lst:
            return
        for i in range(len(lst) - 1, -1, -1):
            if lst[i][0] == letters:
                for _want, t_ok in lst[:i + 1]:
                    self.lat.append(now - t_ok)
                self.count -= i + 1
                del lst[:i + 1]
                break
        if not lst:
            del self.by_guid[guid]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--replica-home", required=True)
    ap.add_argument("--user-format", default="u%d")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--changes", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=1.0)
    a = ap.parse_args()

    names = [a.user_format % (i + 1) for i in range(a.users)]
    conns, per_user = {}, {}
    for u in names:
        conns[u] = imap_login(a.port, u, a.password)
        per_user[u] = map_guids(conns[u], u)
    order = schedule(per_user)
    if not order:
        fail("no messages found through IMAP")
    changes = a.changes if a.changes > 0 else len(order)

    replica = Replica(a.replica_home, names)
    absent = [g for _u, _uid, g in order if g not in replica.state]
    if absent:
        fail("%d of %d messages are not on the replica" %
             (len(absent), len(order)))
    time.sleep(a.settle)
    replica.events()            # the renames of the replica's own settling

    pend = Pending()
    store_rtt = []
    t_start = time.monotonic()
    t_last = t_start
    k = 0
    last_rescan = t_start
    while True:
        now = time.monotonic()
        guids = replica.events()
        if now - last_rescan >= 1.0:
            guids |= replica.rescan()   # a safety net; events are the clock
            last_rescan = now
        for g in guids:
            pend.check(g, replica.state.get(g, ""), now)
        if k < changes and now >= t_start + k / a.rate:
            u, uid, guid = order[k % len(order)]
            cmd, flags, want = STEPS[(k // len(order)) % len(STEPS)]
            t0 = time.monotonic()
            typ, _ = conns[u].uid("STORE", str(uid), cmd, flags)
            t_ok = time.monotonic()
            if typ != "OK":
                fail("UID STORE %d %s %s of %s failed" % (uid, cmd, flags, u))
            store_rtt.append(t_ok - t0)
            pend.add(guid, want, t_ok)
            t_last = t_ok
            k += 1
            # the replica may already show it (a late earlier event)
            pend.check(guid, replica.state.get(guid, ""), t_ok)
            continue
        if k >= changes and (pend.count == 0 or now > t_last + a.timeout):
            break
        wait = (t_start + k / a.rate - now) if k < changes else 0.05
        select.select([replica.ino.fd], [], [], max(0.0, min(wait, 0.05)))
    t_end_send = t_last

    for c in conns.values():
        try:
            c.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    lat = sorted(x * 1000 for x in pend.lat)
    late = sum(1 for x in lat if x > a.timeout * 1000)
    rtt = sorted(x * 1000 for x in store_rtt)
    span = t_end_send - t_start
    print("messages: %d" % len(order))
    print("users: %d" % a.users)
    print("changes: %d" % changes)
    print("rate_target: %g" % a.rate)
    print("rate_achieved: %.1f" % ((changes - 1) / span if span > 0 else 0.0))
    print("store_ms_p50: %.2f" % percentile(rtt, 50))
    print("store_ms_p99: %.2f" % percentile(rtt, 99))
    print("arrived: %d" % len(lat))
    print("missing: %d" % pend.count)
    print("late: %d" % late)
    for p in (50, 90, 99):
        print("latency_ms_p%d: %.1f" % (p, percentile(lat, p)))
    print("latency_ms_max: %.1f" % (lat[-1] if lat else 0.0))
    print("timeout_s: %g" % a.timeout)
    ok = pend.count == 0 and late == 0
    print("within_timeout: %s" % ("yes" if ok else "no"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
