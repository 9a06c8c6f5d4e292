"""The CONTRACT (shared/CONTRACT.md), checked line by line against the real
binaries: install layout, configuration errors and defaults, daemon
behaviour (SIGTERM, SIGHUP, log = syslog), SMTP replies, the 635/550 policy
texts, event fields, callbacks (json and stream), the seed's stat.uni
query and the spoolctl commands with their exit codes.
"""
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

import peers
import smtpgate

PROGRAMS = ["smtpd", "spoold", "deliverd", "spoolctl", "sendmail"]
QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$")
DT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SEED = smtpgate.SEED_QUERY


def built(*names):
    return all(os.path.exists(smtpgate.binary(n)) for n in names)


def need(*names):
    if not built(*names):
        pytest.skip("not built: %s" % " ".join(names))


def run_prog(name, conf, extra=(), timeout=10):
    argv = [smtpgate.binary(name), "-c", conf] + list(extra)
    if name == "spoolctl" and not extra:
        argv.append("queue")
    if name == "sendmail" and not extra:
        argv += ["-t"]
    return subprocess.run(argv, input=b"", capture_output=True, timeout=timeout)


# ---------------------------------------------------------------- install

def test_install_layout(tmp_path):
    builddir = smtpgate.BUILDDIR
    if not os.path.exists(os.path.join(builddir, "Makefile")):
        pytest.skip("no configured build tree")
    if not os.access(builddir, os.W_OK):
        pytest.skip("build tree not writable")
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-s", "-C", builddir, "install", "DESTDIR=%s" % dest,
                        "prefix=/usr/local"], capture_output=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    p = str(dest) + "/usr/local"
    for f in ("sbin/spoolctl", "sbin/smtpgate-sendmail", "libexec/smtpgate/smtpd",
              "libexec/smtpgate/spoold", "libexec/smtpgate/deliverd"):
        assert os.access(os.path.join(p, f), os.X_OK), f
    assert os.path.isfile(os.path.join(p, "etc/smtpgate/smtpgate.conf.sample"))
    for m in ("man5/smtpgate.conf.5", "man8/smtpd.8", "man8/spoold.8", "man8/deliverd.8",
              "man8/spoolctl.8", "man8/smtpgate-sendmail.8"):
        assert os.path.isfile(os.path.join(p, "share/man", m)), m
    units = os.listdir(os.path.join(smtpgate.SRCDIR, "contrib", "systemd"))
    for d in ("smtpd", "spoold", "deliverd"):
        assert any(u.startswith("smtpgate-%s.service" % d) for u in units), d


# ---------------------------------------------------------------- configuration

CONTRACT_DEFAULTS = {
    "listen": ["0.0.0.0:25 tls=starttls", "0.0.0.0:587 tls=required",
               "0.0.0.0:465 tls=implicit"],
    "tls_cert": [""], "tls_key": [""],
    "smtpd_user": ["smtpgate-smtpd"], "spoold_user": ["smtpgate"],
    "deliverd_user": ["smtpgate"],
    "smtpd_workers": ["0"], "deliverd_workers": ["8"],
    "max_message_size": ["52428800"], "max_recipients": ["1000"],
    "relayhost": [""], "remote_port": ["25"], "dns_server": [""],
    "max_queue_lifetime": ["5d"], "blackhole_recipients": ["test@test.ru"],
    "auth_plaintext": ["no"], "sendmail_account": [""],
}


def sample_conf():
    path = os.path.join(smtpgate.BUILDDIR, "contrib", "smtpgate.conf.sample")
    if not os.path.exists(path):
        pytest.skip("no contrib/smtpgate.conf.sample in the build tree")
    with open(path) as f:
        return f.read()


def test_sample_states_contract_defaults():
    text = sample_conf()
    found = {}
    for line in text.splitlines():
        m = re.match(r"^#([a-z_]+) =\s*(.*)$", line)
        if m:
            found.setdefault(m.group(1), []).append(m.group(2).strip())
    for key, vals in CONTRACT_DEFAULTS.items():
        assert found.get(key) == vals, (key, found.get(key))
    for key in ("hostname", "spool_dir", "retry_schedule", "event_log", "log"):
        assert key in found, key
    assert found["spool_dir"][0].endswith("/spool/smtpgate")
    assert found["event_log"][0].endswith("/events.jsonl")


def test_every_sample_key_is_accepted():
    """Uncommenting every line of the sample gives a valid configuration."""
    need("spoolctl")
    with smtpgate.Gateway(tls=False) as g:
        sample_uncommented(g.dir)


def sample_uncommented(d):
    import pathlib
    tmp_path = pathlib.Path(d)
    lines = []
    for line in sample_conf().splitlines():
        m = re.match(r"^#([a-z_]+ =.*)$", line)
        if not m:
            continue
        kv = m.group(1)
        key = kv.split("=")[0].strip()
        if key in ("tls_cert", "tls_key", "listen", "hostname"):
            continue
        if key == "spool_dir":
            kv = "spool_dir = %s" % (tmp_path / "spool")
        if key == "event_log":
            kv = "event_log = %s" % (tmp_path / "events.jsonl")
        lines.append(kv)
    conf = tmp_path / "all.conf"
    conf.write_text("\n".join(lines) + "\n")
    r = run_prog("spoolctl", str(conf))
    assert r.returncode == 0, r.stderr


