"""DANE (issue 17 item 3, RFC 7672) with dnssec = trust-ad: the MX, its
address and its TLSA records come from a resolver that sets the AD bit
(peers.AdResolver, the stand-in for a trusted local validating resolver;
and peers.SignedZone: a zone signed here, served by nsd, validated by a
local unbound).
A TLSA 3 1 1 record of the next hop's key delivers over TLS; a mismatching
one defers without a byte of mail; a TLSA lookup the validator fails
(SERVFAIL: bogus) defers as dnssec-invalid; the same records without AD
(an unsigned zone) deliver as before DANE.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import peers
from smtpgate import Gateway, binary, inject, make_cert, put_msg

DOMAIN = "dane.example"  # not .test: libunbound answers NXDOMAIN for it (RFC 6761)
MXHOST = "mx.dane.example"


def spki_sha256(cert):
    """The 3 1 1 association data of a PEM certificate (SHA2-256 of its
    SubjectPublicKeyInfo)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         check=True, capture_output=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def resolver(port, tlsa, secure=True, bogus=False):
    name = "_%d._tcp.%s" % (port, MXHOST)
    records = {DOMAIN: [("MX", "10 %s." % MXHOST)], MXHOST: [("A", "127.0.0.1")]}
    if tlsa:
        records[name] = [("TLSA", tlsa)]
    return peers.AdResolver(records, secure=[DOMAIN] if secure else [],
                            bogus=[name] if bogus else [])


def built_with_libunbound():
    """configure found libunbound (config.h of the build under test)."""
    with open(os.path.join(os.path.dirname(binary("deliverd")), "..", "config.h")) as f:
        return "#define HAVE_LIBUNBOUND 1" in f.read()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def ca_chain(d, name):
    """A test CA and a certificate of it for `name`: (chain file with the
    leaf then the CA, key file, CA file)."""
    d = str(d)
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=dane test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key, csr, pem = (os.path.join(d, "leaf." + x) for x in ("key", "csr", "pem"))
    ext = os.path.join(d, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n" % name)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", "2", "-extfile", ext)
    chain = os.path.join(d, "chain.pem")
    with open(chain, "w") as f:
        f.write(open(pem).read() + open(ca).read())
    return chain, key, ca


def cert_sha256(pem):
    """The 2 0 1 association data: SHA2-256 of the whole certificate."""
    der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def signed_zone(tmp_path, port, tlsa, secure=True, bogus=False):
    """The real chain: DOMAIN signed with ldns-signzone, served by nsd,
    validated by a local unbound (whose AD bit deliverd trusts)."""
    d = tempfile.mkdtemp(prefix="sgzone-")   # the anchor: readable by deliverd's user
    os.chmod(d, 0o755)
    return peers.SignedZone(DOMAIN, ["@ MX 10 mx", "mx A 127.0.0.1",
                                     "_%d._tcp.mx TLSA %s" % (port, tlsa)],
                            d, signed=secure, bogus="TLSA" if bogus else None)


def outcome(tmp_path, tlsa_of, secure=True, bogus=False, dnssec="trust-ad", tls=True,
            cert=None, real=False, msg=None, report=None):
    """Delivers one message to DOMAIN; (first event, messages at the MX,
    deliverd's log); report: a list that gets the day's tls-report (RFC
    8460 JSON) policies. tlsa_of(cert) gives the TLSA record's text; real: the
    signed zone behind a validating unbound instead of peers.AdResolver;
    dnssec = validate: deliverd validates itself (libunbound) from the
    zone's key, nsd as its forwarder."""
    cert = cert or make_cert(str(tmp_path))
    mx = peers.Mx(cert=cert if tls else None).start()
    real = real or dnssec == "validate"
    dns = (signed_zone(tmp_path, mx.port, tlsa_of(cert[0]), secure, bogus) if real
           else resolver(mx.port, tlsa_of(cert[0]), secure, bogus))
    try:
        with dns:
            conf = {"dns_server": dns.server, "remote_port": str(mx.port),
                    "allow_next_hop": "127.0.0.1/32", "dnssec": dnssec,
                    "retry_schedule": "1h", "deliverd_workers": "1"}
            if dnssec == "validate":
                conf["dns_server"] = dns.authoritative
                conf["dnssec_trust_anchor"] = dns.anchor or other_anchor(dns.dir)
            return deliver(conf, mx, report, msg=msg)
    finally:
        mx.stop()


def other_anchor(d):
    """A trust anchor for another zone only: the unsigned zone is then
    insecure to libunbound, not bogus."""
    path = os.path.join(d, "other.ds")
    with open(path, "w") as f:
        f.write("example.org. IN DS 12345 13 2 %s\n" % ("00" * 32))
    os.chmod(path, 0o644)
    return path


def deliver(conf, mx, report=None, msg=None):
    with Gateway(tls=False, extra=conf) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["r@" + DOMAIN], msg=msg)
        ev = g.wait_events(lambda e: e["event"] in ("delivered", "deferred"),
                           timeout=30, what="an outcome")[0]
        if report is not None:
            day = time.strftime("%Y-%m-%d", time.gmtime())
            report += json.loads(g.spoolctl("tls-report", "--date", day,
                                            "--json").stdout)["policies"]
        return ev, mx.received(), g.log("deliverd")


