"""Simulator addresses (issue 18 item 4).

Recipients in simulator_domain (default simulator.smtpgate.invalid) never
leave the host: deliverd's worker answers for them as a next hop would
(relay "simulator", no TLS), and the normal commit path turns the answers
into events, categories, suppression, retries and expiry. Every test runs
with the simulator domain's MX pointing at a live test MX (dnsmasq with
query logging): nothing may reach that MX, and no DNS question may be
asked about the domain. Real binaries on 127.0.0.x, every wait bounded.
"""
import os
import subprocess

import pytest

import peers
import smtpgate
from smtpgate import Gateway, smtp_send, wait_for

SIM = "simulator.smtpgate.invalid"


def addr(local):
    return "%s@%s" % (local, SIM)


@pytest.fixture(scope="module")
def trap(tmp_path_factory):
    """A test MX on 127.0.0.2 and a DNS server naming it as the simulator
    domain's MX (and the only name it knows): a gateway that asked DNS or
    connected would deliver there."""
    if not all(os.path.exists(smtpgate.binary(n)) for n in ("smtpd", "spoold", "deliverd")):
        pytest.skip("daemons not built")
    port = smtpgate.free_port()
    mx = peers.Mx(host="127.0.0.2", port=port).start()
    dns = peers.Dns([peers.Dns.mx(SIM, "mx.sink.test", 10),
                     peers.Dns.a("mx.sink.test", "127.0.0.2"), "--log-queries"],
                    local=("test", "invalid"),
                    workdir=str(tmp_path_factory.mktemp("dns"))).start()
    try:
        yield mx, dns, port
    finally:
        dns.stop()
        mx.stop()


def gateway(trap, sandbox=False, **extra):
    mx, dns, port = trap
    conf = {"dns_server": dns.server, "remote_port": str(port), "retry_schedule": "1s",
            "max_queue_lifetime": "6s"}
    conf.update(extra)
    g = Gateway(tls=False, port_tls="none", extra=conf)
    try:
        g.add_account("acc", ips=["127.0.0.1/32"], sandbox=sandbox)
        g.start()
    except BaseException:
        g.close()
        raise
    return g


def sequence(g, to, final=("delivered", "bounced"), timeout=30):
    """The events of to once it has a final one (and anything committed
    with it)."""
    wait_for(lambda: any(e["to"] == to and e["event"] in final for e in g.events()),
             timeout, what="a final event for %s" % to)
    return [e for e in g.events() if e["to"] == to]


def untouched(trap, g):
    """Nothing reached the trap MX; DNS was never asked about the domain."""
    mx, dns, _ = trap
    assert mx.received() == [] and mx.conns == 0, mx.received()
    assert SIM not in open(dns.log).read(), "deliverd looked the simulator domain up"
    assert "mx.sink.test" not in g.log("deliverd")


def suppressed(g):
    return [e["address"] for e in g.spoolctl_json("suppression", "list")]


LOCALS = ("delivered", "bounce", "Bounce+tag-1", "nosuchbox", "bounce-policy", "defer",
          "expire", "complaint", "ooto")


@pytest.fixture(scope="module")
def sent(trap):
    """One gateway (an ordinary account), one message to each address."""
    g = gateway(trap)
    try:
        for local in LOCALS:
            smtp_send(g, [addr(local)])
        yield g
    finally:
        g.close()


def test_delivered(sent):
    ev = sequence(sent, addr("delivered"))
    assert [e["event"] for e in ev] == ["delivered"], ev
    assert ev[0]["msg"].startswith("250 2.0.0") and ev[0]["hop"] == "simulator", ev
    assert "tls" not in ev[0] and ev[0]["sandbox"] is False and "auto_reply" not in ev[0]


