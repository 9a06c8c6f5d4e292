"""smtpd's key process (smtpd-key, OpenSMTPD's ca): the TLS private key is
in no worker's memory, and not in the master's; the workers' handshakes
get their signatures from the key process, for RSA and ECDSA (P-256)
certificates, TLS 1.2 and 1.3, STARTTLS and implicit TLS; RSA key
exchange is never offered; a taken-over worker can have only signatures
made (never a raw RSA decryption); a hung key process fails handshakes,
never a worker; a killed key process is restarted and handshakes work
again; SIGHUP loads a new key into a new key process.
"""
import os
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

import smtpgate
from smtpgate import Gateway, wait_for

needs_root = pytest.mark.skipif(not smtpgate.IS_ROOT, reason="needs root")


def make_key_cert(directory, kind):
    """A self-signed certificate for 127.0.0.1 with an RSA-2048 or a P-256
    key; the key file is root's alone (0600), as in production."""
    cert = os.path.join(directory, "%s-cert.pem" % kind)
    key = os.path.join(directory, "%s-key.pem" % kind)
    newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509"] + newkey + [
        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
        "-subj", "/CN=%s.key.test" % kind,
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def gateway(kind, **extra):
    g = Gateway(extra=dict({"smtpd_workers": "2"}, **extra))
    g.cert, g.key = make_key_cert(g.dir, kind)
    g.conf["tls_cert"], g.conf["tls_key"] = g.cert, g.key
    g.write_conf()
    return g


