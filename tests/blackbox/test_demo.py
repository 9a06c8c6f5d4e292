"""The README's first command, tried as a new user would: contrib/demo in a
clean clone reaches "ready", accepts a message from swaks with the demo
credentials, delivers it to the sandbox, and stops cleanly on Ctrl-C; and
README's guided tour, contrib/demo --world, step by step as printed there
(the peer's and the callback receiver's lines, the deferral retried, the
bounce in spoolctl bounces and the stat.uni query, both DKIM signatures
verified offline, then why mail failed: categories, the suppression list,
the queue's shape with a slowed destination, a paused domain; health and
metrics, signed callbacks replayed, tracking, the simulator and the TLS
report). Both run in one clean clone: the second reuses the build."""
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from smtpgate import SRCDIR, free_port, read_events, wait_for

BUILD_FAILED = ("the build failed", "configure failed", "autoreconf failed",
                "installing the Debian packages failed")


class Output:
    """Collects a process's output lines in a thread (reads never block the test)."""

    def __init__(self, stream):
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            with self.lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def text(self):
        with self.lock:
            return "\n".join(self.lines)


def clean_env(**extra):
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SMTPGATE_BUILDDIR",
              "SMTPGATE_SRCDIR"):
        env.pop(k, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def clone():
    """One clean clone for the module: the first contrib/demo builds it, the
    next ones reuse that build (make finds nothing to do)."""
    if shutil.which("git") is None or shutil.which("swaks") is None:
        pytest.skip("git or swaks missing (contrib/install-deps installs them)")
    # a release tarball (make distcheck) has nothing to clone
    if not os.path.exists(os.path.join(SRCDIR, ".git")):
        pytest.skip("%s is not a git checkout" % SRCDIR)
    tmp = tempfile.mkdtemp(prefix="sgdemo-")
    os.chmod(tmp, 0o755)        # as root the daemons (user smtpgate) must reach demo/
    try:
        path = os.path.join(tmp, "smtpgate")
        subprocess.run(["git", "clone", "-q", SRCDIR, path], check=True, timeout=300,
                       capture_output=True)
        yield path
    finally:
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


class Demo:
    """contrib/demo ARGS running in the clone until ready; stop() is Ctrl-C."""

    def __init__(self, clone, args=(), **env):
        self.clone = clone
        self.proc = subprocess.Popen(
            [os.path.join(clone, "contrib/demo")] + list(args), cwd=clone,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, env=clean_env(JOBS="2", **env))
        self.out = Output(self.proc.stdout)

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                return "exited"
            t = self.out.text()
            return "smtpgate demo ready" in t and "Ctrl-C stops" in t
        state = wait_for(ready, timeout=1800, interval=0.5, what="smtpgate demo ready")
        if state == "exited":
            self.out.t.join(10)
            text = self.out.text()
            if any(s in text for s in BUILD_FAILED):
                pytest.skip("the clone cannot build:\n" + text[-3000:])
            pytest.fail("contrib/demo exited with %s before ready:\n%s" % (
                self.proc.returncode, text[-5000:]))
        return self.out.text()

    def path(self, p):
        return p if os.path.isabs(p) else os.path.join(self.clone, p)

    def line(self, pattern, what):
        """Waits (bounded) for an output line matching pattern; its match."""
        rx = re.compile(pattern)

        def found():
            with self.out.lock:
                for ln in self.out.lines:
                    m = rx.search(ln)
                    if m:
                        return m
            return None
        return wait_for(found, timeout=60, interval=0.2, what=what + "\n" + self.out.text()[-3000:])

    def stop(self):
        """Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        rc = self.proc.wait(timeout=90)
        self.out.t.join(10)
        assert rc == 0, self.out.text()[-3000:]
        assert "demo: stopped" in self.out.text()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)


def swaks(port, login, frm, to, *extra):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % port, "--auth-user", login,
         "--auth-password", "demo", "-tls", "--from", frm, "--to", to,
         "--header", "Subject: demo test", "--header", "MIME-Version: 1.0",
         "--header", "Content-Type: text/plain; charset=utf-8"] + list(extra) +
        ["--body", "It works."], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]+)", r.stdout)
    assert m, r.stdout
    return m.group(1)


def test_demo_from_a_clean_clone(clone):
    port, tlsport, trackport = free_port(), free_port(), free_port()
    demo = Demo(clone, SMTPGATE_DEMO_PORT=str(port), SMTPGATE_DEMO_TLS_PORT=str(tlsport),
                SMTPGATE_DEMO_TRACK_PORT=str(trackport),
                SMTPGATE_DEMO_METRICS_PORT=str(free_port()))
    try:
        banner = demo.wait_ready()
        # trackd runs too: an unknown path is a plain 404
        assert "http://127.0.0.1:%d/" % trackport in banner
        import urllib.error
        import urllib.request
        with pytest.raises(urllib.error.HTTPError) as e404:
            urllib.request.urlopen("http://127.0.0.1:%d/o/nothing" % trackport, timeout=10)
        assert e404.value.code == 404
        # the banner shows how to send and how to look, with the demo credentials
        assert ("swaks --server 127.0.0.1:%d --auth-user demo.demo@smtpgate "
                "--auth-password demo -tls" % port) in banner
        assert "queue" in banner and "issues" in banner and "events.jsonl" in banner
        # and the DKIM records of both keys, also written to demo/dkim-*.txt
        for alg in ("rsa", "ed25519"):
            with open(os.path.join(clone, "demo", "dkim-%s.txt" % alg)) as f:
                rec = f.read().strip()
            assert rec.startswith("demo-%s._domainkey.demo.example. IN TXT "
                                  "\"v=DKIM1; k=%s; p=" % (alg, alg)), rec
            assert rec in banner
        event_log = demo.path(re.search(r"tail -f (\S+events\.jsonl)", banner).group(1))

        msgid = "<demo-test-%d@example.com>" % time.time_ns()
        swaks(port, "demo.demo@smtpgate", "demo@example.com", "someone@example.net",
              "--header", "Message-Id: %s" % msgid)

        def delivered():
            evs = read_events(event_log)
            return [e for e in evs if e.get("to") == "someone@example.net" and
                    e.get("event") == "delivered"]
        ev = wait_for(delivered, timeout=60, what="sandbox delivered event in " + event_log)[0]
        assert ev["sandbox"] is True and ev["account"] == "demo.demo@smtpgate"
        demo.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        demo.kill()


def test_demo_world_tour(clone):
    """README's "A guided tour": every step, as printed there."""
    port, tlsport, wport, cbport = free_port(), free_port(), free_port(), free_port()
    ports = {2525: port, 2526: wport, 8025: cbport, 2580: free_port(), 9465: free_port()}
    # a long first retry: the tour's `spoolctl retry` is what retries
    demo = Demo(clone, ["--world"], SMTPGATE_DEMO_PORT=str(port),
                SMTPGATE_DEMO_TLS_PORT=str(tlsport), SMTPGATE_DEMO_WORLD_PORT=str(wport),
                SMTPGATE_DEMO_TRACK_PORT=str(ports[2580]),
                SMTPGATE_DEMO_METRICS_PORT=str(ports[9465]),
                SMTPGATE_DEMO_CALLBACK_PORT=str(cbport),
                SMTPGATE_DEMO_RETRY_SCHEDULE="30m 1h")
    try:
        banner = demo.wait_ready()
        assert "world: SMTP peer on 127.0.0.1:%d, callback receiver on " \
            "http://127.0.0.1:%d/" % (wport, cbport) in banner
        # the --world part of the banner comes just after "ready" (a second write)
        demo.line(r"^--world: account world\.demo@smtpgate, password demo, is live",
                  "the --world banner")
        m = re.search(r"^  (\S+spoolctl) -c (\S+) queue$", banner, re.M)
        ctl = [demo.path(m.group(1)), "-c", demo.path(m.group(2))]
        # the counters before the tour (the first test's sandbox message)
        more = TourMore(demo, ctl, ports)
        base = more.metrics()

        def spoolctl(*args, stdin=None):
            r = subprocess.run(ctl + list(args), stdin=stdin, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout

        w = "world.demo@smtpgate"
        q_ok = swaks(port, w, "tour@demo.example", "ok1@world.example")
        q_defer = swaks(port, w, "tour@demo.example", "defer1@world.example")
        q_bounce = swaks(port, w, "tour@demo.example", "bounce1@world.example")

        # the peer's lines and the receiver's lines
        saved = demo.line(r"^world: smtp from=<tour@demo\.example> to=<ok1@world\.example>: "
                          r"250 2\.0\.0 saved (demo/world/\d+\.eml) \(2 DKIM-Signatures\)$", "ok1 saved")
        demo.line(r"^world: smtp from=<tour@demo\.example> to=<defer1@world\.example>: "
                  r"451 4\.2\.0 ", "defer1 451")
        demo.line(r"^world: smtp from=<tour@demo\.example> to=<bounce1@world\.example>: "
                  r"550 5\.1\.1 ", "bounce1 550")
        demo.line(r"^world: callback: delivered ok1@world\.example %s 250 2\.0\.0 " % q_ok,
                  "delivered callback")
        demo.line(r"^world: callback: deferred \[other\] defer1@world\.example %s 451 4\.2\.0 "
                  % q_defer, "deferred callback")
        demo.line(r"^world: callback: bounced/remote \[bad-mailbox\] bounce1@world\.example %s "
                  r"550 5\.1\.1 " % q_bounce, "bounced callback")

        # the deferral in the queue and in show; retried by hand, delivered
        queue = spoolctl("queue")
        assert re.search(r"^%s +\d+ \S+ \S+ deferred tour@demo\.example$" % q_defer,
                         queue, re.M), queue
        assert "defer1@world.example (deferred, 1 attempt: 451 4.2.0" in queue
        show = spoolctl("show", q_defer, "--body")
        assert "  dkim: signed\n" in show and "\nbody:\n" in show, show
        # --body is the message as it goes out: the stored signatures first,
        # and they verify against the printed records
        raw = subprocess.run(ctl + ["show", q_defer, "--body"], capture_output=True,
                             timeout=60).stdout        # bytes: CRLF kept
        body = raw.split(b"\nbody:\n", 1)[1]
        assert body.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;"), body[:200]
        r = subprocess.run(
            [os.path.join(clone, "contrib/dkim-verify-offline"),
             os.path.join(clone, "demo/dkim-rsa.txt"),
             os.path.join(clone, "demo/dkim-ed25519.txt")],
            input=body, capture_output=True, timeout=60)
        assert r.returncode == 0 and r.stdout.count(b": pass\n") == 2, r.stdout + r.stderr
        assert spoolctl("retry", q_defer) == "%s: 1 recipient due now\n" % q_defer
        demo.line(r"^world: callback: delivered defer1@world\.example %s 250 2\.0\.0 " % q_defer,
                  "defer1 delivered after retry")

        # the bounce in `spoolctl bounces` and in the seed's stat.uni query
        bounces = spoolctl("bounces")
        assert re.search(r"  bounce1@world\.example  550 5\.1\.1 .*\(remote, %s\)  bad-mailbox$"
                         % q_bounce, bounces, re.M), bounces
        with open(os.path.join(clone, "contrib", "demo-query.json")) as f:
            rows = json.loads(spoolctl("query", stdin=f))["list"]
        assert [r[0] for r in rows] == ["bounce1@world.example"], rows
        assert rows[0][2].startswith("550 5.1.1 <bounce1@world.example>"), rows

        # both signatures of the received message verify against the records
        with open(demo.path(saved.group(1)), "rb") as msg:
            r = subprocess.run(
                [os.path.join(clone, "contrib/dkim-verify-offline"),
                 os.path.join(clone, "demo/dkim-rsa.txt"),
                 os.path.join(clone, "demo/dkim-ed25519.txt")],
                stdin=msg, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout == (
            "signature 1: d=demo.example s=demo-ed25519 a=ed25519-sha256: pass\n"
            "signature 2: d=demo.example s=demo-rsa a=rsa-sha256: pass\n"), r.stdout
        # the Feedback-ID deliverd added (feedback_id_sender), in both h= tags
        with open(demo.path(saved.group(1)), "rb") as msg:
            head = msg.read().split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b"").replace(
                b"\r\n ", b"")
        assert re.search(rb"^Feedback-ID: \d+:world\.demo_smtpgate:smtpgate-demo\r?$", head,
                         re.M), head
        tags = re.findall(rb"^DKIM-Signature:.*?\bh=([^;]*)", head, re.M)
        assert len(tags) == 2 and all(b"feedback-id" in t.lower().replace(b" ", b"")
                                      for t in tags), tags

        tour = Tour(demo, ctl, port)
        q_full, q_busy = tour.why_failed(q_bounce)
        q_again = tour.suppression(q_bounce)
        tour.shape_and_pause(q_full, q_busy)
        demo.line(r"^world: callback: bounced/admin \[other\] full1@world\.example %s 554 5\.0\.0 "
                  r"deleted by the operator$" % q_full, "full1's admin bounce")
        more.health_and_metrics(base)
        q_spam = re.search(r"^world: callback: bounced/remote \[spam\] spam1@world\.example "
                           r"(\S+) ", demo.out.text(), re.M).group(1)
        more.signed_replay([q_bounce, q_spam, q_again, q_full])
        more.tracking()
        more.simulator_and_tls_report()
        more.processes()
        demo.stop()
        for p in (port, wport, cbport):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
    finally:
        demo.kill()


class Tour:
    """The tour's later steps (README, steps 7 to 10), on a running --world demo."""

    W = "world.demo@smtpgate"

    def __init__(self, demo, ctl, port):
        self.demo, self.ctl, self.port = demo, ctl, port

    def spoolctl(self, *args, rc=0):
        r = subprocess.run(self.ctl + list(args), capture_output=True, text=True, timeout=60)
        assert r.returncode == rc, (args, r.returncode, r.stdout + r.stderr)
        return r.stdout

    def send(self, local):
        return swaks(self.port, self.W, "tour@demo.example", local + "@world.example")

    def peer_lines(self, local):
        return re.findall(r"^world: smtp from=<tour@demo\.example> to=<%s@world\.example>: .*$"
                          % local, self.demo.out.text(), re.M)

    def why_failed(self, q_bounce):
        """7: a spam rejection bounces (spam), a full mailbox and a 421 defer
        (quota, policy); the category in the callbacks and in bounces."""
        q_spam, q_full, q_busy = self.send("spam1"), self.send("full1"), self.send("busy1")
        d = self.demo
        d.line(r"^world: smtp from=<tour@demo\.example> to=<spam1@world\.example>: "
               r"550 5\.7\.1 Message rejected as spam$", "spam1 rejected at end of data")
        d.line(r"^world: callback: bounced/remote \[spam\] spam1@world\.example %s "
               r"550 5\.7\.1 Message rejected as spam$" % q_spam, "spam1 callback")
        d.line(r"^world: callback: deferred \[quota\] full1@world\.example %s "
               r"452 4\.2\.2 <full1@world\.example>: mailbox full$" % q_full, "full1 callback")
        d.line(r"^world: callback: deferred \[policy\] busy1@world\.example %s 421 4\.7\.0 "
               % q_busy, "busy1 callback")
        d.line(r"deliverd\[\d+\]: destination=127\.0\.0\.1:\d+, state=slowed, for=300s, "
               r"connections=1, rate=60/m, reply=421 4\.7\.0 ", "destination slowed")
        bounces = self.spoolctl("bounces")
        assert re.search(r"  spam1@world\.example  550 5\.7\.1 Message rejected as spam  "
                         r"\(remote, %s\)  spam$" % q_spam, bounces, re.M), bounces
        assert bounces.endswith("by category: bad-mailbox=1 spam=1\n"), bounces
        only = self.spoolctl("bounces", "--category", "bad-mailbox")
        assert "bounce1@world.example" in only and "spam1" not in only, only
        assert re.search(r"\(remote, %s\)  bad-mailbox\nby category: bad-mailbox=1\n$"
                         % q_bounce, only), only
        return q_full, q_busy

    def suppression(self, q_bounce):
        """8: bounce1 (bad-mailbox) is suppressed, spam1 is not; mail to
        bounce1 is refused at filing; suppression del."""
        lst = self.spoolctl("suppression", "list", "--account", self.W)
        assert re.fullmatch(r"world\.demo@smtpgate bounce1@world\.example \S+Z bad-mailbox %s\n"
                            % q_bounce, lst), lst
        show = self.spoolctl("suppression", "show", "spam1@world.example", rc=1)
        assert show == "", show
        q_again = self.send("bounce1")
        self.demo.line(r"^world: callback: bounced/policy \[policy\] bounce1@world\.example %s "
                       r"550 5\.0\.0 Email has permanent delivery errors$" % q_again,
                       "bounce1 refused at filing")
        last = self.spoolctl("bounces", "--last", "1")
        assert re.search(r"  bounce1@world\.example  550 5\.0\.0 Email has permanent delivery "
                         r"errors  \(policy, %s\)  policy$" % q_again, last, re.M), last
        # the peer saw bounce1 once: the second message never left
        assert len(self.peer_lines("bounce1")) == 1, self.peer_lines("bounce1")
        out = self.spoolctl("suppression", "del", "bounce1@world.example", "--account", self.W)
        assert out == "suppression: deleted bounce1@world.example from 1 account\n", out
        assert "bounce1" not in self.spoolctl("suppression", "list", "--account", self.W)
        self.spoolctl("suppression", "show", "bounce1@world.example", rc=1)
        return q_again

    def shape_and_pause(self, q_full, q_busy):
        """9, 10: the queue's shape with the slowed destination; a paused
        domain's mail waits without attempts until resume."""
        summary = self.spoolctl("queue", "--summary")
        assert re.search(r"^world\.example +2 +2 +0 +0 +0 +0 +0 +0  slowed until \S+ \S+ "
                         r"conns=1 rate=60/m dest=127\.0\.0\.1:\d+$", summary, re.M), summary
        out = self.spoolctl("pause", "--domain", "world.example")
        assert out.startswith("world.example: paused; its mail waits without attempts"), out
        assert re.search(r"^world\.example +\* +\d{4}-", self.spoolctl("pause"), re.M)
        q_ok2 = self.send("ok2")
        self.demo.line(r"deliverd\[\d+\]: \d+ recipients of paused destinations set aside",
                       "ok2 set aside")
        queue = self.spoolctl("queue")
        assert re.search(r"^%s +\d+ \S+ \S+ queued +tour@demo\.example\n +ok2@world\.example "
                         r"\(queued\)$" % q_ok2, queue, re.M), queue
        assert self.peer_lines("ok2") == [], self.peer_lines("ok2")
        assert self.spoolctl("resume", "--domain", "world.example") == \
            "world.example: resumed; 3 recipients due now\n"
        for local, qid in (("ok2", q_ok2), ("busy1", q_busy)):
            self.demo.line(r"^world: callback: delivered %s@world\.example %s 250 2\.0\.0 "
                           % (local, qid), local + " delivered after resume")
        # full1 was tried again and is still over quota
        wait_for(lambda: len(self.peer_lines("full1")) == 2, timeout=60,
                 what="full1's second attempt")
        self.spoolctl("delete", q_full)


# README's steps 11 to 14, as printed there (ports are the test's own)
STEP11_COUNTERS = ("curl -s 127.0.0.1:9465/metrics | grep -E "
                   "'^smtpgate_(smtpd_messages_total|deliverd_delivered_total)'")
STEP11_BOUNCED = "curl -s 127.0.0.1:9465/metrics | grep 'outcome=\"bounced\"' | grep -v ' 0$'"
STEP12_SECRET = "openssl rand -hex 32 > demo/callback.secret"
STEP13_HTML = """swaks --server 127.0.0.1:2525 --auth-user world.demo@smtpgate --auth-password demo -tls \\
    --from tour@demo.example --to ok3@world.example --header "Subject: sale" \\
    --header "MIME-Version: 1.0" --header "Content-Type: text/html" --header "X-Campaign-Id: tour" \\
    --body '<html><body><p>The <a href="https://demo.example/sale">sale</a> is on.</p></body></html>' | grep 'queued as'"""
STEP13_LINK = """link() { grep -o "https://track.demo.example/$1/[A-Za-z0-9_-]*" demo/world/5.eml |
    sed 's|https://track.demo.example|http://127.0.0.1:2580|'; }
"""
STEP14_SIMULATOR = """for to in delivered bounce; do
    swaks --server 127.0.0.1:2525 --auth-user world.demo@smtpgate --auth-password demo -tls \\
      --from tour@demo.example --to $to@simulator.smtpgate.invalid --header "Subject: tour" \\
      --header "MIME-Version: 1.0" --header "Content-Type: text/plain" \\
      --header "X-Campaign-Id: tour" --body "hi" | grep 'queued as'
  done"""
STEP14_HOPS = """spoolctl events --account world.demo@smtpgate --since $(date -u +%F) --type delivered --json |
    grep -e ok3@ -e delivered@ | grep -o '"hop".*'"""
STEP15_PS = ("ps -o user:16=,comm= --ppid "
             "\"$(pgrep -o -f 'smtpd -c .*/demo/smtpgate.conf')\"")
STEP15_PS_DELIVERD = ("ps -o user:16=,comm= --ppid "
                      "\"$(pgrep -o -f 'deliverd -c .*/demo/smtpgate.conf')\"")
QUEUED = r"^<~  250 2\.0\.0 Ok: queued as ([0-9A-F]+)$"


class TourMore:
    """The tour's steps 11 to 14, on a running --world demo after step 10."""

    W = "world.demo@smtpgate"

    def __init__(self, demo, ctl, ports):
        self.demo, self.ctl, self.ports = demo, ctl, ports

    def sh(self, cmd):
        """cmd as README prints it, in the clone, with spoolctl as README's
        alias and README's default ports replaced by the test's."""
        for default, real in self.ports.items():
            cmd = cmd.replace("127.0.0.1:%d" % default, "127.0.0.1:%d" % real)
        script = "set -o pipefail\nspoolctl() { %s \"$@\"; }\n%s" % (
            " ".join(shlex.quote(c) for c in self.ctl), cmd)
        r = subprocess.run(["bash", "-c", script], cwd=self.demo.clone, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, (cmd, r.returncode, r.stdout + r.stderr)
        return r.stdout

    def metrics(self):
        """{series: value} of the metrics endpoint (waits, bounded, for the child)."""
        def scrape():
            r = subprocess.run(["curl", "-sf", "127.0.0.1:%d/metrics" % self.ports[9465]],
                               capture_output=True, text=True, timeout=30)
            return r.stdout if r.returncode == 0 else None
        text = wait_for(scrape, timeout=60, what="spoold's metrics child")
        return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
                for ln in text.splitlines() if ln and not ln.startswith("#")}

    @staticmethod
    def series(out):
        return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in out.splitlines()}

    def health_and_metrics(self, base):
        """11: spoolctl status; the counters the tour moved."""
        status = self.sh("spoolctl status")
        for d in ("smtpd", "spoold", "deliverd"):
            assert re.search(r"^%s +up +pid \d+, uptime \d+s$" % d, status, re.M), status
        assert re.search(r"^queue +0 message\(s\), 0 recipient\(s\) pending$", status, re.M)
        assert re.search(r"^callbacks +\d+ event\(s\) waiting$", status, re.M), status
        assert re.search(r"^lmdb +\d+ of \d+ bytes mapped in use \(lmdb_map_max \d+\)$",
                         status, re.M), status
        assert re.search(r"^disk +\d+ bytes free \(min_free_space \d+\)$", status, re.M)
        assert re.search(r"^quarantine 0 file\(s\)$", status, re.M), status
        want = {'smtpgate_smtpd_messages_total{result="accepted"}': 8,
                'smtpgate_smtpd_messages_total{result="refused"}': 0,
                "smtpgate_deliverd_delivered_total": 4}
        got = self.series(self.sh(STEP11_COUNTERS))
        assert {k: got[k] - base.get(k, 0) for k in got} == want, (got, base)
        want = {'smtpgate_deliverd_outcomes_total{outcome="bounced",category="bad-mailbox"}': 1,
                'smtpgate_deliverd_outcomes_total{outcome="bounced",category="spam"}': 1,
                'smtpgate_deliverd_destination_outcomes_total{destination="world.example",'
                'outcome="bounced"}': 2}
        got = self.series(self.sh(STEP11_BOUNCED))
        assert {k: got[k] - base.get(k, 0) for k in got} == want, (got, base)

    def callback_lines(self, rx):
        return re.findall(rx, self.demo.out.text(), re.M)

    def signed_replay(self, qids):
        """12: a callback secret; today's bounces listed and replayed, signed."""
        q_bounce, q_spam, q_again, q_full = qids
        self.sh(STEP12_SECRET)
        with open(self.demo.path("demo/callback.secret"), "rb") as f:
            secret = f.read().rstrip(b"\n")
        out = self.sh("spoolctl account set world.demo@smtpgate "
                      "--callback-secret-file demo/callback.secret")
        assert re.fullmatch(r"account world\.demo@smtpgate updated: password unchanged, .*"
                            r"track none, callback secrets 1 \(%s\)\n"
                            % hashlib.sha256(secret).hexdigest()[:8], out), out
        out = self.sh("spoolctl events --account world.demo@smtpgate --since $(date -u +%F) "
                      "--type bounced")
        rows = [(q_bounce, r"550 5\.1\.1 <bounce1@world\.example>: no such user", "bounce1"),
                (q_spam, r"550 5\.7\.1 Message rejected as spam", "spam1"),
                (q_again, r"550 5\.0\.0 Email has permanent delivery errors", "bounce1"),
                (q_full, r"554 5\.0\.0 deleted by the operator", "full1")]
        rx = "".join(r"\S+Z  \S+  bounced   %s@world\.example  %s  %s\n" % (to, q, msg)
                     for q, msg, to in rows)
        assert re.fullmatch(rx, out), out
        out = self.sh("spoolctl callbacks replay --account world.demo@smtpgate "
                      "--since $(date -u +%F) --type bounced")
        assert out == "queued 4 event(s) of world.demo@smtpgate for " \
            "http://127.0.0.1:%d/smtpgate-events\n" % self.ports[8025], out
        self.demo.line(r"^world: callback: signature t=\d+ valid, signed with "
                       r"demo/callback\.secret$", "a signed POST")
        for q, msg, to in rows:
            wait_for(lambda: len(self.callback_lines(
                r"^world: callback: bounced/\S+ \[\S+\] %s@world\.example %s %s$"
                % (to, q, msg))) == 2, timeout=60, what="%s's bounce replayed" % q)
        assert "INVALID" not in self.demo.out.text()

        def status():
            out = self.sh("spoolctl callbacks status")
            return out if "backlog 0," in out else None
        out = wait_for(status, timeout=60, what="callbacks status backlog 0")
        assert re.fullmatch(r"world\.demo@smtpgate  http://127\.0\.0\.1:%d/smtpgate-events\n"
                            r"  backlog 0, oldest pending -, dropped 0\n"
                            r"  last success \S+Z, last error never\n" % self.ports[8025],
                            out), out

    def tracking(self):
        """13: tracking on; an HTML message's link clicked, its pixel opened,
        one-click unsubscribe; the events; the address stop-listed."""
        out = self.sh("spoolctl account set world.demo@smtpgate --track "
                      "opens,clicks,unsubscribe --track-host track.demo.example")
        assert "track opens,clicks,unsubscribe (host track.demo.example), callback " \
            "secrets 1 (" in out, out
        qid = re.fullmatch(QUEUED + "\n", self.sh(STEP13_HTML)).group(1)
        self.demo.line(r"^world: smtp from=<tour@demo\.example> to=<ok3@world\.example>: "
                       r"250 2\.0\.0 saved demo/world/5\.eml \(2 DKIM-Signatures\)$", "ok3 saved")
        self.demo.line(r"^world: callback: delivered ok3@world\.example %s " % qid,
                       "ok3 delivered")
        urls = self.sh("grep -o 'https://track[^\"> ]*' demo/world/5.eml")
        assert re.fullmatch(r"https://track\.demo\.example/u/[A-Za-z0-9_-]+\n"
                            r"https://track\.demo\.example/c/[A-Za-z0-9_-]+\n"
                            r"https://track\.demo\.example/o/[A-Za-z0-9_-]+\n", urls), urls
        out = self.sh(STEP13_LINK + "curl -s -o /dev/null -w '%{http_code} %{redirect_url}\\n' "
                      "\"$(link c)\"")
        assert out == "302 https://demo.example/sale\n", out
        out = self.sh(STEP13_LINK + "curl -s -o /dev/null -w '%{http_code} %{content_type}\\n' "
                      "\"$(link o)\"")
        assert out == "200 image/gif\n", out
        out = self.sh(STEP13_LINK + "curl -s -o /dev/null -w '%{http_code}\\n' "
                      "-d List-Unsubscribe=One-Click \"$(link u)\"")
        assert out == "200\n", out
        for ev, rest in (("unsubscribed", r"\(curl/[0-9.]+\)"),
                         ("clicked", r"https://demo\.example/sale \(curl/[0-9.]+, machine\)"),
                         ("opened", r"\(curl/[0-9.]+, machine\)")):
            self.demo.line(r"^world: callback: %s ok3@world\.example %s %s$" % (ev, qid, rest),
                           ev + " callback")
        # ok3 is on the stop list, with why (README step 13)
        out = self.sh("spoolctl stoplist show world.demo@smtpgate ok3@world.example")
        assert re.fullmatch(r"account:  world\.demo@smtpgate\naddress:  ok3@world\.example\n"
                            r"reason:   unsubscribed\ndate:     \d{4}-\d\d-\d\dT[\d:]{8}Z\n"
                            r"queue_id: %s\nnote:     one-click or page\n" % qid, out), out
        # the next message is bounced by spoold
        again = swaks(self.ports[2525], self.W, "tour@demo.example", "ok3@world.example")
        self.demo.line(r"^world: callback: bounced/policy \[policy\] ok3@world\.example %s "
                       r"550 5\.0\.0 Email is in the account stoplist$" % again, "ok3 stop-listed")

    def processes(self):
        """15: smtpd's children: the key process, the lookup process and the
        demo's two workers, under the users README names when run as root."""
        rows = [ln.split() for ln in self.sh(STEP15_PS).splitlines()]
        comms = sorted(c for _, c in rows)
        assert comms == ["smtpd", "smtpd", "smtpd-key", "smtpd-lka"], rows
        if os.geteuid() == 0:
            users = {c: u for u, c in rows}
            assert users == {"smtpd-key": "smtpgate-smtpd", "smtpd-lka": "smtpgate",
                             "smtpd": "smtpgate-smtpd"}, rows
        # deliverd's: the DKIM key process, two workers and the callback sender
        rows = [ln.split() for ln in self.sh(STEP15_PS_DELIVERD).splitlines()]
        assert sorted(c for _, c in rows) == ["deliverd"] * 3 + ["deliverd-key"], rows
        if os.geteuid() == 0:
            assert {u for u, _ in rows} == {"smtpgate"}, rows

    def simulator_and_tls_report(self):
        """14: simulator addresses (never sent to the peer); today's TLS
        report; the delivered events' hop and tls_verified."""
        out = self.sh(STEP14_SIMULATOR)
        q_del, q_bounce = re.fullmatch(QUEUED + "\n" + QUEUED + "\n", out, re.M).groups()
        self.demo.line(r"^world: callback: delivered delivered@simulator\.smtpgate\.invalid %s "
                       r"250 2\.0\.0 Ok: delivered \(simulator\)$" % q_del, "simulator delivered")
        self.demo.line(r"^world: callback: bounced/remote \[bad-mailbox\] "
                       r"bounce@simulator\.smtpgate\.invalid %s 550 5\.1\.1 "
                       r"<bounce@simulator\.smtpgate\.invalid>: Recipient address rejected: "
                       r"User unknown \(simulator\)$" % q_bounce, "simulator bounced")
        assert "simulator" not in "\n".join(
            ln for ln in self.demo.out.lines if ln.startswith("world: smtp ")), "peer saw it"
        # every attempt went through the relayhost: no session with a
        # recipient domain's MX host, nothing for a TLS report
        out = self.sh("spoolctl tls-report --date $(date -u +%F)")
        assert re.fullmatch(r"no TLS sessions recorded on \d{4}-\d\d-\d\d\n", out), out
        out = self.sh(STEP14_HOPS)
        assert out == '"hop":"127.0.0.1[127.0.0.1]:%d","tls_verified":"none"}\n' \
            '"hop":"simulator"}\n' % self.ports[2526], out
