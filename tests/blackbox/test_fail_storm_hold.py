"""What a hold must not hold (h-resolv): mail that never leaves the host
(a sandbox account's, the simulator's) needs no DNS and no network, so
neither the resolver-down rule nor a destination's suspension for network
failures makes it wait; a message with `TLS-Required: No` (RFC 8689 5)
is attempted while its destination is suspended for failing its MTA-STS
or DANE policy (the policy the header asks to be ignored), without
ending the suspension for other mail. Real binaries, scripted resolvers
and SMTP peers on 127.0.0.1; every wait bounded."""
import time

import peers
from smtpgate import Gateway, free_port, inject, message, put_msg, wait_for
from test_fail_storm_dns import (BLACKHOLES, DANE_DOMAIN, RT3_HOSTS, SUSPEND_AFTER,
                                 SwitchResolver, blackholed_attempts, deferred, failing_tlsa,
                                 requiretls_sessions, shaping)
from test_relay_tls import pki  # noqa: F401 (the test CA fixture)

SIM = "simulator.smtpgate.invalid"   # simulator_domain's default


def delivered(g, to):
    return [e for e in g.events() if e["to"] == to and e["event"] == "delivered"]


def resolver_down(g, dns, domains, suspend_for, daemons=("deliverd",)):
    """Makes dns (a SwitchResolver) SERVFAIL everything, files a message
    to u@DOMAIN for each of domains from account acc, starts daemons and
    waits (bounded) until deliverd has logged the resolver down.
    suspend_for (shaping's default): how often it probes."""
    shaping(g, "[default]\nsuspend_for = %s\n" % suspend_for)
    dns.mode = "servfail"
    inject(g, "account", "acc")
    for d in domains:
        put_msg(g, "acc", ["u@" + d])
    for name in daemons:
        g.start(name)
    wait_for(lambda: "state=down" in g.log("deliverd"), 60, what="the resolver down")


def test_sandbox_and_simulator_mail_pass_a_resolver_outage():
    """The resolver SERVFAILs everything: once it is down (one probe a
    minute), a sandbox account's message to a domain whose lookups fail
    and a simulator message are delivered at once (the sandbox's 250 and
    the simulator's), not held for the probe; the real domains stay held."""
    domains = ["d%d.test" % i for i in range(12)]
    records = {d: [("MX", "10 mx.shared.test.")] for d in domains}
    records["mx.shared.test"] = [("A", "127.0.0.1")]
    with peers.Mx() as mx, SwitchResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(mx.port),
            "retry_schedule": "3s", "deliverd_workers": "2"}) as g:
        inject(g, "account", "sb", "sandbox")
        resolver_down(g, dns, domains, "10m")   # a probe a minute
        time.sleep(2)
        put_msg(g, "sb", ["s@d1.test"])
        put_msg(g, "acc", ["delivered@" + SIM])
        wait_for(lambda: delivered(g, "s@d1.test") and delivered(g, "delivered@" + SIM), 20,
                 what="sandbox and simulator mail delivered while the resolver is down")
        sb, = delivered(g, "s@d1.test")
        sim, = delivered(g, "delivered@" + SIM)
        print("resolver down: sandbox %r, simulator %r" % (sb["msg"], sim["msg"]))
        assert sb["sandbox"] is True and "sandbox" in sb["msg"], sb
        assert "simulator" in sim["msg"], sim
        log = g.log("deliverd")
        assert "state=up" not in log, log[-2000:]
        assert not [e for e in g.events() if e["event"] == "delivered" and
                    e["to"].startswith("u@")]
        assert mx.received() == []


def test_sandbox_and_simulator_mail_pass_a_suspended_destination():
    """A destination whose MX refuses connections is suspended for 10
    minutes; a sandbox account's message to it is delivered at once (the
    sandbox's 250), which does not end the suspension for other mail."""
    port = free_port()     # nobody listens: connection refused
    records = {"down.test": [("MX", "10 mx.down.test.")], "mx.down.test": [("A", "127.0.0.1")]}
    with peers.AdResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(port),
            "retry_schedule": "3s", "deliverd_workers": "2"}) as g:
        shaping(g, "[default]\nsuspend_for = 10m\n")
        inject(g, "account", "acc")
        inject(g, "account", "sb", "sandbox")
        put_msg(g, "acc", ["p{n}@down.test"], count=SUSPEND_AFTER + 3)
        g.start("deliverd")
        # the destination is its MX host set, mx{mx.down.test}
        wait_for(lambda: "state=suspended" in g.log("deliverd"), 60,
                 what="down.test suspended")
        put_msg(g, "sb", ["s@down.test"])
        g.wait_events(lambda e: e["to"] == "s@down.test" and e["event"] == "delivered",
                      timeout=20, what="the sandbox message delivered while suspended")
        ev, = delivered(g, "s@down.test")
        print("down.test suspended: sandbox %r" % ev["msg"])
        assert ev["sandbox"] is True
        log = g.log("deliverd")
        assert "state=normal" not in log, log[-2000:]
        # the sandbox's 250 counted for nothing: still suspended
        q = g.spoolctl_json("queue", "--summary", "--json")
        st = {d["domain"]: d["state"] for d in q["destinations"]}
        assert st.get("down.test") == "suspended", q


