"""deliverd reuses a connection to the next hop; with PIPELINING the RSET
that probes it travels with MAIL/RCPT/DATA. A next hop that closes or
refuses the cached connection between messages must not cost a deferral:
the message goes out on a new connection at once."""

import chaos
import smtpgate
from smtpgate import Gateway, inject


class Server:
    """PIPELINING server; after each message it either hangs up at once
    ("drop"), or answers the next RSET with 421 and hangs up ("rset421"),
    or behaves ("good"). Counts connections and RSETs."""

    def __init__(self, mode):
        self.mode = mode
        self.received = []
        self.conns = 0
        self.rsets = 0

    def __call__(self, c, srv):
        self.conns += 1
        chaos.smtp_sink(c, self.received, b"reuse.test", on_rset=self.rset,
                        after_message=lambda sent: self.mode != "drop")

    def rset(self, sent):
        self.rsets += 1
        return not (self.mode == "rset421" and sent > 0)


def run(mode):
    s = Server(mode)
    with chaos.HostileServer(s) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "command_timeout": "5s",
            "retry_schedule": "1h", "deliverd_workers": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for i in range(4):
            rcpt = "r%d@dest.test" % i
            smtpgate.put_one(g, rcpt)
            ev = g.wait_events(lambda e, r=rcpt: e["to"] == r, timeout=30,
                               what="an outcome for %s" % rcpt)[0]
            assert ev["event"] == "delivered", ev
        assert s.received == ["r%d@dest.test" % i for i in range(4)]
        assert g.procs["deliverd"].poll() is None
        return s


def test_reuse_good_hop_one_connection():
    s = run("good")
    assert s.conns == 1, s.conns
    assert s.rsets == 3, s.rsets


def test_reuse_hop_drops_connection_after_each_message():
    s = run("drop")
    assert s.conns == 4, s.conns


def test_reuse_hop_refuses_rset():
    s = run("rset421")
    assert s.conns == 4, s.conns
