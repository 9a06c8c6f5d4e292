"""spoolctl black-box tests: the queue (queue, show, retry, hold, release,
delete), against a spool filled by the real pipeline (smtpd -> spoold ->
deliverd -> an aiosmtpd relayhost answering 451 until "fixed") and against
one filled by tests/tools/spoolctl-gen (the spool API) with the daemons stopped.
"""
import json
import os
import subprocess
import time

import pytest

import peers
import smtpgate

SLOW = "slow@example.net"


def ctl(g, *args, input=None):
    return g.spoolctl(*args, input=input, check=False)


def gen(g, *args):
    r = subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoolctl-gen"),
                        "-c", g.conf_path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.fixture
def mx():
    m = peers.Mx().start()
    yield m
    m.stop()


@pytest.fixture
def live(mx):
    """The three daemons, relaying to mx; retries only when asked (1h)."""
    g = smtpgate.relaying_gateway(mx.port)
    try:
        yield g
    finally:
        g.close()


def deferred(g, mx, rcpt=SLOW):
    """Sends one message whose recipient the MX defers; returns its QID."""
    mx.rules[rcpt] = ["451 4.3.0 try later"]
    smtpgate.smtp_send(g, [rcpt], noop=True, timeout=15)
    ev = g.wait_events(lambda e: e.get("to") == rcpt and e["event"] == "deferred",
                       timeout=30, what="deferred event")[0]
    return ev["queue_id"]


def test_deferred_message_shows_reply_and_retry_delivers(live, mx):
    g = live
    qid = deferred(g, mx)
    text = g.spoolctl("queue").stdout
    assert qid in text and "deferred" in text and "451 4.3.0 try later" in text
    assert text.strip().splitlines()[-1].startswith("-- 1 message")
    q = g.spoolctl_json("queue")
    assert [m["qid"] for m in q] == [qid]
    m = q[0]
    assert m["state"] == "deferred" and m["held"] is False and m["account"] == "acc"
    r = m["recipients"][0]
    assert r["to"] == SLOW and r["state"] == "deferred" and r["attempts"] == 1
    assert r["reply"] == "451 4.3.0 try later" and r["hop"]

    show = g.spoolctl("show", qid).stdout
    assert "Subject: test" in show and "From: sender@example.com" in show
    assert "deferred" in show and "hop=127.0.0.1" in show and "451 4.3.0 try later" in show
    sj = g.spoolctl_json("show", qid)
    assert sj["held"] is False and sj["issue"]["id"] >= 1
    assert sj["recipients"][0]["attempts_log"][0]["msg"] == "451 4.3.0 try later"
    body = g.spoolctl_json("show", qid, "--body")["body"]
    assert "hello" in body and "Subject: test" in body

    # the receiver is fixed: retry makes it due now and wakes deliverd
    mx.rules[SLOW] = ["250 2.1.5 Ok"]
    out = g.spoolctl("retry", qid).stdout
    assert "%s: 1 recipient due now" % qid in out
    g.wait_events(lambda e: e.get("to") == SLOW and e["event"] == "delivered",
                  timeout=15, what="delivered after retry")
    mx.wait_received(1, rcpt=SLOW)
    smtpgate.wait_for(lambda: g.spoolctl_json("queue") == [], 10, what="empty queue")
    assert "queue is empty" in g.spoolctl("queue").stdout
    log = [(e["to"], e["event"]) for e in g.spoolctl_json("show", qid)["events"]]
    assert log == [(SLOW, "deferred"), (SLOW, "delivered")]


def test_hold_keeps_it_until_release(live, mx):
    g = live
    qid = deferred(g, mx)
    assert "%s: held" % qid in g.spoolctl("hold", qid).stdout
    assert g.spoolctl_json("queue")[0]["held"] is True
    assert g.spoolctl_json("show", qid)["held"] is True
    assert [m["qid"] for m in g.spoolctl_json("queue", "--state", "held")] == [qid]
    assert "already held" in g.spoolctl("hold", qid).stdout

    mx.rules[SLOW] = ["250 2.1.5 Ok"]
    assert "0 recipients of 0 messages" in g.spoolctl("retry", "--all").stdout
    assert "held, not retried" in g.spoolctl("retry", qid).stdout
    time.sleep(2)       # deliverd had every chance to (wrongly) send it
    assert mx.received(SLOW) == []
    assert not [e for e in g.events() if e.get("to") == SLOW and e["event"] == "delivered"]

    out = g.spoolctl("release", qid).stdout
    assert "%s: released" % qid in out
    g.wait_events(lambda e: e.get("to") == SLOW and e["event"] == "delivered",
                  timeout=15, what="delivered after release")


def test_delete_bounces_admin_and_removes(live, mx):
    g = live
    qid = deferred(g, mx)
    out = g.spoolctl("delete", qid).stdout
    assert "%s: deleted, 1 pending recipient bounced (admin)" % qid in out
    ev = g.wait_events(lambda e: e.get("queue_id") == qid and e["event"] == "bounced",
                       timeout=5, what="admin bounce event")[0]
    assert ev["class"] == "admin" and ev["to"] == SLOW and ev["account"] == "acc"
    assert qid not in g.files("queue")
    assert g.spoolctl_json("queue") == []
    # gone from the queue, but its history is still there
    shown = g.spoolctl_json("show", qid)
    assert shown["state"] == "removed" and shown["held"] is False
    assert [(e["event"], e.get("class")) for e in shown["events"]] == \
        [("deferred", None), ("bounced", "admin")]
    assert "removed from the queue" in g.spoolctl("show", qid).stdout
    b = g.spoolctl_json("bounces", "--last", "1")
    assert b[0]["to"] == SLOW and b[0]["class"] == "admin"
    # deliverd keeps running fine afterwards
    mx.rules.pop(SLOW, None)
    smtpgate.smtp_send(g, ["after@example.net"], noop=True, timeout=15)
    g.wait_events(lambda e: e.get("to") == "after@example.net" and
                  e["event"] == "delivered", timeout=20, what="next message")


