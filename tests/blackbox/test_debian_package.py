"""The Debian package (issue 18 item 6): debian/ builds with
`dpkg-buildpackage -us -uc -b` from a clean copy of the tracked sources,
lintian finds nothing beyond debian/smtpgate.lintian-overrides, and the
package installs with `apt-get install ./smtpgate_*.deb` on this machine,
runs from the installed paths, is removed and then purged as Debian policy
says, and never touches /usr/sbin/sendmail.

It changes the machine (installs, removes and purges the package smtpgate),
so it runs only with SMTPGATE_DEB_TEST=1 (contrib/run-tests sets it as
root: CI is a fresh Debian 12), as root, with dpkg-buildpackage installed,
and never where smtpgate is already installed or /etc/smtpgate or
/var/spool/smtpgate exist: those are not the test's to purge.
"""
import glob
import grp
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

import peers
import smtpgate
from smtpgate import IS_ROOT, SRCDIR, Gateway, ensure_users, message, smtp_send, wait_for

PKG = "smtpgate"
CONF = "/etc/smtpgate/smtpgate.conf"
SPOOL = "/var/spool/smtpgate"
SENDMAIL = "/usr/sbin/smtpgate-sendmail"
INSTALLED = {
    "smtpd": "/usr/libexec/smtpgate/smtpd",
    "spoold": "/usr/libexec/smtpgate/spoold",
    "deliverd": "/usr/libexec/smtpgate/deliverd",
    "spoolctl": "/usr/sbin/spoolctl",
    "sendmail": SENDMAIL,
}
UNITS = ("smtpgate.target", "smtpgate-smtpd.service", "smtpgate-spoold.service",
         "smtpgate-deliverd.service")
USERS = ("smtpgate", "smtpgate-smtpd")
GROUPS = ("smtpgate", "smtpgate-smtpd", "smtpgate-maildrop")
# what another MTA (or the administrator) owns: the package never touches it
SYSTEM_MTA = ("/usr/sbin/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases",
              "/usr/lib/sendmail")
# bounds: building on 2 shared cores, apt-get with its triggers (man-db)
BUILD_TIMEOUT = 900
APT_TIMEOUT = 300
TIMINGS = {}


def pkg_status():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", PKG],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.strip() if r.returncode == 0 else ""


def skip_reason():
    if os.environ.get("SMTPGATE_DEB_TEST") != "1":
        return ("builds, installs and purges the Debian package on this machine: "
                "set SMTPGATE_DEB_TEST=1 (contrib/run-tests does as root)")
    if not IS_ROOT:
        return "needs root (apt-get install and purge)"
    for tool in ("dpkg-buildpackage", "apt-get", "git"):
        if shutil.which(tool) is None:
            return "%s not found (contrib/install-deps with SMTPGATE_DEB_TEST=1)" % tool
    if pkg_status() not in ("", "un", "pn"):
        return "the package smtpgate is installed here (%s): not the test's to purge" % (
            pkg_status())
    for p in ("/etc/smtpgate", SPOOL):
        if os.path.lexists(p):
            return "%s exists: not the test's to purge" % p
    return None


def timed(name, argv, timeout, **kw):
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    TIMINGS[name] = time.monotonic() - t0
    assert r.returncode == 0, "%s: exit %d\n%s%s" % (
        " ".join(argv), r.returncode, r.stdout[-4000:], r.stderr[-4000:])
    return r


