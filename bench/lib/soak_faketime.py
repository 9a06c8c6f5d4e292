"""bench/soak --faketime: retention over a year in minutes.

The daemons and spoolctl run under libfaketime (Debian package faketime)
with a wall-clock offset read from a file at every clock call
(FAKETIME_NO_CACHE); the monotonic clock is left alone
(FAKETIME_DONT_FAKE_MONOTONIC), as with an NTP step, so timers keep
working. The file is spool_dir/faketime.rc, named relative to the working
directory (spool_dir), so smtpd's workers, chrooted there, read the same
file. trackd's HTTP process (chrooted into an empty directory) keeps the
offset it had when it started; it records nothing with a time.

Phases of load at day 0, +2, +31, +366 and +401, each step past one
retention: dedupe_window (24h), delivery_log_retention (30d),
suppression_ttl (365d), issue_retention (400d). After each step the soak
waits for two of spoold's prune passes (prune_interval = 5s) and compares
each database with what it held before the step.
"""
import json
import os
import re
import subprocess
import time

import smtpgate
import soak_load
import soak_run
import soak_sample
from benchlib import wait_for

DAY = 86400
SPOOL_TLSRPT_DAYS = 31  # spool.h
DLOG = ("dlog", "dlog_qid", "dlog_status", "dlog_issue", "dlog_acct", "track",
        "engage_first", "msgid_rcpt")
# (offset in days, what has expired by then: database -> the phases whose
# entries must be gone, "all" or a list of phase indexes). Callback
# entries (account soakpw's receiver is down) go when older than
# callback_max_age. TLS-RPT rows are checked by day (tlsrpt_check).
PHASES = (
    (0, {}),
    (2, {"dedupe": "all", "done": "all"}),
    (31, dict({d: [0] for d in DLOG}, dedupe="all", done="all", outbox_acct=[0, 1])),
    (366, dict({d: "all" for d in DLOG}, dedupe="all", done="all", outbox_acct="all",
               permfail=[0])),
    (401, dict({d: "all" for d in DLOG}, dedupe="all", done="all", outbox_acct="all",
               permfail=[0, 1, 2], issues=[0], issue_idx=[0],
               issue_date=[0])),
)


def fake_env():
    return {"LD_PRELOAD": smtpgate.FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": "faketime.rc",
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_RESET": "1"}


def set_offset(gw, days):
    path = os.path.join(gw.spool, "faketime.rc")
    with open(path + ".tmp", "w") as f:
        f.write("+%d\n" % (days * DAY))
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)


def start_faked(gw):
    """Every daemon under libfaketime, working directory spool_dir."""
    cwd = os.getcwd()
    os.chdir(gw.spool)
    try:
        soak_run.start_daemons(gw, env=fake_env())
    finally:
        os.chdir(cwd)


def entries(gw):
    out = {}
    soak_sample.mdb_metrics(os.path.join(gw.spool, "db"), out)
    return out


def prune_passes(gw):
    return len(re.findall(r"prune: events=", gw.log("spoold")))


def wait_prunes(gw, n=2, timeout=180):
    """Waits for n complete prune passes that began after now."""
    start = prune_passes(gw)
    wait_for(lambda: prune_passes(gw) >= start + n, timeout, interval=0.5,
             what="%d prune passes of spoold" % n)


def check_step(after, added, gone, slack):
    """Problems: a database that holds more than the entries of the phases
    that have not expired (added[i][db]: what phase i added), give or
    take `slack` (events of what was still queued at the step)."""
    problems, lines = [], []
    for db, which in sorted(gone.items()):
        key = "db." + db
        phases = range(len(added)) if which == "all" else which
        kept = sum(max(0, added[i].get(key, 0)) for i in range(len(added))
                   if i not in phases)
        got = after.get(key, 0)
        ok = got <= kept + slack
        lines.append("  %-13s %8d left, %8d kept by younger phases: %s" % (
            db, got, kept, "ok" if ok else "NOT PRUNED"))
        if not ok:
            problems.append("%s: %d left, at most %d expected" % (db, got, kept + slack))
    return problems, lines


def tlsrpt_days(gw, env, day):
    """The policies of `spoolctl tls-report --date day --json`."""
    r = subprocess.run([smtpgate.binary("spoolctl"), "-c", gw.conf_path, "tls-report",
                        "--date", day, "--json"], capture_output=True, text=True,
                       timeout=60, env=env)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout).get("policies")


