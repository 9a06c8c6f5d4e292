"""Callback fairness and retention (issue 13 items 2 and 4): one account's
dead receiver with 200,000 pending events (filled straight into the outbox
by deliverd-inject) does not delay another account's callbacks, and
entries older than callback_max_age are dropped with a log line and a
counter (a stepped wall clock, libfaketime). Every wait bounded.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for

PENDING = 200000


def relay_gw(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "callback_retry_min": "1s",
            "callback_retry_max": "4s", "callback_timeout": "10s"}
    conf.update(extra)
    return Gateway(tls=False, extra=conf)


class Silent:
    """A port that accepts TCP connections (the kernel's backlog) and never
    answers a byte: a receiver that hangs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/events" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("dead", ["http503", "silent"])
def test_dead_receiver_does_not_delay_another_account(dead):
    """Account A's receiver answers 503 (or accepts and never answers) and
    A has 200,000 events pending; account B's events still reach B's
    receiver within a few seconds, while A's POST hangs or A backs off,
    and A's events stay in the outbox."""
    bad = peers.Callbacks() if dead == "http503" else Silent()
    if dead == "http503":
        bad.down = True
        bad.start()
    with peers.Mx() as mx, peers.Callbacks() as good, \
            relay_gw(mx, callback_timeout="30s") as g:
        try:
            inject(g, "account", "aaa", bad.url)
            inject(g, "account", "bbb", good.url)
            t0 = time.monotonic()
            inject(g, "events", "aaa", PENDING)
            print("filled %d outbox entries in %.1fs" % (PENDING, time.monotonic() - t0))
            g.start("deliverd")
            if dead == "http503":
                wait_for(lambda: bad.failed_posts >= 1, 30, what="a failed POST for aaa")
            else:
                time.sleep(2)   # aaa's first POST is hanging now (for 30 s)
            put_msg(g, "bbb", ["b@dest.test"])
            t1 = time.monotonic()
            wait_for(lambda: any(e["account"] == "bbb" for e in good.events), 10,
                     what="account bbb's callback while aaa's receiver is dead")
            print("bbb's event reached its receiver %.2fs after filing" % (
                time.monotonic() - t1))
            if dead == "silent":
                assert "callback aaa: " not in g.log("deliverd"), "aaa's POST no longer hangs"
            put_msg(g, "bbb", ["b2@dest.test"])
            wait_for(lambda: any(e["to"] == "b2@dest.test" for e in good.events), 10,
                     what="bbb's second callback")
            assert not any(e["account"] == "aaa" for e in good.events)
            if dead == "http503":
                wait_for(lambda: "callback aaa: next try in" in g.log("deliverd"), 10,
                         what="aaa backing off")
            assert "callback aaa: dropped" not in g.log("deliverd")
            assert g.procs["deliverd"].poll() is None
        finally:
            if dead == "http503":
                bad.stop()
            else:
                bad.close()


def test_callback_max_age_drops_old_entries():
    """A's receiver is dead; deliverd's wall clock steps 8 days ahead
    (libfaketime, across a restart of deliverd): A's entries, older than the default
    callback_max_age of 7 days, are dropped with one log line stating how
    many, and the totals. B's fresh entries are not touched."""
    if not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    bad = peers.Callbacks()
    bad.down = True
    with bad, peers.Mx() as mx, peers.Callbacks() as good, relay_gw(mx) as g:
        inject(g, "account", "aaa", bad.url)
        inject(g, "account", "bbb", good.url)
        inject(g, "events", "aaa", 2500)
        tsfile, fake = smtpgate.start_faketime(g)
        wait_for(lambda: bad.failed_posts >= 1, 30, what="a failed POST for aaa")
        assert "dropped" not in g.log("deliverd")
        # The callback sender confines itself (Landlock) once set up: from
        # then on it cannot read libfaketime's offset file (libfaketime
        # then falls back to the real clock). The kernel's clock needs no
        # file; here the step comes with a restart, the offset in the
        # environment (FAKETIME), which libfaketime reads without a file.
        g.stop("deliverd")
        fake = dict(fake, FAKETIME="+%d" % (8 * 86400))
        del fake["FAKETIME_TIMESTAMP_FILE"]
        saved = dict(os.environ)
        os.environ.update(fake)
        try:
            g.start("deliverd")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        good.down = True
        put_msg(g, "bbb", ["fresh@dest.test"], env=fake)
        line = wait_for(lambda: re.search(r"callback aaa: dropped (\d+) event\(s\) older "
                                          r"than callback_max_age.*\n", g.log("deliverd")),
                        30, what="the log line of the drop")
        print(line.group(0).strip())
        assert int(line.group(1)) == 2500, line.group(0)
        assert "dropped so far: 2500 for aaa, 2500 in all" in line.group(0)
        assert len(re.findall(r"callback aaa: dropped", g.log("deliverd"))) == 1
        # bbb's entry is young (written after the step): kept until its receiver is back
        time.sleep(2)
        assert "callback bbb: dropped" not in g.log("deliverd")
        good.down = False
        wait_for(lambda: any(e["to"] == "fresh@dest.test" for e in good.events), 30,
                 what="bbb's event once its receiver is back")


def old_outbox_section(entries):
    """An mdb_load section: the first outbox layout, BE64 seq -> login NUL JSON."""
    lines = ["VERSION=3", "format=bytevalue", "database=outbox", "type=btree",
             "HEADER=END"]
    for seq, login, doc in entries:
        lines.append(" " + seq.to_bytes(8, "big").hex())
        lines.append(" " + (login.encode() + b"\0" + json.dumps(doc).encode()).hex())
    lines.append("DATA=END")
    return "\n".join(lines) + "\n"


def make_first_layout(g, entries):
    """Rewrites g's database as the previous version left it: no
    outbox_acct and no done database, the callbacks pending in the first
    outbox (mdb_dump / mdb_load of lmdb-utils)."""
    db = os.path.join(g.spool, "db")
    dump = subprocess.run(["mdb_dump", "-a", db], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    keep = [sec for sec in re.split(r"(?m)^(?=VERSION=3$)", dump) if sec.strip() and
            not re.search(r"(?m)^database=(outbox_acct|done|outbox)$", sec)]
    newdb = os.path.join(g.dir, "olddb")
    os.mkdir(newdb)
    subprocess.run(["mdb_load", newdb], input="".join(keep) +
                   old_outbox_section(entries), text=True, check=True, timeout=60)
    st = os.stat(db)
    for f in ("data.mdb", "lock.mdb"):
        os.unlink(os.path.join(db, f))
    os.rename(os.path.join(newdb, "data.mdb"), os.path.join(db, "data.mdb"))
    os.chown(os.path.join(db, "data.mdb"), st.st_uid, st.st_gid)
    os.chmod(os.path.join(db, "data.mdb"), 0o640)


@pytest.mark.skipif(shutil.which("mdb_load") is None, reason="lmdb-utils not installed")
def test_first_outbox_layout_is_migrated():
    """An outbox written by the previous version (one range for every
    account) is moved into the per-account layout when deliverd (a writer)
    opens the database, and its events are posted."""
    with peers.Callbacks() as good, Gateway(tls=False) as g:
        inject(g, "account", "old", good.url)
        inject(g, "account", "other", good.url)
        entries = [(i, "old" if i % 3 else "other", {"id": "first-%d" % i, "event": "delivered"})
                   for i in range(1, 31)]
        make_first_layout(g, entries)
        r = subprocess.run(["mdb_stat", "-s", "outbox_acct", os.path.join(g.spool, "db")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, "the rewritten database still has outbox_acct"
        g.start("deliverd")
        wait_for(lambda: {e["id"] for e in good.events} >= {d["id"] for _, _, d in entries},
                 30, what="the migrated events posted")
        assert g.procs["deliverd"].poll() is None
        out = subprocess.run(["mdb_stat", "-s", "outbox", os.path.join(g.spool, "db")],
                             capture_output=True, text=True, timeout=30).stdout
        assert re.search(r"Entries: 0\b", out), out


class HeldReceiver:
    """A callback receiver that holds its first POST until `release` is
    set (at most 30 s) and then answers 200; later POSTs are answered at
    once. Every POST's events are recorded, in order of arrival."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.posts = []          # the event ids of each POST, as it arrived
        self.answered = []       # (post index, whether the 200 reached the socket)
        recv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recv.lock:
                    k = len(recv.posts)
                    recv.posts.append([e["id"] for e in smtpgate.callback_events(body)])
                if k == 0:
                    recv.release.wait(30)
                ok = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    ok = False
                with recv.lock:
                    recv.answered.append((k, ok))

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/events" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def ids(self):
        with self.lock:
            return [i for p in self.posts for i in p]


@pytest.mark.parametrize("how", ["reload", "restart"])
def test_post_in_flight_is_not_posted_again(how):
    """A POST is in flight (the receiver holds it) when deliverd is
    reloaded (SIGHUP: the scheduler replaces its callback sender) or
    stopped and started again. The sender waits for the answer before it
    exits, so the batch leaves the outbox and no successor posts it a
    second time. (Before, the sender left at once and its successor
    posted the same events again while the first POST was still open.)"""
    import threading
    with peers.Mx() as mx, HeldReceiver() as cb, relay_gw(mx) as g:
        inject(g, "account", "acc", cb.url)
        g.start("deliverd")
        put_msg(g, "acc", ["held@dest.test"])
        wait_for(lambda: len(cb.posts) >= 1, 30, what="the first POST")
        first = list(cb.posts[0])
        assert first, "the first POST carries the delivered event"
        if how == "reload":
            os.kill(g.pid("deliverd"), signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in g.log("deliverd"), 10,
                     what="the reload")
            time.sleep(3)   # a successor started at once would post by now
            cb.release.set()
        else:
            stopper = threading.Thread(target=g.stop, args=("deliverd",))
            stopper.start()
            time.sleep(2)
            cb.release.set()
            stopper.join(20)
            assert not stopper.is_alive()
            g.start("deliverd")
        wait_for(lambda: len(cb.answered) >= 1, 10, what="the held POST's answer")
        assert cb.answered[0] == (0, True), "the sender left before the answer"
        # a successor lists the outbox within a second: give it three
        put_msg(g, "acc", ["later@dest.test"])
        wait_for(lambda: len(cb.ids()) > len(first), 30, what="the next message's event")
        time.sleep(2)
        ids = cb.ids()
        dup = [i for i in first if ids.count(i) > 1]
        assert not dup, "posted again: %s (POSTs: %s)" % (dup, cb.posts)
        assert "posted again" not in g.log("deliverd")


def test_stop_with_a_silent_receiver_is_bounded():
    """The receiver accepts and never answers (callback_timeout 60 s):
    deliverd still stops within its grace, says so, and the events stay
    in the outbox: after the restart they are posted (to a receiver that
    answers now)."""
    silent = Silent()
    with peers.Mx() as mx, relay_gw(mx, callback_timeout="60s") as g:
        try:
            inject(g, "account", "acc", silent.url)
            g.start("deliverd")
            put_msg(g, "acc", ["kept@dest.test"])
            wait_for(lambda: _accepted(silent), 30, what="the POST's connection")
            time.sleep(0.5)     # its request is written into the backlog's socket
            t0 = time.monotonic()
            g.stop("deliverd", timeout=15)
            took = time.monotonic() - t0
            log = g.log("deliverd")
            assert "stopping with 1 callback POST(s) unanswered" in log, log[-2000:]
            print("stopped in %.1fs" % took)
        finally:
            silent.close()
        with peers.Callbacks() as good:
            g.spoolctl("account", "set", "acc", "--callback-url", good.url)
            g.start("deliverd")
            wait_for(lambda: any(e["to"] == "kept@dest.test" for e in good.events), 30,
                     what="the kept event after the restart")


def _accepted(silent):
    """True once a connection waits in silent's backlog (a POST started)."""
    import select
    r, _, _ = select.select([silent.sock], [], [], 0)
    return bool(r)