def bad_confs(d):
    spool = os.path.join(d, "spool")
    out = {}

    def w(name, text):
        p = os.path.join(d, name + ".conf")
        with open(p, "w") as f:
            f.write(text)
        out[name] = p
    w("unknown", "spool_dir = %s\n# a comment\nno_such_key = 1\n" % spool)
    w("badvalue", "spool_dir = %s\nmax_recipients = many\n" % spool)
    w("badduration", "spool_dir = %s\n\nmax_queue_lifetime = forever\n" % spool)
    w("badrelay", "spool_dir = %s\nrelayhost = mx.example.com:smtp\n" % spool)
    w("baddns", "spool_dir = %s\ndns_server = resolver.local\n" % spool)
    w("badeventlog", "spool_dir = %s\nevent_log = events.jsonl\n" % spool)
    out["missing"] = os.path.join(d, "does-not-exist.conf")
    return out


BAD_EXPECT = {
    "unknown": (":3:", "no_such_key"),
    "badvalue": (":2:", "max_recipients"),
    "badduration": (":3:", "max_queue_lifetime"),
    "missing": ("", "does-not-exist.conf"),
    "badrelay": (":2:", "relayhost"),
    "baddns": (":2:", "dns_server"),
    "badeventlog": (":2:", "event_log"),
}


@pytest.mark.parametrize("prog", PROGRAMS)
@pytest.mark.parametrize("case", sorted(BAD_EXPECT))
def test_bad_config_exit_2_one_line(prog, case, tmp_path):
    need(prog)
    confs = bad_confs(str(tmp_path))
    r = run_prog(prog, confs[case])
    err = r.stderr.decode()
    lines = [l for l in err.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, err)
    assert len(lines) == 1, err
    line = lines[0]
    where, key = BAD_EXPECT[case]
    assert confs[case] + where in line, line
    assert key in line, line


def test_smtpd_unreadable_tls_key_and_port_in_use(tmp_path):
    need("smtpd")
    spool = tmp_path / "spool"
    port = smtpgate.free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text("spool_dir = %s\nlisten = 127.0.0.1:%d tls=starttls\n"
                    "tls_cert = %s\ntls_key = %s\n" % (
                        spool, port, tmp_path / "no-cert.pem", tmp_path / "no-key.pem"))
    r = run_prog("smtpd", str(conf))
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "%s:3: tls_cert" % conf in lines[0] and "no-cert.pem" in lines[0], lines

    cert, key = smtpgate.make_cert(str(tmp_path))
    conf.write_text("spool_dir = %s\nlisten = 127.0.0.1:%d tls=starttls\n"
                    "tls_cert = %s\ntls_key = %s\n" % (
                        spool, port, cert, tmp_path / "no-key.pem"))
    r = run_prog("smtpd", str(conf))
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "%s:4: tls_key" % conf in lines[0], lines

    # readable but not a key: the tls_key line is named
    bad = tmp_path / "garbage.pem"
    bad.write_text("garbage\n")
    os.chmod(str(bad), 0o644)
    conf.write_text("spool_dir = %s\nlisten = 127.0.0.1:%d tls=starttls\n"
                    "tls_cert = %s\ntls_key = %s\n" % (spool, port, cert, bad))
    r = run_prog("smtpd", str(conf))
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "%s:4: tls_key" % conf in lines[0] and "garbage.pem" in lines[0], lines

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        bport = busy.getsockname()[1]
        conf.write_text("spool_dir = %s\nlisten = 127.0.0.1:%d tls=none\n"
                        "listen = 127.0.0.1:%d tls=none\n" % (spool, port, bport))
        r = run_prog("smtpd", str(conf))
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert "%s:3: listen" % conf in lines[0] and str(bport) in lines[0], lines
    finally:
        busy.close()


def test_event_log_outside_the_spool():
    """event_log elsewhere: written there (as root, created for spoold in a
    root-owned directory, where spoold could not create it after the drop).
    A directory that does not exist yet is not fatal: the export is retried
    (test_spoold.py::test_events_export_failure_is_retried)."""
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx = peers.Mx().start()
    d = tempfile.mkdtemp(prefix="sgevents-")
    os.chmod(d, 0o755)
    g = smtpgate.Gateway(tls=False, port_tls="none",
                         extra={"relayhost": "127.0.0.1:%d" % mx.port,
                                "event_log": os.path.join(d, "ev.jsonl")})
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid = submit(s, ["elsewhere@example.net"])
        finally:
            s.quit()
        e = events_for(g, qid)[0]
        assert e["event"] == "delivered"
        assert not os.path.exists(os.path.join(g.spool, "events.jsonl"))
    finally:
        g.close()
        mx.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("prog", PROGRAMS)
def test_usage_error_exit_2(prog):
    need(prog)
    r = subprocess.run([smtpgate.binary(prog), "--no-such-option"], capture_output=True,
                       timeout=10, input=b"")
    if prog == "sendmail":
        # sendmail(8) convention: EX_USAGE
        assert r.returncode in (2, 64), r
    else:
        assert r.returncode == 2, r


# ---------------------------------------------------------------- daemons

@pytest.mark.parametrize("prog", ["smtpd", "spoold", "deliverd"])
def test_daemon_sigterm_sighup_syslog(prog):
    need(prog)
    with smtpgate.Gateway(tls=False, port_tls="none", extra={"log": "syslog"}) as g:
        g.start(prog)
        p = g.procs[prog]
        time.sleep(0.5)
        assert p.poll() is None, g.log(prog)
        # log = syslog: nothing on stderr while running
        assert g.log(prog).strip() == "", g.log(prog)
        # SIGHUP with a changed, valid file: keeps running
        g.conf["log"] = "stderr"
        g.conf["max_message_size"] = "1000000"
        g.write_conf()
        os.kill(p.pid, signal.SIGHUP)
        time.sleep(1.0)
        assert p.poll() is None, g.log(prog)
        if prog == "smtpd":
            s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
            try:
                code, _ = s.ehlo("client.test")
                assert s.esmtp_features.get("size") == "1000000", s.esmtp_features
            finally:
                s.quit()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
        g.procs.pop(prog)


