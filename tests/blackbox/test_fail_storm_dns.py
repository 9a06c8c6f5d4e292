"""Failures that would multiply work, continued (h-dnsdown): the resolver
itself down (every lookup SERVFAILs or times out, for every domain) holds
delivery that needs DNS with one probe at a time instead of spending each
domain's suspend_after on it; a job tries at most 5 MX addresses and
keeps at most 2 sessions (Postfix's smtp_mx_address_limit and
smtp_mx_session_limit); a destination that keeps failing its TLS policy
(a TLSA lookup that fails under DANE, a required level the MX does not
meet) is suspended like one that refuses sessions, while a message's own
REQUIRETLS failure suspends nothing. Real binaries, scripted resolvers
and SMTP peers on 127.0.0.1; every wait bounded."""
import contextlib
import os
import time

import pytest

import peers
from smtpgate import Gateway, free_port, inject, put_msg, wait_for
from test_relay_tls import issue, pki  # noqa: F401 (the test CA fixture)
from test_requiretls import gateway, outcome, submit

# deliverd.8: DEST_DNS_DOWN_DOMAINS distinct domains make the resolver down
DOWN_DOMAINS = 8


class SwitchResolver(peers.AdResolver):
    """peers.AdResolver that, while `mode` is "servfail", answers every
    query SERVFAIL, and while it is "drop", answers none (a resolver that
    times out); mode None answers from the records."""

    def __init__(self, records, **kw):
        super().__init__(records, **kw)
        self.mode = None

    def _answer(self, q):
        if self.mode is None:
            return super()._answer(q)
        qn = q.question[0]
        self.queries.append((qn.name.to_text().rstrip(".").lower(),
                             self._rdt.to_text(qn.rdtype)))
        if self.mode == "drop":
            return None          # _serve sends nothing (to_wire fails)
        r = self._m.make_response(q)
        r.set_rcode(self._rc.SERVFAIL)
        return r


def shaping(g, text):
    g.conf["shaping_file"] = os.path.join(g.dir, "shaping")
    with open(g.conf["shaping_file"], "w") as f:
        f.write(text)
    g.write_conf()


def deferred(g):
    return [e for e in g.events() if e["event"] == "deferred"]


def looked_up(dns, domains):
    """The domains whose MX was asked for."""
    return {n for n, t in list(dns.queries) if t == "MX" and n in domains}


@pytest.mark.parametrize("mode,workers", [("servfail", 2), ("drop", 8)])
def test_resolver_down_holds_every_domain_with_one_probe(mode, workers):
    """The resolver SERVFAILs (or never answers) every query; 40 messages
    to 40 domains: after DOWN_DOMAINS domains failed the resolver is down
    (one log line): the other domains are not looked up, nor deferred one
    by one (but for the jobs already with a worker: one per worker); one
    probe at a time; an address literal is delivered meanwhile; when DNS
    answers again the first probe ends the state (one line) and all 40 are
    delivered."""
    n = 40
    domains = ["d%d.test" % i for i in range(n)]
    records = {d: [("MX", "10 mx.shared.test.")] for d in domains}
    records["mx.shared.test"] = [("A", "127.0.0.1")]
    with peers.Mx() as mx, SwitchResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(mx.port),
            "retry_schedule": "3s", "deliverd_workers": str(workers)}) as g:
        shaping(g, "[default]\nsuspend_for = 3s\n")
        dns.mode = mode
        inject(g, "account", "acc")
        for d in domains:
            put_msg(g, "acc", ["u@" + d])
        g.start("deliverd")
        wait_for(lambda: "state=down" in g.log("deliverd") or
                 len(looked_up(dns, set(domains))) >= n, 120,
                 what="the resolver down, or every domain looked up")
        # the jobs in flight come back (a lookup times out after 10 s)
        time.sleep(2 if mode == "servfail" else 12)
        tried = looked_up(dns, set(domains))
        ndef = len(deferred(g))
        print("resolver %s, %d workers: %d of %d domains looked up, %d deferred, "
              "%d MX queries" % (mode, workers, len(tried), n, ndef,
                                 sum(1 for _, t in dns.queries if t == "MX")))
        log = g.log("deliverd")
        assert log.count("state=down") == 1, log[-3000:]
        assert len(tried) <= DOWN_DOMAINS + workers + 1, tried
        # probes: one job at a time, one every suspend_for (3 s)
        before = len(deferred(g))
        put_msg(g, "acc", ["lit@[127.0.0.1]"])
        g.wait_events(lambda e: e["to"] == "lit@[127.0.0.1]" and e["event"] == "delivered",
                      timeout=30, what="the address literal delivered meanwhile")
        time.sleep(7 if mode == "servfail" else 14)
        probes = len(deferred(g)) - before
        print("while down: %d deferrals (probes) since the literal" % probes)
        # one at a time, one per suspend_for (3 s) at most
        assert 1 <= probes <= (5 if mode == "servfail" else 4), probes
        assert not any(e["event"] == "delivered" for e in g.events()
                       if not e["to"].startswith("lit@"))
        dns.mode = None
        wait_for(lambda: len(mx.received()) >= n + 1, 60, what="all 40 delivered")
        log = g.log("deliverd")
        print("\n".join(l for l in log.splitlines() if "resolver=" in l))
        assert log.count("state=up, was=down") == 1
        assert sorted(r for m in mx.received() for r in m["to"] if not r.startswith("lit@")) == \
            sorted("u@" + d for d in domains)


