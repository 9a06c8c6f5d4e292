"""spoolctl black-box tests: accounts and policy (no daemon needed).

account add/list/show/del (the password never appears in clear: not in
`show`, not in the database files), sender, dkim (the key is checked, copied
in 0600 and the TXT record matches it), stoplist (one and bulk), issue
block/unblock, and bad input: one clear line, exit 1 or 2.
"""
import base64
import json
import os
import stat
import subprocess
import time

import pytest

import smtpgate

SECRET = "Sw0rdf1sh-unique-7731"


@pytest.fixture
def g():
    gw = smtpgate.Gateway(tls=False, port_tls="none")
    yield gw
    gw.close()


def ctl(g, *args, input=None):
    return g.spoolctl(*args, input=input, check=False)


def db_bytes(g):
    out = b""
    d = os.path.join(g.spool, "db")
    for f in os.listdir(d):
        with open(os.path.join(d, f), "rb") as fh:
            out += fh.read()
    return out


def test_account_add_show_list_del(g):
    r = g.spoolctl("account", "add", "shop", "--password", SECRET, "--ip", "192.0.2.0/24",
                   "--ip", "2001:db8::1", "--callback-url", "http://127.0.0.1:9/cb",
                   "--callback-format", "stream", "--senders", "registered")
    assert "account shop added" in r.stdout and "password set" in r.stdout
    assert SECRET not in r.stdout + r.stderr
    g.add_account("demo.demo@smtpgate", password="demo", sandbox=True)

    show = g.spoolctl("account", "show", "shop").stdout
    assert "192.0.2.0/24" in show and "2001:db8::1/128" in show
    assert SECRET not in show and "$y$" not in show
    j = g.spoolctl_json("account", "show", "shop")
    assert j["login"] == "shop" and j["password"] is True
    assert j["ips"] == ["192.0.2.0/24", "2001:db8::1/128"]
    assert j["sandbox"] is False and j["callback_url"] == "http://127.0.0.1:9/cb"
    assert j["callback_format"] == "stream" and j["senders"] == "registered"
    assert SECRET not in json.dumps(j)

    # stored as a yescrypt hash, never in clear
    data = db_bytes(g)
    assert SECRET.encode() not in data
    assert b"$y$" in data

    lst = g.spoolctl_json("account", "list")
    assert sorted(a["login"] for a in lst) == ["demo.demo@smtpgate", "shop"]
    assert [a["sandbox"] for a in lst if a["login"] == "demo.demo@smtpgate"] == [True]
    assert "shop" in g.spoolctl("account", "list").stdout

    err = smtpgate.one_line_error(ctl(g, "account", "add", "shop", "--password", "x"), 1)
    assert "already exists" in err
    r = g.spoolctl("account", "add", "shop", "--update", "--sandbox")
    assert "updated" in r.stdout and "sandbox yes" in r.stdout
    assert g.spoolctl_json("account", "show", "shop")["sandbox"] is True
    assert g.spoolctl_json("account", "show", "shop")["password"] is True

    assert "deleted" in g.spoolctl("account", "del", "shop").stdout
    assert "no account shop" in smtpgate.one_line_error(ctl(g, "account", "show", "shop"), 1)
    smtpgate.one_line_error(ctl(g, "account", "del", "shop"), 1)


def test_password_file_and_no_echo_sources(g):
    pwfile = os.path.join(g.dir, "pw")
    with open(pwfile, "w") as f:
        f.write(SECRET + "\n")
    r = g.spoolctl("account", "add", "filed", "--password-file", pwfile)
    assert "password set" in r.stdout
    assert SECRET.encode() not in db_bytes(g)
    err = smtpgate.one_line_error(ctl(g, "account", "add", "x", "--password-file",
                             os.path.join(g.dir, "missing")), 1)
    assert "missing" in err
    # not a terminal and no --ip: no prompt, an account without a password
    r = g.spoolctl("account", "add", "nopw", input="")
    assert g.spoolctl_json("account", "show", "nopw")["password"] is False


def test_bad_account_input(g):
    err = smtpgate.one_line_error(ctl(g, "account", "add", "a", "--ip", "10.0.0.0/33"), 2)
    assert "10.0.0.0/33" in err and "CIDR" in err
    smtpgate.one_line_error(ctl(g, "account", "add", "a", "--ip", "not-an-ip"), 2)
    smtpgate.one_line_error(ctl(g, "account", "add", "a", "--callback-format", "xml"), 2)
    smtpgate.one_line_error(ctl(g, "account", "add", "a", "--senders", "some"), 2)
    smtpgate.one_line_error(ctl(g, "account", "add", "a", "--callback-url", "ftp://x"), 2)
    smtpgate.one_line_error(ctl(g, "account", "add", "a", "--bogus"), 2)
    smtpgate.one_line_error(ctl(g, "account", "add"), 2)
    smtpgate.one_line_error(ctl(g, "account", "frob"), 2)
    smtpgate.one_line_error(ctl(g, "frobnicate"), 2)
    assert g.spoolctl_json("account", "list") == []


