"""trackd (issue 16): the real daemons on 127.0.0.1. Tokens come from
tests/tools/track-seed, which records a tracked message the way spoold
does (spool_track_put) and prints the tokens deliverd would write into
each recipient's copy. Opens and clicks become `opened`/`clicked` events
(event_log and callbacks); a click redirects only to the recorded link;
forged tokens get 404; the one-click POST and the confirmation page
(driven in headless Chromium) put the address on the stop list durably,
so the next message to it bounces. Every wait is bounded.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, binary, free_port, smtp_send, wait_for, wait_port

LINKS = ["https://shop.example.com/spring?utm=1&x=%C3%A9", "http://example.org/b"]
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
STOPLIST = "550 5.0.0 Email is in the account stoplist"

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(binary(n)) for n in ("trackd", "track-seed", "smtpd")),
    reason="trackd or track-seed not built")


def gateway(mx=None, cb=None, track_tls="none", **extra):
    """A gateway (smtpd, spoold, deliverd relaying to mx) with account
    "acc" (from 127.0.0.1, callbacks to cb) and a track_listen port."""
    g = Gateway(tls=track_tls != "none", port_tls="none", extra=extra)
    g.track_port = free_port()
    g.conf["track_listen"] = "127.0.0.1:%d tls=%s" % (g.track_port, track_tls)
    if mx is not None:
        g.conf["relayhost"] = "127.0.0.1:%d" % mx.port
        g.conf["retry_schedule"] = "1h"
    g.write_conf()
    try:
        args = ["--callback-url", cb.url] if cb is not None else []
        g.add_account("acc", ips=["127.0.0.1/32"], extra=args)
    except BaseException:
        g.close()
        raise
    return g


def start_trackd(g):
    g.start("trackd")
    wait_port(g.track_port, timeout=15)


def seed(g, qid, rcpts, links=LINKS):
    """After trackd started: the tracking key is the daemons' (as root,
    track-seed would create one only root can read)."""
    r = subprocess.run([binary("track-seed"), "-c", g.conf_path, qid, "acc",
                        ",".join(rcpts)] + list(links),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def fake_qid(age=0):
    """A QID that no message has (a tracking record outlives its message),
    of a message that arrived age seconds ago: 13 hex digits of
    microseconds, 7 of anything. track-seed takes the arrival from it."""
    return "%013X%07X" % (time.time_ns() // 1000 - age * 10**6,
                          int.from_bytes(os.urandom(3), "big"))


def request(g, method, path, body=None, headers=None, tls=False):
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", g.track_port, timeout=10, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", g.track_port, timeout=10)
    h = {"User-Agent": BROWSER_UA}
    h.update(headers or {})
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def delivered_qid(g, mx, rcpt):
    smtp_send(g, [rcpt], msg=smtpgate.message(to=rcpt))
    ev = g.wait_events(lambda e: e["event"] == "delivered" and e["to"] == rcpt,
                       what="delivered to %s" % rcpt)
    return ev[0]["queue_id"]


def engage(g, kind, rcpt=None):
    return [e for e in g.events() if e["event"] == kind and (rcpt is None or e["to"] == rcpt)]


def test_open_and_click_become_events_and_callbacks():
    """A pixel fetch gives a no-cache 1x1 GIF and an `opened` event, a
    link fetch a 302 to the recorded URL and a `clicked` event with it;
    both reach event_log and the account's callback receiver, with the
    message's fields, the user agent and the /24 of the client. An open
    seconds after delivery is marked machine (rule 2); the click is not."""
    with peers.Mx() as mx, peers.Callbacks() as cb, gateway(mx, cb) as g:
        g.start()
        qid = delivered_qid(g, mx, "reader@dest.test")
        start_trackd(g)
        tok = seed(g, qid, ["reader@dest.test"])

        st, h, body = request(g, "GET", "/o/" + tok["open"][0])
        assert st == 200 and h["content-type"] == "image/gif"
        assert body.startswith(b"GIF89a") and len(body) == 43
        assert "no-store" in h["cache-control"] and h.get("pragma") == "no-cache"
        st, h, _ = request(g, "GET", "/c/" + tok["click"][0][0])
        assert st == 302 and h["location"] == LINKS[0]
        time.sleep(1.2)     # a person's pace: no scanner burst
        st, h, _ = request(g, "GET", "/c/" + tok["click"][0][1])
        assert st == 302 and h["location"] == LINKS[1]

        g.wait_events(lambda e: e["event"] == "clicked" and e.get("url") == LINKS[1],
                      what="the second click")
        op, = engage(g, "opened")
        assert op["queue_id"] == qid and op["account"] == "acc"
        assert op["to"] == "reader@dest.test" and op["user_agent"] == BROWSER_UA
        assert op["client"] == "127.0.0.0/24"
        assert op["machine"] is True, "an open within seconds of delivery"
        clicks = engage(g, "clicked")
        assert [c["url"] for c in clicks] == LINKS
        assert not any("machine" in c for c in clicks), clicks
        wait_for(lambda: {"opened", "clicked"} <= {e["event"] for e in cb.events},
                 20, what="opened and clicked callbacks")
        log = g.log("trackd")
        assert "%s: hit=open, rcpt=0" % qid in log and "%s: hit=click, rcpt=0, link=1" % qid in log


def test_machine_rules():
    """Image proxies, Apple's bare UA and bots are machines; a person's
    browser is not (the message arrived an hour ago); a second link of the
    same copy fetched within a second is a scanner, and so is every later
    click of that copy for a while; another recipient is unaffected; a
    person's single click an hour after delivery is not marked."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid(age=3600)
        start_trackd(g)
        tok = seed(g, qid, ["p@dest.test", "q@dest.test", "r@dest.test"],
                   links=LINKS + ["https://c.example/"])
        # opens an hour after delivery: a browser is a person, a proxy is not
        assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        assert request(g, "GET", "/o/" + tok["open"][1], headers={
            "User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})[0] == 200
        ops = g.wait_events(lambda e: e["event"] == "opened", what="opens")
        wait_for(lambda: len(engage(g, "opened")) == 2, 10, what="both opens")
        assert {e["to"]: e.get("machine", False) for e in engage(g, "opened")} == \
            {"p@dest.test": False, "q@dest.test": True}, ops
        proxies = ["Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
                   "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
                   "Mozilla/5.0", "python-requests/2.28", ""]
        for ua in proxies:
            assert request(g, "GET", "/c/" + tok["click"][1][0], headers={"User-Agent": ua})[0] == 302
            time.sleep(1.1)     # not a burst: only the UA decides
        assert request(g, "GET", "/c/" + tok["click"][2][1])[0] == 302    # r: a person
        assert request(g, "GET", "/c/" + tok["click"][0][0])[0] == 302
        assert request(g, "GET", "/c/" + tok["click"][0][1])[0] == 302
        assert request(g, "GET", "/c/" + tok["click"][0][2])[0] == 302
        g.wait_events(lambda e: e["event"] == "clicked" and e["to"] == "p@dest.test"
                      and e["url"] == "https://c.example/", what="the scanner's clicks")
        q = engage(g, "clicked", "q@dest.test")
        assert len(q) == len(proxies) and all(e.get("machine") is True for e in q), q
        p = engage(g, "clicked", "p@dest.test")
        # the first click of the burst is marked too when it is committed
        # with the others (the same 100 ms group: t_trackd_machine)
        assert [e.get("machine", False) for e in p][1:] == [True, True], p
        r, = engage(g, "clicked", "r@dest.test")
        assert "machine" not in r, r


def test_forged_and_malformed_tokens_get_404():
    """A token with one character changed, a token of another kind, a
    truncated token, unknown paths, overlong targets: plain 404, one log
    line each, no event; a POST to /o/ is 405."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["f@dest.test"])
        good = tok["open"][0]
        forged = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
        cases = ["/o/" + forged, "/c/" + good, "/u/" + tok["click"][0][0],
                 "/o/" + good[:-3], "/o/", "/x/" + good, "/", "/o/" + good + "/x",
                 "/c/" + "A" * 300, "/favicon.ico"]
        for path in cases:
            st, h, body = request(g, "GET", path)
            assert st == 404 and body == b"Not Found\n", path
        st, h, _ = request(g, "POST", "/o/" + good, body=b"x")
        assert st == 405 and h["allow"] == "GET, HEAD"
        st, _, _ = request(g, "DELETE", "/u/" + tok["unsub"][0])
        assert st == 405
        # HEAD answers as GET and records nothing (scanners probe with it)
        st, h, body = request(g, "HEAD", "/o/" + good)
        assert st == 200 and h["content-type"] == "image/gif" and body == b""
        st, _, _ = request(g, "GET", "/o/" + good)
        assert st == 200
        g.wait_events(lambda e: e["event"] == "opened", what="the genuine open")
        assert len(engage(g, "opened")) == 1 and not engage(g, "clicked")
        log = g.log("trackd")
        assert log.count("NOQUEUE: hit=") >= len(cases) + 2, log


def test_long_link_redirects_whole():
    """A recorded link of 3,000 bytes (long tracking parameters) comes
    back whole in Location."""
    long_link = "https://shop.example.com/p?" + "&".join("utm_%d=%s" % (i, "v" * 20)
                                                      for i in range(110))
    assert len(long_link) > 2900
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(), ["l@dest.test"], links=[long_link])
        st, h, _ = request(g, "GET", "/c/" + tok["click"][0][0])
        assert st == 302 and h["location"] == long_link


def test_client_behind_a_trusted_proxy():
    """X-Forwarded-For names the client only when the peer is a trusted
    proxy, and then only its last entry (the proxy's own); otherwise a
    client cannot choose the address its events carry."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(), ["x@dest.test"])
        xff = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
        assert request(g, "GET", "/o/" + tok["open"][0], headers=xff)[0] == 200
        g.wait_events(lambda e: e["event"] == "opened", what="the first open")
        g.stop("trackd")
        g.conf["track_trusted_proxy"] = "127.0.0.0/8 ::1/128"
        g.write_conf()
        start_trackd(g)
        assert request(g, "GET", "/o/" + tok["open"][0], headers=xff)[0] == 200
        assert request(g, "GET", "/o/" + tok["open"][0],
                       headers={"X-Forwarded-For": "not-an-address"})[0] == 200
        wait_for(lambda: len(engage(g, "opened")) == 3, 10, what="three opens")
        assert [e["client"] for e in engage(g, "opened")] == \
            ["127.0.0.0/24", "198.51.100.0/24", "127.0.0.0/24"]


def test_one_click_unsubscribe_then_stoplist_bounce():
    """RFC 8058's POST puts the address on the account's stop list and
    logs `unsubscribed` once (a second POST: same answer, no event); the
    next message to the address bounces with the stoplist text."""
    with peers.Mx() as mx, gateway(mx) as g:
        g.start()
        qid = delivered_qid(g, mx, "Leaver@dest.test")
        start_trackd(g)
        tok = seed(g, qid, ["Leaver@dest.test"])
        path = "/u/" + tok["unsub"][0]
        st, h, page = request(g, "GET", path)
        assert st == 200 and b"<form method=\"post\">" in page and b"<script" not in page
        assert engage(g, "unsubscribed") == []
        hdr = {"Content-Type": "application/x-www-form-urlencoded"}
        st, _, body = request(g, "POST", path, body=b"List-Unsubscribe=One-Click", headers=hdr)
        assert st == 200 and b"unsubscribed" in body
        stop = g.spoolctl("stoplist", "list", "acc").stdout
        assert "leaver@dest.test" in stop.lower()
        g.wait_events(lambda e: e["event"] == "unsubscribed", what="unsubscribed")
        st2, _, body2 = request(g, "POST", path, body=b"List-Unsubscribe=One-Click", headers=hdr)
        assert (st2, body2) == (st, body)
        time.sleep(0.5)
        ev, = engage(g, "unsubscribed")
        assert ev["queue_id"] == qid and ev["to"].lower() == "leaver@dest.test"
        assert ev["client"] == "127.0.0.0/24" and ev["account"] == "acc"
        why = g.spoolctl_json("stoplist", "show", "acc", "leaver@dest.test")
        assert why["reason"] == "unsubscribed" and why["queue_id"] == qid, why

        smtp_send(g, ["Leaver@dest.test"], msg=smtpgate.message(to="Leaver@dest.test"))
        b = g.wait_events(lambda e: e["event"] == "bounced" and
                          e["to"].lower() == "leaver@dest.test", what="stoplist bounce")
        assert b[0]["msg"] == STOPLIST
        assert len(mx.received("Leaver@dest.test")) == 1


def test_unsubscribe_survives_sigkill_right_after_the_answer():
    """trackd killed with SIGKILL as soon as the POST was answered: the
    stop-list entry is there, and after a restart the address is still
    unsubscribed (a second POST adds no event)."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["k@dest.test"])
        st, _, _ = request(g, "POST", "/u/" + tok["unsub"][0], body=b"List-Unsubscribe=One-Click")
        g.kill("trackd", signal.SIGKILL)
        assert st == 200
        assert "k@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout
        start_trackd(g)
        assert request(g, "POST", "/u/" + tok["unsub"][0], body=b"")[0] == 200
        g.stop("trackd")
        assert "stoplist=already" in g.log("trackd")
        # one event; the kill may land inside the first export of
        # event_log, which then appends it again (same id: the contract
        # lets readers discard duplicates by id)
        assert len({e["id"] for e in engage(g, "unsubscribed")}) == 1


def test_unsubscribe_commit_on_a_slow_disk_holds_no_other_hit():
    """An unsubscribe is answered after its commit, but the commit runs in
    the committer: while its fsync stalls (a slow disk: slowsync-shim.so
    makes each sync sleep), opens from other connections are answered at
    once. Before, the backend committed it itself and every hit waited."""
    shim = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "slowsync-shim.so")
    flagdir = tempfile.mkdtemp(prefix="sgslow-")
    os.chmod(flagdir, 0o777)  # the committer runs as trackd_user
    flag = os.path.join(flagdir, "slow")
    env = dict(os.environ, LD_PRELOAD=shim, SMTPGATE_SLOWSYNC_FLAG=flag,
               SMTPGATE_SLOWSYNC_MS="1500",
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        logpath = os.path.join(g.dir, "trackd.log")
        with open(logpath, "ab") as logf:
            g.procs["trackd"] = subprocess.Popen(
                [binary("trackd"), "-c", g.conf_path], stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        g.logs["trackd"] = logpath
        wait_port(g.track_port, timeout=15)
        tok = seed(g, qid, ["s@dest.test", "o@dest.test"])
        open(flag, "w").close()
        done = {}

        def unsubscribe():
            done["unsub"] = request(g, "POST", "/u/" + tok["unsub"][0],
                                    body=b"List-Unsubscribe=One-Click")
        th = threading.Thread(target=unsubscribe, daemon=True)
        th.start()
        # the unsubscribe's commit is inside its (slow) sync now
        wait_for(lambda: os.path.exists(flag + ".in"), timeout=10,
                 what="the unsubscribe's commit to reach its sync")
        answered = 0
        for _ in range(5):
            st, _, _ = request(g, "GET", "/o/" + tok["open"][1])
            assert st == 200
            answered += th.is_alive()
        os.unlink(flag)
        th.join(30)
        assert not th.is_alive() and done["unsub"][0] == 200, done
        assert answered == 5, "opens waited for the unsubscribe's commit: %d of 5 " \
            "answered before it" % answered
        assert "s@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout
        g.wait_events(lambda e: e["event"] == "opened", what="the opens recorded")
    shutil.rmtree(flagdir, ignore_errors=True)


def start_slow_trackd(g, flag, one_cpu=True):
    """trackd with slowsync-shim.so (each sync sleeps 1.5 s while flag
    exists), on one CPU: one HTTP thread (it takes one per CPU it may
    run on)."""
    shim = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "slowsync-shim.so")
    env = dict(os.environ, LD_PRELOAD=shim, SMTPGATE_SLOWSYNC_FLAG=flag,
               SMTPGATE_SLOWSYNC_MS="1500",
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    argv = [binary("trackd"), "-c", g.conf_path]
    if one_cpu:
        argv = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] + argv
    logpath = os.path.join(g.dir, "trackd.log")
    with open(logpath, "ab") as logf:
        g.procs["trackd"] = subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    g.logs["trackd"] = logpath
    wait_port(g.track_port, timeout=15)


def slow_flag():
    flagdir = tempfile.mkdtemp(prefix="sgslow-")
    os.chmod(flagdir, 0o777)  # the committer runs as trackd_user
    return flagdir, os.path.join(flagdir, "slow")


def test_unsubscribes_waiting_for_a_slow_commit_hold_no_thread():
    """One HTTP thread, a slow disk: while two unsubscribes wait for their
    commit (their connections suspended), opens and clicks on other
    connections, and on a kept-alive one, are answered. Before, each
    waiting unsubscribe held its HTTP thread: with both threads held no
    hit was answered until the first commit ended."""
    flagdir, flag = slow_flag()
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_slow_trackd(g, flag)
        tok = seed(g, qid, ["s1@dest.test", "s2@dest.test", "o@dest.test"])
        keep = http.client.HTTPConnection("127.0.0.1", g.track_port, timeout=10)
        keep.request("GET", "/o/" + tok["open"][2], headers={"User-Agent": BROWSER_UA})
        r = keep.getresponse()
        assert r.status == 200 and r.read()
        open(flag, "w").close()
        done = {}

        def unsubscribe(i):
            done[i] = request(g, "POST", "/u/" + tok["unsub"][i],
                              body=b"List-Unsubscribe=One-Click")
        th = [threading.Thread(target=unsubscribe, args=(i,), daemon=True) for i in (0, 1)]
        th[0].start()
        wait_for(lambda: os.path.exists(flag + ".in"), timeout=10,
                 what="the first unsubscribe's commit to reach its sync")
        th[1].start()
        time.sleep(0.3)  # the second one reaches trackd (a thread of its own before)
        answered = 0
        for i in range(4):
            st, hdr, _ = request(g, "GET", ("/o/" + tok["open"][2]) if i % 2 == 0
                                 else "/c/" + tok["click"][2][0])
            assert st == (200 if i % 2 == 0 else 302)
            answered += th[0].is_alive()
        keep.request("GET", "/c/" + tok["click"][2][1], headers={"User-Agent": BROWSER_UA})
        r = keep.getresponse()
        assert r.status == 302 and r.getheader("Location") == LINKS[1]
        r.read()
        answered += th[0].is_alive()
        keep.close()
        os.unlink(flag)
        for t in th:
            t.join(30)
        assert not any(t.is_alive() for t in th)
        assert answered == 5, "hits waited for an unsubscribe's commit: %d of 5 " \
            "answered before it" % answered
        assert done[0][0] == 200 and done[1][0] == 200, done
        stop = g.spoolctl("stoplist", "list", "acc").stdout
        assert "s1@dest.test" in stop and "s2@dest.test" in stop
        assert "threads=1," in g.log("trackd")
        assert "libmicrohttpd" not in g.log("trackd")  # no warning either
    shutil.rmtree(flagdir, ignore_errors=True)


def test_a_burst_of_unsubscribes_on_one_thread():
    """Thirty-six unsubscribes wait together behind a slow commit (one HTTP
    thread, forty suspended connections), are committed together and
    answered together: each gets its 200, the answer to its own request
    (matched by id), and is on the stop list; trackd goes on."""
    flagdir, flag = slow_flag()
    heads = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = len(heads)
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_slow_trackd(g, flag)
        rcpts = ["%s%d@dest.test" % (heads[i], i) for i in range(n)]
        tok = seed(g, qid, rcpts)
        open(flag, "w").close()
        done = {}

        def unsubscribe(i):
            try:
                st, _, body = request(g, "POST", "/u/" + tok["unsub"][i],
                                      body=b"List-Unsubscribe=One-Click")
                # the done page names its own recipient, masked: "a***@dest.test"
                done[i] = st if ("<strong>%s***@dest.test" % heads[i]).encode() in body \
                    else (st, body)
            except OSError as e:
                done[i] = repr(e)
        th = [threading.Thread(target=unsubscribe, args=(i,), daemon=True) for i in range(n)]
        th[0].start()
        wait_for(lambda: os.path.exists(flag + ".in"), timeout=10,
                 what="the first unsubscribe's commit to reach its sync")
        for t in th[1:]:
            t.start()
        time.sleep(0.5)  # the others reach the committer's pipe
        os.unlink(flag)
        for t in th:
            t.join(30)
        assert sorted(done.items()) == [(i, 200) for i in range(n)]
        stop = g.spoolctl("stoplist", "list", "acc").stdout
        assert all(r in stop for r in rcpts)
        assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        assert "stopping" not in g.log("trackd")
    shutil.rmtree(flagdir, ignore_errors=True)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_client_gone_while_its_unsubscribe_waits():
    """The client closes its connection while its unsubscribe waits for
    the commit (suspended): the unsubscribe is committed all the same,
    the connection is freed once the verdict came (the HTTP process's
    descriptors are back to what they were), hits go on being answered,
    and trackd stops cleanly."""
    flagdir, flag = slow_flag()
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_slow_trackd(g, flag)
        tok = seed(g, qid, ["gone@dest.test", "o@dest.test"])
        assert request(g, "GET", "/o/" + tok["open"][1])[0] == 200
        pid = g.pid("trackd")
        before = open_fds(pid)
        open(flag, "w").close()
        s = socket.create_connection(("127.0.0.1", g.track_port), timeout=10)
        body = b"List-Unsubscribe=One-Click"
        s.sendall(b"POST /u/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n\r\n%s"
                  % (tok["unsub"][0].encode(), len(body), body))
        wait_for(lambda: os.path.exists(flag + ".in"), timeout=10,
                 what="the unsubscribe's commit to reach its sync")
        s.close()
        assert request(g, "GET", "/o/" + tok["open"][1])[0] == 200
        os.unlink(flag)
        wait_for(lambda: "gone@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout,
                 timeout=20, what="the unsubscribe committed")
        wait_for(lambda: "hit=unsubscribe," in g.log("trackd"), timeout=10,
                 what="the unsubscribe's line")
        assert "stoplist=added" in g.log("trackd")
        wait_for(lambda: open_fds(pid) <= before, timeout=15,
                 what="the closed connection freed (%d descriptors, %d before)"
                 % (open_fds(pid), before))
        assert request(g, "GET", "/o/" + tok["open"][1])[0] == 200
        p = g.procs["trackd"]
        g.stop("trackd")
        assert p.returncode == 0, g.log("trackd")
        assert "stopping: everything committed" in g.log("trackd")
        assert len(engage(g, "unsubscribed")) == 1
    shutil.rmtree(flagdir, ignore_errors=True)


def test_unsubscribe_without_an_answer_gets_503_and_trackd_goes_on():
    """The committer stopped (SIGSTOP): an unsubscribe waits, then gets
    503 (no answer within 5 s) while trackd goes on serving; once the
    committer runs again the unsubscribe is committed (its late answer
    finds no one waiting) and the sender's retry gets 200, stoplist=already.
    Before, the HTTP thread's 503 also stopped trackd (backend lost)."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["late@dest.test", "o@dest.test"])
        commit = smtpgate.trackd_procs(g)["commit"]["pid"]
        path = "/u/" + tok["unsub"][0]
        os.kill(commit, signal.SIGSTOP)
        try:
            assert request(g, "POST", path, body=b"List-Unsubscribe=One-Click")[0] == 503
            assert request(g, "GET", "/o/" + tok["open"][1])[0] == 200
        finally:
            os.kill(commit, signal.SIGCONT)
        assert "status=503 (no answer in 5000 ms)" in g.log("trackd")
        wait_for(lambda: "late@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout,
                 timeout=20, what="the late unsubscribe committed")
        assert request(g, "POST", path, body=b"List-Unsubscribe=One-Click")[0] == 200
        wait_for(lambda: "stoplist=already" in g.log("trackd"), timeout=10,
                 what="the retry's line")
        p = g.procs["trackd"]
        g.stop("trackd")
        assert p.returncode == 0, g.log("trackd")


def test_sigterm_commits_pending_opens():
    """Opens answered just before SIGTERM are committed before exit."""
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["t@dest.test"])
        for _ in range(20):
            assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        g.stop("trackd")
        assert len(engage(g, "opened")) == 20
        assert "everything committed" in g.log("trackd")


def test_limits_and_tls_implicit():
    """tls=implicit serves HTTPS with tls_cert/tls_key; a request body
    over 1 KB closes the connection without an answer."""
    with gateway(track_tls="implicit") as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["s@dest.test"])
        st, h, body = request(g, "GET", "/o/" + tok["open"][0], tls=True)
        assert st == 200 and body.startswith(b"GIF89a")
        with pytest.raises((http.client.HTTPException, ConnectionError, ssl.SSLError)):
            request(g, "POST", "/u/" + tok["unsub"][0], body=b"x" * 4096, tls=True)
        assert "s@dest.test" not in g.spoolctl("stoplist", "list", "acc").stdout
        assert "hit=body-too-large" in g.log("trackd")


def test_idle_and_oversized_requests_are_cut():
    """A client that sends half a request and waits is disconnected after
    the idle timeout (10 s); a header block over 16 KB gets an error
    answer, not memory; a request body over 1 KB closes the connection."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        s = socket.create_connection(("127.0.0.1", g.track_port), timeout=20)
        s.sendall(b"GET /o/abc HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        assert s.recv(4096) == b"", "still open"
        waited = time.monotonic() - t0
        s.close()
        assert 5 < waited < 19, waited
        st, _, _ = request(g, "GET", "/o/abc", headers={"X-Pad": "a" * 20000})
        assert st in (413, 414, 431), st
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            request(g, "POST", "/u/abc", body=b"x" * 4096)
        assert "hit=body-too-large" in g.log("trackd")
        assert request(g, "GET", "/o/abc")[0] == 404     # and it still answers


def test_bad_track_listen_exits_2():
    """tls=starttls makes no sense for HTTP, a proxy must be an address
    range: exit 2, one line naming the file, the line and the key."""
    with Gateway(tls=False, port_tls="none") as g:
        g.conf["track_listen"] = "127.0.0.1:%d tls=starttls" % free_port()
        g.write_conf()
        r = subprocess.run([binary("trackd"), "-c", g.conf_path], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2
        assert "track_listen" in r.stderr and g.conf_path in r.stderr
        g.conf["track_listen"] = "127.0.0.1:%d tls=none" % free_port()
        g.conf["track_trusted_proxy"] = "10.0.0.0/8 proxy.example"
        g.write_conf()
        r = subprocess.run([binary("trackd"), "-c", g.conf_path], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and "track_trusted_proxy" in r.stderr, r.stderr


def chromium():
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        return None
    drv = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    return (drv, exe) if os.path.exists(drv) and os.path.exists(exe) else None


@pytest.mark.skipif(chromium() is None, reason="chromium, chromium-driver or python3-selenium missing")
def test_confirmation_page_in_headless_chromium(tmp_path):
    """The confirmation page in headless Chromium: the button (no
    JavaScript) POSTs, the done page says so, the address is on the stop
    list. Screenshots are kept in the test's tmp_path (printed; pytest
    keeps the last runs' directories)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    drv, exe = chromium()
    with gateway() as g:
        g.start("spoold")
        qid = fake_qid()
        start_trackd(g)
        tok = seed(g, qid, ["browser@dest.test"])
        opts = webdriver.ChromeOptions()
        opts.binary_location = exe
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--window-size=800,600",
                  "--user-data-dir=" + os.path.join(g.dir, "chromium")):
            opts.add_argument(a)
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        d = webdriver.Chrome(service=Service(drv), options=opts)
        try:
            d.set_page_load_timeout(30)
            d.get("http://127.0.0.1:%d/u/%s" % (g.track_port, tok["unsub"][0]))
            before = str(tmp_path / "unsubscribe-page.png")
            d.save_screenshot(before)
            assert "b***@dest.test" in d.page_source
            btn = d.find_element(By.ID, "unsubscribe")
            assert btn.text == "Unsubscribe"
            btn.click()
            wait_for(lambda: d.find_elements(By.ID, "done"), 20, what="the done page")
            after = str(tmp_path / "unsubscribed-page.png")
            d.save_screenshot(after)
            print("screenshots: %s %s" % (before, after))
        finally:
            d.quit()
        assert "browser@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout
        g.wait_events(lambda e: e["event"] == "unsubscribed", what="unsubscribed")
        assert os.path.getsize(after) > 1000