# ---------------------------------------------------------------- MX address and session limits

ADDR_LIMIT, SESSION_LIMIT = 5, 2
BLACKHOLES = ["127.0.0.%d" % i for i in range(2, 14)]
RT3_HOSTS = [("mx%d.rt3.test" % h, "127.0.0.%d" % (h + 1)) for h in (1, 2, 3)]


# a host that accepts and never says a word: each attempt waits command_timeout
SILENT = {"greeting": peers.hang(60)}


def blackholed_attempts(records, **extra):
    """One message to x@many.test, whose MX hosts (records) have the
    addresses BLACKHOLES, hosts that accept on one port and never greet;
    one worker, command_timeout 1s, extra: more keys. Its outcome event
    and the attempts each address had, in BLACKHOLES' order."""
    port = free_port()
    holes = [peers.Hop(SILENT, host=a, port=port) for a in BLACKHOLES]
    conf = {"remote_port": str(port), "retry_schedule": "1h", "command_timeout": "1s",
            "deliverd_workers": "1"}
    conf.update(extra)
    try:
        for s in holes:
            s.start()
        with peers.AdResolver(records) as dns, Gateway(tls=False, extra=dict(
                conf, dns_server=dns.server)) as g:
            g.start("deliverd")
            inject(g, "account", "acc")
            put_msg(g, "acc", ["x@many.test"])
            ev = g.wait_events(lambda e: e["to"] == "x@many.test", timeout=60,
                               what="the outcome")[0]
            time.sleep(1)
            return ev, [s.conns for s in holes]
    finally:
        for s in holes:
            s.stop()


def test_a_job_tries_at_most_five_blackholed_mx_addresses():
    """Three MX hosts with four addresses each, every one of them a host
    that accepts and never greets: one message makes ADDR_LIMIT attempts,
    not twelve, and is deferred."""
    records = {"many.test": [("MX", "%d mx%d.many.test." % (10 * h, h)) for h in (1, 2, 3)]}
    for h in (1, 2, 3):
        records["mx%d.many.test" % h] = [("A", a) for a in BLACKHOLES[4 * (h - 1):4 * h]]
    ev, tried = blackholed_attempts(records)
    print("12 blackholed MX addresses: %d attempts (%s); %s" % (sum(tried), tried, ev["msg"]))
    assert ev["event"] == "deferred", ev
    assert sum(tried) == ADDR_LIMIT, tried
    # in MX preference order (a host's addresses in the resolver's order)
    assert tried[:4] == [1] * 4 and sum(tried[4:8]) == 1 and sum(tried[8:]) == 0, tried


