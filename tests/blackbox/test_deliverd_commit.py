"""deliverd's scheduler under storage faults (issue 13 items 1, 5, 7, 9):
a commit that fails after the next hop said 250 (LMDB map full, disk full)
must never make deliverd send the same recipient again; the scheduler's
memory stays bounded with a large due backlog behind a tarpit; a message
deleted while its delivery is in flight still logs and reports the real
delivery; the events export goes in bounded batches and holds no
transaction while it writes. Real binaries on
127.0.0.1, a recording next hop (peers.Hop), every wait bounded.
"""
import collections
import os
import pwd
import select
import smtplib
import subprocess
import threading
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject, wait_for


def recording_hop():
    """A next hop whose `received` lists every RCPT it accepted a message
    for (test_fail_storm uses it too)."""
    return peers.Hop()


def fill_map(g, login, what):
    """Files 1-recipient messages until the LMDB map is full; then the
    recipients of every message filed (the queue, read-only)."""
    calls = 0
    for batch in (100, 10, 1, 1, 1):
        while True:
            calls += 1
            r = subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "deliverd-inject"),
                                "-c", g.conf_path, "msg", login, "f@example.com",
                                "f@example.com", msgfile(g), str(batch),
                                "%s%d-{n}@dest.test" % (what, calls)],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                assert "map full" in r.stderr, r.stderr
                break
            assert calls < 2000, "the map never filled up"
    return queued(g)


def queued(g):
    """Every pending recipient address in the queue."""
    out = []
    for m in g.spoolctl_json("queue"):
        out += [r["to"] for r in m["recipients"]]
    return out


def msgfile(g):
    path = os.path.join(g.dir, "m.eml")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(smtpgate.message(frm="f@example.com", to="x@dest.test"))
    return path


def assert_once(received, expected):
    counts = collections.Counter(received)
    dup = {a: n for a, n in counts.items() if n > 1}
    assert not dup, "%d recipients sent more than once (%d deliveries for %d " \
        "recipients), e.g. %s" % (len(dup), len(received), len(counts),
                                  sorted(dup.items())[:5])
    assert set(counts) <= set(expected)


# ---------------------------------------------------------------- map full

def test_commit_fails_map_full_no_resend():
    with recording_hop() as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "lmdb_map_size": "1m",
            "retry_schedule": "1s", "deliverd_workers": "2"}) as g:
        small_map(g)
        inject(g, "account", "acc")
        targets = ["t%d@dest.test" % i for i in range(6)]
        for t in targets:
            smtpgate.put_msg(g, "acc", [t])
        expected = fill_map(g, "acc", "fill")
        assert len(expected) == len(set(expected)) and set(targets) <= set(expected)
        g.start("deliverd")
        # the next hop accepts; the commits fail on the full map for a while
        wait_for(lambda: "LMDB map full" in g.log("deliverd"), 30, what="a failed commit")
        time.sleep(6)
        assert_once(srv.received, expected)
        assert g.procs["deliverd"].poll() is None
        grow_map(g)
        wait_for(lambda: not g.files("queue"), 90, interval=0.5,
                 what="every message delivered after the map grew")
        assert_once(srv.received, expected)
        assert set(targets) <= set(srv.received)
        assert len(srv.received) == len(expected), (len(srv.received), len(expected))
        lines = [line for line in g.log("deliverd").splitlines() if "commit" in line]
        print("\n".join(lines[:6]))
        assert len(lines) < 40, "one log line per interval, not per retry: %d" % len(lines)


def small_map(g):
    """A 1 MB map that cannot grow by itself: where the configuration
    knows lmdb_map_max (automatic growth), it is pinned to 1 MB too."""
    g.conf["lmdb_map_max"] = "1m"
    g.write_conf()
    r = g.spoolctl("queue", check=False)
    if r.returncode == 2 and "lmdb_map_max" in r.stdout + r.stderr:
        del g.conf["lmdb_map_max"]
        g.write_conf()


def grow_map(g):
    """Space comes back: a writer opens the map with 64 MB (what
    lmdb_map_max's automatic growth does); deliverd adopts the new size."""
    big = os.path.join(g.dir, "big.conf")
    with open(g.conf_path) as f, open(big, "w") as o:
        o.write(f.read().replace("lmdb_map_size = 1m", "lmdb_map_size = 64m")
                .replace("lmdb_map_max = 1m", "lmdb_map_max = 64m"))
    subprocess.run([smtpgate.binary("spoolctl"), "-c", big, "retry", "--all"],
                   capture_output=True, timeout=60, check=True)


