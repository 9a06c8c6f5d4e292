"""deliverd black-box tests: real deliverd against real peers on 127.0.0.1.

Messages, accounts and DKIM keys are filed with tests/tools/deliverd-inject (the
spool API, as spoold and spoolctl do), so only deliverd runs. Peers: aiosmtpd
(relayhost / MX, 250/451/550 on demand, STARTTLS), dnsmasq (MX, null MX,
NXDOMAIN), an http.server callback receiver. DKIM signatures are checked with
dkimpy against TXT records generated here.
"""
import base64
import os
import re
import signal
import subprocess
import time

import dkim
import pytest

import peers
import smtpgate


from smtpgate import inject, put_msg


def gen_key(directory, alg):
    """A PEM private key and its DKIM TXT record value."""
    pem = os.path.join(directory, "%s-%d.pem" % (alg, time.time_ns()))
    algo = "RSA" if alg == "rsa" else "ed25519"
    cmd = ["openssl", "genpkey", "-algorithm", algo, "-out", pem]
    if alg == "rsa":
        cmd += ["-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    if alg == "rsa":
        txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    else:
        txt = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
    os.chmod(pem, 0o644)
    return pem, txt


def dkim_results(data, records):
    """[(d=, s=, a=, ok)] for every DKIM-Signature of the message."""
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        v = records.get(name.rstrip("."))
        return v.encode() if v else None

    heads = data.split(b"\r\n\r\n", 1)[0]
    sigs = re.findall(rb"^DKIM-Signature:(.*?)(?=^\S)", heads + b"\r\nX:", re.M | re.S)
    out = []
    for i, s in enumerate(sigs):
        tags = dict(t.strip().split("=", 1) for t in
                    re.sub(r"\s+", "", s.decode()).split(";") if "=" in t)
        ok = dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc)
        out.append((tags.get("d"), tags.get("s"), tags.get("a"), ok))
    return out


@pytest.fixture
def mx(tmp_path):
    m = peers.Mx(tls_dir=str(tmp_path)).start()
    yield m
    m.stop()


def relay_gw(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port}
    conf.update({k: str(v) for k, v in extra.items()})
    return smtpgate.Gateway(tls=False, extra=conf)


def events_for(g, to, kind=None):
    return [e for e in g.events() if e["to"] == to and (kind is None or e["event"] == kind)]


# ---------------------------------------------------------------- relayhost

