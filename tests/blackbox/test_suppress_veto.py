"""Suppressions applied by mistake (audit h-asupp), black-box.

A recipient suppressed by mistake loses the account's mail to that person
for good. An aiosmtpd next hop (peers.Mx, the relayhost) answers replies
that look recipient-specific but are not: one end-of-data 5.1.1 for a
message of two recipients (about the message), a 5.1.1 that names the
envelope sender, a 5.7.1 "No such user!", a 5.2.2 mailbox full. Each bounces
its message and suppresses nobody (deliverd logs the veto); a plain 5.1.1
at RCPT and a one-recipient end-of-data "no such account" still suppress.
Every wait is bounded.
"""
import json
import os

import peers
import smtpgate
from smtpgate import smtp_send, wait_for

FROM = "news@acme.example"
SHIPPED = os.path.join(os.environ.get("SMTPGATE_SRCDIR", "."), "contrib", "bounce-rules")


def bounced(g, to, n=1):
    return wait_for(
        lambda: (lambda l: l[n - 1] if len(l) >= n else None)(
            [e for e in g.events() if e["to"] == to and e["event"] == "bounced"]),
        30, what="bounced event %d for %s" % (n, to))


def suppressed(g):
    out = g.spoolctl("suppression", "list", "--json").stdout
    return sorted(e["address"] for e in json.loads(out))


def test_mistaken_suppressions_are_vetoed():
    mx = peers.Mx().start()
    whole = {"a1@dest.test", "a2@dest.test"}

    def data_reply(env):
        if whole & set(env.rcpt_tos):
            return "550 5.1.1 <a1@dest.test>: Recipient address rejected: User unknown"
        if "yahoo1@dest.test" in env.rcpt_tos:
            return ("554 delivery error: dd This user doesn't have a dest.test account "
                    "(yahoo1@dest.test) [-5] - mta1.dest.test")
        return "250 2.0.0 Ok"
    mx.data_reply = data_reply
    mx.rules["named@dest.test"] = ["550 5.1.1 %s: user unknown" % FROM]
    mx.rules["yandex@dest.test"] = ["550 5.7.1 No such user!"]
    mx.rules["full@dest.test"] = ["552 5.2.2 <full@dest.test>: Mailbox full"]
    mx.rules["gone@dest.test"] = ["550 5.1.1 <gone@dest.test>: Recipient address "
                                  "rejected: User unknown in virtual mailbox table"]
    g = smtpgate.relaying_gateway(mx.port, bounce_rules_file=SHIPPED)
    try:
        smtp_send(g, sorted(whole), envfrom=FROM)
        for to in ("named@dest.test", "yandex@dest.test", "full@dest.test",
                   "gone@dest.test", "yahoo1@dest.test"):
            smtp_send(g, [to], envfrom=FROM)
        for to in sorted(whole) + ["named@dest.test", "yandex@dest.test",
                                   "full@dest.test", "gone@dest.test",
                                   "yahoo1@dest.test"]:
            ev = bounced(g, to)
            assert ev["class"] == "remote", ev
        wait_for(lambda: "yahoo1@dest.test" in suppressed(g), 15,
                 what="the one-recipient end-of-data failure suppressed")
        assert suppressed(g) == ["gone@dest.test", "yahoo1@dest.test"]
        log = g.log("deliverd")
        for to in sorted(whole) + ["named@dest.test", "yandex@dest.test"]:
            assert "to=<%s>, not suppressed for account acc" % to in log, log
        assert "veto=end-of-data reply to the whole message" in log
        assert "veto=names the sender or our address" in log
        assert "veto=enhanced code about security or policy" in log
        # the next message to a vetoed address goes out again
        smtp_send(g, ["named@dest.test"], envfrom=FROM)
        bounced(g, "named@dest.test", 2)
        assert mx.attempts["named@dest.test"] == 2
    finally:
        g.close()
        mx.stop()


