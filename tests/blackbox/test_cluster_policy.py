"""Cluster mode's policy (issue 19 items 2, 3; CLUSTER.md item 4): two
gateways, each with its own spool, on one private PostgreSQL (lib/pg.py).
What spoolctl, spoold or deliverd changes on one node reaches the other
through the journal (cluster_out), smtpgate.policy and clusterd's mirror.

Mail goes to the simulator domain (deliverd answers for it itself), so no
peer is needed: delivered+TAG@ delivers, bounce@ hard-bounces. Every wait
is bounded; times are printed, never asserted.
"""
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

import pg
from pg import db  # noqa: F401 (the fixture)
import smtpgate
from smtpgate import Gateway, smtp_send, wait_for

SIM = "simulator.smtpgate.invalid"
STOP = "550 5.0.0 Email is in the account stoplist"
PERMFAIL = "550 5.0.0 Email has permanent delivery errors"
BLOCKED = "635 6.7.8 issue is blocked"
SYNC_S = 30  # "within seconds": clusterd pulls on NOTIFY and every 5 s


def node(db, **extra):
    g = Gateway(extra=dict({"cluster_dsn": db.dsn, "retry_schedule": "1s"}, **extra))
    try:
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
    except BaseException:
        g.close()
        raise
    return g


@pytest.fixture
def two(db):
    a = node(db)
    try:
        b = node(db)
    except BaseException:
        a.close()
        raise
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def stoplist(g):
    return g.spoolctl_json("stoplist", "list", "acc")


