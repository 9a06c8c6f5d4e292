"""Shared pieces of smtpgate's benchmarks: processes, the load tools
(Postfix's smtp-source and smtp-sink), /proc accounting and statistics.

Everything listens on 127.0.0.1, every wait is bounded, and every process
started here is stopped by its own id.
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time

IS_ROOT = os.geteuid() == 0
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRCDIR = os.path.dirname(BENCH_DIR)
MSG_4K = os.path.join(BENCH_DIR, "msg-4k.eml")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(Exception):
    """A benchmark could not produce a figure (the reason is the message)."""


def have(prog):
    return shutil.which(prog) is not None or os.path.exists("/usr/sbin/" + prog)


def tool(prog):
    p = shutil.which(prog)
    if p:
        return p
    if os.path.exists("/usr/sbin/" + prog):
        return "/usr/sbin/" + prog
    raise BenchError("%s not installed" % prog)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred(); what may be a callable giving the text at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError("timed out after %.0fs waiting for %s" % (
                timeout, what() if callable(what) else what))
        time.sleep(interval)


def wait_port(port, timeout=15):
    def ok():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(ok, timeout, what="127.0.0.1:%d" % port)


def stop_pid(pid, timeout=10):
    """SIGTERM, then SIGKILL, one process we started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists("/proc/%d" % pid) or _is_zombie(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _nobody():
    return "nobody"


# ---------------------------------------------------------------- smtp-sink
class Sink:
    """smtp-sink on 127.0.0.1:port counting received messages (-c counters).

    soft_reject: a list of SMTP commands answered with 4xx (-r), so that the
    sender defers. dump: a file that receives every message (-D), for checks.
    """

    def __init__(self, port=None, soft_reject=None, dump=None):
        self.port = port or free_port()
        argv = [tool("smtp-sink"), "-c"]
        if IS_ROOT:
            argv += ["-u", _nobody()]
        if soft_reject:
            argv += ["-r", ",".join(soft_reject)]
        if dump:
            argv += ["-D", dump]
        argv += ["127.0.0.1:%d" % self.port, "1000"]
        self.count = 0
        self.sessions = 0
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        wait_port(self.port, timeout=10)

    def _read(self):
        rx = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            buf += chunk
            recs = buf.split(b"\r")
            buf = recs.pop()
            for rec in reversed(recs):
                m = rx.search(rec)
                if m:
                    self.sessions = int(m.group(1))
                    self.count = int(m.group(2))
                    break

    def wait_count(self, n, timeout):
        return wait_for(lambda: self.count >= n, timeout, interval=0.01,
                        what=lambda: "smtp-sink to receive %d messages (has %d)" % (n, self.count))

    def stop(self):
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._t.join(timeout=2)


# ---------------------------------------------------------------- smtp-source
def smtp_source(port, n, sessions=20, msgfile=MSG_4K, reuse=False, timeout=600,
                sender="from@bench.example", rcpt="to@bench.example"):
    """Runs smtp-source; returns elapsed seconds. Fails on any non-2xx reply."""
    argv = [tool("smtp-source"), "-F", msgfile, "-s", str(sessions), "-m", str(n),
            "-f", sender, "-t", rcpt, "-M", "bench.example"]
    if reuse:
        argv.append("-d")
    argv.append("127.0.0.1:%d" % port)
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("smtp-source did not finish %d messages in %ds" % (n, timeout))
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise BenchError("smtp-source: exit %d: %s" % (
            r.returncode, r.stderr.decode(errors="replace").strip()[-300:]))
    return dt


# ---------------------------------------------------------------- /proc
def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s.rsplit(")", 1)[1].split()
    # rest[0] = state (field 3); ppid field 4; utime 14, stime 15, cutime 16, cstime 17
    return {"ppid": int(rest[1]), "utime": int(rest[11]), "stime": int(rest[12]),
            "cutime": int(rest[13]), "cstime": int(rest[14]), "state": rest[0]}


def all_procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = _stat(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree(roots):
    """The pids of roots and all their descendants that are alive."""
    procs = all_procs()
    kids = {}
    for pid, st in procs.items():
        kids.setdefault(st["ppid"], []).append(pid)
    out, todo = [], [r for r in roots if r in procs]
    while todo:
        p = todo.pop()
        if procs[p]["state"] == "Z":
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(roots):
    """user+sys seconds of roots and all descendants, including reaped children."""
    procs = all_procs()
    total = 0
    for pid in tree(roots):
        st = procs.get(pid)
        if st:
            total += st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
    return total / CLK_TCK


def proc_status(pid, key):
    """A kB value (VmRSS, VmHWM) from /proc/PID/status, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_pss(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def memory_kb(roots):
    """(sum of RSS, sum of PSS) in kB over roots and descendants."""
    rss = pss = 0
    for pid in tree(roots):
        rss += proc_status(pid, "VmRSS") or 0
        pss += proc_pss(pid)
    return rss, pss


def reset_hwm(pid):
    """Resets VmHWM (peak RSS) of a process to its current RSS."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemSampler:
    """Samples total RSS/PSS of a process tree in a thread; keeps the peak."""

    def __init__(self, roots, interval=0.25):
        self.roots = roots
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            rss, pss = memory_kb(self.roots)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return self.peak_rss, self.peak_pss


# ---------------------------------------------------------------- statistics
class Figure:
    """A list of samples of one measurement; prints median [min..max]."""

    def __init__(self, unit="", fmt="%.0f"):
        self.samples = []
        self.unit = unit
        self.fmt = fmt
        self.error = None

    def add(self, v):
        if v is not None:
            self.samples.append(v)

    def fail(self, why):
        self.error = str(why)

    @property
    def median(self):
        return statistics.median(self.samples) if self.samples else None

    def __str__(self):
        if not self.samples:
            return "n/a" if not self.error else "n/a (%s)" % _short(self.error, 28)
        m = self.fmt % self.median
        if len(self.samples) == 1:
            return m
        return "%s [%s..%s]" % (m, self.fmt % min(self.samples), self.fmt % max(self.samples))


def _short(s, n=60):
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 3] + "..."


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def count_files(path):
    try:
        return sum(1 for e in os.scandir(path) if e.is_file() and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def count_files_recursive(path):
    n = 0
    for _, _, files in os.walk(path):
        n += len(files)
    return n


def make_big_message(path, size):
    """A complete message of about size bytes (76-char body lines)."""
    with open(MSG_4K, "rb") as f:
        head = f.read().split(b"\n\n", 1)[0]
    line = (b"0123456789" * 8)[:76] + b"\n"
    with open(path, "wb") as f:
        f.write(head + b"\n\n")
        n = max(1, size // len(line))
        chunk = line * 1000
        while n >= 1000:
            f.write(chunk)
            n -= 1000
        f.write(line * n)
    return path
