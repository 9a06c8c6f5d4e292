"""Storage lifetime (issue 13): the LMDB map grows by itself up to
lmdb_map_max while other processes read on; a reader cut off by a closed
pipe leaves no stale slot, so freed pages are reused; min_free_space makes
smtpd answer 452 (and smtpgate-sendmail EX_TEMPFAIL) before the disk is
full, and accept again when space returns.
"""
import collections
import os
import re
import smtplib
import subprocess
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, binary, message, put_msg, wait_for
from test_spoold import drop, wait_new_empty

EX_TEMPFAIL = 75


def smtp_try(g, body="hello\r\n"):
    """(code, text) of the first refusal, or of the end of data."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
    try:
        s.ehlo("storage.test")
        for step in (lambda: s.mail("bounce@example.com"), lambda: s.rcpt("r@dest.test")):
            code, text = step()
            if code != 250:
                return code, text.decode()
        code, text = s.data(message(body=body))
        return code, text.decode()
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def db_pages(g):
    return os.stat(os.path.join(g.spool, "db", "data.mdb")).st_size // 4096


def stale_readers(g):
    """Reader slots (mdb_stat -r) whose process is gone."""
    r = subprocess.run(["mdb_stat", "-r", os.path.join(g.spool, "db")],
                       capture_output=True, text=True, timeout=30)
    assert "Reader Table Status" in r.stdout, r.stderr	# its exit status is not reliable
    pids = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\S+\s+\S+\s*$",
                                                 r.stdout, re.M)]
    return [p for p in pids if not os.path.exists("/proc/%d" % p)]


# ---------------------------------------------------------------- map growth

def test_map_grows_while_filing_and_others_read_on():
    with Gateway(tls=False, extra={"lmdb_map_size": "1m", "lmdb_map_max": "64m"}) as g:
        g.spoolctl("account", "add", "acme", "--password", "pw", "--ip", "127.0.0.1/32")
        g.start("spoold", "smtpd")
        # the smtpd workers open the 1 MiB map now, and read accounts from it later
        assert smtp_try(g)[0] == 250
        rcpts = ["user%03d@example.net" % i for i in range(200)]
        qids = [drop(g, "acme", rcpts, message()) for _ in range(40)]
        wait_new_empty(g, timeout=120)
        log = g.log("spoold")
        assert "lmdb map grown: from=1048576" in log, log[-2000:]
        assert "filing stopped" not in log, log[-2000:]
        assert os.path.getsize(os.path.join(g.spool, "db", "data.mdb")) > 1 << 20
        # another process, opened with the 1 MiB setting, reads everything
        queued = {m["qid"] for m in g.spoolctl_json("queue")}
        assert set(qids) <= queued
        # the smtpd workers, whose map is the old size, still read accounts
        for _ in range(4):
            assert smtp_try(g)[0] == 250
        wait_new_empty(g, timeout=30)
        assert g.procs["smtpd"].poll() is None and g.procs["spoold"].poll() is None


def test_map_stops_at_lmdb_map_max_and_resumes_when_raised():
    with Gateway(tls=False, extra={"lmdb_map_size": "1m", "lmdb_map_max": "2m"}) as g:
        g.spoolctl("account", "add", "acme", "--password", "pw")
        g.start("spoold")
        rcpts = ["user%03d@example.net" % i for i in range(200)]
        qids = [drop(g, "acme", rcpts, message()) for _ in range(80)]
        wait_for(lambda: "filing stopped: LMDB map full" in g.log("spoold"), 60,
                 what="filing stops at the ceiling")
        assert "lmdb map grown: from=1048576, to=2097152" in g.log("spoold")
        assert g.files("new"), "80 x 200 recipients should not fit in 2 MiB"
        assert g.procs["spoold"].poll() is None
        g.stop("spoold")
        g.conf["lmdb_map_max"] = "64m"
        g.write_conf()
        g.start("spoold")
        wait_new_empty(g, timeout=120)
        assert sorted(g.files("queue")) == sorted(qids)


def test_deliverd_commit_grows_the_map_and_delivers_once():
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "lmdb_map_size": "1m",
            "lmdb_map_max": "1m"}) as g:
        g.spoolctl("account", "add", "acme", "--password", "pw")
        n, k = 60, 40		# the delivery log keeps 2,400 results: > 1 MiB
        put_msg(g, "acme", ["r{n}-%d@dest.test" % i for i in range(k)], count=n)
        pages = db_pages(g)
        # from now on only deliverd writes, and its results need more room
        g.conf["lmdb_map_max"] = "64m"
        g.write_conf()
        g.start("deliverd")
        wait_for(lambda: len(mx.received()) >= n and not g.files("queue"), 120,
                 interval=0.5, what="every message delivered")
        log = g.log("deliverd")
        print("data.mdb %d -> %d pages" % (pages, db_pages(g)))
        assert "lmdb map grown: from=1048576" in log, log[-3000:]
        assert "map full" not in log, log[-3000:]
        per = collections.Counter(r for m in mx.received() for r in m["to"])
        assert len(per) == n * k and set(per.values()) == {1}, per.most_common(3)


def test_spoolctl_write_retries_after_growth():
    with Gateway(tls=False, extra={"lmdb_map_size": "1m", "lmdb_map_max": "16m"}) as g:
        g.spoolctl("account", "add", "acme", "--password", "pw")
        path = os.path.join(g.dir, "stop.txt")
        with open(path, "w") as f:
            for i in range(40000):	# commits every 10,000: more than 1 MiB
                f.write("a-rather-long-local-part-to-fill-pages-%06d@example.net\n" % i)
        r = g.spoolctl("stoplist", "add", "acme", "--file", path)
        assert "added 40000 addresses" in r.stdout
        assert "lmdb map grown: from=1048576" in r.stderr, r.stderr
        listed = g.spoolctl("stoplist", "list", "acme").stdout.split()
        assert len(listed) == 40000


# ---------------------------------------------------------------- stale readers

def test_closed_pipe_leaves_no_stale_reader_and_pages_are_reused():
    with Gateway(tls=False) as g:
        g.spoolctl("account", "add", "acme", "--password", "pw")
        g.start("spoold")	# a writer keeps the environment open, as in production
        rcpts = ["someone%d@example.net" % i for i in range(5)]
        qids = [drop(g, "acme", rcpts, message()) for _ in range(500)]
        wait_new_empty(g, timeout=120)
        ctl = subprocess.Popen([binary("spoolctl"), "-c", g.conf_path, "queue"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = subprocess.Popen(["head", "-1"], stdin=ctl.stdout, stdout=subprocess.PIPE)
        ctl.stdout.close()
        first = head.communicate(timeout=60)[0]
        err = ctl.communicate(timeout=60)[1]
        assert first.startswith(b"-Queue ID-")
        assert ctl.returncode == 0, (ctl.returncode, err)
        assert stale_readers(g) == []
        # 200 small write transactions: freed pages are reused, the file stays put
        before = db_pages(g)
        for i in range(100):
            g.spoolctl("hold", qids[i % 5])
            g.spoolctl("release", qids[i % 5])
        grown = db_pages(g) - before
        print("data.mdb: %d pages, +%d after 200 writes" % (before, grown))
        assert grown < 100, grown


# ---------------------------------------------------------------- min_free_space

def fill_to(path, spool, free):
    """Grows the file at path until the spool's file system has about
    `free` bytes left."""
    st = os.statvfs(spool)
    want = st.f_bavail * st.f_frsize - free
    with open(path, "ab") as f:
        while want > 0:
            n = min(want, 1 << 20)
            f.write(b"\0" * n)
            want -= n
        f.flush()
        os.fsync(f.fileno())


def test_min_free_space_452_before_the_disk_is_full():
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    g = Gateway(tls=False, extra={"min_free_space": "4m", "max_message_size": "1m",
                                  "sendmail_account": "acme"})
    smtpgate.mount_tmpfs(g, "16m")
    filler = os.path.join(g.spool, "filler")
    try:
        g.spoolctl("account", "add", "acme", "--password", "pw", "--ip", "127.0.0.1/32")
        g.start("spoold", "smtpd")
        acked = [smtp_try(g)[0]]
        fill_to(filler, g.spool, 3 << 20)	# 3 MiB free: below the watermark
        time.sleep(1.1)		# each worker caches the figure for a second

        def refused():
            acked.append(smtp_try(g)[0])
            return acked[-1] == 452
        wait_for(refused, 10, what="452 at MAIL FROM")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
        s.ehlo("storage.test")
        code, text = s.mail("bounce@example.com")
        s.quit()
        assert (code, text.decode()) == (452, "4.3.1 Insufficient system storage")
        assert "452 4.3.1 Insufficient system storage; free=" in g.log("smtpd")
        sm = subprocess.run([binary("sendmail"), "-c", g.conf_path, "r@dest.test"],
                            input=message(), capture_output=True, timeout=30)
        assert sm.returncode == EX_TEMPFAIL, sm
        assert b"min_free_space" in sm.stderr, sm.stderr
        wait_for(lambda: "below min_free_space" in g.log("spoold"), 10,
                 what="spoold logs the watermark")
        # a message that crosses the watermark is refused before the 250
        os.truncate(filler, 0)
        fill_to(filler, g.spool, (4 << 20) + (300 << 10))
        time.sleep(1.1)
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
        s.ehlo("storage.test")
        assert s.mail("bounce@example.com")[0] == 250, "above the watermark at MAIL"
        assert s.rcpt("r@dest.test")[0] == 250
        time.sleep(1.1)		# the transfer of a big message takes a while
        code, text = s.data(message(body=("y" * 78 + "\r\n") * 8000))
        s.quit()
        assert (code, text.decode()) == (452, "4.3.1 Insufficient system storage")
        assert "reject: DATA from" in g.log("smtpd")
        # space comes back: 250 again, and filed
        os.unlink(filler)

        def accepted():
            acked.append(smtp_try(g)[0])
            return acked[-1] == 250
        wait_for(accepted, 10, what="250 after space returned")
        wait_for(lambda: not g.files("new") and len(g.files("queue")) == acked.count(250),
                 20, what="every accepted message filed: %s" % acked)
        assert g.log("spoold").count("below min_free_space") == 1
        for name in ("smtpd", "spoold"):
            assert g.procs[name].poll() is None
    finally:
        try:
            g.stop()
        except Exception:
            pass
        smtpgate.umount_tmpfs(g)
        g.close()
