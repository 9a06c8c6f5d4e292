"""Cluster mode end to end (issue 19, Tests): three gateways, each with
its own spool, ports and clusterd, on one private PostgreSQL
(lib/pg.py), relaying to one test MX.

- an account created on node 1 authenticates on node 3;
- an address hard-bounced on node 2 is refused on node 1 (never tried);
- one campaign (X-Campaign-Id) through all three nodes is one issue with
  the same id on every node, and `spoolctl issues --cluster` adds the
  nodes' counters up;
- the seed's stat.uni request through `query --cluster` returns the
  bounces of every node (and `bounces --cluster` too);
- PostgreSQL stopped for OUTAGE seconds: every node keeps accepting and
  delivering; after it returns every event is in PostgreSQL exactly once;
- `--cluster` without PostgreSQL: one line and exit 1, bounded.

The gateways are shared by the module (starting three, with PostgreSQL,
takes a while); every test uses its own account and addresses; the tests
run in file order (the outage near the end). Every wait is bounded.
"""
import json
import os
import smtplib
import subprocess
import time

import pytest

import peers
import pg
import smtpgate
from smtpgate import Gateway, message, smtp_send, tls_ctx, wait_for

OUTAGE = 60          # seconds PostgreSQL is away (the issue's "a minute")
MIRROR_WAIT = 30     # policy on every node: "within seconds" (NOTIFY, 5 s poll)
SHIP_WAIT = 45       # events and issue counters in PostgreSQL (10 s cycles)
CATCHUP_WAIT = 120   # after the outage: reconnect back-off (<= 30 s) + shipping
PERMFAIL = "550 5.0.0 Email has permanent delivery errors"


class Cluster:
    def __init__(self):
        self.db = pg.PG()
        self.mx = peers.Mx().start()
        self.nodes = []
        for i in range(3):
            self.nodes.append(Gateway(extra={
                "cluster_dsn": self.db.dsn, "cluster_node": "node%d" % (i + 1),
                "relayhost": "127.0.0.1:%d" % self.mx.port, "retry_schedule": "1h"}))
        for g in self.nodes:
            g.start()

    def close(self):
        for g in self.nodes:
            g.close()
        self.mx.stop()
        self.db.close()


@pytest.fixture(scope="module")
def cl():
    if not all(os.path.exists(smtpgate.binary(n)) for n in
               ("smtpd", "spoold", "deliverd", "clusterd")):
        pytest.skip("daemons not built")
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


def account_on(g, login):
    return g.spoolctl("account", "show", login, check=False).returncode == 0


def mirrored_account(cl, login, ips=("127.0.0.1/32",)):
    """Creates login on node 1 and waits until every node has it."""
    args = []
    for ip in ips:
        args += ["--ip", ip]
    cl.nodes[0].spoolctl("account", "add", login, *args)
    for g in cl.nodes[1:]:
        wait_for(lambda: account_on(g, login), MIRROR_WAIT,
                 what="account %s mirrored to %s" % (login, g.conf["cluster_node"]))


def account_everywhere(cl, login, ip):
    """login on every node, each node's own `account add` (the same row:
    the tests of issues and events do not depend on the mirror's timing)."""
    for g in cl.nodes:
        # the mirror may bring node 1's row between a check and the add:
        # "exists" is as good
        g.spoolctl("account", "add", login, "--ip", ip, check=False)
        assert account_on(g, login), (login, g.conf["cluster_node"])


def send(g, account_ip, rcpts, headers=None):
    """One message through g's smtpd from account_ip (the pinned IP)."""
    conn = smtplib.SMTP("127.0.0.1", g.port, source_address=(account_ip, 0), timeout=30)
    try:
        conn.sendmail("sender@example.com", rcpts, message(to=rcpts[0], headers=headers))
    finally:
        conn.quit()


def events_of(g, pred):
    return [e for e in g.events() if pred(e)]


def cluster_query(g, req, *args):
    r = g.spoolctl("query", "--cluster", *args, input=json.dumps(req))
    return json.loads(r.stdout)["list"]


# ---------------------------------------------------------------- policy

def test_account_created_on_node1_authenticates_on_node3(cl):
    n1, n3 = cl.nodes[0], cl.nodes[2]

    def auth(g):
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
        try:
            s.starttls(context=tls_ctx())
            s.login("clauth", "cl-secret-1")
            s.sendmail("sender@example.com", ["auth@dest.test"],
                       message(to="auth@dest.test"))
            return True
        except smtplib.SMTPAuthenticationError:
            return False
        finally:
            s.close()

    assert not auth(n3), "node 3 took a login nobody created"
    n1.spoolctl("account", "add", "clauth", "--password", "cl-secret-1")
    wait_for(lambda: auth(n3), MIRROR_WAIT, interval=0.5,
             what="node 1's new account authenticating on node 3")
    cl.mx.wait_received(1, rcpt="auth@dest.test")
    # the mail went out through node 3 under that account
    # the event follows the 250 (the scheduler's commit, then the export)
    ev, = wait_for(lambda: events_of(n3, lambda e: e.get("to") == "auth@dest.test" and
                                     e.get("event") == "delivered"),
                   30, what="node 3's delivered event")
    assert ev["account"] == "clauth"


