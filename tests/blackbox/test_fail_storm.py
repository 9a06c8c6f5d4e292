"""Failures must not multiply work, and nothing is sent twice because
something else failed (h-afail): a destination that cannot be reached (DNS
failure, a host that refuses every session) is not tried once per message;
callbacks accepted but not deleted are not posted again; a 452-split job
killed half-way resends only its last transaction; LMDB EIO after a 250,
full disks under smtpd (BDAT), spoold and event_log; 4xx RCPT, 421 and a
drop after the final dot. Real peers on 127.0.0.1 (peers.Mx, scripted
next hops peers.Hop, a scripted resolver peers.AdResolver, a callback
receiver chaos.Receiver), tests/tools/eio-shim.so, small tmpfs mounts
(root). Every wait bounded."""
import collections
import os
import time

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for

# deliverd's defaults (deliverd.8 TRAFFIC SHAPING): suspend_after 5; with
# deliverd_workers 2 at most two jobs per worker are in flight besides
SUSPEND_AFTER = 5
IN_FLIGHT = 2 * 2


def mx_queries(dns, domain):
    return sum(1 for name, qtype in list(dns.queries) if name == domain and qtype == "MX")


def deferred_to(g, domain):
    return [e for e in g.events() if e["event"] == "deferred" and e["to"].endswith("@" + domain)]


def test_dns_servfail_burst_is_not_looked_up_per_message():
    """30 messages to a domain whose MX lookup fails (SERVFAIL): after
    suspend_after failed lookups the domain is suspended like an unreachable
    one; the rest wait without a lookup, an attempt or an event each, and
    stay queued."""
    n = 30
    with peers.AdResolver({}, bogus=["dnsfail.test"]) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "retry_schedule": "1h"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for i in range(n):
            put_msg(g, "acc", ["u%d@dnsfail.test" % i])
        wait_for(lambda: "state=suspended" in g.log("deliverd") or
                 len(deferred_to(g, "dnsfail.test")) >= n, 60,
                 what="a suspension or every message tried")
        # what was in flight at the suspension comes back; nothing more
        time.sleep(3)
        tried, queries = len(deferred_to(g, "dnsfail.test")), mx_queries(dns, "dnsfail.test")
        print("DNS SERVFAIL burst: %d messages, %d deferred, %d MX queries" % (n, tried, queries))
        assert "destination=dnsfail.test, state=suspended" in g.log("deliverd")
        assert tried <= SUSPEND_AFTER + IN_FLIGHT, tried
        # glibc's resolver asks twice (retry 2) per lookup of a SERVFAIL name
        assert queries <= 2 * (SUSPEND_AFTER + IN_FLIGHT), queries
        # nothing is lost: every recipient is still queued
        q = g.spoolctl_json("queue", "--json")
        pending = [r for m in q for r in m.get("recipients", [])]
        assert len(pending) == n, q
        assert g.procs["deliverd"].poll() is None


def test_dns_failure_suspends_the_domain_not_its_hosting_destination():
    """Two domains learned to share one MX host set; the MX lookup of one
    starts failing: that domain is suspended on its own, the other keeps
    its deliveries through the shared destination. (One message per
    connection: a cached connection needs no lookup.)"""
    records = {"good.test": [("MX", "10 mx.hoster.test.")],
               "broken.test": [("MX", "10 mx.hoster.test.")],
               "mx.hoster.test": [("A", "127.0.0.1")]}
    with peers.Mx() as mx, peers.AdResolver(records) as dns, Gateway(tls=False, extra={
            "dns_server": dns.server, "remote_port": str(mx.port),
            "retry_schedule": "1h", "max_msgs_per_connection": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        for d in ("good.test", "broken.test"):
            put_msg(g, "acc", ["first@" + d])
            g.wait_events(lambda e: e["to"] == "first@" + d and e["event"] == "delivered",
                          timeout=30, what="the first message to " + d)
        shared = "destination=mx{mx.hoster.test}, domain=broken.test"
        assert shared in g.log("deliverd")
        dns.bogus.add("broken.test")
        for i in range(12):
            put_msg(g, "acc", ["b%d@broken.test" % i])
        try:
            wait_for(lambda: "destination=broken.test, state=suspended" in g.log("deliverd"),
                     30, what="broken.test suspended")
        except Exception:
            print(g.log("deliverd")[-6000:])
            raise
        put_msg(g, "acc", ["later@good.test"])
        g.wait_events(lambda e: e["to"] == "later@good.test" and e["event"] == "delivered",
                      timeout=30, what="good.test delivered meanwhile")
        log = g.log("deliverd")
        print("\n".join(l for l in log.splitlines() if "destination=" in l))
        assert "destination=mx{mx.hoster.test}, state=suspended" not in log
        assert len(deferred_to(g, "broken.test")) <= SUSPEND_AFTER + IN_FLIGHT


# ---------------------------------------------------------------- LMDB EIO

EIO_SHIM = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "eio-shim.so")


def start_with_eio(g, name="deliverd"):
    """Starts g's daemon with tests/tools/eio-shim.so: its writes to
    data.mdb fail with EIO while the returned flag file exists."""
    if not os.path.exists(EIO_SHIM):
        pytest.skip("tests/tools/eio-shim.so not built")
    flag = os.path.join(g.dir, "eio")
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "SMTPGATE_EIO_FLAG", "ASAN_OPTIONS")}
    os.environ.update({"LD_PRELOAD": EIO_SHIM, "SMTPGATE_EIO_FLAG": flag,
                       "ASAN_OPTIONS": (saved["ASAN_OPTIONS"] or "") +
                       ":verify_asan_link_order=0"})
    try:
        g.start(name)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return flag