# ---------------------------------------------------------------- live gateway

@pytest.fixture(scope="module")
def live():
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx = peers.Mx().start()
    cb = peers.Callbacks().start()
    cbs = peers.Callbacks().start()
    g = smtpgate.Gateway(tls=True, port_tls="starttls",
                         extra={"relayhost": "127.0.0.1:%d" % mx.port,
                                "retry_schedule": "1h"})
    try:
        g.add_account("acc", ips=["127.0.0.1/32"],
                      extra=["--callback-url", cb.url, "--callback-format", "json"])
        g.add_account("pw", password="secret",
                      extra=["--callback-url", cbs.url, "--callback-format", "stream"])
        g.add_account("reg", password="secret", extra=["--senders", "registered"])
        g.spoolctl("sender", "add", "reg", "ok@reg.test", "--status", "approved")
        g.spoolctl("sender", "add", "reg", "@dom.test", "--status", "approved")
        g.spoolctl("sender", "add", "reg", "mod@reg.test", "--status", "onmoderation")
        g.spoolctl("sender", "add", "reg", "bad@reg.test", "--status", "prohibited")
        g.add_account("sbx", password="secret", sandbox=True)
        g.start()
        yield g, mx, cb, cbs
    finally:
        g.close()
        cb.stop()
        cbs.stop()
        mx.stop()


def client(g, auth=None, source="127.0.0.1"):
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15, source_address=(source, 0))
    s.ehlo("client.test")
    if auth:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.login(*auth)
    return s


def submit(s, rcpts, frm="sender@example.com", **kw):
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    if s.ehlo_resp is None:
        s.ehlo("client.test")
    code, text = s.mail(frm)
    assert code == 250, (code, text)
    for r in rcpts:
        code, text = s.rcpt(r)
        assert code == 250, (code, text)
    code, text = s.data(smtpgate.message(frm=kw.pop("hdr_from", frm), to=rcpts[0], **kw))
    assert code == 250, (code, text)
    m = QUEUED_RE.match(text.decode())
    assert m, text
    return m.group(1)


def send(g, rcpts, auth=None, **kw):
    s = client(g, auth=auth, source="127.0.0.2" if auth else "127.0.0.1")
    try:
        return submit(s, rcpts, **kw)
    finally:
        s.quit()


def events_for(g, qid, n=1, timeout=30):
    return smtpgate.wait_for(
        lambda: (lambda ev: ev if len(ev) >= n else None)(
            [e for e in g.events() if e.get("queue_id") == qid]),
        timeout, what="%d events of %s" % (n, qid))


def test_ehlo_keywords(live):
    g = live[0]
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
    try:
        s.ehlo("client.test")
        f = s.esmtp_features
        for kw in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "starttls",
                   "smtputf8", "chunking"):
            assert kw in f, (kw, f)
        assert f["size"] == "52428800"
        # auth_plaintext = no by default: no AUTH before STARTTLS
        assert "auth" not in f, f
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.test")
        assert "auth" in s.esmtp_features
        assert "PLAIN" in s.esmtp_features["auth"].upper()
        assert "LOGIN" in s.esmtp_features["auth"].upper()
    finally:
        s.quit()


def test_unauthenticated_530(live):
    g = live[0]
    s = client(g, source="127.0.0.2")
    try:
        code, _ = s.mail("x@example.com")
        if code == 250:
            code, text = s.rcpt("y@example.net")
        else:
            text = s.mail("x@example.com")[1]
        # any refusal before data; the contract's preferred text:
        s.rset()
        code, text = s.docmd("MAIL FROM:<x@example.com>")
        if code == 250:
            code, text = s.docmd("RCPT TO:<y@example.net>")
        assert (code, text.decode()) == (530, "5.7.0 Authentication required"), (code, text)
    finally:
        s.close()


