"""deliverd behind the real pipeline: smtpd -> spoold -> deliverd -> aiosmtpd.

Accounts and DKIM keys come from spoolctl; messages go in over SMTP from an
IP-pinned account. Checks what only the whole chain shows: spoolctl's keys
sign, a remote 550 puts the address on the permanent-failure list that
spoold applies to later mail, spoolctl retry/hold/release drive deliverd.
"""
import re
import subprocess
import time

import pytest

import peers
import smtpgate
from test_deliverd import dkim_results


@pytest.fixture
def mx(tmp_path):
    m = peers.Mx(tls_dir=str(tmp_path)).start()
    yield m
    m.stop()


def gateway(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port}
    conf.update({k: str(v) for k, v in extra.items()})
    g = smtpgate.Gateway(tls=False, extra=conf)
    g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
    return g


def send(g, rcpts, **kw):
    smtpgate.smtp_send(g, rcpts, envfrom="bounce@example.com", helo="client.test",
                       msg=smtpgate.message(frm="news@example.com", to=", ".join(rcpts), **kw))


def genkey(g, alg):
    path = "%s/%s-%d.pem" % (g.dir, alg, time.time_ns())
    cmd = ["openssl", "genpkey", "-algorithm", alg, "-out", path]
    if alg == "RSA":
        cmd += ["-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


def dkim_add(g, *args):
    out = g.spoolctl("dkim", "add", *args).stdout
    line = [l for l in out.splitlines() if "._domainkey." in l][0]
    name = line.split()[0].rstrip(".")
    return name, "".join(line.split('"')[1::2])


def test_spoolctl_keys_sign_through_the_pipeline(mx):
    with gateway(mx) as g:
        rsa_name, rsa_txt = dkim_add(g, "pin", "example.com", "--selector", "s1",
                                     "--key", genkey(g, "RSA"))
        ed_name, ed_txt = dkim_add(g, "pin", "example.com", "--selector", "e1",
                                   "--key", genkey(g, "ED25519"))
        g.start()
        send(g, ["a@dest.test"], headers={"X-Campaign-Id": "spring", "X-Letter-Id": "L1"})
        m, = mx.wait_received(1)
        assert m["from"] == "bounce@example.com"
        res = dkim_results(m["data"], {rsa_name: rsa_txt, ed_name: ed_txt})
        assert sorted(a for d, s, a, ok in res if ok) == ["ed25519-sha256", "rsa-sha256"], res
        h = m["data"].split(b"\r\n\r\n")[0].decode()
        sig = re.search(r"^DKIM-Signature:.*?(?=^\S)", h + "\r\nX:", re.M | re.S).group(0)
        for name in ("x-campaign-id", "x-letter-id", "message-id", "mime-version"):
            assert name in sig.lower().replace("\r\n", "").replace("\t", "")
        ev = g.wait_events(lambda e: e["event"] == "delivered")[0]
        assert ev["issue"]["name"] == "spring" and ev["gate"]["uniq"] == "L1"
        assert ev["from"] == "bounce@example.com" and ev["account"] == "pin"


def test_remote_550_then_permanent_failure_list(mx):
    mx.rules["gone@dest.test"] = ["550 5.1.1 <gone@dest.test>: no such user"]
    with gateway(mx) as g:
        g.start()
        send(g, ["gone@dest.test"])
        ev = g.wait_events(lambda e: e["to"] == "gone@dest.test")[0]
        assert (ev["event"], ev["class"]) == ("bounced", "remote")
        assert ev["msg"] == "550 5.1.1 <gone@dest.test>: no such user"
        send(g, ["gone@dest.test", "ok@dest.test"])
        ev = g.wait_events(lambda e: e["to"] == "gone@dest.test" and e["class"] == "policy",
                           timeout=30)[0]
        assert ev["msg"] == "550 5.0.0 Email has permanent delivery errors"
        g.wait_events(lambda e: e["to"] == "ok@dest.test" and e["event"] == "delivered")
        assert mx.attempts["gone@dest.test"] == 1


def test_spoolctl_retry_and_hold(mx):
    mx.rules["late@dest.test"] = ["451 4.3.0 later", "250 2.1.5 Ok"]
    with gateway(mx, retry_schedule="1h") as g:
        g.start()
        send(g, ["late@dest.test"])
        g.wait_events(lambda e: e["to"] == "late@dest.test" and e["event"] == "deferred")
        qid = g.wait_events(lambda e: e["to"] == "late@dest.test")[0]["queue_id"]
        g.spoolctl("hold", qid)
        g.spoolctl("retry", "--all")
        time.sleep(2)
        assert not [e for e in g.events() if e["event"] == "delivered"]
        g.spoolctl("release", qid)
        g.wait_events(lambda e: e["to"] == "late@dest.test" and e["event"] == "delivered",
                      timeout=15)
        smtpgate.wait_for(lambda: not g.files("queue"), what="queue file removed")