def test_tls_required_no_passes_a_tls_policy_suspension():
    """The TLSA lookup of the MX host fails (DANE): the destination is
    suspended for its TLS policy. A message with `TLS-Required: No` is
    attempted anyway (the DANE policy is not applied to it: RFC 8689 5)
    and delivered; an ordinary message waits and the destination stays
    suspended."""
    with failing_tlsa("3s") as (mx, dns, tlsa, g):
        shaping(g, "[default]\nsuspend_for = 10m\n")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["t{n}@" + DANE_DOMAIN], count=SUSPEND_AFTER + 2)
        g.start("deliverd")
        wait_for(lambda: "destination=%s, state=suspended" % DANE_DOMAIN in
                 g.log("deliverd"), 60, what="the destination suspended")
        ndef = len(deferred(g))
        put_msg(g, "acc", ["no@" + DANE_DOMAIN],
                msg=message(to="no@" + DANE_DOMAIN, headers={"TLS-Required": "No"}))
        put_msg(g, "acc", ["plain@" + DANE_DOMAIN])
        g.wait_events(lambda e: e["to"] == "no@" + DANE_DOMAIN and
                      e["event"] == "delivered", timeout=20,
                      what="the TLS-Required: No message delivered")
        time.sleep(2)
        got = [r for m in mx.received() for r in m["to"]]
        print("suspended for DANE: received %s; %d deferred before, %d after" % (
            got, ndef, len(deferred(g))))
        assert got == ["no@" + DANE_DOMAIN], got
        assert not [e for e in g.events() if e["to"] == "plain@" + DANE_DOMAIN]
        log = g.log("deliverd")
        assert "destination=%s, state=normal" % DANE_DOMAIN not in log, log[-2000:]
        q = g.spoolctl_json("queue", "--summary", "--json")
        st = {d["domain"]: d["state"] for d in q["destinations"]}
        assert st.get(DANE_DOMAIN) == "suspended", q


# ---------------------------------------------------------------- what the operator sees

def summary(g):
    return g.spoolctl_json("queue", "--summary", "--json")


def test_resolver_down_shows_in_queue_summary_and_metrics():
    """While the resolver is down, `spoolctl queue --summary` says so
    (--json "resolver": state down, since, the reply; the text a line)
    and deliverd's gauge smtpgate_deliverd_resolver_down is 1; when DNS
    answers again both say up (0)."""
    from test_metrics import scrape, value
    domains = ["v%d.test" % i for i in range(12)]
    records = {d: [("MX", "10 mx.shared.test.")] for d in domains}
    records["mx.shared.test"] = [("A", "127.0.0.1")]
    mport = free_port()
    with peers.Mx() as mx, SwitchResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(mx.port),
            "retry_schedule": "3s", "deliverd_workers": "2",
            "metrics_listen": "127.0.0.1:%d" % mport}) as g:
        resolver_down(g, dns, domains, "3s", daemons=("spoold", "deliverd"))
        q = wait_for(lambda: summary(g)["resolver"]["state"] == "down" and summary(g), 10,
                     what="the summary showing the resolver down")
        r = q["resolver"]
        text = g.spoolctl("queue", "--summary").stdout
        body = wait_for(lambda: value(scrape(mport), "smtpgate_deliverd_resolver_down") == 1
                        and scrape(mport), 10, what="the gauge at 1")
        print("resolver down: %s\n%s" % (r, [l for l in text.splitlines() if "resolver" in l]))
        assert r["resolver"] == dns.server and "4.4.3" in r["reason"], r
        assert r["since"].endswith("Z") and r["probes"] >= 0, r
        assert any(l.startswith("-- resolver %s: down since" % dns.server)
                   for l in text.splitlines()), text
        assert "# TYPE smtpgate_deliverd_resolver_down gauge" in body
        dns.mode = None
        wait_for(lambda: len(mx.received()) >= len(domains), 60, what="all delivered")
        wait_for(lambda: summary(g)["resolver"] == {"state": "up"}, 10,
                 what="the summary showing the resolver up")
        wait_for(lambda: value(scrape(mport), "smtpgate_deliverd_resolver_down") == 0, 10,
                 what="the gauge at 0")
        assert "-- resolver" not in g.spoolctl("queue", "--summary").stdout