def test_queued_reply_and_delivered_event_fields(live):
    g, mx, cb, cbs = live
    qid = send(g, ["fields@example.net"], headers={"X-Campaign-Id": "spring-sale",
                                                  "X-Letter-Id": "L-77"},
               msgid="<fields.1@example.com>")
    e = events_for(g, qid)[0]
    assert e["event"] == "delivered"
    assert "class" not in e
    for k, t in (("id", str), ("dt", str), ("account", str), ("queue_id", str),
                 ("from", str), ("to", str), ("message_id", str), ("msg", str),
                 ("attempt", int), ("sandbox", bool), ("issue", dict), ("gate", dict)):
        assert isinstance(e.get(k), t) and not isinstance(e.get(k), bool) or t is bool \
            and isinstance(e.get(k), bool), (k, e)
    assert DT_RE.match(e["dt"]), e["dt"]
    assert e["account"] == "acc" and e["to"] == "fields@example.net"
    assert e["from"] == "sender@example.com"
    assert e["message_id"] == "<fields.1@example.com>"
    assert e["attempt"] == 1 and e["sandbox"] is False
    assert set(e["issue"]) == {"id", "name", "date"}
    assert isinstance(e["issue"]["id"], int) and not isinstance(e["issue"]["id"], bool)
    assert e["issue"]["name"] == "spring-sale"
    assert e["issue"]["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert e["gate"] == {"uniq": "L-77"}
    assert e["msg"].startswith("250")

    # no X-Campaign-Id / X-Letter-Id: null
    qid2 = send(g, ["fields2@example.net"])
    e2 = events_for(g, qid2)[0]
    assert e2["issue"]["name"] is None and e2["gate"]["uniq"] is None

    # json callbacks: {"events":[...]} with the same objects
    smtpgate.wait_for(lambda: e["id"] in cb.ids(), 30, what="callback")
    ctype, body = [p for p in cb.posts if e["id"].encode() in p[1]][0]
    doc = json.loads(body)
    assert list(doc) == ["events"] and isinstance(doc["events"], list)
    assert [x for x in doc["events"] if x["id"] == e["id"]][0] == e


def test_stream_callback(live):
    g, mx, cb, cbs = live
    qid = send(g, ["stream1@example.net", "stream2@example.net"],
               auth=("pw", "secret"), frm="pw@example.com")
    evs = events_for(g, qid, 2)
    ids = {e["id"] for e in evs}
    smtpgate.wait_for(lambda: ids <= set(cbs.ids()), 30, what="stream callbacks")
    for ctype, body in cbs.posts:
        text = body.decode().strip()
        assert text.startswith("{") and not text.startswith('{"events"'), text[:80]
        for obj in smtpgate.callback_events(body):
            assert "event" in obj and "id" in obj


def test_sandbox_event(live):
    g, mx = live[0], live[1]
    before = len(mx.received())
    qid = send(g, ["sbx@example.net"], auth=("sbx", "secret"))
    e = events_for(g, qid)[0]
    assert e["event"] == "delivered" and e["sandbox"] is True and "class" not in e
    assert e["msg"] == "250 2.0.0 Ok: sandbox, not sent"
    time.sleep(0.5)
    assert len(mx.received()) == before


def test_blackhole_no_events(live):
    g = live[0]
    qid = send(g, ["test@test.ru"])
    qid2 = send(g, ["after-blackhole@example.net"])
    events_for(g, qid2)
    assert not [e for e in g.events() if e.get("queue_id") == qid or e["to"] == "test@test.ru"]


MISSING = [("To", "no To:"), ("From", "no From:"), ("Subject", "no Subject:"),
           ("Message-Id", "no Message-Id:"), ("Date", "no Date:"),
           ("MIME-Version", "no MIME-Version:"), ("Content-Type", "no Content-Type:")]


def policy_event(g, qid):
    e = events_for(g, qid)[0]
    assert e["event"] == "bounced" and e["class"] == "policy", e
    assert DT_RE.match(e["dt"])
    return e["msg"]


@pytest.mark.parametrize("hdr,text", MISSING)
def test_policy_missing_header(live, hdr, text):
    g = live[0]
    qid = send(g, ["miss@example.net"], omit=(hdr,))
    assert policy_event(g, qid) == "635 6.7.8 " + text


def test_policy_header_values(live):
    g = live[0]
    qid = send(g, ["v@example.net"], hdr_from="Just A Name")
    assert policy_event(g, qid) == "635 6.7.8 no email in From:"
    qid = send(g, ["v@example.net"], headers={"X-Campaign-Id": "bad id!"})
    assert policy_event(g, qid) == "635 6.7.8 bad X-Campaign-Id"
    qid = send(g, ["v@example.net"], headers={"X-Letter-Id": "x" * 256})
    assert policy_event(g, qid) == "635 6.7.8 bad X-Letter-Id"


def test_policy_senders(live):
    g = live[0]
    auth = ("reg", "secret")
    for frm, want in (("ok@reg.test", None), ("any@dom.test", None),
                      ("mod@reg.test", "635 6.7.8 error/sender/onmoderation"),
                      ("bad@reg.test", "635 6.7.8 error/sender/prohibited"),
                      ("who@else.test", "635 6.7.8 error/sender/unknown")):
        qid = send(g, ["s@example.net"], auth=auth, frm=frm)
        e = events_for(g, qid)[0]
        if want is None:
            assert e["event"] == "delivered", e
        else:
            assert (e["event"], e.get("class"), e["msg"]) == ("bounced", "policy", want), e
    # the From header counts, not the envelope sender
    qid = send(g, ["s@example.net"], auth=auth, frm="ok@reg.test", hdr_from="who@else.test")
    e = events_for(g, qid)[0]
    assert e["msg"] == "635 6.7.8 error/sender/unknown", e
    qid = send(g, ["s@example.net"], auth=auth, frm="who@else.test",
               hdr_from="Ok Sender <ok@reg.test>")
    assert events_for(g, qid)[0]["event"] == "delivered"


def test_issue_block_stoplist_permfail_and_stats(live):
    g, mx = live[0], live[1]
    qid = send(g, ["blk@example.net"], headers={"X-Campaign-Id": "to-block"})
    e = events_for(g, qid)[0]
    iid = e["issue"]["id"]
    assert g.spoolctl("issue", "block", str(iid)).returncode == 0
    qid = send(g, ["blk2@example.net"], headers={"X-Campaign-Id": "to-block"})
    assert policy_event(g, qid) == "635 6.7.8 issue is blocked"
    assert g.spoolctl("issue", "unblock", str(iid)).returncode == 0
    assert g.spoolctl("issue", "block", "999999999", check=False).returncode == 1

    g.spoolctl("stoplist", "add", "acc", "stop@example.net")
    qid = send(g, ["stop@example.net"])
    assert policy_event(g, qid) == "550 5.0.0 Email is in the account stoplist"

    mx.rules["hard@example.net"] = ["550 5.1.1 no such user here"]
    qid = send(g, ["hard@example.net"])
    e = events_for(g, qid)[0]
    assert (e["event"], e["class"]) == ("bounced", "remote"), e
    assert e["msg"] == "550 5.1.1 no such user here", e
    qid = send(g, ["hard@example.net"])
    assert policy_event(g, qid) == "550 5.0.0 Email has permanent delivery errors"

    # bounces --last N: newest first; to, dt, msg
    r = g.spoolctl_json("bounces", "--last", "2")
    assert isinstance(r, list) and len(r) == 2, r
    assert r[0]["to"] == "hard@example.net" and \
        r[0]["msg"] == "550 5.0.0 Email has permanent delivery errors", r
    assert DT_RE.match(r[0]["dt"])
    assert r[0]["dt"] >= r[1]["dt"]
    text = g.spoolctl("bounces", "--last", "1").stdout
    assert "hard@example.net" in text and "permanent delivery errors" in text
    assert g.spoolctl("bounces", "--last", "x", check=False).returncode == 2

    # the seed's request, verbatim; "1" and 1 both mean this gateway
    for src in ("1", 1):
        req = json.loads(json.dumps(SEED))
        req["filter"][1]["v"] = src
        doc = json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)
        assert list(doc) == ["list"]
        rows = doc["list"]
        bounced = [e for e in g.events() if e["event"] == "bounced"]
        assert len(rows) == min(100, len(bounced)), (rows, bounced)
        for row in rows:
            assert len(row) == 3 and DT_RE.match(row[1])
        assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
        assert rows[0][0] == "hard@example.net"
        assert rows[0][2] == "550 5.0.0 Email has permanent delivery errors"
    req = dict(SEED, first=1)
    assert len(json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)["list"]) == 1
    req = dict(SEED, filter=[{"a": "issue.name", "op": "==", "v": "to-block"}],
               select=["delivstream.to", "delivstream.status", "issue.id", "issue.name",
                       "gate.uniq"])
    rows = json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)["list"]
    assert ["blk2@example.net", "bounced", iid, "to-block", None] in rows, rows
    assert g.spoolctl("query", input="{not json", check=False).returncode == 2

    # issues --date --account --json
    today = time.strftime("%Y-%m-%d", time.gmtime())
    r = g.spoolctl_json("issues", "--date", today, "--account", "acc")
    assert isinstance(r, list) and r
    mine = [i for i in r if i.get("id") == iid or i.get("issue", {}).get("id") == iid]
    assert mine, r
    for bad in ("yesterday", "2026-13-01", "2026-02-30", "2025-02-29", "2026-11-31"):
        assert g.spoolctl("issues", "--date", bad, check=False).returncode == 2, bad
    assert g.spoolctl("issues", "--date", "2024-02-29").returncode == 0
    assert g.spoolctl("issues", "--date", today, "--account", "acc").returncode == 0


