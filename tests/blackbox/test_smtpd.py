"""Black-box tests of smtpd (issue 3): the real binary on 127.0.0.1 with
smtplib, raw sockets and swaks; assertions on replies and on the files in
incoming/new (the envelope is parsed)."""
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

import smtpgate
from smtpgate import Gateway, Raw, message, tls_ctx, wait_for

LOGIN = "demo.demo@smtpgate"
PASSWORD = "demo"
PINNED_IP = "127.0.0.2"     # the account "pinned" owns this client address


def parse_spool_file(path):
    """Returns (envelope dict with lists for rcpt, message bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    head, sep, body = data.partition(b"\n\n")
    assert sep, "no end of envelope"
    lines = head.decode().split("\n")
    assert lines[0] == "SMTPGATE 1"
    env = {"rcpt": []}
    for line in lines[1:]:
        k, _, v = line.partition(" ")
        if k == "rcpt":
            env["rcpt"].append(v)
        else:
            env[k] = v
    return env, body


def new_files(g):
    return [os.path.join(g.spool, "incoming", "new", f) for f in g.files("new")]


def qid_of(reply):
    return reply.split()[-1]


@pytest.fixture(scope="module")
def gw():
    g = smtpgate.smtpd_gateway(LOGIN, PASSWORD, PINNED_IP, smtpd_timeout="30s",
                               max_recipients="5", max_message_size="200000",
                               smtpd_workers="2")
    yield g
    g.close()


@pytest.fixture(autouse=True)
def _clean_new(request):
    """Tests on the shared gateway start with an empty incoming/new."""
    if "gw" in request.fixturenames:
        g = request.getfixturevalue("gw")
        for p in new_files(g):
            os.unlink(p)
    yield


def authed_smtp(g, port=None):
    s = smtplib.SMTP("127.0.0.1", port or g.port, timeout=15)
    s.ehlo("client.test")
    s.starttls(context=tls_ctx())
    s.ehlo("client.test")
    s.login(LOGIN, PASSWORD)
    return s


def pinned_raw(g):
    r = Raw(g.port, source=PINNED_IP)
    assert r.reply()[0] == 220
    assert r.cmd("EHLO pinned.test")[0] == 250
    return r


# ---------------------------------------------------------------- EHLO, TLS

def test_ehlo_capabilities_before_and_after_starttls(gw):
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
    code, text = s.ehlo("client.test")
    assert code == 250
    caps = text.decode().split("\n")
    assert caps[0] == "gate.test"
    for kw in ("PIPELINING", "SIZE 200000", "8BITMIME", "ENHANCEDSTATUSCODES",
               "SMTPUTF8", "CHUNKING", "STARTTLS"):
        assert kw in caps, kw
    assert not any(c.startswith("AUTH") for c in caps), "AUTH offered in clear"
    s.starttls(context=tls_ctx())
    code, text = s.ehlo("client.test")
    caps = text.decode().split("\n")
    assert "AUTH PLAIN LOGIN" in caps
    assert "STARTTLS" not in caps
    assert "CHUNKING" in caps
    s.quit()


def test_implicit_tls(gw):
    s = smtplib.SMTP_SSL("127.0.0.1", gw.port_implicit, timeout=10, context=tls_ctx())
    code, text = s.ehlo("client.test")
    caps = text.decode().split("\n")
    assert "AUTH PLAIN LOGIN" in caps and "STARTTLS" not in caps
    s.login(LOGIN, PASSWORD)
    refused = s.sendmail("from@example.com", ["to@example.net"], message())
    assert refused == {}
    s.quit()
    files = new_files(gw)
    assert len(files) == 1
    env, body = parse_spool_file(files[0])
    assert env["tls"].startswith("TLSv1.")
    assert env["auth"] == LOGIN and env["account"] == LOGIN
    assert b"with ESMTPSA id " + env["qid"].encode() in body


def test_starttls_refused_without_listener_support():
    with Gateway(tls=False) as g:
        g.start("smtpd")
        r = Raw(g.port)
        assert r.reply()[0] == 220
        code, text = r.cmd("EHLO x")
        assert "STARTTLS" not in text and "AUTH" not in text
        assert r.cmd("STARTTLS")[0] == 502
        assert r.cmd("AUTH PLAIN AGEAYg==")[0] == 503
        r.close()


# ---------------------------------------------------------------- AUTH

def test_auth_plain_and_login_success(gw):
    for mech in ("PLAIN", "LOGIN"):
        s = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
        s.ehlo("client.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.test")
        s.user, s.password = LOGIN, PASSWORD
        code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()),
                            initial_response_ok=(mech == "PLAIN"))
        assert code == 235, (mech, text)
        assert s.sendmail("a@example.com", ["b@example.net"], message()) == {}
        s.quit()
    assert len(new_files(gw)) == 2


def other_session_noop(gw):
    """A whole session (greeting, EHLO, NOOP, QUIT) on a new connection."""
    s = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
    s.ehlo("x")
    assert s.noop()[0] == 250
    s.quit()


def test_auth_failure_is_slow_and_counted(gw):
    r = Raw(gw.port)
    r.reply()
    r.cmd("EHLO x")
    assert r.cmd("STARTTLS")[0] == 220
    r.starttls()
    r.cmd("EHLO x")
    import base64
    bad = base64.b64encode(b"\0" + LOGIN.encode() + b"\0wrong").decode()
    # delayed: another session is served before the 535 arrives
    r.send(("AUTH PLAIN " + bad + "\r\n").encode())
    other_session_noop(gw)
    assert r.silent(), "failed AUTH answered before another session's NOOP"
    code, text = r.reply()
    assert code == 535 and "5.7.8" in text
    # unknown user fails the same way
    bad2 = base64.b64encode(b"\0nobody\0x").decode()
    assert r.cmd("AUTH PLAIN " + bad2)[0] == 535
    assert r.cmd("MAIL FROM:<a@b.c>")[0] == 530
    # third failure (smtpd_auth_max_failures = 3): 535 then 421 and close
    code, text = r.cmd("AUTH PLAIN " + bad)
    assert code == 535
    code, text = r.reply()
    assert code == 421
    assert r.closed()


def test_auth_failure_delay_does_not_block_other_sessions(gw):
    import base64
    r = Raw(gw.port)
    r.reply()
    r.cmd("EHLO x")
    r.cmd("STARTTLS")
    r.starttls()
    r.cmd("EHLO x")
    bad = base64.b64encode(b"\0" + LOGIN.encode() + b"\0wrong").decode()
    # several failing sessions in flight; a good one must still be fast
    r.send(("AUTH PLAIN " + bad + "\r\n").encode())
    other_session_noop(gw)
    assert r.silent(), "the good session waited for the failing one's delay"
    assert r.reply()[0] == 535
    r.close()


def test_auth_refused_before_tls_on_required_listener():
    port = smtpgate.free_port()
    with Gateway() as g:
        g.listen.append("127.0.0.1:%d tls=required" % port)
        g.write_conf()
        g.add_account(LOGIN, password=PASSWORD)
        g.start("smtpd")
        smtpgate.wait_port(port)
        r = Raw(port)
        assert r.reply()[0] == 220
        code, text = r.cmd("EHLO x")
        assert "STARTTLS" in text and "AUTH" not in text
        code, text = r.cmd("AUTH PLAIN AGRlbW8uZGVtb0BzbXRwZ2F0ZQBkZW1v")
        assert code == 530 and "5.7.0 Must issue a STARTTLS command first" in text
        code, text = r.cmd("MAIL FROM:<a@b.c>")
        assert code == 530 and "STARTTLS" in text
        assert r.cmd("STARTTLS")[0] == 220
        r.starttls()
        assert "AUTH PLAIN LOGIN" in r.cmd("EHLO x")[1]
        assert r.cmd("AUTH PLAIN AGRlbW8uZGVtb0BzbXRwZ2F0ZQBkZW1v")[0] == 235
        assert r.cmd("MAIL FROM:<a@b.c>")[0] == 250
        r.close()


def test_auth_plaintext_option():
    with Gateway(extra={"auth_plaintext": "yes"}) as g:
        g.add_account(LOGIN, password=PASSWORD)
        g.start("smtpd")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        code, text = s.ehlo("x")
        assert b"AUTH PLAIN LOGIN" in text
        s.login(LOGIN, PASSWORD)
        assert s.sendmail("a@example.com", ["b@example.net"], message()) == {}
        s.quit()


# ---------------------------------------------------------------- relay policy

def test_relay_refused_without_auth(gw):
    r = Raw(gw.port)
    r.reply()
    r.cmd("EHLO x")
    code, text = r.cmd("MAIL FROM:<a@example.com>")
    assert code == 530 and "5.7.0 Authentication required" in text
    code, _ = r.cmd("RCPT TO:<victim@example.net>")
    assert code == 503
    assert r.cmd("DATA")[0] == 503
    r.cmd("QUIT")
    assert new_files(gw) == []


def test_ip_pinned_account(gw):
    r = pinned_raw(gw)
    assert r.cmd("MAIL FROM:<bulk@example.com> BODY=8BITMIME")[0] == 250
    assert r.cmd("RCPT TO:<one@example.net>")[0] == 250
    assert r.cmd("RCPT TO:<two@example.org>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b".\r\n")
    code, text = r.reply()
    assert code == 250 and "2.0.0 Ok: queued as" in text
    r.cmd("QUIT")
    files = new_files(gw)
    assert [os.path.basename(f) for f in files] == [qid_of(text)]
    env, body = parse_spool_file(files[0])
    assert env["account"] == "pinned" and env["auth"] == ""
    assert env["from"] == "bulk@example.com"
    assert env["from_params"] == "BODY=8BITMIME"
    assert env["rcpt"] == ["one@example.net", "two@example.org"]
    assert env["client"].startswith(PINNED_IP + ":")
    assert env["helo"] == "pinned.test"
    assert body.startswith(b"Received: from pinned.test (unknown [127.0.0.2])\r\n")
    assert body.endswith(message()[-40:])


# ---------------------------------------------------------------- protocol

def test_pipelined_session_answered_in_order(gw):
    r = Raw(gw.port, source=PINNED_IP)
    msg = message()
    r.send(b"EHLO pipe.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
           b"RCPT TO:<bad address>\r\nRCPT TO:<c@example.net>\r\nNOOP\r\nDATA\r\n")
    codes = [r.reply()[0] for _ in range(7)]
    assert codes == [220, 250, 250, 250, 501, 250, 250], codes
    assert r.reply()[0] == 354
    r.send(msg + b".\r\nMAIL FROM:<d@example.com>\r\nRCPT TO:<e@example.net>\r\nRSET\r\nQUIT\r\n")
    codes = [r.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 250, 250, 221]
    assert r.closed()
    assert len(new_files(gw)) == 1


def test_bdat_chunking(gw):
    r = pinned_raw(gw)
    msg = message(body="line one\r\n.line two with a leading dot\r\nlast")
    a, b = msg[:50], msg[50:]
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
           b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b)
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250
    code, text = r.reply()
    assert code == 250 and "50 octets" in text
    code, text = r.reply()
    assert code == 250 and "queued as" in text
    # BDAT 0 LAST and a chunk that holds "\r\n.\r\n" (no meaning in BDAT)
    body2 = message()[:-2] + b"\r\n.\r\nMAIL FROM:<x@y.z>\r\n"
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nBDAT %d\r\n"
           % len(body2) + body2 + b"BDAT 0 LAST\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 250]
    # BDAT without MAIL: chunk is read and discarded, then 503
    r.send(b"BDAT 10\r\n0123456789NOOP\r\n")
    assert r.reply()[0] == 503
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    files = sorted(new_files(gw))
    assert len(files) == 2
    bodies = {qid_of(text): None}
    env, body = parse_spool_file(os.path.join(gw.spool, "incoming/new", qid_of(text)))
    assert body.split(b"\r\n", 4)[-1].endswith(b".line two with a leading dot\r\nlast\r\n")
    others = [f for f in files if os.path.basename(f) != qid_of(text)]
    env2, body2_got = parse_spool_file(others[0])
    assert body2_got.endswith(body2)


def test_bdat_chunk_ending_in_cr(gw):
    """A chunk that ends between CR and LF: the reply counts what was sent."""
    r = pinned_raw(gw)
    msg = message()
    cut = msg.index(b"\r\n") + 1
    a, b = msg[:cut], msg[cut:]
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
           b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b)
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250
    code, text = r.reply()
    assert code == 250 and ("%d octets" % len(a)) in text
    code, text = r.reply()
    assert code == 250 and "queued as" in text
    r.cmd("QUIT")
    env, body = parse_spool_file(os.path.join(gw.spool, "incoming/new", qid_of(text)))
    assert body.endswith(msg)


def test_size_limits(gw):
    r = pinned_raw(gw)
    code, text = r.cmd("MAIL FROM:<a@example.com> SIZE=300000")
    assert code == 552 and "5.3.4" in text
    assert r.cmd("MAIL FROM:<a@example.com> SIZE=1000")[0] == 250
    assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    line = b"x" * 900 + b"\r\n"
    r.send(message() + line * 300 + b".\r\n")
    code, text = r.reply()
    assert code == 552 and "5.3.4" in text
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")
    assert new_files(gw) == []
    assert smtpgate.wait_for(lambda: gw.files("tmp") == [], 5, what="tmp empty")


def test_overlong_lines(gw):
    r = pinned_raw(gw)
    code, text = r.cmd("NOOP " + "a" * 600)
    assert code == 500 and "5.5.2" in text
    code, text = r.cmd("MAIL FROM:<" + "a" * 5000 + "@example.com>")
    assert code == 500
    assert r.cmd("NOOP")[0] == 250
    assert r.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b"y" * 1200 + b"\r\n.\r\n")
    code, text = r.reply()
    assert code == 552 and "5.3.4" in text
    # 998 octets + CRLF is still fine
    r.cmd("MAIL FROM:<a@example.com>")
    r.cmd("RCPT TO:<b@example.net>")
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b"z" * 998 + b"\r\n.\r\n")
    assert r.reply()[0] == 250
    # a 100 KB line without any LF neither crashes nor hangs
    r.send(b"Q" * 100000 + b"\r\n")
    assert r.reply()[0] == 500
    assert r.cmd("NOOP")[0] == 250
    r.close()
    assert len(new_files(gw)) == 1


SMUGGLE = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r\n\r.\r\n",
]


@pytest.mark.parametrize("sep", SMUGGLE, ids=[repr(s) for s in SMUGGLE])
def test_bare_lf_cr_smuggling(gw, sep):
    r = pinned_raw(gw)
    assert r.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    smuggled = (b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
    r.send(message()[:-2] + sep + smuggled + b".\r\n")
    code, text = r.reply()
    assert code == 550 and "5.5.2" in text, text
    # nothing else was answered: the smuggled commands were message text
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")
    assert new_files(gw) == []


def test_starttls_injection_discarded(gw):
    r = Raw(gw.port)
    r.reply()
    r.cmd("EHLO x")
    r.send(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    assert r.reply()[0] == 220
    r.starttls()
    code, text = r.cmd("EHLO y")
    assert code == 250 and "AUTH PLAIN LOGIN" in text   # the EHLO reply, not MAIL's
    code, text = r.cmd("RCPT TO:<b@example.net>")
    assert code == 503, "plaintext MAIL injected before STARTTLS was executed"
    r.close()


def test_misc_commands_and_errors(gw):
    r = pinned_raw(gw)
    assert r.cmd("VRFY root")[0] == 252
    assert r.cmd("EXPN list")[0] == 502
    assert r.cmd("HELP")[0] == 214
    assert r.cmd("XYZZY")[0] == 500
    assert r.cmd("MAIL FROM:<bad@@address>")[0] == 501
    assert r.cmd("MAIL FROM:<a@example.com> FOO=bar")[0] == 555
    assert r.cmd("MAIL FROM:<>")[0] == 250                  # null sender
    for i in range(5):
        assert r.cmd("RCPT TO:<r%d@example.net>" % i)[0] == 250
    code, text = r.cmd("RCPT TO:<r6@example.net>")
    assert code == 452 and "4.5.3" in text
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("DATA")[0] == 503
    r.cmd("QUIT")


def test_max_errors_disconnects():
    with Gateway(tls=False, extra={"smtpd_max_errors": "3"}) as g:
        g.start("smtpd")
        r = Raw(g.port)
        r.reply()
        r.cmd("BOGUS1")
        r.cmd("BOGUS2")
        assert r.cmd("BOGUS3")[0] == 500
        assert r.reply()[0] == 421
        assert r.closed()


def test_blackhole_recipients(gw):
    r = pinned_raw(gw)
    r.cmd("MAIL FROM:<a@example.com>")
    assert r.cmd("RCPT TO:<test@test.ru>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b".\r\n")
    code, text = r.reply()
    assert code == 250 and "queued as" in text
    assert new_files(gw) == []
    # mixed: only the real recipient is written
    r.cmd("MAIL FROM:<a@example.com>")
    r.cmd("RCPT TO:<TEST@test.ru>")
    r.cmd("RCPT TO:<real@example.net>")
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b".\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    files = new_files(gw)
    assert len(files) == 1
    assert parse_spool_file(files[0])[0]["rcpt"] == ["real@example.net"]


def test_smtputf8_and_8bit(gw):
    r = pinned_raw(gw)
    assert r.cmd("MAIL FROM:<\u00e9l\u00e8ve@\u00e9cole.example> SMTPUTF8")[0] == 250
    assert r.cmd("RCPT TO:<\u7528\u6237@example.net>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send(message(body="caf\u00e9\r\n") + b".\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    env, body = parse_spool_file(new_files(gw)[0])
    assert env["from"] == "\u00e9l\u00e8ve@\u00e9cole.example"
    assert env["from_params"] == "SMTPUTF8"
    assert "caf\u00e9".encode() in body


def test_io_error_gives_452(gw):
    tmp = os.path.join(gw.spool, "incoming", "tmp")
    mode = os.stat(tmp).st_mode
    os.chmod(tmp, 0o500)
    try:
        r = pinned_raw(gw)
        r.cmd("MAIL FROM:<a@example.com>")
        r.cmd("RCPT TO:<b@example.net>")
        code, text = r.cmd("DATA")
        assert code == 452 and "4.3.1" in text
        r.cmd("QUIT")
    finally:
        os.chmod(tmp, mode & 0o7777)
    assert new_files(gw) == []


# ---------------------------------------------------------------- robustness

def test_idle_timeout():
    with Gateway(tls=False, extra={"smtpd_timeout": "2s"}) as g:
        g.start("smtpd")
        r = Raw(g.port)
        assert r.reply()[0] == 220
        assert r.cmd("NOOP")[0] == 250		# not cut off at once
        t0 = time.monotonic()
        code, text = r.reply()		# unprompted, within Raw's 10 s
        assert code == 421 and "4.4.2" in text
        print("idle 421 after %.1f s (smtpd_timeout 2s)" % (time.monotonic() - t0))
        assert r.closed()


def test_cut_mid_data_leaves_nothing(gw):
    r = pinned_raw(gw)
    r.cmd("MAIL FROM:<a@example.com>")
    r.cmd("RCPT TO:<b@example.net>")
    assert r.cmd("DATA")[0] == 354
    r.send(message() + b"partial line without end")
    time.sleep(0.3)
    assert gw.files("tmp"), "the message was not streamed to incoming/tmp"
    r.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    wait_for(lambda: gw.files("tmp") == [], 5, what="tmp file removed")
    assert new_files(gw) == []


@pytest.mark.parametrize("n,workers", [(200, 4), (500, 8)])
def test_concurrent_sessions(n, workers):
    # one client address for all: above the default per-address limit
    with Gateway(tls=False, extra={"smtpd_workers": str(workers),
                                   "smtpd_max_sessions": "100",
                                   "smtpd_client_connection_limit": str(n)}) as g:
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        conns = []
        for i in range(n):
            r = Raw(g.port, timeout=30)
            conns.append(r)
        for r in conns:
            assert r.reply()[0] == 220
        # every session is open at once; now each sends one message
        for i, r in enumerate(conns):
            r.send(b"EHLO c%d\r\nMAIL FROM:<s%d@example.com>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n" % (i, i))
        for r in conns:
            assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        for r in conns:
            r.send(message() + b".\r\nQUIT\r\n")
        qids = set()
        for r in conns:
            code, text = r.reply()
            assert code == 250
            qids.add(qid_of(text))
            assert r.reply()[0] == 221
            r.close()
        assert len(qids) == n
        assert set(g.files("new")) == qids


def worker_pids(g):
    return smtpgate.smtpd_children(g)[0]


def test_kill_worker_loses_nothing_acknowledged():
    with Gateway(tls=False, extra={"smtpd_workers": "2"}) as g:
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        acked = []
        stop = threading.Event()
        errors = []

        def sender():
            while not stop.is_set():
                try:
                    s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
                    s.ehlo("k")
                    for _ in range(20):
                        s.mail("a@example.com")
                        s.rcpt("b@example.net")
                        code, text = s.data(message())
                        if code == 250:
                            acked.append(qid_of(text.decode()))
                    s.quit()
                except (smtplib.SMTPException, OSError) as e:
                    errors.append(e)
        ts = [threading.Thread(target=sender) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        before = worker_pids(g)
        assert before
        for p in before:
            os.kill(p, signal.SIGKILL)
        time.sleep(1.0)
        stop.set()
        for t in ts:
            t.join(30)
        after = worker_pids(g)
        assert after and not set(after) & set(before), "workers not replaced"
        present = set(g.files("new"))
        assert acked and set(acked) <= present, "acknowledged messages lost"
        # the new workers serve
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        s.ehlo("k")
        assert s.sendmail("a@example.com", ["b@example.net"], message()) == {}
        s.quit()


def rss_kb(pid, field="VmHWM"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def test_memory_flat_on_50mb_message():
    with Gateway(tls=False, extra={"smtpd_workers": "1",
                                   "max_message_size": "60000000"}) as g:
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=60)
        s.ehlo("big")
        (pid,) = worker_pids(g)
        base = rss_kb(pid, "VmRSS")
        s.mail("a@example.com")
        s.rcpt("b@example.net")
        s.putcmd("data")
        assert s.getreply()[0] == 354
        line = b"0123456789" * 7 + b"\r\n"
        chunk = line * 1000
        sent = 0
        while sent < 50 * 1024 * 1024:
            s.sock.sendall(chunk)
            sent += len(chunk)
        s.sock.sendall(b".\r\n")
        code, text = s.getreply()
        assert code == 250
        peak = rss_kb(pid, "VmHWM")
        s.quit()
        assert peak - base < 16 * 1024, "worker grew by %d KB" % (peak - base)
        (f,) = new_files(g)
        assert os.path.getsize(f) > 50 * 1024 * 1024


# ---------------------------------------------------------------- swaks

def swaks(*args):
    return subprocess.run(["swaks", "--silent", "2", "--timeout", "20"] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_swaks_starttls_auth_and_implicit(gw):
    r = swaks("--server", "127.0.0.1:%d" % gw.port, "--tls", "--auth", "LOGIN",
              "--auth-user", LOGIN, "--auth-password", PASSWORD,
              "--from", "s@example.com", "--to", "t@example.net")
    assert r.returncode == 0, r.stdout + r.stderr
    r = swaks("--server", "127.0.0.1:%d" % gw.port_implicit, "--tls-on-connect",
              "--auth", "PLAIN", "--auth-user", LOGIN, "--auth-password", PASSWORD,
              "--from", "s@example.com", "--to", "t@example.net")
    assert r.returncode == 0, r.stdout + r.stderr
    r = swaks("--server", "127.0.0.1:%d" % gw.port, "--tls", "--auth", "PLAIN",
              "--auth-user", LOGIN, "--auth-password", "wrong",
              "--from", "s@example.com", "--to", "t@example.net")
    assert r.returncode != 0
    r = swaks("--server", "127.0.0.1:%d" % gw.port, "--from", "s@example.com",
              "--to", "t@example.net")
    assert r.returncode != 0 and "530" in r.stdout + r.stderr
    assert len(new_files(gw)) == 2


def test_swaks_pipelining_and_bdat(gw):
    r = swaks("--server", "127.0.0.1:%d" % gw.port, "--local-interface", PINNED_IP,
              "--pipeline", "--from", "s@example.com", "--to", "t@example.net")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(new_files(gw)) == 1


# ---------------------------------------------------------------- signals

def test_sighup_reload_keeps_listening_and_sigterm_exits_0():
    with Gateway(tls=True) as g:
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        r = Raw(g.port)              # a session that spans the reload
        r.reply()
        r.cmd("EHLO x")
        g.conf["max_message_size"] = "123456"
        g.write_conf()
        os.kill(g.pid("smtpd"), signal.SIGHUP)
        def new_size():
            s = smtplib.SMTP("127.0.0.1", g.port, timeout=5)
            text = s.ehlo("y")[1]
            s.quit()
            return b"SIZE 123456" in text
        wait_for(new_size, 10, what="reloaded configuration")
        # the old session still works
        assert r.cmd("MAIL FROM:<a@example.com>")[0] == 250
        assert r.cmd("RCPT TO:<b@example.net>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(message() + b".\r\n")
        assert r.reply()[0] == 250
        r.cmd("QUIT")
        p = g.procs["smtpd"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
        g.procs.pop("smtpd")


def test_bad_config_exits_2(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("listen = 127.0.0.1:%d tls=implicit\nspool_dir = %s\n" %
                    (smtpgate.free_port(), tmp_path / "spool"))
    r = subprocess.run([smtpgate.binary("smtpd"), "-c", str(conf)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "tls_cert" in r.stderr
    # port in use
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    conf.write_text("listen = 127.0.0.1:%d tls=none\nspool_dir = %s\n" %
                    (busy.getsockname()[1], tmp_path / "spool"))
    r = subprocess.run([smtpgate.binary("smtpd"), "-c", str(conf)],
                       capture_output=True, text=True, timeout=20)
    busy.close()
    assert r.returncode == 2 and "listen" in r.stderr


# ---------------------------------------------------------------- limits, privileges

def test_per_ip_session_cap():
    with Gateway(tls=False, extra={"smtpd_workers": "1",
                                   "smtpd_max_sessions_per_ip": "2"}) as g:
        g.start("smtpd")
        # the harness's port probe must be gone first
        wait_for(lambda: "disconnect" in g.log("smtpd"), 5, what="probe closed")
        a, b = Raw(g.port), Raw(g.port)
        assert a.reply()[0] == 220 and b.reply()[0] == 220
        c = Raw(g.port)
        code, text = c.reply()
        assert code == 421 and "too many connections" in text
        assert c.closed()
        d = Raw(g.port, source=PINNED_IP)     # another address still gets in
        assert d.reply()[0] == 220
        for r in (a, b, d):
            r.close()


def test_data_timeout():
    with Gateway(tls=False, extra={"smtpd_data_timeout": "2s"}) as g:
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        r = Raw(g.port)
        r.reply()
        r.cmd("EHLO x")
        r.cmd("MAIL FROM:<a@example.com>")
        r.cmd("RCPT TO:<b@example.net>")
        assert r.cmd("DATA")[0] == 354
        r.send(b"Subject: slow\r\n\r\nstarted")
        code, text = r.reply()
        assert code == 421 and "4.4.2" in text
        assert r.closed()
        wait_for(lambda: g.files("tmp") == [], 5, what="tmp file removed")
        assert g.files("new") == []


@pytest.mark.skipif(not smtpgate.IS_ROOT, reason="privilege drop needs root")
def test_workers_chrooted_and_unprivileged(gw):
    import pwd
    master = gw.pid("smtpd")
    uid = pwd.getpwnam("smtpgate-smtpd").pw_uid
    for p in worker_pids(gw):
        st = os.stat("/proc/%d" % p)
        assert st.st_uid == uid, "worker runs as uid %d" % st.st_uid
        assert os.path.realpath("/proc/%d/root" % p) == os.path.realpath(gw.spool)
    assert os.stat("/proc/%d" % master).st_uid == 0


def test_worker_retires_after_max_use():
    with Gateway(tls=False, extra={"smtpd_workers": "1", "smtpd_max_use": "3"}) as g:
        g.start("smtpd")
        wait_for(lambda: len(worker_pids(g)) == 1, 5, what="one worker")
        first = worker_pids(g)
        for _ in range(6):
            r = Raw(g.port)
            assert r.reply()[0] == 220
            assert r.cmd("QUIT")[0] == 221
            r.close()
        wait_for(lambda: worker_pids(g) and worker_pids(g) != first, 10,
                 what="a fresh worker")
        r = Raw(g.port)
        assert r.reply()[0] == 220
        r.close()


def test_all_workers_full_gets_421():
    # one client address for all: above the default per-address limit (2)
    with Gateway(tls=False, extra={"smtpd_workers": "2", "smtpd_max_sessions": "2",
                                   "smtpd_client_connection_limit": "10"}) as g:
        g.start("smtpd")
        wait_for(lambda: "disconnect" in g.log("smtpd"), 5, what="probe closed")
        held = [Raw(g.port) for _ in range(4)]
        for r in held:
            assert r.reply()[0] == 220
        extra = Raw(g.port)
        code, text = extra.reply()
        assert code == 421 and "too many connections" in text
        held[0].cmd("QUIT")
        held[0].close()
        wait_for(lambda: g.log("smtpd").count("disconnect") >= 2, 5, what="slot freed")
        again = Raw(g.port)
        assert again.reply()[0] == 220
        for r in held[1:] + [again]:
            r.close()


def tcp_peers(pid):
    """The remote ports of the established TCP connections a process holds:
    for a worker, its clients' ports."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    out = set()
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[9] in inodes and cols[3] == "01":  # ESTABLISHED
                out.add(int(cols[2].split(":")[1], 16))
    return out


