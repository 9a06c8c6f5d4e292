"""Sealed policy rows in PostgreSQL (cluster_secret_file; clusterd(8)
"Sealed rows"): with the key, smtpgate.policy holds no DKIM private key,
password hash or callback secret in clear, yet every node mirrors them; a
value moved to another row, or a row written in clear, does not apply; a
node with another key applies nothing sealed; `spoolctl cluster seal`
seals the rows written before the key. Two or three gateways on one
private PostgreSQL (lib/pg.py); every wait is bounded.
"""
import os
import secrets
import subprocess
import tempfile

import pytest

import pg
import smtpgate
from pg import db  # noqa: F401 (the fixture)
from smtpgate import binary, run_as, wait_for
from test_cluster_policy import auth_plain, node, timed_wait

MAGIC = "\\x0073677365616c31"  # bytea literal of "\0sgseal1"


@pytest.fixture
def keydir():
    d = tempfile.mkdtemp(prefix="sgseal-")
    yield d
    subprocess.run(["rm", "-rf", d], timeout=30)


def key_file(d, name, text=None, mode=0o600):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text if text is not None else secrets.token_hex(32) + "\n")
    os.chmod(path, mode)
    return path


def clear_rows(db):
    """Rows with a value that is not sealed."""
    return int(db.scalar("SELECT count(*) FROM smtpgate.policy WHERE value IS NOT NULL "
                         "AND substring(value from 1 for 8) <> '%s'::bytea" % MAGIC))


def ed25519_key(g):
    key = os.path.join(g.dir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", key],
                   check=True, capture_output=True, timeout=60)
    os.chmod(g.dir, 0o755)
    os.chmod(key, 0o644)
    return key


def restart_clusterd(g):
    g.stop("clusterd")
    g.start("clusterd")


def test_sealed_rows_mirror_and_hide_their_secrets(db, keydir):
    kf = key_file(keydir, "cluster.key")
    a = node(db, cluster_secret_file=kf)
    b = None
    try:
        b = node(db, cluster_secret_file=kf)
        cbsec = "cbs" + secrets.token_hex(16)
        r = a.spoolctl("account", "add", "shop", "--password", "s3cret-pw",
                       "--callback-secret", cbsec)
        assert "published" in r.stderr, r.stderr
        key = ed25519_key(a)
        a.spoolctl("dkim", "add", "acc", "example.com", "--selector", "s1", "--key", key,
                   "--default")
        timed_wait(lambda: auth_plain(b, "shop", "s3cret-pw"), "the account on node B")
        timed_wait(lambda: b.spoolctl_json("dkim", "list", "acc"), "the DKIM key on B")
        name = b.spoolctl_json("dkim", "list", "acc")[0]["keyfile"]
        with open(key, "rb") as f, open(os.path.join(b.spool, "keys", name), "rb") as g:
            assert f.read() == g.read()
        # nothing of it is readable in PostgreSQL
        assert int(db.scalar("SELECT count(*) FROM smtpgate.policy")) >= 4
        assert clear_rows(db) == 0
        for needle in ("PRIVATE KEY", cbsec, "$y$"):  # yescrypt hashes start "$y$"
            n = db.scalar("SELECT count(*) FROM smtpgate.policy "
                          "WHERE position(convert_to('%s', 'UTF8') in value) > 0" % needle)
            assert n == "0", needle
        # a sealed value moved to another row opens nowhere: no account
        # "evil" with shop's password
        db.query("INSERT INTO smtpgate.policy (kind, key, value, origin) "
                 "SELECT kind, convert_to('evil', 'UTF8') || substring(key from "
                 "position('\\x00'::bytea in key)), value, 'intruder' "
                 "FROM smtpgate.policy WHERE kind = 'accounts' AND "
                 "key >= convert_to('shop', 'UTF8') AND key < convert_to('shoq', 'UTF8')")
        # and a row in clear is not taken either
        db.query("INSERT INTO smtpgate.policy (kind, key, value, origin) VALUES "
                 "('stoplist', convert_to('acc', 'UTF8') || '\\x00'::bytea || "
                 "convert_to('victim@example.net', 'UTF8'), '\\x01'::bytea, 'intruder')")
        timed_wait(lambda: "does not open with cluster_secret_file" in b.log("clusterd"),
                   "B to refuse the moved value")
        timed_wait(lambda: "not sealed, and cluster_secret_file is set" in b.log("clusterd"),
                   "B to refuse the row in clear")
        assert not auth_plain(b, "evil", "s3cret-pw")
        assert not auth_plain(a, "evil", "s3cret-pw")
        assert "victim@example.net" not in b.spoolctl("stoplist", "list", "acc").stdout
    finally:
        if b is not None:
            b.close()
        a.close()


