"""contrib/: systemd units, sysusers.d, tmpfiles.d, logrotate, the sample
configuration and smtpgate.conf(5), and what make install puts where."""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from smtpgate import BUILDDIR, IS_ROOT, SRCDIR, binary, ensure_users

UNITS = ("smtpgate-smtpd.service", "smtpgate-spoold.service", "smtpgate-deliverd.service",
         "smtpgate-trackd.service", "smtpgate-clusterd.service")


def conf_keys():
    with open(os.path.join(SRCDIR, "common/conf_keys.c")) as f:
        keys = re.findall(r'^\s*CF_[A-Z]+\(\s*"([a-z0-9_]+)"', f.read(), re.M)
    assert len(keys) > 30
    return keys


def read(path):
    with open(path) as f:
        return f.read()


def generated(rel):
    """A file contrib/local.mk generates; make it if the build has not."""
    p = os.path.join(BUILDDIR, rel)
    if not os.path.exists(p):
        subprocess.run(["make", "-C", BUILDDIR, rel], check=True, capture_output=True,
                       timeout=120, env=clean_env())
    return p


def clean_env():
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def test_sample_and_man_page_list_every_key():
    sample = read(os.path.join(SRCDIR, "contrib/smtpgate.conf.sample.in"))
    man = read(os.path.join(SRCDIR, "contrib/smtpgate.conf.5"))
    missing_sample = [k for k in conf_keys()
                      if not re.search(r"^#%s =( |$)" % k, sample, re.M)]
    missing_man = [k for k in conf_keys()
                   if not re.search(r"^\.B %s$" % k.replace("-", r"\\-"), man, re.M)]
    assert missing_sample == [], "keys missing from smtpgate.conf.sample.in"
    assert missing_man == [], "keys missing from smtpgate.conf.5"
    # each key has a one-line comment right above it
    lines = sample.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^#([a-z0-9_]+) =( |$)", line)
        if m and not lines[i - 1].startswith("#" + m.group(1)):
            assert lines[i - 1].startswith("# "), "no comment above %s" % m.group(1)


