"""SIGHUP does not leak the configuration it replaces (issue 20 item 2):
the daemon runs under valgrind, reloads a few times, stops, and valgrind's
report for the daemon's own process must show nothing definitely lost.
Before the fix, deliverd's scheduler dropped the old struct conf on every
reload (`s->cf = ncf`)."""
import os
import re
import shutil
import signal
import subprocess

import pytest

import smtpgate
from smtpgate import Gateway, wait_for

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None,
                                reason="valgrind not installed")

RELOADS = 3
# the line each daemon logs after a successful reload
RELOADED = {"deliverd": "configuration reloaded", "spoold": "reloaded "}


def count(path, what):
    try:
        with open(path, errors="replace") as f:
            return f.read().count(what)
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("name", ["deliverd", "spoold"])
def test_sighup_frees_the_old_configuration(name):
    with Gateway(tls=False) as g:
        if name == "deliverd":
            g.start("spoold")       # creates the spool deliverd opens
        vglog = os.path.join(g.dir, "vg.%p")
        log = os.path.join(g.dir, name + ".vg.log")
        with open(log, "ab") as logf:
            p = subprocess.Popen(
                ["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                 "--log-file=" + vglog, smtpgate.binary(name), "-c", g.conf_path],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            wait_for(lambda: count(log, "started") > 0 or p.poll() is not None,
                     timeout=120, what=name + " started under valgrind")
            assert p.poll() is None, open(log).read()
            for i in range(RELOADS):
                os.kill(p.pid, signal.SIGHUP)
                wait_for(lambda: count(log, RELOADED[name]) > i, timeout=60,
                         what="reload %d" % (i + 1))
            os.kill(p.pid, signal.SIGTERM)
            p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        with open(os.path.join(g.dir, "vg.%d" % p.pid)) as f:
            report = f.read()
        m = re.search(r"definitely lost: ([\d,]+) bytes", report)
        lost = int(m.group(1).replace(",", "")) if m else 0
        assert "All heap blocks were freed" in report or m, report
        assert lost == 0, report
