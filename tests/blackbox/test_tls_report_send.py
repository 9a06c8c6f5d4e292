"""spoolctl tls-report --send (RFC 8460 section 5): the day's sessions per
recipient domain go, gzipped, to the URIs of the domain's _smtp._tls TXT
record (dnsmasq): an HTTPS receiver on 127.0.0.1 (certificate of a test CA
made here) gets exactly one POST of application/tlsrpt+gzip per report, a
second run sends nothing, a receiver that answered 500 gets it on the next
run; a mailto: report is a multipart/report mailed through maildrop/,
DKIM-signed, that arrives at the SMTP sink; bad or missing records are
skipped with a line.
"""
import email
import email.policy
import gzip
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg
from test_deliverd import dkim_results, gen_key
from test_relay_tls import openssl

DOMAINS = ["web.test", "fail.test", "moved.test", "mail.test", "rcv.test", "bad.test", "none.test",
           "two.test", "ftp.test", "hang.test"]


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="sgrpt-")
    os.chmod(d, 0o755)  # readable by spoolctl's user after the drop
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=rpt test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key, csr, pem, ext = (os.path.join(d, "web." + x) for x in ("key", "csr", "pem", "ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(ca, 0o644)
    yield {"ca": ca, "web": (pem, key), "dir": d}
    shutil.rmtree(d, ignore_errors=True)


class Receiver:
    """HTTPS on 127.0.0.1:PORT recording every POST; status[path] answers."""

    def __init__(self, cert):
        self.posts, self.status = [], {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.posts.append({"path": self.path, "body": body,
                                    "type": self.headers.get("Content-Type")})
                self.send_response(outer.status.get(self.path, 200))
                self.send_header("Location", "/ok")  # followed only if 3xx were
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def world(pki, tmp_path):
    rcv = Receiver(pki["web"])
    url = "https://127.0.0.1:%d" % rcv.port
    # accepts connections and never answers: a sender posting to it waits
    hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    txt = {"web.test": ["v=TLSRPTv1; rua=%s/ok" % url],
           "fail.test": ["v=TLSRPTv1;rua=%s/fail , ftp://x.test/" % url],
           "moved.test": ["v=TLSRPTv1; rua=%s/moved" % url],
           "mail.test": ["v=TLSRPTv1; rua=mailto:tlsrpt@rcv.test"],
           "bad.test": ["v=TLSRPTv1; rua=%s/ok; rua=mailto:a@rcv.test" % url],
           "two.test": ["v=TLSRPTv1; rua=%s/ok" % url, "v=TLSRPTv1; rua=%s/ok2" % url],
           "ftp.test": ["v=TLSRPTv1; rua=ftp://x.test/r"],
           "hang.test": ["v=TLSRPTv1; rua=https://127.0.0.1:%d/r" % hang.getsockname()[1]]}
    port = smtpgate.free_port()
    # TXT records in a file: only there do quotes keep dnsmasq from
    # splitting the strings at commas
    conf = tmp_path / "txt.conf"
    conf.write_text("".join('txt-record=_smtp._tls.%s,"%s"\n' % (d, t)
                            for d in DOMAINS for t in txt.get(d, [])))
    recs = [peers.Dns.a("mx.sink.test", "127.0.0.1"), "--conf-file=%s" % conf]
    recs += [peers.Dns.mx(d, "mx.sink.test", 10) for d in DOMAINS]
    mx = peers.Mx(tls_dir=str(tmp_path), port=port).start()
    try:
        with peers.Dns(recs, workdir=str(tmp_path)) as dns:
            g = Gateway(tls=False, extra={
                "dns_server": dns.server, "remote_port": str(port), "retry_schedule": "1h",
                "tls_report_ca_file": pki["ca"], "tls_report_from": "tlsrpt@gate.test",
                "tls_report_org": "Gate Test Org", "tls_report_contact": "tls@gate.test",
                "sendmail_account": "acc"})
            g.ca_file = pki["ca"]
            with g:
                inject(g, "account", "acc")
                g.hang = hang
                yield g, rcv, mx, url
    finally:
        mx.stop()
        rcv.close()
        hang.close()


def deliver(g, rcpts):
    g.start("spoold", "deliverd")
    for r in rcpts:
        put_msg(g, "acc", [r])
    for r in rcpts:
        g.wait_events(lambda e: e["to"] == r and e["event"] == "delivered", timeout=30,
                      what="delivered to %s" % r)


def send(g, day, check=False):
    return g.spoolctl("tls-report", "--send", "--date", day, check=check, timeout=120)


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_https_once_and_retried(world):
    g, rcv, mx, url = world
    deliver(g, ["a@web.test", "b@web.test", "c@fail.test"])
    day = today()
    rcv.status["/fail"] = 500
    r = send(g, day)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "fail.test: %s/fail: failed: HTTP status 500" % url in r.stderr, r.stderr
    web = [p for p in rcv.posts if p["path"] == "/ok"]
    assert len(web) == 1, rcv.posts
    assert web[0]["type"] == "application/tlsrpt+gzip", web[0]
    rep = json.loads(gzip.decompress(web[0]["body"]))
    want = json.loads(g.spoolctl("tls-report", "--date", day, "--domain", "web.test",
                                 "--json").stdout)
    assert rep == want, (rep, want)
    assert rep["organization-name"] == "Gate Test Org", rep
    assert rep["contact-info"] == "tls@gate.test", rep
    assert rep["report-id"] == "%sT00:00:00Z_web.test_gate.test" % day, rep
    pol, = rep["policies"]
    assert pol["policy"]["policy-domain"] == "web.test", pol
    s = pol["summary"]
    assert s["total-successful-session-count"] + s["total-failure-session-count"] == 2, s
    assert "report of %s sent to %s/ok" % (day, url) in r.stdout, r.stdout
    assert "fail.test: 1 report URI(s) at _smtp._tls.fail.test ignored" in r.stdout, r.stdout
    # the next run: web.test is not sent again, fail.test now gets it
    rcv.status["/fail"] = 200
    n = len(rcv.posts)
    r = send(g, day)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [p["path"] for p in rcv.posts[n:]] == ["/fail"], rcv.posts[n:]
    assert "web.test: %s/ok: already sent" % url in r.stdout, r.stdout
    rep = json.loads(gzip.decompress(rcv.posts[-1]["body"]))
    assert rep["policies"][0]["policy"]["policy-domain"] == "fail.test", rep
    # and once more: nothing at all
    n = len(rcv.posts)
    r = send(g, day)
    assert r.returncode == 0 and len(rcv.posts) == n, (r.stdout, rcv.posts[n:])


def test_redirect_not_followed_and_certificate_verified(world):
    g, rcv, mx, url = world
    deliver(g, ["a@moved.test", "b@web.test"])
    rcv.status["/moved"] = 307
    del g.conf["tls_report_ca_file"]  # the system store: the test CA is not in it
    g.write_conf()
    r = send(g, today())
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "web.test: %s/ok: failed: " % url in r.stderr, r.stderr
    assert "certificate" in r.stderr.lower(), r.stderr
    assert rcv.posts == [], rcv.posts
    g.conf["tls_report_ca_file"] = g.ca_file
    g.write_conf()
    r = send(g, today())
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "moved.test: %s/moved: failed: HTTP status 307" % url in r.stderr, r.stderr
    assert sorted(p["path"] for p in rcv.posts) == ["/moved", "/ok"], rcv.posts


def test_bad_and_missing_records_skipped(world):
    g, rcv, mx, url = world
    deliver(g, ["a@bad.test", "b@none.test", "c@two.test", "d@ftp.test"])
    r = send(g, today())
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = r.stdout
    assert "bad.test: skipped: bad TLSRPT record at _smtp._tls.bad.test: more than one rua=" \
        in out, out
    assert "none.test: skipped: no TLSRPT record at _smtp._tls.none.test" in out, out
    assert "two.test: skipped: 2 TLSRPT records at _smtp._tls.two.test" in out, out
    assert "ftp.test: skipped: no mailto: or https: URI" in out, out
    assert rcv.posts == [], rcv.posts


def test_mailto_report_is_signed_multipart_report(world, pki):
    g, rcv, mx, url = world
    pem, txt = gen_key(pki["dir"], "rsa")
    inject(g, "dkim", "acc", "gate.test", "r1", "rsa", pem, "default")
    deliver(g, ["a@mail.test"])
    day = today()
    r = send(g, day)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "mail.test: report of %s sent to mailto:tlsrpt@rcv.test, queued as " % day \
        in r.stdout, r.stdout
    m, = mx.wait_received(1, rcpt="tlsrpt@rcv.test")
    assert m["from"] == "tlsrpt@gate.test", m
    msg = email.message_from_bytes(m["data"], policy=email.policy.compat32)
    assert msg["TLS-Report-Domain"] == "mail.test", msg
    assert msg["TLS-Report-Submitter"] == "gate.test", msg
    assert msg.get_content_type() == "multipart/report", msg
    assert msg.get_param("report-type") == "tlsrpt", msg
    text, att = msg.get_payload()
    assert text.get_content_type() == "text/plain", text
    assert att.get_content_type() == "application/tlsrpt+gzip", att
    assert att.get_filename().startswith("gate.test!mail.test!"), att.get_filename()
    assert att.get_filename().endswith(".json.gz"), att.get_filename()
    rep = json.loads(gzip.decompress(att.get_payload(decode=True)))
    assert rep["policies"][0]["policy"]["policy-domain"] == "mail.test", rep
    res = dkim_results(m["data"], {"r1._domainkey.gate.test": txt})
    assert res == [("gate.test", "r1", "rsa-sha256", True)], res
    # a second run queues nothing
    r = send(g, day)
    assert "mail.test: mailto:tlsrpt@rcv.test: already sent" in r.stdout, r.stdout
    assert g.files("maildrop") == [], g.files("maildrop")


def test_mailto_without_sender_skipped(world):
    g, rcv, mx, url = world
    del g.conf["tls_report_from"]
    g.write_conf()
    deliver(g, ["a@mail.test"])
    r = send(g, today())
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "mail.test: mailto:tlsrpt@rcv.test: skipped: tls_report_from is not set" \
        in r.stdout, r.stdout
    assert g.files("maildrop") == []


class _Silent:
    """A DNS server that reads queries and never answers (a dead resolver)."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def test_dns_failure_is_retried_not_skipped(world):
    """SERVFAIL or no answer at all for _smtp._tls.DOMAIN is not "no
    record": the run says so, exits 1 and sends nothing; the next run,
    with DNS back, sends the report once."""
    g, rcv, mx, url = world
    deliver(g, ["a@web.test"])
    day, good = today(), g.conf["dns_server"]
    with peers.AdResolver({}, bogus=["_smtp._tls.web.test"]) as bad:
        g.conf["dns_server"] = bad.server
        g.write_conf()
        r = send(g, day)
        assert ("_smtp._tls.web.test", "TXT") in bad.queries, bad.queries
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "web.test: _smtp._tls.web.test: failed: " in r.stderr, r.stderr
    assert "tried again by the next run" in r.stderr, r.stderr
    assert "skipped" not in r.stdout, r.stdout
    assert rcv.posts == [], rcv.posts
    dead = _Silent()
    try:
        g.conf["dns_server"] = dead.server
        g.write_conf()
        t0 = time.monotonic()
        r = send(g, day)  # bounded by the per-query wait, not a hang
        assert time.monotonic() - t0 < 100, "tls-report waited on a dead resolver"
    finally:
        dead.close()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "web.test: _smtp._tls.web.test: failed: " in r.stderr, r.stderr
    assert rcv.posts == [], rcv.posts
    g.conf["dns_server"] = good
    g.write_conf()
    r = send(g, day)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert [p["path"] for p in rcv.posts] == ["/ok"], rcv.posts
    assert "report of %s sent to %s/ok" % (day, url) in r.stdout, r.stdout


def test_rua_on_loopback_is_not_posted(world):
    """SSRF: a hostile domain's rua= names https://127.0.0.1:PORT/ (any
    private or link-local address would do). Without allow_fetch_to
    covering it nothing is POSTed there, the URI fails with the reason,
    and it is sent once the operator allows the range."""
    g, rcv, mx, url = world
    deliver(g, ["a@web.test"])
    g.conf["allow_fetch_to"] = []
    g.write_conf()
    r = send(g, today())
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert ("web.test: %s/ok: failed: refused: 127.0.0.1 is a loopback address "
            "(allow_fetch_to)" % url) in r.stderr, r.stderr
    assert rcv.posts == [], rcv.posts
    g.conf["allow_fetch_to"] = ["127.0.0.1/32"]
    g.write_conf()
    assert send(g, today()).returncode == 0
    assert [p["path"] for p in rcv.posts] == ["/ok"], rcv.posts


@pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")
@pytest.mark.skipif(not os.path.exists("/usr/bin/gdb"), reason="needs gdb")
def test_sender_cannot_open_keys(world):
    """spoolctl tls-report --send talks to servers that recipient domains
    name, as spoold_user: while it waits for one (hang.test's, which never
    answers), it cannot open keys/, a key file, db/track.key,
    db/envelope.key nor queue/ itself (Landlock, after the database is
    open); it still records what it sent and queues mailto: reports."""
    from test_confine import refused, secret_files
    from test_deliverd_keyproc import landlock_abi
    if landlock_abi() < 1:
        pytest.skip("no Landlock in this kernel")
    g, rcv, mx, url = world
    deliver(g, ["a@hang.test", "b@web.test", "c@mail.test"])
    paths = secret_files(g)
    p = subprocess.Popen([smtpgate.binary("spoolctl"), "-c", g.conf_path, "tls-report",
                          "--send", "--date", today()], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        g.hang.settimeout(30)
        conn, _ = g.hang.accept()       # it is posting now, waiting for an answer
        try:
            assert refused(p.pid, paths) == []
        finally:
            conn.close()                # it fails this URI and goes on
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (out, err)    # hang.test's URI failed
    assert "web.test: report of %s sent to %s/ok" % (today(), url) in out, (out, err)
    assert "mail.test: report of %s sent to mailto:tlsrpt@rcv.test, queued as " % today() \
        in out, (out, err)
    assert "hang.test: " in err, err
    r = send(g, today())
    assert "web.test: %s/ok: already sent" % url in r.stdout, r.stdout