def test_freed_slot_not_taken_by_full_worker():
    """A worker that has room again says so before it sleeps: a full worker
    that looks at the board meanwhile leaves the next connection to it
    instead of answering 421. The worker with room is stopped while the
    connection waits, so the full one looks several times (every 100 ms)."""
    with Gateway(tls=False, extra={"smtpd_workers": "2", "smtpd_max_sessions": "2",
                                   "smtpd_client_connection_limit": "10"}) as g:
        g.start("smtpd")
        wait_for(lambda: "disconnect" in g.log("smtpd"), 5, what="probe closed")
        wait_for(lambda: len(worker_pids(g)) == 2, 5, what="two workers")
        held = [Raw(g.port) for _ in range(4)]
        for r in held:
            assert r.reply()[0] == 220
        ports = {r.sock.getsockname()[1]: r for r in held}
        workers = worker_pids(g)
        by_worker = {w: set(ports) & tcp_peers(w) for w in workers}
        assert sorted(len(v) for v in by_worker.values()) == [2, 2], by_worker
        owner = next(w for w in workers if by_worker[w])
        port = next(iter(by_worker[owner]))
        ports[port].cmd("QUIT")
        ports[port].close()
        wait_for(lambda: g.log("smtpd").count("disconnect") >= 2, 5, what="slot freed")
        os.kill(owner, signal.SIGSTOP)
        try:
            again = Raw(g.port)  # queued in the listen backlog
            time.sleep(0.5)
        finally:
            os.kill(owner, signal.SIGCONT)
        assert again.reply()[0] == 220
        for r in list(ports.values()) + [again]:
            r.close()


