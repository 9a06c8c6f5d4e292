"""Cluster mode's limit sharing (issue 19 item 7): with cluster_dsn set,
deliverd divides each destination's connections and rates by live_nodes
from spool_dir/cluster.state (clusterd writes it; here the test does).

The peer is a raw SMTP server (lib/chaos.HostileServer) found through a
dnsmasq MX record; it counts the sessions open at once. Only deliverd runs
(no PostgreSQL is needed: deliverd never talks to it). Every wait is
bounded; times are printed, never asserted (STYLE T4).
"""
import os
import time

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for

SHAPING = "[limited.test]\nconnections = 4\n"


def sink(log, hold):
    def behave(c, srv):
        time.sleep(hold)  # the sessions overlap
        chaos.smtp_sink(c, log, on_quit=lambda: srv.end_session(c))
    return behave


@pytest.fixture
def net(tmp_path):
    port = smtpgate.free_port()
    records = [peers.Dns.mx("limited.test", "mx.limited.test", 10),
               peers.Dns.a("mx.limited.test", "127.0.0.4")]
    with peers.Dns(records, workdir=str(tmp_path)) as dns:
        yield dns, port


def gateway(dns, port, live_nodes):
    g = Gateway(tls=False, extra={
        "dns_server": dns.server, "remote_port": str(port),
        "deliverd_workers": "6", "command_timeout": "60s", "retry_schedule": "1h",
        # cluster mode; nothing on the delivery path connects to it
        "cluster_dsn": "host=/nonexistent dbname=smtpgate"})
    path = os.path.join(g.dir, "shaping")
    with open(path, "w") as f:
        f.write(SHAPING)
    g.conf["shaping_file"] = path
    g.write_conf()
    inject(g, "account", "acc")  # creates the spool
    if live_nodes is not None:
        with open(os.path.join(g.spool, "cluster.state"), "w") as f:
            f.write("node %s\nconnected 1\nlive_nodes %d\nupdated %d\n"
                    % (g.conf["cluster_node"], live_nodes, int(time.time())))
    return g


@pytest.mark.parametrize("live_nodes,want", [(2, 2), (None, 4)],
                         ids=["two-live-nodes", "no-state-file"])
def test_connections_shared_by_live_nodes(net, live_nodes, want):
    """connections = 4: with two live nodes this node opens at most 2
    sessions at once to the destination, and uses them (12 messages, each
    session held 0.5 s); without cluster.state (one node) all 4."""
    dns, port = net
    log = []
    with chaos.HostileServer(sink(log, 0.5), host="127.0.0.4", port=port) as srv, \
            gateway(dns, port, live_nodes) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["s@limited.test"], count=12)
        wait_for(lambda: len(log) >= 12, 60, what="12 messages at limited.test")
        print("live_nodes %s: at most %d session(s) at once, %d sessions"
              % (live_nodes, srv.max_active, srv.conns))
        assert srv.max_active == want
        if live_nodes is not None:
            assert "this node takes 1/2 of each destination's" in g.log("deliverd")


@pytest.mark.parametrize("live_nodes", [3, None], ids=["three-live-nodes", "alone"])
def test_queue_summary_shows_this_nodes_share(net, live_nodes):
    """spoolctl queue --summary shows the limits deliverd takes: with
    three live nodes this node's share (connections 4 -> 2, 60/m -> 20/m)
    and the cluster-wide ones beside them; alone, the limits as set."""
    dns, port = net
    with gateway(dns, port, live_nodes) as g:
        with open(g.conf["shaping_file"], "a") as f:
            f.write("rate = 60/m\n")
        put_msg(g, "acc", ["s@limited.test"])
        s = g.spoolctl_json("queue", "--summary")
        row = next(d for d in s["destinations"] if d["domain"] == "limited.test")
        out = g.spoolctl("queue", "--summary").stdout
        print(row, out)
        if live_nodes is None:
            assert (row["connections"], row["rate"], row["cluster"]) == (4, "60/m", None)
            assert "conns=4 rate=60/m\n" in out, out
            return
        assert (row["connections"], row["rate"]) == (2, "20/m"), row
        assert row["cluster"] == {"live_nodes": 3, "connections": 4, "rate": "60/m"}, row
        assert "conns=2 rate=20/m (this node's share; cluster-wide conns=4 " \
            "rate=60/m, 3 live nodes)" in out, out
