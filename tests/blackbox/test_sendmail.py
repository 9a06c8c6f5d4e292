"""smtpgate-sendmail: flags, exit codes, the files it writes, and the
pipeline behind it (issue 7); maildrop/ and what spoold takes from it
(issue 14)."""
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import smtpgate
from smtpgate import Gateway, IS_ROOT, binary

SM = binary("sendmail")
ACCOUNT = "local.mail@smtpgate"

pytestmark = pytest.mark.skipif(not os.path.exists(SM), reason="smtpgate-sendmail not built")


def make_maildrop(spool):
    """The part of the spool tree the injector writes, with the owners and
    modes spool_tree_create gives it (so no daemon has to run): maildrop/
    only (issue 14: it cannot write incoming/)."""
    os.makedirs(os.path.join(spool, "maildrop"), exist_ok=True)
    if IS_ROOT:
        uid = pwd.getpwnam("smtpgate").pw_uid
        for d, mode, group in (("", 0o755, "smtpgate"),
                               ("maildrop", 0o1730, "smtpgate-maildrop")):
            p = os.path.join(spool, d)
            os.chown(p, uid, grp.getgrnam(group).gr_gid)
            os.chmod(p, mode)


@pytest.fixture
def gw():
    g = Gateway(tls=False, extra={"sendmail_account": ACCOUNT})
    make_maildrop(g.spool)
    yield g
    g.close()


def sendmail(gw, args, data=b"", conf=None, **kw):
    return subprocess.run([SM, "-c", conf or gw.conf_path] + list(args), input=data,
                          capture_output=True, timeout=30, **kw)


