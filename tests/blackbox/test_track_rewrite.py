"""Engagement tracking, the rewriting side (issue 16 items 2-4): the real
smtpd, spoold and deliverd on 127.0.0.1 relaying to an aiosmtpd sink.

A tracked account's HTML message (quoted-printable and base64 variants,
multipart/alternative with a text part) arrives once per recipient (one
transaction each) with its links through https://HOST/c/TOKEN, an open
pixel before </body>, the one-click List-Unsubscribe headers, and a DKIM
signature that covers them and verifies with dkimpy. The tokens are
checked here against db/track.key (the layout of spool/spool_track.c).
Malformed MIME goes out unmodified with a log line; an untracked
account's mail is untouched and still one transaction for all.
"""
import base64
import email
import email.policy
import hashlib
import hmac
import os
import re
import struct

import pytest

import peers
import smtpgate
from test_deliverd import dkim_results, gen_key

HOST = "t.example.net"
HTML = ("<html><head><title>Sale</title></head><body>\r\n"
        "<p>Hello &amp; welcome \u20ac <a href=\"https://shop.example.com/item?id=1&amp;src=m\""
        " class=\"btn\">Buy</a></p>\r\n"
        "<p><a href='http://example.com/about'>About</a> "
        "<a href=\"mailto:help@example.com\">Mail</a> <a href=\"tel:+15550100\">Call</a> "
        "<a href=\"#top\">Top</a> <a data-no-track href=\"https://keep.example.com/\">Keep</a>"
        "</p>\r\n</body></html>\r\n")
LINKS = ["https://shop.example.com/item?id=1&src=m", "http://example.com/about"]
TEXT = "Hello, see https://shop.example.com/item?id=1\r\n"


def mime_message(enc, to, boundary="=_alt_1"):
    """multipart/alternative: a text/plain part and a text/html part in enc."""
    html = HTML.encode()
    if enc == "base64":
        b = base64.encodebytes(html).decode().replace("\n", "\r\n")
    else:
        import quopri
        b = quopri.encodestring(html.replace(b"\r\n", b"\n")).decode().replace("\n", "\r\n")
    body = ("--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n%s"
            "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: %s\r\n\r\n%s\r\n--%s--\r\n") % (
        boundary, TEXT, boundary, enc, b.rstrip("\r\n"), boundary)
    return smtpgate.message(frm="news@example.com", to=to, subject="tracked " + enc,
                            body=body, omit=("Content-Type",),
                            headers={"Content-Type": "multipart/alternative; boundary=\"%s\""
                                     % boundary})


def parse_token(key, tok):
    """(kind, qid, idx, link) of a token made under key, else None."""
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    payload, mac = raw[:17], raw[17:]
    want = hmac.new(key, b"smtpgate track v1\n" + payload, hashlib.sha256).digest()[:12]
    if len(raw) != 29 or not hmac.compare_digest(mac, want):
        return None
    idx, link = struct.unpack(">IH", payload[11:17])
    return chr(payload[0]), payload[1:11].hex().upper(), idx, link


@pytest.fixture
def mx(tmp_path):
    m = peers.Mx(tls_dir=str(tmp_path)).start()
    yield m
    m.stop()


@pytest.fixture
def gw(mx):
    g = smtpgate.relaying_gateway(mx.port, retry_schedule="1s")
    try:
        pem, txt = gen_key(g.dir, "rsa")
        g.spoolctl("dkim", "add", "acc", "example.com", "--selector", "s1", "--key", pem,
                   "--default")
        g.dkim_txt = {"s1._domainkey.example.com": txt}
        yield g
    finally:
        g.close()


def track_key(g):
    with open(os.path.join(g.spool, "db", "track.key"), "rb") as f:
        return f.read()


