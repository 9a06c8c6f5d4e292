"""The delivery log's indexes and retention. Queries that go through an
index (status or issue.id equality, issues by date or account) answer
exactly what the same question asked as a scan answers; the real spoold
under a stepped clock (libfaketime) drops events older than
delivery_log_retention while the issue counters stay; a small soak through
the spool API (bench/dlog-soak) must show the database size levelling off
once the retention is reached.
"""
import json
import os
import shutil
import smtplib
import subprocess
import tempfile

import pytest

import smtpgate
from smtpgate import Gateway, wait_for

DAY = 86400


def gen(g, *args, env=None):
    """tests/tools/spoolctl-gen: messages with bounced recipients and their events
    (dated by its own clock: env shares spoold's stepped one)."""
    r = subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoolctl-gen"),
                        "-c", g.conf_path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **env) if env else None)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def bounced_to(g):
    return sorted(b["to"] for b in g.spoolctl_json("bounces"))


def query(g, flt, order=None):
    req = {"filter": flt, "select": ["delivstream.to", "delivstream.status",
                                     "issue.id", "delivstream.dt"]}
    if order:
        req["order"] = order
    return json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)["list"]


def test_indexed_queries_answer_as_scans():
    """Mixed events of two accounts over three days: every status and issue
    equality (index) returns the rows of the equivalent range filter (scan),
    in the same order; bounces and issues by date/account match the log."""
    with Gateway(tls=False) as g:
        g.add_account("a1", password="pw")
        g.add_account("a2", password="pw")
        for age, acct in ((2 * DAY, "a1"), (DAY, "a2"), (0, "a1")):
            gen(g, "-n", 20, "-r", 4, "-e", "-a", acct, "-t", age, "-i", "c%d" % age)
        for st in ("delivered", "deferred", "bounced"):
            for order in (None, ["-delivstream.dt"], ["delivstream.to"]):
                idx = query(g, [{"a": "delivstream.status", "op": "==", "v": st}], order)
                scan = query(g, [{"a": "delivstream.status", "op": ">=", "v": st},
                                 {"a": "delivstream.status", "op": "<=", "v": st}], order)
                assert idx == scan and idx, (st, order)
        issues = g.spoolctl_json("issues")
        assert len(issues) == 3
        for i in issues:
            idx = query(g, [{"a": "issue.id", "op": "==", "v": i["id"]}])
            scan = query(g, [{"a": "issue.id", "op": ">=", "v": i["id"]},
                             {"a": "issue.id", "op": "<=", "v": i["id"]}])
            assert idx == scan and len(idx) == 60, i
            assert g.spoolctl_json("issues", "--date", i["date"]) == \
                [j for j in issues if j["date"] == i["date"]]
        for acct in ("a1", "a2"):
            assert g.spoolctl_json("issues", "--account", acct) == \
                [j for j in issues if j["account"] == acct]
        bounced = [r[0] for r in query(g, [
            {"a": "delivstream.status", "op": ">=", "v": "bounced"},
            {"a": "delivstream.status", "op": "<=", "v": "bounced"}], ["-delivstream.dt"])]
        assert [b["to"] for b in g.spoolctl_json("bounces", "--last", "7")] == bounced[:7]


def test_spoold_prunes_events_past_the_retention():
    """Three bounces logged, then spoold's clock steps two days ahead and two
    more come (dated by the same stepped clock): the first three leave
    `bounces` and the seed's query; the issues' counters keep all five; a
    permanent failure older than suppression_ttl goes in the same pass."""
    if not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    with Gateway(tls=False, extra={"delivery_log_retention": "1d",
                                   "suppression_ttl": "1d",
                                   "prune_interval": "1s"}) as g:
        g.add_account("acc", password="pw")
        gen(g, "-n", 3, "-s", "bounced", "-e", "-a", "acc", "-d", "old.test")
        subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoold-seed"),
                        "-c", g.conf_path, "permfail", "acc", "gone@old.test"],
                       check=True, timeout=30)
        tsfile, fake = smtpgate.start_faketime(g, "spoold")
        wait_for(lambda: "prune: events=0," in g.log("spoold"), 15,
                 what="a first pruning pass that keeps everything")
        old = bounced_to(g)
        assert len(old) == 3 and all(a.endswith("@old.test") for a in old), old
        with open(tsfile, "w") as f:
            f.write("+%d\n" % (2 * DAY))
        gen(g, "-n", 2, "-s", "bounced", "-e", "-a", "acc", "-d", "new.test", env=fake)
        new = wait_for(lambda: (lambda b: b if len(b) == 2 else None)(bounced_to(g)),
                       30, what="the three old bounces pruned")
        assert all(a.endswith("@new.test") for a in new), new
        # the same pass forgot the permanent failure (suppression_ttl)
        assert "prune: events=3, issues=0, suppressions=1," in g.log("spoold")
        rows = json.loads(g.spoolctl("query", input=json.dumps(
            smtpgate.SEED_QUERY)).stdout)["list"]
        assert sorted(r[0] for r in rows) == new
        issues = g.spoolctl_json("issues", "--account", "acc")
        assert len(issues) == 2, issues
        assert sorted(i["bounced"]["remote"] for i in issues) == [2, 3], issues
        assert g.procs["spoold"].poll() is None


def soak(days, events, retention, check=True):
    tool = os.path.join(smtpgate.BUILDDIR, "bench", "dlog-soak")
    if not os.path.exists(tool):
        pytest.skip("bench/dlog-soak not built")
    d = tempfile.mkdtemp(prefix="sgsoak-")
    try:
        args = [tool, "soak", d, str(events), str(days), str(retention), "256"]
        r = subprocess.run(args + (["check"] if check else []),
                           capture_output=True, text=True, timeout=300)
        print(r.stdout, r.stderr)
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_soak_size_plateaus():
    """60,000 events over 9 simulated weeks with a 7-day retention: the
    database's size after the last week is no more than one week after the
    retention was reached (plus 10 % and 1 MB), as bench/dlog-soak checks."""
    r = soak(63, 60000, 7)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plateau:" in r.stdout
