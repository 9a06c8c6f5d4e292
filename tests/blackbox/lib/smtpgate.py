"""Black-box test harness: runs the real smtpgate binaries on 127.0.0.1.

A Gateway owns a temporary spool and config file with free loopback ports.
Every wait is bounded; every process is stopped (SIGTERM, then SIGKILL) by
PID at the end. As root, the daemons drop to the users in the config
(ensure_users() creates them); as an ordinary user they run unprivileged.
"""
import json
import select
import ssl
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SRCDIR = os.environ.get("SMTPGATE_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILDDIR = os.environ.get("SMTPGATE_BUILDDIR") or SRCDIR

BINARIES = {
    "smtpd": "smtpd/smtpd",
    "spoold": "spoold/spoold",
    "deliverd": "deliverd/deliverd",
    "spoolctl": "spool/spoolctl",
    "sendmail": "smtpd/smtpgate-sendmail",
    "trackd": "trackd/trackd",
    "clusterd": "clusterd/clusterd",
    "track-seed": "tests/tools/track-seed",
}

IS_ROOT = os.geteuid() == 0


def binary(name):
    return os.path.join(BUILDDIR, BINARIES[name])


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def complete_lines(path, errors="replace"):
    """The text of a file another process is still appending to, up to its
    last newline: a line being written is left for the next read (a reader
    that took it would see half a log line or half a JSON object)."""
    with open(path, "rb") as f:
        data = f.read()
    return data[:data.rfind(b"\n") + 1].decode(errors=errors)


def read_events(path):
    """The events of an event log (JSON lines), complete lines only."""
    try:
        text = complete_lines(path, errors="strict")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value; raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_port(port, host="127.0.0.1", timeout=10.0):
    def ok():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(ok, timeout, what="port %d" % port)


def ensure_group(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)
        return grp.getgrnam(name).gr_gid


def ensure_users():
    """As root: create the system users and groups the daemons drop to
    (contrib/sysusers.d): smtpgate-smtpd (smtpd's workers' only group, which
    owns incoming/) and smtpgate-maildrop (the injector's) besides smtpgate."""
    if not IS_ROOT:
        return
    for g in ("smtpgate", "smtpgate-smtpd", "smtpgate-maildrop"):
        ensure_group(g)
    for user, extra in (("smtpgate", []), ("smtpgate-smtpd", ["-G", "smtpgate"])):
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin",
                            "-g", "smtpgate"] + extra + [user], check=True)
    # trackd's HTTP process (trackd_http_user): a user and group of its
    # own, in no group of the database's
    ensure_group("smtpgate-trackd")
    try:
        pwd.getpwnam("smtpgate-trackd")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin",
                        "-g", "smtpgate-trackd", "smtpgate-trackd"], check=True)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1/localhost."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)  # readable by the master before the drop is enough, but keep it simple
    return cert, key


