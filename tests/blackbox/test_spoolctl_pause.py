"""spoolctl pause|resume --domain D [--account A] (issue 15 item 7): mail to
a paused domain waits without attempts (no attempt counted, no event),
does not hold up other mail however much of it is due first, still
expires at max_queue_lifetime, and goes out at once on resume."""
import time

import pytest

import peers
import smtpgate
from smtpgate import inject, put_msg, put_one


@pytest.fixture
def mx():
    m = peers.Mx().start()
    yield m
    m.stop()


def gateway(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h",
            "deliverd_workers": "2"}
    conf.update(extra)
    return smtpgate.Gateway(tls=False, extra=conf)


def outcome(g, rcpt, timeout=30):
    return g.wait_events(lambda e: e["to"] == rcpt, timeout=timeout,
                         what="an outcome for %s" % rcpt)[0]


def rcpt_of(g, qid, addr):
    r, = [r for r in g.spoolctl_json("show", qid)["recipients"] if r["to"] == addr]
    return r


def set_aside(g, qid, addr):
    """Not attempted, and due later than now (moved on by deliverd)."""
    r = rcpt_of(g, qid, addr)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return r["attempts"] == 0 and r["next"] is not None and r["next"] > now


def settle(g, mx):
    """A message to an unpaused domain after the paused ones, through to its
    outcome, then one full rescan interval (5 s, deliverd(8)): by then the
    paused ones have been met by at least one scan."""
    rcpt = "probe%d@free.test" % time.monotonic_ns()
    put_one(g, rcpt)
    assert outcome(g, rcpt)["event"] == "delivered"
    time.sleep(6)


def test_pause_holds_a_domain_and_resume_sends_it(mx):
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        r = g.spoolctl("pause", "--domain", "Paused.TEST")
        assert "paused.test: paused" in r.stdout, r.stdout
        assert "already paused" in g.spoolctl("pause", "--domain", "paused.test").stdout
        qid = put_one(g, "a@paused.test")
        settle(g, mx)
        assert [e for e in g.events() if e["to"] == "a@paused.test"] == []
        assert mx.received("a@paused.test") == []
        assert set_aside(g, qid, "a@paused.test"), rcpt_of(g, qid, "a@paused.test")
        assert "paused destinations set aside" in g.log("deliverd")
        listed = g.spoolctl_json("pause")
        assert [(p["domain"], p["account"]) for p in listed] == [("paused.test", None)]
        r = g.spoolctl("resume", "--domain", "paused.test")
        assert "resumed; 1 recipient due now" in r.stdout, r.stdout
        ev = outcome(g, "a@paused.test")
        assert (ev["event"], ev["attempt"]) == ("delivered", 1), ev
        assert g.spoolctl("pause").stdout.strip() == "no pauses"


def test_pause_of_one_account(mx):
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        inject(g, "account", "other")
        g.spoolctl("pause", "--domain", "d.test", "--account", "acc")
        q1 = put_one(g, "mine@d.test", login="acc")
        put_one(g, "theirs@d.test", login="other")
        assert outcome(g, "theirs@d.test")["event"] == "delivered"
        settle(g, mx)
        assert set_aside(g, q1, "mine@d.test"), rcpt_of(g, q1, "mine@d.test")
        assert mx.received("mine@d.test") == []
        out = g.spoolctl("pause").stdout
        assert "d.test" in out and "acc" in out, out
        # the domain-wide resume is not this pause
        r = g.spoolctl("resume", "--domain", "d.test", check=False)
        assert r.returncode == 1 and "not paused" in r.stderr, r
        g.spoolctl("resume", "--domain", "d.test", "--account", "acc")
        ev = outcome(g, "mine@d.test")
        assert (ev["event"], ev["attempt"]) == ("delivered", 1), ev


def test_paused_backlog_does_not_block_other_mail(mx):
    """4,000 paused recipients are due before one other message: more than
    a scan takes (2,000) and than deliverd holds claims for. The other
    message is delivered, the paused ones are set aside, not attempted."""
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        g.spoolctl("pause", "--domain", "slow.test")
        rcpts = ["u%d@slow.test" % i for i in range(500)]
        qids = put_msg(g, "acc", rcpts, count=8, msg=smtpgate.message(to="list@slow.test"))
        t0 = time.monotonic()
        put_one(g, "later@fast.test")
        ev = outcome(g, "later@fast.test", timeout=60)
        assert ev["event"] == "delivered", ev
        print("other mail delivered %.1fs after filing, behind 4000 paused" %
              (time.monotonic() - t0))
        smtpgate.wait_for(lambda: all(set_aside(g, q, a) for q in qids
                                      for a in ("u0@slow.test", "u499@slow.test")),
                          timeout=60, what="every paused recipient set aside")
        assert [e for e in g.events() if e["to"].endswith("@slow.test")] == []
        assert mx.received() and all(m["to"] == ["later@fast.test"] for m in mx.received())
        t0 = time.monotonic()
        r = g.spoolctl("resume", "--domain", "slow.test")
        assert "4000 recipients due now" in r.stdout, r.stdout
        print("resume of 4000 recipients took %.2fs" % (time.monotonic() - t0))
        smtpgate.wait_for(lambda: len([e for e in g.events()
                                       if e["to"].endswith("@slow.test")]) >= 4000,
                          timeout=120, what="4000 outcomes after resume")
        print("4000 delivered %.1fs after resume" % (time.monotonic() - t0))
        slow = [e for e in g.events() if e["to"].endswith("@slow.test")]
        assert all(e["event"] == "delivered" and e["attempt"] == 1 for e in slow)


def test_queue_lifetime_still_applies_while_paused(mx):
    with gateway(mx, max_queue_lifetime="3s") as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        g.spoolctl("pause", "--domain", "gone.test")
        put_one(g, "x@gone.test")
        ev = outcome(g, "x@gone.test", timeout=30)
        assert (ev["event"], ev["class"]) == ("bounced", "expired"), ev
        assert "paused by the operator" in ev["msg"], ev
        assert [e["event"] for e in g.events() if e["to"] == "x@gone.test"] == ["bounced"]
        assert mx.received() == []


def test_pause_usage_errors(mx):
    with gateway(mx) as g:
        inject(g, "account", "acc")
        for args, code in ((["pause", "--account", "acc"], 2),
                           (["resume"], 2),
                           (["pause", "--domain", "bad domain"], 2),
                           (["pause", "--domain", "x.test", "--json"], 2),
                           (["pause", "--domain", "x.test", "--account", "nobody"], 1),
                           (["resume", "--domain", "never.test"], 1)):
            r = g.spoolctl(*args, check=False)
            assert r.returncode == code, (args, r)
            assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