def html_part(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    html = msg.get_body(preferencelist=("html",))
    text = msg.get_body(preferencelist=("plain",))
    return html.get_content(), text.get_content() if text else None


def check_copy(g, m, qid, rcpts, key, sent):
    """One recipient's copy: its tokens name it, the rest is as sent."""
    assert len(m["to"]) == 1, "one transaction per recipient: %r" % m["to"]
    sent_heads, sent_body = sent.split(b"\r\n\r\n", 1)
    assert m["data"].split(b"\r\n\r\n", 1)[0].endswith(sent_heads), "header block kept"
    text_part = sent_body.split(b"--=_alt_1\r\n")[1]
    assert text_part.startswith(b"Content-Type: text/plain") and text_part in m["data"]
    idx = rcpts.index(m["to"][0])
    data = m["data"]
    heads = data.split(b"\r\n\r\n", 1)[0].decode()
    lu = re.search(r"^List-Unsubscribe: <https://%s/u/([A-Za-z0-9_-]+)>\r$" % re.escape(HOST),
                   heads, re.M)
    assert lu, heads
    assert parse_token(key, lu.group(1)) == ("u", qid, idx, 0)
    assert re.search(r"^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$", heads, re.M)
    res = dkim_results(data, g.dkim_txt)
    assert res == [("example.com", "s1", "rsa-sha256", True)], res
    sig = re.search(r"^DKIM-Signature:(.*?)(?=^\S)", heads + "\r\nX:", re.M | re.S).group(1)
    signed = re.search(r"(?:^|;)h=([^;]*)", re.sub(r"\s+", "", sig)).group(1).lower().split(":")
    assert "list-unsubscribe" in signed and "list-unsubscribe-post" in signed, signed
    html, text = html_part(data)
    assert text.rstrip("\r\n") == TEXT.rstrip("\r\n"), "text part kept"
    toks = re.findall(r'href="https://%s/c/([A-Za-z0-9_-]+)"' % re.escape(HOST), html)
    assert [parse_token(key, t) for t in toks] == [("c", qid, idx, 0), ("c", qid, idx, 1)]
    for kept in ('href="mailto:help@example.com"', 'href="tel:+15550100"', 'href="#top"',
                 '<a data-no-track href="https://keep.example.com/">', 'class="btn"',
                 "Hello &amp; welcome \u20ac"):
        assert kept in html, kept
    pix = re.search(r'<img src="https://%s/o/([A-Za-z0-9_-]+)" width="1" height="1" alt="">'
                    r'</body>' % re.escape(HOST), html)
    assert pix and parse_token(key, pix.group(1)) == ("o", qid, idx, 0), html
    # everything else byte for byte: undo the edits and compare
    undone = re.sub(r'<img src="https://[^"]+/o/[^"]+" width="1" height="1" alt="">', "", html)
    it = iter(['"https://shop.example.com/item?id=1&amp;src=m"', "'http://example.com/about'"])
    undone = re.sub(r'"https://%s/c/[A-Za-z0-9_-]+"' % re.escape(HOST), lambda _: next(it),
                    undone)
    # (the part's last CRLF is the boundary's, in the sent message too)
    assert undone.replace("\r\n", "\n").rstrip("\n") == HTML.replace("\r\n", "\n").rstrip("\n")
    return lu.group(1)


@pytest.mark.parametrize("enc", ["quoted-printable", "base64"])
def test_tracked_html_rewritten_per_recipient_and_signed(gw, mx, enc):
    g = gw
    r = g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                   "--track-host", HOST)
    assert "track opens,clicks,unsubscribe (host %s)" % HOST in r.stdout
    rcpts = ["a@dest.example", "b@dest.example"]
    sent = mime_message(enc, ", ".join(rcpts))
    smtpgate.smtp_send(g, rcpts, envfrom="bounce@example.com", msg=sent)
    got = mx.wait_received(2)
    qid = g.wait_events(lambda e: e["event"] == "delivered")[0]["queue_id"]
    key = track_key(g)
    assert len(got) == 2 and sorted(m["to"][0] for m in got) == rcpts
    unsub = {check_copy(g, m, qid, rcpts, key, sent) for m in got}
    assert len(unsub) == 2, "each recipient's own token"
    st = os.stat(os.path.join(g.spool, "db", "track.key"))
    assert st.st_mode & 0o777 == 0o600


