"""relayhost_tls (issue 14, finding 7): none | may | encrypt | verify against
a relayhost without STARTTLS, with a self-signed certificate, with a
certificate of a test CA naming it, with one naming another host, and one
whose handshake fails. encrypt and verify never send a byte of mail in
clear: what they cannot meet defers with a 4.7.5 text.

The relayhost is "localhost:PORT" (the name the certificates are checked
against); the test CA is made here with openssl.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

import peers
from smtpgate import Gateway, inject, make_cert, put_msg

LEVELS = ("none", "may", "encrypt", "verify")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def issue(d, ca, ca_key, name):
    """A certificate of the test CA for DNS name `name`: (cert, key)."""
    key, csr, pem = (os.path.join(d, "%s.%s" % (name, x)) for x in ("key", "csr", "pem"))
    ext = os.path.join(d, "%s.ext" % name)
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % name)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return pem, key


@pytest.fixture(scope="module")
def pki():
    # readable by deliverd's user: pytest's own tmp_path is 0700
    d = tempfile.mkdtemp(prefix="sgpki-")
    os.chmod(d, 0o755)
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=smtpgate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(ca, 0o644)
    yield {"dir": d, "ca": ca, "good": issue(d, ca, ca_key, "localhost"),
           "wrong": issue(d, ca, ca_key, "wrong.test")}
    shutil.rmtree(d, ignore_errors=True)


def server(kind, pki, tmp_path):
    """The relayhost: STARTTLS with the kind's certificate (none for
    "plain"); what peers.Mx (aiosmtpd) offers in EHLO, no PIPELINING."""
    if kind == "plain":
        cert = None
    elif kind == "selfsigned":
        cert = make_cert(str(tmp_path))
    else:
        cert = pki[kind]
    return peers.Hop(name="localhost", ehlo=peers.MX_EHLO, cert=cert)


def relay(level, port, pki):
    return Gateway(tls=False, extra={
        "relayhost": "localhost:%d" % port, "relayhost_tls": level,
        "relayhost_tls_ca_file": pki["ca"], "retry_schedule": "1h",
        "deliverd_workers": "1"})


def first_outcome(g, rcpt):
    return g.wait_events(lambda e: e["to"] == rcpt and e["event"] in ("delivered", "deferred"),
                         timeout=30, what="an outcome")[0]


# level -> server -> expected: "clear", "tls" (delivered) or a deferral text
EXPECT = {
    "none": {"plain": "clear", "selfsigned": "clear", "good": "clear", "wrong": "clear"},
    "may": {"plain": "clear", "selfsigned": "tls", "good": "tls", "wrong": "tls"},
    "encrypt": {"plain": "TLS is required (encrypt): STARTTLS not offered",
                "selfsigned": "tls", "good": "tls", "wrong": "tls"},
    "verify": {"plain": "TLS is required (verify): STARTTLS not offered",
               "selfsigned": "certificate verification failed: self-signed certificate",
               "good": "tls",
               "wrong": "certificate name mismatch: the certificate does not name localhost"},
}


@pytest.mark.parametrize("kind", ("plain", "selfsigned", "good", "wrong"))
@pytest.mark.parametrize("level", LEVELS)
def test_relayhost_tls(level, kind, pki, tmp_path):
    want = EXPECT[level][kind]
    mx = server(kind, pki, tmp_path).start()
    try:
        with relay(level, mx.port, pki) as g:
            g.start("deliverd")
            inject(g, "account", "acc")
            put_msg(g, "acc", ["r@dest.test"])
            ev = first_outcome(g, "r@dest.test")
            if want in ("clear", "tls"):
                assert ev["event"] == "delivered", ev
                m, = mx.messages
                assert m["tls"] == (want == "tls"), (level, kind, m)
            else:
                assert ev["event"] == "deferred", ev
                assert ev["msg"].startswith("451 4.7.5 localhost[127.0.0.1]:%d: " % mx.port), ev
                assert ev["msg"].endswith(want), ev
                assert mx.messages == [], "mail was sent although the policy refused"
                assert "451 4.7.5" in g.log("deliverd")
    finally:
        mx.stop()


# Offers STARTTLS, answers 220 to it and then sends no TLS at all;
# otherwise a plain sink (the clear retry of `may` lands here).
BROKEN_TLS = {"EHLO": "250-broken.test\r\n250 STARTTLS",
              "STARTTLS": [b"220 go ahead\r\nthis is not a TLS record\r\n", peers.CLOSE]}


@pytest.mark.parametrize("level", ("may", "encrypt"))
def test_failed_handshake(level, pki):
    """may retries in clear (and says so in the log); encrypt defers."""
    with peers.Hop(BROKEN_TLS, name="broken.test") as srv, relay(level, srv.port, pki) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["r@dest.test"])
        ev = first_outcome(g, "r@dest.test")
        if level == "may":
            assert ev["event"] == "delivered", ev
            assert len(srv.messages) == 1
            assert "retrying without TLS" in g.log("deliverd")
        else:
            assert ev["event"] == "deferred", ev
            assert "451 4.7.5" in ev["msg"] and "TLS handshake failed" in ev["msg"], ev
            assert srv.messages == []


def test_unreadable_ca_file_is_a_configuration_error(tmp_path):
    g = Gateway(tls=False, extra={"relayhost": "localhost:25", "relayhost_tls": "verify",
                                  "relayhost_tls_ca_file": str(tmp_path / "missing.pem")})
    with g:
        with pytest.raises(RuntimeError):
            g.start("deliverd")
        assert "relayhost_tls_ca_file" in g.log("deliverd")
        assert g.procs["deliverd"].wait(timeout=10) == 2


def test_bad_relayhost_tls_value_is_refused():
    g = Gateway(tls=False, extra={"relayhost_tls": "sometimes"})
    with g:
        r = g.spoolctl("queue", check=False)
        assert r.returncode == 2
        assert "relayhost_tls" in r.stderr and "none|may|encrypt|verify" in r.stderr
