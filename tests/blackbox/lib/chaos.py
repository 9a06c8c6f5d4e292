"""Helpers for the reliability tests (issue 9): finding and killing daemon
processes, a callback receiver that can really go away (port closed), a raw
SMTP client and hostile SMTP servers for deliverd. All on 127.0.0.1, every
wait bounded, every process killed by PID.
"""
import os
import random
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import peers
import smtpgate

MSGID_RE = re.compile(rb"^Message-Id:[ \t]*(<[^>\r\n]*>)", re.M | re.I)


def message_id(data):
    m = MSGID_RE.search(data)
    return m.group(1).decode(errors="replace") if m else None


# ---------------------------------------------------------------- processes

def children(pid):
    """Direct children of pid (Linux /proc/PID/task/*/children)."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return sorted(set(out))


def pipes(pid):
    """Distinct pipe inodes a process holds."""
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("pipe:"):
                out.add(link)
    except OSError:
        pass
    return out


def deliverd_children(gw):
    """(workers, callback sender pid or None) of the running deliverd (not
    its DKIM key process, deliverd-key). A worker shares its job and
    result pipes with the master (every child has a signal self-pipe of
    its own); the callback sender closed every worker pipe."""
    from smtpgate import proc_comm
    master = gw.pid("deliverd")
    mp = pipes(master)
    workers, cb = [], None
    for k in children(master):
        if proc_comm(k) == "deliverd-key":
            continue        # the DKIM key process (deliverd_key.c)
        if pipes(k) & mp:   # its job and result pipes
            workers.append(k)
        else:
            cb = k
    return workers, cb


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_alive(pgid):
    """Live (non-zombie) processes of a process group."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


