"""Per-destination TLS levels for MX delivery, the verification result in
events and log lines, and the TLS report (issue 17 items 1, 4 and 6).

dnsmasq (lib/peers.Dns) gives the MX records: good.test, vgood.test and
other.test -> mx.good.test (127.0.0.2, a certificate of a test CA naming
mx.good.test), self.test and selfmay.test -> mx.self.test (127.0.0.3,
self-signed), plain.test -> mx.plain.test (127.0.0.4, no STARTTLS). The
levels come from the shaping_file's `tls` key; tls_ca_file names the test
CA. Every peer listens on remote_port.
"""
import json
import os
import shutil
import tempfile
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg
from test_relay_tls import issue, openssl

SHAPING = """\
[good.test]
tls = secure
[vgood.test]
tls = verify
[other.test]
tls = secure
[self.test]
tls = verify
[selfmay.test]
tls = may
[plain.test]
tls = encrypt
"""


@pytest.fixture(scope="module")
def ca():
    d = tempfile.mkdtemp(prefix="sgpki-")
    os.chmod(d, 0o755)
    pem, key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=smtpgate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(pem, 0o644)
    yield {"ca": pem, "good": issue(d, pem, key, "mx.good.test")}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def world(ca, tmp_path):
    port = smtpgate.free_port()
    recs = [peers.Dns.mx("good.test", "mx.good.test", 10),
            peers.Dns.mx("other.test", "mx.good.test", 10),
            peers.Dns.mx("vgood.test", "mx.good.test", 10),
            peers.Dns.mx("self.test", "mx.self.test", 10),
            peers.Dns.mx("selfmay.test", "mx.self.test", 10),
            peers.Dns.mx("plain.test", "mx.plain.test", 10),
            peers.Dns.a("mx.good.test", "127.0.0.2"),
            peers.Dns.a("mx.self.test", "127.0.0.3"),
            peers.Dns.a("mx.plain.test", "127.0.0.4")]
    tdir = tmp_path / "selfsigned"
    tdir.mkdir()
    mxs = {"good": peers.Mx(cert=ca["good"], host="127.0.0.2", port=port),
           "self": peers.Mx(tls_dir=str(tdir), host="127.0.0.3", port=port,
                            helo="mx.self.test"),
           "plain": peers.Mx(host="127.0.0.4", port=port, helo="mx.plain.test")}
    with peers.Dns(recs, workdir=str(tmp_path)) as dns:
        for m in mxs.values():
            m.start()
        g = Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(port), "retry_schedule": "1h",
            "deliverd_workers": "2", "tls_ca_file": ca["ca"]})
        path = os.path.join(g.dir, "shaping")
        with open(path, "w") as f:
            f.write(SHAPING)
        g.conf["shaping_file"] = path
        g.write_conf()
        try:
            with g:
                inject(g, "account", "acc")
                yield g, mxs
        finally:
            for m in mxs.values():
                m.stop()


def outcome(g, rcpt):
    return g.wait_events(lambda e: e["to"] == rcpt and e["event"] in ("delivered", "deferred"),
                         timeout=30, what="an outcome for %s" % rcpt)[0]


def test_levels_per_destination(world):
    g, mxs = world
    g.start("deliverd")
    rcpts = ["a@good.test", "v@vgood.test", "b@other.test", "c@self.test", "d@selfmay.test", "e@plain.test"]
    for r in rcpts:
        put_msg(g, "acc", [r])
    ev = {r: outcome(g, r) for r in rcpts}
    # verify with the CA of tls_ca_file (name: the MX host), and secure
    # (name: good.test or a host inside it): delivered over verified TLS
    for r in ("a@good.test", "v@vgood.test"):
        assert ev[r]["event"] == "delivered", ev[r]
        assert ev[r]["tls_verified"] == "verified", ev[r]
    # secure: the certificate names mx.good.test, not other.test (nor a
    # host inside it): refused, although verify would pass
    e = ev["b@other.test"]
    assert e["event"] == "deferred", e
    assert e["msg"].startswith("451 4.7.5 mx.good.test[127.0.0.2]:"), e
    assert "certificate name mismatch" in e["msg"] and "other.test" in e["msg"], e
    assert e["category"] == "policy", e
    # verify against a self-signed certificate: deferred, nothing sent
    e = ev["c@self.test"]
    assert e["event"] == "deferred", e
    assert "certificate verification failed" in e["msg"], e
    assert e["tls_verified"] == "untrusted", e
    # may to the same host: delivered over TLS that nobody checked
    e = ev["d@selfmay.test"]
    assert e["event"] == "delivered" and e["tls_verified"] == "untrusted", e
    assert e["tls"].startswith("TLS"), e
    # encrypt without STARTTLS: deferred, not a word in clear
    e = ev["e@plain.test"]
    assert e["event"] == "deferred", e
    assert "TLS is required (encrypt): STARTTLS not offered" in e["msg"], e
    assert e["tls_verified"] == "none", e
    assert mxs["plain"].received() == []
    assert [m["tls"] for m in mxs["self"].received()] == [True]
    log = g.log("deliverd")
    assert "/verified, dsn=2.0.0" in log, log
    assert "tls=none/none, dsn=4.7.5" in log, log



