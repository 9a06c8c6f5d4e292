"""Peers for the deliverd black-box tests, all on 127.0.0.1.

Mx        an aiosmtpd server (relayhost or MX) answering 250/451/550 on demand
          (RCPT by address; MAIL FROM and end of data by rule), optionally
          offering STARTTLS; records every message it accepts.
Hop       a scripted SMTP next hop on raw sockets: any reply (or none, a
          drop, garbage, a pause) to any command, optionally a real
          STARTTLS with a given certificate; records sessions, commands
          and messages.
Dns       a dnsmasq wrapper serving MX/A records for test domains.
AdResolver a DNS stand-in setting the AD bit (a trusted validating resolver).
Callbacks an http.server receiver for event callbacks, with an outage switch.
Every wait is bounded; every process is stopped by PID.
"""
import collections
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

import smtpgate


class _Handler:
    def __init__(self, mx):
        self.mx = mx

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        limit = self.mx.rcpt_limit
        if limit is not None and len(envelope.rcpt_tos) >= limit:
            return "452 4.5.3 Too many recipients"
        reply = self.mx.rcpt_reply(address)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.mx.mail_reply
        reply = reply(address) if callable(reply) else reply
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server, session, envelope):
        reply = self.mx.data_reply
        reply = reply(envelope) if callable(reply) else reply
        self.mx.record(envelope, session)   # refused at end of data too
        return reply


