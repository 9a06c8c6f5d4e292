"""deliverd's DKIM key process (deliverd-key, deliverd_key.c): the delivery
workers talk to hostile MX servers, so no DKIM private key is in their
memory and they cannot open keys/; their signatures (RSA-SHA256 and
Ed25519-SHA256, canonicalised and hashed by libopendkim in the worker)
come from the key process, and still verify with dkimpy. A killed key
process is restarted and the workers replaced; a stopped one defers the
message (451, bounded) instead of sending it unsigned; a key added with
spoolctl while deliverd runs is used; a taken-over worker's malformed
request closes its socket.

The tracking tokens (issue 16) come from the key process too: no worker
holds db/track.key or can open it, a tracked copy whose tokens do not
come is deferred (never sent untracked), and the tokens still verify
under the same key.
"""
import os
import signal
import subprocess

import pytest

import peers
import smtpgate
from chaos import deliverd_children
from smtpgate import inject, put_msg, wait_for
from test_deliverd import dkim_results, gen_key, relay_gw
from test_smtpd_keyproc import found_in, secrets
from test_track_rewrite import HOST, LINKS, mime_message, parse_token

needs_root = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")


@pytest.fixture
def mx(tmp_path):
    m = peers.Mx(tls_dir=str(tmp_path)).start()
    yield m
    m.stop()


def key_procs(g):
    from chaos import children
    return [k for k in children(g.pid("deliverd"))
            if smtpgate.proc_comm(k) == "deliverd-key"]


def one_key_proc(g):
    wait_for(lambda: len(key_procs(g)) == 1, 15, what="one deliverd-key")
    return key_procs(g)[0]


def workers(g, n=2):
    wait_for(lambda: len(deliverd_children(g)[0]) == n, 15, what="%d workers" % n)
    return sorted(deliverd_children(g)[0])


def signed_gw(mx, g):
    """Starts deliverd with an account "acc" and an RSA (r1) and an
    Ed25519 (e1) key for example.com; the TXT records."""
    g.start("deliverd")
    inject(g, "account", "acc")
    rsa, rsa_txt = gen_key(g.dir, "rsa")
    ed, ed_txt = gen_key(g.dir, "ed25519")
    inject(g, "dkim", "acc", "example.com", "r1", "rsa", rsa)
    inject(g, "dkim", "acc", "example.com", "e1", "ed25519", ed)
    g.rsa_pem, g.ed_pem = rsa, ed
    return {"r1._domainkey.example.com": rsa_txt, "e1._domainkey.example.com": ed_txt}


BOTH = [("example.com", "e1", "ed25519-sha256", True),
        ("example.com", "r1", "rsa-sha256", True)]


def send_signed(g, mx, records, rcpt):
    """One message to rcpt; its signatures as dkim_results gives them."""
    put_msg(g, "acc", [rcpt], frm="news@example.com")
    m, = mx.wait_received(1, rcpt=rcpt, timeout=30)
    return sorted(dkim_results(m["data"], records))


def ed25519_secret(pem_path):
    """The Ed25519 private key's 32 raw bytes (what signs)."""
    from cryptography.hazmat.primitives import serialization
    with open(pem_path, "rb") as f:
        k = serialization.load_pem_private_key(f.read(), None)
    return {"ed25519 seed": k.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())}


# ---------------------------------------------------------------- signing

def test_signatures_from_the_key_process_verify(mx):
    with relay_gw(mx) as g:
        records = signed_gw(mx, g)
        one_key_proc(g)
        for i in range(3):
            assert send_signed(g, mx, records, "r%d@dest.test" % i) == BOTH
        assert "bad request" not in g.log("deliverd")


@needs_root
def test_no_dkim_private_key_in_worker_memory(mx):
    """As a taken-over worker would: after several signed messages, read
    each worker's own writable memory and look for the RSA key's p, q, d
    and the Ed25519 seed. The key process holds them (the search can find
    them there); the workers and the master do not."""
    with relay_gw(mx) as g:
        records = signed_gw(mx, g)
        for i in range(4):
            assert send_signed(g, mx, records, "m%d@dest.test" % i) == BOTH
        secret = dict(secrets(g.rsa_pem), **ed25519_secret(g.ed_pem))
        for w in workers(g):
            assert found_in(w, secret) == [], "worker %d holds the key" % w
        assert found_in(g.pid("deliverd"), secret) == []
        held = found_in(one_key_proc(g), secret)
        assert "p big-endian" in held or "p little-endian" in held, held
        assert "ed25519 seed" in held, held