def test_hard_bounce_on_node2_is_refused_on_node1(cl):
    n1, n2 = cl.nodes[0], cl.nodes[1]
    mirrored_account(cl, "clsupp", ips=["127.0.0.2/32"])
    gone = "gone@dest.test"
    cl.mx.rules[gone] = ["550 5.1.1 <gone@dest.test>: Recipient address rejected: "
                         "User unknown"]
    assert n1.spoolctl("suppression", "show", gone, "--account", "clsupp",
                       check=False).returncode == 1
    send(n2, "127.0.0.2", [gone])
    wait_for(lambda: events_of(n2, lambda e: e.get("to") == gone and
                               e.get("event") == "bounced"), 30,
             what="the bounce on node 2")
    assert cl.mx.attempts[gone] == 1
    wait_for(lambda: n1.spoolctl("suppression", "show", gone, "--account", "clsupp",
                                 check=False).returncode == 0, MIRROR_WAIT,
             what="node 2's suppression on node 1")
    send(n1, "127.0.0.2", [gone])
    ev, = wait_for(lambda: events_of(n1, lambda e: e.get("to") == gone and
                                     e.get("event") == "bounced"), 30,
                   what="node 1 refusing the address")
    assert ev["class"] == "policy" and ev["msg"] == PERMFAIL, ev
    assert cl.mx.attempts[gone] == 1, "node 1 tried an address node 2 suppressed"


# ---------------------------------------------------------------- issues

def local_issue(g, account):
    return [i for i in g.spoolctl_json("issues", "--account", account)
            if i["name"] == "spring-19"]


def test_one_campaign_through_three_nodes_is_one_issue(cl):
    account_everywhere(cl, "clissue", "127.0.0.3/32")
    # node 1 files another issue first: ids counted per node would differ
    send(cl.nodes[0], "127.0.0.3", ["w@dest.test"], headers={"X-Campaign-Id": "warmup"})
    cl.mx.wait_received(1, rcpt="w@dest.test")
    hdr = {"X-Campaign-Id": "spring-19"}
    for i, g in enumerate(cl.nodes):
        for j in range(i + 1):  # 1, 2 and 3 messages: sums tell nodes apart
            send(g, "127.0.0.3", ["c%d-%d@dest.test" % (i, j), "d%d-%d@dest.test" % (i, j)],
                 headers=hdr)
    for i in range(3):
        for j in range(i + 1):
            cl.mx.wait_received(1, rcpt="d%d-%d@dest.test" % (i, j))
    wait_for(lambda: all(i["delivered"] == 2 * (n + 1) for n, g in enumerate(cl.nodes)
                         for i in local_issue(g, "clissue")), 30,
             what="every node's deliveries counted")
    per_node = [local_issue(g, "clissue") for g in cl.nodes]
    assert all(len(x) == 1 for x in per_node), per_node
    ids = {x[0]["id"] for x in per_node}
    assert len(ids) == 1, "one campaign filed under different ids: %s" % ids
    issue_id = ids.pop()

    def cluster_issue():
        got = [i for i in cl.nodes[1].spoolctl_json("issues", "--cluster", "--account",
                                                     "clissue") if i["id"] == issue_id]
        return got if got and got[0]["nodes"] == 3 and got[0]["delivered"] == 12 else None

    c, = wait_for(cluster_issue, SHIP_WAIT, interval=1,
                  what="the cluster-wide counters of the issue")
    assert c["name"] == "spring-19" and c["account"] == "clissue"
    for key in ("messages", "recipients", "delivered", "deferred"):
        assert c[key] == sum(x[0][key] for x in per_node), key
    assert (c["messages"], c["recipients"]) == (6, 12)
    # the text listing has the same issue and its nodes
    out = cl.nodes[0].spoolctl("issues", "--cluster", "--account", "clissue").stdout
    line, = [l for l in out.splitlines() if l.startswith(str(issue_id))]
    assert "spring-19" in line and line.split()[-1] == "3", out


# ---------------------------------------------------------------- events