def test_sigterm_while_commit_fails_bounded_resend():
    """deliverd(8) FAILED COMMITS: SIGTERM while the commit keeps failing
    retries for the stop grace, exits 0, and after the restart at most the
    batch that was in flight (two single-recipient jobs per worker) is
    sent again."""
    workers = 2
    with recording_hop() as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "lmdb_map_size": "1m",
            "retry_schedule": "1s", "deliverd_workers": str(workers)}) as g:
        small_map(g)
        inject(g, "account", "acc")
        expected = fill_map(g, "acc", "fill")
        g.start("deliverd")
        wait_for(lambda: "LMDB map full" in g.log("deliverd"), 30, what="a failed commit")
        time.sleep(1)
        before = len(srv.received)
        t0 = time.monotonic()
        g.stop("deliverd", timeout=20)      # raises unless it exits
        print("stopped in %.1fs" % (time.monotonic() - t0))
        assert "outcomes not recorded" in g.log("deliverd"), g.log("deliverd")[-2000:]
        assert_once(srv.received, expected)
        assert len(srv.received) == before
        grow_map(g)
        # what the warning tells the operator: raise lmdb_map_max (a
        # deliverd whose ceiling stays at 1 MB never adopts the 64 MB map,
        # and the delivery log of ~1,600 messages does not fit in 1 MB)
        g.conf["lmdb_map_size"] = "64m"
        if "lmdb_map_max" in g.conf:
            g.conf["lmdb_map_max"] = "64m"
        g.write_conf()
        g.start("deliverd")
        wait_for(lambda: not g.files("queue"), 90, interval=0.5,
                 what="every message delivered after the restart")
        counts = collections.Counter(srv.received)
        dup = sum(n - 1 for n in counts.values())
        print("sent again after the restart: %d (bound %d)" % (dup, 2 * workers))
        assert set(counts) == set(expected)
        assert dup <= 2 * workers, counts.most_common(8)


def test_commit_fails_for_one_result_isolated():
    """A failure retrying cannot cure (a record that does not decode) is
    isolated: the other outcomes are recorded, the one that cannot be is
    kept claimed and never sent again (deliverd(8) FAILED COMMITS)."""
    with recording_hop() as srv, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s",
            "deliverd_workers": "2"}) as g:
        inject(g, "account", "good")
        inject(g, "account", "bad")
        bad, = smtpgate.put_msg(g, "bad", ["poison@dest.test"])
        good = smtpgate.put_msg(g, "good", ["ok{n}@dest.test"], count=20)
        inject(g, "corrupt-issue", "bad")
        g.start("deliverd")
        wait_for(lambda: "poison@dest.test" in srv.received, 30, what="the delivery")
        time.sleep(4)           # retry_schedule 1s: a resend would show by now
        assert_once(srv.received, ["poison@dest.test"] +
                    ["ok%d@dest.test" % i for i in range(20)])
        g.wait_events(lambda e: e["event"] == "delivered" and
                      len([x for x in g.events() if x["event"] == "delivered"]) == 20,
                      timeout=30, what="the 20 good outcomes recorded")
        wait_for(lambda: "cannot be recorded" in g.log("deliverd"), 10,
                 what="the warning about the one that cannot be")
        assert "poison@dest.test" in srv.received
        assert g.files("queue") == [bad], (g.files("queue"), good)
        warn = [line for line in g.log("deliverd").splitlines() if "cannot be recorded" in line]
        print(warn[0])
        assert len(warn) == 1 and bad in warn[0], warn
        assert g.procs["deliverd"].poll() is None


# ---------------------------------------------------------------- disk full

def test_commit_fails_disk_full_no_resend():
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    g = Gateway(tls=False)
    srv = recording_hop().start()
    g.conf.update({"relayhost": "127.0.0.1:%d" % srv.port, "retry_schedule": "1s",
                   "lmdb_map_size": "64m", "deliverd_workers": "2"})
    g.write_conf()
    smtpgate.mount_tmpfs(g, "8m", srv)
    try:
        inject(g, "account", "acc")
        targets = ["d{n}@dest.test"]
        smtpgate.put_msg(g, "acc", targets, count=300)
        expected = queued(g)
        assert len(expected) == 300
        filler = os.path.join(g.spool, "filler")
        smtpgate.fill_disk(filler)
        g.start("deliverd")
        wait_for(lambda: "No space left" in g.log("deliverd"), 30, what="a failed commit")
        time.sleep(6)
        assert_once(srv.received, expected)
        assert g.procs["deliverd"].poll() is None
        os.unlink(filler)
        wait_for(lambda: not g.files("queue"), 90, interval=0.5,
                 what="every message delivered after space returned")
        assert_once(srv.received, expected)
        assert len(srv.received) == len(expected)
        lines = [line for line in g.log("deliverd").splitlines() if "commit" in line]
        print("\n".join(lines[:6]))
    finally:
        try:
            g.stop()
        except Exception:
            pass
        srv.stop()
        smtpgate.umount_tmpfs(g)
        g.close()


