"""NXDOMAIN believed with care (suppressions applied by mistake, h-nxsupp).

A recipient domain that DNS says does not exist bounces (CONTRACT), but
1. a resolver that answers NXDOMAIN for every name must not bounce (nor
   suppress) every recipient: deliverd checks that the domain's top-level
   zone still answers (then the root, for a top-level domain that does not
   exist) and otherwise defers with 451 4.4.3;
2. a domain that is NXDOMAIN for an hour must not put every address mailed
   in that hour on the suppression list for a year: the bounce is the same,
   but the address is suppressed only once the domain has been NXDOMAIN for
   nxdomain_confirm (24h), and a domain that resolves again starts over;
3. a 5.1.1 from the MX still suppresses at once.
Real binaries, an aiosmtpd MX on 127.0.0.3, a dnspython resolver on a free
UDP port whose records (and its NXDOMAIN-for-everything mode) the test
changes while deliverd runs; libfaketime for the day that passes. Every
wait is bounded.
"""
import json
import signal

import dns.message
import dns.rcode

import peers
import smtpgate
from smtpgate import Gateway, smtp_send, wait_for

NXREPLY = "550 5.1.2 Host or domain name not found: %s (NXDOMAIN)"
BROKEN = "451 4.4.3 DNS lookup failed: DNS resolver answers NXDOMAIN for the parent zone too"


class Resolver(peers.AdResolver):
    """peers.AdResolver (answers from records, NXDOMAIN for other names)
    that, with nxall set, answers NXDOMAIN for every name: a broken
    forwarder."""

    def __init__(self, records):
        super().__init__(records)
        self.nxall = False

    def _answer(self, q):
        if not self.nxall:
            return super()._answer(q)
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.NXDOMAIN)
        return r

    def set(self, name, recs):
        self.records[name] = recs

    def drop(self, name):
        self.records.pop(name, None)


def records():
    return {"": [("NS", "a.root-servers.test.")],   # the root
            "test": [("NS", "ns.test.")],            # the top-level zone
            "a.test": [("MX", "10 mx.a.test.")],
            "mx.a.test": [("A", "127.0.0.3")]}


def event(g, to, kind, n=1):
    """The n-th event of kind for to (waits for it)."""
    return wait_for(
        lambda: (lambda l: l[n - 1] if len(l) >= n else None)(
            [e for e in g.events() if e["to"] == to and e["event"] == kind]),
        30, what="%s event %d for %s" % (kind, n, to))


def outcome(g, to):
    """The first deferred or bounced event for to (waits for it)."""
    return wait_for(lambda: ([e for e in g.events() if e["to"] == to
                              and e["event"] in ("deferred", "bounced")] or [None])[0],
                    30, what="an outcome for %s" % to)


def suppressed(g):
    return sorted(e["address"] for e in
                  json.loads(g.spoolctl("suppression", "list", "--json").stdout))


def gateway(res, port, **extra):
    conf = {"dns_server": res.server, "remote_port": str(port),
            "retry_schedule": "1h"}
    conf.update(extra)
    g = Gateway(tls=False, port_tls="none", extra=conf)
    g.add_account("acc", ips=["127.0.0.1/32"])
    return g


def test_resolver_answering_nxdomain_for_everything_defers():
    """Every name NXDOMAIN, the top-level zone and the root too: the mail
    of a.test (which exists) and b.test (which does not) is deferred with
    451 4.4.3, nothing bounces, nobody is suppressed, deliverd logs it.
    The resolver mends; after a reload (new workers, no cached check) and
    a retry a.test is delivered, b.test bounces as NXDOMAIN, and so does
    a top-level domain the root does not know (w@gmail.con)."""
    port = smtpgate.free_port()
    mx = peers.Mx(host="127.0.0.3", port=port).start()
    res = Resolver(records()).start()
    res.nxall = True
    try:
        with gateway(res, port) as g:
            g.start()
            smtp_send(g, ["u@a.test"])
            smtp_send(g, ["v@b.test"])
            for to in ("u@a.test", "v@b.test"):
                ev = outcome(g, to)
                assert ev["event"] == "deferred" and ev["msg"].startswith(BROKEN), ev
            assert [e for e in g.events() if e["event"] == "bounced"] == []
            assert suppressed(g) == []
            log = g.log("deliverd")
            assert "NXDOMAIN for a.test not believed" in log, log
            assert "nxdomain check: DNS resolver answers NXDOMAIN" in log, log
            assert mx.received() == []
            # the resolver answers again
            res.nxall = False
            g.procs["deliverd"].send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in g.log("deliverd"), 15,
                     what="deliverd's reload")
            g.spoolctl("retry", "--all")
            event(g, "u@a.test", "delivered")
            assert len(mx.received("u@a.test")) == 1
            ev = event(g, "v@b.test", "bounced")
            assert ev["msg"] == NXREPLY % "b.test" and ev["category"] == "bad-domain", ev
            smtp_send(g, ["w@gmail.con"])
            ev = outcome(g, "w@gmail.con")
            assert ev["event"] == "bounced" and ev["msg"] == NXREPLY % "gmail.con", ev
            assert "top-level domain con does not exist" in g.log("deliverd")
    finally:
        res.stop()
        mx.stop()


