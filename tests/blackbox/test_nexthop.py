"""The next hop is hostile too (issue 9 item 3; OpenSMTPD CVE-2020-8794
class): deliverd's SMTP client against small raw servers that send overlong
reply lines, endless multi-line replies, garbage, nothing at all, a broken
TLS handshake after STARTTLS, or drop the connection after DATA. Each ends in
a deferral with a clear text (events and `spoolctl queue --json`), deliverd
stays alive, and the next message is delivered when the hop behaves again.

Messages are filed with tests/tools/deliverd-inject (the spool API), so only
deliverd runs; small connect/command/data timeouts in the config.
"""
import os
import socket
import time

import pytest

import chaos
import smtpgate
from smtpgate import Gateway, inject


# ---------------------------------------------------------------- behaviours

def good(c, srv):
    """A well-behaved SMTP server that records what it receives."""
    chaos.smtp_sink(c, srv.received)


def upto(c, f, verb):
    """Plays a normal server until the client sends `verb`."""
    while True:
        line = f.readline(4096)
        if not line:
            raise EOFError
        v = line[:4].upper()
        if v == verb:
            return line
        if v in (b"EHLO", b"HELO"):
            c.sendall(b"250-evil.test\r\n250 8BITMIME\r\n")
        elif v == b"DATA":
            c.sendall(b"354 go\r\n")
        else:
            c.sendall(b"250 Ok\r\n")


def overlong_greeting(c, srv):
    c.sendall(b"220 " + b"x" * 200000 + b"\r\n")
    c.recv(1024)
    time.sleep(1)


def overlong_ehlo_line(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"EHLO")
    c.sendall(b"250-evil.test\r\n250-" + b"A" * 100000 + b"\r\n250 8BITMIME\r\n")
    upto(c, f, b"QUIT")


def overlong_rcpt_reply(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"RCPT")
    # CVE-2020-8794: a long multi-line reply with odd continuations
    c.sendall(b"451-" + b"B" * 5000 + b"\r\n451 4.7.1 " + b"C" * 70000 + b"\r\n")
    upto(c, f, b"QUIT")


def endless_multiline(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"EHLO")
    c.settimeout(5)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        c.sendall(b"250-MORE" + b"M" * 100 + b"\r\n" * 1)


def garbage_greeting(c, srv):
    c.sendall(os.urandom(3000) + b"\r\nHELLO WORLD\r\n")
    c.recv(1024)
    time.sleep(1)


def bad_codes(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"MAIL")
    c.sendall(b"2500 what\r\n")
    upto(c, f, b"QUIT")


def mixed_multiline(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"RCPT")
    c.sendall(b"250-first\r\n354 second\r\n")
    upto(c, f, b"QUIT")


def never_answers(c, srv):
    time.sleep(20)


def trickling_greeting(c, srv):
    """One byte every 0.5 s, for ever: the reply never completes."""
    for b in itertools_cycle(b"220 slow.test " + b"s" * 200):
        c.sendall(bytes([b]))
        time.sleep(0.5)


def itertools_cycle(data):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        for b in data:
            yield b


def tls_failure(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"EHLO")
    c.sendall(b"250-evil.test\r\n250 STARTTLS\r\n")
    upto(c, f, b"STAR")
    c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
    c.recv(4096)                         # the ClientHello
    c.sendall(b"this is not a TLS record\r\n" * 10)
    time.sleep(1)


def drop_after_data(c, srv):
    f = c.makefile("rb")
    c.sendall(b"220 evil.test\r\n")
    upto(c, f, b"DATA")
    c.sendall(b"354 go\r\n")
    if chaos.read_data(f) is None:
        return
    c.shutdown(socket.SHUT_RDWR)


def drop_in_greeting(c, srv):
    c.sendall(b"220-evil")
    c.shutdown(socket.SHUT_RDWR)


CASES = {
    "overlong-greeting": overlong_greeting,
    "overlong-ehlo-line": overlong_ehlo_line,
    "overlong-rcpt-reply": overlong_rcpt_reply,
    "endless-multiline": endless_multiline,
    "garbage": garbage_greeting,
    "bad-reply-codes": bad_codes,
    "mixed-multiline-codes": mixed_multiline,
    "never-answers": never_answers,
    "trickling-greeting": trickling_greeting,
    "tls-handshake-failure": tls_failure,
    "drop-after-data": drop_after_data,
    "drop-in-greeting": drop_in_greeting,
}


class Switch:
    """Hostile for the first connections, then a good server."""

    def __init__(self, hostile):
        self.hostile = hostile
        self.mode = "hostile"
        self.received = []

    def __call__(self, c, srv):
        if self.mode == "hostile":
            return self.hostile(c, srv)
        return good(c, self)


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_next_hop(case):
    sw = Switch(CASES[case])
    with chaos.HostileServer(sw) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "connect_timeout": "2s",
            "command_timeout": "3s", "data_timeout": "3s", "retry_schedule": "1h",
            "deliverd_workers": "2"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        qid = smtpgate.put_one(g, "victim@dest.test")
        t0 = time.monotonic()
        ev = g.wait_events(lambda e: e["to"] == "victim@dest.test", timeout=40,
                           what="an outcome for the hostile hop")[0]
        took = time.monotonic() - t0
        print("%s: %s after %.1fs: %s" % (case, ev["event"], took, ev["msg"][:200]))
        if case == "tls-handshake-failure" and ev["event"] == "delivered":
            # opportunistic TLS: a plaintext retry after the failed handshake
            assert not ev.get("tls"), ev
            return
        assert ev["event"] == "deferred", ev
        assert ev["msg"][:1] == "4" and len(ev["msg"]) > 12, ev["msg"]
        assert len(ev["msg"]) <= 1024, "a reply text of %d octets recorded" % len(ev["msg"])
        q = [m for m in g.spoolctl_json("queue") if m["qid"] == qid]
        assert q, "the deferred message left the queue"
        text = str(q[0])
        assert "deferred" in text.lower() and ev["msg"][:20] in text, q[0]
        assert g.procs["deliverd"].poll() is None, "deliverd died: %s" % g.log("deliverd")[-2000:]
        # deliverd is still fine: the next message goes out once the hop behaves
        sw.mode = "good"
        smtpgate.put_one(g, "next@dest.test")
        g.wait_events(lambda e: e["to"] == "next@dest.test" and e["event"] == "delivered",
                      timeout=30, what="the next message delivered")
        assert "next@dest.test" in sw.received
        assert g.procs["deliverd"].poll() is None
        log = g.log("deliverd")
        assert "AddressSanitizer" not in log and "assert" not in log.lower()