def tracked_gw(mx, **extra):
    """smtpd, spoold and deliverd relaying to mx, account "acc" tracked
    (opens, clicks, unsubscribe); no DKIM key unless the test adds one."""
    g = smtpgate.relaying_gateway(mx.port, retry_schedule="1s", **extra)
    g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
               "--track-host", HOST)
    return g


def track_key(g):
    with open(os.path.join(g.spool, "db", "track.key"), "rb") as f:
        return f.read()


def tokens_of(data):
    """The copy's (kind, token) pairs: pixel, links, List-Unsubscribe."""
    import email
    import email.policy
    import re
    msg = email.message_from_bytes(data, policy=email.policy.default)
    html = msg.get_body(preferencelist=("html",)).get_content()
    h = re.escape(HOST)
    out = [("o", t) for t in re.findall(r'src="https://%s/o/([A-Za-z0-9_-]+)"' % h, html)]
    out += [("c", t) for t in re.findall(r'href="https://%s/c/([A-Za-z0-9_-]+)"' % h, html)]
    out += [("u", t) for t in re.findall(r"<https://%s/u/([A-Za-z0-9_-]+)>" % h,
                                         msg["List-Unsubscribe"] or "")]
    return out


def send_tracked(g, mx, rcpt):
    """A tracked HTML message to rcpt; its QID and the copy that arrived,
    whose tokens all verify under db/track.key and name it."""
    smtpgate.smtp_send(g, [rcpt], envfrom="bounce@example.com",
                       msg=mime_message("quoted-printable", rcpt))
    m, = mx.wait_received(1, rcpt=rcpt, timeout=30)
    qid = g.wait_events(lambda e: e["event"] == "delivered" and e["to"] == rcpt)[0]["queue_id"]
    toks = tokens_of(m["data"])
    assert sorted(k for k, _ in toks) == sorted(["o", "u"] + ["c"] * len(LINKS)), toks
    key = track_key(g)
    links = sorted(parse_token(key, t)[3] for k, t in toks if k == "c")
    assert links == list(range(len(LINKS)))
    for k, t in toks:
        got = parse_token(key, t)
        assert got is not None and got[0] == k and got[1] == qid and got[2] == 0, (k, got)
    return qid, m


@needs_root
def test_no_track_key_in_worker_memory(mx):
    """As a taken-over worker would: after tracked copies went out (their
    tokens verify under db/track.key), read each worker's own writable
    memory and look for the tracking key's 32 bytes. The key process
    holds them (the search can find them there); the workers and the
    master do not."""
    with tracked_gw(mx) as g:
        for i in range(3):
            send_tracked(g, mx, "t%d@dest.test" % i)
        secret = {"track.key": track_key(g)}
        for w in workers(g):
            assert found_in(w, secret) == [], "worker %d holds track.key" % w
        assert found_in(g.pid("deliverd"), secret) == []
        assert found_in(one_key_proc(g), secret) == ["track.key"]


# ---------------------------------------------------------------- faults

def test_killed_key_process_restarted_workers_replaced(mx):
    with relay_gw(mx) as g:
        records = signed_gw(mx, g)
        assert send_signed(g, mx, records, "before@dest.test") == BOTH
        old, old_workers = one_key_proc(g), workers(g)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: key_procs(g) and key_procs(g)[0] != old, 15,
                 what="a new deliverd-key")
        wait_for(lambda: set(deliverd_children(g)[0]).isdisjoint(old_workers)
                 and len(deliverd_children(g)[0]) == 2, 20,
                 what="the workers replaced")
        assert send_signed(g, mx, records, "after@dest.test") == BOTH
        assert "key process exited: restarting" in g.log("deliverd")
        for m in mx.received():
            assert b"DKIM-Signature" in m["data"], "sent unsigned"


