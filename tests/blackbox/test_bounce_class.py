"""Bounce classification (issue 15, item 1), black-box: an aiosmtpd next
hop rejects with real-world replies at RCPT and after DATA; every deferred
and bounced event carries the category the shipped contrib/bounce-rules
gives; `spoolctl bounces|issues --category` and the stat.uni query filter
by it; an unreachable next hop is "no-answer" and then "expired"; the
worker's stage decides between rules that differ only in stage; a bad rule
file is fatal at start and keeps the old rules on SIGHUP.
"""
import json
import os
import signal
import subprocess

import pytest

import chaos
import peers
import smtpgate

SRCDIR = os.environ.get("SMTPGATE_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED = os.path.join(SRCDIR, "contrib", "bounce-rules")

REPLIES = {
    "gone@example.net": ("550 5.1.1 <gone@example.net>: Recipient address rejected: "
                         "User unknown in local recipient table", "bad-mailbox"),
    "gone2@example.net": ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
                          "gone2@example.net not found by SMTP address lookup",
                          "bad-mailbox"),
    "spam@example.net": ("550 5.7.1 This message is likely unsolicited email. To reduce "
                         "the amount of spam sent to Gmail, this message has been "
                         "blocked. - gsmtp", "spam"),
    "relay@example.net": ("554 5.7.1 <relay@example.net>: Relay access denied",
                          "relaying-denied"),
    "gone3@example.net": ("550 5.2.1 The email account that you tried to reach is "
                          "inactive. - gsmtp", "inactive-mailbox"),
    "full@example.net": ("452 4.2.2 The recipient's inbox is out of storage space. - gsmtp",
                         "quota"),
}


def rules_file(g, text, name="rules"):
    path = os.path.join(g.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def live():
    mx = peers.Mx().start()
    try:
        g = smtpgate.relaying_gateway(mx.port, bounce_rules_file=SHIPPED)
    except BaseException:
        mx.stop()
        raise
    try:
        yield g, mx
    finally:
        g.close()
        mx.stop()


def wait_log(g, pred, timeout=30, what="events"):
    """Waits until pred(all events so far) holds; returns the events."""
    return smtpgate.wait_for(lambda: (lambda ev: ev if pred(ev) else None)(g.events()),
                             timeout, what=what)


def by_to(events, kind):
    return {e["to"]: e for e in events if e["event"] == kind}


def test_events_carry_category_and_filters(live):
    g, mx = live
    for addr, (reply, _) in REPLIES.items():
        mx.rules[addr] = [reply]
    rcpts = sorted(REPLIES) + ["ok@example.net"]
    smtpgate.smtp_send(g, rcpts, headers={"X-Campaign-Id": "classify"})
    ev = wait_log(g, lambda ev: len([e for e in ev if e["event"] in
                                       ("bounced", "deferred", "delivered")]) >= len(rcpts),
                       what="one outcome per recipient")
    bounced, deferred = by_to(ev, "bounced"), by_to(ev, "deferred")
    for addr, (_, cat) in REPLIES.items():
        e = deferred[addr] if addr == "full@example.net" else bounced[addr]
        assert e.get("category") == cat, (addr, e)
    delivered = by_to(ev, "delivered")["ok@example.net"]
    assert "category" not in delivered, delivered

    # the recipient record keeps the last failure's category (spoolctl show)
    shown = g.spoolctl_json("show", delivered["queue_id"])
    rc = {r["to"]: r for r in shown["recipients"]}
    assert rc["full@example.net"]["category"] == "quota", rc
    assert rc["gone@example.net"]["category"] == "bad-mailbox", rc
    assert rc["ok@example.net"]["category"] is None, rc
    assert "(quota)" in g.spoolctl("show", delivered["queue_id"]).stdout
    # and deliverd's log line says it
    assert "to=<gone@example.net>, relay=" in g.log("deliverd") and \
        ", category=bad-mailbox, status=bounced (550 5.1.1" in g.log("deliverd")

    # bounces --category: only those, JSON and text
    b = g.spoolctl_json("bounces", "--category", "bad-mailbox")
    assert sorted(x["to"] for x in b) == ["gone2@example.net", "gone@example.net"], b
    assert all(x["category"] == "bad-mailbox" for x in b), b
    text = g.spoolctl("bounces", "--category", "spam").stdout
    assert "spam@example.net" in text and "gone@example.net" not in text, text
    assert "by category: spam=1" in text, text
    text = g.spoolctl("bounces").stdout
    assert "bad-mailbox=2" in text and "relaying-denied=1" in text, text
    r = g.spoolctl("bounces", "--category", "nosuch", check=False)
    assert r.returncode == 2 and "not a category" in r.stderr, r
    assert g.spoolctl("bounces", "--category", "virus").stdout == \
        "no bounces of category virus\n"

    # issues: counts per category; --category keeps issues that have some
    issues = g.spoolctl_json("issues", "--account", "acc")
    assert len(issues) == 1, issues
    cats = issues[0]["bounced_by_category"]
    assert cats["bad-mailbox"] == 2 and cats["spam"] == 1 and \
        cats["relaying-denied"] == 1 and cats["inactive-mailbox"] == 1 and \
        cats["quota"] == 0 and cats["virus"] == 0, cats
    assert issues[0]["bounced"]["remote"] == 5, issues   # the old counters stay
    assert len(g.spoolctl_json("issues", "--category", "spam")) == 1
    assert g.spoolctl_json("issues", "--category", "virus") == []
    assert "bad-mailbox=2" in g.spoolctl("issues").stdout

    # the stat.uni query: delivstream.category as a filter and a column
    req = {"action": "stat.uni", "select": ["delivstream.to", "delivstream.category"],
           "filter": [{"a": "delivstream.category", "op": "==", "v": "bad-mailbox"}],
           "order": ["delivstream.to"]}
    rows = json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)["list"]
    assert rows == [["gone2@example.net", "bad-mailbox"],
                    ["gone@example.net", "bad-mailbox"]], rows
    req["filter"][0]["v"] = "nosuch"
    r = g.spoolctl("query", input=json.dumps(req), check=False)
    assert r.returncode == 2 and "not a category" in r.stderr, r


