"""The benchmarks themselves. Each fills rows of the result table; a failure
becomes "n/a (reason)" in its cells and never stops the other benchmarks.

Systems are alternated within one invocation: run r starts with smtpgate
when r is even and with Postfix when r is odd.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback

import benchlib as bl
import gate_fixture as gf
import latency
import postfix_fixture as pf


class Config:
    def __init__(self, n=20000, runs=3, sessions=20, latency_n=5000, queue_n=100000,
                 big_size=50 << 20, openssl_secs=3, builddir=None, smoke=False, reuse=False,
                 workdir=None, verbose=False):
        self.n = n
        self.runs = runs
        self.sessions = sessions
        self.latency_n = latency_n
        self.queue_n = queue_n
        self.big_size = big_size
        self.openssl_secs = openssl_secs
        self.builddir = builddir
        self.smoke = smoke
        self.reuse = reuse
        self.workdir = workdir or tempfile.gettempdir()
        self.verbose = verbose
        self.keys = {}
        self.tmpdirs = []

    def tmpdir(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix, dir=self.workdir)
        os.chmod(d, 0o755)
        self.tmpdirs.append(d)
        return d

    def cleanup(self):
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            for d in self.tmpdirs:
                shutil.rmtree(d, ignore_errors=True)
        self.tmpdirs = []

    def timeout(self, n, per_sec=200.0, base=60.0):
        """A bound for n messages at no less than per_sec messages/s."""
        return base + n / per_sec


class Row:
    """One line of the table. better: 'higher' or 'lower' (for the ratio)."""

    def __init__(self, section, label, unit, better="higher", fmt="%.0f", note=""):
        self.section = section
        self.label = label
        self.unit = unit
        self.better = better
        self.gate = bl.Figure(unit, fmt)
        self.postfix = bl.Figure(unit, fmt)
        self.note = note
        self.extra = ""

    def ratio(self):
        g, p = self.gate.median, self.postfix.median
        if self.better == "none" or g is None or p is None or g <= 0 or p <= 0:
            return None
        return g / p if self.better == "higher" else p / g


class Results:
    def __init__(self):
        self.rows = []
        self.by_key = {}
        self.log = []

    def row(self, key, *args, **kw):
        if key not in self.by_key:
            r = Row(*args, **kw)
            self.by_key[key] = r
            self.rows.append(r)
        return self.by_key[key]

    def say(self, cfg, msg):
        line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
        self.log.append(line)
        if cfg.verbose:
            print(line, flush=True)


def _fail(rows, side, e, res, cfg, what):
    for r in rows:
        getattr(r, side).fail(e)
    res.say(cfg, "%s: %s" % (what, e))
    if cfg.verbose and not isinstance(e, bl.BenchError):
        traceback.print_exc()


def _keys(cfg):
    if not cfg.keys:
        d = cfg.tmpdir("sgbench-keys-")
        cfg.keys["rsa"] = gf.make_key(os.path.join(d, "rsa.pem"), "rsa")
        cfg.keys["ed25519"] = gf.make_key(os.path.join(d, "ed25519.pem"), "ed25519")
        cfg.keys["dir"] = d
    return cfg.keys


# ------------------------------------------------------------------ ceilings
def ceilings(cfg, res):
    sink_row = res.row("c_sink", "Ceilings (same machine)", "smtp-source -> smtp-sink, %d sessions%s" % (
        cfg.sessions, ", reused" if cfg.reuse else ""), "msg/s")
    fs_row = res.row("c_fsync", "Ceilings (same machine)",
                     "4 KB write+fsync+rename+fsync(dir), 20 writers", "ops/s")
    fs2_row = res.row("c_fsync2", "Ceilings (same machine)",
                      "  same, also fsync(tmp dir) (fsx_rename_durable)", "ops/s")
    w = os.environ.get("BENCH_SMTPD_WORKERS", "4")
    fs3_row = res.row("c_fsync3", "Ceilings (same machine)",
                      "  same, %s writers (= smtpd_workers)" % w, "ops/s")
    fs4_row = res.row("c_fsync4", "Ceilings (same machine)",
                      "  same, %s writers, one fsync(dir) per 5 files" % w, "ops/s")
    for r in range(cfg.runs):
        try:
            sink = bl.Sink()
            try:
                dt = bl.smtp_source(sink.port, cfg.n, cfg.sessions, reuse=cfg.reuse,
                                    timeout=cfg.timeout(cfg.n, 500))
                sink.wait_count(cfg.n, 30)
                sink_row.gate.add(cfg.n / dt)
            finally:
                sink.stop()
        except Exception as e:
            _fail([sink_row], "gate", e, res, cfg, "ceiling smtp-sink")
        prog = os.path.join(cfg.builddir, "bench", "fsync_ceiling")
        for row, extra in ((fs_row, ["-w", "20"]), (fs2_row, ["-w", "20", "-2"]),
                           (fs3_row, ["-w", w]), (fs4_row, ["-w", w, "-b", "5"])):
            try:
                d = os.path.join(cfg.tmpdir("sgbench-fsync-"), "d")
                out = subprocess.run([prog, "-d", d, "-n", str(cfg.n)] + extra,
                                     capture_output=True, text=True, timeout=cfg.timeout(cfg.n, 100),
                                     check=True).stdout
                row.gate.add(float(re.search(r"rate=([\d.]+)", out).group(1)))
                os.rmdir(os.path.dirname(d))
            except FileNotFoundError:
                row.gate.fail("%s not built (make bench/fsync_ceiling)" % prog)
            except Exception as e:
                _fail([row], "gate", e, res, cfg, "ceiling fsync")
    rsa = res.row("c_rsa", "Ceilings (same machine)", "openssl speed rsa2048 sign/s (1 core)", "sign/s")
    ed = res.row("c_ed", "Ceilings (same machine)", "openssl speed ed25519 sign/s (1 core)", "sign/s")
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", str(cfg.openssl_secs), "rsa2048",
                              "ed25519"], capture_output=True, text=True,
                             timeout=60 + 8 * cfg.openssl_secs).stdout
        m = re.search(r"^rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", out, re.M)
        rsa.gate.add(float(m.group(1)) if m else None)
        m = re.search(r"EdDSA \(Ed25519\)\s+\S+\s+\S+\s+([\d.]+)", out)
        ed.gate.add(float(m.group(1)) if m else None)
    except Exception as e:
        _fail([rsa, ed], "gate", e, res, cfg, "openssl speed")


# ------------------------------------------------------------------ accept
def _accept_postfix(cfg, res, rows):
    rate, p50, p99, cpu = rows
    closed = bl.free_port()
    p = pf.PrivatePostfix(closed, workdir=cfg.tmpdir("sgbench-pf-"), qmgr=False)
    try:
        p.start()
        c0 = bl.cpu_seconds(p.pids)
        dt = bl.smtp_source(p.port, cfg.n, cfg.sessions, reuse=cfg.reuse,
                            timeout=cfg.timeout(cfg.n))
        c1 = bl.cpu_seconds(p.pids)
        got = p.count("incoming", "active", "deferred", "maildrop")
        if got < cfg.n:
            raise bl.BenchError("postfix has %d of %d queue files" % (got, cfg.n))
        rate.postfix.add(cfg.n / dt)
        cpu.postfix.add(1000.0 * (c1 - c0) / cfg.n)
        lr = latency.run(p.port, cfg.latency_n, cfg.sessions)
        if lr["errors"]:
            raise bl.BenchError("latency client: %d errors: %s" % (lr["errors"], lr["last_error"]))
        p50.postfix.add(lr["p50_ms"])
        p99.postfix.add(lr["p99_ms"])
        res.say(cfg, "accept postfix: %.0f msg/s, latency p50 %.2f p99 %.2f ms" % (
            cfg.n / dt, lr["p50_ms"], lr["p99_ms"]))
    finally:
        p.close()


def _accept_gate(cfg, res, rows):
    rate, p50, p99, cpu = rows
    closed = bl.free_port()
    g = gf.Gate(closed, workdir=cfg.tmpdir("sgbench-gate-"))
    try:
        g.start("smtpd")
        c0 = bl.cpu_seconds(g.pids)
        dt = bl.smtp_source(g.port, cfg.n, cfg.sessions, reuse=cfg.reuse,
                            timeout=cfg.timeout(cfg.n))
        c1 = bl.cpu_seconds(g.pids)
        got = g.count("new")
        if got < cfg.n:
            raise bl.BenchError("smtpgate has %d of %d files in incoming/new" % (got, cfg.n))
        rate.gate.add(cfg.n / dt)
        cpu.gate.add(1000.0 * (c1 - c0) / cfg.n)
        lr = latency.run(g.port, cfg.latency_n, cfg.sessions)
        if lr["errors"]:
            raise bl.BenchError("latency client: %d errors: %s" % (lr["errors"], lr["last_error"]))
        p50.gate.add(lr["p50_ms"])
        p99.gate.add(lr["p99_ms"])
        res.say(cfg, "accept smtpgate: %.0f msg/s, latency p50 %.2f p99 %.2f ms" % (
            cfg.n / dt, lr["p50_ms"], lr["p99_ms"]))
    finally:
        g.close()


def accept(cfg, res):
    sec = "Accept: %d x 4 KB, %d sessions (smtpd only | smtpd+cleanup, no qmgr)" % (cfg.n, cfg.sessions)
    rows = (res.row("a_rate", sec, "accept rate (250 after fsync)", "msg/s"),
            res.row("a_p50", sec, "latency end-of-data -> 250, p50", "ms", "lower", "%.2f"),
            res.row("a_p99", sec, "latency end-of-data -> 250, p99", "ms", "lower", "%.2f"),
            res.row("a_cpu", sec, "CPU (user+sys, all processes) per 1000 msgs", "s", "lower", "%.3f"))
    why_pf, why_gate = pf.available(), gf.available()
    for r in range(cfg.runs):
        order = ["gate", "postfix"] if r % 2 == 0 else ["postfix", "gate"]
        for who in order:
            why = why_gate if who == "gate" else why_pf
            if why:
                for row in rows:
                    getattr(row, who).fail(why)
                continue
            try:
                (_accept_gate if who == "gate" else _accept_postfix)(cfg, res, rows)
            except Exception as e:
                _fail(rows, who, e, res, cfg, "accept %s" % who)


# ------------------------------------------------------------------ end to end
E2E_VARIANTS = {
    # name: (side, description)
    "gate-rsa": "gate",
    "gate-dual": "gate",
    "gate-nodkim": "gate",
    "postfix-dkim": "postfix",
    "postfix": "postfix",
}


def _start_variant(cfg, name, sink_port):
    """Returns (system, pids callable, closer)."""
    if name.startswith("gate"):
        keys = _keys(cfg) if name != "gate-nodkim" else {}
        dkim = {"gate-rsa": [("rsa", keys.get("rsa"))],
                "gate-dual": [("rsa", keys.get("rsa")), ("ed", keys.get("ed25519"))],
                "gate-nodkim": []}[name]
        g = gf.Gate(sink_port, dkim=dkim, workdir=cfg.tmpdir("sgbench-gate-"))
        try:
            g.start()
        except Exception:
            g.close()
            raise
        return g, (lambda: g.pids), g.close
    wd = cfg.tmpdir("sgbench-pf-")
    odk = None
    if name == "postfix-dkim":
        why = pf.opendkim_available()
        if why:
            raise bl.BenchError(why)
        odk = pf.OpenDKIM(wd, _keys(cfg)["rsa"])
    p = pf.PrivatePostfix(sink_port, workdir=wd, milter=odk.socket if odk else None)

    def close():
        p.close()
        if odk:
            odk.stop()
    try:
        p.start()
    except Exception:
        close()
        raise
    return p, (lambda: p.pids + (odk.pids if odk else [])), close


def _e2e_once(cfg, res, name, dump=None):
    """One end-to-end run of one variant; returns its measurements."""
    sink = bl.Sink(dump=dump)
    try:
        system, pids, close = _start_variant(cfg, name, sink.port)
        try:
            time.sleep(0.5)
            rss0, pss0 = bl.memory_kb(pids())
            sampler = bl.MemSampler(pids())
            c0 = bl.cpu_seconds(pids())
            t0 = time.monotonic()
            bl.smtp_source(system.port, cfg.n, cfg.sessions, reuse=cfg.reuse,
                           timeout=cfg.timeout(cfg.n))
            sink.wait_count(cfg.n, cfg.timeout(cfg.n, 30))
            dt = time.monotonic() - t0
            c1 = bl.cpu_seconds(pids())
            peak_rss, peak_pss = sampler.stop()
            m = {"rate": cfg.n / dt, "cpu": 1000.0 * (c1 - c0) / cfg.n,
                 "rest_rss": rss0 / 1024.0, "load_rss": peak_rss / 1024.0,
                 "rest_pss": pss0 / 1024.0, "load_pss": peak_pss / 1024.0}
            res.say(cfg, "e2e %s: %.0f msg/s, cpu %.3f s/1000, rss %d->%d kB" % (
                name, m["rate"], m["cpu"], rss0, peak_rss))
            return m
        finally:
            close()
    finally:
        sink.stop()


def end_to_end(cfg, res):
    sec = "End to end: %d x 4 KB until smtp-sink has all, %d sessions" % (cfg.n, cfg.sessions)
    msec = "Memory, whole system (RSA end-to-end runs; Postfix incl. OpenDKIM)"
    pairs = [
        ("gate-rsa", "postfix-dkim", "RSA-2048 DKIM: smtpgate | Postfix+OpenDKIM"),
        ("gate-dual", "postfix-dkim", "Ed25519+RSA DKIM: smtpgate | Postfix+OpenDKIM (RSA)"),
        ("gate-nodkim", "postfix", "no DKIM: smtpgate | Postfix"),
    ]
    rows = {}
    for g, p, label in pairs:
        rows[g] = (res.row("e_" + g, sec, label, "msg/s"),
                   res.row("e_cpu_" + g, sec, "  CPU (user+sys, all processes) per 1000 msgs",
                           "s", "lower", "%.3f"))
    mem = {"rest_rss": res.row("m_rest", msec, "total RSS at rest", "MB", "lower", "%.1f"),
           "load_rss": res.row("m_load", msec, "total RSS, peak under load", "MB", "lower", "%.1f"),
           "rest_pss": res.row("m_prest", msec, "total PSS at rest", "MB", "lower", "%.1f"),
           "load_pss": res.row("m_pload", msec, "total PSS, peak under load", "MB", "lower", "%.1f")}
    variants = ["gate-rsa", "postfix-dkim", "gate-dual", "gate-nodkim", "postfix"]
    why = {"gate": gf.available(), "postfix": pf.available()}
    results = {v: [] for v in variants}
    errors = {}
    for r in range(cfg.runs):
        for name in (variants if r % 2 == 0 else list(reversed(variants))):
            side = E2E_VARIANTS[name]
            if why[side]:
                errors[name] = why[side]
                continue
            dump = _dumpfile(cfg) if cfg.smoke else None
            try:
                results[name].append(_e2e_once(cfg, res, name, dump))
                if dump:
                    _check_dump(dump, name)
            except Exception as e:
                errors[name] = e
                res.say(cfg, "e2e %s: %s" % (name, e))
                if cfg.verbose and not isinstance(e, bl.BenchError):
                    traceback.print_exc()
    for g, p, _ in pairs:
        for name, side in ((g, "gate"), (p, "postfix")):
            rate, cpu = rows[g]
            for m in results[name]:
                getattr(rate, side).add(m["rate"])
                getattr(cpu, side).add(m["cpu"])
            if not results[name] and name in errors:
                getattr(rate, side).fail(errors[name])
                getattr(cpu, side).fail(errors[name])
    for name, side in (("gate-rsa", "gate"), ("postfix-dkim", "postfix")):
        for key, row in mem.items():
            for m in results[name]:
                getattr(row, side).add(m[key])
            if not results[name] and name in errors:
                getattr(row, side).fail(errors[name])


def _dumpfile(cfg):
    """A file smtp-sink may write (it runs as nobody when we are root)."""
    d = cfg.tmpdir("sgbench-dump-")
    if bl.IS_ROOT:
        import pwd
        pw = pwd.getpwnam("nobody")
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return os.path.join(d, "dump")


def _check_dump(dump, name):
    """Smoke mode: the delivered copies are complete (and signed when asked)."""
    with open(dump, "rb") as f:
        data = f.read()
    if b"Subject: smtpgate benchmark message" not in data:
        raise bl.BenchError("%s: smtp-sink dump lacks the message" % name)
    want = {"gate-rsa": [b"a=rsa-sha256"], "gate-dual": [b"a=rsa-sha256", b"a=ed25519-sha256"],
            "postfix-dkim": [b"a=rsa-sha256"]}.get(name, [])
    for w in want:
        if w not in data:
            raise bl.BenchError("%s: delivered message has no DKIM-Signature with %s" % (
                name, w.decode()))


# ------------------------------------------------------------------ memory, 50 MB message
def _hwm_snapshot(pids):
    base = {}
    for pid in pids:
        rss = bl.proc_status(pid, "VmRSS")
        if rss is not None and bl.reset_hwm(pid):
            base[pid] = rss
    return base


class _AnonSampler:
    """Peak RssAnon per process, sampled every 5 ms (the kernel keeps no
    anonymous-only peak; VmHWM also counts mapped file pages)."""

    def __init__(self, pids):
        import threading
        self.base = {p: bl.proc_status(p, "RssAnon") or 0 for p in pids}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            for p in self.peak:
                v = bl.proc_status(p, "RssAnon")
                if v is not None and v > self.peak[p]:
                    self.peak[p] = v
            self._stop.wait(0.005)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return max([self.peak[p] - self.base[p] for p in self.peak] or [0])


def _growth(base):
    """max over processes of (peak RSS since reset - RSS before), kB; and who."""
    best, who = 0, None
    for pid, rss in base.items():
        hwm = bl.proc_status(pid, "VmHWM")
        if hwm is not None and hwm - rss >= best:
            best, who = hwm - rss, bl.proc_name(pid)
    return best, who


def big_message(cfg, res):
    mb = cfg.big_size / float(1 << 20)
    sec = "Memory: one %.0f MB message end to end (RSS growth = peak - before)" % mb
    r_smtpd = res.row("b_smtpd", sec, "smtpd worker | Postfix smtpd", "MB", "lower", "%.2f")
    r_mid = res.row("b_mid", sec, "spoold | Postfix cleanup", "MB", "lower", "%.2f")
    r_out = res.row("b_out", sec, "deliverd (any process) | Postfix smtp+qmgr", "MB", "lower", "%.2f")
    r_dkim = res.row("b_dkim", sec, "(DKIM in deliverd) | OpenDKIM", "MB", "lower", "%.2f")
    r_anon = res.row("b_anon", sec, "  anonymous memory only (RssAnon, sampled), max", "MB",
                     "lower", "%.2f")
    r_time = res.row("b_time", sec, "time until smtp-sink has it", "s", "lower", "%.2f")
    rows = (r_smtpd, r_mid, r_out, r_dkim, r_anon, r_time)
    d = cfg.tmpdir("sgbench-big-")
    big = bl.make_big_message(os.path.join(d, "big.eml"), cfg.big_size)
    why = {"gate": gf.available(), "postfix": pf.available()}
    try:
        for r in range(cfg.runs):
            order = ["gate", "postfix"] if r % 2 == 0 else ["postfix", "gate"]
            for side in order:
                if why[side]:
                    for row in rows:
                        getattr(row, side).fail(why[side])
                    continue
                try:
                    _big_once(cfg, res, side, big, rows)
                except Exception as e:
                    _fail(rows, side, e, res, cfg, "50MB %s" % side)
    finally:
        os.unlink(big)
        os.rmdir(d)


def _big_once(cfg, res, side, big, rows):
    r_smtpd, r_mid, r_out, r_dkim, r_anon, r_time = rows
    sink = bl.Sink()
    try:
        name = "gate-rsa" if side == "gate" else "postfix-dkim"
        system, pids, close = _start_variant(cfg, name, sink.port)
        try:
            # warm up: one small message so every process exists
            bl.smtp_source(system.port, 1, 1, timeout=60)
            sink.wait_count(1, 60)
            if side == "gate":
                groups = {"smtpd": system.workers("smtpd"),
                          "mid": system.daemon_pids("spoold"),
                          "out": bl.tree(system.daemon_pids("deliverd"))}
            else:
                byname = {}
                for pid in bl.tree(pids()):
                    byname.setdefault(bl.proc_name(pid), []).append(pid)
                groups = {"smtpd": byname.get("smtpd", []), "mid": byname.get("cleanup", []),
                          "out": byname.get("smtp", []) + byname.get("qmgr", []),
                          "dkim": byname.get("opendkim", [])}
            bases = {k: _hwm_snapshot(v) for k, v in groups.items()}
            anon = _AnonSampler([pid for v in groups.values() for pid in v])
            t0 = time.monotonic()
            bl.smtp_source(system.port, 1, 1, msgfile=big, timeout=300)
            sink.wait_count(2, 300)
            dt = time.monotonic() - t0
            getattr(r_anon, side).add(anon.stop() / 1024.0)
            out = {k: _growth(b) for k, b in bases.items()}
            getattr(r_time, side).add(dt)
            for key, row in (("smtpd", r_smtpd), ("mid", r_mid), ("out", r_out), ("dkim", r_dkim)):
                if key in out and bases[key]:
                    getattr(row, side).add(out[key][0] / 1024.0)
            res.say(cfg, "50MB %s: %.2fs, growth %s" % (side, dt, {
                k: "%s %d kB" % (v[1], v[0]) for k, v in out.items()}))
        finally:
            close()
    finally:
        sink.stop()


# ------------------------------------------------------------------ queue tooling
def _timed(argv_fn, runs):
    out = []
    lines = 0
    for _ in range(runs):
        t0 = time.monotonic()
        r = argv_fn()
        out.append(time.monotonic() - t0)
        if r.returncode != 0:
            raise bl.BenchError("exit %d: %s" % (r.returncode, r.stderr[-200:]))
        lines = r.stdout.count(b"\n")
    return out, lines


def queue_tooling(cfg, res):
    sec = "Queue tooling: %d deferred messages" % cfg.queue_n
    r_text = res.row("q_text", sec, "spoolctl queue | postqueue -p", "s", "lower", "%.3f")
    r_json = res.row("q_json", sec, "spoolctl queue --json | postqueue -j", "s", "lower", "%.3f")
    r_lines = res.row("q_lines", sec, "  (lines printed by the text listing)", "lines", "none")
    r_fill = res.row("q_fill", sec, "  (time to fill the deferred queue)", "s", "lower", "%.0f")
    rows = (r_text, r_json)
    closed = bl.free_port()
    g = p = None
    try:
        why = gf.available()
        if why:
            raise bl.BenchError(why)
        g = gf.Gate(closed, workdir=cfg.tmpdir("sgbench-gate-"),
                    extra={"retry_schedule": "1h"})
        g.start()
        t0 = time.monotonic()
        bl.smtp_source(g.port, cfg.queue_n, cfg.sessions, reuse=True,
                       timeout=cfg.timeout(cfg.queue_n, 100))
        try:
            bl.wait_for(lambda: g.events_count("deferred") >= cfg.queue_n,
                        cfg.timeout(cfg.queue_n, 200), interval=1,
                        what=lambda: "%d deferred events (has %d)" % (
                            cfg.queue_n, g.events_count("deferred")))
        except bl.BenchError as e:
            res.say(cfg, "queue smtpgate: %s; measuring the queue as it is" % e)
            r_text.extra = "(smtpgate: not all deferred yet)"
        r_fill.gate.add(time.monotonic() - t0)
    except Exception as e:
        _fail(rows + (r_fill, r_lines), "gate", e, res, cfg, "queue smtpgate")
        if g:
            g.close()
        g = None
    try:
        why = pf.available()
        if why:
            raise bl.BenchError(why)
        p = pf.PrivatePostfix(closed, workdir=cfg.tmpdir("sgbench-pf-"))
        p.start()
        t0 = time.monotonic()
        bl.smtp_source(p.port, cfg.queue_n, cfg.sessions, reuse=True,
                       timeout=cfg.timeout(cfg.queue_n, 100))
        bl.wait_for(lambda: p.count("deferred") >= cfg.queue_n, cfg.timeout(cfg.queue_n, 200),
                    interval=1, what=lambda: "%d deferred in postfix (has %d)" % (
                        cfg.queue_n, p.count("deferred")))
        r_fill.postfix.add(time.monotonic() - t0)
    except Exception as e:
        _fail(rows + (r_fill, r_lines), "postfix", e, res, cfg, "queue postfix")
        if p:
            p.close()
        p = None
    try:
        for r in range(cfg.runs):
            sides = ["gate", "postfix"] if r % 2 == 0 else ["postfix", "gate"]
            for side in sides:
                for row, gargs, pargs in ((r_text, ["queue"], ["-p"]),
                                          (r_json, ["queue", "--json"], ["-j"])):
                    try:
                        if side == "gate" and g:
                            t, lines = _timed(lambda: g.spoolctl(*gargs), 1)
                            if lines < 1:
                                raise bl.BenchError("spoolctl %s printed nothing" % " ".join(gargs))
                            row.gate.add(t[0])
                            if row is r_text and r == 0:
                                r_lines.gate.add(lines)
                        elif side == "postfix" and p:
                            t, lines = _timed(lambda: p.postqueue(*pargs), 1)
                            row.postfix.add(t[0])
                            if row is r_text and r == 0:
                                r_lines.postfix.add(lines)
                    except Exception as e:
                        _fail([row], side, e, res, cfg, "queue listing %s" % side)
    finally:
        if g:
            g.close()
        if p:
            p.close()


ALL = [("ceilings", ceilings), ("accept", accept), ("e2e", end_to_end),
       ("memory", big_message), ("queue", queue_tooling)]