# ---------------------------------------------------------------- memory

def rss_kb(pid, key):
    """VmRSS, RssAnon or RssFile of /proc/PID/status, in KB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# Greets, then never answers: every delivery stays in flight.
TARPIT = {"greeting": ["220 tarpit.test ESMTP", peers.hang(120)]}


# deliverd(8) "MEMORY": the scheduler holds at most 1024 + 256 x workers
# recipients (3,072 with the 8 workers here), each a single-recipient job:
# its private memory (RssAnon) stays under the stated 12 MB up to 8 workers.
# VmRSS also counts the LMDB map pages the process touched (the file's
# cache, shared, growing with the database): not the scheduler's memory.
RSS_BOUND_KB = 12 * 1024


def test_scheduler_memory_bounded_by_backlog():
    if not smtpgate.IS_ROOT:
        pytest.skip("100,000 queue files need a tmpfs (root)")
    srv = peers.Hop(TARPIT).start()
    g = Gateway(tls=False, extra={
        "relayhost": "127.0.0.1:%d" % srv.port, "deliverd_workers": "8",
        "connect_timeout": "60s", "command_timeout": "60s", "lmdb_map_size": "512m"})
    smtpgate.mount_tmpfs(g, "1g", srv)
    try:
        inject(g, "account", "acc")
        n = int(os.environ.get("SMTPGATE_RSS_N", "100000"))
        smtpgate.put_msg(g, "acc", ["r{n}@dest.test"], count=n)
        g.start("deliverd")
        pid = g.pid("deliverd")
        samples = []
        for _ in range(40):         # 40 s: eight 5 s rescans
            time.sleep(1)
            samples.append(rss_kb(pid, "RssAnon"))
        print("scheduler RssAnon (KB) over 40 s:", samples[::4], "max", max(samples),
              "; VmRSS", rss_kb(pid, "VmRSS"), "of which LMDB's mapped file",
              rss_kb(pid, "RssFile"))
        assert g.procs["deliverd"].poll() is None
        assert srv.conns >= 1, "the tarpit was never reached"
        assert max(samples) < RSS_BOUND_KB, \
            "scheduler RSS %d KB with %d due recipients" % (max(samples), n)
    finally:
        try:
            g.stop()
        except Exception:
            pass
        srv.stop()
        smtpgate.umount_tmpfs(g)
        g.close()


# ---------------------------------------------------------------- delete in flight

class SlowHop(peers.Hop):
    """Accepts RCPT and the data, then holds the end-of-DATA reply until
    go is set (bounded): the delivery is in flight meanwhile."""

    def __init__(self):
        super().__init__({".": self.slow}, name="slow.test", ehlo=("8BITMIME",))
        self.in_data = threading.Event()
        self.go = threading.Event()

    def slow(self, session, data):
        self.in_data.set()
        self.go.wait(30)
        return "250 2.0.0 Ok: queued as SLOW1"


def test_delete_during_inflight_delivery_reports_it():
    with SlowHop() as hop, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % hop.port, "data_timeout": "60s",
            "retry_schedule": "1h"}) as g:
        inject(g, "account", "acc")
        g.start("deliverd")
        qid, = smtpgate.put_msg(g, "acc", ["inflight@dest.test"])
        assert hop.in_data.wait(30), "the delivery never reached the end of DATA"
        r = g.spoolctl("delete", qid)
        assert "bounced (admin)" in r.stdout, r.stdout
        hop.go.set()
        evs = g.wait_events(lambda e: e["queue_id"] == qid and e["event"] == "delivered",
                            timeout=30, what="a delivered event after the delete")
        assert hop.received == ["inflight@dest.test"]
        ev = evs[0]
        assert ev["to"] == "inflight@dest.test" and ev["account"] == "acc", ev
        assert ev["msg"].startswith("250 2.0.0 Ok: queued as SLOW1"), ev
        kinds = [(e["event"], e.get("class")) for e in g.events() if e["queue_id"] == qid]
        assert kinds == [("bounced", "admin"), ("delivered", None)], kinds
        sent = [line for line in g.log("deliverd").splitlines()
                if qid in line and "status=sent" in line]
        assert len(sent) == 1 and "to=<inflight@dest.test>" in sent[0], g.log("deliverd")
        print(sent[0])
        # spoolctl show still tells the story from the delivery log
        show = g.spoolctl("show", qid, check=False).stdout
        assert "delivered" in show.lower(), show


# ---------------------------------------------------------------- events export

def test_export_backlog_does_not_hold_the_write_lock():
    """An exporter stuck writing a large backlog (event_log is a FIFO whose
    reader is slow) holds no LMDB transaction: spoold still files a new
    message meanwhile; afterwards every event is in the file exactly once."""
    if not smtpgate.IS_ROOT:
        pytest.skip("the daemons' user must own the FIFO (root)")
    g = Gateway(tls=False)
    fifo = os.path.join(g.dir, "events.jsonl")
    g.conf["event_log"] = fifo
    g.write_conf()
    pw = pwd.getpwnam("smtpgate")
    os.mkfifo(fifo, 0o640)
    os.chown(fifo, pw.pw_uid, pw.pw_gid)
    rfd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a reader: opens never block
    stop, got, ctl = threading.Event(), [0], None

    def drain():
        while not stop.is_set():
            if select.select([rfd], [], [], 0.2)[0]:
                try:
                    got[0] += os.read(rfd, 1 << 16).count(b"\n")
                except BlockingIOError:
                    pass
    try:
        g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
        inject(g, "account", "acc")
        qids = smtpgate.put_msg(g, "acc", ["b{n}-%d@dest.test" % i for i in range(500)],
                                count=12)
        g.start("spoold", "smtpd")
        # 6,000 admin bounces, then the export: stuck once the pipe is full
        ctl = subprocess.Popen([smtpgate.binary("spoolctl"), "-c", g.conf_path, "delete"]
                               + qids, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: select.select([rfd], [], [], 0)[0], 30, what="the export writing")
        time.sleep(0.5)
        assert ctl.poll() is None, "the exporter is not stuck: %s" % ctl.stderr.read()
        code, text = smtp_send(g, "<during-export@commit.test>")
        assert code == 250, text
        # a bound, not a speed: listing 6,000 queued messages takes seconds
        # on a loaded machine (the exporter stays stuck until drained)
        wait_for(lambda: any(m["recipients"][0]["to"] == "r@dest.test"
                             for m in g.spoolctl_json("queue")), 90, interval=1,
                 what="spoold filed a message while the export was stuck")
        assert ctl.poll() is None, "the export finished before spoold filed: no proof"
        threading.Thread(target=drain, daemon=True).start()
        ctl.wait(60)
        # the file again: every event once
        tmp = fifo + ".new"
        with open(tmp, "w"):
            pass
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.replace(tmp, fifo)
        g.spoolctl("hold", qids[0], check=False)    # any spoolctl run exports
        r = g.spoolctl("delete", *[m["qid"] for m in g.spoolctl_json("queue")])
        # each export that went to the FIFO wrote one batch, then failed
        # (fdatasync of a FIFO): bounded batches, not the whole backlog
        wait_for(lambda: got[0] > 0 and got[0] % 5000 == 0, 10,
                 what="whole batches of 5,000 through the FIFO (got %d)" % got[0])
        print(r.stdout.strip(), "; lines through the FIFO:", got[0])
        evs = g.events()
        ids = [e["id"] for e in evs]
        assert len(ids) == len(set(ids)), "an event exported twice"
        admin = [e for e in evs if e["event"] == "bounced" and e["class"] == "admin"]
        assert len(admin) == 6001, len(admin)
    finally:
        stop.set()
        if ctl is not None and ctl.poll() is None:
            ctl.kill()
            ctl.wait(10)
        try:
            g.stop()
        except Exception:
            pass
        os.close(rfd)
        g.close()


def smtp_send(g, msgid):
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
    try:
        s.ehlo("commit.test")
        s.sendmail("bounce@example.com", ["r@dest.test"],
                   smtpgate.message(to="r@dest.test", msgid=msgid))
        return 250, "ok"
    except smtplib.SMTPResponseException as e:
        return e.smtp_code, str(e.smtp_error)
    finally:
        try:
            s.quit()
        except Exception:
            s.close()
