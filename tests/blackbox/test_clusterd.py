"""clusterd (issue 19): a node's synchronisation with PostgreSQL.

Each test starts a private PostgreSQL (lib/pg.py: initdb/pg_ctl in a
temporary directory, unix socket only) and gateways whose config has
cluster_dsn (the harness then starts clusterd with the other daemons).
Mail goes to the simulator domain (deliverd answers for it itself), so
events happen without a peer. Every wait is bounded.
"""
import os
import signal
import subprocess
import time

import pytest

from pg import db  # noqa: F401 (the fixture)
import smtpgate
from smtpgate import Gateway, put_msg, smtp_send, wait_for

SIM = "simulator.smtpgate.invalid"


def gateway(db, start=(), **extra):
    conf = {"cluster_dsn": db.dsn, "retry_schedule": "1s"}
    conf.update(extra)
    g = Gateway(tls=False, port_tls="none", extra=conf)
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start(*start)
    except BaseException:
        g.close()
        raise
    return g


def final_events(g, n):
    """The local events once n recipients have a final one."""
    wait_for(lambda: len([e for e in g.events()
                          if e["event"] in ("delivered", "bounced")]) >= n,
             60, what="%d final events" % n)
    return g.events()


def shipped(db, node):
    """(id, count) of node's rows in smtpgate.events."""
    return db.query("SELECT id, count(*) FROM smtpgate.events WHERE node = '%s' "
                    "GROUP BY id ORDER BY id" % node)


def wait_shipped(db, g, events, timeout=60):
    """Waits until every local event is in PostgreSQL; asserts each once."""
    ids = sorted(int(e["id"].split("-")[1]) for e in events)
    node = g.conf["cluster_node"]
    wait_for(lambda: [int(r[0]) for r in shipped(db, node)] == ids, timeout,
             what="%d events of %s in PostgreSQL" % (len(ids), node))
    assert all(r[1] == "1" for r in shipped(db, node))
    return ids


def count_events(db):
    """Rows in smtpgate.events; 0 before clusterd created the schema."""
    try:
        return int(db.scalar("SELECT count(*) FROM smtpgate.events"))
    except RuntimeError as e:
        if "does not exist" in str(e):
            return 0
        raise


def state(g):
    with open(os.path.join(g.spool, "cluster.state")) as f:
        return dict(line.split(" ", 1) for line in f.read().splitlines())


def status(g):
    r = g.spoolctl("status", "--json", check=False)
    return r.returncode, __import__("json").loads(r.stdout)


def test_delivered_and_bounced_appear_once(db):
    g = gateway(db)
    try:
        smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        events = final_events(g, 2)
        wait_shipped(db, g, events)
        node = g.conf["cluster_node"]
        rows = db.query("SELECT type, rcpt, category, queue_id, account, issue, "
                        "body->>'id', body->>'event', to_char(dt AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM smtpgate.events "
                        "WHERE node = '%s' ORDER BY id" % node)
        by_id = {r[6]: r for r in rows}
        for e in events:
            r = by_id[e["id"]]
            assert r[0] == e["event"] == r[7]
            assert r[1] == e["to"] and r[3] == e["queue_id"] and r[4] == "acc"
            assert r[2] == (e.get("category") or "")
            assert r[5] == str(e["issue"]["id"])
            assert r[8] == e["dt"]
        assert {r[0] for r in rows} >= {"delivered", "bounced"}
        # the body is the event as event_log carries it
        body = db.scalar("SELECT body FROM smtpgate.events WHERE node = '%s' AND "
                         "type = 'bounced'" % node)
        local = [e for e in events if e["event"] == "bounced"][0]
        assert __import__("json").loads(body) == local
        # the issue's counters, this node's row (published every 10 s)
        issue = local["issue"]["id"]
        sql = ("SELECT msgs, rcpts, delivered, bounced, day, counters FROM "
               "smtpgate.issue_counts WHERE node = '%s' AND issue = %d" % (node, issue))
        row = wait_for(lambda: [r for r in db.query(sql) if r[2] == "1" and r[3] == "1"],
                       30, what="issue counts")[0]
        assert row[:5] == ["1", "2", "1", "1", local["issue"]["date"]]
        mine = [i for i in g.spoolctl_json("issues") if i["id"] == issue]
        assert __import__("json").loads(row[5]) == mine[0]
        # a restart ships nothing again
        g.stop("clusterd")
        g.start("clusterd")
        time.sleep(3)
        assert all(r[1] == "1" for r in shipped(db, node))
        assert len(shipped(db, node)) == len(events)
        assert "events_YYYYMMDD" not in g.log("clusterd")
        assert "created partition for" in g.log("clusterd")
        assert int(state(g)["events_shipped"]) == max(
            int(e["id"].split("-")[1]) for e in events)
    finally:
        g.close()