def test_privileges_and_sighup():
    """Started as root, the HTTP process runs as trackd_http_user, the
    backend and its committer as trackd_user (every id, no way back to
    root; test_trackd_priv.py checks the rest); SIGHUP re-reads the
    configuration and the server goes on answering."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        procs = smtpgate.trackd_procs(g)
        assert sorted(procs) == ["backend", "commit", "http"], procs
        assert len(smtpgate.session_procs(g.pid("trackd"))) == 3
        if smtpgate.IS_ROOT:
            import pwd
            uid = pwd.getpwnam("smtpgate").pw_uid
            for p in (procs["backend"], procs["commit"]):
                assert p["uids"] == [uid] * 4, p
            assert procs["http"]["uids"] == [pwd.getpwnam("smtpgate-trackd").pw_uid] * 4
        os.kill(g.pid("trackd"), signal.SIGHUP)
        wait_for(lambda: "reloaded" in g.log("trackd"), 10, what="reloaded")
        assert request(g, "GET", "/o/x")[0] == 404
        g.stop("trackd")


def test_through_the_real_rewriting_path():
    """End to end: a tracked account's HTML message goes out rewritten by
    deliverd; the pixel, the first link and the List-Unsubscribe URL of the
    copy that arrived are fetched through trackd: `opened` and `clicked`
    (to the original URL, with the message's issue), the one-click POST
    puts the address on the stop list and the next message to it bounces."""
    import email
    import email.policy
    import re
    from test_track_rewrite import HOST, LINKS as SENT_LINKS, mime_message

    with peers.Mx() as mx, peers.Callbacks() as cb, gateway(mx, cb) as g:
        g.start()
        start_trackd(g)
        g.spoolctl("account", "set", "acc", "--track", "opens,clicks,unsubscribe",
                   "--track-host", HOST)
        smtp_send(g, ["e2e@dest.test"], msg=mime_message("quoted-printable", "e2e@dest.test"))
        wait_for(lambda: mx.received("e2e@dest.test"), 30, what="the tracked copy")
        data = mx.received("e2e@dest.test")[0]["data"]
        msg = email.message_from_bytes(data, policy=email.policy.default)
        html = msg.get_body(preferencelist=("html",)).get_content()
        pix = re.search(r'src="https://%s(/o/[A-Za-z0-9_-]+)"' % re.escape(HOST), html).group(1)
        clk = re.findall(r'href="https://%s(/c/[A-Za-z0-9_-]+)"' % re.escape(HOST), html)
        uns = re.search(r"<https://%s(/u/[A-Za-z0-9_-]+)>" % re.escape(HOST),
                        msg["List-Unsubscribe"]).group(1)
        assert len(clk) == len(SENT_LINKS)

        assert request(g, "GET", pix)[0] == 200
        st, h, _ = request(g, "GET", clk[0])
        assert st == 302 and h["location"] == SENT_LINKS[0]
        g.wait_events(lambda e: e["event"] == "clicked", what="clicked")
        op = g.wait_events(lambda e: e["event"] == "opened", what="opened")[0]
        dl = [e for e in g.events() if e["event"] == "delivered"][0]
        assert op["issue"] == dl["issue"] and op["issue"]["id"] is not None
        assert op["queue_id"] == dl["queue_id"] and op["message_id"] == dl["message_id"]
        assert engage(g, "clicked")[0]["url"] == SENT_LINKS[0]

        st, _, _ = request(g, "POST", uns, body=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200
        assert "e2e@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout
        smtp_send(g, ["e2e@dest.test"], msg=smtpgate.message(to="e2e@dest.test"))
        b = g.wait_events(lambda e: e["event"] == "bounced" and e["to"] == "e2e@dest.test",
                          what="stoplist bounce")
        assert b[0]["msg"] == STOPLIST
        wait_for(lambda: {"opened", "clicked", "unsubscribed"} <= {e["event"] for e in cb.events},
                 30, what="the three callbacks")


def test_committer_death_stops_trackd():
    """Without its committer trackd could answer but never record: the
    backend logs the committer's end and exits 1, and so does trackd (for
    systemd to restart it)."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        child = smtpgate.trackd_procs(g)["commit"]["pid"]
        os.kill(child, signal.SIGKILL)
        assert g.procs["trackd"].wait(timeout=15) == 1
        assert "committer (pid %d) exited" % child in g.log("trackd")
