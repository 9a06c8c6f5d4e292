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
import os
import re

import smtpgate
import soak_load
import soak_run
import soak_sample
from benchlib import wait_for

DAY = 86400
# (offset in days, what must be gone after the step: database -> which
# earlier phases' entries, as "all" or a list of phase indexes)
PHASES = (
    (0, {}),
    (2, {"dedupe": "all"}),
    (31, {"dedupe": "all", "dlog": [0], "dlog_qid": [0], "dlog_status": [0],
          "dlog_issue": [0], "dlog_acct": [0], "track": [0], "engage_first": [0],
          "msgid_rcpt": [0]}),
    (366, {"dedupe": "all", "dlog": "all", "dlog_qid": "all", "track": "all",
           "engage_first": "all", "msgid_rcpt": "all", "permfail": [0]}),
    (401, {"dedupe": "all", "dlog": "all", "permfail": [0, 1, 2], "issues": [0],
           "issue_idx": [0], "issue_date": [0]}),
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


def check_step(before, after, added, gone):
    """Problems: a database that still holds entries the step expired.
    added[i][db]: what phase i added (its count before minus the previous)."""
    problems, lines = [], []
    for db, which in sorted(gone.items()):
        key = "db." + db
        phases = range(len(added)) if which == "all" else which
        expired = sum(added[i].get(key, 0) for i in phases)
        want_max = before.get(key, 0) - expired
        got = after.get(key, 0)
        ok = got <= max(0, want_max) + max(2, 0.02 * expired)
        lines.append("  %-14s before %7d, after prune %7d, expired %7d: %s" % (
            db, before.get(key, 0), got, expired, "ok" if ok else "NOT PRUNED"))
        if not ok:
            problems.append("%s: %d left after the step, at most %d expected" % (
                db, got, want_max))
    return problems, lines


def phase_load(args, gate, load, rec):
    """Load for --phase-minutes, then let the queue settle."""
    gw = gate.gw
    op = soak_load.Operator(gw, soak_run.DAEMONS, load.counters, env=dict(
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
    gate = soak_run.make_gate(sink.port, None, extra={"prune_interval": "5s"})
    gw = gate.gw
    load.gw, load.port, load.port_tls = gw, gw.port, gw.port_tls
    rec = soak_run.Recorder(gw, args.out)
    gw.start("spoold")      # creates the spool tree for the offset file
    gw.stop("spoold")
    set_offset(gw, 0)
    start_faked(gw)
    problems, added, prev = [], [], {}
    try:
        for i, (days, gone) in enumerate(PHASES):
            if i > 0:
                before = entries(gw)
                set_offset(gw, days)
                print("clock +%dd" % days, flush=True)
                wait_prunes(gw)
                after = entries(gw)
                p, lines = check_step(before, after, added, gone)
                print("\n".join(lines), flush=True)
                problems += ["+%dd: %s" % (days, x) for x in p]
                prev = after
            print("phase %d: day +%d, %.1f min of load" % (i, days, args.phase_minutes),
                  flush=True)
            phase_load(args, gate, load, rec)
            now = entries(gw)
            added.append({k: now.get(k, 0) - prev.get(k, 0) for k in now})
            prev = now
            print("  live pages %d (used %d, free %d)" % (
                now.get("lmdb.pages_live", 0), now.get("lmdb.pages_used", 0),
                now.get("lmdb.pages_free", 0)), flush=True)
        problems += final_checks(gw, rec)
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
