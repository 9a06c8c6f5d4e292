"""Signed callbacks (issue 18 item 1): with account secrets, every callback
POST carries X-Smtpgate-Signature: t=UNIXTIME,v1=HEX[,v1=HEX], HEX being
HMAC-SHA256(secret, "UNIXTIME." + body). The receiver here checks it with
Python's hmac module over the bytes it received (an implementation of its
own, not smtpgate's), for one secret and for two (rotation), in both
callback formats; a tampered body or another secret fails; t is the time
of each POST (a retry gets a new one); no secret, no header. The README's
verification snippets (Python and shell) are extracted from README.md and
run against a received callback, so the documentation stays true.
Every wait bounded.
"""
import hashlib
import hmac
import os
import re
import subprocess
import time

import peers
import smtpgate
from smtpgate import Gateway, put_msg, wait_for

HEADER = "X-Smtpgate-Signature"
NEW = "whsec_" + "4f3c2b1a" * 4            # 38 bytes
OLD = "old-secret-0123456789ABCDEF"          # 27 bytes
SIG_RE = re.compile(r"^t=(\d+)((?:,v1=[0-9a-f]{64})+)$")


def sign_gw(mx):
    return Gateway(tls=False, extra={"relayhost": "127.0.0.1:%d" % mx.port,
                                     "callback_retry_min": "1s",
                                     "callback_retry_max": "2s"})


def add_account(g, cb, *extra):
    g.spoolctl("account", "add", "acc", "--no-password", "--callback-url", cb.url,
               *extra)


def secret_file(g, name, secret):
    path = os.path.join(g.dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return path


def parse(value):
    """(t, [v1, ...]) of a header value, asserting its exact shape."""
    m = SIG_RE.match(value or "")
    assert m, "malformed %s: %r" % (HEADER, value)
    return int(m.group(1)), m.group(2)[len(",v1="):].split(",v1=")


def mac(secret, t, body):
    return hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()


def verifies(secret, value, body):
    t, sigs = parse(value)
    want = mac(secret, t, body)
    return any(hmac.compare_digest(want, s) for s in sigs)


def tampered(body):
    """The body with one byte of an event changed (the recipient's name)."""
    i = body.index(b"@dest.test") - 1
    return body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]


def deliver_one(g, cb, rcpt="r1@dest.test"):
    """Files one message for acc and waits for the POST carrying its event."""
    put_msg(g, "acc", [rcpt])
    return wait_for(lambda: next((r for r in list(cb.requests)
                                  if rcpt.encode() in r[1]), None),
                    30, what="the callback for %s" % rcpt)


def test_one_secret_verifies_and_tampering_fails():
    """One secret from --callback-secret-file: the POST's header has t and
    one v1 that verifies with hmac over the received body; the body with
    one byte changed, or another secret, does not verify; t is within a
    few seconds of the POST's arrival. account show gives a count and a
    fingerprint, never the secret."""
    with peers.Mx() as mx, peers.Callbacks() as cb, sign_gw(mx) as g:
        add_account(g, cb)
        r = g.spoolctl("account", "set", "acc", "--callback-secret-file",
                       secret_file(g, "new.secret", NEW))
        assert NEW not in r.stdout + r.stderr
        g.start("deliverd")
        headers, body, arrival = deliver_one(g, cb)
        value = headers.get(HEADER)
        t, sigs = parse(value)
        assert len(sigs) == 1, value
        assert verifies(NEW, value, body), (value, body)
        assert not verifies(NEW, value, tampered(body)), "a tampered body verified"
        assert not verifies(OLD, value, body), "another secret verified"
        assert abs(arrival - t) <= 5, (t, arrival)
        assert b'"events":[' in body
        fpr = hashlib.sha256(NEW.encode()).hexdigest()[:8]
        show = g.spoolctl("account", "show", "acc").stdout
        assert "callback secrets 1 (%s)" % fpr in show and NEW not in show, show
        j = g.spoolctl_json("account", "show", "acc")
        assert j["callback_secrets"] == 1 and j["callback_secret_fingerprints"] == [fpr]
        assert NEW not in str(j)
        assert NEW not in g.log("deliverd")


