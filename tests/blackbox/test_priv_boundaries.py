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
  whatever fs.suid_dumpable says): its /proc files are root's.
"""
import os
import re
import smtplib
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
    g = Gateway(tls=True, extra={
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
    dworkers = [p["pid"] for p in smtpgate.session_procs(sched)
                if p["pid"] != sched and p["ppid"] == sched]
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


# ---- the systemd units against what the daemons do

def unit_families(name):
    """RestrictAddressFamilies= of contrib/systemd/smtpgate-NAME.service.in
    as af-restrict's list ("unix,inet,...")."""
    path = os.path.join(smtpgate.SRCDIR, "contrib", "systemd",
                        "smtpgate-%s.service.in" % name)
    with open(path) as f:
        m = re.search(r"^RestrictAddressFamilies=(.*)$", f.read(), re.M)
    assert m, "%s: no RestrictAddressFamilies=" % path
    return ",".join(w[3:].lower() for w in m.group(1).split())


def start_restricted(g, name):
    """Starts daemon name as Gateway.start() does, under af-restrict with
    its unit's address families."""
    log = os.path.join(g.dir, name + ".log")
    with open(log, "ab") as logf:
        g.procs[name] = subprocess.Popen(
            [os.path.join(smtpgate.BUILDDIR, "tests", "tools", "af-restrict"), unit_families(name),
             smtpgate.binary(name), "-c", g.conf_path],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    g.logs[name] = log


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
