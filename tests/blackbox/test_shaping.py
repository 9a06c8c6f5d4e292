"""Traffic shaping per destination and back-off that reacts (issue 15
items 3, 4, and `spoolctl queue --summary` of item 7).

The next hops are raw SMTP servers (lib/chaos.HostileServer) on loopback
addresses that share remote_port, found through dnsmasq MX records
(lib/peers.Dns); they count the sessions open at once. Messages are filed
with tests/tools/deliverd-inject, so only deliverd runs. Every wait is
bounded; times are printed, never asserted (STYLE T4).
"""
import os
import signal
import threading
import time

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for


def tarpit(c, srv):
    """Accepts the connection and never says a word."""
    srv.stop_ev.wait(120)


class Transactions(list):
    """A `received` for chaos.smtp_sink that keeps one entry per
    transaction (the list of its recipients)."""

    def extend(self, rcpts):
        self.append(list(rcpts))

    def rcpts(self):
        return [r for t in self for r in t]


def sink(log, hold=0.0):
    """A good server recording transactions; hold: seconds to keep each
    session busy before the greeting (so sessions overlap)."""
    def behave(c, srv):
        if hold:
            time.sleep(hold)
        chaos.smtp_sink(c, log)
    return behave


def throttling(log, state):
    """Answers the greeting with a 421 "too many connections" while
    state["throttle"] is set, else a good server."""
    def behave(c, srv):
        if state["throttle"]:
            c.sendall(b"421 4.7.0 Too many connections from your IP, slow down\r\n")
            return
        time.sleep(state.get("hold", 0))
        chaos.smtp_sink(c, log)
    return behave


@pytest.fixture
def net(tmp_path):
    """dnsmasq with MX records for tarpit.test (127.0.0.2), healthy.test
    (127.0.0.3), limited.test (127.0.0.4), throttle.test (127.0.0.5); the
    port every MX listens on."""
    port = smtpgate.free_port()
    records = []
    for i, d in enumerate(("tarpit", "healthy", "limited", "throttle"), start=2):
        records.append(peers.Dns.mx("%s.test" % d, "mx.%s.test" % d, 10))
        records.append(peers.Dns.a("mx.%s.test" % d, "127.0.0.%d" % i))
    with peers.Dns(records, workdir=str(tmp_path)) as dns:
        yield dns, port


def gateway(dns, port, shaping=None, **extra):
    conf = {"dns_server": dns.server, "remote_port": str(port),
            "deliverd_workers": "4", "command_timeout": "60s",
            "retry_schedule": "1h"}
    conf.update(extra)
    g = Gateway(tls=False, extra=conf)
    if shaping is not None:
        path = os.path.join(g.dir, "shaping")
        with open(path, "w") as f:
            f.write(shaping)
        g.conf["shaping_file"] = path
        g.write_conf()
    inject(g, "account", "acc")
    return g


def summary(g):
    return g.spoolctl_json("queue", "--summary")


def dest_row(g, dest):
    return next((d for d in summary(g)["destinations"] if d["destination"] == dest), None)


# ---------------------------------------------------------------- tarpit

def test_tarpit_beside_healthy(net):
    """One destination that accepts connections and never answers must
    not take every worker: the healthy destination gets all its mail
    while the tarpit still holds its connections."""
    dns, port = net
    healthy_log = Transactions()
    with chaos.HostileServer(tarpit, host="127.0.0.2", port=port) as pit, \
            chaos.HostileServer(sink(healthy_log), host="127.0.0.3", port=port), \
            gateway(dns, port) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["t@tarpit.test"], count=12)
        wait_for(lambda: pit.active > 0, 20, what="the tarpit's first connection")
        t0 = time.monotonic()
        put_msg(g, "acc", ["h@healthy.test"], count=5)
        wait_for(lambda: len(healthy_log.rcpts()) >= 5, 30,
                 what="5 messages at the healthy destination")
        took = time.monotonic() - t0
        print("healthy destination: 5 of 5 messages in %.2fs beside a tarpit "
              "holding %d connections (4 workers)" % (took, pit.active))
        assert pit.active > 0, "the tarpit still holds connections"
        assert pit.max_active <= 2, "default connections = workers/2"