def match(cert):
    return "3 1 1 " + spki_sha256(cert)


def mismatch(cert):
    return "3 1 1 " + "00" * 32


def test_tlsa_match_delivers_over_tls_with_dane(tmp_path):
    ev, got, log = outcome(tmp_path, match)
    assert ev["event"] == "delivered", ev
    assert ev.get("tls_verified") == "dane", ev     # issue 17 item 6
    m, = got
    assert m["tls"], m
    assert re.search(r": DANE: a TLSA record of %s matched" % re.escape(MXHOST), log), log


@pytest.mark.parametrize("name,delivered", [(MXHOST, True), ("other.test", False)])
def test_dane_ta_checks_the_mx_name(tmp_path, name, delivered):
    """DANE-TA(2): the chain must lead to the TLSA's CA and the certificate
    name the MX host (RFC 7672 3.2.2); DANE-EE above needs no name."""
    chain, key, ca = ca_chain(tmp_path, name)
    ev, got, _ = outcome(tmp_path, lambda c: "2 0 1 " + cert_sha256(ca), cert=(chain, key))
    if delivered:
        assert ev["event"] == "delivered", ev
        assert got and got[0]["tls"]
    else:
        assert ev["event"] == "deferred", ev
        assert "DANE: no TLSA record matches the certificate (hostname mismatch)" \
            in ev["msg"], ev
        assert got == []


def test_tlsa_mismatch_defers_without_sending(tmp_path):
    rep = []
    ev, got, log = outcome(tmp_path, mismatch, report=rep)
    assert ev["event"] == "deferred", ev
    assert ev["msg"].startswith("451 4.7.5 %s[127.0.0.1]:" % MXHOST), ev
    assert "DANE: no TLSA record matches the certificate" in ev["msg"], ev
    assert got == []
    # the TLS report names the connection (RFC 8460 4.4)
    pol, = rep
    fd, = pol["failure-details"]
    assert fd["result-type"] == "tlsa-invalid", fd
    assert (fd["sending-mta-ip"], fd["receiving-ip"]) == ("127.0.0.1", "127.0.0.1"), fd


def test_dane_next_hop_without_starttls_defers(tmp_path):
    ev, got, _ = outcome(tmp_path, match, tls=False)
    assert ev["event"] == "deferred", ev
    assert "TLS is required (DANE)" in ev["msg"], ev
    assert got == []


def test_bogus_tlsa_defers_dnssec_invalid(tmp_path):
    rep = []
    ev, got, _ = outcome(tmp_path, match, bogus=True, report=rep)
    assert ev["event"] == "deferred", ev
    assert ev["msg"].startswith("451 4.7.5 %s: DANE: TLSA lookup failed (dnssec-invalid)"
                                % MXHOST), ev
    assert got == []
    # no session was made, and the TLS report still counts the failure
    pol, = rep
    assert pol["policy"]["policy-type"] == "tlsa", pol
    assert pol["summary"]["total-failure-session-count"] == 1, pol
    fd, = pol["failure-details"]
    assert fd["result-type"] == "dnssec-invalid", fd
    assert fd["receiving-mx-hostname"] == MXHOST, fd


@pytest.mark.parametrize("secure,dnssec", [(False, "trust-ad"), (True, "off")])
def test_insecure_or_off_delivers_as_before(tmp_path, secure, dnssec):
    """Without AD (unsigned zone) or with dnssec = off, even a mismatching
    TLSA record is ignored: opportunistic TLS as before DANE."""
    ev, got, log = outcome(tmp_path, mismatch, secure=secure, dnssec=dnssec)
    assert ev["event"] == "delivered", ev
    m, = got
    assert m["tls"], m
    assert "DANE" not in log, log


