#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# bench/compare-helper.py - the measuring and reporting half of
# bench/compare (which starts the servers and the load):
#
#   sample CGROUP_DIR INTERVAL MAX_SECONDS
#       prints "ready", then every INTERVAL seconds sums Pss and Rss
#       (/proc/PID/smaps_rollup) over every process listed in
#       CGROUP_DIR/cgroup.procs, until its stdin is closed or MAX_SECONDS
#       passed; prints "pss_peak_kib rss_peak_kib procs_peak samples".
#   cpusnap FILE / cpudelta FILE0 FILE1
#       snapshot, then "busy_us kthread_us" between two snapshots: CPU time
#       of the whole machine (user+nice+system in /proc/stat) and of the
#       kernel threads, for the "other CPU" noise figure (what neither the
#       server, nor the client, nor the kernel threads used: other
#       processes on the machine).
#   report DIR [--markdown]
#       reads DIR/results.tsv, DIR/durable.tsv and DIR/info.txt written by
#       bench/compare and prints the table of medians, the durable-save
#       limit and the targets.
#
# Trust: reads /proc and files bench/compare wrote; every loop is bounded.
import os
import select
import signal
import statistics
import sys
import time

MAX_PIDS = 100000
MAX_ROWS = 1000000


def read_rollup(pid):
    """Returns (pss_kib, rss_kib) of one process, or None if it is gone."""
    pss = rss = 0
    try:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        return None
    return pss, rss


def cg_pids(cgdir):
    try:
        with open(os.path.join(cgdir, "cgroup.procs")) as f:
            return [p.strip() for p in f.readlines()[:MAX_PIDS] if p.strip()]
    except OSError:
        return []


class StopSampling(Exception):
    pass


def on_term(signum, frame):
    raise StopSampling()


def sample_loop(cgdir, interval, end, peaks):
    """Samples until SIGTERM (StopSampling), stdin EOF or the deadline;
    peaks = [pss, rss, processes, samples], updated after each full pass."""
    while time.monotonic() < end:
        pss = rss = n = 0
        for pid in cg_pids(cgdir):
            r = read_rollup(pid)
            if r is None:
                continue
            pss += r[0]
            rss += r[1]
            n += 1
        peaks[0] = max(peaks[0], pss)
        peaks[1] = max(peaks[1], rss)
        peaks[2] = max(peaks[2], n)
        peaks[3] += 1
        r, _, _ = select.select([sys.stdin], [], [], interval)
        if r and sys.stdin.readline() == "":
            break


def cmd_sample(cgdir, interval, max_secs):
    peaks = [0, 0, 0, 0]
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    try:
        sample_loop(cgdir, interval, time.monotonic() + max_secs, peaks)
    except StopSampling:
        pass
    print("%d %d %d %d" % tuple(peaks), flush=True)
    return 0


def cmd_cpusnap(out):
    """Writes the machine's busy time and every kernel thread's CPU time
    (keyed by pid and start time, so a reused pid is a new thread) to out."""
    lines = []
    for name in os.listdir("/proc")[:MAX_PIDS]:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] is field 3 (state); flags is field 9, utime/stime
        # 14/15, starttime 22
        if int(fields[6]) & 0x00200000:  # PF_KTHREAD
            lines.append("%s %s %d" % (name, fields[19],
                                       int(fields[11]) + int(fields[12])))
    # last, so that this program's own start-up falls before the window
    # when it opens it and inside it when it closes it
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    busy = int(cpu[1]) + int(cpu[2]) + int(cpu[3])
    with open(out, "w") as f:
        f.write("busy %d\n" % busy)
        f.write("\n".join(lines) + "\n")
    return 0


