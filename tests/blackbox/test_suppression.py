"""Suppression that is right and controllable (issue 15, item 2).

Only a recipient-level permanent failure from the next hop (bad-mailbox,
bad-domain, inactive-mailbox at RCPT or end of data) puts an address on the
account's suppression list, after which spoold refuses it at filing with the
seed's `550 5.0.0 Email has permanent delivery errors`. A 5xx greeting or
EHLO/HELO makes deliverd try the next MX host and, when none talks, defer;
a refused sender, a content rejection and a relay's "relay access denied"
bounce that message and suppress nothing. Entries carry reason, date,
reply and queue id, `spoolctl suppression ...` manages them, and they
expire after suppression_ttl (spoold's pruning under a stepped clock).
Real binaries on 127.0.0.x, aiosmtpd and raw-socket next hops, dnsmasq for
the MX records; every wait bounded.
"""
import json
import os
import smtplib
import subprocess

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, smtp_send, wait_for

PERMFAIL = "550 5.0.0 Email has permanent delivery errors"
DAY = 86400


def supp(g, *args, **kw):
    return g.spoolctl("suppression", *args, **kw)


def supp_json(g, *args):
    return json.loads(supp(g, *args, "--json").stdout)


def first_event(g, to, kind, n=1):
    """The n-th event of kind for to (waits for it)."""
    return wait_for(
        lambda: (lambda l: l[n - 1] if len(l) >= n else None)(
            [e for e in g.events() if e["to"] == to and e["event"] == kind]),
        30, what="%s event %d for %s" % (kind, n, to))


def refuse_greeting(c, srv):
    """A next hop that greets with 554 (a DNSBL listing) and says nothing else."""
    c.sendall(b"554 5.7.1 Service unavailable; client host blocked using zen.example\r\n")
    while (line := chaos.read_line(c)) is not None:
        if line.upper().startswith(b"QUIT"):
            c.sendall(b"221 2.0.0 Bye\r\n")
            return
        c.sendall(b"503 5.5.1 Go away\r\n")


def refuse_helo(c, srv):
    """A next hop that greets, then refuses EHLO and HELO."""
    c.sendall(b"220 mx.test ESMTP\r\n")
    while (line := chaos.read_line(c)) is not None:
        if line.upper().startswith(b"QUIT"):
            c.sendall(b"221 2.0.0 Bye\r\n")
            return
        c.sendall(b"550 5.7.1 Access denied for your network\r\n")


# ---------------------------------------------------------------- greeting

def test_greeting_5xx_tries_next_mx_then_defers(tmp_path):
    """a.test: MX 10 greets with 554, MX 20 takes the mail. b.test: MX 10
    greets with 554, MX 20 refuses EHLO and HELO with 550: deferred (4xx,
    naming the refusing host and its reply), never bounced, and neither
    address is suppressed; w@nx.test (NXDOMAIN, bad-domain) is (at once
    with nxdomain_confirm = 0: test_nxdomain.py has the default)."""
    port = smtpgate.free_port()
    bad = chaos.HostileServer(refuse_greeting, host="127.0.0.2", port=port).start()
    noh = chaos.HostileServer(refuse_helo, host="127.0.0.4", port=port).start()
    good = peers.Mx(host="127.0.0.3", port=port).start()
    records = [peers.Dns.mx("a.test", "mx1.a.test", 10), peers.Dns.mx("a.test", "mx2.a.test", 20),
               peers.Dns.a("mx1.a.test", "127.0.0.2"), peers.Dns.a("mx2.a.test", "127.0.0.3"),
               peers.Dns.mx("b.test", "mx1.b.test", 10), peers.Dns.mx("b.test", "mx2.b.test", 20),
               peers.Dns.a("mx1.b.test", "127.0.0.2"), peers.Dns.a("mx2.b.test", "127.0.0.4")]
    try:
        with peers.Dns(records, workdir=str(tmp_path)) as dns, Gateway(
                tls=False, port_tls="none",
                extra={"dns_server": dns.server, "remote_port": str(port),
                       "retry_schedule": "1h", "nxdomain_confirm": "0"}) as g:
            g.add_account("acc", ips=["127.0.0.1/32"])
            g.start()
            smtp_send(g, ["u@a.test"])
            smtp_send(g, ["v@b.test"])
            smtp_send(g, ["w@nx.test"])
            ev = first_event(g, "u@a.test", "delivered")
            assert "127.0.0.3" in ev["hop"], ev
            assert len(good.received("u@a.test")) == 1
            ev = first_event(g, "v@b.test", "deferred")
            assert ev["msg"].startswith("4"), ev
            assert "refused to talk to me" in ev["msg"] and "550 5.7.1 Access denied" in ev["msg"], ev
            assert bad.conns >= 2 and noh.conns >= 1
            log = g.log("deliverd")
            assert "mx1.a.test[127.0.0.2]" in log and "554 5.7.1 Service unavailable" in log
            # only the recipient-level failure bounced and is suppressed
            ev = first_event(g, "w@nx.test", "bounced")
            assert [e["to"] for e in g.events() if e["event"] == "bounced"] == ["w@nx.test"]
            e, = supp_json(g, "list")
            assert (e["address"], e["reason"]) == ("w@nx.test", "bad-domain"), e
            assert e["reply"] == ev["msg"] and "NXDOMAIN" in e["reply"]
            # the next message to either address is filed and tried again
            smtp_send(g, ["u@a.test"])
            first_event(g, "u@a.test", "delivered", 2)
    finally:
        for s in (bad, noh, good):
            s.stop()


