"""Mail loops and internal next hops (issue 14, finding 2).

The whole gateway on 127.0.0.1 with an account pinned by IP, the shape that
looped about 30 messages/s: deliverd hands the copy to the gateway's own
smtpd, which accepts it as the pinned account again. With allow_next_hop
empty (the default; the harness sets it to loopback for the other tests),
mail to the gateway itself -- an address literal, its own interface
address, an MX pointing back -- ends after one hop with a bounce; IP
pinning never matches the gateway's own non-loopback address; and
hopcount_limit bounds whatever gets around anyway.
"""
import re
import smtplib
import subprocess
import time

import pytest

import peers
from smtpgate import Gateway, Raw, message, wait_for

# After the outcome: how long to watch for further copies (a loop makes
# dozens a second; nothing may come).
WATCH = 5


def accepted(g):
    """Messages smtpd answered 250 for (its one log line per message)."""
    return len(re.findall(r", nrcpt=\d+, size=\d+", g.log("smtpd")))


def loop_gw(**extra):
    """A gateway whose remote_port is its own smtpd's port; allow_next_hop
    empty unless given."""
    conf = {"allow_next_hop": [], "retry_schedule": "1h", "deliverd_workers": "1"}
    conf.update(extra)
    g = Gateway(tls=False, extra=conf)
    g.conf["remote_port"] = str(g.port)
    g.write_conf()
    return g


def submit(g, rcpt, msg=None, host="127.0.0.1"):
    s = smtplib.SMTP(host, g.port, timeout=30)
    try:
        s.ehlo("client.test")
        s.sendmail("sender@example.com", [rcpt], msg or message(to=rcpt))
    finally:
        s.quit()


def outcome(g, rcpt, timeout=30):
    return g.wait_events(lambda e: e["to"] == rcpt and e["event"] in ("bounced", "delivered"),
                         timeout=timeout, what="an outcome for %s" % rcpt)[0]


def assert_one_hop(g, rcpt):
    """The first outcome is a loop bounce, and nothing more is accepted."""
    ev = outcome(g, rcpt)
    time.sleep(WATCH)
    assert accepted(g) == 1, "the message went around: %d copies accepted" % accepted(g)
    assert ev["event"] == "bounced", ev
    return ev


