"""Replay and health (issue 18 items 2 and 7): spoolctl events over a time
range, a type filter and one account; callbacks replay reaching the
receiver again with the same ids; callbacks status while the receiver
fails and after it recovers; spoolctl status exiting non-zero when a
daemon is stopped. Every wait bounded.
"""
import json
import os
import subprocess

import pytest

import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for


def gen(g, account, when, n=2):
    """n messages of 4 recipients for account, with their events, made by
    spoolctl-gen under a wall clock set to `when` (events are dated a
    minute before)."""
    env = dict(os.environ, LD_PRELOAD=smtpgate.FAKETIME_LIB, FAKETIME="@" + when,
               FAKETIME_DONT_FAKE_MONOTONIC="1")
    subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoolctl-gen"),
                    "-c", g.conf_path, "-n", str(n), "-r", "4", "-a", account, "-e"],
                   check=True, capture_output=True, timeout=60, env=env)


def test_events_range_type_account():
    """Three days of events for shop, one day's for other in between:
    --since/--until (time and id) and --type select exactly shop's events
    of that range and types, oldest first, as the stored JSON objects."""
    if not os.path.exists(smtpgate.FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    with Gateway(tls=False) as g:
        gen(g, "shop", "2026-12-01 10:00:00")
        gen(g, "shop", "2026-12-02 10:00:00")
        gen(g, "other", "2026-12-02 11:00:00")
        gen(g, "shop", "2026-12-03 10:00:00")
        logged = {e["id"]: e for e in g.events()}
        want = [e for e in g.events() if e["account"] == "shop" and
                e["dt"].startswith("2026-12-02") and e["event"] in ("bounced", "deferred")]
        assert len(want) == 4
        r = g.spoolctl("events", "--account", "shop", "--since", "2026-12-02T00:00:00Z",
                       "--until", "2026-12-02", "--type", "bounced,deferred", "--json")
        got = [json.loads(line) for line in r.stdout.splitlines()]
        assert got == want, r.stdout
        assert all(logged[e["id"]] == e for e in got)
        seqs = [int(e["id"].split("-")[1]) for e in got]
        assert seqs == sorted(seqs)
        # by id: from the second of those events to the end of the log
        r = g.spoolctl("events", "--account", "shop", "--since", got[1]["id"])
        lines = r.stdout.splitlines()
        assert lines[0].split()[1] == got[1]["id"], r.stdout
        assert len(lines) == len([e for e in logged.values() if e["account"] == "shop"
                                  and int(e["id"].split("-")[1]) >= seqs[1]])
        assert not any(e["account"] == "other" for e in got)
        r = g.spoolctl("events", "--account", "shop", "--since", "2026-12-04", "--json")
        assert r.stdout == ""
        r = g.spoolctl("events", "--account", "shop", "--since", "yesterday", check=False)
        assert r.returncode == 2 and "not an event id" in r.stderr


def callback_gw(mx, **extra):
    conf = {"relayhost": "127.0.0.1:%d" % mx.port, "callback_retry_min": "1s",
            "callback_retry_max": "2s"}
    conf.update(extra)
    return Gateway(tls=False, extra=conf)


def test_replay_reaches_receiver_again():
    """Two delivered events reach the receiver; callbacks replay of their
    time range sends both again with the same ids, and none of another
    account's."""
    with peers.Mx() as mx, peers.Callbacks() as cb, callback_gw(mx) as g:
        inject(g, "account", "acc", cb.url)
        inject(g, "account", "zzz", cb.url)
        g.start("deliverd")
        put_msg(g, "acc", ["a1@dest.test", "a2@dest.test"])
        put_msg(g, "zzz", ["z@dest.test"])
        wait_for(lambda: len(cb.ids()) == 3, 30, what="the first three callbacks")
        first = {e["id"]: e for e in cb.events if e["account"] == "acc"}
        since = min(e["dt"] for e in first.values())
        with cb.lock:
            cb.events.clear()
        r = g.spoolctl("callbacks", "replay", "--account", "acc", "--since", since)
        assert "queued 2 event(s) of acc" in r.stdout, r.stdout
        wait_for(lambda: len(cb.ids()) >= 2, 30, what="the replayed callbacks")
        again = {e["id"]: e for e in cb.events}
        assert again == first


def test_callbacks_status_backlog_and_error():
    """While the receiver answers 503: a backlog, its oldest event and the
    last error; once it answers 200, no backlog and a last success after
    the error."""
    cb = peers.Callbacks()
    cb.down = True
    with cb, peers.Mx() as mx, callback_gw(mx) as g:
        inject(g, "account", "acc", cb.url)
        g.start("deliverd")
        put_msg(g, "acc", ["a1@dest.test", "a2@dest.test"])
        wait_for(lambda: cb.failed_posts >= 1, 30, what="a failed POST")

        def status():
            return {a["account"]: a for a in g.spoolctl_json("callbacks", "status")}
        st = wait_for(lambda: status().get("acc", {}).get("last_error") and status()["acc"],
                      10, what="the error recorded")
        assert st["backlog"] == 2 and st["last_error_text"] == "HTTP 503", st
        assert st["oldest_pending"] is not None and st["oldest_pending_age"] >= 0
        assert st["last_success"] is None
        text = g.spoolctl("callbacks", "status").stdout
        assert "backlog 2" in text and "HTTP 503" in text, text
        cb.down = False
        st = wait_for(lambda: status()["acc"]["backlog"] == 0 and status()["acc"], 30,
                      what="the backlog sent")
        assert st["last_success"] is not None and st["last_success"] >= st["last_error"]
        assert st["oldest_pending"] is None
        assert len(cb.ids()) == 2


def test_status_fails_when_a_daemon_is_stopped():
    """All three daemons up: exit 0, each with its pid; deliverd stopped:
    exit 1 naming it."""
    with Gateway(tls=False) as g:
        g.start()
        r = g.spoolctl("status", "--json", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        st = json.loads(r.stdout)
        assert st["ok"] and st["problems"] == []
        pids = {d["name"]: d["pid"] for d in st["daemons"] if d["up"]}
        assert pids == {n: g.pid(n) for n in ("smtpd", "spoold", "deliverd")}
        assert all(d["uptime"] >= 0 for d in st["daemons"])
        g.stop("deliverd")
        r = g.spoolctl("status", check=False)
        assert r.returncode == 1, r.stdout
        assert "deliverd  DOWN" in r.stdout and "problem: deliverd is down" in r.stdout
        st = json.loads(g.spoolctl("status", "--json", check=False).stdout)
        assert not st["ok"] and st["problems"] == ["deliverd is down"]
