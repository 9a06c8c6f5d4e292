"""A message that crashes a daemon while it handles it (an abort or SIGSEGV
in a library) must not stop the pipeline for every message behind it.

The crash comes from tests/tools/crash-shim.so, loaded with LD_PRELOAD into
the daemon under test only: it kills the process when the message data it
reads holds a marker (no hook in the product code). spoold is restarted
the way systemd's Restart=on-failure would (Supervisor below)."""
import json
import os
import signal
import smtplib
import subprocess
import threading
import time

import pytest

import peers
import smtpgate
from smtpgate import Gateway, message, wait_for

SHIM = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "crash-shim.so")
MARKER = "X-Crash-Test: poison-7f3a"


def shim_env(g, on, sig="ABRT"):
    """The environment that makes a daemon die on the marker."""
    count = os.path.join(g.dir, "crashes")
    with open(count, "a"):
        pass
    os.chmod(count, 0o666)   # the daemon drops to its user
    return {"LD_PRELOAD": SHIM, "SMTPGATE_CRASH_ON": on,
            "SMTPGATE_CRASH_MARKER": MARKER, "SMTPGATE_CRASH_SIGNAL": sig,
            "SMTPGATE_CRASH_COUNT": count,
            # a sanitizer build wants its runtime first
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
            ":verify_asan_link_order=0"}


def crashes(g):
    try:
        return os.path.getsize(os.path.join(g.dir, "crashes"))
    except FileNotFoundError:
        return 0


class Supervisor:
    """Runs g's daemon `name` with env and starts it again whenever it
    exits, after `delay` seconds, as systemd's Restart= does. Registers the
    process in g.procs, so g.log and g.stop work."""

    def __init__(self, g, name, env, delay=0.3):
        self.g, self.name, self.env, self.delay = g, name, env, delay
        self.starts = 0
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def spawn(self):
        g = self.g
        logpath = os.path.join(g.dir, self.name + ".log")
        with open(logpath, "ab") as logf:
            p = subprocess.Popen([smtpgate.binary(self.name), "-c", g.conf_path],
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 env=dict(os.environ, **self.env))
        g.logs[self.name] = logpath
        g.procs[self.name] = p
        self.starts += 1
        return p

    def run(self):
        while not self.done.is_set():
            with self.lock:
                p = self.spawn()
            while p.poll() is None and not self.done.is_set():
                time.sleep(0.05)
            if self.done.wait(self.delay):
                return

    def start(self):
        self.thread.start()
        wait_for(lambda: self.starts > 0, 10, what="first start")
        return self

    def stop(self):
        """Stops supervising and the daemon (SIGTERM)."""
        self.done.set()
        self.thread.join(10)
        with self.lock:
            self.g.stop(self.name)

    def running(self):
        p = self.g.procs.get(self.name)
        return p is not None and p.poll() is None


def send(g, rcpt, subject, poison=False):
    """One message over SMTP; its queue id (the 250's last word)."""
    headers = {"X-Crash-Test": "poison-7f3a"} if poison else {}
    msg = message(to=rcpt, subject=subject, headers=headers)
    assert (MARKER.encode() in msg) == poison
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=30)
    try:
        s.ehlo("client.test")
        s.mail("sender@example.com")
        s.rcpt(rcpt)
        code, text = s.data(msg)
        assert code == 250, (code, text)
        return text.decode().split()[-1]
    finally:
        s.quit()


@pytest.fixture
def mx():
    with peers.Mx() as m:
        yield m


@pytest.fixture
def gate(mx):
    if not os.path.exists(SHIM):
        pytest.skip("tests/tools/crash-shim.so not built")
    g = Gateway(tls=False, port_tls="none",
                extra={"relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h"})
    g.add_account("acc", ips=["127.0.0.1/32"])
    g.sup = None
    try:
        g.start("smtpd")
        yield g
    finally:
        if g.sup is not None:
            g.sup.done.set()
            g.sup.thread.join(10)
        g.close()