def own_ipv4():
    """A non-loopback IPv4 address of this host, or None."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else None


def test_address_literal_loop_bounces_after_one_hop():
    with loop_gw() as g:
        g.add_account("pin", ips=["127.0.0.1/32"])
        g.start()
        submit(g, "x@[127.0.0.1]")
        ev = assert_one_hop(g, "x@[127.0.0.1]")
        assert ev["msg"] == "554 5.4.6 mail for [127.0.0.1] loops back to myself", ev
        assert "skipped: it is this host" in g.log("deliverd")


def test_mx_pointing_back_bounces_after_one_hop(tmp_path):
    dns = peers.Dns([peers.Dns.mx("loop.test", "mx.loop.test", 10),
                     peers.Dns.a("mx.loop.test", "127.0.0.1")], workdir=str(tmp_path))
    with dns, loop_gw(dns_server=dns.server) as g:
        g.add_account("pin", ips=["127.0.0.1/32"])
        g.start()
        submit(g, "x@loop.test")
        ev = assert_one_hop(g, "x@loop.test")
        assert ev["msg"] == "554 5.4.6 mail for loop.test loops back to myself", ev


def test_mx_set_skips_only_the_hosts_that_are_this_host(tmp_path):
    """Best MX is the gateway itself, the next one a peer on 127.0.0.2 that
    allow_next_hop lists: the peer gets the mail, the gateway nothing."""
    dns = peers.Dns([peers.Dns.mx("mixed.test", "self.mixed.test", 10),
                     peers.Dns.mx("mixed.test", "peer.mixed.test", 20),
                     peers.Dns.a("self.mixed.test", "127.0.0.1"),
                     peers.Dns.a("peer.mixed.test", "127.0.0.2")], workdir=str(tmp_path))
    with dns, loop_gw(dns_server=dns.server, allow_next_hop="127.0.0.2/32") as g:
        mx = peers.Mx(host="127.0.0.2", port=g.port).start()
        try:
            g.add_account("pin", ips=["127.0.0.1/32"])
            g.start()
            submit(g, "x@mixed.test")
            ev = outcome(g, "x@mixed.test")
            assert ev["event"] == "delivered", ev
            assert len(mx.received()) == 1
            assert accepted(g) == 1
            assert re.search(r"next hop self\.mixed\.test\[127\.0\.0\.1\] skipped",
                             g.log("deliverd")), g.log("deliverd")
        finally:
            mx.stop()


def test_own_interface_address_loop_bounces_after_one_hop():
    """A listener on the wildcard: every interface address is the gateway's
    own; an account pinned to a range covering the host does not help."""
    own = own_ipv4()
    if own is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    with loop_gw() as g:
        g.listen = ["0.0.0.0:%d tls=none" % g.port]
        g.write_conf()
        g.add_account("pin", ips=["127.0.0.1/32", own + "/24"])
        g.start()
        rcpt = "x@[%s]" % own
        submit(g, rcpt)
        ev = assert_one_hop(g, rcpt)
        assert ev["msg"] == "554 5.4.6 mail for [%s] loops back to myself" % own, ev


def test_pinning_never_matches_own_address():
    """Even when allow_next_hop lets deliverd reach the gateway's own
    address, the copy arrives from that address, which no pinned range
    matches: refused (530), bounced, one hop."""
    own = own_ipv4()
    if own is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    with loop_gw(allow_next_hop=own + "/32") as g:
        g.listen = ["0.0.0.0:%d tls=none" % g.port]
        g.write_conf()
        g.add_account("pin", ips=["127.0.0.1/32", own + "/24"])
        g.start()
        c = Raw(g.port, host=own, source=own)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO me.test")[0] == 250
        code, text = c.cmd("MAIL FROM:<a@example.com>")
        assert code == 530, text
        c.close()
        assert "no IP pinning: client=[%s]" % own in g.log("smtpd")
        rcpt = "x@[%s]" % own
        submit(g, rcpt)
        ev = assert_one_hop(g, rcpt)
        assert ev["msg"].startswith("530"), ev


def received_lines(n):
    return b"".join(b"Received: from hop%d.example by relay.example; "
                    b"Mon, 7 Dec 2026 00:00:00 +0000\r\n" % i for i in range(n))


def test_hopcount_limit_bounces_at_51_received_lines():
    """smtpd adds one Received: line: 49 + 1 pass, 50 + 1 = 51 bounce."""
    with Gateway(tls=False) as g:
        g.add_account("pin", ips=["127.0.0.1/32"])
        g.start("spoold", "smtpd")
        submit(g, "fifty@example.net", received_lines(49) + message(to="fifty@example.net"))
        submit(g, "many@example.net", received_lines(50) + message(to="many@example.net"))
        ev = g.wait_events(lambda e: e["to"] == "many@example.net", timeout=30,
                           what="the bounce")[0]
        assert ev["event"] == "bounced" and ev["class"] == "policy", ev
        assert ev["msg"] == "554 5.4.6 too many hops", ev
        wait_for(lambda: len(g.files("queue")) == 1, timeout=20, what="50 hops queued")
        assert not [e for e in g.events() if e["to"] == "fifty@example.net"]
        assert "554 5.4.6 too many hops" in g.log("spoold")


def test_hopcount_limit_bounds_a_loop_the_operator_allowed():
    """allow_next_hop covering the gateway itself (a misconfiguration): the
    loop runs, but hopcount_limit (here 3) stops it with a bounce."""
    with loop_gw(allow_next_hop="127.0.0.0/8", hopcount_limit="3",
                 retry_schedule="1s") as g:
        g.add_account("pin", ips=["127.0.0.1/32"])
        g.start()
        submit(g, "x@[127.0.0.1]")
        ev = g.wait_events(lambda e: e["to"] == "x@[127.0.0.1]" and e["event"] == "bounced",
                           timeout=60, what="the hop-count bounce")[0]
        assert ev["msg"] == "554 5.4.6 too many hops", ev
        time.sleep(WATCH)
        # copies carry 1, 2, 3, 4 Received: lines; the fourth bounces
        assert accepted(g) == 4, accepted(g)
