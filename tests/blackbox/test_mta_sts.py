"""MTA-STS (RFC 8461, issue 17 item 2): deliverd looks up _mta-sts.DOMAIN
TXT (dnsmasq), fetches https://mta-sts.DOMAIN/.well-known/mta-sts.txt from a
local HTTPS policy server on 127.0.0.1:443 whose certificate comes from a
test CA made here, and applies the policy: enforce with an MX that the
policy does not list defers and sends nothing; enforce with a listed MX and
a verified certificate delivers (logged as verify=mta-sts); testing with a
mismatch delivers and logs the failure; the policy is cached for max_age.
"""
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import peers
from smtpgate import Gateway, inject, put_msg

POLICIES = {
    "bad.test": "mode: enforce\nmx: mx.other.test\n",
    "good.test": "mode: enforce\nmx: *.good.test\n",
    "try.test": "mode: testing\nmx: mx.other.test\n",
    # listed MX, but the MX certificate does not name it (see pki)
    "wrong.test": "mode: enforce\nmx: mx.wrong.test\n",
    "name.test": "mode: testing\nmx: mx.name.test\n",
}
# down.test publishes the TXT record but its policy server answers 404
DOMAINS = sorted(POLICIES) + ["down.test"]


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def issue(d, ca, ca_key, stem, names):
    """A certificate of the test CA for the DNS names: (cert, key)."""
    key, csr, pem, ext = (os.path.join(d, "%s.%s" % (stem, x))
                          for x in ("key", "csr", "pem", "ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % ",".join("DNS:" + n for n in names))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=%s" % names[0])
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return pem, key


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="sgsts-")
    os.chmod(d, 0o755)  # readable by deliverd's user
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=sts test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(ca, 0o644)
    yield {"ca": ca,
           "web": issue(d, ca, ca_key, "web", ["mta-sts." + x for x in DOMAINS]),
           "mx": issue(d, ca, ca_key, "mx", ["mx." + x for x in DOMAINS
                                              if x not in ("wrong.test", "name.test")])}
    shutil.rmtree(d, ignore_errors=True)