def test_soft_bounces_until_expiry_do_not_suppress():
    """450 4.1.1 "user unknown" at every attempt until max_queue_lifetime:
    the message bounces (class and category expired) and the address is
    not suppressed: the next message to it is filed and tried again.
    (No fix: deliverd already behaves so; a guard for the audit.)"""
    mx = peers.Mx().start()
    mx.rules["soft@dest.test"] = ["450 4.1.1 <soft@dest.test>: Recipient address "
                                  "rejected: User unknown"]
    g = smtpgate.relaying_gateway(mx.port, bounce_rules_file=SHIPPED,
                                  retry_schedule="1s", max_queue_lifetime="3s")
    try:
        smtp_send(g, ["soft@dest.test"], envfrom=FROM)
        ev = bounced(g, "soft@dest.test")
        assert ev["class"] == "expired" and ev["category"] == "expired", ev
        assert suppressed(g) == []
        n = mx.attempts["soft@dest.test"]
        smtp_send(g, ["soft@dest.test"], envfrom=FROM)
        wait_for(lambda: mx.attempts["soft@dest.test"] > n, 20,
                 what="the next message tried again")
    finally:
        g.close()
        mx.stop()


def send_utf8(g, rcpt):
    import smtplib
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
    try:
        s.ehlo()
        s.sendmail(FROM, [rcpt], smtpgate.message(to="x@example.org"),
                   mail_options=["SMTPUTF8"])
    finally:
        s.quit()


def test_idn_domain_is_looked_up_as_a_labels_and_keys_match(tmp_path):
    """bob@Bücher.test (UTF-8 domain under SMTPUTF8): deliverd looks up
    the MX of xn--bcher-kva.test and delivers; before, it asked DNS for the
    UTF-8 name, got NXDOMAIN, bounced and suppressed a valid address. A
    real 5.1.1 from that MX suppresses gone@bücher.test under its A-label
    key, which refuses the A-label and the upper-case U-label spellings at
    filing, and spoolctl suppression del with the U-label removes it."""
    port = smtpgate.free_port()
    mx = peers.Mx(host="127.0.0.3", port=port).start()
    mx.rules["gone@bücher.test"] = ["550 5.1.1 <gone@bücher.test>: Recipient "
                                    "address rejected: User unknown"]
    records = [peers.Dns.mx("xn--bcher-kva.test", "mx.xn--bcher-kva.test", 10),
               peers.Dns.a("mx.xn--bcher-kva.test", "127.0.0.3")]
    try:
        with peers.Dns(records, workdir=str(tmp_path)) as dns, smtpgate.Gateway(
                tls=False, port_tls="none",
                extra={"dns_server": dns.server, "remote_port": str(port),
                       "retry_schedule": "1h", "allow_next_hop": "127.0.0.0/8",
                       "bounce_rules_file": SHIPPED}) as g:
            g.add_account("acc", ips=["127.0.0.1/32"])
            g.start()
            send_utf8(g, "bob@Bücher.test")
            ev = wait_for(lambda: [e for e in g.events() if e["to"] == "bob@Bücher.test"
                                   and e["event"] in ("delivered", "bounced")], 30,
                          what="the outcome for bob@Bücher.test")[0]
            assert ev["event"] == "delivered", ev
            assert suppressed(g) == []
            send_utf8(g, "gone@bücher.test")
            bounced(g, "gone@bücher.test")
            wait_for(lambda: suppressed(g) == ["gone@xn--bcher-kva.test"], 15,
                     what="the A-label suppression key")
            smtp_send(g, ["gone@XN--BCHER-KVA.test"], envfrom=FROM)
            send_utf8(g, "gone@BÜCHER.test")
            for to in ("gone@XN--BCHER-KVA.test", "gone@BÜCHER.test"):
                ev = bounced(g, to)
                assert ev["class"] == "policy" and "permanent delivery errors" in ev["msg"], ev
            assert mx.attempts["gone@bücher.test"] == 1
            g.spoolctl("suppression", "del", "gone@Bücher.test")
            assert suppressed(g) == []
    finally:
        mx.stop()
