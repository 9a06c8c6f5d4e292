"""deliverd reuses a connection to the next hop; with PIPELINING the RSET
that probes it travels with MAIL/RCPT/DATA. A next hop that closes or
refuses the cached connection between messages must not cost a deferral:
the message goes out on a new connection at once."""

import peers
import smtpgate
from smtpgate import Gateway, inject


def script(mode):
    """A PIPELINING next hop that after each message either hangs up at
    once ("drop"), or answers the next RSET with 421 and hangs up
    ("rset421"), or behaves ("good")."""
    if mode == "drop":
        return {".": ["250 2.0.0 Ok: queued", peers.CLOSE]}
    if mode == "rset421":
        return {"RSET": lambda s, line: ["421 4.3.2 go away", peers.CLOSE] if s.sent else None}
    return {}


def run(mode):
    with peers.Hop(script(mode), name="reuse.test") as hop, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % hop.port, "command_timeout": "5s",
            "retry_schedule": "1h", "deliverd_workers": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for i in range(4):
            rcpt = "r%d@dest.test" % i
            smtpgate.put_one(g, rcpt)
            ev = g.wait_events(lambda e, r=rcpt: e["to"] == r, timeout=30,
                               what="an outcome for %s" % rcpt)[0]
            assert ev["event"] == "delivered", ev
        assert hop.received == ["r%d@dest.test" % i for i in range(4)]
        assert g.procs["deliverd"].poll() is None
        return hop


def test_reuse_good_hop_one_connection():
    s = run("good")
    assert s.conns == 1, s.conns
    assert len(s.commands("RSET")) == 3, s.commands()


def test_reuse_hop_drops_connection_after_each_message():
    s = run("drop")
    assert s.conns == 4, s.conns


def test_reuse_hop_refuses_rset():
    s = run("rset421")
    assert s.conns == 4, s.conns
