"""Two gateways with the same cluster_node (issue 19, clusterd(8) "The
node's name"): the second one is refused its name (one log line,
spoolctl status exits 1 and says so) and ships nothing, and nothing is
lost: its events wait in its LMDB until the other is gone or it is
renamed. A restart of the same gateway takes its row back at once.

A private PostgreSQL (lib/pg.py); mail goes to the simulator domain.
Every wait is bounded.
"""
import re
import threading
import time

from pg import db  # noqa: F401 (the fixture)
from smtpgate import smtp_send, wait_for
from test_clusterd import SIM, gateway, state, status

REFUSED = "two gateways use cluster_node %s: this one does not ship events"
RESUMED = "is this gateway's again"


def claim(db, node):
    return db.scalar("SELECT claim FROM smtpgate.nodes WHERE node = '%s'" % node)


def has_row(db, node):
    return db.query("SELECT node FROM smtpgate.nodes WHERE node = '%s'" % node)


def stored(db, node):
    """{body id: rows} of node's events in PostgreSQL."""
    return {r[0]: int(r[1]) for r in db.query(
        "SELECT body->>'id', count(*) FROM smtpgate.events WHERE node = '%s' "
        "GROUP BY 1" % node)}


def local_ids(*gs):
    return {e["id"] for g in gs for e in g.events()}


def finals(g):
    return len([e for e in g.events() if e["event"] in ("delivered", "bounced")])


def send_both(g1, g2, n):
    """n messages of two recipients through each, interleaved: the two
    spools log the same event numbers in the same seconds."""
    for _ in range(n):
        for g in (g1, g2):
            smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
    for g in (g1, g2):
        wait_for(lambda: finals(g) >= 2 * n, 60, what="final events")


def wait_all_once(db, node, ids, timeout=60):
    wait_for(lambda: set(stored(db, node)) == ids, timeout,
             what="%d events of %s in PostgreSQL" % (len(ids), node))
    rows = stored(db, node)
    assert all(n == 1 for n in rows.values()), rows
    assert int(db.scalar("SELECT count(*) FROM smtpgate.events WHERE node = '%s'"
                         % node)) == len(ids)


def policy_rows(db, addr):
    return int(db.scalar("SELECT count(*) FROM smtpgate.policy WHERE kind = "
                         "'stoplist' AND position(convert_to('%s', 'UTF8') in key) > 0"
                         % addr))


def issue_msgs(db, issue):
    """{node: msgs} of an issue's counter rows."""
    return {r[0]: int(r[1]) for r in db.query(
        "SELECT node, msgs FROM smtpgate.issue_counts WHERE issue = %d" % issue)}


def wait_refused(db, g, node):
    wait_for(lambda: REFUSED % node in g.log("clusterd"), 30, what="refused")
    assert g.log("clusterd").count(REFUSED % node) == 1
    wait_for(lambda: "conflict" in state(g), 10, what="conflict in cluster.state")
    rc, st = status(g)
    assert rc == 1
    assert any("two gateways use cluster_node %s" % node in p for p in st["problems"])
    assert st["cluster"]["conflict"]["claim"] == claim(db, node)
    out = g.spoolctl("status", check=False).stdout
    assert "REFUSED: two gateways use cluster_node %s" % node in out


def test_same_node_second_refused_then_every_event_once(db):
    """The second gateway named like a live one is refused, the first keeps
    shipping; when the first stops and its row goes stale, the second
    takes the name and ships its waiting events: every event of both is
    in PostgreSQL exactly once, although both logged the same event
    numbers in the same seconds."""
    g1 = gateway(db, cluster_node="twin")
    g2 = None
    try:
        wait_for(lambda: has_row(db, "twin"), 20, what="twin's row")
        g2 = gateway(db, cluster_node="twin")
        wait_refused(db, g2, "twin")
        first = claim(db, "twin")
        assert first in g1.log("clusterd") and first in g2.log("clusterd")
        rc, st = status(g1)
        assert not any("cluster" in p for p in st["problems"]), st["problems"]
        send_both(g1, g2, 4)
        # the holder ships, the refused one's events wait in its LMDB
        wait_all_once(db, "twin", local_ids(g1))
        assert state(g2)["events_shipped"] == "0"
        assert int(status(g2)[1]["cluster"]["events_pending"]) == len(g2.events())
        assert not local_ids(g2) & set(stored(db, "twin"))
        # a policy change on the refused node waits in its journal
        r = g2.spoolctl("stoplist", "add", "acc", "held@example.test")
        m = re.search(r"another live gateway uses this cluster_node: (\d+) change", r.stderr)
        assert m, r.stderr
        # (with the hard bounces deliverd learned, suppressions to publish)
        wait_for(lambda: state(g2)["journal"] == m.group(1), 10, what="the journal")
        assert policy_rows(db, "held@example.test") == 0
        # the refused node counts the holder and itself; the holder only
        # itself (the refused one is not a live node)
        assert state(g1)["live_nodes"] == "1" and state(g2)["live_nodes"] == "2"
        assert db.scalar("SELECT count(*) FROM smtpgate.nodes") == "1"
        # one issue (same account, day, no campaign): the holder's counters
        issue = g1.events()[0]["issue"]["id"]
        assert {e["issue"]["id"] for e in g1.events() + g2.events()} == {issue}
        wait_for(lambda: issue_msgs(db, issue) == {"twin": 4}, 30, what="counters")
        # the holder goes away: after the live window the second resumes
        g1.stop()
        wait_for(lambda: RESUMED in g2.log("clusterd"), 60, what="resumed")
        wait_all_once(db, "twin", local_ids(g1, g2))
        wait_for(lambda: policy_rows(db, "held@example.test") == 1, 10,
                 what="the journal published")
        # the first one's counters are kept apart, the sum is both's
        wait_for(lambda: issue_msgs(db, issue) == {"twin": 4, "twin~" + first[:8]: 4},
                 30, what="both gateways' counters")
        assert claim(db, "twin") != first
        assert "conflict" not in state(g2)
        rc, st = status(g2)
        assert not any("cluster" in p for p in st["problems"]), st["problems"]
        assert "not stored in PostgreSQL" not in g2.log("clusterd")
    finally:
        g1.close()
        if g2 is not None:
            g2.close()


