"""bench/soak's samples and verdicts.

A sample is a flat dict of metric name -> number: per daemon (its whole
process tree: master, workers, helpers) RSS, PSS, open fds, threads and
processes, and the master's own RSS and fds; the LMDB file, its used and
free pages and the entries of each named database (mdb_stat, read-only);
files per spool directory; the sizes of event_log and the daemons' logs.
"""
import os
import re
import statistics
import subprocess

from benchlib import count_files, proc_status, tree

SPOOL_DIRS = ("incoming/tmp", "incoming/new", "queue", "quarantine", "maildrop")


def _fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def smaps_rollup(pid):
    """Pss and Private_Dirty (kB) of a process: the memory only it has
    written, which a leak grows; the heap it shares copy-on-write with the
    process it was forked from is not counted (RssAnon counts it in each
    child, so a worker forked from a bigger master looks bigger)."""
    out = {"Pss": 0, "Private_Dirty": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in out:
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    return out


def daemon_metrics(name, pid, out):
    pids = tree([pid])
    rss = anon = priv = pss = fds = thr = 0
    for p in pids:
        rss += proc_status(p, "VmRSS") or 0
        anon += proc_status(p, "RssAnon") or 0
        sm = smaps_rollup(p)
        pss += sm["Pss"]
        priv += sm["Private_Dirty"]
        fds += _fds(p)
        thr += proc_status(p, "Threads") or 0
    out[name + ".rss_kb"] = rss
    out[name + ".anon_kb"] = anon
    out[name + ".private_kb"] = priv
    out[name + ".pss_kb"] = pss
    out[name + ".fds"] = fds
    out[name + ".threads"] = thr
    out[name + ".procs"] = len(pids)
    out[name + ".master_rss_kb"] = proc_status(pid, "VmRSS") or 0
    out[name + ".master_anon_kb"] = proc_status(pid, "RssAnon") or 0
    out[name + ".master_private_kb"] = smaps_rollup(pid)["Private_Dirty"]
    out[name + ".master_fds"] = _fds(pid)


def mdb_metrics(dbdir, out):
    """mdb_stat -ef (environment, freelist) and -a (each database)."""
    path = os.path.join(dbdir, "data.mdb")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    out["lmdb.file_kb"] = st.st_size // 1024
    out["lmdb.disk_kb"] = st.st_blocks // 2
    r = subprocess.run(["mdb_stat", "-efa", dbdir], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        return
    text = r.stdout
    m = re.search(r"Number of pages used: (\d+)", text)
    if m:
        out["lmdb.pages_used"] = int(m.group(1))
    m = re.search(r"Free pages: (\d+)", text)
    if m:
        out["lmdb.pages_free"] = int(m.group(1))
    if "lmdb.pages_used" in out and "lmdb.pages_free" in out:
        out["lmdb.pages_live"] = out["lmdb.pages_used"] - out["lmdb.pages_free"]
    for name, body in re.findall(r"Status of (\S+)\n((?:  .*\n)+)", text):
        e = re.search(r"Entries: (\d+)", body)
        if e:
            out["db.%s" % name] = int(e.group(1))


def sample(gw, daemons, t, msgs):
    out = {"t": round(t, 1), "msgs": msgs}
    for name in daemons:
        p = gw.procs.get(name)
        if p is not None and p.poll() is None:
            daemon_metrics(name, p.pid, out)
    mdb_metrics(os.path.join(gw.spool, "db"), out)
    for d in SPOOL_DIRS:
        out["files." + d] = count_files(os.path.join(gw.spool, d))
    for path, key in [(gw.event_log, "log.event_log_kb")] + [
            (gw.logs.get(n, ""), "log.%s_kb" % n) for n in daemons]:
        try:
            out[key] = os.path.getsize(path) // 1024
        except OSError:
            pass
    return out


def self_rss_kb():
    return proc_status(os.getpid(), "VmRSS") or 0


# ---------------------------------------------------------------- verdicts
# what bounds the metrics that may grow, by name prefix (or suffix)
BOUNDED = (
    # RSS and PSS count the LMDB map's file pages each process touched:
    # they follow the database; private memory is .private_kb
    (".rss_kb", "the LMDB map's file pages"), (".pss_kb", "the LMDB map's file pages"),
    (".master_rss_kb", "the LMDB map's file pages"),
    # RssAnon counts, in each worker, the master's heap it shares
    # copy-on-write: after a reload the new workers are forked from a
    # master that has grown since start-up (.private_kb has no such step)
    (".anon_kb", "the master's heap shared copy-on-write with its workers"),
    # trackd_machine.c: the recipients that clicked lately, an LRU table
    # allocated at its maximum and touched as it fills (80 bytes each)
    ("trackd.private_kb", "trackd's click LRU (TRACKD_SEEN_MAX: 65,536 x 80 B)"),
    ("lmdb.", "the databases' retentions"),
    ("db.dlog", "delivery_log_retention"), ("db.msgid_rcpt", "delivery_log_retention"),
    ("db.engage_first", "delivery_log_retention"), ("db.track", "delivery_log_retention"),
    ("db.issue", "issue_retention"), ("db.permfail", "suppression_ttl"),
    ("db.dedupe", "dedupe_window"), ("db.done", "SPOOLD_DONE_KEEP (600 s)"),
    ("db.tlsrpt", "SPOOL_TLSRPT_DAYS (31)"), ("db.outbox", "callback_max_age"),
    ("db.messages", "the queue"), ("db.rcpts", "the queue"),
    ("db.sched", "the queue"), ("db.mtasts", "MTA-STS max_age"),
    ("log.", "the operator's rotation (logrotate)"),
)
# grows and is kept on purpose: the verdict says so
KEPT = (("db.stoplist", "grows: stop-list entries are kept (no retention, by design)"),)
# how much a metric may move and still be flat: (absolute, relative)
TOLERANCE = (
    (".rss_kb", 2048, 0.05), (".pss_kb", 2048, 0.05), (".master_rss_kb", 512, 0.03),
    (".master_anon_kb", 512, 0.03), (".anon_kb", 1024, 0.03),
    (".master_private_kb", 512, 0.03), (".private_kb", 1024, 0.03),
    (".fds", 4, 0.10), (".master_fds", 1, 0.0), (".threads", 2, 0.0), (".procs", 2, 0.0),
    ("files.", 200, 0.5), ("lmdb.pages_free", 1 << 30, 0.0), ("", 0, 0.01),
)


def _tolerance(name, base):
    for suffix, ab, rel in TOLERANCE:
        if suffix in name:
            return max(ab, rel * abs(base))
    return 0


def _bounded(name):
    for prefix, why in BOUNDED:
        if name.startswith(prefix) or (prefix.startswith(".") and name.endswith(prefix)):
            return why
    return None


# a steady climb: each quarter's median above the last, by this much in all
TREND = ((".private_kb", 128), (".fds", 2), (".threads", 1), (".procs", 1))


def _climbs(name, values):
    for suffix, least in TREND:
        if name.endswith(suffix):
            k = len(values) // 4
            if k < 1:
                return False
            q = [statistics.median(values[i * k:(i + 1) * k]) for i in range(4)]
            return all(q[i] < q[i + 1] for i in range(3)) and q[3] - q[0] >= least
    return False


def verdict(name, values, msgs):
    """(mid, end, per 10k messages, verdict) over the second half of a run:
    the median of its first quarter against the median of its last (more
    than a tolerance: grows), and for private memory, fds, threads and
    processes also a steady climb through its four quarters."""
    k = max(1, len(values) // 4)
    a, b = statistics.median(values[:k]), statistics.median(values[-k:])
    dm = max(1, msgs[-1] - msgs[0])
    per10k = (values[-1] - values[0]) * 10000.0 / dm
    grow = b - a
    if grow <= _tolerance(name, a) and not _climbs(name, values):
        v = "flat" if grow >= -_tolerance(name, a) else "falls"
    elif dict(KEPT).get(name):
        v = dict(KEPT)[name]
    elif _bounded(name):
        v = "grows, bounded by " + _bounded(name)
    else:
        v = "GROWS, no bound"
    return values[0], values[-1], per10k, v


def second_half(samples):
    t_end = samples[-1]["t"]
    return [s for s in samples if s["t"] >= t_end / 2.0] or samples[-1:]


def report(samples):
    """Lines of the table: each metric at the start of the second half and
    at the end, growth per 10,000 accepted messages, and the verdict."""
    half = second_half(samples)
    msgs = [s["msgs"] for s in half]
    names = sorted({k for s in half for k in s if k not in ("t", "msgs")})
    rows = []
    for name in names:
        vals = [s.get(name, 0) for s in half]
        mid, end, per10k, v = verdict(name, vals, msgs)
        rows.append((name, mid, end, per10k, v))
    lines = ["| metric | start of 2nd half | end | per 10k msgs | verdict |",
             "|---|---:|---:|---:|---|"]
    for name, mid, end, per10k, v in rows:
        lines.append("| %s | %d | %d | %+.1f | %s |" % (name, mid, end, per10k, v))
    return lines, rows