class _RequireTlsHandler(_Handler):
    """Adds REQUIRETLS (RFC 8689) to EHLO inside TLS."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if session.ssl is not None:
            responses.insert(-1, "250-REQUIRETLS")
        return responses


class _RequireTlsSmtp(SMTP):
    """aiosmtpd refuses MAIL parameters it does not know: REQUIRETLS is
    taken (and kept in mail_options for the test to see)."""

    def _getparams(self, params):
        r = super()._getparams(params)
        if r is not None:
            r.pop("REQUIRETLS", None)
        return r


class _RequireTlsController(Controller):
    def factory(self):
        return _RequireTlsSmtp(self.handler, **self.SMTP_kwargs)


class Mx:
    """An SMTP peer. rules maps a recipient address to a list of replies
    used one per attempt (the last repeats); others get `default`."""

    def __init__(self, tls_dir=None, port=None, host="127.0.0.1", cert=None,
                 requiretls=False, helo=None):
        """tls_dir: offer STARTTLS with a self-signed certificate made
        there; cert: (certfile, keyfile) to offer instead; host: the
        loopback address to listen on; requiretls: offer REQUIRETLS
        (RFC 8689) in EHLO after STARTTLS and take it on MAIL FROM;
        helo: the name in its greeting and EHLO reply (else the FQDN)."""
        self.host = host
        self.port = port or smtpgate.free_port()
        self.rules = {}
        self.default = "250 2.1.5 Ok"
        self.rcpt_limit = None      # recipients per transaction, then 452 4.5.3
        self.conns = 0              # connections that carried a message
        self.data_reply = "250 2.0.0 Ok: queued"   # or a function of the envelope
        self.mail_reply = None     # MAIL FROM: None (250), a reply, or f(address)
        self.attempts = {}
        self.messages = []
        self.lock = threading.Lock()
        kw = {"server_hostname": helo} if helo else {}
        if tls_dir or cert:
            cert, key = cert or smtpgate.make_cert(tls_dir)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            kw["tls_context"] = ctx
        ctl, handler = Controller, _Handler
        if requiretls:
            ctl, handler = _RequireTlsController, _RequireTlsHandler
        self.controller = ctl(handler(self), hostname=host, port=self.port,
                              decode_data=False, enable_SMTPUTF8=True,
                              data_size_limit=64 << 20, **kw)

    def start(self):
        self.controller.start()
        smtpgate.wait_port(self.port, host=self.host)
        return self

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def rcpt_reply(self, address):
        with self.lock:
            n = self.attempts.get(address, 0)
            self.attempts[address] = n + 1
            seq = self.rules.get(address)
        if not seq:
            return self.default
        return seq[min(n, len(seq) - 1)]

    def record(self, envelope, session):
        with self.lock:
            if not hasattr(session, "sg_conn"):    # which connection: 1, 2, ...
                self.conns += 1
                session.sg_conn = self.conns
            self.messages.append({
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
                "mail_options": list(envelope.mail_options),
                "peer": session.peer[0] if session.peer else None,
                "helo": session.host_name,
                "conn": session.sg_conn,
            })

    def received(self, rcpt=None):
        with self.lock:
            if rcpt is None:
                return list(self.messages)
            return [m for m in self.messages if rcpt in m["to"]]

    def wait_received(self, n, timeout=30, rcpt=None):
        return smtpgate.wait_for(lambda: len(self.received(rcpt)) >= n and self.received(rcpt),
                                 timeout, what="%d messages at the MX" % n)


# ---------------------------------------------------------------- scripted next hop

class Step:
    """A script step other than text: CLOSE, DROP, READ or hang(seconds)."""

    def __init__(self, what, seconds=0.0):
        self.what, self.seconds = what, seconds

    def __repr__(self):
        return "Step(%s)" % self.what


CLOSE = Step("close")       # close the connection: the session ends
DROP = Step("drop")         # shutdown(SHUT_RDWR) first, then close
READ = Step("read")         # wait until the client sends something (or leaves)


def hang(seconds):
    """A step: say nothing for `seconds` (Hop.stop() ends it early), then
    close."""
    return Step("hang", seconds)


class _End(Exception):
    """The script ended the session."""


# the capabilities peers.Mx (aiosmtpd 1.4) offers in EHLO: no PIPELINING
MX_EHLO = ("SIZE 67108864", "8BITMIME", "SMTPUTF8", "HELP")


class HopSession:
    """One connection to a Hop. What a script function sees: `n` (1, 2, ...
    in the order of arrival), `hop`, `tls`, `helo`, `mail_from`, `rcpts`
    (accepted in the open transaction), `sent` (messages accepted on this
    connection), `commands` (every command line, decoded, without CRLF);
    send(), read(), pause(), settimeout()."""

    def __init__(self, hop, sock, n, script):
        self.hop, self.sock, self.n, self.script = hop, sock, n, script
        self.conn = sock            # the accepted socket (sock may become TLS)
        self.buf = bytearray()
        self.tls = False
        self.helo = self.mail_from = self.error = None
        self.rcpts = []
        self.sent = 0
        self.commands = []

    # ---- what a script function may call
    def send(self, data):
        """bytes as they are; text with CRLF after it."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape") + b"\r\n"
        self.sock.sendall(data)

    def read(self):
        """What the client sent next (b"" when it left): one recv, or what
        was already read past the last line."""
        if self.buf:
            d, self.buf = bytes(self.buf), bytearray()
            return d
        return self.sock.recv(65536)

    def pause(self, seconds):
        """Waits (bounded); True when the hop is stopping."""
        return self.hop.stop_ev.wait(seconds)

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    # ---- the dialogue
    def readline(self, limit):
        """One line with its CRLF, at most limit octets; None at EOF."""
        while True:
            i = self.buf.find(b"\n", 0, limit)
            if i >= 0 or len(self.buf) >= limit:
                n = i + 1 if i >= 0 else limit
                line = bytes(self.buf[:n])
                del self.buf[:n]
                return line
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d

    def do(self, spec):
        """Performs a reply spec: text, bytes, a Step or a list of them."""
        if isinstance(spec, (list, tuple)):
            for x in spec:
                self.do(x)
        elif isinstance(spec, (str, bytes)):
            self.send(spec)
        elif spec is READ:
            self.read()
        elif spec is DROP:
            self.sock.shutdown(socket.SHUT_RDWR)
            raise _End()
        elif spec is CLOSE:
            raise _End()
        elif isinstance(spec, Step) and spec.what == "hang":
            self.pause(spec.seconds)
            raise _End()
        else:
            raise TypeError("not a reply: %r" % (spec,))

    def reply(self, key, arg, default):
        """The script's reply for key: text, bytes, a Step, a list, or a
        function of (session, arg) returning one of those (None: the
        default)."""
        spec = self.script.get(key)
        if callable(spec):
            spec = spec(self, arg)
        return default if spec is None else spec

    @staticmethod
    def text(spec):
        """The text a spec starts with (None when it sends none first)."""
        while isinstance(spec, (list, tuple)) and spec:
            spec = spec[0]
        if isinstance(spec, bytes):
            spec = spec.decode("latin-1")
        return spec if isinstance(spec, str) else None

    @classmethod
    def code(cls, spec):
        """The reply code a spec starts with ("" when it has none)."""
        return (cls.text(spec) or "")[:3]

    def ehlo_reply(self):
        lines = [self.hop.name] + list(self.hop.ehlo)
        if self.hop.ctx is not None and not self.tls:
            lines.append("STARTTLS")
        return "\r\n".join(("250-" if i < len(lines) - 1 else "250 ") + x
                           for i, x in enumerate(lines))

    def starttls(self):
        self.buf = bytearray()      # RFC 3207: nothing may follow STARTTLS
        self.sock = self.hop.ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.helo, self.mail_from, self.rcpts = None, None, []

    def data(self):
        """The message up to the final dot (without it); None at EOF."""
        out, size = [], 0
        while True:
            line = self.readline(1 << 20)
            if line is None:
                return None
            if line == b".\r\n":
                return b"".join(out) if size <= self.hop.max_size else False
            size += len(line)
            if size <= self.hop.max_size:
                out.append(line)

    def run(self):
        name = self.hop.name
        self.do(self.reply("greeting", None, "220 %s ESMTP" % name))
        while True:
            line = self.readline(4096)
            if line is None:
                return
            text = line.rstrip(b"\r\n").decode("latin-1")
            verb = text.split(" ", 1)[0].upper()
            with self.hop.lock:
                self.commands.append(text)
            if verb in ("EHLO", "HELO"):
                self.helo = text[5:].strip()
                self.mail_from, self.rcpts = None, []
                dflt = self.ehlo_reply() if verb == "EHLO" else "250 %s" % name
                self.do(self.reply(verb, text, dflt))
            elif verb == "STARTTLS":
                spec = self.reply(verb, text, None)
                if spec is not None:
                    self.do(spec)
                elif self.hop.ctx is None or self.tls:
                    self.send("454 4.7.0 TLS not available")
                else:
                    self.send("220 2.0.0 Ready to start TLS")
                    self.starttls()
            elif verb == "MAIL":
                self.rcpts = []
                self.mail_from = address(text)
                self.do(self.reply(verb, self.mail_from, "250 Ok"))
            elif verb == "RCPT":
                rcpt = address(text)
                spec = self.reply(verb, rcpt, "250 2.1.5 Ok")
                if self.code(spec).startswith("2"):
                    self.rcpts.append(rcpt)
                self.do(spec)
            elif verb == "DATA":
                spec = self.reply(verb, text, "354 go" if self.rcpts else
                                  "503 Error: need RCPT command")
                self.do(spec)
                if self.code(spec).startswith("3"):
                    self.message()
            elif verb == "RSET":
                self.mail_from, self.rcpts = None, []
                self.do(self.reply(verb, text, "250 Ok"))
            elif verb == "QUIT":
                self.hop.end_session(self)
                self.do(self.reply(verb, text, ["221 bye", CLOSE]))
            else:
                self.do(self.reply(verb, text, "250 Ok"))

    def message(self):
        data = self.data()
        if data is None:
            raise _End()
        if data is False:
            spec = "552 5.3.4 Message too big for the test peer"
        else:
            spec = self.reply(".", data, "250 2.0.0 Ok: queued")
        ok = self.code(spec).startswith("2")
        self.hop.record(self, data or b"", spec, ok)
        self.mail_from, self.rcpts = None, []
        self.do(spec)