def test_stage_decides(live):
    """Rules that differ only in stage: a reply at RCPT and the same reply
    after DATA get different categories, so the worker reports the stage."""
    g, mx = live
    path = rules_file(g, 'policy stage=rcpt text="custom-reject"\n'
                         'virus  stage=data text="custom-reject"\n')
    g.conf["bounce_rules_file"] = path
    g.write_conf()
    os.kill(g.pid("deliverd"), signal.SIGHUP)
    smtpgate.wait_for(lambda: "bounce rules: loaded %s" % path in g.log("deliverd"),
                      15, what="rules reloaded")
    mx.rules["r@example.net"] = ["550 5.7.0 custom-reject"]
    smtpgate.smtp_send(g, ["r@example.net"])
    wait_log(g, lambda ev: "r@example.net" in by_to(ev, "bounced"), what="rcpt bounce")
    mx.data_reply = "550 5.7.0 custom-reject"
    smtpgate.smtp_send(g, ["d@example.net"])
    ev = wait_log(g, lambda ev: "d@example.net" in by_to(ev, "bounced"),
                       what="data bounce")
    assert by_to(ev, "bounced")["r@example.net"]["category"] == "policy"
    assert by_to(ev, "bounced")["d@example.net"]["category"] == "virus"


def _greet_then_helo(c, srv):
    """First connection: a 5xx greeting; later ones: 5xx to EHLO and HELO."""
    if srv.conns == 1:
        c.sendall(b"554 5.7.1 zz-stage: no service for you\r\n")
    else:
        c.sendall(b"220 hostile.test ESMTP\r\n")
        for _ in range(2):
            if chaos.read_line(c) is None:
                return
            c.sendall(b"550 5.7.1 zz-stage: go away\r\n")
    chaos.read_line(c)      # QUIT
    c.sendall(b"221 bye\r\n")


