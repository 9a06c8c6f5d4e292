"""Engagement events and complaints (issue 16 items 5 and 6), black-box.

Complaints: a feedback-loop report (ARF, RFC 5965) built here the way
Yahoo (full original, Original-Rcpt-To) and Mail.ru (text/rfc822-headers,
recipient in To:) send them goes over SMTP, from a client with no account,
to complaints_address for a message delivered earlier: a `complained`
event for that message and recipient, the address on the account's stop
list, the next message to it refused with the stoplist text. Anything else
from that client is refused; malformed and unmatched reports leave one log
line each and nothing else (no file kept, no event), and spoold keeps
running. A co-recipient of a copy (same queue id) cannot stop-list another
recipient of it: a report counts only when the copy went to its recipient
alone or the original carries that recipient's tracking token (h-arfauth).

Counters: opened/clicked/unsubscribed events added as trackd adds them
(tests/tools/engage-inject) show in `spoolctl issues` (unique/total), in
the stat.uni query (delivstream.status, delivstream.url) and in event_log.
"""
import json
import os
import re
import smtplib
import subprocess
import time

import pytest

import peers
import smtpgate

FBL = "fbl@gate.test"
STOP = "550 5.0.0 Email is in the account stoplist"


@pytest.fixture
def live():
    mx = peers.Mx().start()
    try:
        g = smtpgate.relaying_gateway(mx.port, complaints_address=FBL)
    except BaseException:
        mx.stop()
        raise
    try:
        yield g, mx
    finally:
        g.close()
        mx.stop()


def stranger(g):
    """An SMTP client from 127.0.0.2: no account allows that address."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15, source_address=("127.0.0.2", 0))
    s.ehlo("feedback.example")
    return s


def deliver(g, rcpts, campaign="spring"):
    """Sends one message to rcpts; its Message-Id and QID once delivered."""
    mid = "<%d.%d@acme.example>" % (time.time_ns(), os.getpid())
    smtpgate.smtp_send(g, rcpts, msg=smtpgate.message(
        frm="news@acme.example", to=", ".join(rcpts), msgid=mid,
        headers={"X-Campaign-Id": campaign}))
    evs = g.wait_events(lambda e: e.get("message_id") == mid and e["event"] == "delivered"
                        and len({x["to"] for x in g.events()
                                 if x.get("message_id") == mid}) >= len(rcpts),
                        what="delivered " + mid)
    return mid, evs[0]["queue_id"]


ORIGINAL = ("Received: from mx.example.net (mx.example.net [192.0.2.7])\r\n"
            "{ours}"
            "Message-Id: {mid}\r\n"
            "Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n"
            "From: News <news@acme.example>\r\n"
            "To: {to}\r\n"
            "Subject: Spring sale\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Buy now.\r\n")


def ours(qid):
    """The Received line smtpd wrote into the copy we delivered (or none)."""
    if not qid:
        return ""
    return ("Received: from client.example (unknown [127.0.0.1])\r\n"
            "\tby gate.test (smtpgate) with ESMTP id %s; "
            "Mon, 07 Dec 2026 05:00:00 +0000\r\n" % qid)


def yahoo_arf(mid, rcpt, qid=None):
    """Yahoo's shape: the whole original as message/rfc822, Original-Rcpt-To."""
    return ("From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>\r\n"
            "To: %s\r\n"
            "Subject: Email Feedback Report for IP 127.0.0.1\r\n"
            "MIME-Version: 1.0\r\n"
            "Message-ID: <fbl-%d@arf.mail.yahoo.com>\r\n"
            "Content-Type: multipart/report; report-type=feedback-report;"
            " boundary=\"----=_Part_1\"\r\n\r\n"
            "------=_Part_1\r\nContent-Type: text/plain\r\n\r\n"
            "This is an email abuse report.\r\n\r\n"
            "------=_Part_1\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\n"
            "Version: 1\r\nOriginal-Mail-From: <sender@example.com>\r\n"
            "Original-Rcpt-To: <%s>\r\nSource-IP: 127.0.0.1\r\n\r\n"
            "------=_Part_1\r\nContent-Type: message/rfc822\r\n"
            "Content-Disposition: inline\r\n\r\n%s\r\n"
            "------=_Part_1--\r\n" % (FBL, time.time_ns(), rcpt,
                                      ORIGINAL.format(mid=mid, to="<%s>" % rcpt,
                                                      ours=ours(qid)))).encode()


