"""REQUIRETLS (RFC 8689; issue 17 item 5): smtpd offers and takes
MAIL FROM ... REQUIRETLS only inside TLS; the flag travels with the
message through spoold; deliverd hands such a message only to a next hop
that offers REQUIRETLS over verified TLS (here: a certificate of the test
CA naming the relayhost, "localhost"), passing REQUIRETLS on, and bounces
it with "550 5.7.30 REQUIRETLS support required" everywhere else. An
ordinary message to the same next hop is not affected.

The relayhost is "localhost:PORT" at relayhost_tls = may (opportunistic):
REQUIRETLS asks for more than the destination's own level.
"""
import os
import smtplib

import pytest

import peers
from smtpgate import Gateway, free_port, tls_ctx, wait_for
from test_relay_tls import issue, pki  # noqa: F401 (the test CA fixture)

RTLS_REPLY = "550 5.7.30 REQUIRETLS support required"


def gateway(mx_port, pki, **extra):  # noqa: F811
    """Relaying to localhost:mx_port; with extra (dns_server,
    remote_port) and relayhost="" delivering to MX hosts instead. The
    test CA is trusted for the relayhost and for MX hosts (tls_ca_file)."""
    conf = {"relayhost": "localhost:%d" % mx_port, "relayhost_tls": "may",
            "relayhost_tls_ca_file": pki["ca"], "tls_ca_file": pki["ca"],
            "retry_schedule": "1h",
            "deliverd_workers": "1"}
    conf.update(extra)
    g = Gateway(tls=True, port_tls="starttls", extra=conf)
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
    except BaseException:
        g.close()
        raise
    return g