def test_rows_in_clear_sealed_later_and_another_key_opens_nothing(db, keydir):
    a = node(db)
    b = c = None
    try:
        b = node(db)
        a.spoolctl("account", "add", "shop", "--password", "pw-one")
        timed_wait(lambda: auth_plain(b, "shop", "pw-one"), "the account on node B")
        assert clear_rows(db) > 0
        assert "cluster_secret_file is not set" in a.log("clusterd")
        kf = key_file(keydir, "cluster.key")
        for g in (a, b):
            g.conf["cluster_secret_file"] = kf
            g.write_conf()
            restart_clusterd(g)
        r = a.spoolctl("cluster", "seal")
        assert r.returncode == 0 and "sealed" in r.stdout, (r.stdout, r.stderr)
        assert clear_rows(db) == 0
        assert a.spoolctl("cluster", "seal").stdout.strip() == "sealed 0 row(s) in PostgreSQL"
        a.spoolctl("account", "set", "shop", "--password", "pw-two")
        timed_wait(lambda: auth_plain(b, "shop", "pw-two"), "the new password on B")
        # a node with another key applies none of it
        c = node(db, cluster_secret_file=key_file(keydir, "other.key"))
        timed_wait(lambda: "does not open with cluster_secret_file" in c.log("clusterd"),
                   "C to refuse the rows")
        assert not auth_plain(c, "shop", "pw-two")
    finally:
        for g in (c, b, a):
            if g is not None:
                g.close()