def test_tls_report(world):
    g, mxs = world
    # connections from source_address: the report's sending-mta-ip
    g.conf["source_address"] = "127.0.0.2"
    g.write_conf()
    g.start("deliverd")
    for r in ("a@good.test", "a2@good.test", "c@self.test", "e@plain.test"):
        put_msg(g, "acc", [r])
        outcome(g, r)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    rep = json.loads(g.spoolctl("tls-report", "--date", day, "--json").stdout)
    # RFC 8460 section 4.4's fields
    assert set(rep) >= {"organization-name", "date-range", "contact-info", "report-id",
                        "policies"}, rep
    assert rep["date-range"] == {"start-datetime": day + "T00:00:00Z",
                                 "end-datetime": day + "T23:59:59Z"}, rep
    pols = {p["policy"]["policy-domain"]: p for p in rep["policies"]}
    good = pols["good.test"]
    assert good["policy"]["policy-type"] == "no-policy-found", good
    assert good["summary"] == {"total-successful-session-count": 2,
                               "total-failure-session-count": 0}, good
    assert "failure-details" not in good or good["failure-details"] == [], good
    bad = pols["self.test"]
    assert bad["summary"] == {"total-successful-session-count": 0,
                              "total-failure-session-count": 1}, bad
    # RFC 8460 4.4: the connection's addresses, the MX's EHLO name
    fd, = bad["failure-details"]
    assert fd == {"result-type": "certificate-not-trusted",
                  "sending-mta-ip": "127.0.0.2",
                  "receiving-mx-hostname": "mx.self.test",
                  "receiving-mx-helo": "mx.self.test",
                  "receiving-ip": "127.0.0.3",
                  "failed-session-count": 1}, fd
    fd, = pols["plain.test"]["failure-details"]
    assert fd["result-type"] == "starttls-not-supported", fd
    assert (fd["sending-mta-ip"], fd["receiving-ip"]) == ("127.0.0.2", "127.0.0.4"), fd
    assert fd["receiving-mx-helo"] == "mx.plain.test", fd
    # the good sessions came from there too (successes carry no addresses)
    assert {m["peer"] for m in mxs["good"].received()} == {"127.0.0.2"}
    # --domain narrows; the text form names the counts
    one = json.loads(g.spoolctl("tls-report", "--date", day, "--domain", "self.test",
                                "--json").stdout)
    assert [p["policy"]["policy-domain"] for p in one["policies"]] == ["self.test"], one
    txt = g.spoolctl("tls-report", "--date", day).stdout
    assert "good.test" in txt and "certificate-not-trusted" in txt, txt
    assert "127.0.0.2 " in txt and "127.0.0.3 " in txt, txt
    empty = json.loads(g.spoolctl("tls-report", "--date", "2001-01-01", "--json").stdout)
    assert empty["policies"] == [], empty


def test_tls_report_detail_bound_logged_once(world):
    """deliverd's own failures past the domain's 100 failure-details
    entries of the day go to the overflow entry, and the first is logged
    (once): 100 entries filed beforehand, two sessions to mx.self.test."""
    g, mxs = world
    inject(g, "tlsrpt", "self.test", 100)
    g.start("deliverd")
    for r in ("c@self.test", "c2@self.test"):
        put_msg(g, "acc", [r])
        assert outcome(g, r)["event"] == "deferred"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    rep = json.loads(g.spoolctl("tls-report", "--date", day, "--domain", "self.test",
                                "--json").stdout)
    pol, = rep["policies"]
    assert pol["summary"]["total-failure-session-count"] == 102, pol["summary"]
    over = [f for f in pol["failure-details"] if "failure-reason-code" in f]
    assert len(pol["failure-details"]) == 101, len(pol["failure-details"])
    assert [(f["result-type"], f["failed-session-count"]) for f in over] == \
        [("certificate-not-trusted", 2)], over
    lines = [l for l in g.log("deliverd").splitlines() if "tls-report: domain self.test" in l]
    assert len(lines) == 1, lines
    assert "certificate-not-trusted failures (policy no-policy-found) past 100" in lines[0], lines


def test_tls_report_old_rows_and_detail_bound():
    """A failure row stored before the addresses were recorded reports
    without them; a domain's failure-details stop at 100 entries a day,
    the rest counted in one entry per result type (RFC 8460 4.4 fields
    left out) that says so. deliverd-inject files the rows as deliverd's
    commit would (tlsrpt) or as it did before the addresses (tlsrpt-old)."""
    with Gateway(tls=False) as g:
        inject(g, "tlsrpt-old", "old.test", "mx.old.test", 3)
        assert inject(g, "tlsrpt", "many.test", 105) == ["overflow"]
        day = time.strftime("%Y-%m-%d", time.gmtime())
        rep = json.loads(g.spoolctl("tls-report", "--date", day, "--json").stdout)
    pols = {p["policy"]["policy-domain"]: p for p in rep["policies"]}
    fd, = pols["old.test"]["failure-details"]
    assert fd == {"result-type": "certificate-expired",
                  "receiving-mx-hostname": "mx.old.test",
                  "failed-session-count": 3}, fd
    many = pols["many.test"]
    assert many["summary"]["total-failure-session-count"] == 105, many["summary"]
    fds = many["failure-details"]
    assert len(fds) == 101, len(fds)
    over = [f for f in fds if "failure-reason-code" in f]
    assert len(over) == 1 and over[0]["failed-session-count"] == 5, over
    assert set(over[0]) == {"result-type", "failed-session-count",
                            "failure-reason-code"}, over
    assert "not itemized" in over[0]["failure-reason-code"], over
    assert all(f["sending-mta-ip"] == "127.0.0.1" and f["receiving-ip"].startswith("10.0.")
               for f in fds if f is not over[0]), fds
