"""Root never follows what the daemon user planted (issue 14 item 1).

The daemon user (smtpgate) owns spool_dir and everything below it, so it can
replace any entry by a symbolic link. Root runs spool_tree_create at every
daemon start and every root spoolctl, and spoolctl dkim add copies keys in as
root: none of that may change a file or directory the link points to. Each
case plants a link to a root-owned canary as the daemon user, runs the
program as root, and checks that the canary kept its owner, mode and content
and that one line names the refused path. Skipped when not run as root.
"""
import os
import pwd
import stat
import subprocess

import pytest

import smtpgate
from smtpgate import Gateway, binary, run_as

pytestmark = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")

DAEMON_USER = "smtpgate"
LOGIN = "sym.test@smtpgate"
KEYNAME = "sym.test@smtpgate_example.com_s1.pem"


@pytest.fixture
def gw():
    g = Gateway(tls=False)
    try:
        g.spoolctl("queue")         # as root: the tree, the database, the event log
        yield g
    finally:
        g.close()


def canary(g, kind):
    """A root-owned file (0640, with content) or directory (0700, one entry)
    outside the spool, where the daemon user may not write."""
    path = os.path.join(g.dir, "canary-" + kind)
    if kind == "dir":
        os.mkdir(path, 0o700)
        with open(os.path.join(path, "inside"), "w") as f:
            f.write("root's\n")
    else:
        with open(path, "w") as f:
            f.write("root's secret\n")
    os.chown(path, 0, 0)
    os.chmod(path, 0o700 if kind == "dir" else 0o640)
    return path


def snapshot(path):
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        content = sorted(os.listdir(path))
    else:
        with open(path, "rb") as f:
            content = f.read()
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), content)


def plant(g, rel, target):
    """As the daemon user: move spool/rel aside (if there) and put a symbolic
    link to target in its place."""
    path = os.path.join(g.spool, rel)
    script = 'if [ -e "$1" ] || [ -L "$1" ]; then mv "$1" "$1.moved"; fi; ln -s "$2" "$1"'
    r = run_as(DAEMON_USER, ["sh", "-c", script, "sh", path, target])
    assert r.returncode == 0, r.stderr
    assert os.path.islink(path)
    return path


def refused(text, path):
    return "refusing %s" % path in text


FILES = ["events.jsonl", "db/data.mdb", "db/lock.mdb", "trigger"]
DIRS = ["incoming", "incoming/tmp", "incoming/new", "queue", "quarantine", "keys", "db"]


@pytest.mark.parametrize("rel", FILES + DIRS)
def test_root_spoolctl_refuses_planted_link(gw, rel):
    target = canary(gw, "dir" if rel in DIRS else "file")
    before = snapshot(target)
    path = plant(gw, rel, target)
    r = gw.spoolctl("queue", check=False)
    assert snapshot(target) == before, "root changed %s through %s" % (target, path)
    assert r.returncode != 0, "spoolctl went on over a planted link: %s" % r.stdout
    assert refused(r.stderr, path), r.stderr
    assert len([line for line in r.stderr.splitlines() if "refusing" in line]) == 1, r.stderr


def run_daemon_until_exit(g, name, timeout=15):
    """Starts a daemon as root; its exit status and log (it is killed and the
    test fails if it is still running after timeout)."""
    logpath = os.path.join(g.dir, name + ".log")
    with open(logpath, "ab") as logf:
        p = subprocess.Popen([binary(name), "-c", g.conf_path], stdout=logf,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait(timeout=5)
        rc = None
    with open(logpath, errors="replace") as f:
        return rc, f.read()


@pytest.mark.parametrize("name", ["spoold", "deliverd", "smtpd"])
@pytest.mark.parametrize("rel", ["events.jsonl", "db/lock.mdb"])
def test_root_daemon_refuses_planted_link(gw, name, rel):
    target = canary(gw, "file")
    before = snapshot(target)
    path = plant(gw, rel, target)
    rc, log = run_daemon_until_exit(gw, name)
    assert snapshot(target) == before, "%s as root changed %s through %s" % (name, target, path)
    assert rc not in (None, 0), "%s kept running over a planted link: %s" % (name, log)
    assert refused(log, path), log


def test_event_log_hard_link_refused(gw):
    """A second name for a root-owned file (possible where
    fs.protected_hardlinks is off) is not given away either: the daemon
    user cannot make the link, so root makes it on its behalf here."""
    target = canary(gw, "file")
    os.unlink(gw.event_log)
    os.link(target, gw.event_log)
    before = snapshot(target)
    r = gw.spoolctl("queue", check=False)
    assert snapshot(target) == before
    assert r.returncode != 0 and refused(r.stderr, gw.event_log), r.stderr


def dkim_key(g):
    """The account and a key file; spoolctl dkim add is run by the test."""
    g.add_account(LOGIN)
    key = os.path.join(g.dir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key],
                   check=True, capture_output=True, timeout=30)
    return key


def dkim_add(g, key):
    return g.spoolctl("dkim", "add", LOGIN, "example.com", "--selector", "s1",
                      "--key", key, check=False)


def test_dkim_copy_does_not_follow_planted_temp_file(gw):
    """The old copy wrote keys/.NAME.tmp with O_TRUNC and then chowned
    keys/NAME: both followed a link the daemon user put there."""
    key = dkim_key(gw)
    target = canary(gw, "file")
    before = snapshot(target)
    plant(gw, "keys/." + KEYNAME + ".tmp", target)
    r = dkim_add(gw, key)
    assert snapshot(target) == before, "the key copy wrote or chowned %s" % target
    assert r.returncode == 0, r.stderr
    key = os.path.join(gw.spool, "keys", KEYNAME)
    st = os.lstat(key)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == pwd.getpwnam(DAEMON_USER).pw_uid


def test_dkim_copy_refuses_planted_keys_dir(gw):
    key = dkim_key(gw)
    target = canary(gw, "dir")
    before = snapshot(target)
    path = plant(gw, "keys", target)
    r = dkim_add(gw, key)
    assert snapshot(target) == before, "a key was written into %s" % target
    assert r.returncode != 0 and refused(r.stderr, path), r.stderr


def test_tree_still_made_and_fixed_as_root(gw):
    """The refusals do not get in the way of the ordinary case: a missing
    directory is made again and a wrong mode is fixed, as before."""
    os.rmdir(os.path.join(gw.spool, "quarantine"))
    os.chmod(os.path.join(gw.spool, "db", "data.mdb"), 0o600)
    os.chown(gw.event_log, 0, 0)
    gw.spoolctl("queue")
    uid = pwd.getpwnam(DAEMON_USER).pw_uid
    st = os.lstat(os.path.join(gw.spool, "quarantine"))
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == uid
    st = os.lstat(os.path.join(gw.spool, "db", "data.mdb"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == uid
    assert os.lstat(gw.event_log).st_uid == uid


def test_foreign_owner_refused(gw):
    """An entry that belongs to neither root nor a daemon user is not
    given away to the daemon user either."""
    path = os.path.join(gw.spool, "quarantine")
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(path, nobody, -1)
    r = gw.spoolctl("queue", check=False)
    assert os.lstat(path).st_uid == nobody
    assert r.returncode != 0 and refused(r.stderr, path) and "uid %d" % nobody in r.stderr, \
        r.stderr