def delivered_once(mx, rcpts, timeout=60):
    """Every one of rcpts reached the sink, each exactly once."""
    wait_for(lambda: all(mx.received(r) for r in rcpts), timeout,
             what="every good message at the sink")
    time.sleep(1)  # a second copy would come right behind the first
    for r in rcpts:
        assert len(mx.received(r)) == 1, (r, len(mx.received(r)))


def assert_quarantined(g, q, deaths=2):
    line = "%s: quarantined, reason=spoold died while filing it (%d times)" % (q, deaths)
    wait_for(lambda: line in g.log("spoold"), 60, what=line)
    assert q in g.files("quarantine")
    assert q not in g.files("new") + g.files("queue")
    r = g.spoolctl("show", q, check=False)
    assert r.returncode == 1, r.stdout   # never filed


@pytest.mark.parametrize("sig", ["ABRT", "SEGV"])
def test_spoold_poison_in_a_backlog(gate, mx, sig):
    """A backlog filed in one batch with a poison message in the middle:
    spoold dies on the batch, files the batch one at a time at its restart,
    dies on the poison alone, and at its next start quarantines it; every
    other message, before, behind and after it, is delivered once."""
    g = gate
    before = [("before%d@example.net" % i) for i in range(5)]
    after = [("after%d@example.net" % i) for i in range(5)]
    for r in before:
        send(g, r, "before")
    poison = send(g, "poison@example.net", "poison", poison=True)
    for r in after:
        send(g, r, "after")
    assert len(g.files("new")) == 11
    g.start("deliverd")
    g.sup = Supervisor(g, "spoold", shim_env(g, "pread", sig)).start()
    assert_quarantined(g, poison)
    log = g.log("spoold")
    assert "spoold died while filing 11 file(s) in its last run (a crash); " \
        "filing 11 file(s) one at a time first" in log, log
    assert "spoold died while filing 1 file(s) in its last run (a crash); " \
        "filing 6 file(s) one at a time first" in log, log
    late = [("late%d@example.net" % i) for i in range(3)]
    for r in late:
        send(g, r, "late")
    delivered_once(mx, before + after + late)
    assert crashes(g) == 2 and g.sup.starts == 3, (crashes(g), g.sup.starts)
    assert g.sup.running()
    assert not mx.received("poison@example.net")
    st = g.spoolctl("status", check=False).stdout
    assert "quarantine 1 file(s)" in st and "(spoolctl quarantine list)" in st, st
    if sig == "SEGV":
        return
    # the operator sees it, fixes the cause (here: no shim), requeues it
    lst = g.spoolctl_json("quarantine", "list")
    assert [(f["queue_id"], f["account"], f["recipients"]) for f in lst] == \
        [(poison, "acc", ["poison@example.net"])], lst
    # why, how many deaths and when: kept beside the file, not only logged
    assert (lst[0]["reason"], lst[0]["count"]) == \
        ("spoold died while filing it (2 times)", 2), lst
    assert abs(time.mktime(time.strptime(lst[0]["quarantined"], "%Y-%m-%dT%H:%M:%SZ"))
               - time.mktime(time.gmtime())) < 3600, lst
    note = os.path.join(g.spool, "quarantine", ".%s.why" % poison)
    assert os.path.exists(note)
    text = g.spoolctl("quarantine", "list").stdout
    assert poison in text and \
        "reason=spoold died while filing it (2 times), count=2" in text, text
    g.sup.stop()
    g.sup = None
    g.start("spoold")
    r = g.spoolctl("quarantine", "requeue", poison)
    assert r.stdout == "%s: requeued (spoold files it again)\n" % poison, r.stdout
    assert not os.path.exists(note)   # the note goes with it
    mx.wait_received(1, rcpt="poison@example.net")
    delivered_once(mx, before + after + late + ["poison@example.net"])
    assert not g.files("quarantine")
    assert "quarantine/ is empty" in g.spoolctl("quarantine", "list").stdout
    r = g.spoolctl("quarantine", "requeue", poison, check=False)
    assert r.returncode == 1 and "not in quarantine/" in r.stderr, r