class PolicyServer:
    """HTTPS on 127.0.0.1:443 serving POLICIES by Host; counts fetches."""

    def __init__(self, cert):
        self.fetches = {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                dom = self.headers.get("Host", "").split(":")[0][len("mta-sts."):]
                outer.fetches[dom] = outer.fetches.get(dom, 0) + 1
                body = POLICIES.get(dom)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                body = ("version: STSv1\n%smax_age: 86400\n" % body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 443), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def env(pki, tmp_path):
    records = []
    for d in DOMAINS:
        records += [peers.Dns.mx(d, "mx." + d, 10), peers.Dns.a("mx." + d, "127.0.0.1"),
                    peers.Dns.a("mta-sts." + d, "127.0.0.1"),
                    "--txt-record=_mta-sts.%s,v=STSv1; id=20261207" % d]
    mx = peers.Mx(cert=pki["mx"], requiretls=True).start()
    try:
        with PolicyServer(pki["web"]) as web, \
                peers.Dns(records, workdir=str(tmp_path)) as dns:
            g = Gateway(tls=False, extra={
                "dns_server": dns.server, "remote_port": str(mx.port),
                "mta_sts": "on", "mta_sts_ca_file": pki["ca"],
                "tls_ca_file": pki["ca"], "retry_schedule": "1h",
                "deliverd_workers": "1"})
            with g:
                g.start("deliverd")
                inject(g, "account", "acc")
                yield g, mx, web
    finally:
        mx.stop()


def outcome(g, rcpt):
    return g.wait_events(lambda e: e["to"] == rcpt and e["event"] in ("delivered", "deferred"),
                         timeout=30, what="an outcome for " + rcpt)[0]


def test_enforce_mismatch_defers(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@bad.test"])
    ev = outcome(g, "r@bad.test")
    assert ev["event"] == "deferred", ev
    assert ev["msg"].startswith("451 4.7.5 MTA-STS policy of bad.test (enforce)"), ev
    assert mx.received() == [], "sent to an MX the policy does not list"
    assert web.fetches.get("bad.test") == 1


def test_enforce_verified_delivers_and_caches(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@good.test"])
    ev = outcome(g, "r@good.test")
    assert ev["event"] == "delivered", ev
    m, = mx.received()
    assert m["tls"], m
    assert ev.get("tls_verified") == "mta-sts", ev
    assert "MX mx.good.test verified, verify=mta-sts" in g.log("deliverd")
    put_msg(g, "acc", ["s@good.test"])
    assert outcome(g, "s@good.test")["event"] == "delivered"
    assert web.fetches.get("good.test") == 1, "fetched again within max_age"


def test_testing_mismatch_delivers_and_logs(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@try.test"])
    ev = outcome(g, "r@try.test")
    assert ev["event"] == "delivered", ev
    assert len(mx.received()) == 1
    assert ("MTA-STS (testing) policy of try.test: MX mx.try.test does not match"
            in g.log("deliverd"))


def test_fetch_error_delivers_as_usual_and_is_not_retried_per_message(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@down.test"])
    assert outcome(g, "r@down.test")["event"] == "delivered"
    assert ("MTA-STS policy of down.test (id 20261207) not fetched: HTTP status 404"
            in g.log("deliverd"))
    put_msg(g, "acc", ["s@down.test"])
    assert outcome(g, "s@down.test")["event"] == "delivered"
    assert web.fetches.get("down.test") == 1, "a failed fetch was retried at once"
    assert len(mx.received()) == 2


def test_policy_cached_in_lmdb_across_a_restart(env):
    """The scheduler stores a fetched policy (the worker's P line); a new
    deliverd (fresh workers, empty memory) uses it without fetching."""
    g, mx, web = env
    put_msg(g, "acc", ["r@good.test"])
    assert outcome(g, "r@good.test")["event"] == "delivered"
    g.stop("deliverd")
    g.start("deliverd")
    put_msg(g, "acc", ["s@good.test"])
    assert outcome(g, "s@good.test")["event"] == "delivered"
    assert web.fetches.get("good.test") == 1, "fetched again after a restart"
    assert g.log("deliverd").count("MX mx.good.test verified, verify=mta-sts") == 2


def test_enforce_certificate_not_naming_the_mx_defers(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@wrong.test"])
    ev = outcome(g, "r@wrong.test")
    assert ev["event"] == "deferred", ev
    assert ev["msg"].startswith("451 4.7.5 MTA-STS policy of wrong.test (enforce): "
                                "mx.wrong.test[127.0.0.1]"), ev
    assert "certificate name mismatch" in ev["msg"], ev
    assert mx.received() == [], "sent although the certificate does not verify"


def test_testing_certificate_failure_delivers_and_logs(env):
    g, mx, web = env
    put_msg(g, "acc", ["r@name.test"])
    assert outcome(g, "r@name.test")["event"] == "delivered"
    assert len(mx.received()) == 1
    assert ("MTA-STS (testing) policy of name.test: MX mx.name.test fails it: "
            "certificate name mismatch" in g.log("deliverd"))


def test_tls_report_names_the_sts_policy(env):
    """RFC 8460 through spoolctl tls-report: an enforced verified session
    counts as an sts success, a testing session whose certificate does not
    name the MX as an sts certificate-host-mismatch failure."""
    g, mx, web = env
    for r in ("r@good.test", "r@name.test"):
        put_msg(g, "acc", [r])
        assert outcome(g, r)["event"] == "delivered"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    rep = json.loads(g.spoolctl("tls-report", "--date", day, "--json").stdout)
    pols = {p["policy"]["policy-domain"]: p for p in rep["policies"]}
    good = pols["good.test"]
    assert good["policy"]["policy-type"] == "sts", good
    assert "mode: enforce" in "\n".join(good["policy"].get("policy-string", [])), good
    assert good["summary"] == {"total-successful-session-count": 1,
                               "total-failure-session-count": 0}, good
    name = pols["name.test"]
    assert name["policy"]["policy-type"] == "sts", name
    fd, = name["failure-details"]
    assert fd["result-type"] == "certificate-host-mismatch", fd
    assert (fd["sending-mta-ip"], fd["receiving-ip"]) == ("127.0.0.1", "127.0.0.1"), fd
    assert fd["receiving-mx-hostname"] == "mx.name.test", fd


def test_requiretls_needs_an_enforce_policy(env):
    """RFC 8689 4.2.1: MX hosts from an unsigned zone qualify for a
    REQUIRETLS message when an MTA-STS policy in enforce mode lists them
    (good.test: delivered, REQUIRETLS passed on); a testing policy does not
    (try.test: 550 5.7.30, nothing sent)."""
    g, mx, web = env
    rt = {"INJECT_FROM_PARAMS": "REQUIRETLS"}
    put_msg(g, "acc", ["r@good.test"], env=rt)
    ev = outcome(g, "r@good.test")
    assert ev["event"] == "delivered", ev
    m, = mx.received()
    assert "REQUIRETLS" in m["mail_options"], m
    put_msg(g, "acc", ["r@try.test"], env=rt)
    ev = g.wait_events(lambda e: e["to"] == "r@try.test" and e["event"] != "queued",
                       timeout=30, what="the outcome for r@try.test")[0]
    assert ev["event"] == "bounced", ev
    assert ev["msg"].startswith("550 5.7.30 REQUIRETLS support required"), ev
    assert mx.received("r@try.test") == []


def test_tls_required_no_skips_the_policy(env):
    """RFC 8689 section 5: a message whose header says "TLS-Required: No"
    goes to bad.test's MX although its enforce policy does not list it
    (test_enforce_mismatch_defers), still over TLS when offered; the same
    header with REQUIRETLS on MAIL FROM is ignored (REQUIRETLS wins)."""
    from smtpgate import message
    g, mx, web = env
    msg = message(to="r@bad.test", headers={"TLS-Required": "No"})
    put_msg(g, "acc", ["r@bad.test"], msg=msg)
    ev = outcome(g, "r@bad.test")
    assert ev["event"] == "delivered", ev
    m, = mx.received("r@bad.test")
    assert m["tls"], m
    assert "TLS-Required: No: the MTA-STS and DANE policies of bad.test are not " \
        "applied" in g.log("deliverd")
    put_msg(g, "acc", ["s@bad.test"], msg=message(to="s@bad.test",
                                                  headers={"TLS-Required": "No"}),
            env={"INJECT_FROM_PARAMS": "REQUIRETLS"})
    ev = g.wait_events(lambda e: e["to"] == "s@bad.test" and e["event"] != "queued",
                       timeout=30, what="the outcome for s@bad.test")[0]
    assert ev["event"] != "delivered", ev
    assert mx.received("s@bad.test") == []


def test_policy_host_on_loopback_is_not_fetched(env):
    """SSRF: a hostile domain points mta-sts.DOMAIN at the relay's own
    loopback (or 169.254.169.254, RFC 1918). Without allow_fetch_to
    covering it deliverd never connects there: no GET arrives, one log
    line says why, and the mail goes as without a policy."""
    g, mx, web = env
    g.conf["allow_fetch_to"] = []
    g.write_conf()
    g.stop("deliverd")
    g.start("deliverd")
    put_msg(g, "acc", ["r@bad.test"])
    assert outcome(g, "r@bad.test")["event"] == "delivered"
    assert web.fetches.get("bad.test") is None, "GET sent to 127.0.0.1"
    assert ("MTA-STS policy of bad.test (id 20261207) not fetched: refused: "
            "127.0.0.1 is a loopback address (allow_fetch_to)") in g.log("deliverd")