def test_own_list_unsubscribe_kept_and_unsub_only(gw, mx):
    g = gw
    g.spoolctl("account", "set", "acc", "--track", "unsubscribe", "--track-host", HOST)
    msg = smtpgate.message(frm="news@example.com", to="x@dest.example",
                           headers={"List-Unsubscribe": "<mailto:u@example.com>"})
    smtpgate.smtp_send(g, ["x@dest.example"], msg=msg)
    plain = smtpgate.message(frm="news@example.com", to="y@dest.example",
                             body="<a href=\"http://a.example/\">plain text</a>\r\n")
    smtpgate.smtp_send(g, ["y@dest.example"], msg=plain)
    x, = mx.wait_received(1, rcpt="x@dest.example")
    y, = mx.wait_received(1, rcpt="y@dest.example")
    assert x["data"].count(b"List-Unsubscribe:") == 1 and b"List-Unsubscribe-Post" not in x["data"]
    assert x["data"].endswith(msg.split(b"\r\n\r\n", 1)[1])
    assert b"List-Unsubscribe: <https://%s/u/" % HOST.encode() in y["data"]
    assert y["data"].endswith(plain.split(b"\r\n\r\n", 1)[1]), "a text part is not rewritten"
    assert dkim_results(y["data"], g.dkim_txt)[0][3] is True


def strip_added(data):
    """The message as sent: without the DKIM-Signature and Received fields
    the gateway puts on top."""
    heads, body = data.split(b"\r\n\r\n", 1)
    keep, skip = [], False
    for line in heads.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                keep.append(line)
            continue
        skip = line.lower().startswith((b"dkim-signature:", b"received:"))
        if not skip:
            keep.append(line)
    return b"\r\n".join(keep) + b"\r\n\r\n" + body


def test_malformed_mime_goes_out_unmodified(gw, mx):
    g = gw
    g.spoolctl("account", "set", "acc", "--track", "opens,clicks", "--track-host", HOST)
    msg = smtpgate.message(frm="news@example.com", to="m@dest.example", omit=("Content-Type",),
                           headers={"Content-Type": "multipart/alternative"},
                           body="--x\r\nContent-Type: text/html\r\n\r\n"
                                "<a href=\"http://a.example/\">a</a>\r\n--x--\r\n")
    smtpgate.smtp_send(g, ["m@dest.example"], msg=msg)
    m, = mx.wait_received(1)
    assert strip_added(m["data"]) == msg
    qid = g.wait_events(lambda e: e["event"] == "delivered")[0]["queue_id"]
    smtpgate.wait_for(lambda: "%s: tracking: the message's MIME cannot be parsed" % qid
                      in g.log("deliverd"), what="log line")
    assert dkim_results(m["data"], g.dkim_txt)[0][3] is True


def test_html_gumbos_tree_builder_aborts_on_is_left_alone(gw, mx):
    """An HTML part with svg/select markup (here one on which gumbo 0.10's
    tree builder fails an assertion and aborts) is not parsed and goes out
    byte for byte; spoold files it, logs one line and stays up; the next
    message is tracked as usual."""
    g = gw
    g.spoolctl("account", "set", "acc", "--track", "opens,clicks", "--track-host", HOST)
    spoold = g.pid("spoold")
    msg = smtpgate.message(frm="news@example.com", to="m@dest.example", omit=("Content-Type",),
                           headers={"Content-Type": "text/html"},
                           body="<table><svg><select><title><select><td>"
                                "<a href=\"https://a.example/\">a</a>\r\n")
    smtpgate.smtp_send(g, ["m@dest.example"], msg=msg)
    m, = mx.wait_received(1)
    assert strip_added(m["data"]) == msg
    qid = g.wait_events(lambda e: e["event"] == "delivered")[0]["queue_id"]
    assert "%s: tracking: 1 HTML part(s) with svg, math, template, select or frameset " \
        "markup left untracked" % qid in g.log("spoold")
    assert g.pid("spoold") == spoold, "spoold did not restart"
    smtpgate.smtp_send(g, ["n@dest.example"], msg=mime_message("base64", "n@dest.example"))
    html, _ = html_part(mx.wait_received(2)[1]["data"])
    assert "https://%s/c/" % HOST in html