def test_relay_dkim_rsa_and_ed25519(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        rsa, rsa_txt = gen_key(g.dir, "rsa")
        ed, ed_txt = gen_key(g.dir, "ed25519")
        inject(g, "dkim", "acc", "example.com", "r1", "rsa", rsa)
        inject(g, "dkim", "acc", "example.com", "e1", "ed25519", ed)
        qid, = put_msg(g, "acc", ["rcpt@dest.test"], envfrom="bounces+x@example.com")
        m, = mx.wait_received(1)
        assert m["from"] == "bounces+x@example.com"   # envelope sender verbatim
        assert m["tls"], "STARTTLS was offered and must be used"
        res = dkim_results(m["data"], {"r1._domainkey.example.com": rsa_txt,
                                       "e1._domainkey.example.com": ed_txt})
        assert sorted((d, s, a, ok) for d, s, a, ok in res) == [
            ("example.com", "e1", "ed25519-sha256", True),
            ("example.com", "r1", "rsa-sha256", True)], res
        ev = g.wait_events(lambda e: e["event"] == "delivered")[0]
        assert ev["queue_id"] == qid and ev["attempt"] == 1 and ev["sandbox"] is False
        assert ev["msg"] == "250 2.0.0 Ok: queued"
        assert ev.get("tls", "").startswith("TLSv1")
        smtpgate.wait_for(lambda: not g.files("queue"), what="queue file removed")
        assert "status=sent" in g.log("deliverd")


def test_dkim_default_domain_and_unsigned(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        inject(g, "account", "nokeys")
        rsa, rsa_txt = gen_key(g.dir, "rsa")
        inject(g, "dkim", "acc", "default.org", "d1", "rsa", rsa, "default")
        put_msg(g, "acc", ["one@dest.test"], frm="news@other.example")
        put_msg(g, "nokeys", ["two@dest.test"], frm="x@unsigned.example")
        one, = mx.wait_received(1, rcpt="one@dest.test")
        two, = mx.wait_received(1, rcpt="two@dest.test")
        res = dkim_results(one["data"], {"d1._domainkey.default.org": rsa_txt})
        assert res == [("default.org", "d1", "rsa-sha256", True)], res
        assert b"DKIM-Signature" not in two["data"]
        smtpgate.wait_for(lambda: "unsigned" in g.log("deliverd"), what="unsigned log line")


def test_defer_then_deliver(mx):
    mx.rules["slow@dest.test"] = ["451 4.7.1 greylisted, try again", "250 2.1.5 Ok"]
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["slow@dest.test", "fast@dest.test"])
        g.wait_events(lambda e: e["to"] == "slow@dest.test" and e["event"] == "delivered",
                      timeout=30)
        ev = events_for(g, "slow@dest.test")
        assert [e["event"] for e in ev] == ["deferred", "delivered"], ev
        assert ev[0]["msg"] == "451 4.7.1 greylisted, try again"
        assert ev[1]["attempt"] == 2
        assert [e["event"] for e in events_for(g, "fast@dest.test")] == ["delivered"]
        # one transaction per attempt: fast went with the first, slow with the second
        assert len(mx.received("slow@dest.test")) == 1
        smtpgate.wait_for(lambda: not g.files("queue"), what="queue file removed")


def test_bounce_remote_550(mx):
    mx.rules["gone@dest.test"] = ["550 5.1.1 <gone@dest.test>: Recipient address rejected"]
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["gone@dest.test", "ok@dest.test"])
        ev = g.wait_events(lambda e: e["to"] == "gone@dest.test")[0]
        assert ev["event"] == "bounced" and ev["class"] == "remote"
        assert ev["msg"] == "550 5.1.1 <gone@dest.test>: Recipient address rejected"
        g.wait_events(lambda e: e["to"] == "ok@dest.test" and e["event"] == "delivered")
        assert len(mx.received()) == 1 and mx.received()[0]["to"] == ["ok@dest.test"]


def test_lifetime_expiry(mx):
    mx.rules["never@dest.test"] = ["452 4.2.2 Mailbox full"]
    with relay_gw(mx, max_queue_lifetime="3s", retry_schedule="1s") as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["never@dest.test"])
        ev = g.wait_events(lambda e: e["event"] == "bounced", timeout=30)[0]
        assert ev["class"] == "expired"
        assert ev["msg"].startswith("554 5.4.7 Message expired")
        assert "452 4.2.2 Mailbox full" in ev["msg"]
        assert all(e["event"] == "deferred" for e in events_for(g, "never@dest.test")[:-1])


def test_sandbox_never_connects(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "sbx", "sandbox")
        ed, ed_txt = gen_key(g.dir, "ed25519")
        inject(g, "dkim", "sbx", "example.com", "e1", "ed25519", ed)
        put_msg(g, "sbx", ["a@dest.test", "b@dest.test"])
        evs = g.wait_events(lambda e: e["event"] == "delivered" and e["account"] == "sbx")
        smtpgate.wait_for(lambda: len(g.events()) >= 2, what="two events")
        for e in g.events():
            assert e["sandbox"] is True and e["msg"] == "250 2.0.0 Ok: sandbox, not sent"
        assert evs
        time.sleep(0.5)
        assert mx.received() == []
        smtpgate.wait_for(lambda: not g.files("queue"), what="queue file removed")


