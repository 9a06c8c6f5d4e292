"""Privilege separation as root (issue 9 item 6, CONTRACT "Running"; issue
14 finding 5): started as root, no process that reads client bytes, message
content or the database runs as uid 0 (only smtpd's master may keep root);
smtpd's workers have no database access at all (the lookup process, as
spoold's user, answers them) and cannot read the DKIM keys, the queue or
the events; spoold files only what smtpd_user wrote, under an account the
lookup process vouched for, from its own copy; the spool tree has the
owners and modes of README's "Spool permissions". Skipped when not root."""
import grp
import json
import os
import pwd
import smtplib
import socket
import stat
import subprocess
import sys
import time

import pytest

import smtpgate
from smtpgate import Gateway, message, wait_for

pytestmark = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")

LOGIN = "priv.test@smtpgate"
SMTPD_USER = "smtpgate-smtpd"
SPOOLD_USER = "smtpgate"
DELIVERD_USER = "smtpgate"
GROUP = "smtpgate"
SMTPD_GROUP = "smtpgate-smtpd"
MAILDROP_GROUP = "smtpgate-maildrop"
PASSWORD_LOGIN = "priv.auth@smtpgate"
PASSWORD = "s3cret-priv"


@pytest.fixture(scope="module")
def gw():
    g = Gateway(tls=True)
    try:
        g.start()
        g.add_account(LOGIN, ips=["127.0.0.1/32"], sandbox=True)
        g.add_account(PASSWORD_LOGIN, password=PASSWORD, sandbox=True)
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


def quarantined(g, line):
    """spoold logs the quarantine after the file's move, its note and the
    directories' syncs: wait for the line (bounded)."""
    wait_for(lambda: line in g.log("spoold"), timeout=15, what=line)


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
    lka = smtpgate.smtpd_children(gw)[1]
    assert lka is not None, "smtpd has no lookup process"
    expect = {"smtpd": SMTPD_USER, "spoold": SPOOLD_USER, "deliverd": DELIVERD_USER}
    for name, user in expect.items():
        procs = [p for p in smtpgate.session_procs(gw.pid(name))
                 if not (name == "smtpd" and p["pid"] == gw.pid("smtpd"))]
        assert procs, "%s: no unprivileged process" % name
        for p in procs:
            want = SPOOLD_USER if p["pid"] == lka else user
            assert p["uids"] == [uid(want)] * 4, "%s: %s" % (name, describe(p))
            group = gid(SMTPD_GROUP) if want == SMTPD_USER else pwd.getpwnam(want).pw_gid
            assert p["gids"][0] == group, describe(p)


def test_smtpd_workers_are_chrooted_in_smtpd_group_only(gw):
    workers = [smtpgate.proc_info(w) for w in smtpgate.smtpd_children(gw)[0]]
    assert workers
    for p in workers:
        assert os.path.realpath(p["root"]) == os.path.realpath(gw.spool), describe(p)
        assert set(p["groups"] + p["gids"]) == {gid(SMTPD_GROUP)}, describe(p)


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
    check_mode(os.path.join(s, "incoming"), 0o750, SPOOLD_USER, SMTPD_GROUP)
    check_mode(os.path.join(s, "incoming", "tmp"), 0o770, SPOOLD_USER, SMTPD_GROUP)
    check_mode(os.path.join(s, "incoming", "new"), 0o770, SPOOLD_USER, SMTPD_GROUP)
    check_mode(os.path.join(s, "maildrop"), 0o1730, SPOOLD_USER, MAILDROP_GROUP)
    check_mode(os.path.join(s, "db", "envelope.key"), 0o600, SPOOLD_USER, kind=stat.S_ISREG)
    check_mode(gw.event_log, 0o640, SPOOLD_USER, GROUP, stat.S_ISREG)
    check_mode(os.path.join(s, "queue"), 0o700, SPOOLD_USER)
    check_mode(os.path.join(s, "quarantine"), 0o700, SPOOLD_USER)
    check_mode(os.path.join(s, "keys"), 0o700, DELIVERD_USER)
    check_mode(os.path.join(s, "db"), 0o750, SPOOLD_USER, GROUP)
    check_mode(os.path.join(s, "db", "data.mdb"), 0o640, SPOOLD_USER, GROUP, stat.S_ISREG)
    check_mode(os.path.join(s, "db", "lock.mdb"), 0o660, SPOOLD_USER, GROUP, stat.S_ISREG)
    check_mode(os.path.join(s, "db", "track.key"), 0o600, SPOOLD_USER, kind=stat.S_ISREG)
    check_mode(os.path.join(s, "trigger"), 0o660, SPOOLD_USER, GROUP, stat.S_ISFIFO)
    keys = os.listdir(os.path.join(s, "keys"))
    assert keys, "spoolctl dkim add copied no key into keys/"
    for k in keys:
        check_mode(os.path.join(s, "keys", k), 0o600, DELIVERD_USER, kind=stat.S_ISREG)


