"""Privilege boundaries that are wider than they look (the privilege
audit): what a process that is taken over can find in its own memory, and
what it may still do once it runs as its user. Started as root (skipped
otherwise) with the real binaries:

- the PostgreSQL password of cluster_dsn is in no network-facing process's
  memory (smtpd's workers and lookup process, deliverd's workers, trackd's
  HTTP process): a worker that reads its own heap, stack or the freed
  buffers of the configuration reader finds nothing to log into the
  cluster's database with;
- every process that dropped privileges has no_new_privs (no set-ID or
  file-capability program it could execute gains anything) and is not
  dumpable (no process of its uid may ptrace it or read /proc/PID/mem,
  whatever fs.suid_dumpable says): its /proc files are root's;
- no network-facing process can change the counters of metrics.shm that
  other processes keep: it has no mapping of the file that is, or could be
  made (mprotect), writable, and cannot open the file; smtpd's workers
  send their own counts to their master.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess

import pytest

import smtpgate
from smtpgate import Gateway, free_port, message, wait_for, wait_port

pytestmark = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")

PASSWORD = "Pg-S3cret-" + "%08x" % (os.getpid() * 2654435761 % 2**32)
LOGIN = "bound.test@smtpgate"


def rw_memory(pid):
    """Every readable, writable private mapping of pid (heap, stack,
    anonymous memory, data segments): what the process itself can read
    without opening a file."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else ""
            if not f[1].startswith("rw") or f[1][3] != "p" or name == "[vvar]":
                continue
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except OSError:
                pass
    return b"".join(out)


@pytest.fixture(scope="module")
def gw():
    track = free_port()
    metrics = free_port()
    g = Gateway(tls=True, extra={
        "metrics_listen": "127.0.0.1:%d" % metrics,
        # no clusterd runs: the key only has to be set (the daemons
        # journal into LMDB for it); the password is what must not leak
        "cluster_dsn": "host=127.0.0.1 dbname=smtpgate user=smtpgate "
                       "password=%s connect_timeout=1" % PASSWORD,
        "cluster_node": "bound",
        "track_listen": "127.0.0.1:%d tls=none" % track,
    })
    try:
        g.start("spoold", "deliverd", "smtpd")
        g.start("trackd")
        wait_port(track, timeout=15)
        g.metrics_port = metrics
        wait_port(metrics, timeout=15)
        g.add_account(LOGIN, ips=["127.0.0.1/32"], sandbox=True)
        with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
            s.starttls(context=smtpgate.tls_ctx())
            s.sendmail("sender@example.com", ["rcpt@example.net"],
                       message(frm="sender@example.com", to="rcpt@example.net"))
        g.wait_events(lambda e: e["event"] == "delivered", timeout=30,
                      what="sandbox delivery")
        yield g
    finally:
        g.close()


def network_side(g):
    """{role: [pid]} of the processes that read network input but never
    talk to PostgreSQL."""
    workers, lka = smtpgate.smtpd_children(g)
    sched = g.pid("deliverd")
    # not deliverd-key, the DKIM key process: it faces no network
    dworkers = [p["pid"] for p in smtpgate.session_procs(sched)
                if p["pid"] != sched and p["ppid"] == sched
                and smtpgate.proc_comm(p["pid"]) != "deliverd-key"]
    return {"smtpd worker": workers, "smtpd-lka": [lka],
            "deliverd worker": dworkers,
            "trackd http": [smtpgate.trackd_procs(g)["http"]["pid"]]}


def test_no_cluster_password_in_network_facing_memory(gw):
    """As a taken-over process would: read its own writable memory and
    look for the password (and the DSN's password= field)."""
    found = {}
    for role, pids in network_side(gw).items():
        assert pids and None not in pids, "%s: no process (%s)" % (role, pids)
        for pid in pids:
            mem = rw_memory(pid)
            assert len(mem) > 4096, "%s[%d]: memory not read" % (role, pid)
            if PASSWORD.encode() in mem:
                found.setdefault(role, []).append(pid)
    assert not found, "cluster_dsn's password readable in: %s" % found


