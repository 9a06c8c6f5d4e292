"""Landlock beyond the delivery workers (common/landlock.c): the other
processes that face the network run as the user that owns keys/ (the DKIM
private keys) and db/'s key files, so they confine themselves too. spoold's
metrics child (HTTP from metrics_listen) and deliverd's callback sender
(libcurl parsing customers' servers' answers), taken over, open files as
themselves: keys/, a key file in it, db/track.key, db/envelope.key and
queue/ are refused (EACCES); their work goes on (a scrape answers; events
are posted and leave the outbox).
"""
import grp
import os
import pwd

import pytest

import peers
import smtpgate
from chaos import deliverd_children
from smtpgate import Gateway, inject, put_msg, wait_for
from test_deliverd_keyproc import call_in, landlock_abi, make_track_key
from test_metrics import metrics_child, scrape

needs_root = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")
needs_gdb = pytest.mark.skipif(not os.path.exists("/usr/bin/gdb"), reason="needs gdb")
EACCES = 13


def secret_files(g):
    """keys/ with one key file in it, db/track.key, db/envelope.key, all
    owned by the daemons' user (0600, keys/ 0700): only Landlock can keep
    a process of that user from opening them."""
    uid, gid = pwd.getpwnam("smtpgate").pw_uid, grp.getgrnam("smtpgate").gr_gid
    keys = os.path.join(g.spool, "keys")
    if not os.path.isdir(keys):
        os.makedirs(keys, 0o700)
        os.chown(keys, uid, gid)
    keyfile = os.path.join(keys, "acc.example.com.s1.pem")
    if not os.path.exists(keyfile):
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\n")
        os.chown(keyfile, uid, gid)
    smtpgate.envelope_key(g)
    return [keys, keyfile, make_track_key(g),
            os.path.join(g.spool, "db", "envelope.key"),
            os.path.join(g.spool, "queue")]


def refused(pid, paths):
    """The paths pid opened itself (should be none)."""
    return [(p, r) for p in paths for r in [call_in(pid, p)] if r != (-1, EACCES)]


@needs_root
@needs_gdb
def test_metrics_child_cannot_open_keys():
    if landlock_abi() < 1:
        pytest.skip("no Landlock in this kernel")
    with peers.Mx() as mx:
        port = smtpgate.free_port()
        g = smtpgate.relaying_gateway(mx.port, metrics_listen="127.0.0.1:%d" % port)
        try:
            smtpgate.wait_port(port, timeout=15)
            paths = secret_files(g)
            for p in paths:
                os.stat(p)          # there, and open as root
            wait_for(lambda: len(metrics_child(g)) == 1, 15, what="the metrics child")
            child = metrics_child(g)[0]
            scrape(port)            # it serves
            assert refused(child, paths) == []
            # and it still serves: the database is read after the calls
            body = scrape(port)
            assert "smtpgate_" in body, body[:500]
            assert metrics_child(g) == [child]
        finally:
            g.close()


def backlog(g):
    """acc's events in the callback outbox (spoolctl callbacks status)."""
    return {a["account"]: a for a in g.spoolctl_json("callbacks", "status")}["acc"]["backlog"]


@needs_root
@needs_gdb
def test_callback_sender_cannot_open_keys():
    if landlock_abi() < 1:
        pytest.skip("no Landlock in this kernel")
    with peers.Mx() as mx, peers.Callbacks() as cb, \
            Gateway(tls=False, extra={"relayhost": "127.0.0.1:%d" % mx.port,
                                      "callback_retry_min": "1s",
                                      "callback_retry_max": "2s"}) as g:
        inject(g, "account", "acc", cb.url)
        paths = secret_files(g)
        g.start("deliverd")
        put_msg(g, "acc", ["one@dest.test"])
        wait_for(lambda: any(e["to"] == "one@dest.test" for e in cb.events), 30,
                 what="the first callback")
        wait_for(lambda: backlog(g) == 0, 15, what="the outbox emptied")
        sender = deliverd_children(g)[1]
        assert sender is not None
        assert refused(sender, paths) == []
        # it still posts, and deletes from the outbox (LMDB read-write)
        put_msg(g, "acc", ["two@dest.test"])
        wait_for(lambda: any(e["to"] == "two@dest.test" for e in cb.events), 30,
                 what="the second callback")
        wait_for(lambda: backlog(g) == 0, 15, what="the outbox emptied again")
        assert deliverd_children(g)[1] == sender


def test_kernel_without_landlock_runs_unconfined():
    """A kernel without Landlock (nolandlock-shim.so makes
    landlock_create_ruleset fail with ENOSYS, as such a kernel does): the
    delivery workers, the callback sender and the metrics child each say
    once that they are not confined, and the mail still goes out and the
    metrics are still served."""
    shim = os.path.join(smtpgate.BUILDDIR, "tests", "tools", "nolandlock-shim.so")
    if not os.path.exists(shim):
        pytest.skip("tests/tools/nolandlock-shim.so not built")
    with peers.Mx() as mx:
        port = smtpgate.free_port()
        saved = dict(os.environ)
        os.environ["LD_PRELOAD"] = shim
        try:
            g = smtpgate.relaying_gateway(mx.port, metrics_listen="127.0.0.1:%d" % port)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            smtpgate.smtp_send(g, ["a@dest.test"])
            mx.wait_received(1)
            wait_for(lambda: "workers not confined: this kernel has no Landlock"
                     in g.log("deliverd"), 15, what="the workers' line")
            wait_for(lambda: "callback sender not confined: this kernel has no Landlock"
                     in g.log("deliverd"), 15, what="the callback sender's line")
            assert g.log("deliverd").count("workers not confined") == 1, g.log("deliverd")
            smtpgate.wait_port(port, timeout=15)
            assert "smtpgate_" in scrape(port)
            wait_for(lambda: "metrics: child not confined: this kernel has no Landlock"
                     in g.log("spoold"), 15, what="the metrics child's line")
        finally:
            g.close()
