"""Privilege separation as root (issue 9 item 6, CONTRACT "Running"):
started as root, no process that reads client bytes, message content or the
database runs as uid 0 (only smtpd's master may keep root); smtpd's user
cannot read the DKIM keys, the queue or write the LMDB data file; the spool
tree has the owners and modes of spool/spool.h's header comment.
Skipped when not run as root."""
import grp
import os
import pwd
import smtplib
import socket
import stat
import subprocess
import sys

import pytest

import smtpgate
from smtpgate import Gateway, message, wait_for

pytestmark = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")

LOGIN = "priv.test@smtpgate"
SMTPD_USER = "smtpgate-smtpd"
SPOOLD_USER = "smtpgate"
DELIVERD_USER = "smtpgate"
GROUP = "smtpgate"


@pytest.fixture(scope="module")
def gw():
    g = Gateway(tls=True)
    try:
        g.start()
        g.add_account(LOGIN, ips=["127.0.0.1/32"], sandbox=True)
        key = os.path.join(g.dir, "dkim.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key],
                       check=True, capture_output=True, timeout=30)
        g.spoolctl("dkim", "add", LOGIN, "example.com", "--selector", "s1",
                   "--key", key, "--default")
        with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
            s.sendmail("sender@example.com", ["rcpt@example.net"],
                       message(frm="sender@example.com", to="rcpt@example.net"))
        g.wait_events(lambda e: e["event"] == "delivered", timeout=30,
                      what="sandbox delivery")
        yield g
    finally:
        g.close()


def uid(user):
    return pwd.getpwnam(user).pw_uid


def gid(group):
    return grp.getgrnam(group).gr_gid


def describe(p):
    return "%s[%d] uids=%s gids=%s" % (p["name"], p["pid"], p["uids"], p["gids"])


def test_only_smtpd_master_keeps_root(gw):
    root_procs = []
    for name in ("smtpd", "spoold", "deliverd"):
        procs = smtpgate.session_procs(gw.pid(name))
        assert procs, "%s: no processes found" % name
        for p in procs:
            if 0 in p["uids"] or 0 in p["gids"]:
                root_procs.append((name, p))
    allowed = [p for name, p in root_procs if name == "smtpd" and p["pid"] == gw.pid("smtpd")]
    others = [describe(p) for name, p in root_procs if p not in allowed]
    assert not others, "processes with uid/gid 0 besides smtpd's master: %s" % others


def test_daemons_run_as_their_users(gw):
    expect = {"smtpd": SMTPD_USER, "spoold": SPOOLD_USER, "deliverd": DELIVERD_USER}
    for name, user in expect.items():
        procs = [p for p in smtpgate.session_procs(gw.pid(name))
                 if not (name == "smtpd" and p["pid"] == gw.pid("smtpd"))]
        assert procs, "%s: no unprivileged process" % name
        for p in procs:
            assert p["uids"] == [uid(user)] * 4, "%s: %s" % (name, describe(p))
            assert p["gids"][0] == pwd.getpwnam(user).pw_gid, describe(p)


def test_smtpd_workers_are_chrooted_in_group(gw):
    workers = [p for p in smtpgate.session_procs(gw.pid("smtpd"))
               if p["pid"] != gw.pid("smtpd")]
    assert workers
    for p in workers:
        assert os.path.realpath(p["root"]) == os.path.realpath(gw.spool), describe(p)
        assert gid(GROUP) in p["groups"] + p["gids"], describe(p)


def test_client_connection_handled_unprivileged(gw):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as c:
        c.settimeout(10)
        assert c.recv(512).startswith(b"220")
        c.sendall(b"EHLO priv.test\r\n")
        assert c.recv(4096).startswith(b"250")
        cport = c.getsockname()[1]
        owners = wait_for(lambda: [q for q in smtpgate.socket_owners(gw.port, cport)
                                   if q != os.getpid()],
                          timeout=10, what="server side of the connection")
        for pid in owners:
            p = smtpgate.proc_info(pid)
            assert p is not None and 0 not in p["uids"], \
                "client bytes read by a root process: %s" % describe(p)
        c.sendall(b"QUIT\r\n")


