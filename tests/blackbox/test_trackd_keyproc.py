"""trackd's key process (trackd-key, smtpd-key's design for trackd): with
track_listen ... tls=implicit the HTTP process (libmicrohttpd, GnuTLS)
has the certificate chain and an external key whose signatures come from
trackd-key over smtpd's key protocol. HTTPS works with RSA and P-256
certificates over TLS 1.3 and 1.2, PKCS#1 v1.5, RSA-PSS and ECDSA; RSA key
exchange (a decryption) is never done; the private key is in no memory of
the HTTP process; a killed or stopped key process fails a handshake and
stops trackd (exit 1, systemd restarts it), bounded, as a lost backend
does. Real binaries on 127.0.0.1; every wait bounded.
"""
import os
import signal
import socket
import ssl
import struct
import subprocess

import pytest

import smtpgate
from smtpgate import wait_for
from test_smtpd_keyproc import found_in, make_key_cert, secrets
from test_trackd import gateway as track_gateway, start_trackd
from test_trackd_priv import steal_fd

needs_root = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")


def gateway(kind, combined=False):
    """A gateway whose trackd serves HTTPS with an RSA-2048 or a P-256
    certificate (the key file root's alone, 0600); combined: one file
    with the key and the certificate for both tls_key and tls_cert."""
    g = track_gateway(track_tls="implicit")
    g.cert, g.key = make_key_cert(g.dir, kind)
    g.conf["tls_cert"], g.conf["tls_key"] = g.cert, g.key
    if combined:
        both = os.path.join(g.dir, "both.pem")
        with open(g.key, "rb") as k, open(g.cert, "rb") as c, \
                open(os.open(both, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(k.read() + c.read())
        g.conf["tls_cert"] = g.conf["tls_key"] = both
    g.write_conf()
    return g


def key_procs(g):
    return [p for p in smtpgate.session_procs(g.pid("trackd")) if p["name"] == "trackd-key"]


def one_key_proc(g):
    wait_for(lambda: len(key_procs(g)) == 1, 15, what="one trackd-key")
    return key_procs(g)[0]


def client_ctx(cafile, version=None, ciphers=None):
    """Verifies the chain against the test certificate; the handshake's
    signature is checked against its key whatever the chain."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def https_get(g, ctx, path="/o/nothing", timeout=15):
    """One HTTPS request: (TLS version, cipher, status line)."""
    with socket.create_connection(("127.0.0.1", g.track_port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t.test\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return s.version(), s.cipher()[0], data.split(b"\r\n", 1)[0]


def s_client(g, *args):
    """openssl s_client (TLS 1.2, the signature algorithms given): its
    output, for the handshakes Python's ssl cannot ask for."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % g.track_port,
                        "-CAfile", g.cert, "-tls1_2", "-brief"] + list(args),
                       input=b"", capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


# ---------------------------------------------------------------- handshakes

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_https_signs_through_the_key_process(kind):
    """TLS 1.3 and TLS 1.2 (ECDHE) requests get their answer (404 for an
    unknown token: the backend answered), the server's signature checked
    by the client; TLS 1.2 with PKCS#1 v1.5 (RSA) or ECDSA with SHA-384
    too; a client offering only RSA key exchange gets no handshake; the
    key process refused nothing; SIGTERM stops all of trackd, exit 0."""
    with gateway(kind) as g:
        g.start("spoold")
        start_trackd(g)
        one_key_proc(g)
        v, c, st = https_get(g, client_ctx(g.cert, ssl.TLSVersion.TLSv1_3))
        assert (v, st) == ("TLSv1.3", b"HTTP/1.1 404 Not Found"), (v, c, st)
        v, c, st = https_get(g, client_ctx(g.cert, ssl.TLSVersion.TLSv1_2))
        assert v == "TLSv1.2" and c.startswith("ECDHE-%s-" % (
            "RSA" if kind == "rsa" else "ECDSA")), (v, c)
        assert st == b"HTTP/1.1 404 Not Found", st
        sigalgs = ["RSA+SHA256", "RSA+SHA512", "rsa_pss_rsae_sha384"] if kind == "rsa" \
            else ["ECDSA+SHA384", "ECDSA+SHA256"]
        for alg in sigalgs:
            rc, out = s_client(g, "-sigalgs", alg)
            assert rc == 0 and "Verification: OK" in out, (alg, out)
        rsa_kex = client_ctx(g.cert, ssl.TLSVersion.TLSv1_2,
                             "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(g, rsa_kex)
        log = g.log("trackd")
        assert "request refused" not in log and "no signature" not in log, log
        # and it still serves
        assert https_get(g, client_ctx(g.cert))[2] == b"HTTP/1.1 404 Not Found"
        # SIGTERM: trackd exits 0 and the key process follows (EOF)
        p = g.procs["trackd"]
        g.stop("trackd")
        assert p.returncode == 0, g.log("trackd")
        wait_for(lambda: not smtpgate.session_procs(p.pid), 15, what="trackd's processes gone")


# ---------------------------------------------------------------- memory

@needs_root
@pytest.mark.parametrize("kind,combined", [("rsa", False), ("ec", False), ("rsa", True)],
                         ids=["rsa", "ec", "rsa-one-file"])
def test_no_private_key_in_the_http_process_memory(kind, combined):
    """As a taken-over HTTP process would: after HTTPS requests, read its
    own writable memory and look for the key's secret numbers (RSA p, q,
    d; the EC scalar) and its PEM text. The key process, as trackd_user,
    not dumpable, no_new_privs, chrooted into a removed directory, holds them (the search can find them); the HTTP
    process does not, also when tls_cert is the file that holds the key
    too (it read it for the certificates)."""
    with gateway(kind, combined) as g:
        g.start("spoold")
        start_trackd(g)
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            for _ in range(2):
                assert https_get(g, client_ctx(g.cert, version))[2].startswith(b"HTTP/1.1 ")
        with open("/proc/%d/maps" % g.pid("trackd")) as f:
            if "libasan" in f.read():
                pytest.skip("ASan build: terabytes of shadow and allocator mappings to search")
        sec = secrets(g.key)
        leaked = found_in(g.pid("trackd"), sec)
        assert not leaked, "private key material in the HTTP process: %s" % leaked
        key = one_key_proc(g)
        assert key["uids"][0] != 0 and key["uids"] != smtpgate.trackd_procs(g)["http"]["uids"]
        with open("/proc/%d/status" % key["pid"]) as f:
            assert "\nNoNewPrivs:\t1\n" in f.read()
        assert os.stat("/proc/%d/mem" % key["pid"]).st_uid == 0, "dumpable"
        assert key["root"] != "/" and key["root"].endswith("(deleted)"), key["root"]
        held = found_in(key["pid"], sec)
        assert held, "the key process's memory shows no key: the search is blind"


def key_channels(http, key):
    """The HTTP process's ends of its sockets to the key process (fd
    numbers), from ss's peer inodes."""
    r = subprocess.run(["ss", "-xpn"], capture_output=True, text=True, timeout=30)
    peers = set()
    for line in r.stdout.splitlines():
        f = line.split()
        if f and f[0] == "u_seq" and "pid=%d," % key in line:
            peers.add("socket:[%s]" % f[7])
    out = []
    for fd in os.listdir("/proc/%d/fd" % http):
        try:
            if os.readlink("/proc/%d/fd/%s" % (http, fd)) in peers:
                out.append(int(fd))
        except OSError:
            pass
    return sorted(out)


@needs_root
def test_taken_over_http_process_gets_no_decryption():
    """What a taken-over HTTP process could write on its socket to the key
    process: an RSA block that is no PSS encoding (a raw RSA decryption of
    a client's key exchange, or a signature of anything). The key process
    answers no (an empty KEY_R_NO for that id), closes that socket and says
    why: it never does the bare RSA operation."""
    with gateway("rsa") as g:
        g.start("spoold")
        start_trackd(g)
        key = one_key_proc(g)["pid"]
        http = g.pid("trackd")
        fds = key_channels(http, key)
        assert fds, "no socket to the key process"
        fd = steal_fd(http, fds[0])
        if fd is None:
            pytest.skip("pidfd_getfd refused here")
        with socket.socket(fileno=fd) as s:
            s.settimeout(10)
            block = b"\x00" + os.urandom(255)      # below the modulus, as a ciphertext is
            # version 1, TLS_SIGN_RSA_PSS, payload length, id; TLS_MD_NONE, the block
            s.send(struct.pack(">BBHI", 1, 2, 1 + len(block), 7) + b"\x00" + block)
            assert s.recv(2048) == struct.pack(">BBHI", 1, 0x82, 0, 7)
            assert s.recv(2048) == b"", "the key process kept the socket open"
        wait_for(lambda: "key: request refused (not a PSS encoding)" in g.log("trackd"),
                 10, what="the key process's line")


# ---------------------------------------------------------------- failures

def test_killed_key_process_stops_trackd():
    """SIGKILL to trackd-key: trackd says so and exits 1 (systemd restarts
    it with a new key process), within a bounded wait; no process of it
    is left."""
    with gateway("rsa") as g:
        g.start("spoold")
        start_trackd(g)
        key = one_key_proc(g)["pid"]
        https_get(g, client_ctx(g.cert))
        os.kill(key, signal.SIGKILL)
        assert g.procs["trackd"].wait(timeout=30) == 1
        assert "key process (pid %d) exited" % key in g.log("trackd"), g.log("trackd")
        wait_for(lambda: not smtpgate.session_procs(g.pid("trackd")), 30,
                 what="trackd's processes gone")


def test_stopped_key_process_fails_the_handshake_then_stops_trackd():
    """trackd-key stopped (SIGSTOP): a handshake gets no signature in
    TRACKD_KEY_TIMEOUT_MS (5 s) and fails, the client is not left hanging
    (its own wait is 20 s); trackd exits 1 for a restart. Once the key
    process runs again it follows its parent out."""
    with gateway("ec") as g:
        g.start("spoold")
        start_trackd(g)
        key = one_key_proc(g)["pid"]
        os.kill(key, signal.SIGSTOP)
        try:
            with pytest.raises((ssl.SSLError, OSError)):
                https_get(g, client_ctx(g.cert), timeout=20)
            assert g.procs["trackd"].wait(timeout=30) == 1
            assert "key: no signature from the key process" in g.log("trackd")
        finally:
            os.kill(key, signal.SIGCONT)
        wait_for(lambda: not smtpgate.session_procs(g.pid("trackd")), 30,
                 what="trackd's processes gone")


def test_bad_key_exits_2():
    """A tls_key that is not the certificate's: trackd does not start
    (exit 2), one line naming the file, the key and why."""
    with gateway("rsa") as g:
        _, other = make_key_cert(g.dir, "ec")
        g.conf["tls_key"] = other
        g.write_conf()
        r = subprocess.run([smtpgate.binary("trackd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "key does not match certificate" in r.stderr, r.stderr
        assert g.conf_path in r.stderr and "tls_key" in r.stderr, r.stderr