def address(cmd):
    """The address of a MAIL FROM or RCPT TO command line ("" when none)."""
    if "<" not in cmd:
        return cmd.split(":", 1)[-1].strip().split(" ")[0]
    return cmd.split("<", 1)[1].split(">", 1)[0]


class Hop:
    """A scripted SMTP next hop on host:port (127.0.0.1, a free port),
    one thread per connection, raw sockets: what a well-behaved server
    says unless `script` says otherwise.

    script maps a key to a reply: "greeting", a command verb ("EHLO",
    "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "QUIT", any other)
    or "." (the end of data). A reply is text (CRLF is added; a multi-line
    reply has CRLF between its lines), bytes (sent as they are), a step
    (CLOSE, DROP, READ, hang(seconds)), a list of these done in order, or a
    function f(session, arg) returning one of them or None (the default).
    arg is the address for MAIL and RCPT, the message for ".", else the
    command line. A RCPT or "." reply starting with 2 accepts; DATA reads
    the message after a 3xx. Each connection keeps the script it found.

    Defaults: greeting "220 NAME ESMTP"; EHLO NAME with `ehlo` (and
    STARTTLS while cert is given and the session is in clear: then STARTTLS
    is a real TLS handshake with cert = (certfile, keyfile)); RCPT 250
    2.1.5; DATA 354 (503 without a recipient); end of data 250 2.0.0 Ok:
    queued; QUIT 221 and close; everything else "250 Ok".

    Records: sessions (HopSession, with its commands), messages (dicts:
    session, from, to, data, tls, helo, reply) of every message read,
    accepted or not, recorded before the reply is sent (data as it came,
    dot-stuffed, without the final dot), and received (the recipients of
    each accepted message, in order). conns counts connections;
    active/max_active the sessions open at once (closed from QUIT on).
    Every socket has a timeout; stop() ends every session and waits for
    them, at most stop_wait seconds."""

    def __init__(self, script=None, name="good.test", ehlo=("8BITMIME", "PIPELINING"),
                 cert=None, host="127.0.0.1", port=None, timeout=30,
                 max_size=64 << 20):
        self.script = dict(script or {})
        self.name, self.ehlo, self.host = name, tuple(ehlo), host
        self.timeout, self.max_size = timeout, max_size
        self.ctx = None
        if cert:
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(*cert)
        self.port = port or smtpgate.free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.sessions, self.messages, self.received = [], [], []
        self.active = self.max_active = 0
        self.threads = []
        self.ended = set()
        self.stop_wait = 5
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def conns(self):
        return len(self.sessions)

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(self.timeout)
            with self.lock:
                s = HopSession(self, c, len(self.sessions) + 1, dict(self.script))
                self.sessions.append(s)
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            t = threading.Thread(target=self._run, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, s):
        try:
            s.run()
        except _End:
            pass
        except Exception as e:          # a client gone, a timeout, a bad script
            s.error = repr(e)
        finally:
            try:
                s.sock.close()
            except OSError:
                pass
            self.end_session(s)

    def end_session(self, s):
        """Counts session s (a HopSession or its accepted socket) closed,
        once: at QUIT or when it ends."""
        key = id(s.conn if isinstance(s, HopSession) else s)
        with self.lock:
            if key not in self.ended:
                self.ended.add(key)
                self.active -= 1

    def reset_max(self):
        """Starts a new max_active measurement (from the sessions open now)."""
        with self.lock:
            self.max_active = self.active

    def record(self, s, data, reply, ok):
        with self.lock:
            self.messages.append({"session": s.n, "from": s.mail_from, "to": list(s.rcpts),
                                  "data": data, "tls": s.tls, "helo": s.helo,
                                  "reply": HopSession.text(reply)})
            if ok:
                s.sent += 1
                self.received.extend(s.rcpts)

    def commands(self, verb=None):
        """Every command line of every session (of one verb), in order of
        the sessions."""
        with self.lock:
            return [c for s in self.sessions for c in s.commands
                    if verb is None or c.split(" ", 1)[0].upper() == verb]

    def rcpt_attempts(self):
        """How many times each address was named in RCPT TO."""
        return collections.Counter(address(c) for c in self.commands("RCPT"))

    def wait_received(self, n, timeout=30):
        """Waits (bounded) for n accepted recipients; returns them."""
        return smtpgate.wait_for(lambda: len(self.received) >= n and list(self.received),
                                 timeout, what="%d recipients at the next hop" % n)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        """Closes the port, ends every session (their sockets shut down:
        blocked reads return) and waits for them (stop_wait), then closes
        what is left."""
        self.stop_ev.set()
        try:
            self.sock.close()
        except OSError:
            pass
        deadline = time.monotonic() + self.stop_wait
        if self.thread.ident is not None:
            self.thread.join(5)
        with self.lock:
            sessions = list(self.sessions)
        for s in sessions:
            try:
                s.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self.threads):
            t.join(max(0.0, deadline - time.monotonic()))
        for s in sessions:
            try:
                s.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Dns:
    """dnsmasq on a free UDP/TCP port answering only from its arguments
    (everything under --local domains that is not listed is NXDOMAIN,
    any other name is REFUSED: a temporary failure for the resolver)."""

    def __init__(self, records, local=("test",), workdir=None):
        self.port = smtpgate.free_port()
        self.args = ["dnsmasq", "--no-daemon", "--port=%d" % self.port,
                     "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                     "--no-hosts", "--no-negcache", "--pid-file="]
        self.args += ["--local=/%s/" % d for d in local]
        self.args += list(records)
        self.proc = None
        self.log = os.path.join(workdir or "/tmp", "dnsmasq-%d.log" % self.port)

    @staticmethod
    def mx(domain, host, pref):
        return "--mx-host=%s,%s,%d" % (domain, host, pref)

    @staticmethod
    def a(host, addr):
        return "--host-record=%s,%s" % (host, addr)

    @staticmethod
    def null_mx(domain):
        return "--mx-host=%s,.,0" % domain

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: %s" % open(self.log).read())
            r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port),
                                "@127.0.0.1", "probe.invalid"], capture_output=True, timeout=5)
            if r.returncode == 0:
                return self
            time.sleep(0.1)
        raise TimeoutError("dnsmasq did not answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Callbacks:
    """HTTP receiver for event callbacks. `down = True` answers 503 (an
    outage); posts and events are recorded."""

    def __init__(self):
        self.port = smtpgate.free_port()
        self.events = []
        self.posts = []
        self.failed_posts = 0
        self.down = False
        self.lock = threading.Lock()
        # every POST, answered or not: (headers, body, time.time() on arrival)
        self.requests = []
        recv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with recv.lock:
                    recv.requests.append((self.headers, body, time.time()))
                    if recv.down:
                        recv.failed_posts += 1
                        code = 503
                    else:
                        code = 200
                        recv.posts.append((self.headers.get("Content-Type"), body))
                        recv.events.extend(smtpgate.callback_events(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d/events" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def ids(self):
        with self.lock:
            return [e["id"] for e in self.events]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AdResolver:
    """A stand-in for a trusted local validating resolver (dnssec = trust-ad):
    answers from `records` ({name: [(type, rdata-text)]}) over UDP on a free
    port, with the AD bit on answers under the `secure` suffixes, SERVFAIL
    for the names in `bogus` (what a validator answers for a bad signature),
    NXDOMAIN/NODATA otherwise. It is the AD bit deliverd must trust, not a
    validation of its own."""

    def __init__(self, records, secure=(), bogus=()):
        import dns.message
        import dns.rcode
        import dns.flags
        import dns.rdatatype
        import dns.rrset
        self._rdt = dns.rdatatype
        self._m, self._rc, self._fl, self._rrset = dns.message, dns.rcode, dns.flags, dns.rrset
        self.records = {n.rstrip(".").lower(): v for n, v in records.items()}
        self.secure = [s.rstrip(".").lower() for s in secure]
        self.bogus = {b.rstrip(".").lower() for b in bogus}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.stopped = False

    def _answer(self, q):
        r = self._m.make_response(q)
        r.flags &= ~self._fl.AD
        qn = q.question[0]
        name = qn.name.to_text().rstrip(".").lower()
        qtype = self._rdt.to_text(qn.rdtype)
        self.queries.append((name, qtype))
        if name in self.bogus:
            r.set_rcode(self._rc.SERVFAIL)
            return r
        if name not in self.records:
            r.set_rcode(self._rc.NXDOMAIN)
        else:
            data = [d for t, d in self.records[name] if t == qtype]
            if data:
                r.answer.append(self._rrset.from_text_list(qn.name, 300, "IN", qtype, data))
        if any(name == s or name.endswith("." + s) for s in self.secure):
            r.flags |= self._fl.AD
        r.flags |= self._fl.RA
        return r

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = self._m.from_wire(pkt)
                self.sock.sendto(self._answer(q).to_wire(), peer)
            except Exception:
                continue

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped = True
        self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SignedZone:
    """A DNSSEC chain on 127.0.0.1 for one zone: the zone signed with
    ldns-keygen/ldns-signzone (ldnsutils), served by nsd, and a validating
    unbound with the zone's key as its trust anchor and nsd as the stub.
    `records` are zone-file lines relative to the zone; signed=False serves
    it unsigned (then unbound's answers are insecure: no AD), bogus names a
    record type whose signatures are corrupted (unbound then SERVFAILs)."""

    def __init__(self, zone, records, workdir, signed=True, bogus=None):
        self.zone = zone.rstrip(".")
        self.dir = workdir
        self.records = list(records)
        self.signed, self.bogus = signed, bogus
        self.nsd_port, self.port = smtpgate.free_port(), smtpgate.free_port()
        self.procs = []

    def _run(self, *args):
        return subprocess.run(list(args), cwd=self.dir, check=True, capture_output=True,
                              text=True, timeout=60).stdout.strip()

    def _zonefile(self):
        z = os.path.join(self.dir, "zone")
        with open(z, "w") as f:
            f.write("$ORIGIN %s.\n$TTL 300\n" % self.zone)
            f.write("@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n")
            f.write("\n".join(self.records) + "\n")
        if not self.signed:
            return z, None
        ksk = self._run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", self.zone)
        zsk = self._run("ldns-keygen", "-a", "ECDSAP256SHA256", self.zone)
        self._run("ldns-signzone", "-n", z, zsk, ksk)
        signed = z + ".signed"
        if self.bogus:
            self._corrupt(signed, self.bogus)
        return signed, os.path.join(self.dir, ksk + ".key")

    @staticmethod
    def _corrupt(path, rtype):
        """Flips the signatures over rtype: a bogus RRset for a validator."""
        out = []
        for line in open(path):
            f = line.split()
            if len(f) > 5 and f[3] == "RRSIG" and f[4] == rtype:
                sig = f[-1]
                f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
                line = "\t".join(f) + "\n"
            out.append(line)
        with open(path, "w") as fh:
            fh.writelines(out)

    def _spawn(self, args, name):
        logf = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(args, cwd=self.dir, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.procs.append(p)
        return p

    def start(self):
        zfile, anchor = self._zonefile()
        self.anchor = anchor
        d = self.dir
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write('server:\n ip-address: 127.0.0.1@%d\n port: %d\n username: ""\n'
                    ' zonesdir: "%s"\n database: ""\n pidfile: "%s/nsd.pid"\n'
                    ' xfrdfile: "%s/xfrd.state"\n zonelistfile: "%s/zone.list"\n'
                    ' xfrdir: "%s"\n logfile: "%s/nsd.log"\n server-count: 1\n'
                    ' verbosity: 1\nremote-control:\n control-enable: no\n'
                    'zone:\n name: "%s"\n zonefile: "%s"\n'
                    % (self.nsd_port, self.nsd_port, d, d, d, d, d, d, self.zone, zfile))
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write('server:\n interface: 127.0.0.1\n port: %d\n username: ""\n chroot: ""\n'
                    ' directory: "%s"\n pidfile: "%s/unbound.pid"\n use-syslog: no\n'
                    ' logfile: ""\n do-not-query-localhost: no\n num-threads: 1\n'
                    ' module-config: "validator iterator"\n access-control: 127.0.0.0/8 allow\n'
                    ' verbosity: 1\n val-log-level: 2\n'
                    ' local-zone: "%s." nodefault\n'   # .test is blocked by default
                    % (self.port, d, d, self.zone.rsplit(".", 1)[-1]))
            if anchor:
                f.write(' trust-anchor-file: "%s"\n' % anchor)
            else:
                f.write(' domain-insecure: "%s"\n' % self.zone)
            f.write('remote-control:\n control-enable: no\n'
                    'stub-zone:\n name: "%s"\n stub-addr: 127.0.0.1@%d\n'
                    % (self.zone, self.nsd_port))
        self._spawn(["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], "nsd")
        self._spawn(["unbound", "-d", "-c", os.path.join(d, "unbound.conf")], "unbound")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("DNS server exited: %s" % self.logs())
            r = subprocess.run(["dig", "+time=1", "+tries=1", "-p", str(self.port),
                                "@127.0.0.1", "SOA", self.zone], capture_output=True,
                               text=True, timeout=5)
            if r.returncode == 0 and "status: NOERROR" in r.stdout:
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError("the signed zone did not answer: %s" % self.logs())

    def logs(self):
        return "".join(open(os.path.join(self.dir, n)).read()
                       for n in ("nsd.log", "unbound.log") if os.path.exists(
                           os.path.join(self.dir, n)))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self.procs = []

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    @property
    def authoritative(self):
        """nsd itself (a forwarder for libunbound's own validation)."""
        return "127.0.0.1:%d" % self.nsd_port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