def test_spoolctl_quarantine_requeue_all_and_usage(gate):
    """requeue --all moves every file back; a name that is not there, or
    a file of that name already in incoming/new, is refused (exit 1)."""
    g = gate
    qdir = os.path.join(g.spool, "quarantine")
    g.spoolctl("status", check=False)   # creates the tree
    for name in ("A1", "A2"):
        with open(os.path.join(qdir, name), "w") as f:
            f.write("junk\n")
    with open(os.path.join(g.spool, "incoming", "new", "A2"), "w") as f:
        f.write("other\n")
    lst = g.spoolctl_json("quarantine", "list")
    assert sorted(f["queue_id"] for f in lst) == ["A1", "A2"]
    assert all(f["account"] is None and f["recipients"] == [] for f in lst), lst
    r = g.spoolctl("quarantine", "requeue", "--all", check=False)
    assert r.returncode == 1, r
    assert "A1: requeued" in r.stdout and "A2: already in incoming/new" in r.stderr, r
    assert g.files("quarantine") == ["A2"]
    with open(os.path.join(g.spool, "incoming", "new", "A2")) as f:
        assert f.read() == "other\n"   # never replaced
    for bad in ("../queue/x", ".hidden", "nothere"):
        r = g.spoolctl("quarantine", "requeue", bad, check=False)
        assert r.returncode == 1 and "not in quarantine/" in r.stderr, (bad, r)
    r = g.spoolctl("quarantine", "requeue", check=False)
    assert r.returncode == 2, r


def test_spoold_poison_arriving_alone(gate, mx):
    """A poison message that arrives while spoold runs is filed alone: one
    death, filed alone again at the restart, a second death, quarantined."""
    g = gate
    g.start("deliverd")
    g.sup = Supervisor(g, "spoold", shim_env(g, "pread")).start()
    wait_for(lambda: "started:" in g.log("spoold"), 15, what="spoold started")
    send(g, "first@example.net", "first")
    mx.wait_received(1)
    poison = send(g, "poison@example.net", "poison", poison=True)
    assert_quarantined(g, poison)
    late = ["late%d@example.net" % i for i in range(3)]
    for r in late:
        send(g, r, "late")
    delivered_once(mx, ["first@example.net"] + late)
    assert crashes(g) == 2 and g.sup.starts == 3, (crashes(g), g.sup.starts)
    assert g.sup.running()


def test_spoold_killed_mid_batch_files_nothing_twice(gate, mx):
    """spoold killed (SIGKILL, not the message's fault) while filing a
    backlog: at its restart the files of the interrupted batch are filed
    one at a time, nothing is quarantined, each is delivered once."""
    g = gate
    g.conf["spoold_batch"] = "50"
    g.write_conf()
    g.start("deliverd")
    rcpts = ["bulk%d@example.net" % i for i in range(300)]
    for r in rcpts:
        send(g, r, "bulk")
    g.start("spoold", wait=False)
    wait_for(lambda: len(g.files("new")) < 250, 30, what="filing under way")
    g.kill("spoold")
    g.start("spoold")
    wait_for(lambda: not g.files("new"), 60, what="incoming/new empty")
    delivered_once(mx, rcpts, timeout=120)
    assert not g.files("quarantine")
    assert "quarantined" not in g.log("spoold")