def test_greeting_and_helo_stages(tmp_path):
    """The same reply text gets the category its stage's rule names: the
    session-level stages are reported too. A 5xx greeting or HELO is a
    deferral (the next MX may talk; suppression is never the answer), so
    the categories come on deferred events."""
    path = tmp_path / "rules"
    path.write_text('virus stage=greeting text="zz-stage"\n'
                    'spam  stage=helo text="zz-stage"\n'
                    'quota stage=rcpt,data,mail text="zz-stage"\n')
    with chaos.HostileServer(_greet_then_helo) as srv:
        g = smtpgate.relaying_gateway(srv.port, bounce_rules_file=str(path))
        try:
            smtpgate.smtp_send(g, ["one@example.net"])
            wait_log(g, lambda ev: "one@example.net" in by_to(ev, "deferred"),
                     what="greeting deferral")
            smtpgate.smtp_send(g, ["two@example.net"])
            ev = wait_log(g, lambda ev: "two@example.net" in by_to(ev, "deferred"),
                          what="helo deferral")
            assert by_to(ev, "deferred")["one@example.net"]["category"] == "virus"
            assert by_to(ev, "deferred")["two@example.net"]["category"] == "spam"
        finally:
            g.close()


def test_sighup_bad_rules_keep_old(live):
    g, mx = live
    path = rules_file(g, 'spam text="custom-one"\n')
    g.conf["bounce_rules_file"] = path
    g.write_conf()
    os.kill(g.pid("deliverd"), signal.SIGHUP)
    smtpgate.wait_for(lambda: "bounce rules: loaded %s" % path in g.log("deliverd"),
                      15, what="rules reloaded")
    rules_file(g, 'spam text="custom-one"\nnosuchcategory text="x"\n')
    os.kill(g.pid("deliverd"), signal.SIGHUP)
    line = smtpgate.wait_for(
        lambda: [l for l in g.log("deliverd").splitlines() if "keeping the old rules" in l],
        15, what="the refusal")
    assert "%s:2: unknown category" % path in line[0], line
    mx.rules["x@example.net"] = ["550 5.7.0 custom-one"]
    smtpgate.smtp_send(g, ["x@example.net"])
    ev = wait_log(g, lambda ev: "x@example.net" in by_to(ev, "bounced"), what="bounce")
    assert by_to(ev, "bounced")["x@example.net"]["category"] == "spam"


def test_bad_rules_at_start_fatal(tmp_path):
    g = smtpgate.Gateway(tls=False, port_tls="none")
    try:
        path = rules_file(g, 'spam regex="(unclosed"\n')
        g.conf["bounce_rules_file"] = path
        g.write_conf()
        r = subprocess.run([smtpgate.binary("deliverd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r
        assert "bounce_rules_file: %s:1: regex:" % path in r.stderr, r.stderr
        g.conf["bounce_rules_file"] = os.path.join(g.dir, "missing")
        g.write_conf()
        r = subprocess.run([smtpgate.binary("deliverd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "missing: No such file" in r.stderr, r.stderr
    finally:
        g.close()


def test_no_answer_then_expired():
    """No SMTP reply at all: deferred "no-answer", then past
    max_queue_lifetime the bounce is "expired"."""
    dead = smtpgate.free_port()
    g = smtpgate.relaying_gateway(dead, bounce_rules_file=SHIPPED,
                                  retry_schedule="1s", max_queue_lifetime="4s")
    try:
        smtpgate.smtp_send(g, ["nobody@example.net"])
        ev = wait_log(g, lambda ev: by_to(ev, "bounced"), timeout=40,
                           what="the expiry bounce")
        deferred = [e for e in ev if e["event"] == "deferred"]
        assert deferred and all(e["category"] == "no-answer" for e in deferred), deferred
        b = by_to(ev, "bounced")["nobody@example.net"]
        assert b["class"] == "expired" and b["category"] == "expired", b
    finally:
        g.close()
