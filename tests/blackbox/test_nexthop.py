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
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject


# ---------------------------------------------------------------- behaviours

def evil(**script):
    """A normal server (greeting "220 evil.test", EHLO with 8BITMIME) up
    to the commands in script, which say what it does there; it hangs up
    at QUIT without a word."""
    base = {"greeting": "220 evil.test", "EHLO": "250-evil.test\r\n250 8BITMIME",
            "RCPT": "250 Ok", "QUIT": peers.CLOSE}
    base.update(script)
    return base


def endless(s, line):
    """250- lines for a minute, as long as the client reads them."""
    s.settimeout(5)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        s.send(b"250-MORE" + b"M" * 100 + b"\r\n")
    return peers.CLOSE


def trickle(s, arg):
    """One byte every 0.5 s, for a minute: the reply never completes."""
    data = b"220 slow.test " + b"s" * 200
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        for b in data:
            s.send(bytes([b]))
            if s.pause(0.5):
                return peers.CLOSE
    return peers.CLOSE


CASES = {
    "overlong-greeting": {
        "greeting": [b"220 " + b"x" * 200000 + b"\r\n", peers.READ, peers.hang(1)]},
    "overlong-ehlo-line": evil(
        EHLO=b"250-evil.test\r\n250-" + b"A" * 100000 + b"\r\n250 8BITMIME\r\n"),
    # CVE-2020-8794: a long multi-line reply with odd continuations
    "overlong-rcpt-reply": evil(
        RCPT=b"451-" + b"B" * 5000 + b"\r\n451 4.7.1 " + b"C" * 70000 + b"\r\n"),
    "endless-multiline": evil(EHLO=endless),
    "garbage": {"greeting": lambda s, arg: [os.urandom(3000) + b"\r\nHELLO WORLD\r\n",
                                            peers.READ, peers.hang(1)]},
    "bad-reply-codes": evil(MAIL="2500 what"),
    "mixed-multiline-codes": evil(RCPT="250-first\r\n354 second"),
    "never-answers": {"greeting": peers.hang(20)},
    "trickling-greeting": {"greeting": trickle},
    "tls-handshake-failure": evil(
        EHLO="250-evil.test\r\n250 STARTTLS",
        STARTTLS=["220 2.0.0 Ready to start TLS", peers.READ,      # the ClientHello
                  b"this is not a TLS record\r\n" * 10, peers.hang(1)]),
    "drop-after-data": evil(**{".": peers.DROP}),
    "drop-in-greeting": {"greeting": [b"220-evil", peers.DROP]},
}


def received_when_good(srv):
    """The recipients accepted in sessions of the good script (those that
    came after srv.script = {})."""
    return [r for m in srv.messages if (m["reply"] or "")[:1] == "2" and
            not srv.sessions[m["session"] - 1].script for r in m["to"]]


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_next_hop(case):
    # hostile for the first connections, then a good server
    with peers.Hop(CASES[case]) as srv, Gateway(tls=False, extra={
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
        srv.script = {}
        smtpgate.put_one(g, "next@dest.test")
        g.wait_events(lambda e: e["to"] == "next@dest.test" and e["event"] == "delivered",
                      timeout=30, what="the next message delivered")
        assert "next@dest.test" in received_when_good(srv)
        assert g.procs["deliverd"].poll() is None
        log = g.log("deliverd")
        assert "AddressSanitizer" not in log and "assert" not in log.lower()