def mailru_arf(mid, rcpt, qid=None):
    """Mail.ru's shape: headers only, the recipient only in the original's To:."""
    return ("From: fbl@corp.mail.ru\r\nTo: %s\r\nSubject: FBL\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=\"feedback-report\";\r\n"
            " boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\nComplaint.\r\n"
            "--b1\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: Mail.Ru FBL/1.0\r\nVersion: 1\r\n\r\n"
            "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "%sMessage-ID: %s\r\nFrom: news@acme.example\r\nTo: %s\r\nSubject: hi\r\n\r\n"
            "--b1--\r\n" % (FBL, ours(qid), mid, rcpt)).encode()


def send_report(g, body):
    s = stranger(g)
    try:
        s.sendmail("feedback@arf.example", [FBL], body)
    finally:
        s.quit()


def stoplist(g):
    return g.spoolctl("stoplist", "list", "acc").stdout.split()


def test_arf_report_complains_and_stoplists(live):
    g, mx = live
    mid, qid = deliver(g, ["ann@example.net"])
    send_report(g, yahoo_arf(mid, "ann@example.net", qid))
    ev = g.wait_events(lambda e: e["event"] == "complained", what="complained")
    assert len(ev) == 1
    c = ev[0]
    assert c["queue_id"] == qid and c["to"] == "ann@example.net"
    assert c["account"] == "acc" and c["message_id"] == mid
    assert c["issue"]["name"] == "spring" and c["user_agent"] == "Yahoo!-Mail-Feedback/2.0"
    assert "msg" not in c and "attempt" not in c and "class" not in c
    assert stoplist(g) == ["ann@example.net"]
    log = g.log("spoold")
    assert any(qid in line and "status=complained" in line for line in log.splitlines())
    assert g.files("quarantine") == []
    # the provider repeats the report: logged, not counted again
    send_report(g, yahoo_arf(mid, "ann@example.net", qid))
    smtpgate.wait_for(lambda: "already counted, dropped" in g.log("spoold"), 20,
                      what="the repeated report")
    assert len([e for e in g.events() if e["event"] == "complained"]) == 1
    # the report was not queued for delivery anywhere
    assert not [m for m in mx.messages if FBL in m["to"]]
    # the next message to the address gets the stoplist refusal
    smtpgate.smtp_send(g, ["ann@example.net"])
    b = g.wait_events(lambda e: e["event"] == "bounced" and e["to"] == "ann@example.net",
                      what="stoplist bounce")
    assert b[0]["msg"] == STOP
    issue = [i for i in g.spoolctl_json("issues") if i["name"] == "spring"][0]
    assert issue["complained"] == 1


def test_mailru_report_recipient_from_to(live):
    g, mx = live
    mid, qid = deliver(g, ["carl@example.net"])
    send_report(g, mailru_arf(mid, "Carl@Example.NET", qid))
    c = g.wait_events(lambda e: e["event"] == "complained", what="complained")[0]
    assert c["queue_id"] == qid and c["to"] == "carl@example.net"
    assert stoplist(g) == ["carl@example.net"]


def test_stranger_may_only_send_to_complaints_address(live):
    g, mx = live
    s = stranger(g)
    try:
        code, _ = s.mail("someone@example.org")
        assert code == 250
        code, text = s.rcpt("victim@example.net")
        assert code == 530 and b"Authentication required" in text
        code, _ = s.rcpt(FBL.upper())
        assert code == 250
    finally:
        s.quit()
    assert "NOQUEUE: reject: RCPT from" in g.log("smtpd")