def test_stopped_key_process_defers_not_unsigned(mx):
    """A hung key process: the message waits at most
    DELIVERD_KEY_TIMEOUT_MS, is deferred with 451 4.3.0, never sent
    unsigned, and goes out signed once the key process answers again."""
    with relay_gw(mx) as g:
        records = signed_gw(mx, g)
        kp = one_key_proc(g)
        os.kill(kp, signal.SIGSTOP)
        try:
            qid, = put_msg(g, "acc", ["hung@dest.test"], frm="news@example.com")
            ev = g.wait_events(lambda e: e["queue_id"] == qid and
                               e["event"] == "deferred", timeout=30)[0]
            assert ev["msg"].startswith("451 4.3.0"), ev
            assert mx.received("hung@dest.test") == []
        finally:
            os.kill(kp, signal.SIGCONT)
        m, = mx.wait_received(1, rcpt="hung@dest.test", timeout=60)
        assert sorted(dkim_results(m["data"], records)) == BOTH
        assert "no answer from the key process" in g.log("deliverd")


def test_stopped_key_process_defers_tracked_copy(mx):
    """No DKIM key here: only the tracking tokens need the key process. A
    hung key process defers the tracked copy (451 4.3.0, bounded), it is
    not sent untracked or with a token missing, and goes out tracked with
    tokens that verify once the key process answers again."""
    with tracked_gw(mx) as g:
        send_tracked(g, mx, "first@dest.test")
        kp = one_key_proc(g)
        os.kill(kp, signal.SIGSTOP)
        try:
            smtpgate.smtp_send(g, ["hung@dest.test"], envfrom="bounce@example.com",
                               msg=mime_message("quoted-printable", "hung@dest.test"))
            ev = g.wait_events(lambda e: e["event"] == "deferred" and
                               e["to"] == "hung@dest.test", timeout=30)[0]
            qid = ev["queue_id"]
            assert ev["msg"].startswith("451 4.3.0"), ev
            assert "tracking tokens" in ev["msg"], ev
            assert mx.received("hung@dest.test") == []
        finally:
            os.kill(kp, signal.SIGCONT)
        m, = mx.wait_received(1, rcpt="hung@dest.test", timeout=60)
        key = track_key(g)
        toks = tokens_of(m["data"])
        assert len(toks) == 2 + len(LINKS)
        assert all(parse_token(key, t)[:3] == (k, qid, 0) for k, t in toks)
        assert "no answer from the key process within 5000 ms: no tracking tokens" \
            in g.log("deliverd")


def test_reload_replaces_workers_keeps_key_process(mx):
    """SIGHUP replaces the workers; the new ones attach to the same key
    process (it reads keys on demand, so it needs no reload) and sign."""
    with relay_gw(mx) as g:
        records = signed_gw(mx, g)
        assert send_signed(g, mx, records, "hup1@dest.test") == BOTH
        kp, old_workers = one_key_proc(g), workers(g)
        os.kill(g.pid("deliverd"), signal.SIGHUP)
        wait_for(lambda: set(deliverd_children(g)[0]).isdisjoint(old_workers)
                 and len(deliverd_children(g)[0]) == 2, 20,
                 what="the workers replaced")
        assert key_procs(g) == [kp]
        assert send_signed(g, mx, records, "hup2@dest.test") == BOTH


# ---------------------------------------------------------------- new keys

def spoolctl_key(g, sel, alg="rsa"):
    """spoolctl dkim add with a fresh key; its TXT record name and value."""
    pem, txt = gen_key(g.dir, alg)
    g.spoolctl("dkim", "add", "acc", "new.example", "--selector", sel, "--key", pem)
    return "%s._domainkey.new.example" % sel, txt