def test_suspended_destinations_show_in_queue_summary_and_metrics():
    """A suspended destination is listed by `spoolctl queue --summary`
    with its reason and until when (--json "suspended", and a text line),
    and counted by smtpgate_deliverd_destinations_suspended."""
    from test_metrics import scrape, value
    port, mport = free_port(), free_port()
    records = {"gone.test": [("MX", "10 mx.gone.test.")], "mx.gone.test": [("A", "127.0.0.1")]}
    with peers.AdResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(port),
            "retry_schedule": "3s", "deliverd_workers": "2",
            "metrics_listen": "127.0.0.1:%d" % mport}) as g:
        shaping(g, "[default]\nsuspend_for = 10m\n")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["p{n}@gone.test"], count=SUSPEND_AFTER + 2)
        g.start("spoold")
        g.start("deliverd")
        wait_for(lambda: "state=suspended" in g.log("deliverd"), 60, what="gone.test suspended")
        sus = wait_for(lambda: summary(g)["suspended"], 10, what="the summary's suspended list")
        text = g.spoolctl("queue", "--summary").stdout
        lines = [l for l in text.splitlines() if l.startswith("-- suspended: ")]
        print("suspended: %s\n%s" % (sus, lines))
        s, = sus
        assert s["destination"] == "mx{mx.gone.test}", s
        assert "Connection refused" in s["reason"] and s["until"].endswith("Z"), s
        assert len(lines) == 1 and "mx{mx.gone.test} until " in lines[0] and \
            "Connection refused" in lines[0], lines
        assert summary(g)["resolver"] == {"state": "up"}
        wait_for(lambda: value(scrape(mport), "smtpgate_deliverd_destinations_suspended") == 1,
                 10, what="the gauge at 1")


# ---------------------------------------------------------------- the limits as keys

def test_dns_down_domains_is_a_key():
    """dns_down_domains = 3: the resolver is down after 3 domains (the log
    line names them and the window), not 8."""
    domains = ["k%d.test" % i for i in range(6)]
    records = {d: [("MX", "10 mx.shared.test.")] for d in domains}
    with SwitchResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "retry_schedule": "1h", "deliverd_workers": "1",
            "dns_down_domains": "3", "dns_down_window": "2m"}) as g:
        resolver_down(g, dns, domains, "10m")
        time.sleep(2)
        line, = [l for l in g.log("deliverd").splitlines() if "state=down" in l]
        print(line)
        assert "domains=3, window=120s" in line, line
        assert len(deferred(g)) <= 3 + 1, deferred(g)


def test_mx_address_limit_is_a_key():
    """mx_address_limit = 2: twelve blackholed MX addresses cost two
    attempts (the default is 5: test_fail_storm_dns)."""
    records = {"many.test": [("MX", "10 mx1.many.test.")],
               "mx1.many.test": [("A", a) for a in BLACKHOLES]}
    ev, tried = blackholed_attempts(records, mx_address_limit="2")
    tried = sum(tried)
    print("mx_address_limit = 2: %d attempts; %s" % (tried, ev["msg"]))
    assert ev["event"] == "deferred" and tried == 2, (tried, ev)


def test_mx_session_limit_is_a_key(pki):  # noqa: F811
    """mx_session_limit = 1: a REQUIRETLS message whose DNSSEC-validated
    MX hosts talk verified TLS without REQUIRETLS keeps one session, then
    bounces (the default is 2: test_fail_storm_dns)."""
    ev, sessions = requiretls_sessions(pki, mx_session_limit="1")
    print("mx_session_limit = 1: sessions with %s; %s" % (sessions, ev["msg"]))
    assert ev["event"] == "bounced" and "5.7.30" in ev["msg"], ev
    assert sessions == [RT3_HOSTS[0][0]], sessions