def test_malformed_and_unmatched_reports(live):
    g, mx = live
    s = stranger(g)
    try:
        s.sendmail("x@example.org", [FBL], smtpgate.message(to=FBL, subject="not a report"))
        s.sendmail("x@example.org", [FBL],
                   b"MIME-Version: 1.0\r\nContent-Type: multipart/report; "
                   b"report-type=feedback-report; boundary=\"x\"\r\n\r\n--x\r\n"
                   b"Content-Type: message/feedback-report\r\n\r\nFeedback-Ty")
        s.sendmail("x@example.org", [FBL], yahoo_arf("<nobody@nowhere>", "ann@example.net",
                                                     "0123456789ABCDEF0123"))
    finally:
        s.quit()
    smtpgate.wait_for(lambda: g.log("spoold").count("; dropped") == 3, 20,
                      what="3 reports dropped")
    log = g.log("spoold")
    assert log.count("not usable: not multipart/report") == 1
    assert log.count("not usable: no message/feedback-report part") == 1
    assert log.count("matches no delivered message; dropped") == 1
    smtpgate.wait_for(lambda: g.files("new") == [], 10, what="incoming/new emptied")
    assert g.files("quarantine") == []
    assert not [e for e in g.events() if e["event"] == "complained"]
    assert g.procs["spoold"].poll() is None
    # and spoold still files mail
    mid, qid = deliver(g, ["dan@example.net"])
    assert qid


def inject(g, *args):
    tool = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "engage-inject")
    subprocess.run([tool, "-c", g.conf_path] + list(args), check=True, timeout=30,
                   capture_output=True)


def test_issue_counters_query_and_event_log(live):
    g, mx = live
    mid, qid = deliver(g, ["ann@example.net", "bob@example.net"], campaign="autumn")
    inject(g, qid, "ann@example.net", "opened")
    inject(g, qid, "ann@example.net", "opened")
    inject(g, "-m", qid, "bob@example.net", "opened")
    inject(g, qid, "ann@example.net", "clicked", "https://acme.example/a?x=1")
    inject(g, qid, "ann@example.net", "clicked", "https://acme.example/b")
    inject(g, qid, "bob@example.net", "unsubscribed")
    iss = [i for i in g.spoolctl_json("issues") if i["name"] == "autumn"][0]
    assert iss["opens"] == {"unique": 2, "total": 3}
    assert iss["clicks"] == {"unique": 1, "total": 2}
    assert iss["unsubscribed"] == 1 and iss["complained"] == 0
    line = [x for x in g.spoolctl("issues").stdout.splitlines() if "autumn" in x][0]
    assert " 2/3 " in line and " 1/2 " in line
    rows = json.loads(g.spoolctl("query", input=json.dumps({
        "action": "stat.uni",
        "filter": [{"a": "delivstream.status", "op": "==", "v": "clicked"}],
        "select": ["delivstream.to", "delivstream.status", "delivstream.url", "issue.name"],
        "order": ["delivstream.dt"]})).stdout)["list"]
    assert sorted(r[2] for r in rows) == ["https://acme.example/a?x=1", "https://acme.example/b"]
    assert all(r[0] == "ann@example.net" and r[3] == "autumn" for r in rows)
    opened = json.loads(g.spoolctl("query", input=json.dumps({
        "action": "stat.uni",
        "filter": [{"a": "delivstream.status", "op": "==", "v": "opened"}],
        "select": ["delivstream.to"]})).stdout)["list"]
    assert len(opened) == 3
    # event_log gets them within spoold_rescan_interval (1s here)
    evs = g.wait_events(lambda e: e["event"] in ("opened", "clicked", "unsubscribed"),
                        what="engagement events")
    evs = smtpgate.wait_for(
        lambda: (lambda l: l if len(l) == 6 else None)(
            [e for e in g.events() if e["event"] in ("opened", "clicked", "unsubscribed")]),
        20, what="six engagement events")
    machine = [e for e in evs if e.get("machine")]
    assert len(machine) == 1 and machine[0]["to"] == "bob@example.net"
    assert all(e["client"] == "127.0.0.0/24" and e["queue_id"] == qid for e in evs)
    assert [e["url"] for e in evs if e["event"] == "clicked"] == \
        ["https://acme.example/a?x=1", "https://acme.example/b"]


