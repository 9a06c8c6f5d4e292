"""trackd's privilege split (issue 16 with issue 14's model): the process
that runs libmicrohttpd runs as trackd_http_user (smtpgate-trackd), in an
empty chroot, with no descriptor or mapping of the database or the
tracking key, and cannot open them; the backend (trackd_user) answers it
over sockets. A backend that dies or stalls makes trackd answer 503 and
exit 1; a garbled message to the backend is refused with a log line and
no crash. Real binaries on 127.0.0.1; every wait bounded.
"""
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import threading
import time

import pytest

import smtpgate
from smtpgate import PROBE_CAN, run_as, wait_for
from test_trackd import fake_qid, gateway, request, seed, start_trackd

root_only = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root (privilege drop)")


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


@root_only
def test_http_process_has_no_database_and_no_key():
    """The HTTP process: smtpgate-trackd with its own group only, chrooted
    into a directory that no longer exists, no descriptor or mapping of
    anything under spool_dir (data.mdb, lock.mdb, track.key), and as its
    uid data.mdb and track.key cannot be opened. The backend, as
    smtpgate, is the one with data.mdb mapped."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        seed(g, fake_qid(), ["p@dest.test"])    # track.key exists now
        procs = smtpgate.trackd_procs(g)
        http, backend = procs["http"], procs["backend"]
        pw = pwd.getpwnam("smtpgate-trackd")
        assert http["uids"] == [pw.pw_uid] * 4, http
        assert http["gids"] == [pw.pw_gid] * 4 and http["groups"] == [pw.pw_gid], http
        assert http["root"] != "/" and http["root"].endswith("(deleted)"), http["root"]
        assert backend["uids"] == [pwd.getpwnam("smtpgate").pw_uid] * 4, backend

        spool = os.path.realpath(g.spool)
        assert not [t for t in fd_targets(http["pid"]) if t.startswith(spool)], \
            fd_targets(http["pid"])
        m = maps(http["pid"])
        for name in ("data.mdb", "lock.mdb", "track.key", spool):
            assert name not in m, name
        assert "data.mdb" in maps(backend["pid"]), "the backend reads the database"

        db = os.path.join(g.spool, "db")
        probe = PROBE_CAN + "print(can(lambda: open(%r, 'rb')), can(lambda: open(%r, 'rb')))" % (
            os.path.join(db, "data.mdb"), os.path.join(db, "track.key"))
        r = run_as("smtpgate-trackd", ["/usr/bin/python3", "-c", probe],
                   only_group="smtpgate-trackd")
        assert r.stdout.split() == ["no", "no"], r
        # it still does its job: a hit goes through the backend
        tok = seed(g, fake_qid(), ["q@dest.test"])
        assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        g.wait_events(lambda e: e["event"] == "opened", what="the open")


@root_only
def test_track_key_is_readable_by_its_owner_only():
    """db/track.key is 0600 smtpgate (spoold_user, whom deliverd and
    trackd's backend run as: they write the database), no longer readable
    by group smtpgate (spoolctl's read-only operators could forge opens,
    clicks and unsubscribes with it), while that group still reads the
    database; trackd still verifies tokens with it."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        key = os.path.join(g.spool, "db", "track.key")
        st = os.stat(key)
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, pwd.getpwnam("smtpgate").pw_uid)
        probe = PROBE_CAN + "print(can(lambda: open(%r, 'rb')), can(lambda: open(%r, 'rb')))" % (
            os.path.join(g.spool, "db", "data.mdb"), key)
        r = run_as("nobody", ["/usr/bin/python3", "-c", probe], only_group="smtpgate")
        assert r.stdout.split() == ["yes", "no"], r
        tok = seed(g, fake_qid(), ["n@dest.test"])
        assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200
        g.wait_events(lambda e: e["event"] == "opened", what="the open")


@root_only
def test_track_key_mode_fixed_on_an_older_spool():
    """A spool from before (track.key 0640 group smtpgate): the next start
    makes it 0600, and the key (the tokens already sent) stays the same."""
    with gateway() as g:
        g.start("spoold")
        key = os.path.join(g.spool, "db", "track.key")
        wait_for(lambda: os.path.exists(key), 10, what="track.key")
        g.stop("spoold")
        with open(key, "rb") as f:
            before = f.read()
        os.chmod(key, 0o640)
        g.start("spoold")
        start_trackd(g)
        assert os.stat(key).st_mode & 0o777 == 0o600
        with open(key, "rb") as f:
            assert f.read() == before
        tok = seed(g, fake_qid(), ["m@dest.test"])
        assert request(g, "GET", "/o/" + tok["open"][0])[0] == 200