def repeated(ids):
    return {i: n for i, n in collections.Counter(ids).items() if n > 1}


def test_callback_accepted_but_not_deleted_is_not_posted_again():
    """The receiver answers 200, then the outbox deletion fails (EIO from
    the disk): the events are not posted again round after round; the
    deletion alone is retried with back-off, and once the disk works they
    leave the outbox without another POST."""
    recv = chaos.Receiver()          # down while the outbox fills
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "callback_retry_min": "1s",
            "callback_retry_max": "2s", "callback_batch_max": "50"}) as g:
        inject(g, "account", "cbk", recv.url)
        put_msg(g, "cbk", ["c{n}@dest.test"], count=20)
        flag = start_with_eio(g)
        wait_for(lambda: len(g.events()) >= 20, 60, what="20 events")
        want = {e["id"] for e in g.events()}
        open(flag, "w").close()       # the disk fails from now on
        recv.start()
        try:
            wait_for(lambda: recv.posts > 0, 30, what="a callback POST")
            time.sleep(6)
            ids, posts = recv.ids(), recv.posts
            log = g.log("deliverd")
            print("EIO: %d posts, %d events, %d repeated" % (posts, len(ids), len(repeated(ids))))
            print("\n".join([l for l in log.splitlines() if "callback" in l][:6]))
            assert "callback cbk: outbox delete" in log, "the deletion did not fail"
            assert not repeated(ids), "%d events posted again (%d posts)" % (
                len(repeated(ids)), posts)
            os.unlink(flag)               # the disk works again
            wait_for(lambda: "callback cbk: 20 accepted event(s) left the outbox" in
                     g.log("deliverd"), 30, what="the deletion after the fault")
            time.sleep(2)
            assert recv.posts == posts and set(recv.ids()) == want
            assert not repeated(recv.ids())
        finally:
            recv.stop()


def test_scheduler_commit_eio_after_250_no_resend():
    """The next hop accepted; the commit of the outcome fails with EIO:
    nothing is sent again while it fails (deliverd.8 FAILED COMMITS), and
    everything is recorded once the disk works again."""
    from test_deliverd_commit import assert_once, recording_hop
    with recording_hop() as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s"}) as g:
        inject(g, "account", "acc")
        flag = start_with_eio(g)
        open(flag, "w").close()
        targets = ["e%d@dest.test" % i for i in range(8)]
        for t in targets:
            put_msg(g, "acc", [t])
        wait_for(lambda: "Input/output error" in g.log("deliverd"), 30, what="a failed commit")
        time.sleep(5)
        assert_once(srv.received, targets)
        assert g.procs["deliverd"].poll() is None
        os.unlink(flag)
        wait_for(lambda: not g.files("queue"), 60, what="every outcome recorded")
        assert_once(srv.received, targets)
        assert sorted(srv.received) == sorted(targets)
        lines = [l for l in g.log("deliverd").splitlines() if "commit" in l]
        print("\n".join(lines[:4]))
        assert len(lines) < 20, "one log line per interval, not per retry: %d" % len(lines)


# ---------------------------------------------------------------- partial and ambiguous

