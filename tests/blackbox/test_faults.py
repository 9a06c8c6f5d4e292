"""Faults (issue 9 item 4): spool disk full (a 2 MB tmpfs at spool_dir, as
root), LMDB map full through the whole pipeline, DNS server down or silent,
callback receiver gone (port closed) across a deliverd restart, and the wall
clock stepped backwards under deliverd (libfaketime). Every wait bounded.
"""
import collections
import os
import smtplib
import socket
import time

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, inject, message, wait_for


def put_msg(g, login, rcpt, count=1, env=None):
    return smtpgate.put_msg(g, login, [rcpt], count=count, env=env)


def smtp_send(g, msgid, rcpts=("r@dest.test",), size=0):
    """(code, text) of the end of data, or of the first refusal."""
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
    try:
        s.ehlo("faults.test")
        code, text = s.mail("bounce@example.com")
        if code != 250:
            return code, text.decode()
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                return code, text.decode()
        body = "x" * 76 + "\r\n"
        code, text = s.data(message(msgid=msgid, body=body * (size // 78 + 1)))
        return code, text.decode()
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


# ---------------------------------------------------------------- disk full

def test_spool_disk_full():
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    # min_free_space 1 byte: this test is about writes that fail on a full
    # disk, not the watermark (test_storage.py)
    g = Gateway(tls=False, extra={"spoold_rescan_interval": "1s", "min_free_space": "1"})
    smtpgate.mount_tmpfs(g, "2m")
    try:
        g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
        g.start("spoold", "smtpd")
        code, text = smtp_send(g, "<before@faults.test>")
        assert code == 250, text
        wait_for(lambda: not g.files("new"), 20, what="filed")
        # fill the file system
        filler = os.path.join(g.spool, "filler")
        smtpgate.fill_disk(filler)
        results = []
        for i in range(3):
            try:
                results.append(smtp_send(g, "<full%d@faults.test>" % i, size=200000))
            except smtplib.SMTPException as e:
                results.append((getattr(e, "smtp_code", 0), str(e)))
        print("disk full:", results)
        for code, text in results:
            assert code == 452 and "4.3.1" in text, results
        # nothing half-written was filed; the partial files are gone
        assert g.files("new") == []
        wait_for(lambda: g.files("tmp") == [], 10, what="incoming/tmp empty")
        assert g.procs["smtpd"].poll() is None and g.procs["spoold"].poll() is None
        # space comes back: accepted again, filed
        os.unlink(filler)
        code, text = smtp_send(g, "<after@faults.test>", size=200000)
        assert code == 250, text
        wait_for(lambda: not g.files("new") and len(g.files("queue")) == 2, 20,
                 what="both good messages filed")
    finally:
        try:
            g.stop()
        except Exception:
            pass
        smtpgate.umount_tmpfs(g)
        g.close()


# ---------------------------------------------------------------- LMDB map full

def test_lmdb_map_full_through_the_pipeline():
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "lmdb_map_size": "1m", "lmdb_map_max": "1m",
            "spoold_rescan_interval": "1s", "retry_schedule": "1s 2s"}) as g:
        g.spoolctl("account", "add", "pin", "--ip", "127.0.0.1/32")
        g.start()
        acked = set()
        rcpts = ["u%03d@dest.test" % i for i in range(50)]
        full = False
        for i in range(200):
            mid = "<mapfull-%d@faults.test>" % i
            try:
                code, text = smtp_send(g, mid, rcpts=rcpts)
            except (OSError, smtplib.SMTPException):
                code = 0
            if code == 250:
                acked.add(mid)
            if i % 10 == 9 and ("LMDB map full" in g.log("spoold") or
                                "LMDB map full" in g.log("deliverd")):
                full = True
                break
        assert full, "1 MB should fill up with 200 x 50 recipients"
        time.sleep(2)
        for name in ("spoold", "deliverd", "smtpd"):
            assert g.procs[name].poll() is None, "%s died: %s" % (name, g.log(name)[-1500:])
        print("map full after %d messages; spoold: %s" % (len(acked), [
            l for l in g.log("spoold").splitlines() if "map full" in l][:2]))
        # restart with a bigger map: everything acknowledged goes out
        g.stop()
        g.conf["lmdb_map_max"] = "256m"
        g.write_conf()
        g.start()

        def got():
            return collections.Counter(chaos.message_id(m["data"]) for m in mx.received())
        wait_for(lambda: set(got()) >= acked and not g.files("new") and not g.files("queue"),
                 120, interval=0.5, what="every acknowledged message delivered")
        # each message went to its 50 recipients (a kill-free run: no duplicates needed,
        # but a failed commit may repeat a transaction)
        per = collections.Counter()
        for m in mx.received():
            per[chaos.message_id(m["data"])] += len(m["to"])
        assert all(per[mid] >= 50 for mid in acked), per


# ---------------------------------------------------------------- DNS down

def silent_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


@pytest.mark.parametrize("kind", ["closed-port", "silent"])
def test_dns_down_defers(kind):
    sock = None
    if kind == "closed-port":
        server = "127.0.0.1:%d" % smtpgate.free_port()
    else:
        sock = silent_udp()
        server = "127.0.0.1:%d" % sock.getsockname()[1]
    try:
        with Gateway(tls=False, extra={"dns_server": server, "retry_schedule": "1h",
                                       "connect_timeout": "2s", "command_timeout": "3s"}) as g:
            g.start("deliverd")
            inject(g, "account", "acc")
            put_msg(g, "acc", "someone@dns-down.test")
            ev = g.wait_events(lambda e: e["to"] == "someone@dns-down.test", timeout=60,
                               what="an outcome with DNS down")[0]
            print("DNS %s: %s %s" % (kind, ev["event"], ev["msg"]))
            assert ev["event"] == "deferred" and ev["msg"][:1] == "4", ev
            assert g.procs["deliverd"].poll() is None
    finally:
        if sock:
            sock.close()


# ---------------------------------------------------------------- callbacks

def test_callback_receiver_gone_across_restart():
    recv = chaos.Receiver()          # not listening yet: connection refused
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "callback_retry_min": "1s",
            "callback_retry_max": "2s", "callback_batch_max": "50"}) as g:
        g.start("deliverd")
        inject(g, "account", "cbk", recv.url)
        put_msg(g, "cbk", "c{n}@dest.test", count=300)
        wait_for(lambda: len(g.events()) >= 300, 60, what="300 events")
        # deliverd (and its callback sender) restart during the outage
        g.kill("deliverd")
        g.start("deliverd")
        time.sleep(3)
        assert recv.ids() == []
        recv.start()
        try:
            want = {e["id"] for e in g.events()}
            wait_for(lambda: set(recv.ids()) >= want, 60, what="every event after the outage")
            dup = len(recv.ids()) - len(set(recv.ids()))
            print("callbacks: %d events, %d posts, %d repeated" % (len(want), recv.posts, dup))
        finally:
            recv.stop()