PROBE = smtpgate.PROBE_CAN + r"""
spool = sys.argv[1]
keys = os.path.join(spool, "keys")
print("listkeys", can(lambda: os.listdir(keys)))
for k in sys.argv[2:]:
    print("readkey", can(lambda: open(os.path.join(keys, k), "rb").close()))
print("writedb", can(lambda: open(os.path.join(spool, "db", "data.mdb"), "r+b").close()))
print("readdb", can(lambda: open(os.path.join(spool, "db", "data.mdb"), "rb").close()))
print("listqueue", can(lambda: os.listdir(os.path.join(spool, "queue"))))
print("writelock", can(lambda: open(os.path.join(spool, "db", "lock.mdb"), "r+b").close()))
print("readevents", can(lambda: open(os.path.join(spool, "events.jsonl"), "rb").close()))
print("readtagkey", can(lambda: open(os.path.join(spool, "db", "envelope.key"), "rb").close()))
print("writemaildrop", can(lambda: os.close(os.open(os.path.join(spool, "maildrop", ".probe"),
                                                    os.O_CREAT | os.O_WRONLY, 0o600))))
print("writenew", can(lambda: os.close(os.open(os.path.join(spool, "incoming", "tmp", ".probe"),
                                                os.O_CREAT | os.O_WRONLY, 0o600))))
"""


def probe_run(gw, run):
    """PROBE run by run(argv) on gw's spool: {check: {"yes"/"no", ...}}.
    Removes the files it created."""
    keys = sorted(os.listdir(os.path.join(gw.spool, "keys")))
    r = run([sys.executable, "-c", PROBE, gw.spool] + keys)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.split("\n"):
        if line:
            k, v = line.split()
            out.setdefault(k, set()).add(v)
    for d in ("incoming/tmp", "maildrop"):
        try:
            os.unlink(os.path.join(gw.spool, d, ".probe"))
        except FileNotFoundError:
            pass
    return out


def probe(gw, user):
    return probe_run(gw, lambda argv: smtpgate.run_as(user, argv))


def as_worker(gw, argv, **kw):
    """Runs argv with the credentials a running smtpd worker has (uid, gid,
    supplementary groups, from /proc), without its chroot."""
    w = smtpgate.proc_info(smtpgate.smtpd_children(gw)[0][0])
    return subprocess.run(argv, user=w["uids"][0], group=w["gids"][0],
                          extra_groups=w["groups"], capture_output=True, text=True,
                          timeout=30, **kw)


