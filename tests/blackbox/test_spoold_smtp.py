"""spoold behind the real smtpd: messages go in over SMTP (an IP-pinned
account, no TLS), spoold files them; assertions on events.jsonl, spoolctl
and the spool. Complements test_spoold.py, which drops files directly.
"""
import os
import smtplib
import threading
import time

import pytest

import smtpgate
from smtpgate import Gateway, message, wait_for


@pytest.fixture
def gw():
    g = Gateway(tls=False, extra={"spoold_rescan_interval": "1s"})
    g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
    yield g
    g.close()


def send(gw, msg, rcpts, conn=None):
    smtpgate.smtp_send(gw, rcpts, envfrom="bounce@example.com", msg=msg, helo="client.test",
                       conn=conn)


def queue_ids(gw):
    return set(gw.files("queue"))


def test_seed_texts_through_smtpd(gw):
    gw.spoolctl("stoplist", "add", "pin", "stopped@example.net")
    gw.start("spoold", "smtpd")
    texts = {
        "Subject": "635 6.7.8 no Subject:",
        "To": "635 6.7.8 no To:",
        "From": "635 6.7.8 no From:",
        "Message-Id": "635 6.7.8 no Message-Id:",
        "Date": "635 6.7.8 no Date:",
        "MIME-Version": "635 6.7.8 no MIME-Version:",
        "Content-Type": "635 6.7.8 no Content-Type:",
    }
    for h, text in texts.items():
        send(gw, message(omit=(h,), subject=text), ["r-%s@example.net" % h.lower()])
    send(gw, message(frm="nobody"), ["r-noemail@example.net"])
    send(gw, message(headers={"X-Campaign-Id": "has space"}), ["r-camp@example.net"])
    send(gw, message(headers={"X-Letter-Id": "x" * 256}), ["r-letter@example.net"])
    send(gw, message(), ["ok@example.net", "stopped@example.net"])
    want = dict(("r-%s@example.net" % h.lower(), t) for h, t in texts.items())
    want.update({"r-noemail@example.net": "635 6.7.8 no email in From:",
                 "r-camp@example.net": "635 6.7.8 bad X-Campaign-Id",
                 "r-letter@example.net": "635 6.7.8 bad X-Letter-Id",
                 "stopped@example.net": "550 5.0.0 Email is in the account stoplist"})
    evs = wait_for(lambda: (lambda e: e if len(e) >= len(want) else None)(
        [e for e in gw.events() if e["event"] == "bounced"]), 30, what="policy events")
    got = {e["to"]: e["msg"] for e in evs}
    assert got == want
    assert all(e["class"] == "policy" and e["account"] == "pin" for e in evs)
    wait_for(lambda: not gw.files("new"), 20, what="incoming/new empty")
    assert len(queue_ids(gw)) == 1       # only the message with ok@ is left to deliver


def test_issue_ids_and_counters_through_smtpd(gw):
    gw.start("spoold", "smtpd")
    for i in range(3):
        send(gw, message(headers={"X-Campaign-Id": "camp1"}), ["a%d@example.net" % i,
                                                              "b%d@example.net" % i])
    send(gw, message(headers={"X-Campaign-Id": "camp2"}), ["c@example.net"])
    send(gw, message(), ["d@example.net"])
    wait_for(lambda: len(queue_ids(gw)) == 5, 20, what="5 filed")
    by_name = {i["name"]: i for i in gw.spoolctl_json("issues")}
    assert set(by_name) == {"camp1", "camp2", None}
    assert (by_name["camp1"]["messages"], by_name["camp1"]["recipients"]) == (3, 6)
    assert (by_name["camp2"]["messages"], by_name["camp2"]["recipients"]) == (1, 1)
    ids = [by_name[n]["id"] for n in ("camp1", "camp2", None)]
    assert len(set(ids)) == 3
    issue_of = {m["qid"]: m["issue"] for m in gw.spoolctl_json("queue")}
    assert sorted(issue_of.values()).count(by_name["camp1"]["id"]) == 3


def test_kill9_spoold_during_smtp_burst(gw):
    n, nconn = 1000, 4
    gw.conf["spoold_batch"] = "16"
    gw.write_conf()
    gw.start("spoold", "smtpd")
    errors = []

    def client(k):
        try:
            s = smtplib.SMTP("127.0.0.1", gw.port, timeout=60)
            s.ehlo("client.test")
            for i in range(k, n, nconn):
                s.sendmail("bounce@example.com", ["r%d@example.net" % i],
                           message(headers={"X-Campaign-Id": "burst"}))
            s.quit()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(nconn)]
    for t in threads:
        t.start()
    wait_for(lambda: len(queue_ids(gw)) >= 200, 120, interval=0.01, what="200 filed")
    gw.kill("spoold")
    time.sleep(0.5)          # smtpd keeps accepting into incoming/new meanwhile
    gw.start("spoold")
    for t in threads:
        t.join(timeout=300)
    assert not errors
    wait_for(lambda: not gw.files("new") and len(queue_ids(gw)) == n, 120,
             what="all %d filed" % n)
    burst = [i for i in gw.spoolctl_json("issues") if i["name"] == "burst"]
    assert len(burst) == 1 and (burst[0]["messages"], burst[0]["recipients"]) == (n, n)
    assert len({m["qid"] for m in gw.spoolctl_json("queue")}) == n


def test_from_forms_refused_through_smtpd(gw):
    """Issue 14 item 3: with --senders registered, an approved first
    mailbox no longer carries an unapproved one past the check (nor picks
    the DKIM domain for it): two From: fields, two mailboxes without a
    Sender:, and junk after the mailbox are bounced by policy and never
    reach the queue."""
    gw.spoolctl("account", "add", "reg", "--ip", "127.0.0.2/32", "--senders", "registered")
    gw.spoolctl("sender", "add", "reg", "ok@approved.test", "--status", "approved")
    gw.start("spoold", "smtpd")
    forms = {
        "r-two-fields@example.net": (message(frm="ok@approved.test",
                                             headers={"From": "ceo@victim.test"}),
                                     "635 6.7.8 multiple From:"),
        "r-list@example.net": (message(frm="ok@approved.test, ceo@victim.test"),
                               "635 6.7.8 multiple mailboxes in From: without Sender:"),
        "r-junk@example.net": (message(frm="<ok@approved.test> ceo@victim.test"),
                               "635 6.7.8 bad From:"),
        "r-angles@example.net": (message(frm="Boss <ok@approved.test> <ceo@victim.test>"),
                                 "635 6.7.8 bad From:"),
    }
    control = [("r-control@example.net", message(frm="Boss <ok@approved.test>"))]
    for rcpt, msg in [(r, m) for r, (m, _) in forms.items()] + control:
        s = smtplib.SMTP("127.0.0.1", gw.port, timeout=30, source_address=("127.0.0.2", 0))
        try:
            s.ehlo("client.test")
            s.sendmail("ok@approved.test", [rcpt], msg)
        finally:
            s.quit()
    evs = wait_for(lambda: (lambda e: e if len(e) >= len(forms) else None)(
        [e for e in gw.events() if e["event"] == "bounced"]), 30, what="policy events")
    assert {e["to"]: e["msg"] for e in evs} == {r: t for r, (_, t) in forms.items()}
    assert all(e["class"] == "policy" and e["account"] == "reg" for e in evs)
    wait_for(lambda: not gw.files("new"), 20, what="incoming/new empty")
    # only the approved control message is left for deliverd (and its signer)
    assert len(queue_ids(gw)) == 1