def submit(g, rcpt, requiretls=True, subject="rtls"):
    """Over STARTTLS: the EHLO keywords seen inside TLS."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
    try:
        s.ehlo("client.test")
        s.starttls(context=tls_ctx())
        code, text = s.ehlo("client.test")
        caps = text.decode().split("\n")
        msg = ("From: sender@example.com\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-Id: <%s.%s@example.com>\r\n"
               "Date: Mon, 07 Dec 2026 06:00:00 +0000\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain\r\n\r\nsecret\r\n" % (rcpt, subject, rcpt.split("@")[0],
                                                        subject))
        s.sendmail("sender@example.com", [rcpt], msg,
                   mail_options=["REQUIRETLS"] if requiretls else [])
    finally:
        s.quit()
    return caps


def outcome(g, rcpt, n=1):
    """The n-th outcome for rcpt (waits for it)."""
    def evs():
        return [e for e in g.events() if e["to"] == rcpt and
                e["event"] in ("delivered", "deferred", "bounced")]
    return wait_for(lambda: len(evs()) >= n and evs(), 30,
                    what="outcome %d for %s" % (n, rcpt))[n - 1]


def test_requiretls_refused_in_clear(pki):  # noqa: F811
    mx = peers.Mx().start()
    try:
        with gateway(mx.port, pki) as g:
            s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
            code, text = s.ehlo("client.test")
            assert "REQUIRETLS" not in text.decode().split("\n")
            code, text = s.mail("sender@example.com", ["REQUIRETLS"])
            assert (code, text.decode()) == (530, "5.7.10 REQUIRETLS needs a TLS session")
            # the session goes on: an ordinary MAIL is taken
            assert s.mail("sender@example.com")[0] == 250
            s.quit()
            assert "530 5.7.10 REQUIRETLS" in g.log("smtpd")
    finally:
        mx.stop()


def test_requiretls_delivered_to_verified_peer(pki):  # noqa: F811
    mx = peers.Mx(cert=pki["good"], requiretls=True).start()
    try:
        with gateway(mx.port, pki) as g:
            caps = submit(g, "r@dest.test")
            assert "REQUIRETLS" in caps, caps
            ev = outcome(g, "r@dest.test")
            assert ev["event"] == "delivered", ev
            m, = mx.received()
            assert m["tls"] and "REQUIRETLS" in m["mail_options"], m
            assert "REQUIRETLS: relay=localhost" in g.log("deliverd")
            assert ", REQUIRETLS" in g.log("smtpd")
    finally:
        mx.stop()


@pytest.mark.parametrize("peer", ("clear", "no-keyword", "unverified"))
def test_requiretls_bounces_elsewhere(peer, pki, tmp_path):  # noqa: F811
    if peer == "clear":
        mx = peers.Mx(requiretls=True)      # no STARTTLS at all
    elif peer == "no-keyword":
        mx = peers.Mx(cert=pki["good"])     # verified, no REQUIRETLS
    else:
        mx = peers.Mx(tls_dir=str(tmp_path), requiretls=True)  # self-signed
    mx.start()
    try:
        with gateway(mx.port, pki) as g:
            submit(g, "r@dest.test")
            ev = outcome(g, "r@dest.test")
            assert ev["event"] == "bounced", ev
            assert ev["msg"] == RTLS_REPLY, ev
            assert mx.received() == [], "a REQUIRETLS message went out"
            assert "REQUIRETLS refused: relay=localhost" in g.log("deliverd")
            # an ordinary message to the same next hop and recipient goes as
            # before (the bounce at MAIL FROM suppressed nobody)
            submit(g, "r@dest.test", requiretls=False, subject="plain")
            ev = outcome(g, "r@dest.test", 2)
            assert ev["event"] == "delivered", ev
            m, = mx.received()
            assert "REQUIRETLS" not in m["mail_options"], m
    finally:
        mx.stop()


def rt_hosts(pki, port):
    """mx1.rt.test (127.0.0.2, verified, without REQUIRETLS) preferred over
    mx2.rt.test (127.0.0.1, verified, offering REQUIRETLS)."""
    d, ca_key = pki["dir"], os.path.join(pki["dir"], "ca.key")
    mx1 = peers.Mx(host="127.0.0.2", port=port,
                   cert=issue(d, pki["ca"], ca_key, "mx1.rt.test"))
    mx2 = peers.Mx(host="127.0.0.1", port=port, requiretls=True,
                   cert=issue(d, pki["ca"], ca_key, "mx2.rt.test"))
    return mx1.start(), mx2.start()


def rt_dns(secure):
    """rt.test's MX hosts, DNSSEC-validated (the AD bit deliverd trusts
    under dnssec = trust-ad) or not."""
    return peers.AdResolver({"rt.test": [("MX", "10 mx1.rt.test."), ("MX", "20 mx2.rt.test.")],
                             "mx1.rt.test": [("A", "127.0.0.2")],
                             "mx2.rt.test": [("A", "127.0.0.1")]},
                            secure=["rt.test"] if secure else [])


def test_requiretls_tries_the_next_mx(pki):  # noqa: F811
    """The preferred MX host (verified, without REQUIRETLS) is passed over
    for the next one that offers REQUIRETLS over verified TLS."""
    port = free_port()
    mx1, mx2 = rt_hosts(pki, port)
    try:
        with rt_dns(secure=True) as dns, \
                gateway(0, pki, relayhost="", dns_server=dns.server, dnssec="trust-ad",
                        remote_port=str(port)) as g:
            # an ordinary message takes the preferred host, and the
            # session to it stays open for the next message
            submit(g, "o@rt.test", requiretls=False, subject="plain")
            assert outcome(g, "o@rt.test")["event"] == "delivered"
            assert len(mx1.received("o@rt.test")) == 1
            submit(g, "r@rt.test")
            ev = outcome(g, "r@rt.test")
            assert ev["event"] == "delivered", ev
            assert mx1.received("r@rt.test") == []
            m, = mx2.received()
            assert "REQUIRETLS" in m["mail_options"], m
            assert "REQUIRETLS not met by mx1.rt.test" in g.log("deliverd")
    finally:
        mx1.stop()
        mx2.stop()


def test_requiretls_needs_a_validated_mx(pki):  # noqa: F811
    """RFC 8689 4.2.1: the same hosts, but the MX lookup is not
    DNSSEC-validated (and no MTA-STS policy): a REQUIRETLS message is sent
    nowhere and bounces with 550 5.7.30; an ordinary one is delivered."""
    port = free_port()
    mx1, mx2 = rt_hosts(pki, port)
    try:
        with rt_dns(secure=False) as dns, \
                gateway(0, pki, relayhost="", dns_server=dns.server, dnssec="trust-ad",
                        remote_port=str(port)) as g:
            submit(g, "r@rt.test")
            ev = outcome(g, "r@rt.test")
            assert ev["event"] == "bounced", ev
            assert ev["msg"].startswith(RTLS_REPLY), ev
            assert "DNSSEC" in ev["msg"], ev
            submit(g, "o@rt.test", requiretls=False, subject="plain")
            assert outcome(g, "o@rt.test")["event"] == "delivered"
            assert mx1.received("r@rt.test") == [] and mx2.received("r@rt.test") == []
            assert "REQUIRETLS: 2 of 2 MX hosts of rt.test passed over" in g.log("deliverd")
    finally:
        mx1.stop()
        mx2.stop()


def test_requiretls_delivered_to_a_dane_peer(pki):  # noqa: F811
    """RFC 8689 4.2.1: a session a secure TLSA record authenticated is
    verified TLS, even with a certificate no trusted CA signed (DANE-EE,
    self-signed here: level verify alone would refuse it). The same peer
    without a matching TLSA record gets the bounce."""
    from smtpgate import make_cert
    from test_dane import DOMAIN, match, mismatch, resolver
    cert = make_cert(pki["dir"])
    for tlsa, want in ((match, "delivered"), (mismatch, "bounced")):
        mx = peers.Mx(cert=cert, requiretls=True).start()
        try:
            with resolver(mx.port, tlsa(cert[0])) as dns, \
                    gateway(0, pki, relayhost="", dns_server=dns.server,
                            remote_port=str(mx.port), dnssec="trust-ad",
                            allow_next_hop="127.0.0.1/32") as g:
                rcpt = "r@" + DOMAIN
                submit(g, rcpt)
                ev = outcome(g, rcpt)
                if want == "delivered":
                    assert ev["event"] == "delivered", ev
                    assert ev.get("tls_verified") == "dane", ev
                    m, = mx.received()
                    assert "REQUIRETLS" in m["mail_options"], m
                else:
                    # no TLSA match: DANE itself defers, nothing is sent
                    assert ev["event"] == "deferred", ev
                    assert "DANE" in ev["msg"], ev
                    assert mx.received() == [], mx.received()
        finally:
            mx.stop()