def read_spool_file(path):
    """(envelope dict with 'rcpt' list, message bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    head, _, msg = data.partition(b"\n\n")
    lines = head.decode().split("\n")
    assert lines[0] == "SMTPGATE 1"
    env = {"rcpt": []}
    for line in lines[1:]:
        k, _, v = line.partition(" ")
        if k == "rcpt":
            env["rcpt"].append(v)
        else:
            env[k] = v
    return env, msg


def new_files(gw):
    return [os.path.join(gw.spool, "maildrop", f) for f in gw.files("maildrop")]


def nothing_written(gw):
    """No file at all, complete or half-written, in maildrop/ or incoming/."""
    return (os.listdir(os.path.join(gw.spool, "maildrop")) == [] and
            gw.files("new") == [] and gw.files("tmp") == [])


MSG_T = (b"From: App <app@example.com>\n"
         b"To: A <a@example.net>, \"Doe, J\" <j@example.net>\n"
         b"Cc: team: c1@example.org, c2@example.org;\n"
         b"Bcc: hidden@example.com\n"
         b"Subject: sendmail -t\n"
         b"\n"
         b"body line\n"
         b"..two dots stay two dots\n")


def test_t_takes_recipients_from_headers_and_drops_bcc(gw):
    r = sendmail(gw, ["-t", "-i", "-f", "bounce@example.com"], MSG_T)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""        # silent on success
    files = new_files(gw)
    assert len(files) == 1
    env, msg = read_spool_file(files[0])
    assert sorted(env["rcpt"]) == sorted(["a@example.net", "j@example.net", "c1@example.org",
                                          "c2@example.org", "hidden@example.com"])
    assert env["account"] == ACCOUNT
    assert env["client"] == "local"
    assert env["helo"] == "localhost"
    assert env["from"] == "bounce@example.com"
    assert env["qid"] == os.path.basename(files[0])
    assert msg.startswith(b"Received: by gate.test (smtpgate-sendmail")
    assert b"Bcc:" not in msg and b"hidden@example.com" not in msg
    assert b"\r\n\r\nbody line\r\n..two dots stay two dots\r\n" in msg
    assert b"\n" not in msg.replace(b"\r\n", b"")     # CRLF only
    # the headers the seed's policy requires are completed
    for h in (b"\r\nDate: ", b"\r\nMessage-Id: <", b"\r\nMIME-Version: 1.0",
              b"\r\nContent-Type: "):
        assert h in msg


def test_arguments_dot_line_and_defaults(gw):
    # without -i a line with a single dot ends the message
    r = sendmail(gw, ["rcpt@example.net, other@example.net", "--", "third"],
                 b"Subject: hi\n\nfirst\n.\nnot part of it\n")
    assert r.returncode == 0, r.stderr
    env, msg = read_spool_file(new_files(gw)[0])
    assert env["rcpt"] == ["rcpt@example.net", "other@example.net", "third@gate.test"]
    me = pwd.getpwuid(os.getuid()).pw_name
    assert env["from"] == "%s@gate.test" % me
    assert msg.endswith(b"\r\n\r\nfirst\r\n")
    assert b"From: " in msg and b"To: undisclosed-recipients:;" in msg


def test_i_keeps_dot_lines_and_bare_cr_becomes_crlf(gw):
    r = sendmail(gw, ["-oi", "-F", "Jörg Bot", "x@example.net"],
                 b"Subject: dots\n\na\n.\nb\rc\r\n")
    assert r.returncode == 0, r.stderr
    _, msg = read_spool_file(new_files(gw)[0])
    assert msg.endswith(b"\r\n\r\na\r\n.\r\nb\r\nc\r\n")
    assert b"From: =?UTF-8?B?" in msg


CRON_MSG = (b"From: root (Cron Daemon)\n"
            b"To: root\n"
            b"Subject: Cron <root@vm> run-parts --report /etc/cron.daily\n"
            b"MIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=UTF-8\n"
            b"Content-Transfer-Encoding: 8bit\n"
            b"X-Cron-Env: <SHELL=/bin/sh>\n"
            b"\n"
            b"run-parts: /etc/cron.daily/logrotate exited with return code 1\n")


def test_cron_style_bare_names_get_the_hostname(gw):
    # Debian cron runs exactly this
    r = sendmail(gw, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], CRON_MSG)
    assert r.returncode == 0, r.stderr
    env, msg = read_spool_file(new_files(gw)[0])
    assert env["rcpt"] == ["root@gate.test"]
    assert b"\r\nFrom: root@gate.test (Cron Daemon)\r\n" in msg
    assert b"\r\nTo: root@gate.test\r\n" in msg


def test_t_qualifies_bare_names_and_keeps_odd_ones(gw):
    r = sendmail(gw, ["-t"], b"From: App <app>\nTo: root, Bob <bob>, \"Q, R\" <q@example.net>\n"
                 b"Cc: team: a, b@example.org;\nSubject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    env, msg = read_spool_file(new_files(gw)[0])
    assert sorted(env["rcpt"]) == ["a@gate.test", "b@example.org", "bob@gate.test",
                                   "q@example.net", "root@gate.test"]
    assert b"From: App <app@gate.test>\r\n" in msg
    assert b"To: root@gate.test, Bob <bob@gate.test>, \"Q, R\" <q@example.net>\r\n" in msg
    assert b"Cc: team: a@gate.test, b@example.org;\r\n" in msg


def test_bs_smtp_dialogue(gw):
    dialogue = (b"EHLO client.example\r\n"
                b"MAIL FROM:<app@example.com>\r\n"
                b"RCPT TO:<r1@example.net>\r\n"
                b"RCPT TO:<r2@example.net>\r\n"
                b"DATA\r\n" + smtpgate.message(to="r1@example.net") +
                b"..stuffed\r\n.\r\n"
                b"QUIT\r\n")
    r = sendmail(gw, ["-bs"], dialogue)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\r\n")
    assert lines[0].startswith("220 ")
    queued = [line for line in lines if line.startswith("250 2.0.0 Ok: queued as ")]
    assert len(queued) == 1, r.stdout
    qid = queued[0].split()[-1]
    assert lines[-2] == "221 2.0.0 Bye"
    env, msg = read_spool_file(os.path.join(gw.spool, "maildrop", qid))
    assert env["rcpt"] == ["r1@example.net", "r2@example.net"]
    assert env["from"] == "app@example.com"
    assert env["helo"] == "client.example"
    assert msg.endswith(b"\r\n.stuffed\r\n")


def test_bs_sequence_errors_and_eof_in_data(gw):
    dialogue = (b"MAIL FROM:<a@example.com>\r\n"          # before EHLO
                b"HELO h\r\n"
                b"RCPT TO:<r@example.net>\r\n"             # before MAIL
                b"MAIL FROM:<a@example.com>\r\n"
                b"DATA\r\n" +                              # before RCPT
                b"X" * 3000 +                                # line too long
                b"\r\nRSET\r\nNOOP\r\nVRFY root\r\nSTARTTLS\r\n"
                b"MAIL FROM:<a@example.com>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n"
                b"Subject: cut\r\n\r\nno final dot")
    r = sendmail(gw, ["-bs"], dialogue)
    codes = [line[:3] for line in r.stdout.decode().split("\r\n") if line]
    assert codes == ["220", "503", "250", "503", "250", "503", "500", "250", "250", "252",
                     "502", "250", "250", "354"], r.stdout
    assert nothing_written(gw)


def test_bad_flag_is_ex_usage(gw):
    r = sendmail(gw, ["-Z", "x@example.net"])
    assert r.returncode == 64
    assert b"unknown option -Z" in r.stderr
    assert sendmail(gw, ["-f"]).returncode == 64           # missing argument
    assert sendmail(gw, ["-bd"]).returncode == 64          # daemon mode
    assert sendmail(gw, [], b"Subject: x\n\n").returncode == 64   # no recipients
    assert nothing_written(gw)


def test_legacy_flags_are_harmless(gw):
    r = sendmail(gw, ["-oem", "-odb", "-odi", "-ob", "-U", "-N", "never", "-B", "8BITMIME",
                      "-R", "hdrs", "-V", "envid", "-X", "/tmp/nolog", "-L", "tag",
                      "-h", "5", "-m", "-n", "-G", "x@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists("/tmp/nolog")
    assert sendmail(gw, ["-bi"]).returncode == 0           # newaliases


def test_bad_address_and_t_without_recipients(gw):
    assert sendmail(gw, ["a b@example.net"], b"x\n").returncode == 67
    assert sendmail(gw, ["-f", "bad address", "x@example.net"], b"x\n").returncode == 67
    r = sendmail(gw, ["-t"], b"Subject: nobody\n\nhi\n")
    assert r.returncode == 65, r.stderr
    assert nothing_written(gw)


def test_too_big_is_dataerr(gw):
    gw.conf["max_message_size"] = "2048"
    gw.write_conf()
    r = sendmail(gw, ["x@example.net"], b"Subject: big\n\n" + b"x" * 5000 + b"\n")
    assert r.returncode == 65 and b"too large" in r.stderr
    assert nothing_written(gw)


def test_without_sendmail_account_it_refuses(gw):
    del gw.conf["sendmail_account"]
    gw.write_conf()
    r = sendmail(gw, ["x@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 78
    assert b"sendmail_account" in r.stderr
    assert nothing_written(gw)


def test_bad_config_exits_2(gw):
    with open(gw.conf_path, "a") as f:
        f.write("no_such_key = 1\n")
    r = sendmail(gw, ["x@example.net"], b"x\n")
    assert r.returncode == 2
    assert b"no_such_key" in r.stderr


def test_unwritable_spool_is_tempfail(gw):
    # a spool_dir below a regular file cannot be written, even by root
    blocker = os.path.join(gw.dir, "blocker")
    open(blocker, "w").close()
    gw.conf["spool_dir"] = os.path.join(blocker, "spool")
    gw.write_conf()
    r = sendmail(gw, ["x@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 75, r.stderr
    assert b"cannot queue" in r.stderr


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions")
def test_readonly_maildrop_is_tempfail(gw):
    os.chmod(os.path.join(gw.spool, "maildrop"), 0o555)
    try:
        r = sendmail(gw, ["x@example.net"], b"Subject: x\n\nhi\n")
    finally:
        os.chmod(os.path.join(gw.spool, "maildrop"), 0o755)
    assert r.returncode == 75, r.stderr


@pytest.fixture
def setgid_copy(gw):
    """An install-like copy of the binary: root:smtpgate-maildrop, mode 2755."""
    if not IS_ROOT:
        pytest.skip("needs root to install a setgid copy")
    d = tempfile.mkdtemp(prefix="sgsetgid-")
    try:
        if os.statvfs(d).f_flag & os.ST_NOSUID:
            pytest.skip("%s is mounted nosuid" % d)
        os.chmod(d, 0o755)
        copy = os.path.join(d, "smtpgate-sendmail")
        shutil.copy(SM, copy)
        os.chown(copy, 0, grp.getgrnam("smtpgate-maildrop").gr_gid)
        os.chmod(copy, 0o2755)
        os.chmod(gw.dir, 0o755)
        os.chmod(gw.conf_path, 0o644)
        yield copy
    finally:
        shutil.rmtree(d, ignore_errors=True)


def as_nobody(argv, data=b""):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
                          + argv, input=data, capture_output=True, timeout=30, cwd="/")


def test_setgid_copy_refuses_c_for_users(gw, setgid_copy):
    """Installed setgid, a user may not choose the config (and so neither
    the account nor the spool): -c is refused with one line and exit 2,
    not silently ignored (issue 14 item 8)."""
    r = as_nobody([setgid_copy, "-c", gw.conf_path, "x@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.decode().strip().split("\n")
    assert len(lines) == 1 and "-c: only root may choose the configuration file" in lines[0], \
        r.stderr
    assert gw.conf_path not in lines[0]
    assert nothing_written(gw)


def test_setgid_copy_honours_c_for_root(gw, setgid_copy):
    """Root (cron, scripts) may name another configuration, as with
    Postfix: the message lands in that configuration's spool."""
    r = subprocess.run([setgid_copy, "-c", gw.conf_path, "x@example.net"],
                       input=b"Subject: x\n\nhi\n", capture_output=True, timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(os.path.join(gw.spool, "maildrop"))) == 1