@pytest.mark.parametrize("dnssec", ["trust-ad", "validate"])
@pytest.mark.parametrize("case", ["match", "mismatch", "bogus", "unsigned"])
def test_signed_zone_validated_by_unbound(tmp_path, case, dnssec):
    """The same outcomes through a real DNSSEC chain (nsd serving a zone
    signed in the test, a validating unbound with its key as trust anchor):
    match delivers over TLS, mismatch defers, a corrupted TLSA signature
    (unbound: SERVFAIL) defers as dnssec-invalid, the unsigned zone with a
    mismatching record delivers as before DANE. With dnssec = validate
    deliverd validates itself (libunbound, the zone's key as trust anchor,
    nsd as its forwarder); with trust-ad unbound validates."""
    for tool in ("nsd", "unbound", "ldns-signzone", "ldns-keygen"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (contrib/install-deps)" % tool)
    if dnssec == "validate" and not built_with_libunbound():
        pytest.skip("deliverd was built without libunbound (libunbound-dev)")
    ev, got, log = outcome(tmp_path, match if case == "match" else mismatch, real=True,
                           bogus=case == "bogus", secure=case != "unsigned", dnssec=dnssec)
    if case in ("match", "unsigned"):
        assert ev["event"] == "delivered", ev
        assert got and got[0]["tls"], got
        assert ("DANE: a TLSA record of %s matched" % MXHOST in log) == (case == "match"), log
    else:
        assert ev["event"] == "deferred", ev
        want = ("TLSA lookup failed (dnssec-invalid)" if case == "bogus"
                else "DANE: no TLSA record matches the certificate")
        assert want in ev["msg"], ev
        assert got == []


def test_dnssec_validate_without_trust_anchor_is_a_config_error(tmp_path):
    """dnssec = validate with a trust anchor file that is not there: exit 2
    naming dnssec and the file, at start rather than in every worker."""
    if not built_with_libunbound():
        pytest.skip("deliverd was built without libunbound (libunbound-dev)")
    with Gateway(tls=False, extra={"dnssec": "validate",
                                   "dnssec_trust_anchor": "/nonexistent/root.key"}) as g:
        r = subprocess.run([binary("deliverd"), "-c", g.conf_path], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2, r
        assert "dnssec: trust anchor /nonexistent/root.key: No such file" in r.stderr, r.stderr


def test_tls_required_no_skips_dane(tmp_path):
    """RFC 8689 section 5: with "TLS-Required: No" in its header the
    message is delivered although no TLSA record matches (what
    test_tlsa_mismatch_defers_without_sending defers), over TLS."""
    from smtpgate import message
    msg = message(to="r@" + DOMAIN, headers={"TLS-Required": "No"})
    ev, got, log = outcome(tmp_path, mismatch, msg=msg)
    assert ev["event"] == "delivered", ev
    m, = got
    assert m["tls"], m
    assert "TLS-Required: No: the MTA-STS and DANE policies of %s" % DOMAIN in log, log


RELAY = "relay.dane.example"


def relay_outcome(tmp_path, tlsa_of, secure=True, tls=True, report=None):
    """relayhost_tls = dane: one message through relayhost RELAY:PORT whose
    address and TLSA records come from the AD-setting resolver; (first
    event, messages at the relay, deliverd's log)."""
    tmp_path.mkdir()
    cert = make_cert(str(tmp_path))
    mx = peers.Mx(cert=cert if tls else None).start()
    records = {RELAY: [("A", "127.0.0.1")],
               "_%d._tcp.%s" % (mx.port, RELAY): [("TLSA", tlsa_of(cert[0]))]}
    try:
        with peers.AdResolver(records, secure=[DOMAIN] if secure else []) as dns:
            conf = {"dns_server": dns.server, "relayhost": "%s:%d" % (RELAY, mx.port),
                    "relayhost_tls": "dane", "dnssec": "trust-ad",
                    "retry_schedule": "1h", "deliverd_workers": "1"}
            return deliver(conf, mx, report)
    finally:
        mx.stop()


def test_relayhost_dane_match_mismatch_insecure(tmp_path):
    """The relayhost's TLSA records (_PORT._tcp.RELAY), when its address
    records are DNSSEC-secure: a match delivers over TLS checked by DANE; a
    mismatch or a relay without STARTTLS defers without a byte of mail;
    insecure records are opportunistic TLS (may), as Postfix's "dane"."""
    rep = []
    ev, got, log = relay_outcome(tmp_path / "m", match, report=rep)
    assert ev["event"] == "delivered", ev
    # a session with the relayhost is not one with DOMAIN's MX: nothing
    # of it goes into DOMAIN's TLS report (RFC 8460 is about MX delivery)
    assert rep == [], rep
    assert ev.get("tls_verified") == "dane", ev
    assert got and got[0]["tls"], got
    assert re.search(r": DANE: a TLSA record of %s matched" % re.escape(RELAY), log), log
    ev, got, log = relay_outcome(tmp_path / "x", mismatch)
    assert ev["event"] == "deferred", ev
    assert ev["msg"].startswith("451 4.7.5 %s[127.0.0.1]:" % RELAY), ev
    assert "DANE: no TLSA record matches the certificate" in ev["msg"], ev
    assert got == []
    ev, got, _ = relay_outcome(tmp_path / "n", match, tls=False)
    assert ev["event"] == "deferred" and "TLS is required (DANE)" in ev["msg"], ev
    assert got == []
    ev, got, log = relay_outcome(tmp_path / "i", mismatch, secure=False)
    assert ev["event"] == "delivered", ev
    assert got and got[0]["tls"], got
    assert "DANE:" not in log, log


@pytest.mark.parametrize("extra,want", [
    ({"relayhost": RELAY + ":2525", "dnssec": "off"}, "dane needs dnssec = trust-ad or validate"),
    ({"relayhost": "127.0.0.1:2525", "dnssec": "trust-ad"}, "dane needs the relayhost as a host name"),
])
def test_relayhost_dane_config_errors(tmp_path, extra, want):
    """DANE for the relayhost needs DNSSEC and a host name: exit 2 at start."""
    with Gateway(tls=False, extra=dict(extra, relayhost_tls="dane")) as g:
        r = subprocess.run([binary("deliverd"), "-c", g.conf_path], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2, r
        assert "relayhost_tls" in r.stderr and want in r.stderr, r.stderr