def test_postgresql_away_node_goes_on_then_catches_up(db):
    g = gateway(db)
    try:
        smtp_send(g, ["delivered@" + SIM])
        first = final_events(g, 1)
        wait_shipped(db, g, first)
        wait_for(lambda: state(g)["connected"] == "1", 10, what="connected")
        db.stop()
        t0 = time.monotonic()
        # the node accepts and delivers without PostgreSQL
        for i in range(5):
            smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        events = final_events(g, 1 + 10)
        wait_for(lambda: state(g)["connected"] == "0", 15, what="disconnected")
        rc, st = status(g)
        assert rc == 1 and st["cluster"]["connected"] is False
        assert st["cluster"]["events_pending"] > 0
        assert any("not connected to PostgreSQL" in p for p in st["problems"])
        text = g.spoolctl("status", check=False).stdout
        assert "NOT connected to PostgreSQL" in text
        time.sleep(max(0, 20 - (time.monotonic() - t0)))
        log = g.log("clusterd")
        # one line when it went down, none per retry
        down = [line for line in log.splitlines()
                if "PostgreSQL connection lost" in line or "PostgreSQL unreachable" in line]
        assert len(down) == 1, log
        db.start()
        wait_shipped(db, g, events)
        wait_for(lambda: state(g)["connected"] == "1", 15, what="reconnected")
        assert len([line for line in g.log("clusterd").splitlines()
                    if "PostgreSQL reachable again" in line]) == 1
        rc, st = status(g)
        assert st["cluster"]["connected"] is True
        assert st["cluster"]["events_pending"] == 0
        assert not any("cluster" in p for p in st["problems"])
    finally:
        g.close()


def test_clusterd_killed_while_shipping_ships_exactly_once(db):
    """A backlog shipped while clusterd is SIGKILLed again and again, a
    little later each time (kills fall between a COMMIT and the cursor's
    advance, and inside transactions): every event is in PostgreSQL once."""
    g = gateway(db, deliverd_workers="4", start=("spoold", "deliverd", "smtpd"))
    try:
        put_msg(g, "acc", ["delivered+{n}@" + SIM], count=6000)
        events = final_events(g, 6000)
        partial, delay = 0, 0.03
        for _ in range(60):
            g.start("clusterd", wait=False)
            time.sleep(delay)
            g.kill("clusterd")
            n = count_events(db)
            if n >= len(events):
                break
            partial += n > 0
            delay += 0.01
        assert partial >= 1, "no kill fell inside the shipping"
        g.start("clusterd")
        wait_shipped(db, g, events, timeout=90)
        assert db.scalar("SELECT count(*) FROM smtpgate.events") == str(len(events))
        assert "not stored in PostgreSQL" not in g.log("clusterd")
    finally:
        g.close()


def test_rewound_cursor_stores_nothing_twice(db):
    """The state a crash leaves between COMMIT and the cursor: the cursor
    behind what PostgreSQL holds. Shipping again stores nothing twice and
    moves the cursor to the end."""
    g = gateway(db)
    try:
        smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        events = final_events(g, 2)
        ids = wait_shipped(db, g, events)
        g.stop("clusterd")
        rewind(g, 0)
        assert status(g)[1]["cluster"]["events_shipped"] == 0
        g.start("clusterd")
        wait_for(lambda: int(state(g)["events_shipped"]) == max(ids), 20,
                 what="the cursor at the end again")
        assert [int(r[0]) for r in shipped(db, g.conf["cluster_node"])] == ids
        assert all(r[1] == "1" for r in shipped(db, g.conf["cluster_node"]))
        assert "not stored in PostgreSQL" not in g.log("clusterd")
    finally:
        g.close()