def test_seed_query_cluster_returns_every_nodes_bounces(cl):
    account_everywhere(cl, "clbounce", "127.0.0.4/32")
    bad = ["b%d@dest.test" % i for i in range(3)]
    for i, (g, to) in enumerate(zip(cl.nodes, bad)):
        cl.mx.rules[to] = ["550 5.1.1 <%s>: no such user (node %d)" % (to, i + 1)]
        send(g, "127.0.0.4", [to])
        wait_for(lambda: events_of(g, lambda e: e.get("to") == to and
                                   e.get("event") == "bounced"), 30,
                 what="the bounce on node %d" % (i + 1))
    req = smtpgate.SEED_QUERY

    def all_three():
        rows = cluster_query(cl.nodes[2], req, "--account", "clbounce")
        return rows if {r[0] for r in rows} == set(bad) else None

    rows = wait_for(all_three, SHIP_WAIT, interval=1,
                    what="the three nodes' bounces in PostgreSQL")
    assert len(rows) == 3 and all(len(r) == 3 for r in rows), rows
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    for to, dt, msg in rows:
        local = [e for g in cl.nodes for e in g.events()
                 if e.get("to") == to and e.get("event") == "bounced"]
        assert [(e["dt"], e["msg"]) for e in local] == [(dt, msg)], (to, local)
    # the same without --account includes them, and no node's own log has all
    every = {r[0] for r in cluster_query(cl.nodes[0], req)}
    assert set(bad) <= every
    for g in cl.nodes:
        own = {r[0] for r in json.loads(g.spoolctl("query", input=json.dumps(req))
                                        .stdout)["list"]}
        assert len(own & set(bad)) == 1
    # another account's request does not see them; a filter is a parameter
    other = cluster_query(cl.nodes[0], req, "--account", "clissue")
    assert not {r[0] for r in other} & set(bad), other
    odd = dict(req, filter=req["filter"] + [
        {"a": "delivstream.to", "op": "==", "v": "x'); DROP TABLE smtpgate.events; --"}])
    assert cluster_query(cl.nodes[0], odd) == []
    assert cl.db.scalar("SELECT count(*) > 0 FROM smtpgate.events") == "t"
    b = cl.nodes[1].spoolctl_json("bounces", "--cluster", "--last", "1000")
    assert set(bad) <= {x["to"] for x in b}


# ---------------------------------------------------------------- outage

def shipped(cl, account):
    """{node: {type: count}} of account's events in PostgreSQL."""
    out = {}
    for node, typ, n in cl.db.query(
            "SELECT node, type, count(*) FROM smtpgate.events WHERE account = '%s' "
            "GROUP BY 1, 2" % account):
        out.setdefault(node, {})[typ] = int(n)
    return out


def local_counts(g, account):
    out = {}
    for e in g.events():
        if e.get("account") == account:
            out[e["event"]] = out.get(e["event"], 0) + 1
    return out


def test_postgres_away_nodes_keep_working_then_every_event_once(cl):
    account_everywhere(cl, "clout", "127.0.0.5/32")
    per = 4
    cl.db.stop()
    t0 = time.monotonic()
    try:
        # every node accepts and delivers while PostgreSQL is away
        for i, g in enumerate(cl.nodes):
            for j in range(per):
                send(g, "127.0.0.5", ["o%d-%d@dest.test" % (i, j)])
        for i in range(3):
            for j in range(per):
                cl.mx.wait_received(1, rcpt="o%d-%d@dest.test" % (i, j))
        for g in cl.nodes:
            wait_for(lambda: local_counts(g, "clout").get("delivered") == per, 30,
                     what="deliveries logged on %s" % g.conf["cluster_node"])
        r = cl.nodes[0].spoolctl("issues", "--cluster", check=False, timeout=30)
        assert r.returncode == 1 and "cannot reach PostgreSQL" in r.stderr, r
        assert len(r.stderr.strip().splitlines()) == 1
        # keep it away for the whole outage, still taking mail
        while time.monotonic() - t0 < OUTAGE:
            time.sleep(1)
        send(cl.nodes[1], "127.0.0.5", ["late@dest.test"])
        cl.mx.wait_received(1, rcpt="late@dest.test")
    finally:
        cl.db.start()
    want = {g.conf["cluster_node"]: local_counts(g, "clout") for g in cl.nodes}
    assert want["node2"].get("delivered") == per + 1
    try:
        wait_for(lambda: shipped(cl, "clout") == want, CATCHUP_WAIT, interval=1,
                 what="every node's events in PostgreSQL after the outage")
    finally:
        assert shipped(cl, "clout") == want, [g.log("clusterd")[-800:] for g in cl.nodes]
    # exactly once: no (node, id) twice, and no event twice under two ids
    assert cl.db.scalar("SELECT count(*) FROM (SELECT node, id FROM smtpgate.events "
                        "GROUP BY 1, 2 HAVING count(*) > 1) d") == "0"
    assert cl.db.scalar("SELECT count(*) FROM (SELECT node, queue_id, rcpt, type, dt "
                        "FROM smtpgate.events WHERE account = 'clout' "
                        "GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1) d") == "0"
    time.sleep(6)  # a few more shipping cycles add nothing
    assert shipped(cl, "clout") == want