def test_queue_hold_retry_delete(live):
    g, mx = live[0], live[1]
    mx.rules["slow@example.net"] = ["451 4.7.1 try later"]
    qid = send(g, ["slow@example.net"])
    e = events_for(g, qid)[0]
    assert e["event"] == "deferred" and "class" not in e
    assert e["msg"] == "451 4.7.1 try later"
    q = g.spoolctl_json("queue")
    assert qid in json.dumps(q)
    assert g.spoolctl("hold", qid).returncode == 0
    show = g.spoolctl_json("show", qid)
    assert show.get("held") is True, show
    assert '"held":true' in g.spoolctl("show", qid, "--json").stdout.replace(" ", "")
    q = [m for m in g.spoolctl_json("queue") if m["qid"] == qid]
    assert q and q[0]["held"] is True, q
    assert g.spoolctl("retry", "--all").returncode == 0
    time.sleep(2)
    assert len([x for x in g.events() if x.get("queue_id") == qid]) == 1
    assert g.spoolctl("release", qid).returncode == 0
    assert g.spoolctl_json("show", qid).get("held") in (False, None)
    assert g.spoolctl("delete", qid).returncode == 0
    e = smtpgate.wait_for(lambda: [x for x in g.events() if x.get("queue_id") == qid
                                   and x["event"] == "bounced"], 20, what="admin bounce")[0]
    assert e["class"] == "admin"
    for cmd in ("show", "hold", "release", "delete", "retry"):
        r = g.spoolctl(cmd, "AAAAAAAAAAAAAAAA", check=False)
        assert r.returncode == 1, (cmd, r)
    assert g.spoolctl("show", check=False).returncode == 2


def check_event(e):
    """Every field of the CONTRACT's event, with its type and presence rule."""
    fields = {"id": str, "event": str, "dt": str, "account": str, "queue_id": str,
              "issue": dict, "gate": dict, "from": str, "to": str, "message_id": (str, type(None)),
              "msg": str, "attempt": int, "sandbox": bool}
    for k, t in fields.items():
        assert k in e, (k, e)
        assert isinstance(e[k], t), (k, e)
        if t is int:
            assert not isinstance(e[k], bool), (k, e)
    assert e["event"] in ("delivered", "deferred", "bounced"), e
    if e["event"] == "bounced":
        assert e.get("class") in ("policy", "remote", "expired", "admin"), e
    else:
        assert "class" not in e, e
    assert DT_RE.match(e["dt"]), e
    assert set(e["issue"]) == {"id", "name", "date"}, e
    assert isinstance(e["issue"]["id"], int) and not isinstance(e["issue"]["id"], bool)
    assert isinstance(e["issue"]["name"], (str, type(None)))
    assert re.match(r"^\d{4}-\d\d-\d\d$", e["issue"]["date"]), e
    assert set(e["gate"]) == {"uniq"} and isinstance(e["gate"]["uniq"], (str, type(None)))
    assert re.match(r"^\d{3} \d\.\d{1,3}\.\d{1,3} ", e["msg"]) or e["class"] == "remote", e


def test_zz_every_event_well_formed(live):
    """Runs after the other live tests: every event they produced (and its
    callback copy) has the CONTRACT's fields; ids are unique."""
    g, mx, cb, cbs = live
    evs = g.events()
    assert len(evs) > 5
    for e in evs:
        check_event(e)
    ids = [e["id"] for e in evs]
    assert len(ids) == len(set(ids))
    for e in cb.events + cbs.events:
        check_event(e)