def test_password_still_reaches_the_processes_that_use_it(gw):
    """The check above can fail: the master processes that keep the
    configuration (smtpd's master, spoold) still hold the DSN."""
    assert PASSWORD.encode() in rw_memory(gw.pid("smtpd"))


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_dropped_processes_no_new_privs_and_not_dumpable(gw):
    bad = []
    for name in ("smtpd", "spoold", "deliverd", "trackd"):
        for p in smtpgate.session_procs(gw.pid(name)):
            if 0 in p["uids"]:
                continue        # smtpd's master: root, it drops nothing
            st = status(p["pid"])
            if st.get("NoNewPrivs", "0").strip() != "1":
                bad.append("%s[%d] %s: no_new_privs off" % (name, p["pid"], p["name"]))
            # a non-dumpable process's /proc entries belong to root
            owner = os.stat("/proc/%d/mem" % p["pid"]).st_uid
            if owner != 0:
                bad.append("%s[%d] %s: dumpable" % (name, p["pid"], p["name"]))
    assert not bad, bad


def metrics_maps(pid):
    """[(lo, hi, perms, VmFlags)] of pid's mappings of metrics.shm."""
    out, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                cur = None
                if m.group(4).endswith("/metrics.shm"):
                    cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), ""]
                    out.append(cur)
            elif cur is not None and line.startswith("VmFlags:"):
                cur[3] = line.split(":", 1)[1].split()
    return [tuple(x) for x in out]


