"""Address literals (RFC 5321 section 5.1): u@[192.0.2.7] and
u@[IPv6:...] go to that address on remote_port without any DNS lookup; a
literal that is no address bounces at once."""
import peers
from smtpgate import Gateway, inject, put_one as put_msg


def test_ipv4_literal_delivered_without_dns():
    # dns_server is a closed port: any lookup would defer
    with peers.Hop(name="reuse.test") as srv, Gateway(tls=False, extra={
            "dns_server": "127.0.0.1:9", "remote_port": str(srv.port),
            "retry_schedule": "1h", "deliverd_workers": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "lit@[127.0.0.1]")
        ev = g.wait_events(lambda e: e["to"] == "lit@[127.0.0.1]", timeout=30,
                           what="an outcome for the literal")[0]
        assert ev["event"] == "delivered", ev
        assert "127.0.0.1" in ev.get("hop", ""), ev
        assert srv.received == ["lit@[127.0.0.1]"]


def test_bad_literal_bounces_at_once():
    with Gateway(tls=False, extra={"dns_server": "127.0.0.1:9", "retry_schedule": "1h",
                                   "deliverd_workers": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "bad@[999.1.2.3]")
        ev = g.wait_events(lambda e: e["to"] == "bad@[999.1.2.3]", timeout=30,
                           what="an outcome for the bad literal")[0]
        assert ev["event"] == "bounced", ev
        assert ev["msg"].startswith("550 5.1.2"), ev
