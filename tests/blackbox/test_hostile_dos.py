"""Hostile clients that try to stop smtpd for everyone (issue 14 finding 4):
one client exhausting the slots of a worker that reaches smtpd_max_use, the
per-IP limit across workers, NOOP floods, sessions held open for ever, and
stress mode when most slots are busy. Raw sockets on 127.0.0.1 (and other
loopback addresses as distinct clients); every wait bounded.
"""
import os
import signal
import socket
import threading
import time

import pytest

import smtpgate
from chaos import Raw
from smtpgate import Gateway, message, wait_for


def probe_gone(g):
    """The harness's port probe must be closed before counting sessions."""
    wait_for(lambda: "disconnect" in g.log("smtpd"), 5, what="probe closed")


def greeted(port, source=None, timeout=5):
    """The first reply of a new connection, or None if nothing arrives in time."""
    try:
        r = Raw(port, source=source, timeout=timeout)
    except OSError:
        return None, None
    try:
        code, text = r.reply()
    except (EOFError, OSError):
        r.close()
        return None, None
    return r, (code, text)


class Nooper(threading.Thread):
    """A session kept alive with a NOOP every `every` seconds until stopped
    or closed by the server; the replies it got are in self.codes."""

    def __init__(self, r, every):
        super().__init__(daemon=True)
        self.r, self.every, self.codes = r, every, []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.wait(self.every):
            try:
                code = self.r.cmd("NOOP")[0]
            except (EOFError, OSError):
                self.codes.append(None)
                return
            self.codes.append(code)
            if code != 250:
                return

    def stop(self):
        self.stop_ev.set()
        self.join(10)
        self.r.close()


def test_slot_exhaustion_by_one_client_does_not_block_others():
    """1 worker, smtpd_max_use = 3: two short connections (the harness's
    port probe is the first) and a session held by a NOOP every 3 s used to
    leave a retiring worker that no longer accepted and no replacement until
    the held session ended: no 220 for anyone. Every fresh client must be
    greeted within a few seconds, for longer than max_use sessions again."""
    with Gateway(tls=False, extra={"smtpd_workers": "1", "smtpd_max_use": "3"}) as g:
        g.start("smtpd")
        probe_gone(g)
        holder, (code, _) = greeted(g.port)
        assert code == 220
        assert holder.cmd("EHLO holder.test")[0] == 250
        noop = Nooper(holder, 3)
        noop.start()
        try:
            t0 = time.monotonic()
            for i in range(8):          # well past max_use, for ~12 s and more
                r, first = greeted(g.port, timeout=5)
                assert first is not None and first[0] == 220, \
                    "connection %d after %.1f s: no greeting within 5 s" % (
                        i + 1, time.monotonic() - t0)
                assert r.cmd("QUIT")[0] == 221
                r.close()
                time.sleep(1.5)
            assert None not in noop.codes and set(noop.codes) == {250}
        finally:
            noop.stop()
        assert "retiring" in g.log("smtpd")


@pytest.mark.parametrize("key", ["smtpd_client_connection_limit",
                                 "smtpd_max_sessions_per_ip"])
def test_per_ip_limit_across_workers(key):
    """Two workers of two sessions each; 3 sessions per address: the fourth
    from 127.0.0.1 lands in a worker holding one session of it and used to
    be greeted (the limit was counted per worker)."""
    with Gateway(tls=False, extra={"smtpd_workers": "2", "smtpd_max_sessions": "2",
                                   key: "3"}) as g:
        g.start("smtpd")
        probe_gone(g)
        held = []
        for _ in range(3):
            r, (code, _) = greeted(g.port)
            assert code == 220
            held.append(r)
        r, (code, text) = greeted(g.port)
        assert code == 421 and "too many connections from your address" in text, text
        assert r.closed()
        other, (code, _) = greeted(g.port, source="127.0.0.2")
        assert code == 220, "another address is refused"
        # a session that ends gives its place back
        assert held[0].cmd("QUIT")[0] == 221
        held[0].close()
        wait_for(lambda: g.log("smtpd").count("disconnect") >= 2, 5, what="slot freed")
        again, (code, _) = greeted(g.port)
        assert code == 220
        for x in held[1:] + [other, again]:
            x.close()


def test_per_ip_default_is_half_of_capacity():
    """No per-IP key: 2 workers x 2 sessions allow 2 sessions per address."""
    with Gateway(tls=False, extra={"smtpd_workers": "2", "smtpd_max_sessions": "2"}) as g:
        g.start("smtpd")
        probe_gone(g)
        held = [greeted(g.port)[0] for _ in range(2)]
        assert all(held)
        r, (code, text) = greeted(g.port)
        assert code == 421 and "from your address" in text, text
        other, (code, _) = greeted(g.port, source="127.0.0.2")
        assert code == 220
        for x in held + [other, r]:
            x.close()