def peer_cn(port):
    import ssl as _ssl
    pem = _ssl.get_server_certificate(("127.0.0.1", port))
    r = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip()


def test_sighup_reloads_certificate_and_old_tls_refused():
    with Gateway() as g:
        g.start("smtpd")
        assert "CN = localhost" in peer_cn(g.port_implicit)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", g.key, "-out", g.cert, "-days", "2",
                        "-subj", "/CN=renewed.test"], check=True, capture_output=True,
                       timeout=60)
        os.kill(g.pid("smtpd"), signal.SIGHUP)
        wait_for(lambda: "renewed.test" in peer_cn(g.port_implicit), 10,
                 what="new certificate served")
        # TLS 1.1 is refused by the server (the client allows it here)
        for version, ok in (("-tls1_1", False), ("-tls1_2", True)):
            r = subprocess.run(["openssl", "s_client", "-connect",
                                "127.0.0.1:%d" % g.port_implicit, version,
                                "-cipher", "DEFAULT@SECLEVEL=0"], input="QUIT\n",
                               capture_output=True, text=True, timeout=20)
            assert (r.returncode == 0) == ok, (version, r.stderr[-300:])
            if not ok:
                assert "protocol version" in r.stderr


def test_trickled_line_does_not_reset_the_timeout():
    """smtpd_timeout is per complete line: one byte a second never ends it."""
    with Gateway(tls=False, extra={"smtpd_timeout": "2s"}) as g:
        g.start("smtpd")
        r = Raw(g.port)
        assert r.reply()[0] == 220
        t0 = time.monotonic()
        closed = False
        r.sock.settimeout(0.5)
        while time.monotonic() - t0 < 10:
            try:
                r.send(b"a")
                d = r.sock.recv(4096)
                if not d:
                    closed = True
                    break
                r.buf += d
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        print("trickling client cut off after %.1f s (smtpd_timeout 2s)" % (
            time.monotonic() - t0))
        assert closed, "a byte every 0.5 s held the session for 10 s (smtpd_timeout 2s)"
        assert b"421 4.4.2" in r.buf


@pytest.mark.parametrize("setting", [None, "0"])
def test_default_workers_two_per_cpu(setting):
    """smtpd_workers unset or 0 (issue 21): two workers per online CPU,
    2 to 16; the log says how many."""
    want = min(16, max(2, 2 * os.sysconf("SC_NPROCESSORS_ONLN")))
    with Gateway(tls=False) as g:
        g.conf.pop("smtpd_workers", None)
        if setting is not None:
            g.conf["smtpd_workers"] = setting
        g.write_conf()
        g.add_account("pinned", ips=["127.0.0.1"])
        g.start("smtpd")
        wait_for(lambda: len(worker_pids(g)) == want, 15, what="%d workers" % want)
        assert "%d workers" % want in g.log("smtpd")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        s.ehlo("w")
        assert s.sendmail("a@example.com", ["b@example.net"], message()) == {}
        s.quit()
