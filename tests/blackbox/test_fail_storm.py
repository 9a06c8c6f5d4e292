"""Failures must not multiply work (deliverd): a destination that cannot be
reached is not probed once per message. Real peers on 127.0.0.1 (aiosmtpd),
a scripted resolver (peers.AdResolver: SERVFAIL for the broken domains).
Every wait bounded."""
import time

import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for

# deliverd's defaults (deliverd.8 TRAFFIC SHAPING): suspend_after 5; with
# deliverd_workers 2 at most two jobs per worker are in flight besides
SUSPEND_AFTER = 5
IN_FLIGHT = 2 * 2


def mx_queries(dns, domain):
    return sum(1 for name, qtype in list(dns.queries) if name == domain and qtype == "MX")


def deferred_to(g, domain):
    return [e for e in g.events() if e["event"] == "deferred" and e["to"].endswith("@" + domain)]


def test_dns_servfail_burst_is_not_looked_up_per_message():
    """30 messages to a domain whose MX lookup fails (SERVFAIL): after
    suspend_after failed lookups the domain is suspended like an unreachable
    one; the rest wait without a lookup, an attempt or an event each, and
    stay queued."""
    n = 30
    with peers.AdResolver({}, bogus=["dnsfail.test"]) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "retry_schedule": "1h"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for i in range(n):
            put_msg(g, "acc", ["u%d@dnsfail.test" % i])
        wait_for(lambda: "state=suspended" in g.log("deliverd") or
                 len(deferred_to(g, "dnsfail.test")) >= n, 60,
                 what="a suspension or every message tried")
        # what was in flight at the suspension comes back; nothing more
        time.sleep(3)
        tried, queries = len(deferred_to(g, "dnsfail.test")), mx_queries(dns, "dnsfail.test")
        print("DNS SERVFAIL burst: %d messages, %d deferred, %d MX queries" % (n, tried, queries))
        assert "destination=dnsfail.test, state=suspended" in g.log("deliverd")
        assert tried <= SUSPEND_AFTER + IN_FLIGHT, tried
        # glibc's resolver asks twice (retry 2) per lookup of a SERVFAIL name
        assert queries <= 2 * (SUSPEND_AFTER + IN_FLIGHT), queries
        # nothing is lost: every recipient is still queued
        q = g.spoolctl_json("queue", "--json")
        pending = [r for m in q for r in m.get("recipients", [])]
        assert len(pending) == n, q
        assert g.procs["deliverd"].poll() is None


def test_dns_failure_suspends_the_domain_not_its_hosting_destination():
    """Two domains learned to share one MX host set; the MX lookup of one
    starts failing: that domain is suspended on its own, the other keeps
    its deliveries through the shared destination. (One message per
    connection: a cached connection needs no lookup.)"""
    records = {"good.test": [("MX", "10 mx.hoster.test.")],
               "broken.test": [("MX", "10 mx.hoster.test.")],
               "mx.hoster.test": [("A", "127.0.0.1")]}
    with peers.Mx() as mx, peers.AdResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(mx.port),
            "retry_schedule": "1h", "max_msgs_per_connection": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for d in ("good.test", "broken.test"):
            put_msg(g, "acc", ["first@" + d])
            g.wait_events(lambda e: e["to"] == "first@" + d and e["event"] == "delivered",
                          timeout=30, what="the first message to " + d)
        shared = "destination=mx{mx.hoster.test}, domain=broken.test"
        assert shared in g.log("deliverd")
        dns.bogus.add("broken.test")
        for i in range(12):
            put_msg(g, "acc", ["b%d@broken.test" % i])
        try:
            wait_for(lambda: "destination=broken.test, state=suspended" in g.log("deliverd"),
                     30, what="broken.test suspended")
        except Exception:
            print(g.log("deliverd")[-6000:])
            raise
        put_msg(g, "acc", ["later@good.test"])
        g.wait_events(lambda e: e["to"] == "later@good.test" and e["event"] == "delivered",
                      timeout=30, what="good.test delivered meanwhile")
        log = g.log("deliverd")
        print("\n".join(l for l in log.splitlines() if "destination=" in l))
        assert "destination=mx{mx.hoster.test}, state=suspended" not in log
        assert len(deferred_to(g, "broken.test")) <= SUSPEND_AFTER + IN_FLIGHT