def generic_arf(mid, rcpt, qid=None):
    """RFC 5965's own example shape (Microsoft JMRP and most others): a base64
    message/rfc822 original and Original-Rcpt-To with an "rfc822;" prefix."""
    import base64
    orig = base64.encodebytes(ORIGINAL.format(mid=mid, to=rcpt,
                                              ours=ours(qid)).encode()).decode()
    orig = orig.replace("\n", "\r\n")
    return ("From: <abusedesk@example.com>\r\nTo: <%s>\r\nSubject: FW: report\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report;\r\n"
            "     boundary=\"part1_13d\"\r\n\r\n"
            "--part1_13d\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n\r\n"
            "--part1_13d\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: Abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
            "Original-Rcpt-To: rfc822; %s\r\n\r\n"
            "--part1_13d\r\nContent-Type: message/rfc822\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
            "--part1_13d--\r\n" % (FBL, rcpt.upper(), orig)).encode()


def test_engagement_events_reach_the_callback():
    """complained (from a base64 RFC 5965 report) and opened events are
    posted to the account's callback URL like the delivery events."""
    if not all(os.path.exists(smtpgate.binary(n)) for n in ("smtpd", "spoold", "deliverd")):
        pytest.skip("daemons not built")
    with peers.Mx() as mx, peers.Callbacks() as cb:
        g = smtpgate.Gateway(tls=False, port_tls="none", extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h",
            "complaints_address": FBL})
        try:
            g.add_account("acc", ips=["127.0.0.1/32"], extra=["--callback-url", cb.url])
            g.start()
            mid, qid = deliver(g, ["erin@example.net"])
            inject(g, qid, "erin@example.net", "opened")
            send_report(g, generic_arf(mid, "erin@example.net", qid))
            got = smtpgate.wait_for(
                lambda: (lambda t: t if {"delivered", "opened", "complained"} <= t else None)(
                    {e["event"] for e in list(cb.events)}), 30, what="callback events")
            assert got
            c = [e for e in cb.events if e["event"] == "complained"][0]
            assert c["queue_id"] == qid and c["to"] == "erin@example.net"
            assert c["user_agent"] == "SomeGenerator/1.0"
            assert stoplist(g) == ["erin@example.net"]
        finally:
            g.close()


# ---------------------------------------------------------------- forged (h-asupp)

def test_forged_report_without_our_queue_id_is_ignored(live):
    """Anyone may mail the complaints address. A report that knows a
    delivered message's Message-ID and recipient but not the queue id our
    Received line gave the copy (a forger never saw it), or names the queue
    id of another message, stop-lists nobody: one log line, dropped."""
    g, mx = live
    mid, qid = deliver(g, ["fay@example.net"])
    _, other = deliver(g, ["gus@example.net"])
    send_report(g, yahoo_arf(mid, "fay@example.net"))
    send_report(g, yahoo_arf(mid, "fay@example.net", other))
    smtpgate.wait_for(lambda: g.log("spoold").count("; dropped") == 2, 20,
                      what="2 reports dropped")
    log = g.log("spoold")
    assert "names no queue id of ours" in log
    assert "queue_id=%s matches no delivered message; dropped" % other in log
    assert "fay@example.net" not in stoplist(g)
    assert not [e for e in g.events() if e["event"] == "complained"]
    # the provider's real report (from the copy it got) counts
    copy = mx.received("fay@example.net")[0]["data"]
    if isinstance(copy, bytes):
        copy = copy.decode()
    assert "(smtpgate) with ESMTP id %s" % qid in copy.replace("\r\n\t", " ")
    body = yahoo_arf(mid, "fay@example.net").decode()
    start = body.index("Content-Disposition: inline\r\n\r\n") + len(
        "Content-Disposition: inline\r\n\r\n")
    end = body.index("\r\n------=_Part_1--")
    send_report(g, (body[:start] + copy + body[end:]).encode())
    c = g.wait_events(lambda e: e["event"] == "complained", what="complained")[0]
    assert c["queue_id"] == qid and stoplist(g) == ["fay@example.net"]
    # why it is there: spoolctl stoplist show
    why = g.spoolctl_json("stoplist", "show", "acc", "Fay@Example.NET")
    assert why["reason"] == "complained" and why["queue_id"] == qid, why
    assert why["note"].startswith("feedback report ") and "(abuse)" in why["note"], why
    assert why["date"][:10] == c["dt"][:10] and why["account"] == "acc", why
    g.spoolctl("stoplist", "add", "acc", "ivy@example.net")
    why = g.spoolctl_json("stoplist", "show", "acc", "ivy@example.net")
    assert why["reason"] == "manual" and why["queue_id"] is None, why
    r = g.spoolctl("stoplist", "show", "acc", "nobody@example.net", check=False)
    assert r.returncode != 0 and "is not in the stoplist of acc" in r.stderr, r.stderr