def client_ctx(cafile, tls12=False):
    """Verifies the chain against the test certificate; the handshake's
    signature is checked against its key whatever the chain."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def implicit(g, ctx, timeout=15):
    """One implicit-TLS session: (version, cipher, peer certificate CN)."""
    with socket.create_connection(("127.0.0.1", g.port_implicit), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            banner = s.recv(512)
            assert banner.startswith(b"220"), banner
            s.sendall(b"QUIT\r\n")
            return s.version(), s.cipher()[0], s.getpeercert()


def starttls(g, ctx):
    with smtplib.SMTP("127.0.0.1", g.port, timeout=15) as s:
        s.ehlo("client.test")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        assert s.ehlo("client.test")[0] == 250
        return s.sock.version(), s.sock.cipher()[0]


def secrets(keyfile):
    """{what: bytes} that only the private key has: 24 bytes from the
    middle of each secret number (RSA p, q, d; the EC scalar), in both byte
    orders (OpenSSL's BIGNUMs are little-endian words), and a line of the
    PEM text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    with open(keyfile, "rb") as f:
        pem = f.read()
    k = serialization.load_pem_private_key(pem, None)
    if isinstance(k, rsa.RSAPrivateKey):
        pn = k.private_numbers()
        nums = {"p": pn.p, "q": pn.q, "d": pn.d}
    else:
        nums = {"scalar": k.private_numbers().private_value}
    out = {}
    for name, v in nums.items():
        b = v.to_bytes((v.bit_length() + 7) // 8, "big")
        mid = b[len(b) // 2 - 12:len(b) // 2 + 12]
        out[name + " big-endian"] = mid
        out[name + " little-endian"] = mid[::-1]
    body = pem.strip().splitlines()[1:-1]
    out["PEM line"] = body[len(body) // 2]
    return out


def rw_memory(pid):
    """pid's private writable mappings (heap, stack, anonymous, data)."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if not f[1].startswith("rw") or f[1][3] != "p" or \
                    (len(f) > 5 and f[5] == "[vvar]"):
                continue
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except OSError:
                pass
    return b"".join(out)


def found_in(pid, secret):
    mem = rw_memory(pid)
    assert len(mem) > 4096, "memory of %d not read" % pid
    return sorted(k for k, v in secret.items() if v in mem)


def started_workers(g, n=2):
    wait_for(lambda: len(smtpgate.smtpd_children(g)[0]) == n, 15, what="%d workers" % n)
    return sorted(smtpgate.smtpd_children(g)[0])


def one_key_proc(g):
    wait_for(lambda: len(smtpgate.smtpd_key_procs(g)) == 1, 15, what="one smtpd-key")
    return smtpgate.smtpd_key_procs(g)[0]


# ---------------------------------------------------------------- memory

@needs_root
@pytest.mark.parametrize("kind,combined", [("rsa", False), ("ec", False), ("rsa", True)],
                         ids=["rsa", "ec", "rsa-one-file"])
def test_no_private_key_in_worker_or_master_memory(kind, combined):
    """As a taken-over worker would: after TLS sessions on both listeners,
    read the worker's own writable memory and look for the key's secret
    numbers and its PEM text. The key process holds them (the search can
    find them); the workers and the master do not, also when tls_cert is
    the file that holds the key too (the master reads it for the
    certificates)."""
    with gateway(kind) as g:
        if combined:
            with open(g.key, "rb") as k, open(g.cert, "rb") as c:
                both = k.read() + c.read()
            g.cert = os.path.join(g.dir, "both.pem")
            with open(g.cert, "wb") as f:
                f.write(both)
            os.chmod(g.cert, 0o600)
            g.conf["tls_cert"] = g.conf["tls_key"] = g.cert
            g.write_conf()
        g.start("smtpd")
        for _ in range(2):
            starttls(g, client_ctx(g.cert))
            implicit(g, client_ctx(g.cert))
        sec = secrets(g.key)
        workers = started_workers(g)
        leaks = {w: found_in(w, sec) for w in workers}
        leaks["master"] = found_in(g.pid("smtpd"), sec)
        assert not any(leaks.values()), "private key material in: %s" % leaks
        held = found_in(one_key_proc(g), sec)
        assert held, "the key process's memory shows no key: the search is blind"


# ---------------------------------------------------------------- handshakes

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_handshakes_sign_through_the_key_process(kind):
    """TLS 1.3 and 1.2 (ECDHE), STARTTLS and implicit, with the server's
    signature checked by the client; a client offering only RSA key
    exchange (which would need a decryption) gets no handshake."""
    with gateway(kind) as g:
        g.start("smtpd")
        one_key_proc(g)
        v, c = starttls(g, client_ctx(g.cert))
        assert v == "TLSv1.3", (v, c)
        v, c, peer = implicit(g, client_ctx(g.cert))
        assert v == "TLSv1.3"
        assert ("commonName", "%s.key.test" % kind) in peer["subject"][-1]
        for fn in (starttls, lambda g, ctx: implicit(g, ctx)[:2]):
            v, c = fn(g, client_ctx(g.cert, tls12=True))
            assert v == "TLSv1.2" and c.startswith("ECDHE-%s-" % (
                "RSA" if kind == "rsa" else "ECDSA")), (v, c)
        rsa_kex = client_ctx(g.cert, tls12=True)
        rsa_kex.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            implicit(g, rsa_kex)
        assert "request refused" not in g.log("smtpd")


def test_killed_key_process_is_restarted():
    """SIGKILL to smtpd-key: the master says so and starts another; the
    workers are replaced (their sockets led to the dead one) and the next
    handshakes work, within a bounded wait."""
    with gateway("rsa") as g:
        g.start("smtpd")
        old = one_key_proc(g)
        implicit(g, client_ctx(g.cert))
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: "key process %d killed by signal 9: restarting" % old
                 in g.log("smtpd"), 10, what="the master's line")
        wait_for(lambda: smtpgate.smtpd_key_procs(g) not in ([], [old]), 30,
                 what="a new key process")

        def handshake_ok():
            try:
                implicit(g, client_ctx(g.cert), timeout=5)
                return True
            except (ssl.SSLError, OSError):
                return False
        wait_for(handshake_ok, 30, interval=0.5, what="a handshake after the restart")
        starttls(g, client_ctx(g.cert))


def test_hung_key_process_fails_the_handshake_only():
    """smtpd-key stopped (SIGSTOP): a handshake gets no signature and fails
    (the client's session ends, bounded by the worker's 5 s wait); the
    workers live on and serve clear-text sessions; once the key process
    runs again (late answers to abandoned requests are skipped) the
    handshakes work again."""
    with gateway("rsa") as g:
        g.start("smtpd")
        key = one_key_proc(g)
        workers = started_workers(g)
        os.kill(key, signal.SIGSTOP)
        try:
            with pytest.raises((ssl.SSLError, OSError)):
                implicit(g, client_ctx(g.cert), timeout=20)
            wait_for(lambda: "key: no signature from the key process" in g.log("smtpd"),
                     10, what="the worker's line")
            with smtplib.SMTP("127.0.0.1", g.port, timeout=15) as s:
                assert s.ehlo("clear.test")[0] == 250
        finally:
            os.kill(key, signal.SIGCONT)
        assert sorted(smtpgate.smtpd_children(g)[0]) == workers, "a worker died"
        assert smtpgate.smtpd_key_procs(g) == [key]

        def handshakes_ok():
            # every worker: the one that waited does not ask for 3 s
            try:
                for _ in range(4):
                    implicit(g, client_ctx(g.cert), timeout=10)
                return True
            except (ssl.SSLError, OSError):
                return False
        wait_for(handshakes_ok, 30, interval=0.5, what="handshakes once it runs again")
        assert sorted(smtpgate.smtpd_children(g)[0]) == workers


def test_sighup_loads_the_new_key_in_a_new_key_process():
    """The certificate and key change from RSA to P-256 on SIGHUP: a new
    key process holds the new key, the old one leaves once the old
    workers are gone; a key that does not match its certificate is a
    failed reload and the old pair goes on."""
    with gateway("rsa") as g:
        g.start("smtpd")
        old = one_key_proc(g)
        assert implicit(g, client_ctx(g.cert))[2]["subject"][-1] == \
            (("commonName", "rsa.key.test"),)
        ec_cert, ec_key = make_key_cert(g.dir, "ec")
        g.conf["tls_cert"], g.conf["tls_key"] = ec_cert, ec_key
        g.write_conf()
        os.kill(g.pid("smtpd"), signal.SIGHUP)
        wait_for(lambda: smtpgate.smtpd_key_procs(g) not in ([], [old]) and
                 old not in smtpgate.smtpd_key_procs(g), 30,
                 what="the old key process gone, a new one")
        v, c, peer = implicit(g, client_ctx(ec_cert))
        assert peer["subject"][-1] == (("commonName", "ec.key.test"),)
        starttls(g, client_ctx(ec_cert, tls12=True))
        new = one_key_proc(g)
        # the RSA key with the EC certificate: refused, nothing changes
        g.conf["tls_key"] = g.key
        g.write_conf()
        os.kill(g.pid("smtpd"), signal.SIGHUP)
        wait_for(lambda: "reload failed, keeping the old configuration" in g.log("smtpd"),
                 10, what="the failed reload")
        assert "tls_key: %s: key does not match certificate" % g.key in g.log("smtpd")
        assert smtpgate.smtpd_key_procs(g) == [new]
        assert implicit(g, client_ctx(ec_cert))[2]["subject"][-1] == \
            (("commonName", "ec.key.test"),)


# ---------------------------------------------------------------- a taken-over worker

def key_request(kind, md, data, rid=0x4B45):
    """key_proto.h: version 1, kind, length, id, md byte + data."""
    return bytes([1, kind]) + (1 + len(data)).to_bytes(2, "big") + \
        rid.to_bytes(4, "big") + bytes([md]) + data


def ask_key_as_worker(g, worker, request):
    """The key process's reply to request sent on worker's socket to it
    (pidfd_getfd), the worker stopped meanwhile."""
    from test_priv_boundaries import ask_stolen
    fd = smtpgate.seqpacket_to(worker, one_key_proc(g))
    assert fd is not None, "no socket to smtpd-key in worker %d" % worker
    return ask_stolen(worker, fd, lambda s: s.send(request), 4096)


@needs_root
def test_worker_gets_signatures_never_a_decryption():
    """A taken-over worker asks the key process for the bare RSA private
    operation on a value of its choice (a decryption of RSA key exchange
    recorded elsewhere, say): refused, and its socket closed. A PKCS#1
    v1.5 signature over a SHA-256 digest, what a handshake asks, is made
    and verifies with the certificate's key (the channel works)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils
    with gateway("rsa", smtpd_workers="4") as g:
        g.start("smtpd")
        started_workers(g, 4)
        pub = x509.load_pem_x509_certificate(open(g.cert, "rb").read()).public_key()
        w1, w2, w3, w4 = smtpgate.smtpd_children(g)[0]
        key = one_key_proc(g)
        digest = bytes(range(32))
        r = ask_key_as_worker(g, w1, key_request(1, 1, digest))
        assert r[1] == 0x81, r[:8]
        pub.verify(r[8:], digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        # a "ciphertext" below n, as a PSS block (the only raw operation)
        c = (pub.public_numbers().n // 3).to_bytes(256, "big")
        r = ask_key_as_worker(g, w2, key_request(2, 0, c))
        assert r[1] == 0x82 and len(r) == 8, r[:8]
        wait_for(lambda: "request refused (not a PSS encoding)" in g.log("smtpd"), 10,
                 what="the refusal logged")
        # a digest of the wrong length, an unknown operation: refused too
        for w, req, why in ((w3, key_request(1, 1, digest[:20]), "not a digest"),
                            (w4, key_request(9, 1, digest), "bad request")):
            r = b""
            try:
                r = ask_key_as_worker(g, w, req)
            except OSError:
                pass
            assert r[1:2] != b"\x81", r[:8]
            wait_for(lambda: why in g.log("smtpd"), 10, what=why)
        # the key process lived through it and still signs for w1
        assert smtpgate.smtpd_key_procs(g) == [key]
        r = ask_key_as_worker(g, w1, key_request(1, 3, bytes(64)))
        assert r[1] == 0x81, r[:8]
        pub.verify(r[8:], bytes(64), padding.PKCS1v15(), utils.Prehashed(hashes.SHA512()))