def copy_tracked(dest):
    """The files git tracks, as they are in the working tree (what is being
    tested, uncommitted edits included), nothing generated."""
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", SRCDIR, "ls-files", "-z"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        pytest.fail("git ls-files in %s: %s" % (SRCDIR, r.stderr.decode()))
    for rel in r.stdout.decode().split("\0"):
        src = os.path.join(SRCDIR, rel)
        if not rel or not os.path.lexists(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


def build_env():
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2", LC_ALL="C.UTF-8")
    # make check's jobserver and variables must not reach the package build
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"):
        env.pop(k, None)
    return env


@pytest.fixture(scope="module")
def built():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    top = tempfile.mkdtemp(prefix="sgdeb-")
    os.chmod(top, 0o755)
    try:
        src = os.path.join(top, "smtpgate")
        copy_tracked(src)
        timed("build", ["dpkg-buildpackage", "-us", "-uc", "-b"], BUILD_TIMEOUT,
              cwd=src, env=build_env())
        debs = sorted(glob.glob(os.path.join(top, "*.deb")))
        yield top, debs
    finally:
        print("timings (s): %s" % ", ".join("%s %.1f" % kv for kv in TIMINGS.items()))
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(top, ignore_errors=True)


def the_deb(debs):
    main = [d for d in debs if os.path.basename(d).startswith(PKG + "_")]
    assert len(main) == 1, debs
    return main[0]


def test_builds_smtpgate_and_dbgsym(built):
    top, debs = built
    names = sorted(os.path.basename(d).split("_")[0] for d in debs)
    assert names == [PKG, PKG + "-dbgsym"], debs
    listing = subprocess.run(["dpkg-deb", "-c", the_deb(debs)], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for p in list(INSTALLED.values()) + [CONF, "/usr/lib/sysusers.d/smtpgate.conf",
                                         "/usr/lib/tmpfiles.d/smtpgate.conf"]:
        assert p in paths, "%s not in the package" % p
    for u in UNITS:
        assert "/lib/systemd/system/" + u in paths
    for p in SYSTEM_MTA:
        assert p not in paths, "the package must not ship %s" % p
    # nothing set-id in the archive: the setgid bit comes from dpkg-statoverride
    modes = [line.split()[0] for line in listing.splitlines()]
    assert not [m for m in modes if "s" in m or "S" in m], listing
    control = subprocess.run(["dpkg-deb", "-f", the_deb(debs), "Depends", "Provides",
                              "Conflicts"], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    assert "mail-transport-agent" not in control, control


def test_lintian_clean_but_for_the_overrides(built):
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed (contrib/install-deps with SMTPGATE_DEB_TEST=1)")
    top, debs = built
    r = subprocess.run(["lintian", "--fail-on", "error,warning", "--no-tag-display-limit"]
                       + debs, capture_output=True, text=True, timeout=300)
    tags = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert r.returncode == 0 and tags == [], r.stdout + r.stderr


def mta_state():
    """/usr/sbin/sendmail and friends (what they are and point to, a hash of
    their content), the diversions and the alternatives."""
    state = {}
    for p in SYSTEM_MTA:
        if os.path.lexists(p):
            h = None
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            state[p] = (os.path.islink(p) and os.readlink(p), os.path.realpath(p), h)
    state["divert"] = subprocess.run(["dpkg-divert", "--list"], capture_output=True,
                                     text=True, timeout=60).stdout
    state["alternatives"] = sorted(os.listdir("/var/lib/dpkg/alternatives"))
    return state


def apt(name, *args, cwd=None):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return timed(name, ["apt-get", "-y", "-q"] + list(args), APT_TIMEOUT, env=env, cwd=cwd)


def smtpgate_names(*dirs):
    """Every file or directory named after smtpgate under dirs."""
    found = []
    for d in dirs:
        for root, subdirs, files in os.walk(d):
            found += [os.path.join(root, f) for f in files + subdirs if "smtpgate" in f]
    return found


def enabled_units():
    """The symlinks under /etc/systemd that enable an smtpgate unit."""
    return smtpgate_names("/etc/systemd")


def installed_daemons():
    """PIDs of processes running a program of the package."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink("/proc/%s/exe" % pid)
        except OSError:
            continue
        if exe.startswith("/usr/libexec/smtpgate/") or exe.startswith(SENDMAIL):
            pids.append(int(pid))
    return pids


def check_installed():
    assert pkg_status() == "ii", pkg_status()
    for p in INSTALLED.values():
        assert os.access(p, os.X_OK), p
    conffiles = subprocess.run(["dpkg-query", "-W", "-f", "${Conffiles}", PKG],
                               capture_output=True, text=True, timeout=60).stdout
    assert CONF in conffiles.split(), conffiles
    # the conffile is the sample: the defaults, and it loads (-bi: just that)
    r = subprocess.run([SENDMAIL, "-bi"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for u in USERS:
        pwd.getpwnam(u)
    for g in GROUPS:
        grp.getgrnam(g)
    st = os.stat(SPOOL)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pwd.getpwnam("smtpgate").pw_uid, 0o755)
    st = os.stat(SENDMAIL)
    assert st.st_mode & stat.S_ISGID and st.st_gid == grp.getgrnam("smtpgate-maildrop").gr_gid
    for u in UNITS:
        assert os.path.isfile("/lib/systemd/system/" + u)
    assert enabled_units() == [], "a unit was enabled"
    assert installed_daemons() == [], "a daemon was started"


def run_installed(mx):
    """The daemons from the installed paths, with the test's configuration
    in /etc/smtpgate/smtpgate.conf (loopback ports, the package's spool): a
    message over SMTP and one through the setgid injector run as nobody
    reach the sink."""
    g = Gateway(tls=False, port_tls="none", extra={
        "relayhost": "127.0.0.1:%d" % mx.port, "retry_schedule": "1h",
        "spool_dir": SPOOL, "sendmail_account": "acc"})
    try:
        g.spool, g.conf_path = SPOOL, CONF
        g.write_conf()
        g.add_account("acc", ips=["127.0.0.1/32"])
        g.start()
        smtp_send(g, ["rcpt@example.net"], msg=message(to="rcpt@example.net"))
        mx.wait_received(1, timeout=60, rcpt="rcpt@example.net")
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", SENDMAIL, "-f", "nobody@example.com",
                            "local@example.net"],
                           input=message(to="local@example.net").decode(),
                           capture_output=True, text=True, timeout=60, cwd="/")
        assert r.returncode == 0, r.stderr
        mx.wait_received(1, timeout=60, rcpt="local@example.net")
        wait_for(lambda: len([e for e in g.events() if e["event"] == "delivered"]) == 2,
                 timeout=60, what="two delivered events in the package's spool")
        g.stop()
    finally:
        g.close()


def test_install_run_remove_purge(built, monkeypatch):
    top, debs = built
    before = mta_state()
    # The other tests of this run create the users their way (the harness's
    # ensure_users), and whichever test comes first wins: do it now, so the
    # run does not depend on the order. The package's systemd-sysusers then
    # keeps them; test_contrib.py shows what it creates on an empty root.
    ensure_users()
    monkeypatch.setattr(smtpgate, "binary", lambda name: INSTALLED[name])
    installed = False
    try:
        apt("install", "install", "./" + os.path.basename(the_deb(debs)), cwd=top)
        installed = True
        files = subprocess.run(["dpkg", "-L", PKG], capture_output=True, text=True,
                               timeout=60, check=True).stdout.split("\n")
        check_installed()
        with peers.Mx() as mx:
            run_installed(mx)
        wait_for(lambda: installed_daemons() == [], timeout=30, what="the daemons to exit")
        assert mta_state() == before

        # remove: the programs go, the configuration and the spool stay
        apt("remove", "remove", PKG)
        assert pkg_status() == "rc", pkg_status()
        assert not any(os.path.exists(p) for p in INSTALLED.values())
        assert os.path.isfile(CONF) and os.path.isdir(os.path.join(SPOOL, "db"))

        # purge: the configuration (edited: the test's), the spool, the
        # statoverride and the units' state go; the users stay
        apt("purge", "purge", PKG)
        installed = False
        assert pkg_status() in ("", "un", "pn"), pkg_status()
        left = [f for f in files if f and not os.path.isdir(f) and os.path.lexists(f)]
        assert left == [], left
        for d in ("/etc/smtpgate", SPOOL, "/usr/libexec/smtpgate"):
            assert not os.path.lexists(d), "%s survived the purge" % d
        so = subprocess.run(["dpkg-statoverride", "--list", SENDMAIL], capture_output=True,
                            text=True, timeout=60)
        assert so.stdout == "", so.stdout
        assert enabled_units() == []
        assert smtpgate_names("/var/lib/systemd/deb-systemd-helper-enabled",
                              "/var/lib/systemd/deb-systemd-helper-masked") == []
        for u in USERS:
            pwd.getpwnam(u)    # Debian keeps system users (README)
        assert mta_state() == before
    finally:
        for pid in installed_daemons():
            os.kill(pid, signal.SIGKILL)
        if installed:
            subprocess.run(["apt-get", "-y", "-q", "purge", PKG], capture_output=True,
                           timeout=APT_TIMEOUT,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