def test_deliverd_worker_killed_by_a_message(gate, mx):
    """A message that kills the delivery worker sending it (SIGSEGV when the
    worker maps it) is not handed out again and again: after
    DEATHS worker deaths its recipients are deferred with a reply that
    says so, on the retry schedule (1h here); the scheduler keeps running
    and every other message is delivered once."""
    g = gate
    g.start("spoold")
    g.sup = Supervisor(g, "deliverd", shim_env(g, "mmap", "SEGV")).start()
    wait_for(lambda: "started" in g.log("deliverd"), 15, what="deliverd started")
    first = ["first%d@example.net" % i for i in range(3)]
    for r in first:
        send(g, r, "first")
    poison = send(g, "poison@example.net", "poison", poison=True)
    late = ["late%d@example.net" % i for i in range(3)]
    for r in late:
        send(g, r, "late")
    ev = g.wait_events(lambda e: e["queue_id"] == poison and e["event"] == "deferred",
                       timeout=60, what="the poison message deferred")[0]
    assert "delivery worker died while sending it (3 times)" in ev["msg"], ev
    delivered_once(mx, first + late)
    time.sleep(3)   # no further deaths: it is not handed out again
    assert crashes(g) == 3, crashes(g)
    assert "%s: delivery worker died while sending it (3 times)" % poison in \
        g.log("deliverd")
    rc = json.loads(g.spoolctl("show", poison, "--json").stdout)["recipients"][0]
    assert rc["state"] == "deferred", rc
    assert g.sup.running() and g.sup.starts == 1
    assert not mx.received("poison@example.net")


def test_deliverd_killed_by_a_message(gate, mx):
    """A message whose worker takes the whole deliverd with it (the
    scheduler killed, as the OOM killer or a scheduler crash would) under
    a supervisor that restarts deliverd: the deaths are counted across
    the restarts (db/deliverd.poison) and at the third its recipients are
    deferred, instead of a restart loop for ever; what follows is
    delivered once."""
    g = gate
    g.start("spoold")
    env = dict(shim_env(g, "mmap", "SEGV"), SMTPGATE_CRASH_PARENT="KILL")
    g.sup = Supervisor(g, "deliverd", env).start()
    wait_for(lambda: "started" in g.log("deliverd"), 15, what="deliverd started")
    first = ["first%d@example.net" % i for i in range(3)]
    for r in first:
        send(g, r, "first")
    delivered_once(mx, first)   # nothing else in flight when it dies
    poison = send(g, "poison@example.net", "poison", poison=True)
    ev = g.wait_events(lambda e: e["queue_id"] == poison and e["event"] == "deferred",
                       timeout=60, what="the poison message deferred")[0]
    assert "deliverd died while sending it (3 times)" in ev["msg"], ev
    log = g.log("deliverd")
    for n in (1, 2, 3):
        assert "%s: deliverd died while sending it (%d times so far)" % (poison, n) \
            in log, log
    late = ["late%d@example.net" % i for i in range(3)]
    for r in late:
        send(g, r, "late")
    delivered_once(mx, first + late)
    time.sleep(2)   # not handed out again: no fourth death
    assert crashes(g) == 3 and g.sup.starts == 4, (crashes(g), g.sup.starts)
    assert g.sup.running()
    rc = json.loads(g.spoolctl("show", poison, "--json").stdout)["recipients"][0]
    assert rc["state"] == "deferred", rc
    assert not mx.received("poison@example.net")
    # the record: a header, 256 counts, one record per worker; the
    # poison message's count left one short of 3 after the deferral
    with open(os.path.join(g.spool, "db", "deliverd.poison"), "rb") as f:
        rec = f.read()
    assert len(rec) == 32 * (1 + 256 + int(g.conf["deliverd_workers"])), len(rec)
    at = rec.index(poison.encode())
    assert at % 32 == 0 and rec[at + 21] == 2, rec[at:at + 32]
    # a clean restart blames nothing: no death counted at the next start
    g.sup.stop()
    g.sup = None
    g.start("deliverd")
    time.sleep(1)
    assert g.log("deliverd").count("times so far)") == 3
    # delivered at last (the cause gone): its count goes with it
    g.spoolctl("retry", poison)
    mx.wait_received(1, rcpt="poison@example.net")
    def counted():
        with open(os.path.join(g.spool, "db", "deliverd.poison"), "rb") as f:
            return poison.encode() in f.read()
    wait_for(lambda: not counted(), 10, what="the count cleared")


def record(g):
    return os.path.join(g.spool, "db", "spoold.filing")