def test_report_counts_for_the_account_that_sent_the_copy(live):
    """Two accounts send a message with the same Message-ID to the same
    recipient (other first, acc after). The recipient's report about
    other's copy stop-lists the address for other only: acc's next message
    to it still goes out."""
    g, mx = live
    g.add_account("other", ips=["127.0.0.3/32"])
    mid = "<same.%d@acme.example>" % time.time_ns()
    msg = smtpgate.message(frm="news@acme.example", to="hal@example.net", msgid=mid)
    conn = smtplib.SMTP("127.0.0.1", g.port, source_address=("127.0.0.3", 0), timeout=30)
    smtpgate.smtp_send(g, ["hal@example.net"], msg=msg, conn=conn)
    conn.quit()
    ev_o = g.wait_events(lambda e: e["event"] == "delivered" and e["account"] == "other",
                         what="other's copy delivered")[0]
    smtpgate.smtp_send(g, ["hal@example.net"], msg=msg)
    g.wait_events(lambda e: e["event"] == "delivered" and e["account"] == "acc",
                  what="acc's copy delivered")
    send_report(g, yahoo_arf(mid, "hal@example.net", ev_o["queue_id"]))
    c = g.wait_events(lambda e: e["event"] == "complained", what="complained")[0]
    assert c["account"] == "other" and c["queue_id"] == ev_o["queue_id"], c
    assert "hal@example.net" not in stoplist(g)
    assert g.spoolctl("stoplist", "list", "other").stdout.split() == ["hal@example.net"]


# ------------------------------------------- a co-recipient's report (h-arfauth)

TRACK_HOST = "t.acme.example"


def copy_of(mx, rcpt):
    """The copy the MX got for rcpt, as text (what that recipient holds)."""
    data = mx.wait_received(1, rcpt=rcpt)[0]["data"]
    return data.decode() if isinstance(data, bytes) else data


def arf_of_copy(copy, rcpt):
    """Yahoo's shape around a copy someone holds, naming rcpt."""
    body = yahoo_arf("<x@y>", rcpt).decode()
    start = body.index("Content-Disposition: inline\r\n\r\n") + len(
        "Content-Disposition: inline\r\n\r\n")
    end = body.index("\r\n------=_Part_1--")
    return (body[:start] + copy + body[end:]).encode()


def without_header(copy, name):
    """The copy with header `name` (and its folded lines) left out."""
    head, sep, rest = copy.partition("\r\n\r\n")
    out, skip = [], False
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if not skip:
                out.append(line)
            continue
        skip = line.lower().startswith(name.lower() + ":")
        if not skip:
            out.append(line)
    return "\r\n".join(out) + sep + rest


def dropped_not_proven(g, n):
    smtpgate.wait_for(lambda: g.log("spoold").count("recipient not proven") >= n, 20,
                      what="%d reports dropped as not proven" % n)
    return [x for x in g.log("spoold").splitlines() if "recipient not proven" in x]