def test_account_commands_exit_codes(live, tmp_path):
    g = live[0]
    assert g.spoolctl("account", "show", "nosuch", check=False).returncode == 1
    assert g.spoolctl("account", "del", "nosuch", check=False).returncode == 1
    assert g.spoolctl("account", "add", check=False).returncode == 2
    pwf = tmp_path / "pw"
    pwf.write_text("s3cret\n")
    g.spoolctl("account", "add", "tmpacc", "--password-file", str(pwf), "--ip", "10.9.0.0/16",
               "--callback-url", "http://127.0.0.1:1/x", "--callback-format", "stream",
               "--senders", "registered")
    assert "tmpacc" in g.spoolctl("account", "list").stdout
    show = g.spoolctl("account", "show", "tmpacc").stdout
    assert "s3cret" not in show
    db = os.path.join(g.spool, "db")
    for f in os.listdir(db):
        with open(os.path.join(db, f), "rb") as fh:
            assert b"s3cret" not in fh.read()
    assert g.spoolctl("account", "add", "bad", "--callback-format", "xml",
                      check=False).returncode == 2
    assert g.spoolctl("account", "add", "bad", "--senders", "some",
                      check=False).returncode == 2
    assert g.spoolctl("sender", "add", "tmpacc", "a@b.test", "--status", "maybe",
                      check=False).returncode == 2
    assert g.spoolctl("sender", "add", "nosuch", "a@b.test", "--status", "approved",
                      check=False).returncode == 1
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True, timeout=60)
    g.spoolctl("dkim", "add", "tmpacc", "b.test", "--selector", "s1", "--key", str(key),
               "--default")
    assert "b.test" in g.spoolctl("dkim", "list", "tmpacc").stdout
    keys = os.path.join(g.spool, "keys")
    copied = [os.path.join(keys, f) for f in os.listdir(keys)]
    assert copied and all(os.stat(f).st_mode & 0o777 == 0o600 for f in copied)
    assert g.spoolctl("dkim", "del", "tmpacc", "b.test", "--selector", "s1").returncode == 0
    assert g.spoolctl("dkim", "del", "tmpacc", "b.test", check=False).returncode == 1
    g.spoolctl("stoplist", "add", "tmpacc", "x@y.test")
    assert "x@y.test" in g.spoolctl("stoplist", "list", "tmpacc").stdout
    g.spoolctl("stoplist", "del", "tmpacc", "x@y.test")
    assert "x@y.test" not in g.spoolctl("stoplist", "list", "tmpacc").stdout
    assert g.spoolctl("account", "del", "tmpacc").returncode == 0
    assert g.spoolctl("account", "show", "tmpacc", check=False).returncode == 1


def test_failed_spoolctl_does_not_wedge_the_spool():
    """A spoolctl that fails inside a write transaction (exit 1) must not
    leave the LMDB writer lock held: the next writer goes on at once."""
    need("spoolctl")
    with smtpgate.Gateway(tls=False, port_tls="none") as g:
        g.add_account("acc")
        for args in (("issue", "block", "424242"), ("sender", "add", "nosuch", "a@b.test",
                                                     "--status", "approved"),
                     ("account", "del", "nosuch")):
            assert g.spoolctl(*args, check=False).returncode == 1
            r = g.spoolctl("stoplist", "add", "acc", "x@y.test", timeout=10)
            assert r.returncode == 0


def test_expired_class_listen_required_auth_plaintext():
    """max_queue_lifetime -> bounced/expired; tls=required refuses mail
    before STARTTLS; auth_plaintext = yes offers AUTH in clear on a
    tls=starttls listener (and not on tls=none); hostname in the greeting."""
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx = peers.Mx().start()
    mx.default = "451 4.3.0 busy"
    g = smtpgate.Gateway(tls=True, port_tls="starttls",
                         extra={"relayhost": "127.0.0.1:%d" % mx.port,
                                "retry_schedule": "1s", "max_queue_lifetime": "3s",
                                "auth_plaintext": "yes", "hostname": "gw.contract.test"})
    req_port = smtpgate.free_port()
    none_port = smtpgate.free_port()
    g.listen += ["127.0.0.1:%d tls=required" % req_port, "127.0.0.1:%d tls=none" % none_port]
    g.write_conf()
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.add_account("pw", password="secret")
        g.start()
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15, source_address=("127.0.0.2", 0))
        try:
            code, banner = s.docmd("NOOP")
            code, text = s.ehlo("client.test")
            assert text.decode().split("\n")[0].startswith("gw.contract.test"), text
            assert "auth" in s.esmtp_features, s.esmtp_features
            assert s.login("pw", "secret")[0] == 235
        finally:
            s.quit()
        s = smtplib.SMTP("127.0.0.1", none_port, timeout=15, source_address=("127.0.0.2", 0))
        try:
            s.ehlo("client.test")
            assert "auth" not in s.esmtp_features and "starttls" not in s.esmtp_features
        finally:
            s.quit()
        s = smtplib.SMTP("127.0.0.1", req_port, timeout=15)
        try:
            s.ehlo("client.test")
            assert "starttls" in s.esmtp_features
            # auth_plaintext applies to tls=starttls listeners only
            assert "auth" not in s.esmtp_features, s.esmtp_features
            code, text = s.docmd("AUTH PLAIN AHB3AHNlY3JldA==")
            assert code == 530, (code, text)
            code, text = s.docmd("MAIL FROM:<a@example.com>")
            assert code == 530 and text.startswith(b"5.7.0"), (code, text)
        finally:
            s.close()

        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid = submit(s, ["late@example.net"])
        finally:
            s.quit()
        e = smtpgate.wait_for(lambda: [x for x in g.events() if x.get("queue_id") == qid
                                       and x["event"] == "bounced"], 30, what="expiry")[0]
        assert e["class"] == "expired", e
        deferred = [x for x in g.events() if x.get("queue_id") == qid
                    and x["event"] == "deferred"]
        assert deferred and all("class" not in x for x in deferred)
        assert [x["attempt"] for x in deferred] == list(range(1, len(deferred) + 1))
    finally:
        g.close()
        mx.stop()