def test_sample_uncommented_loads_and_has_the_defaults():
    sample = read(generated("contrib/smtpgate.conf.sample"))
    assert "@" + "localstatedir@" not in sample
    d = tempfile.mkdtemp(prefix="sgsample-")
    try:
        text = re.sub(r"^#([a-z0-9_]+ =)", r"\1", sample, flags=re.M)
        path = os.path.join(d, "smtpgate.conf")
        with open(path, "w") as f:
            f.write(text)
        # newaliases mode loads the configuration (exit 2 if bad) and does nothing
        r = subprocess.run([binary("sendmail"), "-c", path, "-bi"], capture_output=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def systemd_tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip("%s not installed (contrib/install-deps installs systemd)" % name)
    return path


def test_units_pass_systemd_analyze_verify():
    tool = systemd_tool("systemd-analyze")
    d = tempfile.mkdtemp(prefix="sgunits-")
    try:
        # the generated units name the installed daemons: point them at stubs
        bindir = os.path.join(d, "bin")
        os.mkdir(bindir)
        for name in ("smtpd", "spoold", "deliverd", "trackd", "clusterd"):
            p = os.path.join(bindir, name)
            with open(p, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(p, 0o755)
        units = os.path.join(d, "units")
        os.mkdir(units)
        for u in UNITS:
            text = read(generated("contrib/systemd/" + u))
            m = re.search(r"^ExecStart=(\S+)/(smtpd|spoold|deliverd|trackd|clusterd) -c (\S+)$", text, re.M)
            assert m, "%s: no ExecStart" % u
            # (systemd's own @ names, @system-service, are no placeholders)
            assert not re.search(r"@[A-Za-z_]+@", text), "%s: unsubstituted placeholder" % u
            for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                        "ProtectHome=yes", "ReadWritePaths=", "CapabilityBoundingSet=",
                        "SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM"):
                assert key in text, "%s lacks %s" % (u, key)
            with open(os.path.join(units, u), "w") as f:
                f.write(text.replace(m.group(1) + "/", bindir + "/"))
        shutil.copy(os.path.join(SRCDIR, "contrib/systemd/smtpgate.target"), units)
        names = sorted(glob.glob(os.path.join(units, "*")))
        r = subprocess.run([tool, "verify", "--man=no"] + names, capture_output=True,
                           text=True, timeout=60, cwd=units)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "smtpgate" not in r.stdout + r.stderr, r.stdout + r.stderr
        smtpd = read(os.path.join(units, "smtpgate-smtpd.service"))
        assert "CAP_NET_BIND_SERVICE" in smtpd and "CAP_SYS_CHROOT" in smtpd
        assert "CAP_NET_BIND_SERVICE" not in read(os.path.join(units, "smtpgate-spoold.service"))
        # trackd's HTTP process chroots (issue 16's privilege split)
        assert "CAP_SYS_CHROOT" in read(os.path.join(units, "smtpgate-trackd.service"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tls_report_timer_and_service_verify():
    """spoolctl tls-report --send once a day (RFC 8460 5): a oneshot
    service with the daemons' hardening and a daily timer."""
    tool = systemd_tool("systemd-analyze")
    d = tempfile.mkdtemp(prefix="sgunits-")
    try:
        stub = os.path.join(d, "spoolctl")
        with open(stub, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(stub, 0o755)
        text = read(generated("contrib/systemd/smtpgate-tls-report.service"))
        m = re.search(r"^ExecStart=(\S+)/spoolctl -c (\S+) tls-report --send$", text, re.M)
        assert m, text
        # (systemd's own @ names, @system-service, are no placeholders)
        assert not re.search(r"@[A-Za-z_]+@", text) and "Type=oneshot" in text, text
        for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                    "ProtectHome=yes", "ReadWritePaths=", "CapabilityBoundingSet=",
                    "SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM"):
            assert key in text, "lacks %s" % key
        svc = os.path.join(d, "smtpgate-tls-report.service")
        with open(svc, "w") as f:
            f.write(text.replace(m.group(1) + "/", d + "/"))
        timer = os.path.join(d, "smtpgate-tls-report.timer")
        shutil.copy(os.path.join(SRCDIR, "contrib/systemd/smtpgate-tls-report.timer"), timer)
        assert re.search(r"^OnCalendar=\S", read(timer), re.M)
        assert "WantedBy=timers.target" in read(timer)
        r = subprocess.run([tool, "verify", "--man=no", svc, timer], capture_output=True,
                           text=True, timeout=60, cwd=d)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "smtpgate" not in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sysusers_and_tmpfiles_create_users_and_spool():
    sysusers = systemd_tool("systemd-sysusers")
    tmpfiles = systemd_tool("systemd-tmpfiles")
    root = tempfile.mkdtemp(prefix="sgroot-")
    try:
        os.makedirs(os.path.join(root, "etc"))
        r = subprocess.run([sysusers, "--root=" + root,
                            os.path.join(SRCDIR, "contrib/sysusers.d/smtpgate.conf")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        passwd = read(os.path.join(root, "etc/passwd"))
        group = read(os.path.join(root, "etc/group"))
        users = {line.split(":")[0]: line.split(":") for line in passwd.splitlines()}
        groups = {line.split(":")[0]: line.split(":") for line in group.splitlines()}
        assert "smtpgate" in users and "smtpgate-smtpd" in users
        assert "smtpgate-maildrop" in groups
        # issue 14: smtpd's user shares no group with the database's owner
        assert users["smtpgate"][3] == groups["smtpgate"][2]
        assert users["smtpgate-smtpd"][3] == groups["smtpgate-smtpd"][2]
        assert "smtpgate-smtpd" not in groups["smtpgate"][3].split(",")
        # trackd's HTTP process: a user and group of its own, in no
        # group of the database's
        assert users["smtpgate-trackd"][3] == groups["smtpgate-trackd"][2]
        assert users["smtpgate-trackd"][3] != groups["smtpgate"][2]
        assert "smtpgate-trackd" not in groups["smtpgate"][3].split(",")
        conf = generated("contrib/tmpfiles.d/smtpgate.conf")
        spool = re.search(r"^d (\S+) 0755 smtpgate smtpgate", read(conf), re.M).group(1)
        if IS_ROOT:
            r = subprocess.run([tmpfiles, "--root=" + root, "--create", conf],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            st = os.stat(root + spool)
            assert st.st_uid == int(users["smtpgate"][2]) and oct(st.st_mode & 0o7777) == "0o755"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_logrotate_config_parses():
    conf = read(generated("contrib/logrotate/smtpgate"))
    assert "events.jsonl" in conf
    tool = shutil.which("logrotate") or shutil.which("/usr/sbin/logrotate")
    if tool is None:
        pytest.skip("logrotate not installed")
    d = tempfile.mkdtemp(prefix="sglogrot-")
    try:
        log = os.path.join(d, "events.jsonl")
        with open(log, "w") as f:
            f.write("{}\n")
        path = os.path.join(d, "smtpgate")
        with open(path, "w") as f:
            f.write(re.sub(r"^\S+events.jsonl", log, conf, flags=re.M)
                    .replace("su smtpgate smtpgate", "su root root"))
        r = subprocess.run([tool, "-d", "-s", os.path.join(d, "state"), path],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def makefile_var(name):
    with open(os.path.join(BUILDDIR, "Makefile")) as f:
        m = re.search(r"^%s = (.*)$" % name, f.read(), re.M)
    return m.group(1).strip()


def test_make_install_puts_files_per_contract():
    ensure_users()          # as root: the install hook makes the injector setgid smtpgate
    dest = tempfile.mkdtemp(prefix="sginstall-")
    try:
        r = subprocess.run(["make", "-C", BUILDDIR, "install", "DESTDIR=" + dest],
                           capture_output=True, text=True, timeout=600, env=clean_env())
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        prefix = makefile_var("prefix")
        sysconfdir = makefile_var("sysconfdir").replace("${prefix}", prefix)

        def p(*parts):
            return os.path.join(dest + prefix, *parts)

        for f in ("sbin/spoolctl", "sbin/smtpgate-sendmail", "libexec/smtpgate/smtpd",
                  "libexec/smtpgate/spoold", "libexec/smtpgate/deliverd",
                  "libexec/smtpgate/trackd", "libexec/smtpgate/clusterd"):
            assert os.access(p(f), os.X_OK), f
        for f in ("share/man/man5/smtpgate.conf.5", "share/man/man8/smtpgate-sendmail.8",
                  "share/man/man8/smtpd.8", "share/man/man8/spoold.8",
                  "share/man/man8/deliverd.8", "share/man/man8/spoolctl.8",
                  "share/man/man8/trackd.8", "lib/systemd/system/smtpgate-trackd.service",
                  "share/man/man8/clusterd.8",
                  "lib/systemd/system/smtpgate-clusterd.service",
                  "lib/systemd/system/smtpgate.target",
                  "lib/systemd/system/smtpgate-smtpd.service",
                  "lib/systemd/system/smtpgate-tls-report.service",
                  "lib/systemd/system/smtpgate-tls-report.timer",
                  "lib/sysusers.d/smtpgate.conf", "lib/tmpfiles.d/smtpgate.conf"):
            assert os.path.exists(p(f)), f
        assert os.path.exists(dest + sysconfdir + "/smtpgate/smtpgate.conf.sample")
        assert not os.path.exists(dest + "/usr/sbin/sendmail")
        unit = read(p("lib/systemd/system/smtpgate-smtpd.service"))
        assert "ExecStart=%s/libexec/smtpgate/smtpd -c %s/smtpgate/smtpgate.conf" % (
            prefix, sysconfdir) in unit
        if IS_ROOT:
            st = os.stat(p("sbin/smtpgate-sendmail"))
            import grp
            assert st.st_gid == grp.getgrnam("smtpgate-maildrop").gr_gid  # issue 14
            assert st.st_mode & 0o7777 == 0o2755
    finally:
        shutil.rmtree(dest, ignore_errors=True)