def test_key_added_with_spoolctl_while_running_is_used(mx):
    """New keys need no SIGHUP: the key process reads a key by the name a
    worker asks for, and again when its file changed (the same selector
    added again with another key)."""
    with relay_gw(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        one_key_proc(g)
        name, txt = spoolctl_key(g, "s1")
        put_msg(g, "acc", ["one@dest.test"], frm="x@new.example")
        m, = mx.wait_received(1, rcpt="one@dest.test", timeout=30)
        assert dkim_results(m["data"], {name: txt}) == [("new.example", "s1", "rsa-sha256", True)]
        g.spoolctl("dkim", "del", "acc", "new.example", "--selector", "s1")
        name, txt2 = spoolctl_key(g, "s1")
        assert txt2 != txt
        put_msg(g, "acc", ["two@dest.test"], frm="x@new.example")
        m, = mx.wait_received(1, rcpt="two@dest.test", timeout=30)
        assert dkim_results(m["data"], {name: txt2}) == [("new.example", "s1", "rsa-sha256", True)]


# ---------------------------------------------------------------- a taken-over worker

def key_request(kind, name, digest=b"", qid=0x51ED):
    """dkey_proto.h: version 1, type, length, id, payload."""
    n = name.encode()
    payload = n if kind == 1 else bytes([len(n)]) + n + digest
    return bytes([1, kind]) + len(payload).to_bytes(2, "big") + qid.to_bytes(4, "big") + payload


@needs_root
def test_stolen_worker_socket(mx):
    """On a worker's socket to the key process: a public key comes back; a
    key that does not exist, or a signature of the wrong algorithm, is
    answered "no" (logged) and the socket stays; a file outside keys/ is
    refused as malformed and closes that socket, with a log line."""
    from test_priv_boundaries import ask_stolen
    with relay_gw(mx) as g:
        signed_gw(mx, g)
        kp = one_key_proc(g)
        w = workers(g)[0]
        names = sorted(os.listdir(os.path.join(g.spool, "keys")))
        keyfile = [f for f in names if "r1" in f][0]
        edfile = [f for f in names if "e1" in f][0]
        fd = smtpgate.seqpacket_to(w, kp)
        assert fd is not None, "no socket to deliverd-key in worker %d" % w
        rep = ask_stolen(w, fd, lambda s: s.send(key_request(1, keyfile)), 4096)
        assert rep[1] == 0x81 and len(rep) > 40, rep
        rep = ask_stolen(w, fd, lambda s: s.send(key_request(2, "nosuch.pem", b"x" * 32)), 4096)
        assert rep[1] == 0x82, rep
        rep = ask_stolen(w, fd, lambda s: s.send(key_request(2, edfile, b"x" * 32)), 4096)
        assert rep[1] == 0x82, rep
        rep = ask_stolen(w, fd, lambda s: s.send(key_request(3, edfile, b"x" * 32)), 4096)
        assert rep[1] == 0x81 and len(rep) == 8 + 64, rep
        log = g.log("deliverd")
        assert "RSA signature for keys/nosuch.pem refused: no such key file" in log
        assert "refused: not an RSA key" in log
        rep = ask_stolen(w, fd, lambda s: s.send(key_request(2, "../db/track.key", b"x" * 32)),
                         4096)
        assert rep == b"", "a path outside keys/ must close the socket"
        wait_for(lambda: "bad request from a worker" in g.log("deliverd"), 10,
                 what="the log line")


def tokens_request(qid, idx, what, links, rid=0x70C):
    """dkey_proto.h DKEY_Q_TOKENS: QID, recipient index, what, links."""
    payload = qid.encode() + idx.to_bytes(4, "big") + bytes([what]) + links.to_bytes(2, "big")
    return bytes([1, 4]) + len(payload).to_bytes(2, "big") + rid.to_bytes(4, "big") + payload


@needs_root
def test_stolen_worker_socket_tokens(mx):
    """On a worker's socket to the key process, tokens come only as the
    protocol has them: one batch for one QID and recipient, at most 500
    links, each token what trackd verifies under db/track.key. A
    malformed request (501 links, a QID that is not one) closes that
    socket, with a log line; the key process goes on."""
    from test_priv_boundaries import ask_stolen
    with tracked_gw(mx) as g:
        send_tracked(g, mx, "before@dest.test")
        key, kp, ws = track_key(g), one_key_proc(g), workers(g)
        qid = "0123456789ABCDEF0123"
        fds = [smtpgate.seqpacket_to(w, kp) for w in ws]
        assert None not in fds, "no socket to deliverd-key in a worker"

        rep = ask_stolen(ws[0], fds[0], lambda s: s.send(tokens_request(qid, 7, 3, 2)), 65536)
        assert rep[1] == 0x81 and len(rep) == 8 + 4 * 39, rep
        toks = [rep[8 + 39 * i:8 + 39 * (i + 1)].decode() for i in range(4)]
        assert [parse_token(key, t) for t in toks] == [
            ("o", qid, 7, 0), ("u", qid, 7, 0), ("c", qid, 7, 0), ("c", qid, 7, 1)]
        rep = ask_stolen(ws[0], fds[0], lambda s: s.send(tokens_request(qid, 1, 0, 500)), 65536)
        assert rep[1] == 0x81 and len(rep) == 8 + 500 * 39, len(rep)
        assert parse_token(key, rep[-39:].decode()) == ("c", qid, 1, 499)

        # one malformed request per worker's socket (t_dkey_proto has the rest)
        bad = [tokens_request(qid, 0, 0, 501),             # over the bound
               tokens_request(qid.lower(), 0, 1, 0)]        # not a QID
        for w, fd, req in zip(ws, fds, bad):
            rep = ask_stolen(w, fd, lambda s: s.send(req), 65536)
            assert rep == b"", "a malformed request must close the socket: %r" % req
        wait_for(lambda: g.log("deliverd").count("bad request from a worker") == 2, 10,
                 what="the log lines")
        # the key process goes on: tracked mail still goes out
        send_tracked(g, mx, "after@dest.test")


# ---------------------------------------------------------------- Landlock

def call_in(pid, path):
    """open(path, O_RDONLY) made by process pid itself (gdb, as root: the
    worker's own credentials and Landlock domain); (fd or -1, errno)."""
    r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                        "-ex", 'print (int)open("%s", 0)' % path,
                        "-ex", "print (int)*(int*)__errno_location()"],
                       capture_output=True, text=True, timeout=60)
    vals = [l.split("=", 1)[1].strip() for l in r.stdout.splitlines() if l.startswith("$")]
    assert len(vals) == 2, r.stdout + r.stderr
    return int(vals[0]), int(vals[1])