def test_retry_domain_wakes_deliverd():
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx = peers.Mx().start()
    mx.rules["a@later.test"] = ["451 4.3.0 busy", "250 2.1.5 Ok"]
    g = smtpgate.Gateway(tls=False, port_tls="none",
                         extra={"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h"})
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid = submit(s, ["a@later.test"])
        finally:
            s.quit()
        events_for(g, qid)
        assert g.spoolctl("retry", "--domain", "later.test").returncode == 0
        e = smtpgate.wait_for(lambda: [x for x in g.events() if x.get("queue_id") == qid
                                       and x["event"] == "delivered"], 20, what="retry")[0]
        assert e["attempt"] == 2
        assert g.spoolctl("retry", "--domain", check=False).returncode == 2
    finally:
        g.close()
        mx.stop()


@pytest.mark.skipif(not smtpgate.IS_ROOT, reason="users matter only when started as root")
@pytest.mark.parametrize("key", ["smtpd_user", "spoold_user", "deliverd_user",
                                 "smtpgate_group"])
@pytest.mark.parametrize("prog", PROGRAMS)
def test_unknown_user_is_a_bad_value(prog, key):
    need(prog)
    with smtpgate.Gateway(tls=False, port_tls="none") as g:
        g.conf[key] = "no-such-smtpgate-user"
        g.write_conf()
        r = run_prog(prog, g.conf_path)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
        assert re.search(re.escape(g.conf_path) + r":\d+: " + key, lines[0]), lines


def test_sighup_changes_take_effect():
    """SIGHUP re-reads the file: a new blackhole address (spoold/smtpd) and a
    new relayhost (deliverd) apply to the next message without a restart."""
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx1 = peers.Mx().start()
    mx2 = peers.Mx().start()
    g = smtpgate.Gateway(tls=False, port_tls="none",
                         extra={"relayhost": "127.0.0.1:%d" % mx1.port,
                                "retry_schedule": "1s"})
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid = submit(s, ["one@example.net"])
        finally:
            s.quit()
        events_for(g, qid)
        mx1.wait_received(1)
        g.conf["relayhost"] = "127.0.0.1:%d" % mx2.port
        g.conf["blackhole_recipients"] = "test@test.ru hole@example.net"
        g.write_conf()
        for n in ("smtpd", "spoold", "deliverd"):
            os.kill(g.pid(n), signal.SIGHUP)
        time.sleep(1.5)
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid2 = submit(s, ["two@example.net"])
            qid3 = submit(s, ["hole@example.net"])
            qid4 = submit(s, ["three@example.net"])
        finally:
            s.quit()
        e = events_for(g, qid2)[0]
        events_for(g, qid4)
        assert e["event"] == "delivered", e
        mx2.wait_received(2)
        assert len(mx1.received()) == 1
        assert not [x for x in g.events() if x.get("queue_id") == qid3]
        assert not mx2.received("hole@example.net")
        for n in ("smtpd", "spoold", "deliverd"):
            assert g.procs[n].poll() is None
    finally:
        g.close()
        mx1.stop()
        mx2.stop()


def test_limits_defaults_body_and_implicit_tls(live):
    """max_recipients 1000 by default; SIZE refuses more than 52428800;
    show --body prints the message; retry QID; AUTH on the implicit-TLS
    listener, LOGIN mechanism too."""
    g, mx = live[0], live[1]
    s = client(g)
    try:
        code, text = s.docmd("MAIL FROM:<big@example.com> SIZE=52428801")
        assert code == 552, (code, text)
        s.rset()
        assert s.mail("many@example.com")[0] == 250
        codes = [s.rcpt("r%d@example.net" % i)[0] for i in range(1000)]
        assert codes.count(250) == 1000
        code, text = s.rcpt("r1000@example.net")
        assert code in (452, 552), (code, text)
        s.rset()
        mx.rules["again@example.net"] = ["451 4.3.0 later", "250 2.1.5 Ok"]
        qid = submit(s, ["again@example.net"], body="body-marker-123\r\n")
    finally:
        s.quit()
    events_for(g, qid)
    out = g.spoolctl("show", qid, "--body").stdout
    assert "body-marker-123" in out and "again@example.net" in out
    assert "body-marker-123" not in g.spoolctl("show", qid).stdout
    # an account pinned by IP did not use SMTP AUTH (RFC 3848: no "A")
    assert "with ESMTP id %s" % qid in out, out
    assert g.spoolctl("retry", qid).returncode == 0
    e = smtpgate.wait_for(lambda: [x for x in g.events() if x.get("queue_id") == qid
                                   and x["event"] == "delivered"], 20, what="retry QID")[0]
    assert e["attempt"] == 2

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP_SSL("127.0.0.1", g.port_implicit, timeout=15, context=ctx,
                         source_address=("127.0.0.2", 0))
    try:
        s.ehlo("client.test")
        assert "auth" in s.esmtp_features
        s.user, s.password = "pw", "secret"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
    finally:
        s.quit()