# ---------------------------------------------------------------- clock

FAKETIME_LIB = smtpgate.FAKETIME_LIB
start_deliverd_faketime = smtpgate.start_faketime


def test_clock_stepped_backwards():
    """deliverd's wall clock jumps back by 1 hour (libfaketime, runtime
    offset file; the monotonic clock is left alone, as with an NTP step)
    after a deferral was scheduled: the retry must still happen soon, and new
    messages go out at once."""
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "3s"}) as g:
        mx.rules["later@dest.test"] = ["451 4.7.1 try again", "250 2.1.5 Ok"]
        # the whole gateway shares the clock: deliverd and the tool that files
        # messages (as spoold would) both read the offset file
        tsfile, fake = start_deliverd_faketime(g)
        inject(g, "account", "acc")
        put_msg(g, "acc", "later@dest.test", env=fake)
        g.wait_events(lambda e: e["to"] == "later@dest.test" and e["event"] == "deferred",
                      timeout=30, what="the first attempt deferred")
        # now step the clock back by an hour
        with open(tsfile, "w") as f:
            f.write("-3600\n")
        t0 = time.monotonic()
        put_msg(g, "acc", "fresh@dest.test", env=fake)
        g.wait_events(lambda e: e["to"] == "fresh@dest.test" and e["event"] == "delivered",
                      timeout=30, what="a new message after the step")
        ev = g.wait_events(lambda e: e["to"] == "later@dest.test" and
                           e["event"] == "delivered", timeout=60,
                           what="the retry scheduled before the step")[0]
        print("clock step: retry delivered %.1fs after the step, dt %s" % (
            time.monotonic() - t0, ev["dt"]))
        assert g.procs["deliverd"].poll() is None


def test_callback_outage_of_a_simulated_hour():
    """The receiver is away while deliverd's wall clock runs an hour ahead
    (libfaketime offset file stepped +1 h during the outage): nothing is
    dropped as too old, everything arrives once the receiver is back. The
    callback sender confines itself (Landlock) and cannot read the offset
    file: it keeps the real clock, up to an hour behind the events' times,
    which must not drop or hold back anything either."""
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip("libfaketime not installed (Debian package faketime)")
    recv = chaos.Receiver()
    with peers.Mx() as mx, Gateway(tls=False, extra={
            "relayhost": "127.0.0.1:%d" % mx.port, "callback_retry_min": "1s",
            "callback_retry_max": "2s"}) as g:
        tsfile, fake = start_deliverd_faketime(g)
        inject(g, "account", "cbk", recv.url)
        put_msg(g, "cbk", "h{n}@dest.test", count=50, env=fake)
        wait_for(lambda: len(g.events()) >= 50, 60, what="50 events")
        for step in ("+1200", "+2400", "+3600"):
            time.sleep(1.5)
            with open(tsfile, "w") as f:
                f.write(step + "\n")
        put_msg(g, "cbk", "late{n}@dest.test", count=10, env=fake)
        wait_for(lambda: len(g.events()) >= 60, 60, what="60 events")
        time.sleep(2)
        recv.start()
        try:
            want = {e["id"] for e in g.events()}
            wait_for(lambda: set(recv.ids()) >= want, 60, what="every event after an hour")
        finally:
            recv.stop()