def test_record_never_files_a_message_twice(gate, mx):
    """The record names a file whose batch was committed before the death
    (the file still in incoming/new, its message filed): at the restart
    it is only moved, never quarantined nor filed again, even with the
    count of a second death; a damaged line ends the record."""
    g = gate
    g.start("deliverd", "spoold")
    mx.rules["once@example.net"] = ["451 4.2.0 try later"]   # stays queued (1h)
    q = send(g, "once@example.net", "once")
    g.wait_events(lambda e: e["queue_id"] == q and e["event"] == "deferred")
    issues = g.spoolctl_json("issues")
    g.stop("spoold")
    # as if spoold had died between its commit and the rename, the second
    # time with this file alone (deaths 1 so far: this start makes 2)
    with open(os.path.join(g.spool, "queue", q), "rb") as f:
        data = f.read()
    new = os.path.join(g.spool, "incoming", "new", q)
    with open(new, "wb") as f:
        f.write(data)
    if smtpgate.IS_ROOT:
        import pwd
        pw = pwd.getpwnam("smtpgate-smtpd")
        os.chown(new, pw.pw_uid, pw.pw_gid)
    with open(record(g), "r+") as f:   # spoold's own file, kept
        f.write("spoold-filing 1 C\nF 1 0 %s\nP 0 0 ../../etc/passwd\n"
                "F 1 0 NOSUCHQID000000000000\n.\n" % q)
    g.start("spoold")
    wait_for(lambda: "%s: already filed, moving" % q in g.log("spoold"), 20,
             what="already filed")
    log = g.log("spoold")
    assert "spoold died while filing 1 file(s) in its last run (a crash)" in log, log
    assert ": quarantined, reason" not in log and not g.files("quarantine")
    assert not g.files("new")
    assert g.spoolctl_json("issues") == issues
    assert q in g.files("queue")
    time.sleep(2)   # not due again: no second attempt, no second filing
    assert mx.attempts["once@example.net"] == 1
    assert len([e for e in g.events() if e["queue_id"] == q]) == 1


def test_damaged_record_is_ignored(gate, mx):
    """Garbage in the record (a power loss, a hand edit) is not a reason
    to quarantine or to stop: spoold starts and files as usual."""
    g = gate
    g.start("deliverd", "spoold")
    g.stop("spoold")
    with open(record(g), "r+b") as f:
        f.write(os.urandom(4096))
    g.start("spoold")
    send(g, "after@example.net", "after")
    delivered_once(mx, ["after@example.net"])
    assert "died while filing" not in g.log("spoold")
    assert not g.files("quarantine")


def test_kills_count_less_than_crashes(gate, mx):
    """A death that is not a crash (SIGKILL, the OOM killer: the record
    carries no crash mark) counts too, but a file is quarantined only at
    its third death of any kind, so two kills while an innocent file is
    filed alone do not set it aside."""
    g = gate
    g.start("deliverd", "spoold")
    g.stop("spoold")
    twice = send(g, "twice@example.net", "killed twice before")
    thrice = send(g, "thrice@example.net", "killed thrice before")
    # the record of a run killed (no mark) while filing `twice` alone
    # after one kill, with `thrice` waiting after two
    with open(record(g), "r+") as f:
        f.write("spoold-filing 1 -\nF 0 1 %s\nP 0 2 %s\n.\n" % (twice, thrice))
    g.start("spoold")
    line = "%s: quarantined, reason=spoold died while filing it (2 times)" % thrice
    wait_for(lambda: "filed the last run's 2 file(s) one at a time" in g.log("spoold"),
             20, what="the record's files filed")
    log = g.log("spoold")
    assert "(killed); filing 2 file(s)" in log, log
    assert ": quarantined, reason" not in log, log
    delivered_once(mx, ["twice@example.net", "thrice@example.net"])
    g.stop("spoold")
    third = send(g, "third@example.net", "killed thrice")
    with open(record(g), "r+") as f:
        f.write("spoold-filing 1 -\nF 0 2 %s\n.\n" % third)
    g.start("spoold")
    line = "%s: quarantined, reason=spoold died while filing it (3 times)" % third
    wait_for(lambda: line in g.log("spoold"), 20, what=line)
    assert third in g.files("quarantine")