def test_per_ip_count_released_when_worker_killed():
    """A worker killed with sessions cannot release them: the master rebuilds
    the shared count from the live workers, so the address gets in again."""
    with Gateway(tls=False, extra={"smtpd_workers": "1", "smtpd_max_sessions": "4",
                                   "smtpd_client_connection_limit": "2"}) as g:
        g.start("smtpd")
        probe_gone(g)
        held = [greeted(g.port)[0] for _ in range(2)]
        assert all(held)
        assert greeted(g.port)[1][0] == 421
        workers = smtpgate.smtpd_children(g)[0]     # not the lookup process
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        for x in held:
            assert x.closed()
            x.close()
        wait_for(lambda: smtpgate.smtpd_children(g)[0] not in ([], workers), 10,
                 what="a new worker")
        fresh = [greeted(g.port)[0] for _ in range(2)]
        assert all(fresh), "the killed worker's sessions are still counted"
        for x in fresh:
            x.close()


def read_all(r, timeout=10):
    """Every reply until the server closes the connection."""
    out = []
    r.sock.settimeout(timeout)
    try:
        while True:
            out.append(r.reply())
    except (EOFError, OSError):
        pass
    return out


def test_noop_flood_closed_after_junk_limit():
    """The default smtpd_junk_command_limit (100): NOOPs used to be answered
    for ever."""
    with Gateway(tls=False) as g:
        g.start("smtpd")
        r, (code, _) = greeted(g.port)
        assert code == 220
        r.send(b"NOOP\r\n" * 150)
        out = read_all(r)
        codes = [c for c, _ in out]
        assert codes[:100] == [250] * 100, codes[:110]
        assert codes[100] == 421 and "4.7.0" in out[100][1], out[100:]
        assert len(codes) == 101
        assert "too many junk commands" in g.log("smtpd")


def test_junk_mix_limit_and_message_resets_it():
    """RSET, HELO, EHLO, VRFY and NOOP all count; an accepted message starts
    the count again."""
    with Gateway(tls=False, extra={"smtpd_junk_command_limit": "5"}) as g:
        g.add_account("pinned", ips=["127.0.0.2"])
        g.start("smtpd")
        r, _ = greeted(g.port, source="127.0.0.2")
        for line in ("EHLO a.test", "NOOP", "RSET", "VRFY x"):
            assert r.cmd(line)[0] in (250, 252)
        assert r.cmd("MAIL FROM:<a@example.com>")[0] == 250
        assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(message() + b".\r\n")
        assert r.reply()[0] == 250
        for line in ("NOOP", "HELO b.test", "RSET", "NOOP", "NOOP"):
            assert r.cmd(line)[0] == 250, line
        code, text = r.cmd("NOOP")
        assert code == 421 and "4.7.0" in text, text
        assert r.closed()


def test_session_lifetime():
    """smtpd_session_timeout: a session kept busy with NOOPs is closed once
    it is older; one in a transaction finishes the message first."""
    with Gateway(tls=False, extra={"smtpd_session_timeout": "3s",
                                   "smtpd_junk_command_limit": "1000"}) as g:
        g.add_account("pinned", ips=["127.0.0.2"])
        g.start("smtpd")
        r, _ = greeted(g.port)
        t0 = time.monotonic()
        codes = []
        while time.monotonic() - t0 < 15:
            try:
                code, text = r.cmd("NOOP")
            except (EOFError, OSError):
                break
            codes.append(code)
            if code != 250:
                assert code == 421 and "4.4.2" in text, text
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        print("session closed after %.1f s (lifetime 3 s)" % took)
        assert codes and codes[-1] == 421, "still open after %.1f s" % took
        # young, it was served; older than its lifetime, it was closed
        assert codes.count(250) >= 2 and r.closed(), codes
        # a transaction under way at the lifetime is not cut short
        r, _ = greeted(g.port, source="127.0.0.2")
        assert r.cmd("EHLO t.test")[0] == 250
        assert r.cmd("MAIL FROM:<a@example.com>")[0] == 250
        assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
        time.sleep(3.5)
        assert r.cmd("DATA")[0] == 354
        r.send(message() + b".\r\n")
        code, text = r.reply()
        assert code == 250, text
        out = read_all(r, 5)
        assert out and out[0][0] == 421, out
        assert len(g.files("new")) == 1


def test_stress_mode_shortens_the_idle_timeout():
    """1 worker x 5 sessions, smtpd_timeout 60 s: with 4 idle sessions (80 %)
    smtpd is under stress and drops idle sessions after smtpd_stress_timeout
    (10 s), while a new client is still greeted."""
    with Gateway(tls=False, extra={"smtpd_workers": "1", "smtpd_max_sessions": "5",
                                   "smtpd_timeout": "60s"}) as g:
        g.start("smtpd")
        probe_gone(g)
        idle = []
        for i in range(4):
            r, (code, _) = greeted(g.port, source="127.0.0.%d" % (i + 2))
            assert code == 220
            idle.append(r)
        t0 = time.monotonic()
        late, (code, _) = greeted(g.port, source="127.0.0.9")
        assert code == 220, "no greeting under stress"
        assert all(x.closed(timeout=max(0.1, 20 - (time.monotonic() - t0))) for x in idle), \
            "idle sessions kept for 20 s under stress"
        took = time.monotonic() - t0
        assert took < 20
        assert all(b"421 4.4.2" in x.buf for x in idle)
        log = g.log("smtpd")
        assert "stress: begin" in log
        wait_for(lambda: "stress: end" in g.log("smtpd"), 15, what="stress ends")
        for x in idle + [late]:
            x.close()