def test_nxdomain_suppresses_only_once_confirmed():
    """a@nx.test and f@flap.test: NXDOMAIN, bounced with the usual reply
    and category, suppressed neither (logged: unconfirmed). flap.test
    then resolves: g@flap.test is delivered (its NXDOMAIN run is forgotten)
    and a 5.1.1 from its MX suppresses gone@flap.test at once. flap.test
    goes away again. 25 hours later (nxdomain_confirm is 24h) a@nx.test
    bounces again and is suppressed; f@flap.test bounces and is not: its
    domain has been NXDOMAIN only since it stopped resolving."""
    port = smtpgate.free_port()
    mx = peers.Mx(host="127.0.0.3", port=port).start()
    mx.rules["gone@flap.test"] = ["550 5.1.1 <gone@flap.test>: Recipient "
                                  "address rejected: User unknown"]
    res = Resolver(records()).start()
    try:
        with gateway(res, port) as g:
            g.start()
            smtp_send(g, ["a@nx.test"])
            smtp_send(g, ["f@flap.test"])
            for to, dom in (("a@nx.test", "nx.test"), ("f@flap.test", "flap.test")):
                ev = event(g, to, "bounced")
                assert ev["msg"] == NXREPLY % dom, ev
                assert (ev["class"], ev["category"]) == ("remote", "bad-domain"), ev
            assert suppressed(g) == []
            log = g.log("deliverd")
            for to in ("a@nx.test", "f@flap.test"):
                assert ("to=<%s>, not suppressed for account acc: category=bad-domain, "
                        "stage=connect, unconfirmed" % to) in log, log

            res.set("flap.test", [("MX", "10 mx.flap.test.")])
            res.set("mx.flap.test", [("A", "127.0.0.3")])
            smtp_send(g, ["g@flap.test"])
            event(g, "g@flap.test", "delivered")
            assert "domain flap.test resolves again" in g.log("deliverd")
            smtp_send(g, ["gone@flap.test"])
            event(g, "gone@flap.test", "bounced")
            assert suppressed(g) == ["gone@flap.test"]
            res.drop("flap.test")
            res.drop("mx.flap.test")

            # a restart (the cached connection to flap.test goes) under a
            # clock 25 hours ahead
            g.stop("deliverd")
            tsfile, _ = smtpgate.start_faketime(g)
            with open(tsfile, "w") as f:
                f.write("+%d\n" % (25 * 3600))
            smtp_send(g, ["a@nx.test"])
            smtp_send(g, ["f@flap.test"])
            for to, dom in (("a@nx.test", "nx.test"), ("f@flap.test", "flap.test")):
                ev = event(g, to, "bounced", 2)
                assert ev["msg"] == NXREPLY % dom, ev
                assert [e for e in g.events() if e["to"] == to and e["event"] == "deferred"] == []
            assert suppressed(g) == ["a@nx.test", "gone@flap.test"]
            e = json.loads(g.spoolctl("suppression", "show", "a@nx.test",
                                      "--json").stdout)
            assert "bad-domain" in json.dumps(e) and "NXDOMAIN" in json.dumps(e), e
            assert ("to=<f@flap.test>, not suppressed for account acc: "
                    "category=bad-domain, stage=connect, unconfirmed: the domain "
                    "has been NXDOMAIN for 0s") in g.log("deliverd")
            # the suppressed address is refused at filing, the other is not
            smtp_send(g, ["a@nx.test"])
            ev = event(g, "a@nx.test", "bounced", 3)
            assert ev["class"] == "policy" and "permanent delivery errors" in ev["msg"], ev
    finally:
        res.stop()
        mx.stop()


def test_nxdomain_confirm_0_suppresses_at_once_and_the_check_is_cached():
    """nxdomain_confirm = 0: the first NXDOMAIN suppresses (the old rule,
    for those who want it). Ten NXDOMAIN domains under .test cost at most
    one NS query of "test" per worker (2), not one each: the parent-zone
    check is cached."""
    port = smtpgate.free_port()
    res = Resolver(records()).start()
    rcpts = ["a@nx%d.test" % i for i in range(10)]
    try:
        with gateway(res, port, nxdomain_confirm="0", deliverd_workers="2") as g:
            g.start()
            for to in rcpts:
                smtp_send(g, [to])
            for to in rcpts:
                ev = event(g, to, "bounced")
                assert ev["msg"] == NXREPLY % to.split("@")[1], ev
            assert suppressed(g) == sorted(rcpts)
            ns = [q for q in res.queries if q == ("test", "NS")]
            assert 1 <= len(ns) <= 2, res.queries
    finally:
        res.stop()