def test_senders(g):
    g.add_account("acc", password="pw1")
    g.spoolctl("sender", "add", "acc", "News@Example.com", "--status", "approved")
    g.spoolctl("sender", "add", "acc", "@example.org", "--status", "onmoderation")
    g.spoolctl("sender", "add", "acc", "bad@example.net", "--status", "prohibited")
    got = {s["sender"]: s["status"] for s in g.spoolctl_json("sender", "list", "acc")}
    assert got == {"news@example.com": "approved", "@example.org": "onmoderation",
                   "bad@example.net": "prohibited"}
    assert "deleted" in g.spoolctl("sender", "del", "acc", "@example.org").stdout
    smtpgate.one_line_error(ctl(g, "sender", "del", "acc", "@example.org"), 1)
    smtpgate.one_line_error(ctl(g, "sender", "add", "acc", "x@example.com"), 2)        # no --status
    smtpgate.one_line_error(ctl(g, "sender", "add", "acc", "x@example.com", "--status", "maybe"), 2)
    smtpgate.one_line_error(ctl(g, "sender", "add", "acc", "not an address", "--status",
                       "approved"), 2)
    assert "no account" in smtpgate.one_line_error(
        ctl(g, "sender", "add", "ghost", "x@example.com", "--status", "approved"), 1)


def genkey(g, alg, bits=2048):
    path = os.path.join(g.dir, "%s-%d.pem" % (alg, bits))
    cmd = ["openssl", "genpkey", "-algorithm", alg, "-out", path]
    if alg == "RSA":
        cmd += ["-pkeyopt", "rsa_keygen_bits:%d" % bits]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


def pubkey_b64(path, ed25519):
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return base64.b64encode(der[-32:] if ed25519 else der).decode()


def txt_value(stdout):
    line = [l for l in stdout.splitlines() if "._domainkey." in l][0]
    return line, "".join(line.split('"')[1::2])


def test_dkim_add_list_del(g):
    g.add_account("acc", password="pw1")
    rsa = genkey(g, "RSA", 2048)
    ed = genkey(g, "ED25519")
    r = g.spoolctl("dkim", "add", "acc", "Example.COM", "--selector", "s1", "--key", rsa,
                   "--default")
    line, txt = txt_value(r.stdout)
    assert line.startswith("s1._domainkey.example.com. IN TXT ")
    assert txt == "v=DKIM1; k=rsa; p=" + pubkey_b64(rsa, False)
    r = g.spoolctl("dkim", "add", "acc", "example.org", "--selector", "ed", "--key", ed)
    line, txt = txt_value(r.stdout)
    assert txt == "v=DKIM1; k=ed25519; p=" + pubkey_b64(ed, True)

    keys = g.spoolctl_json("dkim", "list", "acc")
    assert {(k["domain"], k["selector"], k["alg"], k["default"]) for k in keys} == {
        ("example.com", "s1", "rsa", True), ("example.org", "ed", "ed25519", False)}
    for k in keys:
        p = os.path.join(g.spool, "keys", k["keyfile"])
        st = os.stat(p)
        assert stat.S_IMODE(st.st_mode) == 0o600
        if smtpgate.IS_ROOT:
            import pwd
            assert st.st_uid == pwd.getpwnam("smtpgate").pw_uid
    # LMDB holds the file name only, never the key
    with open(rsa) as f:
        body = "".join(f.read().splitlines()[1:-1])
    assert body[:40].encode() not in db_bytes(g)

    # a second default takes the flag over
    g.spoolctl("dkim", "add", "acc", "example.org", "--selector", "ed", "--key", ed,
               "--default")
    d = {k["domain"]: k["default"] for k in g.spoolctl_json("dkim", "list", "acc")}
    assert d == {"example.com": False, "example.org": True}

    keyfile = [k["keyfile"] for k in keys if k["selector"] == "s1"][0]
    assert "deleted 1 key" in g.spoolctl("dkim", "del", "acc", "example.com",
                                         "--selector", "s1").stdout
    assert not os.path.exists(os.path.join(g.spool, "keys", keyfile))
    smtpgate.one_line_error(ctl(g, "dkim", "del", "acc", "example.com"), 1)
    assert [k["domain"] for k in g.spoolctl_json("dkim", "list", "acc")] == ["example.org"]


