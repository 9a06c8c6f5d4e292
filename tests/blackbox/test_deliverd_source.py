"""Source addresses (issue 15 item 6): deliverd binds its connections to
source_address, an account's --source-address or a source_pool entry, and
greets with the HELO name that goes with it. The aiosmtpd peer records the
address each session came from and the EHLO name; every 127.x address is
this host's (loopback), 192.0.2.1 (TEST-NET-1) is not."""
import pytest

import peers
import smtpgate
from smtpgate import inject, put_one


@pytest.fixture
def mx():
    m = peers.Mx().start()
    yield m
    m.stop()


def gateway(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h",
            "deliverd_workers": "1"}
    conf.update(extra)
    return smtpgate.Gateway(tls=False, extra=conf)


def outcome(g, rcpt):
    return g.wait_events(lambda e: e["to"] == rcpt, timeout=30,
                         what="an outcome for %s" % rcpt)[0]


def delivered_from(g, mx, rcpt, login="acc"):
    put_one(g, rcpt, login=login)
    ev = outcome(g, rcpt)
    assert ev["event"] == "delivered", ev
    m, = mx.received(rcpt)
    return m["peer"], m["helo"], m["conn"]


def test_global_source_address_and_helo(mx):
    with gateway(mx, source_address="127.0.0.2 out2.gate.test") as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        assert delivered_from(g, mx, "a@dest.test")[:2] == ("127.0.0.2", "out2.gate.test")


def test_account_source_overrides_and_is_not_shared_with_a_cached_connection(mx):
    """One worker, one next hop: the account with its own source must not
    ride on the connection the previous message (global source) left
    open, and the next message of the first account goes back to it."""
    with gateway(mx, source_address="127.0.0.2") as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        inject(g, "account", "special")
        r = g.spoolctl("account", "set", "special", "--source-address", "127.0.0.3",
                       "--source-helo", "out3.gate.test")
        assert "source 127.0.0.3 out3.gate.test" in r.stdout, r.stdout
        show = g.spoolctl_json("account", "show", "special")
        assert show["source_address"] == "127.0.0.3 out3.gate.test", show
        p1, h1, c1 = delivered_from(g, mx, "one@dest.test")
        p2, h2, c2 = delivered_from(g, mx, "two@dest.test", login="special")
        p3, h3, c3 = delivered_from(g, mx, "three@dest.test")
        assert (p1, h1) == ("127.0.0.2", "gate.test")     # HELO: the hostname
        assert (p2, h2) == ("127.0.0.3", "out3.gate.test")
        assert (p3, h3) == ("127.0.0.2", "gate.test")
        assert c1 != c2 != c3
        # cleared: the global source again
        g.spoolctl("account", "set", "special", "--source-address", "none")
        assert g.spoolctl_json("account", "show", "special")["source_address"] is None
        assert delivered_from(g, mx, "four@dest.test", login="special")[0] == "127.0.0.2"


def test_account_names_a_pool(mx):
    with gateway(mx, source_pool=["bulk 127.0.0.4 pool4.gate.test",
                                  "other 127.0.0.5"]) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        inject(g, "account", "news")
        g.spoolctl("account", "set", "news", "--source-address", "bulk")
        assert delivered_from(g, mx, "n@dest.test", login="news")[:2] == (
            "127.0.0.4", "pool4.gate.test")
        assert delivered_from(g, mx, "plain@dest.test")[0] == "127.0.0.1"


def test_non_local_source_defers_with_a_clear_reason(mx):
    try:
        if open("/proc/sys/net/ipv4/ip_nonlocal_bind").read().strip() != "0":
            pytest.skip("net.ipv4.ip_nonlocal_bind is on: any address binds")
    except OSError:
        pass
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "far")
        g.spoolctl("account", "set", "far", "--source-address", "192.0.2.1")
        put_one(g, "x@dest.test", login="far")
        ev = outcome(g, "x@dest.test")
        assert ev["event"] == "deferred", ev
        assert ev["msg"].startswith("451 4.4.1 "), ev
        assert "bind to source address 192.0.2.1: Cannot assign requested address" \
            in ev["msg"], ev
        assert "bind to source address 192.0.2.1" in g.log("deliverd")
        assert mx.received() == []
        assert g.procs["deliverd"].poll() is None


def test_unknown_pool_defers_and_spoolctl_warns(mx):
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "lost")
        r = g.spoolctl("account", "set", "lost", "--source-address", "nopool")
        assert "no source_pool line" in r.stderr and "nopool" in r.stderr, r.stderr
        put_one(g, "y@dest.test", login="lost")
        ev = outcome(g, "y@dest.test")
        assert ev["event"] == "deferred", ev
        assert ev["msg"] == ('451 4.3.5 source address: no source_pool line names '
                             'the pool "nopool"'), ev
        assert mx.received() == []


@pytest.mark.parametrize("key,value,why", [
    ("source_address", "999.1.1.1", "not an IPv4 or IPv6 address"),
    ("source_address", "127.0.0.2 bad/helo", "not a host name for HELO"),
    ("source_address", "nosuchpool", "no source_pool line names the pool"),
    ("source_pool", "p1 127.0.0.2 helo.test extra", "want NAME ADDR [HELO-NAME]"),
    ("source_pool", "p1 notanaddress", "not an IPv4 or IPv6 address"),
])
def test_bad_source_configuration_exits_2(mx, key, value, why):
    with gateway(mx, **{key: value}) as g:
        r = g.spoolctl("queue", check=False)
        assert r.returncode == 2, r
        line = r.stderr.strip()
        assert line.startswith(g.conf_path + ":") and key in line and why in line, line
        assert len(line.splitlines()) == 1


def test_account_source_option_errors(mx):
    with gateway(mx) as g:
        inject(g, "account", "acc")
        for args in (["--source-address", "300.1.2.3"],
                     ["--source-helo", "x.test"],
                     ["--source-address", "bulk", "--source-helo", "x.test"]):
            r = g.spoolctl("account", "set", "acc", *args, check=False)
            assert r.returncode == 2, (args, r)
        r = g.spoolctl("account", "set", "nobody", "--source-address", "127.0.0.2",
                       check=False)
        assert r.returncode == 1, r


def test_source_of_the_other_family_defers(mx):
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "six")
        g.spoolctl("account", "set", "six", "--source-address", "::1")
        put_one(g, "z@dest.test", login="six")
        ev = outcome(g, "z@dest.test")
        assert ev["event"] == "deferred", ev
        assert "source address ::1 is IPv6, the next hop IPv4" in ev["msg"], ev
        assert mx.received() == []