def make_track_key(g):
    """db/track.key as spoold makes it (32 random bytes, 0600, spoold's
    user): the workers' owner, so only Landlock can keep them out."""
    import grp
    import pwd
    path = os.path.join(g.spool, "db", "track.key")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        os.chown(path, pwd.getpwnam("smtpgate").pw_uid, grp.getgrnam("smtpgate").gr_gid)
    return path


def landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, 0, 1)


@needs_root
@pytest.mark.skipif(not os.path.exists("/usr/bin/gdb"), reason="needs gdb")
def test_worker_cannot_open_keys(mx):
    """A worker, taken over, opens files as itself: keys/ (its own user's
    directory) and the database's key files (db/track.key too: the key
    process makes the tracking tokens) are refused (EACCES), the queue
    files it needs are not."""
    if landlock_abi() < 1:
        pytest.skip("no Landlock in this kernel")
    with relay_gw(mx) as g:
        trackkey = make_track_key(g)  # there before the workers start
        records = signed_gw(mx, g)
        assert send_signed(g, mx, records, "ll@dest.test") == BOTH
        keys = os.path.join(g.spool, "keys")
        keyfile = os.path.join(keys, sorted(os.listdir(keys))[0])
        envkey = os.path.join(g.spool, "db", "envelope.key")
        smtpgate.envelope_key(g)
        for w in workers(g):
            assert call_in(w, keyfile)[0] == -1, "worker %d opened %s" % (w, keyfile)
            assert call_in(w, keyfile)[1] == 13
            assert call_in(w, keys)[0] == -1
            assert call_in(w, envkey)[0] == -1
            assert call_in(w, trackkey) == (-1, 13), "worker %d opened track.key" % w
            fd, _ = call_in(w, os.path.join(g.spool, "queue"))
            assert fd >= 0, "the queue must stay readable"
        # and the key process still can (it signs after this)
        assert send_signed(g, mx, records, "ll2@dest.test") == BOTH