def test_issue_grouping_and_id_syntax(live):
    """Same account, day and X-Campaign-Id (or none): one issue; another
    campaign or account: another issue. 255 characters of [A-Za-z0-9_-] are
    a valid X-Campaign-Id / X-Letter-Id."""
    g = live[0]
    long_id = ("Ab9_-" * 51)
    assert len(long_id) == 255
    q1 = send(g, ["g1@example.net"], headers={"X-Campaign-Id": "grp-A"})
    q2 = send(g, ["g2@example.net"], headers={"X-Campaign-Id": "grp-A"})
    q3 = send(g, ["g3@example.net"], headers={"X-Campaign-Id": "grp-B"})
    q4 = send(g, ["g4@example.net"], headers={"X-Campaign-Id": "grp-A"},
              auth=("pw", "secret"), frm="pw@example.com")
    q5 = send(g, ["g5@example.net"], headers={"X-Campaign-Id": long_id,
                                              "X-Letter-Id": long_id})
    i1, i2, i3, i4, i5 = (events_for(g, q)[0] for q in (q1, q2, q3, q4, q5))
    assert i1["issue"] == i2["issue"]
    assert i3["issue"]["id"] != i1["issue"]["id"]
    assert i4["issue"]["id"] != i1["issue"]["id"] and i4["issue"]["name"] == "grp-A"
    assert i5["event"] == "delivered", i5
    assert i5["issue"]["name"] == long_id and i5["gate"]["uniq"] == long_id


def test_header_names_case_insensitive(live):
    """Message-ID, MIME-Version etc. as other MUAs spell them are the same
    headers (RFC 5322 field names are case-insensitive)."""
    g = live[0]
    s = client(g)
    try:
        s.mail("case@example.com")
        s.rcpt("case@example.net")
        msg = ("message-ID: <case.1@example.com>\r\ndate: %s\r\nFROM: Case <case@example.com>\r\n"
               "to: case@example.net\r\nSUBJECT: x\r\nMime-Version: 1.0\r\n"
               "content-type: text/plain\r\nx-campaign-id: lower-case\r\n"
               "x-letter-id: L-lower\r\n\r\nhi\r\n" %
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))
        code, text = s.data(msg.encode())
        qid = QUEUED_RE.match(text.decode()).group(1)
    finally:
        s.quit()
    e = events_for(g, qid)[0]
    assert e["event"] == "delivered", e
    assert e["message_id"] == "<case.1@example.com>"
    assert e["issue"]["name"] == "lower-case" and e["gate"]["uniq"] == "L-lower"


def test_blackhole_mixed_no_stats(live):
    """A blackholed recipient next to a real one: only the real one has an
    event and is counted in the issue; a blackhole-only message makes no
    issue at all."""
    g = live[0]
    qid = send(g, ["test@test.ru", "real-bh@example.net"],
               headers={"X-Campaign-Id": "bh-mixed"})
    evs = events_for(g, qid)
    time.sleep(0.5)
    evs = [e for e in g.events() if e.get("queue_id") == qid]
    assert [e["to"] for e in evs] == ["real-bh@example.net"], evs
    send(g, ["test@test.ru"], headers={"X-Campaign-Id": "bh-only"})
    qid2 = send(g, ["after-bh@example.net"])
    events_for(g, qid2)
    issues = g.spoolctl_json("issues", "--account", "acc")
    mixed = [i for i in issues if i["name"] == "bh-mixed"]
    assert len(mixed) == 1 and mixed[0]["recipients"] == 1, mixed
    assert mixed[0]["delivered"] == 1
    assert not [i for i in issues if i["name"] == "bh-only"], issues


def test_json_on_each_queue_command(live):
    """CONTRACT: `--json` on each queue command gives JSON, so retry, hold,
    release and delete accept it too (and query, whose output is JSON)."""
    g, mx = live[0], live[1]
    mx.rules["jq@example.net"] = ["451 4.3.0 later"]
    qid = send(g, ["jq@example.net"])
    events_for(g, qid)
    for cmd, result in (("hold", "held"), ("release", "released"), ("retry", "retried"),
                        ("delete", "deleted")):
        r = g.spoolctl(cmd, qid, "--json")
        doc = json.loads(r.stdout)
        assert doc == [{"qid": qid, "result": result, "recipients": 1}], (cmd, doc)
    assert isinstance(json.loads(g.spoolctl("retry", "--all", "--json").stdout), list)
    doc = json.loads(g.spoolctl("query", "--json", input=json.dumps(SEED)).stdout)
    assert "list" in doc


def test_recipient_without_domain_refused(live):
    """No local delivery: <postmaster> would only sit in the queue until
    max_queue_lifetime; it is refused at RCPT (reject_non_fqdn_recipient)."""
    g = live[0]
    s = client(g)
    try:
        assert s.mail("a@example.com")[0] == 250
        code, text = s.rcpt("postmaster")
        assert (code, text) == (504, b"5.5.2 Recipient address rejected: "
                                     b"need fully-qualified address")
        assert s.rcpt("postmaster@example.net")[0] == 250
    finally:
        s.quit()


def test_address_literal_recipient():
    """RFC 5321 5.1: u@[IP] goes to that address on remote_port, no MX
    lookup (dns_server points nowhere here)."""
    need("smtpd", "spoold", "deliverd", "spoolctl")
    mx = peers.Mx().start()
    g = smtpgate.Gateway(tls=False, port_tls="none",
                         extra={"remote_port": str(mx.port), "dns_server": "127.0.0.1:9",
                                "retry_schedule": "1h"})
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
        try:
            qid = submit(s, ["lit@[127.0.0.1]"])
        finally:
            s.quit()
        e = events_for(g, qid)[0]
        assert e["event"] == "delivered", e
        assert mx.received("lit@[127.0.0.1]")
    finally:
        g.close()
        mx.stop()