def rewind(g, seq):
    """Sets LMDB meta cluster_event_shipped (the key has its NUL) with
    mdb_load (lmdb-utils)."""
    val = "".join("\\%02x" % b for b in seq.to_bytes(8, "big"))
    r = subprocess.run(["mdb_load", "-T", "-s", "meta", os.path.join(g.spool, "db")],
                       input="cluster_event_shipped\\00\n%s\n" % val, text=True,
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("mdb_load (lmdb-utils): %s" % r.stderr.strip())


def test_two_gateways_heartbeats_and_live_nodes(db):
    g1 = gateway(db)
    g2 = gateway(db)
    try:
        nodes = sorted([g1.conf["cluster_node"], g2.conf["cluster_node"]])
        wait_for(lambda: sorted(r[0] for r in db.query(
            "SELECT node FROM smtpgate.nodes")) == nodes, 20, what="both nodes")
        for g in (g1, g2):
            wait_for(lambda: state(g)["live_nodes"] == "2", 20, what="live_nodes 2")
            assert state(g)["node"] == g.conf["cluster_node"]
            assert "live nodes: 2" in g.log("clusterd")
        # heartbeats move last_seen on
        seen = db.scalar("SELECT last_seen FROM smtpgate.nodes WHERE node = '%s'" % nodes[0])
        wait_for(lambda: db.scalar("SELECT last_seen FROM smtpgate.nodes WHERE node = '%s'"
                                   % nodes[0]) != seen, 12, what="a heartbeat")
        # a node stopped cleanly is not live from its stop (it says so in
        # its row), not only after the 30 s window
        g2.stop("clusterd")
        assert "not live from now (stopped)" in g2.log("clusterd")
        wait_for(lambda: state(g1)["live_nodes"] == "1", 15, what="live_nodes 1")
        rc, st = status(g1)
        assert st["cluster"]["live_nodes"] == 1
        # the stopped node's status: clusterd down, its state file stale
        # once clusterd has not rewritten it for 15 s
        rc, st = status(g2)
        assert rc == 1 and "clusterd is down" in st["problems"]
        wait_for(lambda: "clusterd is not updating it"
                 in g2.spoolctl("status", check=False).stdout, 30,
                 what="the stale state file")
    finally:
        g1.close()
        g2.close()


def test_without_cluster_dsn_nothing_changes(tmp_path):
    g = Gateway(tls=False, port_tls="none")
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        assert "clusterd" not in g.procs
        r = subprocess.run([smtpgate.binary("clusterd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert "cluster_dsn is empty" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        smtp_send(g, ["delivered@" + SIM])
        final_events(g, 1)
        assert not os.path.exists(os.path.join(g.spool, "cluster.state"))
        rc, st = status(g)
        assert rc == 0 and st["cluster"] is None
        assert "clusterd" not in [d["name"] for d in st["daemons"]]
        assert "cluster" not in g.spoolctl("status").stdout
    finally:
        g.close()


def test_partitions_ahead_and_retention(db):
    g = gateway(db, cluster_event_retention="3d")
    try:
        wait_for(lambda: state(g)["connected"] == "1", 20, what="connected")
        days = [r[0] for r in db.query(
            "SELECT to_char(current_date + i, 'YYYYMMDD') FROM generate_series(0, 2) i")]
        old = db.query("SELECT to_char(current_date - i, 'YYYYMMDD'), "
                       "smtpgate.events_partition(current_date - i) FROM "
                       "(VALUES (3), (4), (40)) v(i)")
        parts = lambda: sorted(r[0] for r in db.query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'smtpgate.events'::regclass"))
        assert parts() == sorted(["events_" + d for d in days] +
                                 ["events_" + r[0] for r in old])
        # issue counters past issue_retention (400d) go as well
        db.query("INSERT INTO smtpgate.issue_counts (account, issue, node, day, counters, "
                 "updated) VALUES ('acc', 1, 'old', current_date - 401, '{}', now()), "
                 "('acc', 2, 'old', current_date - 399, '{}', now())")
        g.stop("clusterd")
        g.start("clusterd")
        wait_for(lambda: db.query("SELECT issue FROM smtpgate.issue_counts WHERE "
                                  "node = 'old'") == [["2"]], 20, what="old counters deleted")
        assert "deleted 1 issue counter row(s)" in g.log("clusterd")
        # day - 3 is kept (its day ended less than 3 days ago), older ones go
        wait_for(lambda: parts() == sorted(["events_" + old[0][0]] +
                                           ["events_" + d for d in days]),
                 20, what="old partitions dropped")
        log = g.log("clusterd")
        for r in old[1:]:
            assert "dropped partition smtpgate.events_%s" % r[0] in log
        assert "events_%s " % old[0][0] not in log
    finally:
        g.close()


def test_bad_cluster_dsn_exit_2_one_line():
    if not os.path.exists(smtpgate.binary("clusterd")):
        pytest.skip("clusterd not built")
    g = Gateway(tls=False, port_tls="none", extra={"cluster_dsn": "nonsense"})
    try:
        r = subprocess.run([smtpgate.binary("clusterd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "cluster_dsn" in lines[0], r.stderr
        assert not os.path.exists(os.path.join(g.spool, "cluster.state"))
    finally:
        g.close()


def test_event_refused_by_the_server_is_skipped_not_blocking(db):
    """A batch the server refuses for one event's data (here a CHECK the
    test adds: class 23) is shipped one event at a time: that event is
    logged and skipped, the others are stored and shipping goes on."""
    g = gateway(db)
    try:
        wait_for(lambda: state(g)["connected"] == "1", 20, what="connected")
        db.query("ALTER TABLE smtpgate.events ADD CONSTRAINT test_refuse "
                 "CHECK (type <> 'bounced')")
        smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        events = final_events(g, 2)
        last = max(int(e["id"].split("-")[1]) for e in events)
        wait_for(lambda: int(state(g)["events_shipped"]) == last, 20, what="cursor")
        node = g.conf["cluster_node"]
        types = [r[0] for r in db.query("SELECT type FROM smtpgate.events WHERE "
                                        "node = '%s'" % node)]
        assert "bounced" not in types and "delivered" in types
        refused = [line for line in g.log("clusterd").splitlines()
                   if "not stored in PostgreSQL" in line]
        bounced = [e for e in events if e["event"] == "bounced"][0]
        assert len(refused) == 1 and "event %s " % bounced["id"].split("-")[1] in refused[0]
        smtp_send(g, ["delivered@" + SIM])
        more = final_events(g, 3)
        wait_for(lambda: len(db.query("SELECT 1 FROM smtpgate.events WHERE node = '%s'"
                                      % node)) == len(more) - 1, 20, what="shipping goes on")
    finally:
        g.close()
