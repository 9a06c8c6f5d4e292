"""The README's first command, tried as a new user would: contrib/demo in a
clean clone reaches "ready", accepts a message from swaks with the demo
credentials, delivers it to the sandbox, and stops cleanly on Ctrl-C."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from smtpgate import SRCDIR, free_port, wait_for

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


def test_demo_from_a_clean_clone():
    if shutil.which("git") is None or shutil.which("swaks") is None:
        pytest.skip("git or swaks missing (contrib/install-deps installs them)")
    # a release tarball (make distcheck) has nothing to clone
    if not os.path.exists(os.path.join(SRCDIR, ".git")):
        pytest.skip("%s is not a git checkout" % SRCDIR)
    tmp = tempfile.mkdtemp(prefix="sgdemo-")
    os.chmod(tmp, 0o755)        # as root the daemons (user smtpgate) must reach demo/
    clone = os.path.join(tmp, "smtpgate")
    proc = None
    try:
        subprocess.run(["git", "clone", "-q", SRCDIR, clone], check=True, timeout=300,
                       capture_output=True)
        port, tlsport = free_port(), free_port()
        proc = subprocess.Popen(
            [os.path.join(clone, "contrib/demo")], cwd=clone, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            env=clean_env(SMTPGATE_DEMO_PORT=str(port), SMTPGATE_DEMO_TLS_PORT=str(tlsport),
                          JOBS="2"))
        out = Output(proc.stdout)

        def ready():
            if proc.poll() is not None:
                return "exited"
            return "smtpgate demo ready" in out.text() and "Ctrl-C stops" in out.text()

        state = wait_for(ready, timeout=1800, interval=0.5, what="smtpgate demo ready")
        if state == "exited":
            out.t.join(10)
            text = out.text()
            if any(s in text for s in BUILD_FAILED):
                pytest.skip("the clone cannot build:\n" + text[-3000:])
            pytest.fail("contrib/demo exited with %s before ready:\n%s" % (
                proc.returncode, text[-5000:]))
        banner = out.text()
        # the banner shows how to send and how to look, with the demo credentials
        assert ("swaks --server 127.0.0.1:%d --auth-user demo.demo@smtpgate "
                "--auth-password demo -tls" % port) in banner
        assert "queue" in banner and "issues" in banner and "events.jsonl" in banner
        event_log = re.search(r"tail -f (\S+events\.jsonl)", banner).group(1)
        if not os.path.isabs(event_log):
            event_log = os.path.join(clone, event_log)

        msgid = "<demo-test-%d@example.com>" % time.time_ns()
        r = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % port, "--auth-user", "demo.demo@smtpgate",
             "--auth-password", "demo", "-tls", "--from", "demo@example.com",
             "--to", "someone@example.net", "--header", "Subject: demo test",
             "--header", "MIME-Version: 1.0",
             "--header", "Content-Type: text/plain; charset=utf-8",
             "--header", "Message-Id: %s" % msgid, "--body", "It works."],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"250 2\.0\.0 Ok: queued as [0-9A-F]+", r.stdout), r.stdout

        def delivered():
            try:
                with open(event_log) as f:
                    evs = [json.loads(line) for line in f if line.strip()]
            except FileNotFoundError:
                return None
            return [e for e in evs if e.get("to") == "someone@example.net" and
                    e.get("event") == "delivered"]
        ev = wait_for(delivered, timeout=60, what="sandbox delivered event in " + event_log)[0]
        assert ev["sandbox"] is True and ev["account"] == "demo.demo@smtpgate"

        # Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=90)
        out.t.join(10)
        assert rc == 0, out.text()[-3000:]
        assert "demo: stopped" in out.text()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)