def test_refused_node_renamed_ships_and_live_nodes(db):
    """live_nodes with a refused node: the holder and a third node count
    two (neither more nor fewer); renamed, the refused node ships every
    waiting event under its new name and the cluster has three."""
    g1 = gateway(db, cluster_node="pair")
    g3 = gateway(db, cluster_node="third")
    g2 = None
    try:
        wait_for(lambda: has_row(db, "pair"), 20, what="pair's row")
        g2 = gateway(db, cluster_node="pair")
        wait_refused(db, g2, "pair")
        send_both(g1, g2, 2)
        wait_all_once(db, "pair", local_ids(g1))
        for g in (g1, g3):
            wait_for(lambda: state(g)["live_nodes"] == "2", 20, what="live_nodes 2")
        assert state(g2)["live_nodes"] == "3"
        before = {g.dir: g.log("clusterd").count("live nodes:") for g in (g1, g3)}
        # several heartbeats later nothing flapped
        seen = db.scalar("SELECT last_seen FROM smtpgate.nodes WHERE node = 'pair'")
        wait_for(lambda: db.scalar("SELECT last_seen FROM smtpgate.nodes WHERE "
                                   "node = 'pair'") != seen, 12, what="a heartbeat")
        for g in (g1, g3):
            assert state(g)["live_nodes"] == "2"
            assert g.log("clusterd").count("live nodes:") == before[g.dir]
        # renamed: its waiting events go out under the new name
        g2.stop("clusterd")
        g2.conf["cluster_node"] = "pair2"
        g2.write_conf()
        g2.start("clusterd")
        wait_all_once(db, "pair2", local_ids(g2))
        wait_all_once(db, "pair", local_ids(g1))
        for g in (g1, g2, g3):
            wait_for(lambda: state(g)["live_nodes"] == "3", 20, what="live_nodes 3")
        assert "conflict" not in state(g2)
    finally:
        for g in (g1, g2, g3):
            if g is not None:
                g.close()


def test_restart_takes_its_row_back_at_once(db):
    """A restart of the same gateway (same spool, same claim) is no second
    gateway: its row is its own at the first heartbeat, well inside the
    live window, and what it logged meanwhile is shipped."""
    g = gateway(db, cluster_node="solo")
    try:
        wait_for(lambda: claim(db, "solo"), 20, what="solo's row")
        first = claim(db, "solo")
        started = db.scalar("SELECT started FROM smtpgate.nodes WHERE node = 'solo'")
        g.stop("clusterd")
        smtp_send(g, ["delivered@" + SIM, "bounce@" + SIM])
        wait_for(lambda: finals(g) >= 2, 60, what="final events")
        time.sleep(1.1)  # a later `started` (whole seconds)
        g.start("clusterd")
        wait_all_once(db, "solo", local_ids(g), timeout=15)
        assert claim(db, "solo") == first
        assert db.scalar("SELECT started FROM smtpgate.nodes WHERE node = 'solo'") != started
        assert "two gateways" not in g.log("clusterd")
        assert "conflict" not in state(g)
        rc, st = status(g)
        assert st["cluster"]["conflict"] is None
        assert first in g.log("clusterd")  # the claim is logged at start
        assert st["cluster"]["live_nodes"] == 1
    finally:
        g.close()


GONE = "node %s: deleted from smtpgate.nodes (last seen "