def auth_plain(g, login, password):
    """True if AUTH PLAIN as login succeeds at g's smtpd."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
    try:
        s.ehlo("client.test")
        s.starttls(context=smtpgate.tls_ctx())
        s.ehlo("client.test")
        s.user, s.password = login, password
        try:
            return s.auth("PLAIN", s.auth_plain)[0] == 235
        except smtplib.SMTPAuthenticationError:
            return False
    finally:
        s.close()


def finals(g, rcpt):
    return [e for e in g.events()
            if e.get("to") == rcpt and e["event"] in ("delivered", "bounced")]


def outcome(g, rcpt, campaign=None):
    """The final event of a message sent now to rcpt at g: (event, msg), or
    the whole event with a campaign (X-Campaign-Id)."""
    n = len(finals(g, rcpt))
    smtp_send(g, [rcpt], headers={"X-Campaign-Id": campaign} if campaign else None)
    wait_for(lambda: len(finals(g, rcpt)) > n, 30, what="the outcome for %s" % rcpt)
    e = finals(g, rcpt)[-1]
    return e if campaign else (e["event"], e.get("msg", ""))


def timed_wait(pred, what):
    t0 = time.monotonic()
    wait_for(pred, SYNC_S, what=what)
    print("%s: %.1fs" % (what, time.monotonic() - t0))


def published(r):
    """How many of a spoolctl command's changes reached PostgreSQL: those
    it published itself plus those that had left its journal published
    already (its node's clusterd may take them between spoolctl's count
    and its publish; spoolctl says so); None if it did not say."""
    m = re.search(r"published (\d+) change\(s\) to PostgreSQL"
                  r"(?:; (\d+) more had been published already)?", r.stderr)
    return None if m is None else int(m.group(1)) + int(m.group(2) or 0)


def test_account_created_on_a_authenticates_on_b(two):
    a, b = two
    assert not auth_plain(b, "shop", "s3cret-pw")
    r = a.spoolctl("account", "add", "shop", "--password", "s3cret-pw")
    assert published(r) == 1, r.stderr
    timed_wait(lambda: auth_plain(b, "shop", "s3cret-pw"), "the account on node B")
    assert not auth_plain(b, "shop", "wrong")
    # written by A; B's mirror did not publish it again as its own
    rows = pg_rows(a, "accounts")
    assert rows.get("shop") == a.conf["cluster_node"], rows


def pg_rows(g, kind):
    """{key's first part: origin} of smtpgate.policy's rows of kind."""
    dsn = g.conf["cluster_dsn"]
    import subprocess
    out = subprocess.run([pg.psql_path(pg.bindir()), "-X", "-q", "-A", "-t", "-F", "\t",
                          "-d", dsn, "-c",
                          "SELECT convert_from(substring(key from 1 for "
                          "position('\\x00'::bytea in key) - 1), 'UTF8'), origin "
                          "FROM smtpgate.policy WHERE kind = '%s' AND value IS NOT NULL"
                          % kind], capture_output=True, text=True, timeout=30)
    return dict(l.split("\t") for l in out.stdout.splitlines() if l)


def test_stoplist_added_on_b_refuses_on_a_deleted_on_a_passes_on_b(two):
    a, b = two
    addr = "delivered+stop@" + SIM
    assert outcome(a, addr)[0] == "delivered"
    r = b.spoolctl("stoplist", "add", "acc", addr)
    assert "published" in r.stderr, r.stderr
    timed_wait(lambda: addr in stoplist(a), "the stop-list entry on node A")
    assert outcome(a, addr) == ("bounced", STOP)
    r = a.spoolctl("stoplist", "del", "acc", addr)
    assert "published" in r.stderr, r.stderr
    timed_wait(lambda: addr not in stoplist(b), "its deletion on node B")
    assert outcome(b, addr)[0] == "delivered"
    # the tombstone stays in PostgreSQL (a node that was away deletes too)
    assert a.conf["cluster_dsn"] and pg_tombstones(a, "stoplist") == 1


def pg_tombstones(g, kind):
    import subprocess
    out = subprocess.run([pg.psql_path(pg.bindir()), "-X", "-q", "-A", "-t", "-d",
                          g.conf["cluster_dsn"], "-c",
                          "SELECT count(*) FROM smtpgate.policy WHERE kind = '%s' "
                          "AND value IS NULL" % kind],
                         capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip())


def test_postgresql_down_spoolctl_works_locally_and_b_catches_up(db, two):
    a, b = two
    addr, gone = "delivered+away@" + SIM, "delivered+gone@" + SIM
    db.stop()
    try:
        r = a.spoolctl("stoplist", "add", "acc", addr, timeout=60)
        assert "left for clusterd to publish" in r.stderr, r.stderr
        assert addr in stoplist(a)  # local at once
        assert outcome(a, addr) == ("bounced", STOP)
        # the same key twice in one journal: only the last counts
        a.spoolctl("stoplist", "add", "acc", gone, timeout=60)
        a.spoolctl("stoplist", "del", "acc", gone, timeout=60)
        time.sleep(2)
        assert addr not in stoplist(b)
    finally:
        db.start()
    # clusterd reconnects (back-off at most 30 s) and publishes the journal
    wait_for(lambda: addr in stoplist(b), 90, what="the entry on node B after PostgreSQL "
             "returned")
    assert outcome(b, addr) == ("bounced", STOP)
    assert gone not in stoplist(b) and pg_tombstones(a, "stoplist") == 1


def test_hard_bounce_on_b_suppresses_on_a(two):
    a, b = two
    addr = "bounce+hard@" + SIM
    assert outcome(b, addr)[0] == "bounced"  # deliverd on B learns it

    def suppressed(g):
        return [s for s in g.spoolctl_json("suppression", "list", "--account", "acc")
                if s["address"] == addr]
    assert suppressed(b)
    timed_wait(lambda: suppressed(a), "node B's hard bounce on node A")
    assert outcome(a, addr) == ("bounced", PERMFAIL)


def test_issue_block_on_a_blocks_the_same_issue_on_b(two):
    """Item 5 and the issue_block kind: both nodes file a campaign's mail
    under one issue id; blocking it on A blocks it on B, unblocking too."""
    a, b = two
    e = outcome(a, "delivered+c1@" + SIM, campaign="autumn")
    iid = e["issue"]["id"]
    assert iid > 1000, e  # the hash, not a counter
    e = outcome(b, "delivered+c2@" + SIM, campaign="autumn")
    assert e["issue"]["id"] == iid and e["event"] == "delivered", e
    r = a.spoolctl("issue", "block", str(iid))
    assert published(r) == 1, r.stderr

    def blocked(g):
        return [i for i in g.spoolctl_json("issues") if i["id"] == iid and i["blocked"]]
    timed_wait(lambda: blocked(b), "the block on node B")
    e = outcome(b, "delivered+c3@" + SIM, campaign="autumn")
    assert (e["event"], e["msg"]) == ("bounced", BLOCKED), e
    a.spoolctl("issue", "unblock", str(iid))
    timed_wait(lambda: not blocked(b), "the unblock on node B")
    assert outcome(b, "delivered+c4@" + SIM, campaign="autumn")["event"] == "delivered"


def test_dkim_key_added_on_a_reaches_b(two):
    """A DKIM key added on A: B has the record and the key file (kind
    dkim_key), byte for byte; deleted on A, both go on B."""
    a, b = two
    key = os.path.join(a.dir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", key],
                   check=True, capture_output=True, timeout=60)
    os.chmod(a.dir, 0o755)
    os.chmod(key, 0o644)
    r = a.spoolctl("dkim", "add", "acc", "example.com", "--selector", "s1",
                   "--key", key, "--default")
    assert published(r) == 2, r.stderr

    def listed(g):
        return g.spoolctl_json("dkim", "list", "acc")
    timed_wait(lambda: listed(b), "the DKIM key on node B")
    name = listed(b)[0]["keyfile"]
    with open(key, "rb") as f, open(os.path.join(b.spool, "keys", name), "rb") as g:
        assert f.read() == g.read()
    st = os.stat(os.path.join(b.spool, "keys", name))
    assert st.st_mode & 0o777 == 0o600
    r = a.spoolctl("dkim", "del", "acc", "example.com")
    assert published(r) == 2, r.stderr
    timed_wait(lambda: not listed(b), "its deletion on node B")
    assert not os.path.exists(os.path.join(b.spool, "keys", name))


def test_journal_overflow_pushes_every_row(two):
    """Past the journal's bound (meta cluster_out_overflow, set here with
    mdb_load instead of a million changes) nothing is journaled; spoolctl
    and clusterd say so once, and clusterd's next resync pushes every
    local row that PostgreSQL lacks."""
    a, b = two
    addr = "delivered+full@" + SIM
    mdb_load = "/usr/bin/mdb_load"
    if not os.path.exists(mdb_load):
        pytest.skip("mdb_load (Debian lmdb-utils) not installed")
    subprocess.run([mdb_load, "-T", "-s", "meta", os.path.join(a.spool, "db")],
                   input=b"cluster_out_overflow\\00\n\\00\\00\\00\\00\\00\\00\\00\\01\n",
                   check=True, capture_output=True, timeout=30)
    r = a.spoolctl("stoplist", "add", "acc", addr)
    assert "the journal is full" in r.stderr, r.stderr
    assert addr in stoplist(a)
    wait_for(lambda: "the journal is full" in a.log("clusterd"), 20,
             what="clusterd's line about the full journal")
    time.sleep(6)  # a pull and a publish round: nothing reaches B
    assert addr not in stoplist(b)
    assert a.log("clusterd").count("the journal is full") == 1
    a.stop("clusterd")
    a.start("clusterd")  # its first resync pushes every row
    timed_wait(lambda: addr in stoplist(b), "the pushed row on node B")
    assert "pushing every local policy row" in a.log("clusterd")


def test_single_node_export_then_a_second_node(db):
    """A single node's policy goes into PostgreSQL with spoolctl cluster
    export (idempotent), and a new node mirrors it."""
    a = Gateway(extra={"retry_schedule": "1s"})
    try:
        a.add_account("acc", ips=["127.0.0.1/32"])
        a.add_account("shop", password="s3cret-pw")
        for addr in ("x1@example.net", "x2@example.net"):
            a.spoolctl("stoplist", "add", "acc", addr)
        r = a.spoolctl("cluster", "export", check=False)
        assert r.returncode == 1 and "cluster_dsn is not set" in r.stderr, r
        a.conf["cluster_dsn"] = db.dsn
        a.write_conf()
        out = a.spoolctl("cluster", "export").stdout
        assert "accounts     2 added, 0 already there" in out, out
        assert "stoplist     2 added, 0 already there" in out, out
        assert "exported to PostgreSQL: 4 rows added, 0 already there" in out, out
        out = a.spoolctl("cluster", "export").stdout
        assert "exported to PostgreSQL: 0 rows added, 4 already there" in out, out
        assert db.scalar("SELECT count(*) FROM smtpgate.policy") == "4"
        b = node(db)
        try:
            timed_wait(lambda: "x2@example.net" in stoplist(b), "the export on node B")
            assert auth_plain(b, "shop", "s3cret-pw")
            assert outcome(b, "x1@example.net") == ("bounced", STOP)
        finally:
            b.close()
    finally:
        a.close()


def test_resume_on_a_sends_what_b_held_at_once(two):
    """A pause published from node A holds B's mail; A's resume makes B's
    held recipients due at once (as spoolctl resume does locally), not at
    the due time the pause pushed on (a minute or more)."""
    a, b = two
    addr = "delivered+paused@" + SIM
    r = a.spoolctl("pause", "--domain", SIM, "--account", "acc")
    assert r.returncode == 0 and "published" in r.stderr, r.stderr
    timed_wait(lambda: any(p["domain"] == SIM for p in b.spoolctl_json("pause")),
               "the pause on node B")
    smtp_send(b, [addr])
    qid = wait_for(lambda: [m["qid"] for m in b.spoolctl_json("queue")
                            if any(rc["to"] == addr and rc["next"] is not None
                                   and rc["next"] > time.strftime(
                                       "%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                                   for rc in m["recipients"])],
                   30, what="the message set aside on node B")
    print("held on B:", qid)
    assert finals(b, addr) == []
    r = a.spoolctl("resume", "--domain", SIM, "--account", "acc")
    assert r.returncode == 0 and "published" in r.stderr, r.stderr
    timed_wait(lambda: finals(b, addr), "node B delivers the held message")
    assert finals(b, addr)[0]["event"] == "delivered"
    assert "domain=%s, account=acc resumed on another node: 1 recipient(s) " \
        "due now" % SIM in b.log("clusterd")


# ---- the journal's high-water mark (smtpgate.journal_marks)

def change_offline(g, *args):
    """spoolctl args on g (none of g's daemons running) with PostgreSQL
    unreachable for that spoolctl: the change stays in g's journal."""
    dsn = g.conf["cluster_dsn"]
    g.conf["cluster_dsn"] = "host=%s dbname=smtpgate" % os.path.join(g.dir, "no-pg")
    g.write_conf()
    try:
        r = g.spoolctl(*args)
    finally:
        g.conf["cluster_dsn"] = dsn
        g.write_conf()
    assert "left for clusterd to publish" in r.stderr, r.stderr


LMDB_FILES = ("data.mdb", "lock.mdb")


def copy_lmdb(g, snap, back=False):
    """g's LMDB files to the directory snap, or (back) from it: a copy taken
    while none of g's daemons runs. Copied into the existing files on the
    way back, so they keep their owner."""
    os.makedirs(snap, exist_ok=True)
    for f in LMDB_FILES:
        live = os.path.join(g.spool, "db", f)
        if back:
            shutil.copyfile(os.path.join(snap, f), live)
        else:
            shutil.copyfile(live, os.path.join(snap, f))


def cluster_state(g):
    try:
        with open(os.path.join(g.spool, "cluster.state")) as f:
            return dict(line.split(" ", 1) for line in f.read().splitlines())
    except OSError:
        return {}


def journal_drained(g, since):
    """clusterd of g wrote, at since or later, that its journal is empty."""
    st = cluster_state(g)
    return int(st.get("updated", "0")) >= since and st.get("journal") == "0"


def stop_row(db, addr):
    """(deleted, origin) of the stop-list row acc/addr in PostgreSQL."""
    rows = db.query("SELECT value IS NULL, origin FROM smtpgate.policy WHERE "
                    "kind = 'stoplist' AND key = convert_to('acc', 'UTF8') || "
                    "'\\x00'::bytea || convert_to('%s', 'UTF8') || '\\x00'::bytea" % addr)
    return (rows[0][0] == "t", rows[0][1]) if rows else None


def mirrored_all(db, g):
    """g mirrored every version PostgreSQL has."""
    top = int(db.scalar("SELECT coalesce(max(version), 0) FROM smtpgate.policy"))
    return int(cluster_state(g).get("policy_version", "0")) >= top


def published_but_not_dropped(db, a, b, addr):
    """The window between the publish's COMMIT and the journal's drop
    (clusterd killed there, or the drop failing): A's journal entry adding
    addr reached PostgreSQL, B then deleted addr, and A is left stopped with
    the entry still in its journal (its LMDB as it was before the drop)."""
    snap = os.path.join(a.dir, "lmdb-before-drop")
    a.stop()
    change_offline(a, "stoplist", "add", "acc", addr)
    copy_lmdb(a, snap)  # the journal holds the entry: the crash's LMDB
    a.start()
    timed_wait(lambda: addr in stoplist(b), "A's entry on node B")
    assert stop_row(db, addr) == (False, a.conf["cluster_node"])
    r = b.spoolctl("stoplist", "del", "acc", addr)
    assert published(r) == 1, r.stderr
    timed_wait(lambda: addr not in stoplist(a), "B's deletion on node A")
    a.stop()
    copy_lmdb(a, snap, back=True)
    assert addr in stoplist(a)  # A's LMDB: the entry and the old value


def both_keep_the_deletion(db, a, b, addr):
    assert stop_row(db, addr) == (True, b.conf["cluster_node"])
    timed_wait(lambda: addr not in stoplist(a), "B's deletion on node A again")
    timed_wait(lambda: mirrored_all(db, b), "node B's pull")
    assert addr not in stoplist(b)
    assert stop_row(db, addr) == (True, b.conf["cluster_node"])


def test_published_entries_left_in_the_journal_are_not_published_again(db, two):
    """Published again, A's older value would overwrite B's newer change
    everywhere; the mark skips it and A re-reads the rows changed since, so
    both nodes keep B's deletion."""
    a, b = two
    addr = "delivered+mark@" + SIM
    published_but_not_dropped(db, a, b, addr)
    since = int(time.time())
    a.start("clusterd")
    timed_wait(lambda: journal_drained(a, since), "A's journal drained")
    assert stop_row(db, addr) == (True, b.conf["cluster_node"])
    assert "already published" in a.log("clusterd"), a.log("clusterd")
    both_keep_the_deletion(db, a, b, addr)


def test_spoolctl_skips_published_entries_and_publishes_its_own(db, two):
    """spoolctl's publish right after its commit meets the entry first: it
    publishes only its own change; clusterd, started after, re-reads."""
    a, b = two
    addr = "delivered+mark2@" + SIM
    published_but_not_dropped(db, a, b, addr)
    r = a.spoolctl("stoplist", "add", "acc", "own@example.net")
    # its own change; the published entry is dropped, not sent again
    assert "published 1 change(s) to PostgreSQL" in r.stderr, r.stderr
    assert stop_row(db, addr) == (True, b.conf["cluster_node"])
    assert stop_row(db, "own@example.net") == (False, a.conf["cluster_node"])
    a.start("clusterd")
    both_keep_the_deletion(db, a, b, addr)
    assert "own@example.net" in stoplist(b)


def test_rebuilt_node_publishes_its_new_entries(db, two):
    """A node rebuilt with a fresh LMDB under the same cluster_node starts its
    journal's sequence again at 1: its own mark (a new instance) lets its
    changes through although their numbers are below the old LMDB's."""
    a, b = two
    for i in range(3):
        r = a.spoolctl("stoplist", "add", "acc", "old%d@example.net" % i)
        assert published(r) == 1, r.stderr
    name = a.conf["cluster_node"]
    a.close()
    c = node(db, cluster_node=name)  # its account: journal entry 1 again
    try:
        r = c.spoolctl("stoplist", "add", "acc", "new@example.net")
        assert published(r) == 1, r.stderr
        timed_wait(lambda: "new@example.net" in stoplist(b), "the rebuilt node's entry on B")
        assert stop_row(db, "new@example.net") == (False, name)
        marks = db.query("SELECT instance, last_seq FROM smtpgate.journal_marks "
                         "WHERE node = '%s' ORDER BY last_seq" % name)
        assert len(marks) == 2 and marks[0][0] != marks[1][0], marks
        assert all(len(m[0]) == 32 for m in marks), marks
    finally:
        c.close()


def test_lmdb_restored_from_an_older_copy_publishes_its_new_entries(db, two):
    """A's LMDB put back from a copy older than its last publish (a restored
    backup or VM snapshot): its sequence numbers restart below the mark, but
    the entry at the mark is not the one published, so the journal is taken
    for a new sequence (a new instance) and A's new change is published."""
    a, b = two
    snap = os.path.join(a.dir, "lmdb-old")
    a.stop()
    copy_lmdb(a, snap)  # an empty journal
    a.start()
    for i in range(2):
        r = a.spoolctl("stoplist", "add", "acc", "later%d@example.net" % i)
        assert published(r) == 1, r.stderr
    a.stop()
    copy_lmdb(a, snap, back=True)
    change_offline(a, "stoplist", "add", "acc", "after@example.net")
    a.start("clusterd")
    timed_wait(lambda: "after@example.net" in stoplist(b), "A's new entry on node B")
    assert stop_row(db, "after@example.net") == (False, a.conf["cluster_node"])
    assert "does not continue" in a.log("clusterd"), a.log("clusterd")