def test_smtpd_worker_cannot_reach_keys_db_or_events(gw):
    p = probe_run(gw, lambda argv: as_worker(gw, argv))
    assert p["listkeys"] == {"no"}, "smtpd's user can list keys/"
    assert p.get("readkey", {"no"}) == {"no"}, "smtpd's user can read a DKIM key"
    assert p["writedb"] == {"no"}, "smtpd's user can write db/data.mdb"
    assert p["listqueue"] == {"no"}, "smtpd's user can list queue/"
    assert p["readdb"] == {"no"}, "smtpd's user can read the password hashes"
    assert p["writelock"] == {"no"}, "smtpd's user can write lock.mdb"
    assert p["readevents"] == {"no"}, "smtpd's user can read the events"
    assert p["readtagkey"] == {"no"}, "smtpd's user can read the envelope key"
    assert p["writemaildrop"] == {"no"}, "smtpd's user can write maildrop/"
    assert p["writenew"] == {"yes"}, "smtpd's user must write incoming/tmp"


def test_smtpd_worker_open_data_mdb_is_eacces(gw):
    r = as_worker(gw, [sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')",
                       os.path.join(gw.spool, "db", "data.mdb")])
    assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr


def test_workers_hold_no_database_descriptor(gw):
    """A worker that served pinned and AUTH sessions has nothing of db/ open
    (the lookup process, spoold's user, has)."""
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo("priv.test")
        s.starttls(context=smtpgate.tls_ctx())
        s.login(PASSWORD_LOGIN, PASSWORD)
    workers, lka = smtpgate.smtpd_children(gw)
    db = os.path.realpath(os.path.join(gw.spool, "db"))
    held = {}
    for pid in workers + ([lka] if lka else []):
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            # a chrooted worker's links read relative to its root: match both
            if "/db/" in target or target.startswith(db) or target.endswith(".mdb"):
                held.setdefault(pid, []).append(target)
    assert not [p for p in workers if p in held], "workers hold db/ files: %s" % held
    assert lka in held, "the lookup process holds no db/ file: nothing was looked up?"


def test_auth_and_pinning_through_the_lookup_process(gw):
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:   # pinned
        s.sendmail("sender@example.com", ["pin@example.net"],
                   message(frm="sender@example.com", to="pin@example.net"))
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo("priv.test")
        s.starttls(context=smtpgate.tls_ctx())
        s.ehlo("priv.test")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(PASSWORD_LOGIN, "wrong")
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo("priv.test")
        s.starttls(context=smtpgate.tls_ctx())
        s.ehlo("priv.test")
        s.login(PASSWORD_LOGIN, PASSWORD)
        s.sendmail("sender@example.com", ["auth@example.net"],
                   message(frm="sender@example.com", to="auth@example.net"))
    for rcpt, acct in (("pin@example.net", LOGIN), ("auth@example.net", PASSWORD_LOGIN)):
        ev = gw.wait_events(lambda e, r=rcpt: e.get("to") == r and e["event"] == "delivered",
                            timeout=30, what="delivered to %s" % rcpt)[0]
        assert ev["account"] == acct


def test_deliverd_user_reads_keys(gw):
    p = probe(gw, DELIVERD_USER)
    assert p["readkey"] == {"yes"}, "deliverd's user cannot read its DKIM keys"


# ---- what smtpd_user can make spoold do (issue 14 finding 5)

WRITER = r"""
import os, sys, time
spool, q, mode = sys.argv[1:4]
data = sys.stdin.buffer.read()
tmp = os.path.join(spool, "incoming", "tmp", q)
new = os.path.join(spool, "incoming", "new", q)
fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, data)
os.fsync(fd)
if mode == "link":
    os.link(tmp, new)            # and keep incoming/tmp/q: a second link
else:
    os.rename(tmp, new)
if mode == "keepfd":             # change the message once spoold took it
    end = time.time() + 20
    while os.path.exists(new) and time.time() < end:
        time.sleep(0.02)
    os.pwrite(fd, data.replace(b"ORIGINAL", b"EVIL!!!!"), 0)
    os.fsync(fd)
print("done")
"""

VICTIM, ATTACKER = "victim@priv.test", "attacker@priv.test"