def read_snap(path):
    busy, kthr = 0, {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "busy":
                busy = int(parts[1])
            elif len(parts) == 3:
                kthr[(parts[0], parts[1])] = int(parts[2])
    return busy, kthr


def cmd_cpudelta(a, b):
    """Prints "busy_us kthread_us" between two snapshots.  Kernel threads
    that exited in between are lost (a kworker's few ticks); new ones count
    from zero."""
    tck = os.sysconf("SC_CLK_TCK")
    busy0, k0 = read_snap(a)
    busy1, k1 = read_snap(b)
    kd = sum(max(0, t - k0.get(key, 0)) for key, t in k1.items())
    print("%d %d" % ((busy1 - busy0) * 1000000 // tck, kd * 1000000 // tck))
    return 0


# ---------------------------------------------------------------- report

RESULT_COLS = ["round", "scenario", "server", "status", "msgs_per_s",
               "deliveries_per_s", "p50_ms", "p99_ms", "cpu_us_per_dlv",
               "pss_peak_kib", "rss_peak_kib", "procs_peak", "gen_cpu_pct",
               "other_cpu_pct", "elapsed_s", "deliveries", "kthr_us_per_dlv",
               "cgmem_peak_kib", "note"]
NUMERIC = RESULT_COLS[4:18]
SCENARIO_TEXT = {
    "s1": "1 session, 4 KiB",
    "s8": "8 sessions, 4 KiB",
    "s32": "32 sessions, 4 KiB",
    "b64k": "8 sessions, 64 KiB",
    "r10": "8 sessions, 10 rcpt/msg",
    "u2000": "8 sessions, 2000 users",
}
SCENARIO_LIMIT = {  # which durable-limit figure a scenario is held against
    "s1": (4096, 1), "s8": (4096, 8), "s32": (4096, 8), "b64k": (65536, 8),
    "r10": (4096, 8), "u2000": (4096, 8),
}
SERVER_TEXT = {"dovecot": "Dovecot", "seteuid": "stowd seteuid",
               "fork": "stowd fork", "seteuid-quota": "stowd seteuid, quota",
               "fork-quota": "stowd fork, quota"}


def read_tsv(path, cols):
    rows = []
    try:
        with open(path) as f:
            for i, line in enumerate(f):
                if i >= MAX_ROWS:
                    break
                if line.startswith("#") or not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < len(cols):
                    parts += [""] * (len(cols) - len(parts))
                rows.append(dict(zip(cols, parts)))
    except OSError:
        pass
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


class Cell:
    """Medians of one (scenario, server) over the rounds that passed."""

    def __init__(self, rows):
        self.total = len(rows)
        ok = [r for r in rows if r["status"] == "ok"]
        self.ok = len(ok)
        self.failures = sorted({r["status"] + (" " + r["note"] if r["note"]
                                               else "")
                                for r in rows if r["status"] != "ok"})
        self.m = {k: median([num(r[k]) for r in ok]) for k in NUMERIC}
        self.spread = {}
        for k in ("msgs_per_s", "cpu_us_per_dlv"):
            vals = [num(r[k]) for r in ok if num(r[k]) is not None]
            if len(vals) >= 2 and statistics.median(vals) > 0:
                self.spread[k] = (max(vals) - min(vals)) / statistics.median(vals)

    @property
    def good(self):
        return self.total > 0 and self.ok == self.total

    def get(self, k):
        return self.m.get(k) if self.good else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return "%.*f" % (digits, v)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "-"
    return "%.*f" % (digits, a / b)


def load_info(d):
    info = {}
    try:
        with open(os.path.join(d, "info.txt")) as f:
            for line in f:
                if ": " in line:
                    k, v = line.rstrip("\n").split(": ", 1)
                    info[k] = v
    except OSError:
        pass
    return info


def durable_limits(d):
    rows = read_tsv(os.path.join(d, "durable.tsv"),
                    ["round", "bytes", "writers", "saves_per_s"])
    by = {}
    for r in rows:
        key = (int(r["bytes"]), int(r["writers"]))
        v = num(r["saves_per_s"])
        if v is not None:
            by.setdefault(key, []).append(v)
    return {k: statistics.median(v) for k, v in by.items()}, by


def table(headers, rows, markdown, right=None):
    right = right or set(range(2, len(headers)))
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---:" if i in right else "---"
                              for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
         for i, h in enumerate(headers)]
    out = []
    for r in [headers] + rows:
        out.append("  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i])
                             for i, c in enumerate(r)).rstrip())
    return "\n".join(out)


def target_lines(cells, limits):
    def c(sc, sv):
        return cells.get((sc, sv))

    def val(sc, sv, k):
        x = c(sc, sv)
        return x.get(k) if x else None

    def rat(sc, sv, k, sc2=None, sv2="dovecot"):
        a, b = val(sc, sv, k), val(sc2 or sc, sv2, k)
        return None if a is None or b is None or b == 0 else a / b

    out = []

    def add(name, got, want, higher=True, unit="x"):
        if got is None:
            verdict = "n/a (missing or failed runs)"
        elif (got >= want) if higher else (got <= want):
            verdict = "MET"
        else:
            verdict = "MISSED"
        shown = "-" if got is None else (
            "%.0f%%" % (100 * got) if unit == "%" else "%.3fx" % got)
        goal = ("%s %.0f%%" % (">=" if higher else "<=", 100 * want)
                if unit == "%" else "%s %.2fx" % (">=" if higher else "<=",
                                                  want))
        out.append((name, shown, goal, verdict))

    lim8 = limits.get((4096, 8))
    s8 = val("s8", "seteuid", "deliveries_per_s")
    add("seteuid 8 sessions msg/s vs Dovecot", rat("s8", "seteuid",
                                                   "msgs_per_s"), 2.5)
    add("seteuid 8 sessions vs durable-save limit (8 writers)",
        None if s8 is None or not lim8 else s8 / lim8, 0.60, unit="%")
    add("seteuid 8 sessions server CPU/delivery vs Dovecot",
        rat("s8", "seteuid", "cpu_us_per_dlv"), 0.25, higher=False)
    add("seteuid 8 sessions p99 vs Dovecot",
        rat("s8", "seteuid", "p99_ms"), 0.5, higher=False)
    add("fork 8 sessions msg/s vs Dovecot", rat("s8", "fork", "msgs_per_s"),
        2.0)
    add("fork 2000 users msg/s vs Dovecot", rat("u2000", "fork",
                                                "msgs_per_s"), 1.2)
    add("seteuid 10 rcpt deliveries/s vs Dovecot",
        rat("r10", "seteuid", "deliveries_per_s"), 3.0)
    add("fork 10 rcpt deliveries/s vs Dovecot (info)",
        rat("r10", "fork", "deliveries_per_s"), 3.0)
    add("seteuid 32 sessions msg/s vs its 8-session figure",
        rat("s32", "seteuid", "msgs_per_s", "s8", "seteuid"), 1.0)
    add("fork 32 sessions msg/s vs its 8-session figure",
        rat("s32", "fork", "msgs_per_s", "s8", "fork"), 1.0)
    add("seteuid 32 sessions memory (PSS) vs Dovecot",
        rat("s32", "seteuid", "pss_peak_kib"), 1 / 3, higher=False)
    add("fork 32 sessions memory (PSS) vs Dovecot",
        rat("s32", "fork", "pss_peak_kib"), 1 / 3, higher=False)
    return out


def cmd_report(d, markdown):
    rows = read_tsv(os.path.join(d, "results.tsv"), RESULT_COLS)
    info = load_info(d)
    limits, limit_runs = durable_limits(d)
    scen_order = [s for s in info.get("scenarios", "").split() if s] or \
        list(SCENARIO_TEXT)
    serv_order = [s for s in info.get("servers", "").split() if s] or \
        list(SERVER_TEXT)
    cells = {}
    for sc in scen_order:
        for sv in serv_order:
            sel = [r for r in rows if r["scenario"] == sc and r["server"] == sv]
            if sel:
                cells[(sc, sv)] = Cell(sel)

    headers = ["scenario", "server", "msg/s", "deliv/s", "p50 ms", "p99 ms",
               "CPU us/dlv", "PSS MiB", "RSS MiB", "procs", "% limit",
               "x msg/s", "x CPU", "x p99", "x PSS", "runs ok", "spread"]
    out_rows = []
    for sc in scen_order:
        base = cells.get((sc, "dovecot"))
        for sv in serv_order:
            cell = cells.get((sc, sv))
            if cell is None:
                continue
            g = cell.get
            lim = limits.get(SCENARIO_LIMIT.get(sc, (4096, 8)))
            dps = g("deliveries_per_s")
            pss, rss = g("pss_peak_kib"), g("rss_peak_kib")
            b = (lambda k: base.get(k)) if base and sv != "dovecot" else \
                (lambda k: None)
            spread = "/".join("%.0f%%" % (100 * cell.spread[k])
                              for k in ("msgs_per_s", "cpu_us_per_dlv")
                              if k in cell.spread) or "-"
            status = "%d/%d" % (cell.ok, cell.total)
            if not cell.good:
                status += " FAILED"
            out_rows.append([
                SCENARIO_TEXT.get(sc, sc), SERVER_TEXT.get(sv, sv),
                fmt(g("msgs_per_s")), fmt(dps), fmt(g("p50_ms"), 1),
                fmt(g("p99_ms"), 1), fmt(g("cpu_us_per_dlv")),
                fmt(None if pss is None else pss / 1024, 1),
                fmt(None if rss is None else rss / 1024, 1),
                fmt(g("procs_peak")),
                "-" if dps is None or not lim else "%.0f%%" % (100 * dps / lim),
                ratio(g("msgs_per_s"), b("msgs_per_s")),
                ratio(g("cpu_us_per_dlv"), b("cpu_us_per_dlv")),
                ratio(g("p99_ms"), b("p99_ms")),
                ratio(pss, b("pss_peak_kib")),
                status, spread])
    hdr = []
    for k in ("machine", "kernel", "filesystem", "stowd", "dovecot", "build",
              "messages", "rounds", "command"):
        if k in info:
            hdr.append("%s: %s" % (k, info[k]))
    if markdown:
        print("\n".join("- " + h for h in hdr))
    else:
        print("\n".join(hdr))
    print()
    print(table(headers, out_rows, markdown))
    print()
    if not markdown:
        print("medians over the rounds that passed; x = stowd / Dovecot; "
              "CPU = all server processes (cgroup), PSS/RSS = peak of the "
              "sampled sum over all server processes; % limit = deliveries/s "
              "over the durable-save limit (4 or 64 KiB, 1 writer for 1 "
              "session, else 8); spread = (max-min)/median of msg/s and CPU.")
        print()

    lrows = []
    for (bytes_, writers) in sorted(limit_runs):
        vals = limit_runs[(bytes_, writers)]
        lrows.append(["%d KiB" % (bytes_ // 1024), str(writers),
                      fmt(statistics.median(vals)), fmt(min(vals)),
                      fmt(max(vals))])
    if lrows:
        print("durable-save limit (bench/durable-limit, same disk):")
        print()
        print(table(["size", "writers", "saves/s (median)", "min", "max"],
                    lrows, markdown, right={1, 2, 3, 4}))
        print()

    noisy = [r for r in rows if num(r["other_cpu_pct"]) is not None and
             num(r["other_cpu_pct"]) > 5]
    if noisy:
        print("warning: %d of %d runs saw more than 5%% of the machine's CPU "
              "used by other processes (max %.0f%%)" % (
                  len(noisy), len(rows),
                  max(num(r["other_cpu_pct"]) for r in noisy)))
        print()
    failed = [c for c in cells.items() if not c[1].good]
    for (sc, sv), cell in failed:
        print("FAILED: %s / %s: %d of %d runs: %s" % (
            sc, sv, cell.total - cell.ok, cell.total, "; ".join(cell.failures)))
    if failed:
        print()
    print("targets:")
    print()
    print(table(["target", "measured", "goal", "verdict"],
                [list(t) for t in target_lines(cells, limits)], markdown,
                right={1, 2}))
    return 0 if not failed else 1


def main(argv):
    if len(argv) >= 5 and argv[1] == "sample":
        return cmd_sample(argv[2], float(argv[3]), float(argv[4]))
    if len(argv) == 3 and argv[1] == "cpusnap":
        return cmd_cpusnap(argv[2])
    if len(argv) == 4 and argv[1] == "cpudelta":
        return cmd_cpudelta(argv[2], argv[3])
    if len(argv) in (3, 4) and argv[1] == "report":
        return cmd_report(argv[2], len(argv) == 4 and argv[3] == "--markdown")
    sys.stderr.write("usage: compare-helper.py sample CGDIR INTERVAL MAXSECS |"
                     " cpusnap FILE | cpudelta FILE0 FILE1 |"
                     " report DIR [--markdown]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