# ---------------------------------------------------------------- recipient

def test_bad_mailbox_is_suppressed_then_refused_at_filing():
    """550 5.1.1 at RCPT: bounced (remote), the address is on the account's
    list with reason bad-mailbox, the reply, the queue id and the date; the
    next message to it is refused at filing with the seed's text and never
    reaches the next hop; other accounts are not affected."""
    mx = peers.Mx().start()
    mx.rules["gone@dest.test"] = ["550 5.1.1 <gone@dest.test>: Recipient address "
                                  "rejected: User unknown in virtual mailbox table"]
    g = smtpgate.relaying_gateway(mx.port)
    try:
        g.add_account("other", ips=["127.0.0.2/32"])
        smtp_send(g, ["gone@dest.test"])
        ev = first_event(g, "gone@dest.test", "bounced")
        assert ev["class"] == "remote" and ev["msg"].startswith("550 5.1.1"), ev
        wait_for(lambda: "suppressed for account acc" in g.log("deliverd"), 10,
                 what="the suppression log line")
        e, = supp_json(g, "show", "gone@dest.test")
        assert e["account"] == "acc" and e["address"] == "gone@dest.test"
        assert e["reason"] == "bad-mailbox" and e["queue_id"] == ev["queue_id"]
        assert e["reply"] == ev["msg"] and e["date"][:10] == ev["dt"][:10]
        assert e["issue"] == ev["issue"]["id"]
        assert supp_json(g, "list", "--account", "acc") == [e]
        smtp_send(g, ["gone@dest.test"])
        ev2 = first_event(g, "gone@dest.test", "bounced", 2)
        assert ev2["class"] == "policy" and ev2["msg"] == PERMFAIL, ev2
        assert mx.attempts["gone@dest.test"] == 1
        # another account's mail to it still goes out (and is refused there)
        assert supp(g, "show", "gone@dest.test", "--account", "other",
                    check=False).returncode == 1
        conn = smtplib.SMTP("127.0.0.1", g.port, source_address=("127.0.0.2", 0), timeout=30)
        smtp_send(g, ["gone@dest.test"], conn=conn)
        conn.quit()
        ev3 = first_event(g, "gone@dest.test", "bounced", 3)
        assert ev3["class"] == "remote" and ev3["account"] == "other", ev3
        assert mx.attempts["gone@dest.test"] == 2
    finally:
        g.close()
        mx.stop()


# ---------------------------------------------------------------- not recipient

