"""State that grows with use must stop at a bound (h-astate): each test
drives one piece of state past its bound with many requests or many
distinct keys, quickly, and checks that it stops there, says so once in
the log, and loses no acknowledged mail. README "Storage and retention"
has the table. Every wait is bounded.
"""
import os

import pytest

from smtpgate import binary
from test_mta_sts import env, outcome, pki  # noqa: F401 (fixtures)
from test_trackd import engage, fake_qid, gateway, request, seed, start_trackd

HITS_MAX = 100  # SPOOL_ENGAGE_HITS_MAX


@pytest.mark.skipif(
    not all(os.path.exists(binary(n)) for n in ("trackd", "track-seed")),
    reason="trackd or track-seed not built")
def test_tracking_url_in_a_loop_records_a_bounded_number_of_events():
    """Anyone holding one tracked copy can fetch its pixel and its links
    in a loop: every hit used to become an event (delivery log,
    event_log, callbacks), so one URL grew the database without end
    within delivery_log_retention. Now a copy records at most 100
    opened and 100 clicked events; later hits are still answered (the
    GIF, the redirect), not recorded, and logged once per copy and kind.
    Another recipient's copy keeps its own count."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["a@dest.test", "b@dest.test"])
        for _ in range(HITS_MAX + 15):
            assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        for i in range(HITS_MAX + 10):
            st, h, _ = request(g, "GET", "/c/" + tok["click"][0][i % 2])
            assert st == 302
        for _ in range(3):
            assert request(g, "GET", "/o/" + tok["open"][1])[0] == 200
        g.stop("trackd")    # commits everything pending
        assert len(engage(g, "opened", "a@dest.test")) == HITS_MAX
        assert len(engage(g, "clicked", "a@dest.test")) == HITS_MAX
        assert len(engage(g, "opened", "b@dest.test")) == 3
        log = g.log("trackd")
        assert log.count("recorded=no (%d opened events" % HITS_MAX) == 1, log[-3000:]
        assert log.count("recorded=no (%d clicked events" % HITS_MAX) == 1
        assert "%s: hit=open, rcpt=0, recorded=no" % qid in log


def test_distinct_campaign_ids_stop_making_issues_at_the_daily_bound():
    """Issue records live for issue_retention (400d): a client that makes
    X-Campaign-Id unique per message used to get one issue record per
    message, kept for a year. With max_issues_per_day = 5, the first 5
    campaigns of the day get their issues, later new ones go to the
    day's issue without a campaign (one log line each) and are delivered
    as usual; an existing campaign keeps getting its own mail."""
    import smtplib

    import peers
    from smtpgate import Gateway, message, smtp_send, wait_for
    with peers.Mx() as mx:
        g = Gateway(tls=False, extra={"max_issues_per_day": "5"})
        try:
            g.conf["relayhost"] = "127.0.0.1:%d" % mx.port
            g.write_conf()
            g.add_account("acc", ips=["127.0.0.1/32"])
            g.start()
            s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
            for i in list(range(9)) + [0]:
                rcpt = "r%d@dest.test" % i
                smtp_send(g, [rcpt], conn=s, msg=message(
                    to=rcpt, headers={"X-Campaign-Id": "camp-%d" % i}))
            s.quit()
            wait_for(lambda: len([e for e in g.events() if e["event"] == "delivered"]) >= 10,
                     60, what="ten deliveries")
            issues = g.spoolctl_json("issues", "--account", "acc")
            named = {i["name"]: i["messages"] for i in issues if i["name"] is not None}
            unnamed = [i["messages"] for i in issues if i["name"] is None]
            assert named == {"camp-%d" % i: 2 if i == 0 else 1 for i in range(5)}, issues
            assert unnamed == [4], issues
            assert g.log("spoold").count("(max_issues_per_day): filed in the day's "
                                         "issue without a campaign") == 4
        finally:
            g.close()


def test_temporaries_of_killed_writers_are_swept():
    """A process killed between creating its temporary and the rename
    (a pid file, deliverd's state file, clusterd's cluster.state, a DKIM
    key copied into keys/) left ".NAME.XXXXXXXX.tmp" or ".NAME.tmp"
    behind for good: one more file per such kill. spoold now removes
    those older than stale_tmp_age from spool_dir and db/ at every rescan,
    deliverd from keys/ at start; young ones and other files stay."""
    import time

    from smtpgate import Gateway, wait_for
    g = Gateway(tls=False)
    try:
        g.start("spoold", "deliverd")
        old = time.time() - 2 * 3600
        stale = [os.path.join(g.spool, ".spoold.pid.0badc0de.tmp"),
                 os.path.join(g.spool, ".shaping.state.tmp"),
                 os.path.join(g.spool, ".cluster.state.12345678.tmp"),
                 os.path.join(g.spool, "db", ".some.file.12345678.tmp"),
                 os.path.join(g.spool, "keys", ".shop.example.s1.pem.deadbeef.tmp")]
        kept = [os.path.join(g.spool, "db", ".young.12345678.tmp"),
                os.path.join(g.spool, "db", "notatemporary"),
                os.path.join(g.spool, ".tmp")]
        for p in stale + kept:
            with open(p, "w") as f:
                f.write("partial")
            if not p.endswith("young.12345678.tmp"):
                os.utime(p, (old, old))
        wait_for(lambda: not any(os.path.exists(p) for p in stale[:4]), 20,
                 what="spoold's sweep of spool_dir and db/")
        g.stop("deliverd")
        g.start("deliverd")
        assert not os.path.exists(stale[4]), "deliverd's sweep of keys/"
        assert all(os.path.exists(p) for p in kept)
        log = g.log("spoold")
        assert "removed 3 stale temporary file(s) from %s\n" % g.spool in log, log[-2000:]
        assert "removed 1 stale temporary file(s) from %s/db" % g.spool in log
        assert "removed 1 stale temporary file(s) from %s/keys" % g.spool in g.log("deliverd")
    finally:
        g.close()


def test_full_mta_sts_cache_makes_room_for_a_new_domain(env):
    """With 4,096 unexpired policies cached (a busy month's MTA-STS
    domains with long max_age), a new domain's policy used to be refused
    for good ("not cached"): fetched again at every restart, and no
    protection from the cache against a downgrade. Now the policy that
    expires first makes room (one log line), and the new one survives a
    restart without another fetch."""
    from smtpgate import inject, put_msg
    g, mx, web = env
    inject(g, "mtasts-fill", "4096")
    put_msg(g, "acc", ["r@good.test"])
    assert outcome(g, "r@good.test")["event"] == "delivered"
    log = g.log("deliverd")
    assert ("MTA-STS: policy cache full (4096 domains): the policy of fill0.test "
            "(the first to expire) dropped for good.test's") in log, log[-2000:]
    g.stop("deliverd")
    g.start("deliverd")
    put_msg(g, "acc", ["s@good.test"])
    assert outcome(g, "s@good.test")["event"] == "delivered"
    assert web.fetches.get("good.test") == 1, "fetched again after a restart"