class Chaos:
    """SIGKILLs a random daemon process at random moments and restarts what
    has to be restarted (a master: the whole daemon group). kinds: the
    process kinds to choose from. Counts kills per kind in self.kills."""

    KINDS = ("smtpd-worker", "smtpd-master", "spoold", "deliverd-scheduler",
             "deliverd-worker", "callback-sender")

    def __init__(self, gw, kinds=KINDS, interval=(1.0, 3.0), seed=None):
        self.gw = gw
        self.kinds = list(kinds)
        self.interval = interval
        self.rng = random.Random(seed)
        self.kills = {k: 0 for k in self.kinds}
        self.log = []                 # (time, kind, pid, note)
        self.orphans = []             # children that outlived their master
        self.errors = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout=60):
        self.stop_ev.set()
        self.thread.join(timeout)

    @property
    def total(self):
        return sum(self.kills.values())

    def run(self):
        bag = []
        while not self.stop_ev.wait(self.rng.uniform(*self.interval)):
            if not bag:             # every kind once per round, in random order
                bag = list(self.kinds)
                self.rng.shuffle(bag)
            kind = bag.pop()
            try:
                self.kill_one(kind)
            except Exception as e:      # reported by the test
                self.errors.append("%s: %r" % (kind, e))

    def restart_group(self, name, master_pid, roles=None):
        """The master is dead: give its children a moment to notice, record
        the ones that did not, then kill the group and start it again."""
        try:
            self.gw.procs[name].wait(timeout=5)
        except Exception:
            pass
        deadline = time.monotonic() + 2
        left = group_alive(master_pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = group_alive(master_pid)
        if left:
            self.orphans.append((name, [(p, (roles or {}).get(p, "?")) for p in left]))
        self.gw.kill(name)
        # SIGKILLed children may still hold the listening socket for a moment
        deadline = time.monotonic() + 10
        while group_alive(master_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.gw.start(name)
        except Exception as e:
            raise RuntimeError("restart of %s failed: %s; log tail: %s" % (
                name, e, self.gw.log(name)[-600:]))

    def kill_one(self, kind):
        gw = self.gw
        pid, note = None, ""
        if kind in ("smtpd-master", "spoold", "deliverd-scheduler"):
            name = kind.split("-")[0]
            pid = gw.pid(name)
            roles = {}
            if name == "deliverd":
                ws, cb = deliverd_children(gw)
                roles = dict([(w, "worker") for w in ws] + [(cb, "callback-sender")])
            elif name == "smtpd":
                ws, lka = smtpgate.smtpd_children(gw)
                roles = dict([(w, "worker") for w in ws] + ([(lka, "lka")] if lka else []))
            os.kill(pid, signal.SIGKILL)
            self.restart_group(name, pid, roles)
        elif kind == "smtpd-worker":
            ws = smtpgate.smtpd_children(gw)[0]
            if not ws:
                return
            pid = self.rng.choice(ws)
            os.kill(pid, signal.SIGKILL)
        elif kind in ("deliverd-worker", "callback-sender"):
            ws, cb = deliverd_children(gw)
            pid = self.rng.choice(ws) if kind == "deliverd-worker" and ws else cb
            if pid is None:
                return
            os.kill(pid, signal.SIGKILL)
        self.kills[kind] += 1
        self.log.append((time.monotonic(), kind, pid, note))

    def summary(self):
        return ", ".join("%s %d" % kv for kv in self.kills.items() if kv[1])


# ---------------------------------------------------------------- callbacks

class Receiver:
    """HTTP callback receiver that can be taken down (its port closed: the
    sender sees connection refused) and brought back on the same port."""

    def __init__(self):
        self.port = smtpgate.free_port()
        self.events = []
        self.posts = 0
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def _handler(self):
        recv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                evs = smtpgate.callback_events(body)
                with recv.lock:
                    recv.posts += 1
                    recv.events.extend(evs)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        return H

    @property
    def url(self):
        return "http://127.0.0.1:%d/events" % self.port

    @property
    def up(self):
        return self.server is not None

    def start(self):
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self):
        with self.lock:
            return [e.get("id") for e in self.events]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- raw SMTP client

tls_ctx = smtpgate.tls_ctx
Raw = smtpgate.Raw


# ---------------------------------------------------------------- hostile next hops

def read_data(f):
    """The message after 354, up to and with CRLF.CRLF; None if the client
    went away first."""
    data = b""
    while not data.endswith(b"\r\n.\r\n"):
        line = f.readline(1 << 20)
        if not line:
            return None
        data += line
    return data


def smtp_sink(c, received, name=b"good.test", on_rset=None, after_message=None,
              on_quit=None):
    """A plain PIPELINING SMTP server on socket c (a HostileServer
    behaviour's body). Each accepted message's RCPT addresses go into
    received. on_rset(sent) may return False to answer 421 and hang up;
    after_message(sent) may return False to hang up after the 250; sent
    counts the messages accepted on this connection; on_quit() is called
    when QUIT arrives, before the 221 (the client is done with the
    session: HostileServer.end_session counts it closed from there)."""
    f = c.makefile("rb")
    c.sendall(b"220 " + name + b" ESMTP\r\n")
    rcpts, sent = [], 0
    while True:
        line = f.readline(4096)
        if not line:
            return
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            c.sendall(b"250-" + name + b"\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
        elif verb == b"RSET" and on_rset is not None and on_rset(sent) is False:
            c.sendall(b"421 4.3.2 go away\r\n")
            return
        elif verb == b"RCPT":
            rcpts.append(line.split(b"<", 1)[1].split(b">", 1)[0].decode())
            c.sendall(b"250 2.1.5 Ok\r\n")
        elif verb == b"DATA":
            c.sendall(b"354 go\r\n")
            if read_data(f) is None:
                return
            received.extend(rcpts)
            rcpts = []
            sent += 1
            c.sendall(b"250 2.0.0 Ok: queued\r\n")
            if after_message is not None and after_message(sent) is False:
                return
        elif verb == b"QUIT":
            if on_quit is not None:
                on_quit()
            c.sendall(b"221 bye\r\n")
            return
        else:
            c.sendall(b"250 Ok\r\n")


class HostileServer(peers.Hop):
    """A TCP server on 127.0.0.1 (or host:port) whose every connection is
    handed to behave(conn, server) in a thread: a peers.Hop whose whole
    session is that function. conns, active/max_active, end_session(conn),
    reset_max and stop_ev are the Hop's; stop() shuts every connection
    down and closes it without waiting for the behaviours (they may
    sleep)."""

    def __init__(self, behave, host="127.0.0.1", port=None):
        super().__init__({"greeting": self._session}, host=host, port=port)
        self.behave = behave
        self.stop_wait = 0

    def _session(self, session, arg):
        self.behave(session.sock, self)
        return peers.CLOSE


def read_line(c, limit=65536):
    """One CRLF line from a socket (bytes, without CRLF) or None at EOF."""
    buf = b""
    while not buf.endswith(b"\n"):
        d = c.recv(1)
        if not d:
            return None
        buf += d
        if len(buf) > limit:
            break
    return buf.rstrip(b"\r\n")
