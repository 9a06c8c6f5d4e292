"""Feedback-ID for Gmail's Feedback Loop (feedback_id_sender).

deliverd adds "Feedback-ID: ISSUE-ID:LOGIN:SENDER" before it signs, to a
message that has none of its own, when feedback_id_sender is set; the field
must be covered by the DKIM signature (h=) and the signature must verify
(dkimpy, TXT records generated here). Messages are filed with
tests/tools/deliverd-inject (only deliverd runs) except where smtpd and
spoold must decide the issue.
"""
import re
import subprocess

import pytest

import peers
import smtpgate
from smtpgate import inject, put_msg
from test_deliverd import dkim_results, gen_key

SENDER = "gw-sender.1"


@pytest.fixture
def mx(tmp_path):
    m = peers.Mx(tls_dir=str(tmp_path)).start()
    yield m
    m.stop()


def relay_gw(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1s"}
    conf.update({k: str(v) for k, v in extra.items()})
    return smtpgate.Gateway(tls=False, extra=conf)


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0]


def fields(data, name):
    """Every value of header field name (unfolded, case-insensitive)."""
    heads = re.sub(rb"\r\n[ \t]", b" ", header_block(data))
    out = []
    for line in heads.split(b"\r\n"):
        k, sep, v = line.partition(b":")
        if sep and k.strip().lower() == name.lower().encode():
            out.append(v.strip().decode())
    return out


def signed_headers(data):
    """h= of every DKIM-Signature, lower-cased names."""
    out = []
    for v in fields(data, "DKIM-Signature"):
        tags = dict(t.strip().split("=", 1) for t in
                    re.sub(r"\s+", "", v).split(";") if "=" in t)
        out.append([h.lower() for h in tags["h"].split(":")])
    return out


def keyed_account(g, login):
    rsa, rsa_txt = gen_key(g.dir, "rsa")
    inject(g, "account", login)
    inject(g, "dkim", login, "example.com", "r1", "rsa", rsa)
    return {"r1._domainkey.example.com": rsa_txt}


def delivered_issue(g, to):
    ev = g.wait_events(lambda e: e["event"] == "delivered" and e["to"] == to)[0]
    return ev["issue"]["id"]


def test_field_added_signed_and_verifies(mx):
    with relay_gw(mx, feedback_id_sender=SENDER) as g:
        g.start("deliverd")
        records = keyed_account(g, "acc")
        put_msg(g, "acc", ["a@dest.test"])
        m, = mx.wait_received(1)
        issue = delivered_issue(g, "a@dest.test")
        assert fields(m["data"], "Feedback-ID") == ["%d:acc:%s" % (issue, SENDER)]
        assert signed_headers(m["data"]) == [signed_headers(m["data"])[0]]
        assert "feedback-id" in signed_headers(m["data"])[0]
        assert dkim_results(m["data"], records) == [
            ("example.com", "r1", "rsa-sha256", True)]
        # below the signature, above the message (From stays where it was)
        heads = header_block(m["data"]).split(b"\r\n")
        names = [h.split(b":")[0].lower() for h in heads if h[:1] not in (b" ", b"\t")]
        assert names.index(b"dkim-signature") < names.index(b"feedback-id") \
            < names.index(b"from"), names


def test_retry_sends_the_stored_field(mx):
    """The field goes with the stored signature: the second attempt sends
    the same field, still verifying, though the key changed meanwhile."""
    mx.rules["slow@dest.test"] = ["451 4.7.1 greylisted", "250 2.1.5 Ok"]
    with relay_gw(mx, feedback_id_sender=SENDER) as g:
        g.start("deliverd")
        records = keyed_account(g, "acc")
        put_msg(g, "acc", ["slow@dest.test"])
        g.wait_events(lambda e: e["event"] == "delivered", timeout=30)
        m, = mx.received("slow@dest.test")
        issue = delivered_issue(g, "slow@dest.test")
        assert fields(m["data"], "Feedback-ID") == ["%d:acc:%s" % (issue, SENDER)]
        assert dkim_results(m["data"], records)[0][3] is True