@pytest.fixture(scope="module")
def held():
    """spoold alone (nothing delivers): what it files stays in queue/."""
    g = Gateway(tls=False)
    try:
        g.start("spoold")
        g.add_account(VICTIM)
        g.add_account(ATTACKER)
        yield g
    finally:
        g.close()


_seq = [0]


def write_as_smtpd(g, account, tag, mode="rename"):
    """Writes a message file into incoming/new as smtpd_user would; its QID."""
    _seq[0] += 1
    q = "%013X%07X" % (time.time_ns() // 1000, (os.getpid() << 8 | _seq[0]) & 0xFFFFFFF)
    data = smtpgate.smtpd_envelope(q, account, ["rcpt@example.net"], tag=tag) + \
        message(subject="ORIGINAL")
    r = smtpgate.run_as(SMTPD_USER, [sys.executable, "-c", WRITER, g.spool, q, mode],
                        input=data.decode(), only_group=SMTPD_GROUP)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    return q


def settled(g, q):
    wait_for(lambda: q not in g.files("new"), 20, what="spoold took %s" % q)
    return q in g.files("queue"), q in g.files("quarantine")


def test_forged_account_from_smtpd_user_is_refused(held):
    """A worker that authenticated as ATTACKER (it has that tag) writes an
    envelope claiming VICTIM: spoold must not file it under VICTIM."""
    q1 = write_as_smtpd(held, VICTIM, smtpgate.envelope_tag(held, ATTACKER))
    q2 = write_as_smtpd(held, VICTIM, "")
    for q in (q1, q2):
        assert settled(held, q) == (False, True), "%s was filed" % q
        quarantined(held, "%s: quarantined, reason=account not authenticated (%s)"
                    % (q, VICTIM))
        r = held.spoolctl("show", q, "--json", check=False)
        assert r.returncode != 0, "%s is in the database: %s" % (q, r.stdout)
    ok = write_as_smtpd(held, ATTACKER, smtpgate.envelope_tag(held, ATTACKER))
    assert settled(held, ok) == (True, False)
    assert json.loads(held.spoolctl("show", ok, "--json").stdout)["account"] == ATTACKER


def test_hard_linked_file_is_refused(held):
    q = write_as_smtpd(held, ATTACKER, smtpgate.envelope_tag(held, ATTACKER), mode="link")
    try:
        assert settled(held, q) == (False, True)
        quarantined(held, "%s: quarantined, reason=more than one link" % q)
    finally:
        os.unlink(os.path.join(held.spool, "incoming", "tmp", q))


def test_writer_cannot_change_a_filed_message(held):
    """The writer keeps its descriptor and rewrites the file after spoold
    took it: what is queued (and delivered) is what spoold validated."""
    q = write_as_smtpd(held, ATTACKER, smtpgate.envelope_tag(held, ATTACKER), mode="keepfd")
    assert settled(held, q) == (True, False)
    with open(os.path.join(held.spool, "queue", q), "rb") as f:
        data = f.read()
    assert b"ORIGINAL" in data and b"EVIL" not in data
    st = os.stat(os.path.join(held.spool, "queue", q))
    assert st.st_uid == uid(SPOOLD_USER) and st.st_nlink == 1


def test_other_owner_is_refused(held):
    """A file in incoming/new that smtpd_user did not write (here root's)."""
    q = "%013X%07X" % (time.time_ns() // 1000, 0xABCDEF)
    tmp = os.path.join(held.spool, "incoming", "tmp", q)
    with open(tmp, "wb") as f:
        f.write(smtpgate.smtpd_envelope(q, ATTACKER, ["r@example.net"],
                                        tag=smtpgate.envelope_tag(held, ATTACKER)) + message())
    os.rename(tmp, os.path.join(held.spool, "incoming", "new", q))
    assert settled(held, q) == (False, True)
    quarantined(held, "%s: quarantined, reason=not written by smtpd" % q)