def test_two_secrets_stream_format():
    """Rotation: --callback-secret NEW --callback-secret OLD on a stream
    account; the header carries two v1 values, the first verifies with NEW
    and the second with OLD over the exact stream body; tampering breaks
    both. A later set without secret options keeps them."""
    with peers.Mx() as mx, peers.Callbacks() as cb, sign_gw(mx) as g:
        add_account(g, cb, "--callback-format", "stream")
        g.spoolctl("account", "set", "acc", "--callback-secret", NEW,
                   "--callback-secret", OLD)
        g.spoolctl("account", "set", "acc", "--senders", "any")
        assert g.spoolctl_json("account", "show", "acc")["callback_secrets"] == 2
        g.start("deliverd")
        headers, body, arrival = deliver_one(g, cb)
        assert not body.startswith(b'{"events"'), body
        t, sigs = parse(headers.get(HEADER))
        assert len(sigs) == 2, headers.get(HEADER)
        assert hmac.compare_digest(sigs[0], mac(NEW, t, body))
        assert hmac.compare_digest(sigs[1], mac(OLD, t, body))
        bad = tampered(body)
        assert sigs[0] != mac(NEW, t, bad) and sigs[1] != mac(OLD, t, bad)
        assert abs(arrival - t) <= 5, (t, arrival)


def test_no_secret_no_header():
    """Without a secret a POST has no signature header; with one it has;
    after --callback-secret none it has none again."""
    with peers.Mx() as mx, peers.Callbacks() as cb, sign_gw(mx) as g:
        add_account(g, cb)
        g.start("deliverd")
        headers, _, _ = deliver_one(g, cb, "plain1@dest.test")
        assert headers.get(HEADER) is None, headers
        g.spoolctl("account", "set", "acc", "--callback-secret", NEW)
        headers, body, _ = deliver_one(g, cb, "signed@dest.test")
        assert verifies(NEW, headers.get(HEADER), body)
        r = g.spoolctl("account", "set", "acc", "--callback-secret", "none")
        assert "callback secrets none" in r.stdout, r.stdout
        headers, _, _ = deliver_one(g, cb, "plain2@dest.test")
        assert headers.get(HEADER) is None, headers


def test_retry_is_signed_with_a_new_t():
    """The receiver answers 503 to the first POSTs: every attempt of the
    same body is signed, each with the time of its own POST (t grows with
    the back-off), and each verifies."""
    cb = peers.Callbacks()
    cb.down = True
    with cb, peers.Mx() as mx, sign_gw(mx) as g:
        add_account(g, cb)
        g.spoolctl("account", "set", "acc", "--callback-secret", NEW)
        g.start("deliverd")
        put_msg(g, "acc", ["retry@dest.test"])
        wait_for(lambda: cb.failed_posts >= 3, 30, what="three failed POSTs")
        cb.down = False
        wait_for(lambda: cb.events, 30, what="the POST that is accepted")
        with cb.lock:
            reqs = list(cb.requests)
        assert len({body for _, body, _ in reqs}) == 1, "the retries changed the body"
        ts = [parse(h.get(HEADER))[0] for h, _, _ in reqs]
        assert ts == sorted(ts) and ts[-1] > ts[0], ts
        for (h, body, arrival), t in zip(reqs, ts):
            assert verifies(NEW, h.get(HEADER), body)
            assert abs(arrival - t) <= 5, (t, arrival)


def readme_block(lang, holding):
    """The ```lang block of README.md's "Verifying callbacks" that holds
    the text `holding`."""
    with open(os.path.join(smtpgate.SRCDIR, "README.md")) as f:
        text = f.read()
    section = re.split(r"\n##+ ", text.split("\n### Verifying callbacks\n", 1)[1])[0]
    blocks = [b for b in re.findall(r"```%s\n(.*?)```" % lang, section, re.S)
              if holding in b]
    assert len(blocks) == 1, "README.md: no single %s block with %r" % (lang, holding)
    return blocks[0]