def test_backend_killed_stops_trackd():
    """SIGKILL to the backend: no request gets a 200 any more (503 or a
    closed connection), trackd logs it and exits 1, and the committer,
    seeing its pipe close, commits and exits too."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(), ["k@dest.test"])
        procs = smtpgate.trackd_procs(g)
        os.kill(procs["backend"]["pid"], signal.SIGKILL)
        try:
            st = request(g, "GET", "/o/" + tok["open"][0])[0]
            assert st == 503, st
        except OSError:
            pass    # already gone: the connection is refused or closed
        assert g.procs["trackd"].wait(timeout=15) == 1
        wait_for(lambda: smtpgate.proc_info(procs["commit"]["pid"]) is None, 15,
                 what="the committer's exit")
        assert "backend (pid %d) exited" % procs["backend"]["pid"] in g.log("trackd")


def test_backend_stalled_gets_503_and_trackd_exits():
    """A backend that does not answer (SIGSTOP): the request gets a 503
    after the round-trip timeout (5 s), one log line, and trackd exits 1
    for systemd to restart it."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(), ["s@dest.test"])
        backend = smtpgate.trackd_procs(g)["backend"]["pid"]
        os.kill(backend, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            st, _, body = request(g, "GET", "/o/" + tok["open"][0])
            assert st == 503 and b"Service Unavailable" in body
            assert 3 < time.monotonic() - t0 < 9.5
            assert g.procs["trackd"].wait(timeout=15) == 1
            assert "no answer in 5000 ms: 503" in g.log("trackd")
        finally:
            os.kill(backend, signal.SIGCONT)


def http_channels(pid):
    """The HTTP process's ends of its SOCK_SEQPACKET sockets to the
    backend (fd numbers)."""
    inodes = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[4] == "0005":      # SOCK_SEQPACKET
                inodes.add("socket:[%s]" % p[6])
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                out.append(int(fd))
        except OSError:
            pass
    return sorted(out)


def steal_fd(pid, fd):
    """A copy of process pid's descriptor fd (pidfd_getfd(2), root), or
    None where the kernel or its filters refuse."""
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


@root_only
@pytest.mark.parametrize("garbage", [
    b"\x01\x01\xff\xff\x00\x00\x00\x01o",                   # length beyond the datagram
    b"\x01\x01\x00\x07\x00\x00\x00\x01o\x00\x01\x00\x00\x00/",  # a '/' for a token
    b"\x01\x81" + b"\x00" * 6,                               # a reply type
    b"\x01\x01\x00\x00" + b"A" * 70000,                      # far too long
], ids=["length", "slash", "reply-type", "too-long"])
def test_garbage_to_the_backend_is_refused(garbage):
    """A message the HTTP process could send if it were taken over, written
    on its own socket to the backend: the backend logs one line, closes
    the HTTP process's sockets, lets the committer commit and exits 0 (no
    crash); trackd exits 1 for a restart. An acknowledged unsubscribe
    from before is still there."""
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(), ["u@dest.test"])
        assert request(g, "POST", "/u/" + tok["unsub"][0], body=b"List-Unsubscribe=One-Click")[0] == 200
        http = g.pid("trackd")
        chans = http_channels(http)
        assert len(chans) >= 2, chans       # one per thread and the control socket
        fd = steal_fd(http, chans[0])
        if fd is None:
            pytest.skip("pidfd_getfd refused here")
        s = socket.socket(fileno=fd)
        try:
            try:
                s.send(garbage)
            except OSError:
                assert len(garbage) > 65536     # too long for the socket: refused at once
                return
        finally:
            s.close()
        assert g.procs["trackd"].wait(timeout=15) == 1
        log = g.log("trackd")
        assert "backend: bad message from the HTTP process" in log, log
        assert "exited with status 0x0" in log and "everything committed" in log, log
        assert "u@dest.test" in g.spoolctl("stoplist", "list", "acc").stdout


def test_concurrent_hits_do_not_mix_answers():
    """Many clients at once over several threads' sockets: every answer is
    its own request's (a click's Location is its link, an open a GIF)."""
    links = ["https://a.example/%d" % i for i in range(8)]
    with gateway() as g:
        g.start("spoold")
        start_trackd(g)
        tok = seed(g, fake_qid(3600), ["c@dest.test"], links=links)
        errors = []

        def worker(n):
            for i in range(30):
                k = (n + i) % len(links)
                st, h, body = request(g, "GET", "/c/" + tok["click"][0][k])
                if st != 302 or h.get("location") != links[k]:
                    errors.append((st, h.get("location"), links[k]))
                st, h, body = request(g, "GET", "/o/" + tok["open"][0])
                if st != 200 or not body.startswith(b"GIF89a"):
                    errors.append((st, body[:10]))

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errors, errors[:5]


@root_only
@pytest.mark.parametrize("user", ["smtpgate", "no-such-user-sg"])
def test_http_user_must_be_its_own(user):
    """trackd_http_user the same as trackd_user (the database's), or a
    user that does not exist: exit 2, one line naming the file and the key
    (a split between two processes of one user would give nothing)."""
    with gateway() as g:
        g.conf["trackd_http_user"] = user
        g.write_conf()
        r = subprocess.run([smtpgate.binary("trackd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r.stderr
        assert "trackd_http_user" in r.stderr and g.conf_path in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert ("needs a user and group of its own" if user == "smtpgate" else
                'unknown user "%s"' % user) in r.stderr, r.stderr