def test_off_by_default(mx):
    with relay_gw(mx) as g:
        g.start("deliverd")
        records = keyed_account(g, "acc")
        put_msg(g, "acc", ["a@dest.test"])
        m, = mx.wait_received(1)
        assert fields(m["data"], "Feedback-ID") == []
        assert "feedback-id" not in signed_headers(m["data"])[0]
        assert dkim_results(m["data"], records)[0][3] is True


def test_own_field_kept_unchanged(mx):
    own = "spring:cust-7:promo:app-sender"
    with relay_gw(mx, feedback_id_sender=SENDER) as g:
        g.start("deliverd")
        records = keyed_account(g, "acc")
        msg = smtpgate.message(to="a@dest.test", headers={"feedback-id": own})
        put_msg(g, "acc", ["a@dest.test"], msg=msg)
        m, = mx.wait_received(1)
        assert fields(m["data"], "Feedback-ID") == [own]
        assert b"feedback-id: " + own.encode() + b"\r\n" in m["data"]
        assert dkim_results(m["data"], records)[0][3] is True


def test_unsigned_message_gets_the_field(mx):
    """No DKIM key: the field is still added (Postmaster Tools then ignores
    it), and spoolctl show does not call the message signed."""
    with relay_gw(mx, feedback_id_sender=SENDER) as g:
        g.start("deliverd")
        inject(g, "account", "nokeys")
        qid, = put_msg(g, "nokeys", ["a@dest.test"], frm="x@unsigned.example")
        m, = mx.wait_received(1)
        issue = delivered_issue(g, "a@dest.test")
        assert b"DKIM-Signature" not in m["data"]
        assert fields(m["data"], "Feedback-ID") == ["%d:nokeys:%s" % (issue, SENDER)]


def test_spoolctl_show_tells_signature_and_field_apart(mx):
    """A deferred message keeps the prepended lines: spoolctl show names the
    field apart from the signature, and calls an unsigned message unsigned."""
    mx.rules["k@dest.test"] = ["451 4.7.1 later"]
    mx.rules["u@dest.test"] = ["451 4.7.1 later"]
    with relay_gw(mx, feedback_id_sender=SENDER, retry_schedule="1h") as g:
        g.start("deliverd")
        keyed_account(g, "acc")
        inject(g, "account", "nokeys")
        k, = put_msg(g, "acc", ["k@dest.test"])
        u, = put_msg(g, "nokeys", ["u@dest.test"], frm="x@unsigned.example")
        for to in ("k@dest.test", "u@dest.test"):
            g.wait_events(lambda e, to=to: e["to"] == to and e["event"] == "deferred")
        sk, su = g.spoolctl_json("show", k), g.spoolctl_json("show", u)
        want = "%d:acc:%s" % (sk["issue"]["id"], SENDER)
        assert sk["dkim_signed"] is True and sk["feedback_id"] == want
        assert sk["dkim_signature"].startswith("DKIM-Signature: ")
        assert "\nFeedback-ID: " not in sk["dkim_signature"]
        assert su["dkim_signed"] is False and su["dkim_signature"] is None
        assert su["feedback_id"] == "%d:nokeys:%s" % (su["issue"]["id"], SENDER)
        text = g.spoolctl("show", u).stdout
        assert "dkim: not signed (no key)" in text
        assert "feedback-id: " + su["feedback_id"] in text
        body = g.spoolctl("show", k, "--body").stdout
        assert "\nFeedback-ID: %s\n" % want in body


def test_hostile_login_sanitised(mx):
    """A login with colons, spaces, a tab and 200 bytes (deliverd-inject
    takes what spoolctl refuses; envelopes cannot carry CR/LF: those are
    in tests/unit/t_deliverd_fbid) cannot add a header or a field: every
    byte outside [A-Za-z0-9._-] is '_', 64 bytes at most."""
    login = "ev:il (x);y\tX-Injected: 1 " + "L" * 200
    with relay_gw(mx, feedback_id_sender=SENDER) as g:
        g.start("deliverd")
        records = keyed_account(g, login)
        put_msg(g, login, ["a@dest.test"])
        m, = mx.wait_received(1)
        issue = delivered_issue(g, "a@dest.test")
        want = "ev_il__x__y_X-Injected__1_" + "L" * 38
        assert fields(m["data"], "Feedback-ID") == ["%d:%s:%s" % (issue, want, SENDER)]
        assert fields(m["data"], "X-Injected") == []
        assert dkim_results(m["data"], records)[0][3] is True