def check_mode(path, mode, owner, group=None, kind=stat.S_ISDIR):
    st = os.lstat(path)
    assert kind(st.st_mode), "%s: wrong file type" % path
    assert stat.S_IMODE(st.st_mode) == mode, "%s: mode %o, want %o" % (
        path, stat.S_IMODE(st.st_mode), mode)
    assert st.st_uid == uid(owner), "%s: owner %d, want %s" % (path, st.st_uid, owner)
    if group is not None:
        assert st.st_gid == gid(group), "%s: group %d, want %s" % (path, st.st_gid, group)


def test_spool_modes(gw):
    s = gw.spool
    check_mode(os.path.join(s, "incoming", "tmp"), 0o770, SPOOLD_USER, GROUP)
    check_mode(os.path.join(s, "incoming", "new"), 0o770, SPOOLD_USER, GROUP)
    check_mode(os.path.join(s, "queue"), 0o700, SPOOLD_USER)
    check_mode(os.path.join(s, "quarantine"), 0o700, SPOOLD_USER)
    check_mode(os.path.join(s, "keys"), 0o700, DELIVERD_USER)
    check_mode(os.path.join(s, "db"), 0o750, SPOOLD_USER, GROUP)
    check_mode(os.path.join(s, "db", "data.mdb"), 0o640, SPOOLD_USER, GROUP, stat.S_ISREG)
    check_mode(os.path.join(s, "db", "lock.mdb"), 0o660, SPOOLD_USER, GROUP, stat.S_ISREG)
    check_mode(os.path.join(s, "trigger"), 0o660, SPOOLD_USER, GROUP, stat.S_ISFIFO)
    keys = os.listdir(os.path.join(s, "keys"))
    assert keys, "spoolctl dkim add copied no key into keys/"
    for k in keys:
        check_mode(os.path.join(s, "keys", k), 0o600, DELIVERD_USER, kind=stat.S_ISREG)


PROBE = r"""
import os, sys
def can(fn):
    try:
        fn()
        return "yes"
    except OSError:
        return "no"
spool = sys.argv[1]
keys = os.path.join(spool, "keys")
print("listkeys", can(lambda: os.listdir(keys)))
for k in sys.argv[2:]:
    print("readkey", can(lambda: open(os.path.join(keys, k), "rb").close()))
print("writedb", can(lambda: open(os.path.join(spool, "db", "data.mdb"), "r+b").close()))
print("readdb", can(lambda: open(os.path.join(spool, "db", "data.mdb"), "rb").close()))
print("listqueue", can(lambda: os.listdir(os.path.join(spool, "queue"))))
print("writenew", can(lambda: os.close(os.open(os.path.join(spool, "incoming", "tmp", ".probe"),
                                                os.O_CREAT | os.O_WRONLY, 0o600))))
"""


def probe(gw, user):
    keys = sorted(os.listdir(os.path.join(gw.spool, "keys")))
    r = smtpgate.run_as(user, [sys.executable, "-c", PROBE, gw.spool] + keys)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.split("\n"):
        if line:
            k, v = line.split()
            out.setdefault(k, set()).add(v)
    try:
        os.unlink(os.path.join(gw.spool, "incoming", "tmp", ".probe"))
    except FileNotFoundError:
        pass
    return out


def test_smtpd_user_cannot_read_keys_or_write_db(gw):
    p = probe(gw, SMTPD_USER)
    assert p["listkeys"] == {"no"}, "smtpd's user can list keys/"
    assert p.get("readkey", {"no"}) == {"no"}, "smtpd's user can read a DKIM key"
    assert p["writedb"] == {"no"}, "smtpd's user can write db/data.mdb"
    assert p["listqueue"] == {"no"}, "smtpd's user can list queue/"
    assert p["readdb"] == {"yes"}, "smtpd's user must read LMDB (accounts)"
    assert p["writenew"] == {"yes"}, "smtpd's user must write incoming/tmp"


def test_deliverd_user_reads_keys(gw):
    p = probe(gw, DELIVERD_USER)
    assert p["readkey"] == {"yes"}, "deliverd's user cannot read its DKIM keys"