def test_readme_snippets_verify_a_callback():
    """README's Python verify() accepts a received callback, refuses it
    tampered, with another secret, or signed with a t older than its
    tolerance; README's shell snippet (openssl dgst -hmac) prints valid
    for the received body and fails on a tampered one."""
    code = readme_block("python", "def verify(")
    shell = readme_block("sh", "openssl dgst -sha256 -hmac")
    assert "hmac.compare_digest" in code
    ns = {}
    exec(compile(code, "README.md (Verifying callbacks)", "exec"), ns)
    verify = ns["verify"]
    with peers.Mx() as mx, peers.Callbacks() as cb, sign_gw(mx) as g:
        add_account(g, cb)
        g.spoolctl("account", "set", "acc", "--callback-secret", NEW,
                   "--callback-secret", OLD)
        g.start("deliverd")
        headers, body, _ = deliver_one(g, cb)
        value = headers.get(HEADER)
        assert verify(NEW.encode(), value, body) is True
        assert verify(OLD.encode(), value, body) is True
        assert verify(NEW.encode(), value, tampered(body)) is False
        assert verify(b"another-secret-0123456789", value, body) is False
        old_t = int(time.time()) - 3600
        stale = "t=%d,v1=%s" % (old_t, mac(NEW, old_t, body))
        assert verify(NEW.encode(), stale, body) is False
        assert verify(NEW.encode(), stale, body, tolerance=7200) is True

        def run_sh(b, secret=NEW):
            with open(os.path.join(g.dir, "body.json"), "wb") as f:
                f.write(b)
            return subprocess.run(["/bin/sh", "-c", shell], cwd=g.dir, timeout=30,
                                  capture_output=True, text=True,
                                  env=dict(os.environ, SIG=value, SECRET=secret))
        r = run_sh(body)
        assert r.returncode == 0 and r.stdout.strip() == "valid", r
        r = run_sh(body, OLD)
        assert r.returncode == 0 and r.stdout.strip() == "valid", r
        r = run_sh(tampered(body))
        assert r.returncode != 0 and "INVALID" in r.stdout, r


def test_secret_options_are_checked():
    """A short secret, a secret with a space, three secrets, none with a
    secret, the same secret twice and a two-line file are refused with a
    clear line and exit 2, leaving the account unchanged; the secret is not
    echoed."""
    with peers.Callbacks() as cb, Gateway(tls=False) as g:
        add_account(g, cb)
        g.spoolctl("account", "set", "acc", "--callback-secret", NEW)
        two_lines = secret_file(g, "two.secret", NEW + "\n" + OLD)
        cases = [
            (["--callback-secret", "tooshort-123456"], "shorter than 16 bytes"),
            (["--callback-secret", "has a space 0123456789"], "not printable ASCII"),
            (["--callback-secret", NEW, "--callback-secret", OLD,
              "--callback-secret", OLD + "x"], "at most 2 callback secrets"),
            (["--callback-secret", "none", "--callback-secret", OLD], "give it alone"),
            (["--callback-secret", OLD, "--callback-secret", OLD], "given twice"),
            (["--callback-secret-file", two_lines], "one secret on one line"),
            (["--callback-secret-file", os.path.join(g.dir, "missing")], "check the path"),
        ]
        for args, why in cases:
            r = g.spoolctl("account", "set", "acc", *args, check=False)
            assert r.returncode == 2 and why in r.stderr, (args, r)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert OLD not in r.stderr and NEW not in r.stderr, r.stderr
        j = g.spoolctl_json("account", "show", "acc")
        assert j["callback_secret_fingerprints"] == [
            hashlib.sha256(NEW.encode()).hexdigest()[:8]], j