@pytest.mark.parametrize("text,mode,want", [
    (None, 0o604, "readable by every user"),
    ("abcd\n", 0o600, "not 64 hexadecimal digits"),
    ("zz" * 32, 0o600, "not 64 hexadecimal digits"),
])
def test_bad_secret_file_is_a_config_error(db, keydir, text, mode, want):
    from smtpgate import Gateway
    kf = key_file(keydir, "bad.key", text, mode)
    with Gateway(extra={"cluster_dsn": db.dsn, "cluster_secret_file": kf}) as g:
        r = subprocess.run([binary("clusterd"), "-c", g.conf_path], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2, r
        assert "cluster_secret_file" in r.stderr and want in r.stderr, r.stderr
        # read-only commands never read it; a change is kept for clusterd
        r = g.spoolctl("account", "list", check=False)
        assert r.returncode == 0 and "cluster_secret_file" not in r.stderr, (r.stdout, r.stderr)
        r = g.spoolctl("account", "add", "shop", "--password", "pw", check=False)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert want in r.stderr and "1 change(s) left for clusterd to publish" in r.stderr, \
            r.stderr


def test_key_rotation_skips_no_row(db, keydir):
    """clusterd(8) "Changing the key": with cluster_secret_file_accept the
    nodes apply rows sealed with either key, so a node switched to the new
    key and one not yet switched still apply each other's changes; then
    `spoolctl cluster seal` seals every old-key row again with the new
    key, and a node holding only the new key applies every row. A row
    that opens with neither key is reported (exit 1) and left alone."""
    old, new = key_file(keydir, "old.key"), key_file(keydir, "new.key")
    a = node(db, cluster_secret_file=old)
    b = c = None
    try:
        b = node(db, cluster_secret_file=old)
        a.spoolctl("account", "add", "shop", "--password", "pw-one")
        timed_wait(lambda: auth_plain(b, "shop", "pw-one"), "the account on B")

        def switch(g, current, accept):
            g.conf["cluster_secret_file"] = current
            if accept is None:
                g.conf.pop("cluster_secret_file_accept", None)
            else:
                g.conf["cluster_secret_file_accept"] = accept
            g.write_conf()
            restart_clusterd(g)

        for g in (a, b):                # 1: both accept the new key
            switch(g, old, new)
        assert "cluster_secret_file_accept is set" in a.log("clusterd")
        switch(a, new, old)             # 2: A seals with it, B not yet
        a.spoolctl("account", "add", "late", "--password", "pw-late")
        timed_wait(lambda: auth_plain(b, "late", "pw-late"), "A's new-key row on B")
        b.spoolctl("account", "set", "shop", "--password", "pw-two")
        timed_wait(lambda: auth_plain(a, "shop", "pw-two"), "B's old-key row on A")
        switch(b, new, old)
        for g in (a, b):
            assert "does not open" not in g.log("clusterd"), g.log("clusterd")[-2000:]
        # a row no key of ours opens: reported, left alone
        db.query("INSERT INTO smtpgate.policy (kind, key, value, origin) VALUES "
                 "('stoplist', convert_to('acc', 'UTF8') || '\\x00'::bytea || "
                 "convert_to('x@example.net', 'UTF8'), '%s'::bytea || "
                 "decode(repeat('ab', 40), 'hex'), 'intruder')" % MAGIC)
        r = a.spoolctl("cluster", "seal", check=False)   # 3
        print(r.stdout)
        assert r.returncode == 1, (r.stdout, r.stderr)
        again = int(r.stdout.split("opened only with cluster_secret_file_accept")[0]
                    .split(":")[-1].split()[0])
        assert again >= 2, r.stdout     # shop (B's change) and acc at least
        assert "left as they are: 1 row(s)" in r.stdout, r.stdout
        db.query("DELETE FROM smtpgate.policy WHERE origin = 'intruder'")
        r = a.spoolctl("cluster", "seal")
        assert "cluster_secret_file_accept\n" in r.stdout and ": 0 row(s)" in r.stdout, r.stdout
        # a node with the new key alone applies every row
        c = node(db, cluster_secret_file=new)
        timed_wait(lambda: auth_plain(c, "shop", "pw-two") and auth_plain(c, "late", "pw-late"),
                   "every row on a new-key-only node")
        assert "does not open" not in c.log("clusterd"), c.log("clusterd")[-2000:]
        for g in (a, b):                # 4: the old key is gone
            switch(g, new, None)
        a.spoolctl("account", "set", "late", "--password", "pw-three")
        timed_wait(lambda: auth_plain(b, "late", "pw-three"), "a change after the rotation")
    finally:
        for g in (c, b, a):
            if g is not None:
                g.close()


@pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root (users)")
def test_root_only_secret_file_spoolctl_without_root(db, keydir):
    """cluster_secret_file root's alone (0600 in a 0700 directory): a
    member of group smtpgate runs the read-only commands; spoold_user's
    change is committed and left to clusterd, which publishes it sealed;
    cluster export, which writes values itself, refuses clearly instead of
    writing them in clear; root still publishes at once."""
    kf = key_file(keydir, "cluster.key")
    a = node(db, cluster_secret_file=kf)
    try:
        spoolctl = [binary("spoolctl"), "-c", a.conf_path]
        for cmd in (["account", "list"], ["queue"], ["issues"], ["bounces"]):
            r = run_as("nobody", spoolctl + cmd, only_group="smtpgate")
            assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        timed_wait(lambda: int(db.scalar("SELECT count(*) FROM smtpgate.policy")) > 0,
                   "the first account published")
        n = int(db.scalar("SELECT count(*) FROM smtpgate.policy"))
        r = run_as("smtpgate", spoolctl + ["stoplist", "add", "acc", "stop@example.net"])
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "cluster_secret_file %s: Permission denied: 1 change(s) left for clusterd " \
               "to publish" % kf in r.stderr, r.stderr
        assert "stop@example.net" in a.spoolctl("stoplist", "list", "acc").stdout
        timed_wait(lambda: int(db.scalar("SELECT count(*) FROM smtpgate.policy")) > n,
                   "clusterd publishing the change")
        assert clear_rows(db) == 0
        r = run_as("smtpgate", spoolctl + ["cluster", "export"])
        assert r.returncode == 1 and "cluster export: cluster_secret_file %s: " \
            "Permission denied" % kf in r.stderr, (r.stdout, r.stderr)
        assert clear_rows(db) == 0
        r = a.spoolctl("stoplist", "add", "acc", "stop2@example.net")
        assert "published 1 change(s) to PostgreSQL" in r.stderr, r.stderr
        assert clear_rows(db) == 0
    finally:
        a.close()
