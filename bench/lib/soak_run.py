"""bench/soak's gateway and its run loop, shared by the soak and its
--faketime mode (bench/soak, soak_faketime.py)."""
import json
import os
import shutil
import tempfile
import time

import gate_fixture  # puts the black-box harness on sys.path
import smtpgate
import soak_load
import soak_sample
from benchlib import BenchError

DAEMONS = ("smtpd", "spoold", "deliverd", "trackd")
SELF_RSS_MAX_KB = 512 * 1024


# ---------------------------------------------------------------- setup
def make_gate(sink_port, extra=None, callback_url=None):
    """The gateway: gate_fixture's benchmark configuration, plus trackd,
    spoold's metrics, a STARTTLS listener that offers AUTH, and the soak's
    accounts ("bench" posting its events to callback_url)."""
    conf = {"max_message_size": "262144", "prune_interval": "5m",
            "auth_plaintext": "yes", "retry_schedule": "2s 5s 30s"}
    conf.update(extra or {})
    # every message of "bench" is DKIM-signed (RSA; its default domain;
    # spoolctl copies the key into the spool)
    keydir = tempfile.mkdtemp(prefix="soak-key-")
    try:
        key = gate_fixture.make_key(os.path.join(keydir, "dkim.pem"), "rsa")
        gate = gate_fixture.Gate(sink_port, dkim=[("soak", key)], extra=conf)
    finally:
        shutil.rmtree(keydir, ignore_errors=True)
    gw = gate.gw
    gw.track_port = smtpgate.free_port()
    gw.metrics_port = smtpgate.free_port()
    gw.port_tls = smtpgate.free_port()
    gw.cert, gw.key = smtpgate.make_cert(gw.dir)
    gw.conf.update({"track_listen": "127.0.0.1:%d tls=none" % gw.track_port,
                    "metrics_listen": "127.0.0.1:%d" % gw.metrics_port,
                    "tls_cert": gw.cert, "tls_key": gw.key})
    gw.listen.append("127.0.0.1:%d tls=starttls" % gw.port_tls)
    gw.write_conf()
    gw.spoolctl("account", "set", gate_fixture.ACCOUNT, "--track",
                "opens,clicks,unsubscribe", "--track-host", soak_load.TRACK_HOST,
                *(["--callback-url", callback_url] if callback_url else []))
    gw.add_account(soak_load.PW_LOGIN, password=soak_load.PW_PASS)
    return gate


def start_daemons(gw, env=None):
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        gw.start("spoold", "deliverd", "smtpd", "trackd")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    smtpgate.wait_port(gw.track_port, timeout=15)


def dead_daemons(gw):
    return [n for n in DAEMONS if gw.procs.get(n) is None or gw.procs[n].poll() is not None]


# ---------------------------------------------------------------- the run
class Recorder:
    """Samples, bounded: past 4,000 every other old one is dropped."""

    def __init__(self, gw, out):
        self.gw, self.samples, self.t0 = gw, [], time.monotonic()
        self.out = open(out, "w") if out else None

    def take(self, msgs, extra=None):
        s = soak_sample.sample(self.gw, DAEMONS, time.monotonic() - self.t0, msgs)
        s.update(extra or {})
        self.samples.append(s)
        if len(self.samples) > 4000:
            self.samples = self.samples[:2000:2] + self.samples[2000:]
        if self.out:
            self.out.write(json.dumps(s, sort_keys=True) + "\n")
            self.out.flush()
        return s

    def close(self):
        if self.out:
            self.out.close()


def progress(s, load):
    c = load.counters.snapshot()
    print("  %6.0fs accepted=%d sink=%d bad=%d track=%d errors=%d  smtpd %d kB %d fds, "
          "deliverd %d kB %d fds, spoold %d kB, trackd %d kB, lmdb %d pages live" % (
              s["t"], c.get("accepted", 0), c.get("sink_msgs", 0), c.get("bad_total", 0),
              sum(v for k, v in c.items() if k.startswith("track_o")),
              c.get("client_errors", 0), s.get("smtpd.rss_kb", 0), s.get("smtpd.fds", 0),
              s.get("deliverd.rss_kb", 0), s.get("deliverd.fds", 0), s.get("spoold.rss_kb", 0),
              s.get("trackd.rss_kb", 0), s.get("lmdb.pages_live", 0)), flush=True)


def drive(gw, load, rec, seconds, interval):
    """Load for `seconds`, a sample every `interval`; raises if a daemon
    died or this process grew past its own bound."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        load.stop.wait(min(interval, max(0.1, end - time.monotonic())))
        dead = dead_daemons(gw)
        if dead:
            raise BenchError("daemon(s) died: %s" % ", ".join(dead))
        if soak_sample.self_rss_kb() > SELF_RSS_MAX_KB:
            raise BenchError("the soak's own RSS passed %d kB" % SELF_RSS_MAX_KB)
        progress(rec.take(load.counters.get("accepted")), load)


def settle(gate, timeout=120):
    """Waits (bounded) until incoming/ is empty and the queue stops shrinking."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        n = (gate.count("new"), gate.count("queue"))
        if n == (0, 0) or (n[0] == 0 and n == last):
            return n
        last = n
        time.sleep(3)
    return (gate.count("new"), gate.count("queue"))


def summary(load, gw):
    c = load.counters.snapshot()
    print("\nload: %s" % ", ".join("%s=%d" % kv for kv in sorted(c.items())))
    for e in list(load.errors)[-10:]:
        print("  client error: %s" % e)
    ev = {}
    try:
        with open(gw.event_log, "rb") as f:
            for line in f:
                i = line.find(b'"event":"')
                if i >= 0:
                    w = line[i + 9:line.find(b'"', i + 9)].decode()
                    ev[w] = ev.get(w, 0) + 1
    except OSError:
        pass
    print("events: %s" % ", ".join("%s=%d" % kv for kv in sorted(ev.items())))
    return c