def test_co_recipient_cannot_stoplist_another(live):
    """One untracked copy (one queue id) went to ann, bob and cat. Ann holds
    its queue id and Message-ID and files a report naming bob, with her
    own copy as the original: nothing is counted (one log line), bob stays
    off the stop list and his next message is delivered. A copy that went
    to one recipient still proves that recipient
    (test_arf_report_complains_and_stoplists)."""
    g, mx = live
    mid, qid = deliver(g, ["ann@example.net", "bob@example.net", "cat@example.net"])
    send_report(g, arf_of_copy(copy_of(mx, "ann@example.net"), "bob@example.net"))
    send_report(g, mailru_arf(mid, "bob@example.net", qid))
    lines = dropped_not_proven(g, 2)
    assert all((" %s: complaint (abuse) from report " % qid) in l for l in lines), lines
    assert all("to=<bob@example.net>, account=acc: recipient not proven: the copy went "
               "to 3 recipients and the report carries no tracking token of this "
               "recipient; dropped" in l for l in lines), lines
    assert not [a for a in stoplist(g) if "@" in a], stoplist(g)
    assert not [e for e in g.events() if e["event"] == "complained"]
    smtpgate.smtp_send(g, ["bob@example.net"])
    g.wait_events(lambda e: e["event"] == "delivered" and e["to"] == "bob@example.net"
                  and e["queue_id"] != qid, what="bob's next message delivered")
    assert not [e for e in g.events() if e["event"] == "bounced"]


def test_copy_to_one_recipient_of_several_still_proves(live):
    """ann and bob were the envelope, bob's mailbox refused it: the copy was
    delivered to ann alone, so a report naming her names its one holder."""
    g, mx = live
    mx.rules["bob@example.net"] = ["550 5.1.1 No such user"]
    mid, qid = deliver(g, ["ann@example.net", "bob@example.net"])
    assert [e["event"] for e in g.events() if e.get("to") == "bob@example.net"] == ["bounced"]
    send_report(g, yahoo_arf(mid, "ann@example.net", qid))
    c = g.wait_events(lambda e: e["event"] == "complained", what="complained")[0]
    assert c["to"] == "ann@example.net" and stoplist(g) == ["ann@example.net"]


def tracked_html(rcpts):
    html = ("<html><body><p>Sale <a href=\"https://shop.acme.example/x\">Buy</a></p>"
            "</body></html>\r\n")
    mid = "<t.%d.%d@acme.example>" % (time.time_ns(), os.getpid())
    return mid, smtpgate.message(frm="news@acme.example", to=", ".join(rcpts), msgid=mid,
                                 body=html, omit=("Content-Type",),
                                 headers={"Content-Type": "text/html; charset=utf-8",
                                          "X-Campaign-Id": "tracked"})