def scrape(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def series(body, prefixes):
    return {line.rpartition(" ")[0]: line.rpartition(" ")[2]
            for line in body.splitlines()
            if not line.startswith("#") and line.startswith(prefixes)}


def test_network_side_cannot_change_others_counters(gw):
    """As a taken-over process would: write over every mapping of
    metrics.shm it has (through /proc/PID/mem, which writes what the
    process itself could), look for one it could make writable (VmFlags
    "mw": mprotect), and open the file as its uid. Nothing of spoold's,
    deliverd's or the other daemons' counters changes; smtpd's workers'
    own counts still arrive (through their master)."""
    port = gw.metrics_port
    others = ("smtpgate_spoold_", "smtpgate_deliverd_", "smtpgate_process_restarts_")
    before = series(scrape(port), others)
    assert "smtpgate_spoold_filed_total" in before, before
    procs = network_side(gw)
    spoold = gw.pid("spoold")
    procs["spoold metrics child"] = [
        p["pid"] for p in smtpgate.session_procs(spoold)
        if p["pid"] != spoold and p["ppid"] == spoold]
    path = os.path.join(gw.spool, "metrics.shm")
    word = (1 << 28).to_bytes(8, "little")
    bad = []
    for role, pids in procs.items():
        assert pids and None not in pids, "%s: no process (%s)" % (role, pids)
        for pid in pids:
            for lo, hi, perms, flags in metrics_maps(pid):
                if "w" in perms or "mw" in flags:
                    bad.append("%s[%d]: %s mapping, VmFlags %s" % (role, pid, perms, flags))
                try:
                    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as mem:
                        mem.seek(lo)
                        mem.write(word * ((hi - lo) // 8))
                    bad.append("%s[%d]: wrote %d bytes of metrics.shm" % (role, pid, hi - lo))
                except OSError:
                    pass
            uid = int(status(pid)["Uid"].split()[1])
            r = subprocess.run(
                ["setpriv", "--reuid=%d" % uid, "--regid=65534", "--clear-groups",
                 "/usr/bin/python3", "-c",
                 "import os,sys; os.open(sys.argv[1], os.O_RDWR)", path],
                capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                bad.append("%s[%d]: uid %d opens %s" % (role, pid, uid, path))
    after = series(scrape(port), others)
    assert after == before, "counters changed: %s" % sorted(
        set(after.items()) ^ set(before.items()))[:6]
    assert not bad, bad
    # the workers' own counts still reach the page
    n = float(series(scrape(port), ("smtpgate_smtpd_sessions_total{result=\"accepted\"}",)
                     ).popitem()[1])
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo("client.test")
    wait_for(lambda: float(series(scrape(port), (
        "smtpgate_smtpd_sessions_total{result=\"accepted\"}",)).popitem()[1]) > n,
        timeout=15, what="the worker's session counted")


# ---- the systemd units against what the daemons do

def unit_value(name, key):
    """KEY= of contrib/systemd/smtpgate-NAME.service.in (the last one)."""
    path = os.path.join(smtpgate.SRCDIR, "contrib", "systemd",
                        "smtpgate-%s.service.in" % name)
    with open(path) as f:
        found = re.findall(r"^%s=(.*)$" % key, f.read(), re.M)
    assert found, "%s: no %s=" % (path, key)
    return found[-1]


def unit_families(name):
    """RestrictAddressFamilies= of the unit as af-restrict's list."""
    return ",".join(w[3:].lower()
                    for w in unit_value(name, "RestrictAddressFamilies").split())


def start_wrapped(g, name, prefix):
    """Starts daemon name as Gateway.start() does, under prefix (argv)."""
    log = os.path.join(g.dir, name + ".log")
    with open(log, "ab") as logf:
        g.procs[name] = subprocess.Popen(
            prefix + [smtpgate.binary(name), "-c", g.conf_path],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    g.logs[name] = log


def start_restricted(g, name):
    """Under af-restrict with its unit's address families."""
    start_wrapped(g, name, [os.path.join(smtpgate.BUILDDIR, "tests", "tools", "af-restrict"),
                            unit_families(name)])


def own_ipv4():
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else None


def test_smtpd_unit_lets_workers_know_own_addresses():
    """Under its unit's RestrictAddressFamilies= smtpd must still learn the
    host's interface addresses (getifaddrs needs a netlink socket):
    otherwise, listening on 0.0.0.0, a connection from the host's own
    address (a next hop pointing back, hairpin NAT) matches an account
    pinned to a range that covers the host and is relayed and signed as
    that account (issue 14's loop protection)."""
    own = own_ipv4()
    if own is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    with Gateway(tls=False) as g:
        g.listen = ["0.0.0.0:%d tls=none" % g.port]
        g.write_conf()
        g.start("spoold")
        g.add_account("pin", ips=[own + "/24"])
        start_restricted(g, "smtpd")
        wait_port(g.port, timeout=15)
        c = smtpgate.Raw(g.port, host=own, source=own)
        try:
            assert c.reply()[0] == 220
            assert c.cmd("EHLO me.test")[0] == 250
            code, text = c.cmd("MAIL FROM:<a@example.com>")
        finally:
            c.close()
        log = g.log("smtpd")
        assert "getifaddrs" not in log, log
        assert code == 530, "pinned account matched the host's own address: %d %s" % (
            code, text)


def syscall_groups():
    """{"@group": [names and @groups]} from systemd-analyze."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                         capture_output=True, text=True, timeout=60).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return groups


def allowed_syscalls(words, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for w in words:
        if not w.startswith("@"):
            out.add(w)
        elif w not in seen:
            seen.add(w)
            out |= allowed_syscalls(groups.get(w, []), groups, seen)
    return out


TRACED = ("spoold", "deliverd", "smtpd", "trackd")


def traced_gateway(g, mx, trace_dir):
    """Runs TRACED under strace -ff through a session that touches what
    production does: TLS + AUTH, filing, DKIM-signed delivery to mx, a
    tracking hit, SIGHUP, a clean stop."""
    track = free_port()
    g.conf.update({"relayhost": "127.0.0.1:%d" % mx.port,
                   "track_listen": "127.0.0.1:%d tls=none" % track})
    g.write_conf()
    for name in TRACED:
        start_wrapped(g, name, ["strace", "-f", "-qq", "-ff",
                                "-o", os.path.join(trace_dir, name)])
    wait_port(g.port, timeout=30)
    wait_port(track, timeout=30)
    g.add_account(LOGIN, password="pw-trace-1")
    key = os.path.join(g.dir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key],
                   check=True, capture_output=True, timeout=30)
    g.spoolctl("dkim", "add", LOGIN, "example.com", "--selector", "s1", "--key", key,
               "--default")
    for n, rcpt in enumerate(("a@example.net", "b@example.net")):
        with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
            s.starttls(context=smtpgate.tls_ctx())
            s.login(LOGIN, "pw-trace-1")
            s.sendmail("sender@example.com", [rcpt], message(frm="sender@example.com", to=rcpt))
        g.wait_events(lambda e, r=rcpt: e["event"] == "delivered" and e["to"] == r,
                      timeout=60, what="delivery to %s" % rcpt)
        if n == 0:
            with socket.create_connection(("127.0.0.1", track), timeout=10) as c:
                c.sendall(b"GET /o/nothing HTTP/1.0\r\n\r\n")
                c.recv(100)
            for name in TRACED:
                os.kill(traced_pid(g, name), signal.SIGHUP)
    for name in reversed(TRACED):       # strace itself forwards nothing
        os.kill(traced_pid(g, name), signal.SIGTERM)
        assert g.procs[name].wait(timeout=30) == 0, g.log(name)


def traced_pid(g, name):
    """The daemon strace started (strace's child)."""
    return next(p["pid"] for p in smtpgate.session_procs(g.pid(name))
                if p["ppid"] == g.pid(name))


@pytest.mark.skipif(shutil.which("strace") is None or shutil.which("systemd-analyze") is None,
                    reason="needs strace and systemd-analyze")
def test_daemons_stay_inside_their_units_syscall_filter(tmp_path):
    """Each daemon's unit filters system calls (SystemCallFilter=, failing
    with EPERM), and what the daemon really calls through a production-like
    session is inside the filter: a taken-over process gets no mount,
    ptrace, kexec, keyctl ... and the filter breaks nothing."""
    groups = syscall_groups()
    assert "@system-service" in groups
    peers = pytest.importorskip("peers")
    mx = peers.Mx().start()
    try:
        with Gateway(tls=True) as g:
            traced_gateway(g, mx, str(tmp_path))
    finally:
        mx.stop()
    outside = {}
    for name in TRACED:
        assert unit_value(name, "SystemCallErrorNumber") == "EPERM"
        allowed = allowed_syscalls(unit_value(name, "SystemCallFilter").split(), groups)
        used = set()
        for f in os.listdir(str(tmp_path)):
            if f.startswith(name + "."):
                with open(os.path.join(str(tmp_path), f), errors="replace") as t:
                    used |= set(re.findall(r"^(\w+)\(", t.read(), re.M))
        assert len(used) > 20, "%s: nothing traced" % name
        if used - allowed:
            outside[name] = sorted(used - allowed)
    assert not outside, "system calls outside the units' filters: %s" % outside


# ---- a taken-over smtpd worker and the lookup process

def steal_fd(pid, fd):
    """A copy of process pid's descriptor fd (pidfd_getfd(2), root), or
    None where the kernel refuses."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    try:
        got = libc.syscall(438, pidfd, fd, 0)     # SYS_pidfd_getfd
        return got if got >= 0 else None
    finally:
        os.close(pidfd)


def lka_socket(worker, lka):
    """The worker's end of its SOCK_SEQPACKET pair to smtpd-lka (not the
    one to smtpd-key)."""
    return smtpgate.seqpacket_to(worker, lka)


def pin_query(addr, qid=0x51ED):
    """lka_proto.h: version 1, LKA_Q_PIN, length, id, the address."""
    a = addr.encode()
    return bytes([1, 1]) + len(a).to_bytes(2, "big") + qid.to_bytes(4, "big") + a


def ask_stolen(worker, fd, send, size):
    """send(sock) on worker's descriptor fd (pidfd_getfd) while the worker
    is stopped; the reply (at most size bytes, 10 s)."""
    sfd = steal_fd(worker, fd)
    if sfd is None:
        pytest.skip("pidfd_getfd refused here")
    s = socket.socket(fileno=sfd)
    os.kill(worker, signal.SIGSTOP)
    try:
        s.settimeout(10)
        send(s)
        return s.recv(size)
    finally:
        s.close()
        os.kill(worker, signal.SIGCONT)


def ask_as_worker(g, query, fds=()):
    """Sends query (with fds as SCM_RIGHTS) on a worker's socket to the
    lka while that worker is stopped; the reply's type byte."""
    workers, lka = smtpgate.smtpd_children(g)
    worker = workers[0]
    fd = lka_socket(worker, lka)
    assert fd is not None, "no lka socket in worker %d" % worker
    reply = ask_stolen(worker, fd, lambda s: socket.send_fds(s, [query], list(fds)), 2048)
    return reply[1], reply


VICTIM_NET = "198.51.100.0/24"      # no address of this host


def test_worker_cannot_claim_a_pinned_address():
    """A taken-over worker asks the lookup process for the account pinned
    to an address its client does not have: it must get no account (and
    no envelope tag, which would let spoold file its mail as that
    account). Neither with no connection, nor with a connection of its
    own that is not from the address or not to a listener; a real client
    from a pinned address still is the account."""
    with Gateway(tls=False) as g:
        g.start("spoold", "smtpd")
        g.add_account("victim", ips=[VICTIM_NET])
        g.add_account("local", ips=["127.0.0.1/32"])
        rtype, reply = ask_as_worker(g, pin_query("198.51.100.7"))
        assert rtype == 0x82, "the lka vouched for a claimed address: %r" % reply
        assert "pinned-address lookup for 198.51.100.7 refused: no connection passed" \
            in g.log("smtpd")
        # a connection the worker made itself, from 127.0.0.1 but not to a
        # listener (a listener's port is root's)
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            with socket.create_connection(srv.getsockname(), timeout=10) as c:
                conn, _ = srv.accept()
                with conn:
                    rtype, reply = ask_as_worker(g, pin_query("127.0.0.1"),
                                                 [conn.fileno()])
        assert rtype == 0x82, reply
        assert "refused: not a connection to a listener" in g.log("smtpd")
        c = smtpgate.Raw(g.port)
        try:
            assert c.reply()[0] == 220
        finally:
            c.close()
        wait_for(lambda: "listener=127.0.0.1:%d, account=local" % g.port in g.log("smtpd"),
                 10, what="the pinned client recognised")


def test_clusterd_warns_of_a_readable_password(tmp_path):
    """smtpgate.conf must be readable by every local user (smtpgate-sendmail
    reads it as that user): a password in cluster_dsn is theirs. clusterd
    says so at start, naming the way out; with the file 0600 (or the
    password in a passfile) it says nothing."""
    dsn = ("host=127.0.0.1 port=1 dbname=smtpgate user=smtpgate password=%s "
           "connect_timeout=1" % PASSWORD)
    with Gateway(tls=False, extra={"cluster_dsn": dsn, "cluster_node": "warn"}) as g:
        g.start("spoold")
        os.chmod(g.conf_path, 0o644)
        warning = "holds a password, and %s is readable by every local user" % g.conf_path
        for mode, want in ((0o644, True), (0o600, False)):
            os.chmod(g.conf_path, mode)
            g.start("clusterd", wait=False)
            try:
                wait_for(lambda: "started: node warn" in g.log("clusterd"),
                         15, what="clusterd's start")
                assert (warning in g.log("clusterd")) == want, (oct(mode), g.log("clusterd"))
            finally:
                g.stop("clusterd")
                os.unlink(g.logs["clusterd"])