def test_unprivileged_build_accepts_c(gw):
    """Not set-id (the development and test mode), any user's -c is read:
    the file named is the one that is missing its sendmail_account."""
    conf = os.path.join(gw.dir, "nosendmail.conf")
    with open(gw.conf_path) as f, open(conf, "w") as out:
        out.write("".join(line for line in f if not line.startswith("sendmail_account")))
    os.chmod(conf, 0o644)
    os.chmod(gw.dir, 0o755)
    run = as_nobody if IS_ROOT else (lambda argv, data=b"": subprocess.run(
        argv, input=data, capture_output=True, timeout=30))
    r = run([SM, "-c", conf, "x@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 78 and conf.encode() in r.stderr, r.stderr


def _have_daemons():
    return all(os.path.exists(binary(n)) for n in ("smtpd", "spoold", "deliverd", "spoolctl"))


@pytest.mark.skipif(not _have_daemons(), reason="daemons not built yet")
def test_pipeline_to_sandbox_delivery():
    """sendmail -t and -bs messages go through spoold and deliverd: each
    recipient of the sandbox account gets a delivered event."""
    with Gateway(tls=False, extra={"sendmail_account": ACCOUNT}) as g:
        g.start()
        if not IS_ROOT:  # as root it drops to a user that cannot read db/
            r = sendmail(g, ["x@example.net"], b"Subject: x\n\nhi\n")
            assert r.returncode == 78 and b"no such account" in r.stderr, r.stderr
        g.add_account(ACCOUNT, sandbox=True)
        msg = smtpgate.message(frm="cron@example.com", to="t1@example.net",
                               subject="via -t").replace(b"\r\n", b"\n")
        r = sendmail(g, ["-t", "-f", "cron@example.com"], msg)
        assert r.returncode == 0, r.stderr
        dialogue = (b"EHLO me\r\nMAIL FROM:<cron@example.com>\r\nRCPT TO:<bs1@example.net>\r\n"
                    b"DATA\r\n" + smtpgate.message(frm="cron@example.com", to="bs1@example.net",
                                                   subject="via -bs") + b".\r\nQUIT\r\n")
        r = sendmail(g, ["-bs"], dialogue)
        assert r.returncode == 0 and b"queued as" in r.stdout, r.stdout + r.stderr
        r = sendmail(g, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "cronrcpt"], CRON_MSG)
        assert r.returncode == 0, r.stderr
        me = "%s@gate.test" % pwd.getpwuid(os.getuid()).pw_name
        for rcpt, frm in (("t1@example.net", "cron@example.com"),
                          ("bs1@example.net", "cron@example.com"),
                          ("cronrcpt@gate.test", me)):
            ev = g.wait_events(lambda e, rcpt=rcpt: e.get("to") == rcpt and
                               e.get("event") == "delivered", timeout=30,
                               what="delivered event for %s" % rcpt)[0]
            assert ev["sandbox"] is True
            assert ev["account"] == ACCOUNT
            assert ev["from"] == frm
        # -bp lists the queue through spoolctl
        r = sendmail(g, ["-bp"])
        assert r.returncode == 0, r.stderr


# ---- maildrop/: what spoold takes from the injector (issue 14 finding 5)

def drop_file(g, name, data, keep=None):
    """A complete file in maildrop/ as the injector leaves it; with keep, a
    second link to it there, made before it appears."""
    tmp = os.path.join(g.spool, "maildrop", "." + name)
    with open(tmp, "wb") as f:
        f.write(data)
    if keep:
        os.link(tmp, keep)
    os.rename(tmp, os.path.join(g.spool, "maildrop", name))


def md_qid(n):
    return "%013X%07X" % (time.time_ns() // 1000, n)


@pytest.fixture
def picker():
    g = Gateway(tls=False, extra={"sendmail_account": ACCOUNT})
    g.start("spoold")
    g.add_account(ACCOUNT)
    g.add_account("other@smtpgate")
    yield g
    g.close()


def test_maildrop_account_claim_is_ignored(picker):
    """An injector's file claiming another account (with that account's
    real tag, even) is filed under sendmail_account."""
    q = md_qid(1)
    env = smtpgate.smtpd_envelope(q, "other@smtpgate", ["r@example.net"],
                                  tag=smtpgate.envelope_tag(picker, "other@smtpgate"))
    drop_file(picker, q, env + smtpgate.message(to="r@example.net"))
    smtpgate.wait_for(lambda: q in picker.files("queue"), 20, what="%s filed" % q)
    show = picker.spoolctl_json("show", q)
    assert show["account"] == ACCOUNT, show
    assert "%s: picked up from maildrop" % q in picker.log("spoold")
    assert picker.files("maildrop") == []


def test_maildrop_links_and_symlinks_are_refused(picker):
    target = os.path.join(picker.dir, "secret")
    with open(target, "wb") as f:
        f.write(smtpgate.smtpd_envelope("X", ACCOUNT, ["r@example.net"]) + b"secret\n")
    sym, hard = md_qid(2), md_qid(3)
    os.symlink(target, os.path.join(picker.spool, "maildrop", sym))
    drop_file(picker, hard, smtpgate.smtpd_envelope(hard, ACCOUNT, ["r@example.net"]) +
              smtpgate.message(to="r@example.net"), keep=os.path.join(picker.dir, "kept"))
    smtpgate.wait_for(lambda: picker.files("maildrop") == [], 20, what="maildrop emptied")
    log = picker.log("spoold")
    assert "%s: refused from maildrop" % sym in log and "reason=symbolic link" in log
    assert "%s: refused from maildrop" % hard in log and "reason=more than one link" in log
    assert os.path.exists(target)
    assert picker.files("new") == [] and picker.files("queue") == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_maildrop_group_reaches_nothing_else(picker):
    """With the injector's group (and an unprivileged uid) one can create a
    file in maildrop/, not list it, not write incoming/, not read db/."""
    probe = smtpgate.PROBE_CAN + r"""
spool = sys.argv[1]
print(can(lambda: os.close(os.open(os.path.join(spool, "maildrop", ".p"), os.O_CREAT | os.O_WRONLY, 0o600))),
      can(lambda: os.listdir(os.path.join(spool, "maildrop"))),
      can(lambda: os.close(os.open(os.path.join(spool, "incoming", "tmp", ".p"), os.O_CREAT | os.O_WRONLY, 0o600))),
      can(lambda: open(os.path.join(spool, "db", "data.mdb"), "rb").close()),
      can(lambda: open(os.path.join(spool, "events.jsonl"), "rb").close()))
"""
    open(picker.event_log, "a").close()
    r = subprocess.run([sys.executable, "-c", probe, picker.spool], capture_output=True,
                       text=True, timeout=30, user="nobody",
                       group=grp.getgrnam("smtpgate-maildrop").gr_gid, extra_groups=[])
    assert r.stdout.split() == ["yes", "no", "no", "no", "no"], r.stdout + r.stderr
    os.unlink(os.path.join(picker.spool, "maildrop", ".p"))


def test_maildrop_waits_for_sendmail_account():
    """Without sendmail_account local mail stays in maildrop/ (one log line),
    and is filed once it is set and spoold reloads."""
    with Gateway(tls=False) as g:
        g.start("spoold")
        g.add_account(ACCOUNT)
        q = md_qid(5)
        drop_file(g, q, smtpgate.smtpd_envelope(q, ACCOUNT, ["r@example.net"]) +
                  smtpgate.message(to="r@example.net"))
        smtpgate.wait_for(lambda: "sendmail_account is not set" in g.log("spoold"), 20,
                          what="the waiting line")
        assert g.files("maildrop") == [q]
        g.conf["sendmail_account"] = ACCOUNT
        g.write_conf()
        os.kill(g.pid("spoold"), signal.SIGHUP)
        smtpgate.wait_for(lambda: q in g.files("queue"), 20, what="%s filed" % q)
        assert g.log("spoold").count("sendmail_account is not set") == 1