def local_rows(cl, req):
    out = []
    for g in cl.nodes:
        out += json.loads(g.spoolctl("query", input=json.dumps(req)).stdout)["list"]
    return out


def test_query_cluster_answers_as_the_local_logs_together(cl):
    """statq_sql's statement against statq_match: for each request, the
    cluster's rows are the three nodes' local answers together (as
    multisets; every event shipped first)."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    cols = ["delivstream.to", "delivstream.dt", "delivstream.msg", "delivstream.status",
            "issue.id", "issue.name", "gate.uniq", "delivstream.category"]

    def req(*filters):
        return {"filter": [{"a": a, "op": op, "v": v} for a, op, v in filters],
                "select": cols}

    everything = req()
    wait_for(lambda: len(cluster_query(cl.nodes[0], everything)) ==
             len(local_rows(cl, everything)), SHIP_WAIT, interval=1,
             what="every node's events shipped")
    assert len(local_rows(cl, everything)) > 20
    cases = [
        req(("delivstream.status", "==", "bounced")),
        req(("delivstream.status", "!=", "delivered")),
        req(("delivstream.category", "!=", "bad-mailbox")),
        req(("delivstream.category", "==", None)),
        req(("issue.name", "!=", None), ("issue.name", ">=", "s")),
        req(("issue.name", "<", None)),
        req(("delivstream.to", "==", "GONE@Dest.Test")),
        req(("delivstream.to", ">", "c"), ("delivstream.to", "<=", "o")),
        req(("delivstream.msg", ">=", "5")),
        req(("delivstream.dt", "==", day)),
        req(("delivstream.dt", "<", day)),
        req(("delivstream.dt", ">=", day + " 00:00"), ("delivstream.source", "==", "1")),
        req(("delivstream.source", "==", "2")),
        req(("gate.uniq", "==", None)),
    ]
    for r in cases:
        want = sorted(local_rows(cl, r), key=json.dumps)
        got = sorted(cluster_query(cl.nodes[1], r), key=json.dumps)
        assert got == want, r["filter"]
    some = [c for c in cases if local_rows(cl, c)]
    assert len(some) >= 8, "too few requests with rows to compare"
    # order and limits: by recipient, then skip/first
    base = req(("delivstream.status", "==", "delivered"))
    r = dict(base, order=["-delivstream.to"], first=5, skip=2)
    want = sorted(local_rows(cl, base), key=lambda x: x[0].lower(), reverse=True)
    got = cluster_query(cl.nodes[2], r)
    assert [x[0].lower() for x in got] == [x[0].lower() for x in want[2:7]]


def test_cluster_without_postgres_is_one_line_exit_1(cl):
    """A DSN nothing answers: a clear error, exit 1, within the connect
    timeout; without cluster_dsn: a usage error."""
    g = cl.nodes[0]
    conf = g.conf_path + ".down"
    with open(g.conf_path) as f, open(conf, "w") as out:
        for line in f:
            if not line.startswith("cluster_dsn"):
                out.write(line)
        out.write("cluster_dsn = host=%s port=1 dbname=x connect_timeout=2\n" % cl.db.dir)
    os.chmod(conf, 0o644)
    req = json.dumps(smtpgate.SEED_QUERY)
    for args in (["query", "--cluster"], ["bounces", "--cluster"],
                 ["issues", "--cluster", "--json"]):
        t0 = time.monotonic()
        r = subprocess.run([smtpgate.binary("spoolctl"), "-c", conf] + args,
                           input=req, capture_output=True, text=True, timeout=30)
        line = smtpgate.one_line_error(r, 1)
        assert "cannot reach PostgreSQL" in line and r.stdout == "", (args, r)
        assert time.monotonic() - t0 < 15
    # a single gateway (no cluster_dsn): --cluster is a usage error
    with open(g.conf_path) as f, open(conf, "w") as out:
        out.writelines(l for l in f if not l.startswith("cluster_dsn"))
    r = subprocess.run([smtpgate.binary("spoolctl"), "-c", conf, "query", "--cluster"],
                       input=req, capture_output=True, text=True, timeout=30)
    assert "cluster_dsn is not set" in smtpgate.one_line_error(r, 2)
