"""Idempotent submission (issue 18 item 3), black-box: a client that sends
a message again after losing the 250 (same X-Letter-Id, a second SMTP
transaction) gets a 250 both times, but the aiosmtpd next hop receives it
once and one `duplicate` event carries `original_queue_id`. The window is
per account, ends after dedupe_window (spoold's clock stepped with
libfaketime) and dedupe_window = 0 turns it off; a sandbox account
behaves the same.
"""
import json
import os
import smtplib
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, message, wait_for

RCPT = "rcpt@example.net"


def gateway(mx, faketime=False, **extra):
    """smtpd, spoold (maybe under libfaketime) and deliverd relaying to mx;
    account acc from 127.0.0.1, other from 127.0.0.2, sandy (sandbox) from
    127.0.0.3; faketime: spoold and deliverd share a stepped clock. Returns (gateway, faketime offset file or None)."""
    for name in ("smtpd", "spoold", "deliverd"):
        if not os.path.exists(smtpgate.binary(name)):
            pytest.skip("daemons not built")
    if faketime and not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h"}
    conf.update(extra)
    g = Gateway(tls=False, port_tls="none", extra=conf)
    tsfile = None
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.add_account("other", ips=["127.0.0.2/32"])
        g.add_account("sandy", ips=["127.0.0.3/32"], sandbox=True)
        if faketime:
            # deliverd shares the clock: it sends what spoold filed "now"
            tsfile, _ = smtpgate.start_faketime(g, "spoold")
            smtpgate.start_faketime(g, "deliverd")
        else:
            g.start("spoold", "deliverd")
        g.start("smtpd")
    except BaseException:
        g.close()
        raise
    return g, tsfile


def submit(g, msg, src="127.0.0.1", lose_reply=False):
    """One SMTP transaction from src; the QID of its 250. lose_reply: the
    connection drops after the 250 (no QUIT), as when the reply was lost."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30, source_address=(src, 0))
    try:
        s.ehlo("client.test")
        assert s.mail("sender@example.com")[0] == 250
        assert s.rcpt(RCPT)[0] == 250
        code, resp = s.data(msg)
        assert code == 250, resp
        if not lose_reply:
            s.quit()
    finally:
        s.close()
    return resp.decode().split()[-1]


def letter(lid):
    return message(to=RCPT, headers={"X-Letter-Id": lid})


def events_of(g, qid):
    return [e for e in g.events() if e["queue_id"] == qid]


def delivered(g, qid):
    return g.wait_events(lambda e: e["queue_id"] == qid and e["event"] == "delivered",
                         what="delivered event of " + qid)[0]


def duplicate(g, qid):
    return g.wait_events(lambda e: e["queue_id"] == qid and e["event"] == "duplicate",
                         what="duplicate event of " + qid)[0]


def settled(g, mx, n):
    """Nothing left queued, and mx got exactly n messages."""
    wait_for(lambda: not g.spoolctl_json("queue"), 20, what="empty queue")
    time.sleep(0.5)
    assert len(mx.received()) == n, mx.received()


def test_retry_after_lost_reply_is_delivered_once():
    with peers.Mx() as mx:
        g, _ = gateway(mx)
        with g:
            msg = letter("order-1001")
            q1 = submit(g, msg, lose_reply=True)
            delivered(g, q1)
            q2 = submit(g, msg)          # the client's retry
            assert q2 != q1
            d = duplicate(g, q2)
            assert d["original_queue_id"] == q1
            assert d["gate"]["uniq"] == "order-1001"
            assert d["account"] == "acc" and d["to"] == RCPT
            assert d["sandbox"] is False and "class" not in d and "attempt" not in d
            assert [e["event"] for e in events_of(g, q2)] == ["duplicate"]
            settled(g, mx, 1)
            assert "%s: duplicate of %s" % (q2, q1) in g.log("spoold")
            # not queued: show has only its event
            assert "duplicate X-Letter-Id: first queued as " + q1 in g.spoolctl("show", q2).stdout
            assert q2 not in g.files("new") + g.files("queue") + g.files("quarantine")
            # the event is indexed like the others
            r = g.spoolctl("events", "--account", "acc", "--since", "2000-01-01",
                           "--type", "duplicate", "--json")
            got = [json.loads(line) for line in r.stdout.splitlines()]
            assert [e["queue_id"] for e in got] == [q2]
            q = {"action": "stat.uni", "select": ["delivstream.to", "gate.uniq"],
                 "filter": [{"a": "delivstream.status", "op": "==", "v": "duplicate"}],
                 "first": 10}
            r = g.spoolctl("query", input=json.dumps(q))
            assert json.loads(r.stdout)["list"] == [[RCPT, "order-1001"]]
            issues = g.spoolctl_json("issues", "--account", "acc")
            assert [i["duplicates"] for i in issues] == [1]
            assert [i["messages"] for i in issues] == [1]


def test_same_letter_id_is_per_account():
    with peers.Mx() as mx:
        g, _ = gateway(mx)
        with g:
            msg = letter("shared-7")
            q1 = submit(g, msg)
            delivered(g, q1)
            q2 = submit(g, msg, src="127.0.0.2")     # another account
            delivered(g, q2)
            q3 = submit(g, msg)                      # acc again
            assert duplicate(g, q3)["original_queue_id"] == q1
            settled(g, mx, 2)
            # and without X-Letter-Id nothing is deduplicated
            plain = message(to=RCPT, msgid="<same@example.com>")
            delivered(g, submit(g, plain))
            delivered(g, submit(g, plain))
            settled(g, mx, 4)


def test_window_ends_after_dedupe_window():
    """dedupe_window 24h (the default): spoold's clock 23 h on, a retry is
    still a duplicate; 25 h on, the id is free and the message delivered."""
    with peers.Mx() as mx:
        g, tsfile = gateway(mx, faketime=True)
        with g:
            msg = letter("weekly-42")
            q1 = submit(g, msg)
            delivered(g, q1)
            with open(tsfile, "w") as f:
                f.write("+%d\n" % (23 * 3600))
            q2 = submit(g, msg)
            assert duplicate(g, q2)["original_queue_id"] == q1
            with open(tsfile, "w") as f:
                f.write("+%d\n" % (25 * 3600))
            q3 = submit(g, msg)
            delivered(g, q3)
            settled(g, mx, 2)
            # the new message holds the id now
            q4 = submit(g, msg)
            assert duplicate(g, q4)["original_queue_id"] == q3
            settled(g, mx, 2)


def test_dedupe_window_zero_disables():
    with peers.Mx() as mx:
        g, _ = gateway(mx, dedupe_window="0")
        with g:
            msg = letter("order-1002")
            q1 = submit(g, msg)
            delivered(g, q1)
            q2 = submit(g, msg)
            delivered(g, q2)
            settled(g, mx, 2)
            assert not [e for e in g.events() if e["event"] == "duplicate"]


def test_sandbox_account_same_behaviour():
    with peers.Mx() as mx:
        g, _ = gateway(mx)
        with g:
            msg = letter("trial-3")
            q1 = submit(g, msg, src="127.0.0.3")
            assert delivered(g, q1)["sandbox"] is True
            q2 = submit(g, msg, src="127.0.0.3")
            d = duplicate(g, q2)
            assert d["original_queue_id"] == q1 and d["sandbox"] is True
            settled(g, mx, 0)
            assert [e["event"] for e in g.events()] == ["delivered", "duplicate"]
