"""452 continuation (issue 15 item 5, RFC 5321 section 4.5.3.1.10): the
recipients a next hop refuses with 452 once it has accepted others in the
same transaction go out in the next transaction at once, on the same
connection, not on the retry schedule. Any other failure ends the cycle."""
import pytest

import peers
import smtpgate
from smtpgate import inject, put_msg

N = 300
LIMIT = 100
MSG = smtpgate.message(to="list@dest.test")     # not 300 addresses on one line


def hop(script=None):
    """The next hop: what peers.Mx (aiosmtpd) offers in EHLO, no PIPELINING."""
    return peers.Hop(script, name="localhost", ehlo=peers.MX_EHLO)


def limit(s, rcpt):
    """RCPT: 452 past LIMIT recipients in the transaction."""
    return "452 4.5.3 Too many recipients" if len(s.rcpts) >= LIMIT else None


@pytest.fixture
def mx():
    with hop({"RCPT": limit}) as m:
        yield m


def gateway(mx):
    return smtpgate.Gateway(tls=False, extra={
        "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h",
        "deliverd_workers": "1"})


def outcomes(g, qid):
    """The events of message qid once there are N (bounded wait)."""
    evs = smtpgate.wait_for(
        lambda: len([e for e in g.events() if e["queue_id"] == qid]) >= N and g.events(),
        timeout=60, what="%d outcomes" % N)
    return [e for e in evs if e["queue_id"] == qid]


def rcpts():
    return ["r%03d@dest.test" % i for i in range(N)]


def test_452_after_100_recipients_all_300_in_one_cycle(mx):
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        qid, = put_msg(g, "acc", rcpts(), msg=MSG)
        mine = outcomes(g, qid)
        assert len(mine) == N, [e for e in mine if e["event"] != "delivered"][:3]
        assert all(e["event"] == "delivered" and e["attempt"] == 1 for e in mine), \
            [e for e in mine if e["event"] != "delivered" or e["attempt"] != 1][:3]
        got = mx.messages
        conns = len({m["session"] for m in got})        # connections that carried one
        print("transactions at the peer: %d, connections: %d, sizes: %s" % (
            len(got), conns, [len(m["to"]) for m in got]))
        assert len(got) == 3, [len(m["to"]) for m in got]
        assert all(len(m["to"]) == LIMIT for m in got)
        to = sorted(a for m in got for a in m["to"])
        assert to == rcpts()            # each recipient delivered exactly once
        assert conns == 1               # on the same connection
        assert "4.5.3" not in "".join(e["msg"] for e in mine)
        smtpgate.wait_for(lambda: not g.files("queue"), what="queue file removed")


def test_452_then_data_refused_stops_the_cycle(mx):
    """The message itself is refused at end of data: no further transaction;
    every recipient is deferred once (the 452 ones keep their 452)."""
    mx.script["."] = "451 4.3.0 Try again later"
    with gateway(mx) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        qid, = put_msg(g, "acc", rcpts(), msg=MSG)
        mine = outcomes(g, qid)
        assert len(mine) == N
        assert all(e["event"] == "deferred" and e["attempt"] == 1 for e in mine)
        msgs = sorted(e["msg"] for e in mine)
        assert msgs.count("451 4.3.0 Try again later") == LIMIT, msgs[:3]
        assert msgs.count("452 4.5.3 Too many recipients") == N - LIMIT
        assert len(mx.messages) == 1        # the peer records refused DATA too


def test_452_round_without_progress_ends_the_cycle():
    """Recipients the peer always refuses with 452 (past a per-transaction
    limit or not) are tried once more in the next transaction; when no
    recipient of that one is accepted the cycle ends: deferred on the retry
    schedule, each address tried twice, never in a loop."""
    refused = ["r%03d@dest.test" % i for i in range(LIMIT, N)]
    no = set(refused)
    with hop({"RCPT": lambda s, a: "452 4.5.3 Too many recipients" if a in no else None}) as m:
        with gateway(m) as g:
            g.start("deliverd")
            inject(g, "account", "acc")
            qid, = put_msg(g, "acc", rcpts(), msg=MSG)
            mine = {e["to"]: e for e in outcomes(g, qid)}
            assert all(mine[a]["event"] == "deferred" and mine[a]["attempt"] == 1
                       for a in refused)
            assert all(mine[a]["event"] == "delivered" for a in rcpts()[:LIMIT])
            tried = m.rcpt_attempts()
            assert {tried[a] for a in refused} == {2}, tried
            assert "next transaction at once" in g.log("deliverd")