def test_content_sender_and_relay_rejections_do_not_suppress():
    """550 5.7.1 spam at end of data, 553 to MAIL FROM and a relayhost's
    own 554 relay access denied at RCPT: each bounces its message (class
    remote, its category), none suppresses, and the next message to the
    same addresses is filed and tried again."""
    mx = peers.Mx().start()
    mx.data_reply = lambda env: ("550 5.7.1 Message rejected as spam by content filter"
                                 if "spam@dest.test" in env.rcpt_tos else "250 2.0.0 Ok")
    mx.mail_reply = lambda a: ("553 5.7.1 <%s>: Sender address rejected: not owned" % a
                               if a.startswith("badfrom") else None)
    mx.rules["denied@dest.test"] = ["554 5.7.1 <denied@dest.test>: Relay access denied"]
    g = smtpgate.relaying_gateway(mx.port)
    try:
        evs = {}
        for rnd in (1, 2):
            smtp_send(g, ["spam@dest.test"])
            smtp_send(g, ["rcpt@dest.test"], envfrom="badfrom@example.com")
            smtp_send(g, ["denied@dest.test"])
            evs[rnd] = [first_event(g, to, "bounced", rnd) for to in
                        ("spam@dest.test", "rcpt@dest.test", "denied@dest.test")]
        # the second round was not refused at filing: the next hop saw it again
        assert not [e for e in g.events() if e.get("class") == "policy"]
        assert mx.attempts["denied@dest.test"] == 2
        for rnd in (1, 2):
            for ev, code in zip(evs[rnd], ("550 5.7.1", "553 5.7.1", "554 5.7.1")):
                assert ev["class"] == "remote" and ev["msg"].startswith(code), ev
        assert [e.get("category") for e in evs[2]][::2] == ["spam", "relaying-denied"], evs
        assert supp_json(g, "list") == []
        assert "suppressed" not in g.log("deliverd")
    finally:
        g.close()
        mx.stop()


# ---------------------------------------------------------------- commands

def test_suppression_commands():
    """add (one, from stdin, --reason), list (--account, --limit, --after,
    --json), show, export (JSON lines), del (one account, every account),
    the exit codes; a manual entry refuses at filing, del lets mail out."""
    mx = peers.Mx().start()
    g = smtpgate.relaying_gateway(mx.port)
    try:
        g.add_account("b2", ips=["127.0.0.2/32"])
        out = supp(g, "add", "Man@Dest.test", "--account", "acc").stdout
        assert "added Man@Dest.test (manual)" in out
        supp(g, "add", "x@dest.test", "--account", "b2", "--reason", "inactive-mailbox")
        supp(g, "add", "-", "--account", "b2", input="# list\ny@dest.test\n\nz@dest.test\n")
        supp(g, "add", "x@dest.test", "--account", "acc")
        assert supp(g, "add", "w@dest.test", "--account", "acc", "--reason", "whatever",
                    check=False).returncode == 2
        assert supp(g, "add", "w@dest.test", check=False).returncode == 2
        assert supp(g, "add", "not-an-address", "--account", "acc", check=False).returncode == 2
        assert supp(g, "add", "w@dest.test", "--account", "nobody", check=False).returncode == 1
        lst = supp_json(g, "list")
        assert [(e["account"], e["address"], e["reason"]) for e in lst] == [
            ("acc", "man@dest.test", "manual"), ("acc", "x@dest.test", "manual"),
            ("b2", "x@dest.test", "inactive-mailbox"), ("b2", "y@dest.test", "manual"),
            ("b2", "z@dest.test", "manual")]
        assert all(e["queue_id"] is None and e["reply"] is None and e["date"] < e["expires"]
                   for e in lst)
        assert [e["address"] for e in supp_json(g, "list", "--account", "b2")] == \
            ["x@dest.test", "y@dest.test", "z@dest.test"]
        r = g.spoolctl("suppression", "list", "--limit", "2")
        assert len(r.stdout.splitlines()) == 2 and "--limit 0" in r.stderr
        page = supp_json(g, "list", "--account", "b2", "--after", "x@dest.test", "--limit", "1")
        assert [e["address"] for e in page] == ["y@dest.test"]
        text = supp(g, "list").stdout.splitlines()
        assert text[0].split()[:2] == ["acc", "man@dest.test"] and text[0].split()[3] == "manual"
        exp = [json.loads(l) for l in supp(g, "export", "--account", "b2").stdout.splitlines()]
        assert exp == supp_json(g, "list", "--account", "b2")
        assert len(supp(g, "export").stdout.splitlines()) == 5
        shown = supp_json(g, "show", "x@dest.test")
        assert sorted(e["account"] for e in shown) == ["acc", "b2"]
        assert "reason: inactive-mailbox" in supp(g, "show", "x@dest.test", "--account", "b2").stdout
        assert supp(g, "show", "nobody@dest.test", check=False).returncode == 1
        # a manual entry refuses at filing, like one deliverd added
        smtp_send(g, ["man@dest.test"])
        ev = first_event(g, "man@dest.test", "bounced")
        assert ev["class"] == "policy" and ev["msg"] == PERMFAIL, ev
        assert "man@dest.test" not in mx.attempts
        # del: one account, then every account
        assert "from 1 account" in supp(g, "del", "MAN@dest.test", "--account", "acc").stdout
        assert supp(g, "del", "man@dest.test", check=False).returncode == 1
        assert supp_json(g, "del", "x@dest.test") == {"address": "x@dest.test",
                                                       "accounts": ["acc", "b2"]}
        assert [e["address"] for e in supp_json(g, "list")] == ["y@dest.test", "z@dest.test"]
        smtp_send(g, ["man@dest.test"])
        first_event(g, "man@dest.test", "delivered")
        # deleting an account deletes its suppressions
        g.spoolctl("account", "del", "b2")
        assert supp_json(g, "list") == []
        assert "suppression list" in g.spoolctl("help").stdout
    finally:
        g.close()
        mx.stop()


