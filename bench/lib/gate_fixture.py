"""smtpgate under benchmark: the black-box harness's Gateway with a
benchmark configuration (plain listener on 127.0.0.1, an account pinned to
127.0.0.1, relayhost = smtp-sink, DKIM keys as asked).

Binaries come from SMTPGATE_BUILDDIR (bench/run --builddir sets it).
"""
import os
import subprocess
import sys

from benchlib import SRCDIR, BenchError, tree, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "tests", "blackbox", "lib"))
import smtpgate  # noqa: E402  (the black-box harness)

ACCOUNT = "bench"
DOMAIN = "bench.example"


def missing_binaries(names=("smtpd", "spoold", "deliverd", "spoolctl")):
    return [n for n in names if not os.access(smtpgate.binary(n), os.X_OK)]


def available():
    miss = missing_binaries()
    if miss:
        return "not built: %s (in %s)" % (", ".join(miss), smtpgate.BUILDDIR)
    return None


def make_key(path, kind):
    """An RSA-2048 or Ed25519 private key in PEM (PKCS#8)."""
    alg = {"rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
           "ed25519": ["-algorithm", "ED25519"]}[kind]
    subprocess.run(["openssl", "genpkey"] + alg + ["-out", path], check=True,
                   capture_output=True, timeout=60)
    os.chmod(path, 0o600)
    return path


class Gate:
    """One smtpgate instance. dkim: list of (selector, keyfile)."""

    def __init__(self, relay_port, dkim=(), extra=None, workdir=None):
        why = available()
        if why:
            raise BenchError(why)
        conf = {
            "hostname": "bench-gate.test",
            "smtpd_workers": os.environ.get("BENCH_SMTPD_WORKERS", "4"),
            "relayhost": "127.0.0.1:%d" % relay_port,
            # short: a message deferred by a transient hiccup comes back within
            # the run (the queue benchmark sets 1h)
            "retry_schedule": "1s",
            "smtpd_timeout": "60s",
            "spoold_rescan_interval": "1s",
            "max_message_size": "104857600",
            "smtpd_max_sessions_per_ip": "1000",
            "smtpd_max_sessions": "1000",
        }
        conf.update(extra or {})
        self.gw = smtpgate.Gateway(tls=False, port_tls="none", extra=conf, workdir=workdir)
        # deliverd_workers: deliverd's own default unless BENCH_DELIVERD_WORKERS
        # says otherwise (issue 21: the defaults are what is measured)
        if os.environ.get("BENCH_DELIVERD_WORKERS"):
            self.gw.conf["deliverd_workers"] = os.environ["BENCH_DELIVERD_WORKERS"]
        else:
            self.gw.conf.pop("deliverd_workers", None)
        if extra and "deliverd_workers" in extra:
            self.gw.conf["deliverd_workers"] = extra["deliverd_workers"]
        self.gw.write_conf()
        self.port = self.gw.port
        self.spool = self.gw.spool
        self.gw.add_account(ACCOUNT, ips=["127.0.0.1/32"])
        for i, (selector, keyfile) in enumerate(dkim):
            args = ["dkim", "add", ACCOUNT, DOMAIN, "--selector", selector, "--key", keyfile]
            if i == 0:
                args.append("--default")
            self.gw.spoolctl(*args)

    def start(self, *names):
        self.gw.start(*names)
        return self

    def stop(self, *names):
        self.gw.stop(*names)

    @property
    def pids(self):
        return [p.pid for p in self.gw.procs.values() if p.poll() is None]

    def daemon_pids(self, name):
        p = self.gw.procs.get(name)
        return [p.pid] if p and p.poll() is None else []

    def workers(self, name):
        """The children of a daemon (its prefork workers), else the daemon."""
        roots = self.daemon_pids(name)
        kids = [p for p in tree(roots) if p not in roots]
        return kids or roots

    def count(self, area):
        return len(self.gw.files(area))

    def spoolctl(self, *args, timeout=300):
        return subprocess.run([smtpgate.binary("spoolctl"), "-c", self.gw.conf_path] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def events_count(self, word):
        """Lines of the event log that contain '"event":"<word>"'."""
        needle = ('"event":"%s"' % word).encode()
        try:
            with open(self.gw.event_log, "rb") as f:
                return sum(1 for line in f if needle in line)
        except FileNotFoundError:
            return 0

    def log(self, name):
        return self.gw.log(name)

    def close(self):
        self.gw.close()


def wait_drained(gate, timeout):
    """Waits until queue/ and incoming/ are empty (all delivered)."""
    wait_for(lambda: gate.count("new") == 0 and gate.count("queue") == 0, timeout,
             interval=0.05, what="smtpgate queue to drain")