def requiretls_sessions(pki, **extra):  # noqa: F811
    """A REQUIRETLS message to r@rt3.test, whose three DNSSEC-validated MX
    hosts (RT3_HOSTS: peers.Mx on one port, certificates of the test CA)
    all talk verified TLS without REQUIRETLS; extra: more keys. Its
    outcome event and the hosts deliverd had a session with, in MX order."""
    d, ca_key = pki["dir"], os.path.join(pki["dir"], "ca.key")
    port = free_port()
    mxs = [peers.Mx(host=a, port=port, cert=issue(d, pki["ca"], ca_key, n)).start()
           for n, a in RT3_HOSTS]
    records = {"rt3.test": [("MX", "%d %s." % (10 * i, n))
                            for i, (n, _) in enumerate(RT3_HOSTS, 1)]}
    for n, a in RT3_HOSTS:
        records[n] = [("A", a)]
    try:
        with peers.AdResolver(records, secure=["rt3.test"]) as dns, \
                gateway(0, pki, relayhost="", dns_server=dns.server, dnssec="trust-ad",
                        remote_port=str(port), **extra) as g:
            submit(g, "r@rt3.test")
            ev = outcome(g, "r@rt3.test")
            time.sleep(1)
            log = g.log("deliverd")
            return ev, [n for n, _ in RT3_HOSTS if ("%s[" % n) in log]
    finally:
        for m in mxs:
            m.stop()


def test_requiretls_keeps_at_most_two_sessions(pki):  # noqa: F811
    """A REQUIRETLS message whose three DNSSEC-validated MX hosts all talk
    verified TLS without REQUIRETLS: two sessions, then it bounces (not a
    session with every host)."""
    ev, sessions = requiretls_sessions(pki)
    print("REQUIRETLS, 3 hosts without it: sessions with %s; %s" % (sessions, ev["msg"]))
    assert ev["event"] == "bounced" and "5.7.30" in ev["msg"], ev
    assert sessions == [n for n, _ in RT3_HOSTS][:SESSION_LIMIT], sessions


# ---------------------------------------------------------------- TLS policy failures

SUSPEND_AFTER = 5      # deliverd.8 TRAFFIC SHAPING default


def test_required_tls_level_not_met_suspends_the_destination():
    """`tls = encrypt` for a domain whose MX does not offer STARTTLS: 40
    messages do not make 40 sessions; after suspend_after jobs the
    destination is suspended like one that refuses sessions, and nothing
    is sent in clear."""
    n = 40
    srv = peers.Hop()       # EHLO without STARTTLS; accepts mail
    records = {"plain.test": [("MX", "10 mx.plain.test.")], "mx.plain.test": [("A", "127.0.0.1")]}
    with srv, peers.AdResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(srv.port),
            "retry_schedule": "1h", "deliverd_workers": "2"}) as g:
        shaping(g, "[plain.test]\ntls = encrypt\n")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["p{n}@plain.test"], count=n)
        g.start("deliverd")
        wait_for(lambda: "state=suspended" in g.log("deliverd") or
                 len(deferred(g)) >= n, 60, what="a suspension or a session per message")
        time.sleep(3)
        ndef = len(deferred(g))
        print("tls = encrypt unmet: %d sessions for %d messages, %d deferred; %s" % (
            srv.conns, n, ndef, deferred(g)[0]["msg"]))
        assert "destination=plain.test, state=suspended" in g.log("deliverd")
        assert srv.conns <= SUSPEND_AFTER + 2, srv.conns
        assert srv.received == []
        q = g.spoolctl_json("queue", "--json")
        assert sum(len(m.get("recipients", [])) for m in q) == n


DANE_DOMAIN, DANE_MX = "dane.example", "mx.dane.example"