def test_track_host_names_the_node(mx):
    """--track-host with {node}: the links and List-Unsubscribe name this
    node (cluster_node), so a cluster's hits come back to the trackd that
    has the message's record; a template that is no host name is refused."""
    g = smtpgate.relaying_gateway(mx.port, retry_schedule="1s", cluster_node="n7")
    try:
        r = g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                       "--track-host", "t-{node}-.example.net", check=False)
        assert r.returncode == 2 and "not a host name" in r.stderr
        g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                   "--track-host", "t-{node}.example.net")
        smtpgate.smtp_send(g, ["m@dest.example"],
                           msg=mime_message("base64", "m@dest.example"))
        m, = mx.wait_received(1)
        html, _ = html_part(m["data"])
        assert "https://t-n7.example.net/c/" in html and "{node}" not in html
        assert b"List-Unsubscribe: <https://t-n7.example.net/u/" in m["data"]
    finally:
        g.close()


def test_track_host_with_port(gw, mx):
    """--track-host HOST:PORT (trackd on a port of its own, tls=implicit):
    the links, the pixel and List-Unsubscribe carry the port; a port out
    of range or not a number is refused."""
    g = gw
    for bad in ("t.example.net:0", "t.example.net:65536", "t.example.net:84x",
                "t.example.net:", "t.example.net:0443"):
        r = g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                       "--track-host", bad, check=False)
        assert r.returncode == 2 and "not a host name" in r.stderr, (bad, r.stderr)
    hp = HOST + ":8443"
    r = g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                   "--track-host", hp)
    assert "(host %s)" % hp in r.stdout, r.stdout
    smtpgate.smtp_send(g, ["p@dest.example"], msg=mime_message("quoted-printable",
                                                                 "p@dest.example"))
    m, = mx.wait_received(1)
    qid = g.wait_events(lambda e: e["event"] == "delivered")[0]["queue_id"]
    key = track_key(g)
    html, _ = html_part(m["data"])
    toks = re.findall(r'href="https://%s/c/([A-Za-z0-9_-]+)"' % re.escape(hp), html)
    assert [parse_token(key, t) for t in toks] == [("c", qid, 0, 0), ("c", qid, 0, 1)], html
    assert re.search(r'<img src="https://%s/o/' % re.escape(hp), html), html
    lu = re.search(rb"^List-Unsubscribe: <https://%s/u/([A-Za-z0-9_-]+)>\r$" %
                   re.escape(hp.encode()), m["data"], re.M)
    assert lu and parse_token(key, lu.group(1).decode()) == ("u", qid, 0, 0), m["data"][:2000]
    assert dkim_results(m["data"], g.dkim_txt)[0][3] is True


def test_untracked_account_untouched_one_transaction(gw, mx):
    g = gw
    g.spoolctl("account", "set", "acc", "--track", "opens,clicks", "--track-host", HOST)
    r = g.spoolctl("account", "set", "acc", "--track", "none")
    assert "track none (host %s)" % HOST in r.stdout
    rcpts = ["a@dest.example", "b@dest.example"]
    msg = mime_message("quoted-printable", ", ".join(rcpts))
    smtpgate.smtp_send(g, rcpts, msg=msg)
    m, = mx.wait_received(1)
    assert sorted(m["to"]) == rcpts, "one transaction for both"
    assert strip_added(m["data"]) == msg
    assert dkim_results(m["data"], g.dkim_txt)[0][3] is True


def test_account_set_track_settings(gw):
    g = gw
    r = g.spoolctl("account", "set", "acc", "--track", "opens", check=False)
    assert r.returncode == 2 and "--track-host" in r.stderr
    for bad in (["--track", "opens,bogus"], ["--track-host", "bad host"],
                ["--track-host", "-x.example"]):
        r = g.spoolctl("account", "set", "acc", *bad, check=False)
        assert r.returncode == 2, (bad, r.stderr)
    g.spoolctl("account", "set", "acc", "--track", "clicks,opens", "--track-host", HOST)
    j = g.spoolctl_json("account", "show", "acc")
    assert j["track"] == "opens,clicks" and j["track_host"] == HOST
    g.spoolctl("account", "set", "acc", "--track", "unsubscribe")
    assert "track unsubscribe (host %s)" % HOST in g.spoolctl("account", "show", "acc").stdout
