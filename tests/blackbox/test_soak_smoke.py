"""bench/soak in small (bench/README.md "Soak"): the soak's gateway
(smtpd, spoold, deliverd, trackd; DKIM, a STARTTLS relayhost, metrics)
and its mixed load, for about 2,000 SMTP sessions: one message each, and
every fifth a rejected or odd one (bad AUTH in clear and over TLS, SIZE
too big, a message over max_message_size, unauthenticated relaying, bad
domains, garbage, a client gone mid-DATA, good AUTH over STARTTLS), plus
trackd hits, spoolctl queries and metric scrapes. No process of the
gateway may hold more file descriptors after them than after the first
200 sessions (both counted with the queue idle), and no temporary file of
an aborted DATA may stay in incoming/tmp: a descriptor or a file left
behind per session would show as hundreds. Bounded: about 40 s.
"""
import os
import sys
import time

import pytest

import smtpgate

sys.path.insert(0, os.path.join(smtpgate.SRCDIR, "bench", "lib"))
import soak_load  # noqa: E402
import soak_run  # noqa: E402
import soak_sample  # noqa: E402

SESSIONS = 2000
WARM = 200

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(smtpgate.binary(n)) for n in ("smtpd", "spoold", "deliverd",
                                                          "trackd", "spoolctl")),
    reason="daemons not built")


def fds_by_pid(gw):
    """{pid: (daemon, open fds)} over every process of every daemon."""
    out = {}
    for name in soak_run.DAEMONS:
        for pid in soak_sample.tree([gw.pid(name)]):
            out[pid] = (name, len(os.listdir("/proc/%d/fd" % pid)))
    return out


def sessions(load):
    return load.counters.get("sessions") + load.counters.get("bad_total")


def run_until(gate, load, n, timeout=90):
    """Drives the load until n sessions in all, then lets the queue drain."""
    load.stop.clear()
    load.pacer = soak_load.Pacer(load.rate)
    load.threads = []
    load.start(gate.gw.track_port)
    try:
        smtpgate.wait_for(lambda: sessions(load) >= n or soak_run.dead_daemons(gate.gw),
                          timeout, interval=0.2, what="%d sessions" % n)
    finally:
        load.finish(timeout=60)
    assert not soak_run.dead_daemons(gate.gw), soak_run.dead_daemons(gate.gw)
    assert soak_run.settle(gate, timeout=60)[0] == 0
    time.sleep(1.5)     # the last session's worker is back in accept()


def test_no_descriptor_or_file_left_per_session():
    load = soak_load.Load(None, (0, 0), rate=80, senders=6, smtp_timeout=20,
                          per_session=1, bad_every=4, bad_threads=4)
    sink = soak_load.Sink(load.counters, load.urls)
    gate = None
    try:
        gate = soak_run.make_gate(sink.port)
        gw = gate.gw
        load.gw, load.port, load.port_tls = gw, gw.port, gw.port_tls
        soak_run.start_daemons(gw)
        op = soak_load.Operator(gw, soak_run.DAEMONS, load.counters, every=2.0, hup=0)
        op.start()
        try:
            run_until(gate, load, WARM)
            before = fds_by_pid(gw)
            run_until(gate, load, WARM + SESSIONS)
            after = fds_by_pid(gw)
        finally:
            op.finish()
        c = load.counters.snapshot()
        print(sorted(c.items()))
        assert not c.get("client_errors"), list(load.errors)
        assert not c.get("track_unexpected") and not c.get("metrics_bad"), c
        assert c.get("bad_abort_data", 0) >= 15 and c.get("bad_auth_tls", 0) >= 15, c
        grown = {pid: (name, n, after[pid][1]) for pid, (name, n) in before.items()
                 if pid in after and after[pid][1] > n + 2}
        assert not grown, "fds grew (daemon, before, after): %s" % grown
        assert gate.count("tmp") == 0, gw.files("tmp")
    finally:
        if gate:
            gate.close()
        sink.stop()