# ---------------------------------------------------------------- TTL

def test_entries_expire_after_suppression_ttl():
    """suppression_ttl = 1d: an entry deliverd added (550 5.1.1) and a
    manual one stay while spoold's clock is on time; two days later
    (libfaketime, spoold only) spoold's pruning removes both while an
    entry added at the stepped time stays, and the address is filed and
    delivered again."""
    if not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    mx = peers.Mx().start()
    mx.rules["gone@dest.test"] = ["550 5.1.1 No such user", "250 2.1.5 Ok"]
    g = smtpgate.relaying_gateway(mx.port, suppression_ttl="1d", prune_interval="1s")
    try:
        smtp_send(g, ["gone@dest.test"])
        first_event(g, "gone@dest.test", "bounced")
        supp(g, "add", "old@dest.test", "--account", "acc")
        assert {e["address"] for e in supp_json(g, "list")} == {"gone@dest.test", "old@dest.test"}
        g.stop("spoold")
        tsfile, fake = smtpgate.start_faketime(g, "spoold")
        wait_for(lambda: "prune: events=" in g.log("spoold"), 15, what="a pruning pass")
        assert len(supp_json(g, "list")) == 2
        with open(tsfile, "w") as f:
            f.write("+%d\n" % (2 * DAY))
        r = subprocess.run([smtpgate.binary("spoolctl"), "-c", g.conf_path, "suppression",
                            "add", "new@dest.test", "--account", "acc"],
                           env=dict(os.environ, **fake), capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        left = wait_for(lambda: (lambda l: l if len(l) == 1 else None)(supp_json(g, "list")),
                        30, what="the two old entries pruned")
        assert left[0]["address"] == "new@dest.test"
        assert "suppressions=2," in g.log("spoold")
        # filed again (dated by spoold's stepped clock: made due now)
        smtp_send(g, ["gone@dest.test"])
        wait_for(lambda: any(r["to"] == "gone@dest.test" for m in g.spoolctl_json("queue")
                             for r in m["recipients"]), 20, what="filed again")
        g.spoolctl("retry", "--all")
        first_event(g, "gone@dest.test", "delivered")
        assert not [e for e in g.events() if e.get("class") == "policy"]
    finally:
        g.close()
        mx.stop()


def test_expired_entry_no_longer_refuses_before_pruning():
    """An entry older than suppression_ttl (backdated with spoold-seed
    after spoold's first pruning pass; the next pass is a day away) no
    longer refuses at filing although it is still listed."""
    mx = peers.Mx().start()
    g = smtpgate.relaying_gateway(mx.port, suppression_ttl="1d", prune_interval="1d")
    try:
        wait_for(lambda: "prune: events=" in g.log("spoold"), 15, what="the first pruning pass")
        seed = [os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoold-seed"),
                "-c", g.conf_path, "permfail", "acc"]
        subprocess.run(seed + ["old@dest.test", str(2 * DAY)], check=True, timeout=30)
        subprocess.run(seed + ["young@dest.test", str(DAY // 2)], check=True, timeout=30)
        assert {e["address"] for e in supp_json(g, "list")} == {"old@dest.test",
                                                                "young@dest.test"}
        smtp_send(g, ["old@dest.test"])
        smtp_send(g, ["young@dest.test"])
        first_event(g, "old@dest.test", "delivered")
        ev = first_event(g, "young@dest.test", "bounced")
        assert ev["class"] == "policy" and ev["msg"] == PERMFAIL, ev
        assert len(supp_json(g, "list")) == 2
    finally:
        g.close()
        mx.stop()