class Gateway:
    """One smtpgate instance: config, spool, daemons."""

    def __init__(self, tls=True, port_tls="starttls", extra=None, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="sgtest-")
        if IS_ROOT:
            os.chmod(self.dir, 0o755)
            ensure_users()
        self.spool = os.path.join(self.dir, "spool")
        self.port = free_port()
        self.port_implicit = free_port()
        self.conf_path = os.path.join(self.dir, "smtpgate.conf")
        self.procs = {}
        self.logs = {}
        self.conf = {
            "hostname": "gate.test",
            "spool_dir": self.spool,
            "smtpd_workers": "2",
            "deliverd_workers": "2",
            "retry_schedule": "1s 2s 5s",
            "smtpd_timeout": "30s",
            "spoold_rescan_interval": "1s",
            "callback_retry_min": "1s",
            "callback_batch_wait": "0s",
            # every test peer listens on loopback: deliverd refuses those
            # next hops otherwise (mail loops, issue 14); the loop tests
            # set this to [] to see the refusal
            "allow_next_hop": ["127.0.0.0/8", "::1/128"],
            # the same for the test MTA-STS and TLS-RPT servers: fetches
            # that DNS drives refuse loopback otherwise (SSRF); the SSRF
            # tests set this to [] to see the refusal
            "allow_fetch_to": ["127.0.0.0/8", "::1/128"],
        }
        listen = ["127.0.0.1:%d tls=%s" % (self.port, port_tls if tls else "none")]
        if tls:
            self.cert, self.key = make_cert(self.dir)
            self.conf["tls_cert"] = self.cert
            self.conf["tls_key"] = self.key
            listen.append("127.0.0.1:%d tls=implicit" % self.port_implicit)
        self.listen = listen
        if extra:
            self.conf.update(extra)
        if self.conf.get("cluster_dsn"):
            # cluster mode (issue 19): a unique node name per gateway
            # (the default, the system host name, is the same for all)
            self.conf.setdefault("cluster_node", os.path.basename(self.dir))
        self.write_conf()

    # ---- configuration
    def write_conf(self):
        with open(self.conf_path, "w") as f:
            for line in self.listen:
                f.write("listen = %s\n" % line)
            for k, v in self.conf.items():
                if isinstance(v, (list, tuple)):
                    for item in v:
                        f.write("%s = %s\n" % (k, item))
                else:
                    f.write("%s = %s\n" % (k, v))

    @property
    def event_log(self):
        return self.conf.get("event_log", os.path.join(self.spool, "events.jsonl"))

    # ---- processes
    def start(self, *names, wait=True):
        """Starts daemons (default: all three, and clusterd when the config
        has cluster_dsn) and waits until they are up."""
        names = names or ("spoold", "deliverd", "smtpd") + (
            ("clusterd",) if self.conf.get("cluster_dsn") else ())
        for name in names:
            logpath = os.path.join(self.dir, name + ".log")
            logf = open(logpath, "ab")
            self.logs[name] = logpath
            p = subprocess.Popen([binary(name), "-c", self.conf_path],
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            logf.close()
            self.procs[name] = p
        if wait and "smtpd" in names:
            wait_port(self.port, timeout=15)
        if wait:
            for name in names:
                if name != "smtpd":
                    wait_for(lambda: os.path.isdir(os.path.join(self.spool, "db")),
                             timeout=15, what="spool db")
                    time.sleep(0.2)
                if self.procs[name].poll() is not None:
                    raise RuntimeError("%s exited: %s" % (name, self.log(name)))
        return self

    def pid(self, name):
        return self.procs[name].pid

    def stop(self, *names, timeout=15):
        names = names or list(self.procs)
        for name in names:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
        for name in names:
            p = self.procs.get(name)
            if p is None:
                continue
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
                raise RuntimeError("%s did not stop on SIGTERM within %ss" % (name, timeout))
        for name in names:
            self.procs.pop(name, None)

    def kill(self, name, sig=signal.SIGKILL):
        """Kills a daemon's whole process group (master and children)."""
        p = self.procs.pop(name)
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)

    def log(self, name):
        try:
            return complete_lines(self.logs[name])
        except (KeyError, OSError):
            return ""

    def close(self):
        for name in list(self.procs):
            try:
                self.stop(name, timeout=10)
            except Exception:
                pass
        for name, p in list(self.procs.items()):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except Exception:
                pass
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- tools
    def spoolctl(self, *args, input=None, check=True, timeout=30):
        r = subprocess.run([binary("spoolctl"), "-c", self.conf_path] + list(args),
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("spoolctl %s: exit %d: %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def spoolctl_json(self, *args, **kw):
        return json.loads(self.spoolctl(*(list(args) + ["--json"]), **kw).stdout)

    def add_account(self, login, password=None, ips=(), sandbox=False, extra=()):
        args = ["account", "add", login]
        if password is not None:
            args += ["--password", password]
        for ip in ips:
            args += ["--ip", ip]
        if sandbox:
            args.append("--sandbox")
        args += list(extra)
        return self.spoolctl(*args)

    def events(self):
        return read_events(self.event_log)

    def wait_events(self, pred, timeout=20, what="events"):
        return wait_for(lambda: [e for e in self.events() if pred(e)] or None,
                        timeout, what=what)

    def files(self, area):
        d = {"new": "incoming/new", "tmp": "incoming/tmp", "queue": "queue",
             "quarantine": "quarantine", "maildrop": "maildrop"}[area]
        try:
            return sorted(f for f in os.listdir(os.path.join(self.spool, d))
                          if not f.startswith("."))
        except FileNotFoundError:
            return []


def message(frm="sender@example.com", to="rcpt@example.net", subject="test",
            body="hello\r\n", headers=None, omit=(), msgid=None):
    """A complete message with every header the seed requires."""
    h = [
        ("Message-Id", msgid or "<%d.%d@example.com>" % (time.time_ns(), os.getpid())),
        ("Date", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())),
        ("From", frm),
        ("To", to),
        ("Subject", subject),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    h = [(k, v) for k, v in h if k not in omit]
    for k, v in (headers or {}).items():
        h.append((k, v))
    text = "".join("%s: %s\r\n" % kv for kv in h) + "\r\n" + body
    return text.encode()


# The stat.uni query the seed document gives as its example (every bounce
# of source 1, newest first); spoolctl query must answer it as written.
SEED_QUERY = {
    "filter": [{"a": "delivstream.status", "v": "bounced", "op": "=="},
               {"a": "delivstream.source", "op": "==", "v": "1"}],
    "action": "stat.uni",
    "select": ["delivstream.to", "delivstream.dt", "delivstream.msg"],
    "first": 100,
    "order": ["-delivstream.dt"],
}


def callback_events(body):
    """The events of one callback POST body: {"events":[...]}, or JSON
    objects one after another (--callback-format stream)."""
    text = body.decode()
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "events" in doc:
            return doc["events"]
    except ValueError:
        pass
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


# ---- filing records directly (deliverd tests: no smtpd/spoold involved)

def inject(g, *args, check=True, env=None):
    """tests/tools/deliverd-inject -c CONF ARGS... (accounts, keys, messages
    through the spool API); the words it printed (QIDs)."""
    r = subprocess.run([os.path.join(BUILDDIR, "tests", "tools", "deliverd-inject"),
                        "-c", g.conf_path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **env) if env else None)
    if check and r.returncode != 0:
        raise RuntimeError("deliverd-inject %s: %s" % (args, r.stderr))
    return r.stdout.split()


def envelope_key(g):
    """db/envelope.key (spool_tag_load): read it, or make it as spoold would
    (32 random bytes, 0600, owned by spoold's user when root)."""
    path = os.path.join(g.spool, "db", "envelope.key")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    if IS_ROOT:
        os.chown(path, pwd.getpwnam("smtpgate").pw_uid, grp.getgrnam("smtpgate").gr_gid)
    return key


def envelope_tag(g, account):
    """The tag smtpd's lookup process gives an account (spool_tag_make): what
    an envelope written by the tests needs for spoold to accept it."""
    import hashlib
    import hmac
    return hmac.new(envelope_key(g), b"smtpgate envelope account v1\n" + account.encode(),
                    hashlib.sha256).hexdigest()


def smtpd_envelope(q, account, rcpts, frm="bounce@example.com", t=None, tag=None):
    """An envelope as smtpd writes it (spool_env_format), tag included."""
    env = ["SMTPGATE 1", "qid " + q, "time %d" % int(t if t is not None else time.time()),
           "account " + account, "client 127.0.0.1:40000", "helo client.test", "tls ",
           "auth " + account, "from " + frm, "from_params ", "tag " + (tag or "")]
    env += ["rcpt " + r for r in rcpts]
    return ("\n".join(env) + "\n\n").encode()


def put_msg(g, login, rcpts, frm="sender@example.com", count=1, msg=None, envfrom=None,
            env=None):
    """Files COUNT copies of a message to rcpts ("{n}" numbers them) for
    account login, due now; their QIDs."""
    path = os.path.join(g.dir, "msg-%d.eml" % time.time_ns())
    with open(path, "wb") as f:
        f.write(msg or message(frm=frm, to=", ".join(rcpts)))
    return inject(g, "msg", login, envfrom if envfrom is not None else frm, frm, path,
                  count, *rcpts, env=env)


def put_one(g, rcpt, login="acc"):
    """Files one message to rcpt for account login, due now; its QID."""
    qid, = put_msg(g, login, [rcpt])
    return qid


def smtp_send(g, rcpts, envfrom="sender@example.com", msg=None, helo=None,
              conn=None, noop=False, timeout=30, **kw):
    """Sends one message to g's smtpd over plain SMTP from 127.0.0.1: msg,
    or message(to=rcpts[0], **kw). Quits unless conn (an open
    smtplib.SMTP) was given. With noop, a NOOP follows the message and its
    reply is returned."""
    import smtplib
    s = conn or smtplib.SMTP("127.0.0.1", g.port, timeout=timeout)
    try:
        if helo:
            s.ehlo(helo)
        s.sendmail(envfrom, rcpts, msg if msg is not None else message(to=rcpts[0], **kw))
        return s.noop() if noop else None
    finally:
        if conn is None:
            s.quit()


def relaying_gateway(mx_port, login="acc", **extra):
    """A started gateway (smtpd, spoold, deliverd; no TLS) relaying to
    127.0.0.1:mx_port, retrying only after 1h, with account login allowed
    from 127.0.0.1. Skips the test when the daemons are not built."""
    import pytest
    if not all(os.path.exists(binary(n)) for n in ("smtpd", "spoold", "deliverd")):
        pytest.skip("daemons not built")
    conf = {"relayhost": "127.0.0.1:%d" % mx_port, "retry_schedule": "1h"}
    conf.update(extra)
    g = Gateway(tls=False, port_tls="none", extra=conf)
    try:
        g.add_account(login, ips=["127.0.0.1/32"])
        g.start()
    except BaseException:
        g.close()
        raise
    return g


def smtpd_gateway(login, password, pinned_ip, **extra):
    """A gateway (TLS on) running smtpd only, with account login (password)
    and account "pinned" allowed from pinned_ip; extra: config keys."""
    g = Gateway(extra=extra)
    try:
        g.add_account(login, password=password)
        g.add_account("pinned", ips=[pinned_ip + "/32"])
        g.start("smtpd")
    except BaseException:
        g.close()
        raise
    return g


def one_line_error(r, code):
    """Asserts that spoolctl run r exited with code and said exactly one
    line on stderr, "spoolctl: ..."; that line."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spoolctl: "), r.stderr
    return lines[0]


# ---- a stepped wall clock (libfaketime, Debian package faketime)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def start_faketime(g, name="deliverd"):
    """Starts g's daemon `name` under libfaketime with a runtime offset file
    (written "+0"; the monotonic clock is left alone, as with an NTP step).
    Returns (offset file, environment for the tools that must share the
    clock)."""
    tsfile = os.path.join(g.dir, "faketime.rc")
    with open(tsfile, "w") as f:
        f.write("+0\n")
    os.chmod(g.dir, 0o755)
    os.chmod(tsfile, 0o644)
    fake = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": tsfile,
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_RESET": "1"}
    saved = dict(os.environ)
    os.environ.update(fake)
    try:
        g.start(name)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return tsfile, fake


# ---- a small file system at spool_dir (root only)

def mount_tmpfs(g, size, *servers):
    """Mounts a tmpfs of `size` (mount's syntax: "8m") at g.spool, which it
    creates. If that fails: closes g, stops each of servers, skips the test."""
    import pytest
    os.makedirs(g.spool)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                        g.spool], capture_output=True, text=True)
    if r.returncode != 0:
        g.close()
        for srv in servers:
            srv.stop()
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.strip())


def umount_tmpfs(g):
    """Undoes mount_tmpfs (lazily: a process may still hold a file there)."""
    subprocess.run(["umount", "-l", g.spool], capture_output=True)


def fill_disk(path):
    """Creates the file at path and writes zeros to it until its file
    system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    os.close(fd)


# ---- process inspection (added for the privilege checks; Linux /proc)

def proc_info(pid):
    """uids/gids (real, effective, saved, fs), groups, session, root dir and
    name of a process, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        # the name may hold spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        try:
            root = os.readlink("/proc/%d/root" % pid)
        except OSError:
            root = None
        return {
            "pid": pid,
            "name": st.get("Name", "?"),
            "ppid": int(fields[1]),
            "session": int(fields[3]),
            "uids": [int(x) for x in st["Uid"].split()],
            "gids": [int(x) for x in st["Gid"].split()],
            "groups": [int(x) for x in st.get("Groups", "").split()],
            "root": root,
        }
    except (OSError, ValueError, KeyError):
        return None


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def smtpd_children(g):
    """(workers, lka pid or None): smtpd's master's children; the lookup
    process calls itself smtpd-lka (PR_SET_NAME), the key process
    smtpd-key (neither is a worker)."""
    from chaos import children
    workers, lka = [], None
    for k in children(g.pid("smtpd")):
        comm = proc_comm(k)
        if comm == "smtpd-lka":
            lka = k
        elif comm != "smtpd-key":
            workers.append(k)
    return workers, lka


def smtpd_key_procs(g):
    """The pids of smtpd's key processes (smtpd-key): one, and after a
    reload the retiring one until its workers are gone."""
    from chaos import children
    return [k for k in children(g.pid("smtpd")) if proc_comm(k) == "smtpd-key"]


def seqpacket_to(pid, peer_pid):
    """The descriptor of pid's SOCK_SEQPACKET socket whose other end
    peer_pid holds (ss(8) names each end's peer inode), or None."""
    def inodes(p):
        out = {}
        for fd in os.listdir("/proc/%d/fd" % p):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (p, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                out[t[8:-1]] = int(fd)
        return out
    mine, theirs = inodes(pid), inodes(peer_pid)
    r = subprocess.run(["ss", "-x", "-a", "-H"], capture_output=True, text=True,
                       timeout=10, check=True)
    for line in r.stdout.splitlines():
        f = line.split()
        # u_seq STATE RECV SEND * LOCAL_INODE * PEER_INODE
        if len(f) >= 8 and f[0] == "u_seq" and f[5] in mine and f[7] in theirs:
            return mine[f[5]]
    return None


def trackd_procs(g):
    """trackd's processes by role, from their names: "http" (trackd, the
    libmicrohttpd process), "backend" (trackd-backend), "commit"
    (trackd-commit); each proc_info() or absent."""
    roles = {"trackd": "http", "trackd-backend": "backend", "trackd-commit": "commit"}
    return {roles[p["name"]]: p for p in session_procs(g.pid("trackd"))
            if p["name"] in roles}


def session_procs(sid):
    """Every live process whose session id is sid (a daemon started by
    Gateway.start() leads its own session, so this is it and its children)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            info = proc_info(int(d))
            if info is not None and info["session"] == sid:
                out.append(info)
    return out


def socket_owners(local_port, remote_port):
    """PIDs holding the TCP socket 127.0.0.1:local_port <-> remote_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    rport = int(p[2].rsplit(":", 1)[1], 16)
                    if lport == local_port and rport == remote_port:
                        inodes.add("socket:[%s]" % p[9])
        except OSError:
            pass
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % d):
                try:
                    if os.readlink("/proc/%s/fd/%s" % (d, fd)) in inodes:
                        pids.add(int(d))
                except OSError:
                    pass
        except OSError:
            pass
    return sorted(pids)


def run_as(user, argv, timeout=30, only_group=None, **kw):
    """Runs argv as `user` with that user's groups (root only); with
    only_group, with that group alone, as smtpd's workers drop to it."""
    pw = pwd.getpwnam(user)
    groups = [] if only_group else [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
    gid = grp.getgrnam(only_group).gr_gid if only_group else pw.pw_gid
    return subprocess.run(argv, user=pw.pw_uid, group=gid,
                          extra_groups=groups, capture_output=True, text=True,
                          timeout=timeout, **kw)


# The start of a probe script (python3 -c, run as some user): can(fn) is
# "yes" if fn() raises no OSError, else "no".
PROBE_CAN = r"""
import os, sys
def can(fn):
    try:
        fn()
        return "yes"
    except OSError:
        return "no"
"""


def tls_ctx():
    """A client TLS context that accepts the tests' self-signed certificates."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A raw SMTP client: exact bytes out, replies parsed by line."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10, tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """One complete (possibly multi-line) reply as (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def starttls(self):
        self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""

    def silent(self):
        """True if no byte of a reply has arrived yet (checked without
        waiting): with another session's reply as the clock, an order."""
        if self.buf or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return False
        return not select.select([self.sock], [], [], 0)[0]

    def closed(self, timeout=5):
        """True if the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(4096)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