@pytest.mark.parametrize("local", ["bounce", "Bounce+tag-1", "nosuchbox"])
def test_bounce_is_bad_mailbox_and_suppressed(sent, local):
    """bounce@, a subaddress of it and an unknown local part."""
    ev = sequence(sent, addr(local))
    assert [(e["event"], e["class"], e["category"]) for e in ev] == \
        [("bounced", "remote", "bad-mailbox")], ev
    assert ev[0]["msg"].startswith("550 5.1.1 <%s>" % addr(local)) and \
        ev[0]["hop"] == "simulator", ev
    wait_for(lambda: addr(local).lower() in suppressed(sent), 10, what="the suppression")
    e, = sent.spoolctl_json("suppression", "show", addr(local).lower())
    assert e["reason"] == "bad-mailbox" and e["queue_id"] == ev[0]["queue_id"], e


def test_bounce_policy_is_not_suppressed(sent):
    ev = sequence(sent, addr("bounce-policy"))
    assert [(e["event"], e["class"], e["category"]) for e in ev] == \
        [("bounced", "remote", "policy")], ev
    assert ev[0]["msg"].startswith("550 5.7.1"), ev
    wait_for(lambda: len(suppressed(sent)) == 3, 30, what="the other three suppressions")
    assert addr("bounce-policy") not in suppressed(sent)


def test_defer_twice_then_delivered(sent):
    ev = sequence(sent, addr("defer"))
    assert [(e["event"], e["attempt"]) for e in ev] == \
        [("deferred", 1), ("deferred", 2), ("delivered", 3)], ev
    assert ev[0]["msg"].startswith("451 4.7.1") and ev[0]["category"] == "policy", ev
    assert {e["hop"] for e in ev} == {"simulator"}


def test_expire_until_max_queue_lifetime(sent):
    ev = sequence(sent, addr("expire"), final=("bounced",))
    assert {e["event"] for e in ev[:-1]} == {"deferred"} and len(ev) >= 2, ev
    assert ev[-1]["class"] == "expired" and ev[-1]["category"] == "expired", ev
    assert "last reply: 450 4.2.1" in ev[-1]["msg"], ev


def test_complaint_delivered_then_complained(sent):
    ev = sequence(sent, addr("complaint"), final=("complained",))
    assert [e["event"] for e in ev] == ["delivered", "complained"], ev
    assert ev[1]["queue_id"] == ev[0]["queue_id"] and ev[1]["account"] == "acc"
    assert ev[1]["message_id"] == ev[0]["message_id"] and ev[1]["issue"] == ev[0]["issue"]
    assert sent.spoolctl("stoplist", "list", "acc").stdout.split() == [addr("complaint")]


def test_ooto_delivered_with_auto_reply(sent):
    ev = sequence(sent, addr("ooto"))
    assert [e["event"] for e in ev] == ["delivered"], ev
    assert "Out of office" in ev[0]["auto_reply"], ev
    # otherwise the shape of any delivered event
    other = sequence(sent, addr("delivered"))[0]
    assert set(ev[0]) - set(other) == {"auto_reply"} and set(other) <= set(ev[0])


def test_nothing_left_the_host(trap, sent):
    """After every address above finished: an empty queue, and neither
    the MX nor DNS was ever asked."""
    for local in LOCALS:
        sequence(sent, addr(local), final=("delivered", "bounced"))
    wait_for(lambda: sent.spoolctl_json("queue") == [], 10, what="an empty queue")
    untouched(trap, sent)
    assert "relay=simulator" in sent.log("deliverd")


