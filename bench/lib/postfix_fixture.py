"""A private Postfix instance (and an OpenDKIM milter) for the benchmarks.

Its own config_directory and queue_directory under a temp dir, smtpd on one
loopback port (never 25), relayhost = [127.0.0.1]:SINKPORT, no local
delivery, fsync on (Postfix's default). Started with `postfix -c DIR start`
(needs root) and always stopped with `postfix -c DIR stop` plus SIGKILL of
the remaining processes of this instance by pid.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from benchlib import (BENCH_DIR, IS_ROOT, BenchError, free_port, have, stop_pid,
                      tree, wait_for, wait_port, count_files_recursive)

TEMPLATES = os.path.join(BENCH_DIR, "postfix")


def available():
    """None if a private Postfix can run here, else the reason."""
    if not IS_ROOT:
        return "a private Postfix instance needs root (postfix -c DIR start)"
    for p in ("postfix", "postconf", "postqueue", "smtp-source", "smtp-sink"):
        if not have(p):
            return "%s not installed (contrib/install-deps)" % p
    return None


def opendkim_available():
    if not IS_ROOT:
        return "OpenDKIM fixture needs root"
    if not have("opendkim"):
        return "opendkim not installed (contrib/install-deps)"
    return None


def _fill(template, values):
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def _run(argv, timeout=60, check=True):
    # Postfix commands report errors on stderr only when it is a tty or
    # through syslog; `script` gives them a tty so failures are readable.
    r = subprocess.run(["script", "-qec", " ".join(argv), "/dev/null"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise BenchError("%s: exit %d: %s" % (" ".join(argv[:3]), r.returncode,
                                              (r.stdout + r.stderr).strip()[-400:]))
    return r


class OpenDKIM:
    """opendkim -f on a unix socket under dir, signing bench.example (RSA-2048)."""

    def __init__(self, workdir, keyfile, selector="rsa"):
        self.dir = os.path.join(workdir, "opendkim")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "opendkim.sock")
        key = os.path.join(self.dir, "key.pem")
        shutil.copy(keyfile, key)
        user = "opendkim"
        try:
            pw = pwd.getpwnam(user)
            os.chown(key, pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        except KeyError:
            user = "root"
        os.chmod(key, 0o600)
        self.conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.conf, "w") as f:
            f.write(_fill("opendkim.conf.in", {"SELECTOR": selector, "KEYFILE": key,
                                               "SOCKET": self.socket, "USER": user}))
        self.log = open(os.path.join(self.dir, "opendkim.log"), "ab")
        self.proc = subprocess.Popen(["opendkim", "-f", "-x", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        try:
            wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None,
                     15, what="opendkim socket")
        except BenchError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise BenchError("opendkim exited: %s" % self.logtext())

    def logtext(self):
        with open(os.path.join(self.dir, "opendkim.log"), errors="replace") as f:
            return f.read()[-400:]

    @property
    def pids(self):
        return [self.proc.pid]

    def stop(self):
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


class PrivatePostfix:
    """One private Postfix instance.

    qmgr=False leaves the queue manager out of master.cf: accepted mail stays
    in incoming/ (the accept-only benchmark, like smtpgate's smtpd without
    spoold). milter: a unix socket path (OpenDKIM). relay_port: the next hop;
    a closed port makes every message deferred.
    """

    def __init__(self, relay_port, workdir=None, qmgr=True, milter=None, extra=None):
        why = available()
        if why:
            raise BenchError(why)
        self.dir = workdir or tempfile.mkdtemp(prefix="sgbench-pf-")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        data = os.path.join(self.dir, "data")
        for d in (self.etc, self.queue, data):
            os.makedirs(d, exist_ok=True)
        pw = pwd.getpwnam("postfix")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        lines = []
        if milter:
            lines += ["smtpd_milters = unix:%s" % milter,
                      "milter_default_action = tempfail",
                      "milter_protocol = 6"]
        for k, v in (extra or {}).items():
            lines.append("%s = %s" % (k, v))
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(_fill("main.cf.in", {"DIR": self.dir, "SINKPORT": relay_port,
                                         "EXTRA": "\n".join(lines)}))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(_fill("master.cf.in", {"PORT": self.port,
                                           "QMGR": "" if qmgr else "#"}))
        self.master_pid = None

    def start(self):
        _run(["postfix", "-c", self.etc, "check"])
        _run(["postfix", "-c", self.etc, "start"])
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        wait_for(lambda: os.path.exists(pidfile), 15, what="postfix master.pid")
        with open(pidfile) as f:
            self.master_pid = int(f.read().split()[0])
        wait_port(self.port)
        return self

    @property
    def pids(self):
        return [self.master_pid] if self.master_pid else []

    def count(self, *queues):
        return sum(count_files_recursive(os.path.join(self.queue, q)) for q in queues)

    def postqueue(self, *args, timeout=300):
        return subprocess.run(["postqueue", "-c", self.etc] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)

    def stop(self):
        if self.master_pid is None:
            return
        pids = tree([self.master_pid])
        try:
            _run(["postfix", "-c", self.etc, "stop"], check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % self.master_pid):
            time.sleep(0.1)
        for pid in pids:
            if os.path.exists("/proc/%d" % pid):
                stop_pid(pid, timeout=2)
        self.master_pid = None

    def close(self):
        self.stop()
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