def test_sigterm_exits_zero(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        p = g.procs["deliverd"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0


# ---------------------------------------------------------------- MX routing

def test_mx_routing(tmp_path, mx):
    records = [
        # fallback: the preferred MX refuses connections (nothing on 127.0.0.2)
        peers.Dns.mx("good.test", "mx1.good.test", 10),
        peers.Dns.mx("good.test", "mx2.good.test", 20),
        peers.Dns.a("mx1.good.test", "127.0.0.2"),
        peers.Dns.a("mx2.good.test", "127.0.0.1"),
        peers.Dns.a("implicit.test", "127.0.0.1"),
        peers.Dns.null_mx("nullmx.test"),
    ]
    with peers.Dns(records, workdir=str(tmp_path)) as dns:
        g = smtpgate.Gateway(tls=False, extra={"dns_server": dns.server,
                                               "remote_port": str(mx.port),
                                               "connect_timeout": "3s"})
        with g:
            g.start("deliverd")
            inject(g, "account", "acc")
            put_msg(g, "acc", ["u@good.test", "v@implicit.test", "w@nullmx.test",
                               "x@nx.test", "y@refused.example"])
            g.wait_events(lambda e: e["to"] == "u@good.test" and e["event"] == "delivered",
                          timeout=30)
            g.wait_events(lambda e: e["to"] == "v@implicit.test" and e["event"] == "delivered")
            ev = g.wait_events(lambda e: e["to"] == "w@nullmx.test")[0]
            assert ev["event"] == "bounced" and ev["attempt"] == 1
            assert ev["msg"].startswith("556 5.1.10"), ev
            ev = g.wait_events(lambda e: e["to"] == "x@nx.test")[0]
            assert ev["event"] == "bounced" and "NXDOMAIN" in ev["msg"], ev
            ev = g.wait_events(lambda e: e["to"] == "y@refused.example")[0]
            assert ev["event"] == "deferred" and ev["msg"].startswith("451 4.4.3"), ev
            assert "mx2.good.test[127.0.0.1]" in events_for(g, "u@good.test", "delivered")[0]["hop"]
            assert len(mx.received("u@good.test")) == 1


# ---------------------------------------------------------------- callbacks

def test_callbacks_survive_outage(mx):
    with peers.Callbacks() as cb, relay_gw(mx, callback_retry_min="1s",
                                           callback_retry_max="2s") as g:
        cb.down = True
        g.start("deliverd")
        inject(g, "account", "cbk", cb.url)
        inject(g, "account", "str", cb.url, "stream")
        put_msg(g, "cbk", ["c%d@dest.test" % i for i in range(5)])
        put_msg(g, "str", ["s@dest.test"])
        smtpgate.wait_for(lambda: len(g.events()) >= 6, what="6 events logged")
        smtpgate.wait_for(lambda: cb.failed_posts >= 2, what="failed posts during outage")
        assert cb.events == []
        cb.down = False
        smtpgate.wait_for(lambda: len(set(cb.ids())) >= 6, timeout=30, what="callbacks after outage")
        assert set(cb.ids()) == {e["id"] for e in g.events()}
        kinds = {ct for ct, body in cb.posts}
        assert kinds == {"application/json"}
        assert any(body.startswith(b'{"events":[') for ct, body in cb.posts)
        assert any(not body.startswith(b'{"events"') for ct, body in cb.posts)


# ---------------------------------------------------------------- crash safety

def test_kill9_during_1000_deliveries(mx):
    n = 1000
    with relay_gw(mx, deliverd_workers=4) as g:
        g.start("deliverd")
        inject(g, "account", "bulk")
        put_msg(g, "bulk", ["r{n}@dest.test"], count=n)
        smtpgate.wait_for(lambda: len(mx.received()) >= n // 4, timeout=60,
                          interval=0.01, what="a quarter delivered")
        g.kill("deliverd")
        before = len(mx.received())
        g.start("deliverd")
        smtpgate.wait_for(lambda: len({m["to"][0] for m in mx.received()}) >= n,
                          timeout=120, what="every message delivered")
        got = [m["to"][0] for m in mx.received()]
        dups = len(got) - len(set(got))
        print("kill -9 after %d deliveries; %d duplicates out of %d" % (before, dups, n))
        assert set(got) == {"r%d@dest.test" % i for i in range(n)}
        assert dups <= 4 * 2, "at most the transactions in flight at the kill"
        smtpgate.wait_for(lambda: not g.files("queue"), timeout=30, what="queue empty")


def test_sighup_reload_replaces_workers(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["before@dest.test"])
        mx.wait_received(1)
        g.procs["deliverd"].send_signal(signal.SIGHUP)
        smtpgate.wait_for(lambda: "configuration reloaded" in g.log("deliverd"),
                          what="reload logged")
        put_msg(g, "acc", ["after@dest.test"])
        mx.wait_received(1, rcpt="after@dest.test", timeout=20)
        with open(g.conf_path, "a") as f:
            f.write("no_such_key = 1\n")
        g.procs["deliverd"].send_signal(signal.SIGHUP)
        smtpgate.wait_for(lambda: "keeping the old configuration" in g.log("deliverd"),
                          what="bad reload refused")
        assert g.procs["deliverd"].poll() is None