@contextlib.contextmanager
def failing_tlsa(retry_schedule):
    """deliverd (dnssec = trust-ad, two workers, retry_schedule) for
    DANE_DOMAIN, whose MX records are secure and whose MX host DANE_MX (a
    peers.Mx on 127.0.0.1) has a TLSA record whose lookup SERVFAILs
    (bogus). Yields (the peers.Mx, the resolver, the TLSA name, the
    gateway)."""
    with peers.Mx() as mx:
        tlsa = "_%d._tcp.%s" % (mx.port, DANE_MX)
        records = {DANE_DOMAIN: [("MX", "10 %s." % DANE_MX)], DANE_MX: [("A", "127.0.0.1")],
                   tlsa: [("TLSA", "3 1 1 " + "00" * 32)]}
        with peers.AdResolver(records, secure=[DANE_DOMAIN], bogus=[tlsa]) as dns, Gateway(
                tls=False, extra={"dns_server": dns.server, "remote_port": str(mx.port),
                                  "dnssec": "trust-ad", "retry_schedule": retry_schedule,
                                  "deliverd_workers": "2"}) as g:
            yield mx, dns, tlsa, g


def test_failing_tlsa_lookup_suspends_the_destination():
    """dnssec = trust-ad, the MX records secure, the TLSA lookup of the MX
    host SERVFAILs (bogus): 40 messages do not make 40 TLSA lookups; the
    destination is suspended after suspend_after jobs; no session at all."""
    n = 40
    with failing_tlsa("1h") as (mx, dns, tlsa, g):
        inject(g, "account", "acc")
        put_msg(g, "acc", ["t{n}@" + DANE_DOMAIN], count=n)
        g.start("deliverd")
        wait_for(lambda: "state=suspended" in g.log("deliverd") or
                 len(deferred(g)) >= n, 60, what="a suspension or a lookup per message")
        time.sleep(3)
        lookups = sum(1 for name, t in list(dns.queries) if name == tlsa and t == "TLSA")
        ndef = len(deferred(g))
        print("TLSA SERVFAIL: %d TLSA queries for %d messages, %d deferred; %s" % (
            lookups, n, ndef, deferred(g)[0]["msg"]))
        assert "destination=%s, state=suspended" % DANE_DOMAIN in g.log("deliverd")
        assert all("TLSA lookup failed" in e["msg"] for e in deferred(g))
        assert ndef <= SUSPEND_AFTER + 2, ndef
        # glibc asks twice per lookup of a SERVFAIL name
        assert lookups <= 2 * (SUSPEND_AFTER + 2), lookups
        assert mx.received() == []


def test_requiretls_failures_do_not_suspend_the_destination(pki):  # noqa: F811
    """A message's own REQUIRETLS that no MX host meets bounces it (5.7.30)
    and is no failure of the destination: after eight such messages the
    destination is not suspended and an ordinary message is delivered."""
    d, ca_key = pki["dir"], os.path.join(pki["dir"], "ca.key")
    port = free_port()
    mx = peers.Mx(host="127.0.0.2", port=port,
                  cert=issue(d, pki["ca"], ca_key, "mx.rtonly.test")).start()
    records = {"rtonly.test": [("MX", "10 mx.rtonly.test.")],
               "mx.rtonly.test": [("A", "127.0.0.2")]}
    try:
        with peers.AdResolver(records, secure=["rtonly.test"]) as dns, \
                gateway(0, pki, relayhost="", dns_server=dns.server, dnssec="trust-ad",
                        remote_port=str(port)) as g:
            for i in range(8):
                submit(g, "r%d@rtonly.test" % i)
            for i in range(8):
                ev = outcome(g, "r%d@rtonly.test" % i)
                assert ev["event"] == "bounced" and "5.7.30" in ev["msg"], ev
            submit(g, "o@rtonly.test", requiretls=False, subject="plain")
            ev = outcome(g, "o@rtonly.test")
            print("8 REQUIRETLS bounces, then an ordinary message: %s" % ev["event"])
            assert ev["event"] == "delivered", ev
            assert "state=suspended" not in g.log("deliverd")
    finally:
        mx.stop()