def test_rcpt_4xx_retries_only_that_recipient():
    """One RCPT of three gets 451: the two accepted are delivered once and
    are not part of the retry."""
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1s"}) as g:
        mx.rules["b@dest.test"] = ["451 4.3.0 try again", "250 2.1.5 Ok"]
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["a@dest.test", "b@dest.test", "c@dest.test"])
        g.wait_events(lambda e: e["to"] == "b@dest.test" and e["event"] == "delivered",
                      timeout=30, what="b delivered on the retry")
        time.sleep(2)
        tx = [sorted(m["to"]) for m in mx.received()]
        print("transactions:", tx)
        assert tx == [["a@dest.test", "c@dest.test"], ["b@dest.test"]], tx


def test_drop_after_the_dot_resends_one_transaction_per_retry():
    """The next hop reads the whole message of three recipients, then hangs
    up before its reply (the ambiguous case: it may have been delivered).
    The retry sends it again once, as one transaction for the three
    recipients, not once per recipient."""
    # the first message read is dropped (recorded without a reply)
    script = {".": lambda s, data: None if s.hop.messages else peers.DROP}
    with peers.Hop(script) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s",
            "data_timeout": "3s"}) as g:
        rcpts = ["x%d@dest.test" % i for i in range(3)]
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", rcpts)
        wait_for(lambda: sum(1 for e in g.events() if e["event"] == "delivered") == 3, 30,
                 what="the three delivered on the retry")
        time.sleep(2)
        dropped = [m for m in srv.messages if m["reply"] is None]
        deferred = [e for e in g.events() if e["event"] == "deferred"]
        print("dropped %d, then received %s; deferred: %s" % (
            len(dropped), srv.received, deferred[0]["msg"] if deferred else None))
        assert len(dropped) == 1 and len(deferred) == 3
        assert all(e["attempt"] == 1 for e in deferred)
        assert sorted(srv.received) == rcpts, srv.received


# ---------------------------------------------------------------- spoold, disk full

def test_spoold_disk_full_keeps_accepted_messages_and_resumes():
    """Messages smtpd answered 250 for wait in incoming/new while the spool's
    file system is full: spoold's filing fails, stops and is retried; none
    is dropped or quarantined; once there is space all are filed."""
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    g = Gateway(tls=False, extra={"spoold_rescan_interval": "1s", "min_free_space": "1"})
    smtpgate.mount_tmpfs(g, "4m")
    try:
        g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
        g.start("spoold", "smtpd")
        smtpgate.smtp_send(g, ["first@dest.test"])
        wait_for(lambda: not g.files("new") and len(g.files("queue")) == 1, 20, what="filed")
        g.stop("spoold")
        acked = []
        for i in range(20):
            smtpgate.smtp_send(g, ["r%d@dest.test" % i])    # raises unless 250
            acked.append(i)
        assert len(g.files("new")) == 20
        filler = os.path.join(g.spool, "filler")
        smtpgate.fill_disk(filler)
        g.start("spoold")
        time.sleep(5)
        log = g.log("spoold")
        stops = [l for l in log.splitlines() if "filing stopped" in l]
        print("full: new=%d queue=%d; %d 'filing stopped' lines, e.g. %s" % (
            len(g.files("new")), len(g.files("queue")), len(stops), stops[:1]))
        assert "quarantined, reason" not in log
        assert len(g.files("new")) + len(g.files("queue")) == 21
        assert g.procs["spoold"].poll() is None
        os.unlink(filler)
        wait_for(lambda: not g.files("new") and len(g.files("queue")) == 21, 30,
                 what="all 21 filed once there is space")
        assert "quarantined, reason" not in g.log("spoold")
    finally:
        try:
            g.stop()
        except Exception:
            pass
        smtpgate.umount_tmpfs(g)
        g.close()


# ---------------------------------------------------------------- 452 split, then a crash