def test_retry_domain_and_sendmail_style_all(live, mx):
    g = live
    q1 = deferred(g, mx, "a@slow.example")
    q2 = deferred(g, mx, "b@other.example")
    mx.rules["a@slow.example"] = ["250 2.1.5 Ok"]
    out = g.spoolctl("retry", "--domain", "slow.example").stdout
    assert q1 in out and q2 not in out and "retry: 1 recipient of 1 message" in out
    g.wait_events(lambda e: e.get("to") == "a@slow.example" and e["event"] == "delivered",
                  timeout=15, what="delivered a@slow.example")
    assert [m["qid"] for m in g.spoolctl_json("queue")] == [q2]


@pytest.fixture
def g():
    gw = smtpgate.Gateway(tls=False, port_tls="none")
    gw.add_account("one", password="pw1")
    yield gw
    gw.close()


def test_unknown_qids(g):
    for cmd in ("show", "retry", "hold", "release", "delete"):
        err = smtpgate.one_line_error(ctl(g, cmd, "0123456789ABCDEF0123"), 1)
        assert "no message 0123456789ABCDEF0123" in err
        smtpgate.one_line_error(ctl(g, cmd, "nonsense"), 1)
        smtpgate.one_line_error(ctl(g, cmd), 2)
    # several QIDs: the good ones are handled, the status still says 1
    qid = gen(g, "-n", 1, "-a", "one", "-s", "deferred")[0]
    r = ctl(g, "hold", "0123456789ABCDEF0123", qid)
    assert r.returncode == 1 and "%s: held" % qid in r.stdout
    smtpgate.one_line_error(ctl(g, "queue", "--state", "weird"), 2)
    smtpgate.one_line_error(ctl(g, "queue", "--older-than", "soon"), 2)
    smtpgate.one_line_error(ctl(g, "retry", "--bogus"), 2)


def test_queue_filters_and_body_without_daemons(g):
    g.add_account("two", password="pw2")
    a = gen(g, "-n", 3, "-r", 4, "-a", "one", "-f", "-e", "-i", "spring")
    b = gen(g, "-n", 2, "-a", "two", "-s", "deferred", "-d", "other.example", "-t", 7200)
    done = gen(g, "-n", 1, "-a", "two", "-s", "delivered")
    q = g.spoolctl_json("queue")
    assert [m["qid"] for m in q] == a + b                       # arrival order, no done
    assert [m["state"] for m in q[:3]] == ["deferred"] * 3
    assert [r["state"] for r in q[0]["recipients"]] == ["queued", "deferred",
                                                         "delivered", "bounced"]
    assert [m["qid"] for m in g.spoolctl_json("queue", "--account", "two")] == b
    assert [m["qid"] for m in g.spoolctl_json("queue", "--domain", "other.example")] == b
    assert [m["qid"] for m in g.spoolctl_json("queue", "--older-than", "1h")] == b
    assert [m["qid"] for m in g.spoolctl_json("queue", "--state", "done")] == done
    issue = q[0]["issue"]
    assert [m["qid"] for m in g.spoolctl_json("queue", "--issue", str(issue))] == a
    assert g.spoolctl_json("queue", "--state", "queued") == []
    last = g.spoolctl("queue").stdout.strip().splitlines()[-1]
    assert last.startswith("-- 5 messages") and "14 recipients" in last

    show = g.spoolctl("show", a[0], "--body").stdout
    assert "X-Letter-Id: L0" in show and "issue: %d (" % issue in show
    assert "body of %s" % a[0] in show and "gate.uniq: L0" in show
    assert "bounced/remote" in show

    out = g.spoolctl("retry", "--all").stdout
    assert out.splitlines()[-1] == "retry: 8 recipients of 5 messages due now"
    now = time.time()
    for m in g.spoolctl_json("queue"):
        for r in m["recipients"]:
            if r["state"] in ("queued", "deferred"):
                t = time.mktime(time.strptime(r["next"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
                assert t <= now + 1

    out = g.spoolctl("delete", a[1]).stdout
    assert "2 pending recipients bounced (admin)" in out
    assert a[1] not in g.files("queue")
    admin = [e for e in g.events() if e.get("class") == "admin"]
    assert sorted(e["to"] for e in admin) == ["rcpt1.0@example.net", "rcpt1.1@example.net"]


def test_delete_unfiled_incoming(g):
    os.makedirs(os.path.join(g.spool, "incoming", "new"), exist_ok=True)
    g.spoolctl("queue")
    qid = "6616DD0000000000ABCD"
    with open(os.path.join(g.spool, "incoming", "new", qid), "w") as f:
        f.write("SMTPGATE 1\n\n")
    out = g.spoolctl("delete", qid).stdout
    assert "deleted from incoming/new" in out
    assert qid not in g.files("new")