def test_tracked_copy_proves_its_recipient(live):
    """A tracked copy to ann, bob and cat: each copy carries its recipient's
    List-Unsubscribe, pixel and link tokens (HMAC over queue id and
    recipient). Bob's report with his copy stop-lists bob; so does cat's
    with her List-Unsubscribe left out (the body's tokens); ann's copy in a
    report naming cat or bob proves nothing (her token is another
    recipient's) and the headers alone (no token) neither."""
    g, mx = live
    g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
               "--track-host", TRACK_HOST)
    rcpts = ["ann@example.net", "bob@example.net", "cat@example.net"]
    mid, msg = tracked_html(rcpts)
    smtpgate.smtp_send(g, rcpts, msg=msg)
    ev = g.wait_events(lambda e: e.get("message_id") == mid and e["event"] == "delivered"
                       and len({x["to"] for x in g.events() if x.get("message_id") == mid
                                and x["event"] == "delivered"}) == 3,
                       what="three tracked copies delivered")
    qid = ev[0]["queue_id"]
    ann, bob, cat = (copy_of(mx, r) for r in rcpts)
    assert "https://%s/u/" % TRACK_HOST in ann.replace("\r\n ", " ")
    assert "https://%s/o/" % TRACK_HOST in cat
    # ann's copy naming cat, ann's copy naming bob, bob's headers without tokens
    send_report(g, arf_of_copy(ann, "cat@example.net"))
    send_report(g, arf_of_copy(without_header(ann, "List-Unsubscribe"), "bob@example.net"))
    send_report(g, mailru_arf(mid, "bob@example.net", qid))
    lines = dropped_not_proven(g, 3)
    assert sum("the copy went to 3 recipients and the report carries another "
               "recipient's tracking token; dropped" in l for l in lines) == 2, lines
    assert sum("carries no tracking token of this recipient" in l for l in lines) == 1, lines
    assert not [a for a in stoplist(g) if "@" in a], stoplist(g)
    assert not [e for e in g.events() if e["event"] == "complained"]
    # the recipients' own copies prove them
    send_report(g, arf_of_copy(bob, "bob@example.net"))
    send_report(g, arf_of_copy(without_header(cat, "List-Unsubscribe"), "cat@example.net"))
    smtpgate.wait_for(lambda: len([e for e in g.events() if e["event"] == "complained"]) == 2,
                      20, what="two complaints")
    got = sorted((e["to"], e["queue_id"]) for e in g.events() if e["event"] == "complained")
    assert got == [("bob@example.net", qid), ("cat@example.net", qid)]
    assert stoplist(g) == ["bob@example.net", "cat@example.net"]


def test_partly_pruned_log_proves_nothing(tmp_path):
    """The copy went to ann and bob; bob's delivery came two hours after
    ann's (deliverd's and spoold's clock stepped ahead, libfaketime), and
    with delivery_log_retention 1h the pruning has dropped ann's delivered
    event but not bob's. The log now shows bob alone, but it no longer
    shows the whole copy: ann's report naming bob proves nothing."""
    if not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    if not all(os.path.exists(smtpgate.binary(n)) for n in ("smtpd", "spoold", "deliverd")):
        pytest.skip("daemons not built")
    with peers.Mx() as mx:
        mx.rules["bob@example.net"] = ["451 4.2.0 Try later", "250 2.1.5 Ok"]
        g = smtpgate.Gateway(tls=False, port_tls="none", extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "3s",
            "complaints_address": FBL, "delivery_log_retention": "1h",
            "prune_interval": "1s"})
        try:
            g.add_account("acc", ips=["127.0.0.1/32"])
            tsfile, _ = smtpgate.start_faketime(g, "spoold")
            smtpgate.start_faketime(g, "deliverd")
            g.start("smtpd")
            mid = "<p.%d@acme.example>" % time.time_ns()
            smtpgate.smtp_send(g, ["ann@example.net", "bob@example.net"], msg=smtpgate.message(
                frm="news@acme.example", to="ann@example.net, bob@example.net", msgid=mid))
            smtpgate.wait_for(lambda: mx.received("ann@example.net")
                              and mx.attempts.get("bob@example.net"), 20,
                              what="ann delivered, bob deferred")
            with open(tsfile, "w") as f:
                f.write("+%d\n" % (2 * 3600))
            ev = g.wait_events(lambda e: e["event"] == "delivered" and e["to"] == "bob@example.net",
                               what="bob delivered two hours later")[0]
            qid = ev["queue_id"]
            smtpgate.wait_for(lambda: re.search(r"prune: events=[1-9]", g.log("spoold")), 30,
                              what="ann's delivered event pruned")
            send_report(g, arf_of_copy(copy_of(mx, "ann@example.net"), "bob@example.net"))
            lines = dropped_not_proven(g, 1)
            assert ("%s: complaint (abuse) from report " % qid) in lines[0], lines
            assert ("to=<bob@example.net>, account=acc: recipient not proven: the delivery "
                    "log of the copy is partly pruned") in lines[0], lines
            assert not [a for a in stoplist(g) if "@" in a], stoplist(g)
        finally:
            g.close()