def test_sandbox_account_gets_the_simulated_outcomes(trap):
    """A sandbox account's simulator mail gets the simulator's outcomes
    (not the sandbox's 250), with "sandbox": true, and bounce@ is
    suppressed for it like for any account."""
    g = gateway(trap, sandbox=True)
    try:
        for local in ("bounce", "defer", "complaint", "delivered"):
            smtp_send(g, [addr(local)])
        ev = sequence(g, addr("bounce"))
        assert [(e["event"], e["category"], e["sandbox"]) for e in ev] == \
            [("bounced", "bad-mailbox", True)], ev
        wait_for(lambda: suppressed(g) == [addr("bounce")], 10, what="the suppression")
        ev = sequence(g, addr("defer"))
        assert [e["event"] for e in ev] == ["deferred", "deferred", "delivered"], ev
        assert all(e["sandbox"] for e in ev) and ev[-1]["hop"] == "simulator"
        ev = sequence(g, addr("complaint"), final=("complained",))
        assert [e["event"] for e in ev] == ["delivered", "complained"], ev
        ev = sequence(g, addr("delivered"))
        assert ev[0]["msg"].startswith("250 2.0.0") and "sandbox, not sent" not in ev[0]["msg"]
        untouched(trap, g)
    finally:
        g.close()


def test_relayhost_mail_to_the_simulator_stays_and_is_signed(trap, tmp_path):
    """With a relayhost, a message to a real address and to defer@ in one
    transaction: the real one goes to the relay, the simulator address
    never does; the message is DKIM-signed while defer@ is still queued."""
    mx, dns, port = trap
    relay = peers.Mx().start()
    g = gateway(trap, relayhost="127.0.0.1:%d" % relay.port, retry_schedule="3s",
                max_queue_lifetime="1h")
    try:
        key = str(tmp_path / "k.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", key],
                                check=True, capture_output=True, timeout=60)
        g.spoolctl("dkim", "add", "acc", "example.com", "--selector", "s1", "--key", key)
        smtp_send(g, ["real@dest.test", addr("defer")])
        first = wait_for(lambda: [e for e in g.events() if e["to"] == addr("defer")],
                         30, what="defer@'s first event")
        assert first[0]["event"] == "deferred", first
        qid = first[0]["queue_id"]
        # queued until its next try (3 s away): signed before its first one
        assert g.spoolctl_json("show", qid)["dkim_signed"] is True
        relay.wait_received(1, timeout=30)
        ev = sequence(g, addr("defer"))
        assert [e["event"] for e in ev] == ["deferred", "deferred", "delivered"], ev
        assert [r for m in relay.received() for r in m["to"]] == ["real@dest.test"]
        untouched(trap, g)
    finally:
        g.close()
        relay.stop()


def test_simulator_domain_key(tmp_path):
    """simulator_domain names another domain (the default one is then an
    ordinary domain, delivered through its MX); a value that is no domain
    name stops the daemon with status 2 and file:line: key."""
    if not all(os.path.exists(smtpgate.binary(n)) for n in ("smtpd", "spoold", "deliverd")):
        pytest.skip("daemons not built")
    port = smtpgate.free_port()
    mx = peers.Mx(host="127.0.0.2", port=port).start()
    dns = peers.Dns([peers.Dns.mx(SIM, "mx.sink.test", 10),
                     peers.Dns.a("mx.sink.test", "127.0.0.2")],
                    local=("test", "invalid"), workdir=str(tmp_path)).start()
    try:
        g = gateway((mx, dns, port), simulator_domain="Sim.Example.Test")
        try:
            smtp_send(g, ["bounce@sim.example.test", addr("bounce")])
            ev = sequence(g, "bounce@sim.example.test")
            assert [(e["event"], e["hop"]) for e in ev] == [("bounced", "simulator")], ev
            ev = sequence(g, addr("bounce"))
            assert [e["event"] for e in ev] == ["delivered"], ev
            assert ev[0]["hop"].startswith("mx.sink.test[127.0.0.2]"), ev
            assert [m["to"] for m in mx.received()] == [[addr("bounce")]]
        finally:
            g.close()
    finally:
        dns.stop()
        mx.stop()
    bad = Gateway(tls=False, port_tls="none", extra={"simulator_domain": "[127.0.0.1]"})
    try:
        r = subprocess.run([smtpgate.binary("deliverd"), "-c", bad.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "%s:" % bad.conf_path in r.stderr and \
            "simulator_domain: not a domain name" in r.stderr, r.stderr
    finally:
        bad.close()