def test_452_split_job_killed_resends_only_the_unanswered_transaction():
    """A next hop takes 2 recipients per transaction (452 for the rest), so
    6 recipients go in 3 transactions of one job; it accepts the first two
    and never answers the third's end of data, and deliverd is killed then.
    After the restart only the third transaction's recipients go again: the
    4 the next hop accepted were recorded as they were accepted, not at the
    end of the job."""
    limit = [True]      # 2 recipients per transaction, no reply to the third

    def rcpt(s, address):
        if limit[0] and len(s.rcpts) >= 2:
            return "452 4.5.3 Too many recipients"

    def end_of_data(s, data):
        if limit[0] and len(s.hop.messages) == 2:
            return peers.hang(30)       # never answers: deliverd is killed

    def hung():
        return [m for m in srv.messages if m["reply"] is None]

    rcpts = ["s%d@dest.test" % i for i in range(6)]
    with peers.Hop({"RCPT": rcpt, ".": end_of_data}) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s",
            "data_timeout": "60s", "deliverd_workers": "1"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", rcpts)
        wait_for(hung, 30, what="the third transaction")
        time.sleep(1.5)
        g.kill("deliverd")
        first = list(srv.received)
        limit[0] = False
        g.start("deliverd")
        wait_for(lambda: set(srv.received) == set(rcpts) and not g.files("queue"), 30,
                 what="every recipient delivered after the restart")
        counts = collections.Counter(srv.received)
        print("accepted before the kill: %s; in all: %s" % (first, dict(counts)))
        assert sorted(first) == rcpts[:4], first
        assert all(n == 1 for n in counts.values()), "sent twice: %s" % repeated(srv.received)


# ---------------------------------------------------------------- event_log on a full disk

def test_event_log_disk_full_loses_and_repeats_nothing():
    """event_log on its own small file system, which fills up while
    messages are delivered: the export fails and is retried (the events are
    in LMDB), no line is cut in half or written twice, and once there is
    space every event is in the file exactly once."""
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    with peers.Mx() as mx:
        mnt = smtpgate.tempfile.mkdtemp(prefix="sgevlog-")
        r = smtpgate.subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0777",
                                     "tmpfs", mnt], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs: %s" % r.stderr.strip())
        try:
            evlog = os.path.join(mnt, "events.jsonl")
            with Gateway(tls=False, extra={
                    "relayhost": "127.0.0.1:%d" % mx.port, "event_log": evlog,
                    "spoold_rescan_interval": "1s"}) as g:
                g.start("spoold", "deliverd")
                inject(g, "account", "acc")
                filler = os.path.join(mnt, "filler")
                smtpgate.fill_disk(filler)
                # room for a few events only (two pages)
                os.truncate(filler, os.path.getsize(filler) - 8192)
                put_msg(g, "acc", ["ev{n}@dest.test"], count=60)
                wait_for(lambda: len(mx.received()) >= 60, 60, what="60 delivered")
                wait_for(lambda: "No space left" in g.log("deliverd") + g.log("spoold"), 20,
                         what="a failed export")
                time.sleep(3)
                warn = [l for l in (g.log("deliverd") + g.log("spoold")).splitlines()
                        if "events export" in l]
                os.unlink(filler)
                wait_for(lambda: len(g.events()) >= 60, 30, what="every event exported")
                time.sleep(2)
                with open(evlog, "rb") as f:
                    lines = f.read().split(b"\n")
                assert lines[-1] == b"", "the file ends in a cut line"
                ids = [smtpgate.json.loads(l)["id"] for l in lines[:-1]]
                print("%d export warnings while full; %d lines, %d distinct" % (
                    len(warn), len(ids), len(set(ids))))
                assert len(ids) == len(set(ids)) == 60
        finally:
            smtpgate.subprocess.run(["umount", "-l", mnt], capture_output=True)


# ---------------------------------------------------------------- a next hop that will not talk

GREETINGS = {
    "554-no-enhanced-code": "554 No SMTP service here",
    "421-busy": "421 4.3.2 Service not available, closing channel",
}


@pytest.mark.parametrize("case", list(GREETINGS))
def test_next_hop_refusing_every_session_is_suspended(case):
    """The only next hop answers every connection with a refusal at the
    greeting: not one session per message (nor one a second while slowed):
    after suspend_after jobs the destination is suspended like one that
    refuses connections."""
    n = 40
    # the refusal, then whatever the client says (QUIT) or its leaving
    script = {"greeting": [GREETINGS[case], peers.READ, peers.CLOSE]}
    with peers.Hop(script) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1h"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", ["q{n}@dest.test"], count=n)
        wait_for(lambda: "state=suspended" in g.log("deliverd") or srv.conns >= n, 60,
                 what="a suspension or a session per message")
        time.sleep(4)
        tried = [e for e in g.events() if e["event"] == "deferred"]
        print("%s: %d sessions for %d messages, %d deferred; %s" % (
            case, srv.conns, n, len(tried), tried[0]["msg"] if tried else None))
        assert "state=suspended" in g.log("deliverd")
        assert srv.conns <= SUSPEND_AFTER + IN_FLIGHT, srv.conns


