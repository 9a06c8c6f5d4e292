"""The systemd units of clusterd and of the daily TLS report (spoolctl
tls-report --send) filter system calls like the daemons' units
(SystemCallFilter=@system-service ..., SystemCallErrorNumber=EPERM), and
what each program really calls through a production-like run, traced with
strace -f, is inside its unit's filter: clusterd against a private
PostgreSQL (events shipped, policy published and mirrored, SIGHUP, a clean
stop), the report sent over HTTPS and by mail (test_tls_report_send's
world). Started as root, as systemd starts them.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

import smtpgate
from pg import db  # noqa: F401 (the fixture)
from smtpgate import Gateway, smtp_send, wait_for
from test_priv_boundaries import allowed_syscalls, start_wrapped, syscall_groups, unit_value
from test_tls_report_send import deliver, pki, today, world  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root (as systemd starts them)"),
    pytest.mark.skipif(shutil.which("strace") is None or
                       shutil.which("systemd-analyze") is None,
                       reason="needs strace and systemd-analyze"),
]

SIM = "simulator.smtpgate.invalid"
STRACE = ["strace", "-f", "-qq", "-ff"]


def used_syscalls(trace_dir, prefix):
    used = set()
    for f in os.listdir(trace_dir):
        if f.startswith(prefix + "."):
            with open(os.path.join(trace_dir, f), errors="replace") as t:
                used |= set(re.findall(r"^(\w+)\(", t.read(), re.M))
    return used


def count(db, sql):
    """SELECT count(*) ...: 0 until clusterd has made the schema."""
    try:
        return int(db.scalar(sql) or 0)
    except RuntimeError:
        return 0


def check_unit(unit, used):
    """Every call in used is in unit's filter, which fails with EPERM."""
    assert len(used) > 20, "%s: nothing traced" % unit
    assert unit_value(unit, "SystemCallErrorNumber") == "EPERM"
    allowed = allowed_syscalls(unit_value(unit, "SystemCallFilter").split(),
                               syscall_groups())
    assert "mount" not in allowed and "ptrace" not in allowed, "not a filter"
    assert not used - allowed, "%s: outside the unit's filter: %s" % (
        unit, sorted(used - allowed))


def test_clusterd_stays_inside_its_units_filter(db, tmp_path):
    trace = str(tmp_path)
    g = Gateway(tls=False, port_tls="none",
                extra={"cluster_dsn": db.dsn, "retry_schedule": "1s"})
    try:
        g.start("spoold", "deliverd", "smtpd")
        start_wrapped(g, "clusterd", STRACE + ["-o", os.path.join(trace, "clusterd")])
        g.add_account("acc", ips=["127.0.0.1/32"])
        node = g.conf["cluster_node"]
        # policy out (spoolctl's journal, published; the NOTIFY comes back)
        sql = "SELECT count(*) FROM smtpgate.policy WHERE origin = '%s'" % node
        n = wait_for(lambda: count(db, sql), 60, what="the account published")
        smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        wait_for(lambda: count(db, "SELECT count(*) FROM smtpgate.events WHERE "
                                   "node = '%s'" % node), 60, what="events shipped")
        g.spoolctl("stoplist", "add", "acc", "stop@example.net")
        wait_for(lambda: count(db, sql) > n, 60,
                 what="the stoplist entry published")
        pid = next(p["pid"] for p in smtpgate.session_procs(g.pid("clusterd"))
                   if p["ppid"] == g.pid("clusterd"))
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "reload" in g.log("clusterd"), 30, what="the reload")
        os.kill(pid, signal.SIGTERM)
        assert g.procs["clusterd"].wait(timeout=30) == 0, g.log("clusterd")
    finally:
        g.close()
    check_unit("clusterd", used_syscalls(trace, "clusterd"))


def test_tls_report_stays_inside_its_units_filter(world, tmp_path):
    g, rcv, mx, url = world
    deliver(g, ["a@web.test", "b@mail.test"])
    trace = str(tmp_path / "trace")
    os.mkdir(trace)
    r = subprocess.run(STRACE + ["-o", os.path.join(trace, "tls-report"),
                                 smtpgate.binary("spoolctl"), "-c", g.conf_path,
                                 "tls-report", "--send", "--date", today()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [p["path"] for p in rcv.posts] == ["/ok"], rcv.posts
    assert "sent" in r.stdout, r.stdout
    check_unit("tls-report", used_syscalls(trace, "tls-report"))