def tlsrpt_check(gw, dates, k):
    """deliverd keeps TLS-RPT rows for 31 days (today counts), pruning when
    it writes a new day's first row: after phase k's load, the days of the
    phases 31 or more days older have none, and phase k's day has some."""
    env = dict(os.environ, **_abs_env(gw))
    days = [d for d, _ in PHASES]
    problems = []
    for j in range(k + 1):
        pol = tlsrpt_days(gw, env, dates[j])
        expired = days[k] - days[j] >= SPOOL_TLSRPT_DAYS
        bad = pol is None or (bool(pol) if expired else (j == k and not pol))
        print("  tls-report %s: %d policies%s%s" % (
            dates[j], len(pol or ()), " (expired)" if expired else "",
            ": WRONG" if bad else ""), flush=True)
        if bad:
            problems.append("tls-report --date %s: %s" % (dates[j], pol))
    return problems


def phase_load(args, gate, load, rec):
    """Load for --phase-minutes, then let the queue settle."""
    gw = gate.gw
    op = soak_load.Operator(gw, soak_run.DAEMONS, load.counters, hup=args.hup, env=dict(
        os.environ, **_abs_env(gw)))
    load.stop.clear()
    load.pacer = soak_load.Pacer(load.rate)
    load.threads = []
    load.start(gw.track_port)
    op.start()
    try:
        soak_run.drive(gw, load, rec, args.phase_minutes * 60, args.interval)
    finally:
        load.finish()
        op.finish()
    soak_run.settle(gate)


def _abs_env(gw):
    env = fake_env()
    env["FAKETIME_TIMESTAMP_FILE"] = os.path.join(gw.spool, "faketime.rc")
    return env


def run(args, sink, load):
    gate = soak_run.make_gate(sink.port, extra={"prune_interval": "5s",
                                                             "callback_retry_max": "10s"})
    gw = gate.gw
    # soakpw's callbacks go nowhere: its outbox fills until callback_max_age
    gw.spoolctl("account", "set", soak_load.PW_LOGIN, "--callback-url",
                "http://127.0.0.1:%d/cb" % smtpgate.free_port())
    load.gw, load.port, load.port_tls = gw, gw.port, gw.port_tls
    rec = soak_run.Recorder(gw, args.out)
    gw.start("spoold")      # creates the spool tree for the offset file
    gw.stop("spoold")
    set_offset(gw, 0)
    start_faked(gw)
    problems, added, prev, dates = [], [], entries(gw), []
    try:
        for i, (days, gone) in enumerate(PHASES):
            if i > 0:
                queued = gate.count("queue")
                set_offset(gw, days)
                print("clock +%dd (%d messages queued)" % (days, queued), flush=True)
                t_step = time.monotonic()
                wait_prunes(gw)
                # and a callback retry of soakpw (callback_retry_max)
                time.sleep(max(0.0, 15 - (time.monotonic() - t_step)))
                after = entries(gw)
                p, lines = check_step(after, added, gone, 50 + 4 * queued)
                print("\n".join(lines), flush=True)
                problems += ["+%dd: %s" % (days, x) for x in p]
                prev = after
            print("phase %d: day +%d, %.1f min of load" % (i, days, args.phase_minutes),
                  flush=True)
            dates.append(time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * DAY)))
            phase_load(args, gate, load, rec)
            problems += ["day +%d: %s" % (days, x) for x in tlsrpt_check(gw, dates, i)]
            now = entries(gw)
            added.append({k: now.get(k, 0) - prev.get(k, 0) for k in now})
            prev = now
            print("  live pages %d (used %d, free %d)" % (
                now.get("lmdb.pages_live", 0), now.get("lmdb.pages_used", 0),
                now.get("lmdb.pages_free", 0)), flush=True)
        problems += final_checks(gw, rec)
        c = soak_run.summary(load, gw)
        if c.get("client_errors"):
            problems.append("%d client errors" % c["client_errors"])
    finally:
        rec.close()
    return gate, problems


def final_checks(gw, rec):
    """The daemons survived the steps; LMDB's live pages came down."""
    problems = []
    dead = soak_run.dead_daemons(gw)
    if dead:
        problems.append("daemon(s) died: %s" % ", ".join(dead))
    live = [s.get("lmdb.pages_live", 0) for s in rec.samples]
    if live:
        print("LMDB live pages: peak %d, end %d" % (max(live), live[-1]))
    return problems