def test_dkim_bad_keys(g):
    g.add_account("acc", password="pw1")
    err = smtpgate.one_line_error(ctl(g, "dkim", "add", "acc", "example.com", "--selector", "s",
                             "--key", os.path.join(g.dir, "nope.pem")), 1)
    assert "cannot read key" in err and "nope.pem" in err
    weak = genkey(g, "RSA", 512)
    err = smtpgate.one_line_error(ctl(g, "dkim", "add", "acc", "example.com", "--selector", "s",
                             "--key", weak), 1)
    assert "512 bits" in err
    ec = os.path.join(g.dir, "ec.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", ec], check=True, capture_output=True)
    assert "unsupported key type" in smtpgate.one_line_error(
        ctl(g, "dkim", "add", "acc", "example.com", "--selector", "s", "--key", ec), 1)
    junk = os.path.join(g.dir, "junk.pem")
    with open(junk, "w") as f:
        f.write("hello\n")
    assert "not a PEM private key" in smtpgate.one_line_error(
        ctl(g, "dkim", "add", "acc", "example.com", "--selector", "s", "--key", junk), 1)
    smtpgate.one_line_error(ctl(g, "dkim", "add", "acc", "example.com", "--key", junk), 2)
    smtpgate.one_line_error(ctl(g, "dkim", "add", "acc", "bad_domain!", "--selector", "s",
                       "--key", junk), 2)
    good = genkey(g, "ED25519")
    assert "no account" in smtpgate.one_line_error(
        ctl(g, "dkim", "add", "ghost", "example.com", "--selector", "s", "--key", good), 1)
    assert [f for f in os.listdir(os.path.join(g.spool, "keys"))] == []
    assert g.spoolctl_json("dkim", "list", "acc") == []


def test_stoplist(g):
    g.add_account("acc", password="pw1")
    assert "added" in g.spoolctl("stoplist", "add", "acc", "One@Example.net").stdout
    bulk = os.path.join(g.dir, "bulk.txt")
    with open(bulk, "w") as f:
        f.write("# exported list\n\ntwo@example.net\n  three@example.org  \n"
                + "".join("u%d@example.com\n" % i for i in range(500)))
    r = g.spoolctl("stoplist", "add", "acc", "--file", bulk)
    assert "added 502 addresses" in r.stdout
    lst = g.spoolctl_json("stoplist", "list", "acc")
    assert len(lst) == 503 and "one@example.net" in lst and "three@example.org" in lst
    assert "deleted" in g.spoolctl("stoplist", "del", "acc", "two@example.net").stdout
    smtpgate.one_line_error(ctl(g, "stoplist", "del", "acc", "two@example.net"), 1)
    bad = os.path.join(g.dir, "bad.txt")
    with open(bad, "w") as f:
        f.write("ok@example.com\nnot an address\n")
    err = smtpgate.one_line_error(ctl(g, "stoplist", "add", "acc", "--file", bad), 2)
    assert "bad.txt:2" in err
    assert "ok@example.com" not in g.spoolctl_json("stoplist", "list", "acc")
    smtpgate.one_line_error(ctl(g, "stoplist", "add", "ghost", "a@example.com"), 1)
    assert "stoplist: 502 addresses" in g.spoolctl("account", "show", "acc").stdout


def test_issue_block_unknown(g):
    g.add_account("acc", password="pw1")
    assert "no issue 42" in smtpgate.one_line_error(ctl(g, "issue", "block", "42"), 1)
    smtpgate.one_line_error(ctl(g, "issue", "block", "x"), 2)
    smtpgate.one_line_error(ctl(g, "issue", "block"), 2)


def test_password_prompt_on_a_terminal_without_echo(g):
    """No --password and no --ip on a terminal: asked twice, never echoed."""
    import pty
    import select

    master, slave = pty.openpty()
    p = subprocess.Popen([smtpgate.binary("spoolctl"), "-c", g.conf_path, "account", "add",
                          "prompted"], stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(word, timeout=10):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while word not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert word in seen, seen

    try:
        read_until(b"Password:")
        os.write(master, (SECRET + "\n").encode())
        read_until(b"Again:")
        os.write(master, (SECRET + "\n").encode())
        assert p.wait(timeout=10) == 0
        read_until(b"account prompted added")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert SECRET.encode() not in seen
    assert g.spoolctl_json("account", "show", "prompted")["password"] is True
    assert SECRET.encode() not in db_bytes(g)


def test_accounts_take_effect_at_smtpd_without_restart():
    """A password set by spoolctl authenticates at smtpd (yescrypt checked
    by smtpd); a changed password and a deleted account apply at once."""
    import smtplib

    if not os.path.exists(smtpgate.binary("smtpd")):
        pytest.skip("smtpd not built")
    g = smtpgate.Gateway(tls=True, port_tls="starttls", extra={"auth_plaintext": "yes"})
    try:
        g.add_account("authed", password=SECRET)
        g.start("smtpd")

        def login(pw):
            s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
            try:
                s.ehlo("me")
                s.login("authed", pw)
                return True
            except smtplib.SMTPAuthenticationError:
                return False
            finally:
                try:
                    s.quit()
                except smtplib.SMTPException:
                    pass

        assert login(SECRET)
        assert not login("wrong-" + SECRET)
        g.spoolctl("account", "add", "authed", "--update", "--password", "n3w-" + SECRET)
        assert login("n3w-" + SECRET) and not login(SECRET)
        g.spoolctl("account", "del", "authed")
        assert not login("n3w-" + SECRET)
    finally:
        g.close()