def test_issue_id_not_campaign_name_through_smtpd(mx):
    """Through smtpd and spoold: the first field is the issue's number, the
    same for two messages of one X-Campaign-Id, another for another; a
    campaign name with a colon is refused at filing and never sent."""
    g = smtpgate.relaying_gateway(mx.port, feedback_id_sender=SENDER)
    try:
        smtpgate.smtp_send(g, ["a@dest.test"], headers={"X-Campaign-Id": "spring-sale"})
        smtpgate.smtp_send(g, ["b@dest.test"], headers={"X-Campaign-Id": "spring-sale"})
        smtpgate.smtp_send(g, ["c@dest.test"], headers={"X-Campaign-Id": "other"})
        smtpgate.smtp_send(g, ["d@dest.test"], headers={"X-Campaign-Id": "x:y:z"})
        smtpgate.smtp_send(g, ["e@dest.test"],
                           headers={"X-Campaign-Id": "f\r\nFeedback-ID: 1:2:3"})
        for to in ("a@dest.test", "b@dest.test", "c@dest.test"):
            g.wait_events(lambda e, to=to: e["to"] == to and e["event"] == "delivered")
        d = g.wait_events(lambda e: e["to"] == "d@dest.test")[0]
        assert d["event"] == "bounced" and d["msg"] == "635 6.7.8 bad X-Campaign-Id"
        by = {e["to"]: e["issue"] for e in g.events() if e["event"] == "delivered"}
        assert by["a@dest.test"] == by["b@dest.test"] != by["c@dest.test"]
        for to in ("a@dest.test", "b@dest.test", "c@dest.test"):
            m, = mx.received(to)
            assert fields(m["data"], "Feedback-ID") == [
                "%d:acc:%s" % (by[to]["id"], SENDER)], to
        # a folded campaign line carries its own Feedback-ID: that one is
        # the message's, kept as it is, and no second is added
        e = g.wait_events(lambda e: e["to"] == "e@dest.test")[0]
        assert e["event"] == "delivered", e
        m, = mx.received("e@dest.test")
        assert fields(m["data"], "Feedback-ID") == ["1:2:3"]
        assert mx.received("d@dest.test") == []
    finally:
        g.close()


@pytest.mark.parametrize("value", ["a:b", "two words", "x" * 65, "caf\u00e9"])
def test_bad_sender_refused_at_start(value, tmp_path):
    with smtpgate.Gateway(tls=False, extra={"feedback_id_sender": value}) as g:
        r = subprocess.run([smtpgate.binary("deliverd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "feedback_id_sender" in lines[0] \
            and "want up to 64" in lines[0], r.stderr


def test_tracked_copies_get_the_field_signed(mx):
    """A tracked account's mail is copied and signed per recipient: each
    copy carries the field, covered by its own verifying signature."""
    from test_track_rewrite import mime_message
    g = smtpgate.relaying_gateway(mx.port, feedback_id_sender=SENDER)
    try:
        pem, txt = gen_key(g.dir, "rsa")
        g.spoolctl("dkim", "add", "acc", "example.com", "--selector", "s1", "--key", pem,
                   "--default")
        g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                   "--track-host", "t.example.net")
        rcpts = ["a@dest.example", "b@dest.example"]
        smtpgate.smtp_send(g, rcpts, envfrom="bounce@example.com",
                           msg=mime_message("base64", ", ".join(rcpts)))
        got = mx.wait_received(2)
        issue = g.wait_events(lambda e: e["event"] == "delivered")[0]["issue"]["id"]
        assert sorted(m["to"][0] for m in got) == rcpts, "one copy each"
        for m in got:
            assert fields(m["data"], "Feedback-ID") == ["%d:acc:%s" % (issue, SENDER)]
            signed = signed_headers(m["data"])[0]
            assert "feedback-id" in signed and "list-unsubscribe" in signed, signed
            assert dkim_results(m["data"], {"s1._domainkey.example.com": txt}) == [
                ("example.com", "s1", "rsa-sha256", True)]
    finally:
        g.close()