def test_removed_node_rows_deleted_after_retention(db):
    """The row of a node not seen for cluster_node_retention (7d) is
    deleted by a live node's housekeeping (at connect and hourly), with
    its journal marks, one log line each; a row seen within the
    retention stays, the node's issue counters stay (issue_retention),
    and a second run deletes nothing."""
    g = gateway(db, cluster_node="keeper")
    try:
        wait_for(lambda: claim(db, "keeper"), 20, what="keeper's row")
        g.stop("clusterd")
        for node, age in (("gone1", "8 days"), ("recent", "6 days")):
            db.query("INSERT INTO smtpgate.nodes (node, started, last_seen, "
                     "version, claim) VALUES ('%s', now() - interval '%s', "
                     "now() - interval '%s', '0.9', NULL)" % (node, age, age))
            db.query("INSERT INTO smtpgate.journal_marks (node, instance, "
                     "last_seq, digest, version, updated) VALUES ('%s', '%s', 7, "
                     "'\\x00', 1, now() - interval '%s')" % (node, "ab" * 16, age))
        db.query("INSERT INTO smtpgate.issue_counts (account, issue, node, day, "
                 "counters, updated) VALUES ('acc', 99, 'gone1', current_date, "
                 "'{}', now())")
        g.start("clusterd")
        wait_for(lambda: GONE % "gone1" in g.log("clusterd"), 20, what="gone1 deleted")
        assert "last seen " in g.log("clusterd") and \
            "with 1 journal mark(s)" in g.log("clusterd"), g.log("clusterd")
        assert not has_row(db, "gone1")
        assert has_row(db, "recent") and has_row(db, "keeper")
        marks = [r[0] for r in db.query("SELECT node FROM smtpgate.journal_marks "
                                        "WHERE node IN ('gone1', 'recent')")]
        assert marks == ["recent"], marks
        assert db.scalar("SELECT count(*) FROM smtpgate.issue_counts "
                         "WHERE node = 'gone1'") == "1"
        assert GONE % "recent" not in g.log("clusterd")
        # idempotent: the next run (another node's, or a restart) finds none
        g.stop("clusterd")
        db.query("INSERT INTO smtpgate.nodes (node, started, last_seen, version) "
                 "VALUES ('gone2', now() - interval '9 days', now() - interval "
                 "'9 days', '0.9')")
        g.start("clusterd")
        wait_for(lambda: GONE % "gone2" in g.log("clusterd"), 20, what="gone2 deleted")
        assert "gone2: deleted from smtpgate.nodes (last seen " in g.log("clusterd")
        assert "with 0 journal mark(s)" in g.log("clusterd")
        assert g.log("clusterd").count(GONE % "gone1") == 1
        assert sorted(r[0] for r in db.query("SELECT node FROM smtpgate.nodes")) == \
            ["keeper", "recent"]
    finally:
        g.close()


OLD_BEAT = ("INSERT INTO smtpgate.nodes (node, started, last_seen, version) "
            "VALUES ('%s', now(), now(), '0.8') ON CONFLICT (node) DO UPDATE "
            "SET started = EXCLUDED.started, last_seen = now(), "
            "version = EXCLUDED.version")


def test_pre_claim_clusterd_with_the_same_name_refused(db):
    """A clusterd from before the claim (its heartbeat, simulated with
    psql, updates last_seen and leaves the claim as it is) beating the
    same cluster_node is another gateway: this one notices the row
    changed under its claim, is refused as for a claimed name (one log
    line, spoolctl status REFUSED, exit 1) and does not touch the row;
    once the old one is gone for the live window it resumes."""
    g = gateway(db, cluster_node="mixed")
    try:
        wait_for(lambda: claim(db, "mixed"), 20, what="mixed's row")
        mine = claim(db, "mixed")
        stop = threading.Event()

        def old_clusterd():
            while not stop.wait(1):
                db.query(OLD_BEAT % "mixed")

        t = threading.Thread(target=old_clusterd, daemon=True)
        t.start()
        try:
            wait_for(lambda: REFUSED % "mixed" in g.log("clusterd"), 30, what="refused")
            log = g.log("clusterd")
            assert log.count(REFUSED % "mixed") == 1
            assert "the other: an older clusterd that sets no claim" in log, log
            wait_for(lambda: "conflict" in state(g), 10, what="conflict in cluster.state")
            rc, st = status(g)
            assert rc == 1 and st["cluster"]["conflict"]["claim"] is None, st
            out = g.spoolctl("status", check=False).stdout
            assert "REFUSED: two gateways use cluster_node mixed (the other: " \
                "an older clusterd that sets no claim" in out, out
            # refused: the row is left to the old one (its version stays)
            time.sleep(6)   # more than a heartbeat
            assert db.scalar("SELECT version FROM smtpgate.nodes "
                             "WHERE node = 'mixed'") == "0.8"
            assert claim(db, "mixed") == mine
        finally:
            stop.set()
            t.join(10)
        # the old one gone for the live window: the name is this one's again
        db.query("UPDATE smtpgate.nodes SET last_seen = now() - interval '31 seconds' "
                 "WHERE node = 'mixed'")
        wait_for(lambda: RESUMED in g.log("clusterd"), 20, what="resumed")
        wait_for(lambda: "conflict" not in state(g), 10, what="no conflict")
        assert status(g)[0] == 0
    finally:
        g.close()