def test_bdat_on_a_full_disk_is_452_never_250():
    """CHUNKING when the spool file system fills up after the first chunk:
    the last chunk is read (RFC 3030) but answered 452 4.3.1, never 250,
    and nothing half-written is left to file. (A full disk before the first
    chunk is refused at MAIL already.)"""
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    g = Gateway(tls=False, extra={"min_free_space": "1"})
    smtpgate.mount_tmpfs(g, "2m")
    try:
        g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
        g.start("spoold", "smtpd")
        filler = os.path.join(g.spool, "filler")
        data = smtpgate.message(msgid="<bdat@faults.test>", body=("y" * 76 + "\r\n") * 2600)
        data = data if isinstance(data, bytes) else data.encode()
        c = smtpgate.Raw(g.port, timeout=30)
        try:
            assert c.reply()[0] == 220
            assert c.cmd("EHLO bdat.test")[0] == 250
            assert c.cmd("MAIL FROM:<bounce@example.com>")[0] == 250
            assert c.cmd("RCPT TO:<r@dest.test>")[0] == 250
            half = 1024
            c.send(b"BDAT %d\r\n" % half + data[:half])
            first = c.reply()
            smtpgate.fill_disk(filler)          # full after the first chunk
            c.send(b"BDAT %d LAST\r\n" % (len(data) - half) + data[half:])
            last = c.reply()
        finally:
            c.close()
        print("BDAT on a full disk:", first, last)
        assert first[0] == 250, first
        assert last[0] == 452 and "4.3.1" in last[1], (first, last)
        assert g.files("new") == []
        wait_for(lambda: g.files("tmp") == [], 10, what="incoming/tmp empty")
        assert g.procs["smtpd"].poll() is None
    finally:
        try:
            g.stop()
        except Exception:
            pass
        smtpgate.umount_tmpfs(g)
        g.close()



def test_dead_next_hop_is_probed_by_one_job_after_a_suspension():
    """8 workers, a relayhost (which may have all of them) that refuses
    every session: when its suspension ends, one job probes it (and
    suspends it again), not a job on every worker; the rest wait."""
    def greeting(s, arg):
        s.pause(0.3)
        return ["421 4.3.2 Service not available", peers.CLOSE]

    with peers.Hop({"greeting": greeting}) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1h",
            "deliverd_workers": "8"}) as g:
        g.conf["shaping_file"] = os.path.join(g.dir, "shaping")
        with open(g.conf["shaping_file"], "w") as f:
            f.write("[default]\nsuspend_for = 2s\n")
        g.write_conf()
        inject(g, "account", "acc")
        put_msg(g, "acc", ["w{n}@dest.test"], count=40)
        g.start("deliverd")

        def suspensions():
            return g.log("deliverd").count("state=suspended")
        wait_for(lambda: suspensions() >= 1, 60, what="the first suspension")
        time.sleep(1)                    # the jobs already with workers end
        before = srv.conns
        wait_for(lambda: suspensions() >= 3, 60, what="two more suspensions")
        probes = srv.conns - before
        print("dead relayhost, 8 workers: %d sessions before the first suspension, "
              "%d for the two probes after it, at most %d at once" % (
                  before, probes, srv.max_active))
        assert probes == 2, probes


def test_421_mid_session_defers_every_recipient_of_the_transaction():
    """421 to the second RCPT of three, then the next hop hangs up: the
    first (accepted at RCPT, never sent) is not taken as delivered; all
    three go in the one retry, once, and the destination is slowed."""
    def rcpt(s, address):
        # the first session's second RCPT (the first was accepted)
        if s.n == 1 and len(s.rcpts) == 1:
            return ["421 4.7.0 Too many sessions, closing", peers.DROP]

    rcpts = ["m%d@dest.test" % i for i in range(3)]
    with peers.Hop({"RCPT": rcpt}) as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s"}) as g:
        g.start("deliverd")
        inject(g, "account", "acc")
        put_msg(g, "acc", rcpts)
        wait_for(lambda: sum(1 for e in g.events() if e["event"] == "delivered") == 3, 30,
                 what="the three delivered on the retry")
        evs = g.events()
        print([(e["to"], e["event"], e["msg"][:40]) for e in evs])
        assert [e["event"] for e in evs].count("deferred") == 3
        assert sorted(srv.received) == rcpts
        assert "state=slowed" in g.log("deliverd")
