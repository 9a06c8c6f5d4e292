"""bench/soak's load: a steady mixed stream of SMTP sessions against one
smtpgate, a relayhost sink that also lifts tracking URLs out of what it
receives, a visitor that fetches those URLs from trackd, and an operator
(spoolctl queries, SIGHUP reloads). Every thread stops on one Event and
every socket has a timeout; nothing here keeps more than a bounded window
of state (a few thousand URLs and letter ids), however long it runs.
"""
import base64
import collections
import http.client
import json
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import smtpgate  # the black-box harness (gate_fixture puts it on sys.path)

SIM = "simulator.smtpgate.invalid"
TRACK_HOST = "track.soak.test"
PW_LOGIN, PW_PASS = "soakpw", "soak-secret-1"
URL_RX = re.compile(rb"https://" + re.escape(TRACK_HOST.encode()) + rb"/([ocu])/([A-Za-z0-9_.~%-]+)")

# what each recipient is (weights): simulator outcomes and real relaying
RCPT_KINDS = (("delivered", 30), ("bounce", 8), ("defer", 4), ("complaint", 4),
              ("ooto", 4), ("relay", 45), ("suppressed", 5))
# what each message is (weights)
MSG_KINDS = (("plain", 60), ("html", 25), ("letter", 10), ("dup_letter", 2),
             ("no_subject", 3))
# the rejected sessions, taken in turn
BAD_KINDS = ("auth", "auth_tls", "size_param", "oversize", "unauth", "domain",
             "garbage", "abort_data", "good_auth_tls")


def _weighted(rng, table):
    r = rng.uniform(0, sum(w for _, w in table))
    for name, w in table:
        r -= w
        if r <= 0:
            return name
    return table[-1][0]


class Counters:
    """Thread-safe counts by name."""

    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, name, n=1):
        with self.lock:
            self.c[name] += n

    def get(self, name):
        with self.lock:
            return self.c[name]

    def snapshot(self):
        with self.lock:
            return dict(self.c)


# ---------------------------------------------------------------- the sink
class SinkHandler:
    """aiosmtpd handler: counts messages, keeps the newest tracking URLs."""

    def __init__(self, counters, urls):
        self.counters = counters
        self.urls = urls

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content
        self.counters.add("sink_msgs")
        self.counters.add("sink_rcpts", len(envelope.rcpt_tos))
        if TRACK_HOST.encode() in data:
            self._lift(data)
        return "250 2.0.0 Ok: soaked"

    def _lift(self, data):
        text = data.replace(b"=\r\n", b"").replace(b"=3D", b"=")
        for part in re.findall(rb"\r\n\r\n([A-Za-z0-9+/=\r\n]{200,})", text):
            try:
                text += base64.b64decode(part, validate=False)
            except ValueError:
                pass
        found = {}
        for kind, tok in URL_RX.findall(text):
            found.setdefault(kind.decode(), tok.decode())
        if found:
            self.urls.append(found)


class Sink:
    """The relayhost: aiosmtpd on 127.0.0.1 (in this process), offering
    STARTTLS with a self-signed certificate (relayhost_tls = may takes it:
    deliverd's TLS client is part of the soak)."""

    def __init__(self, counters, urls):
        import shutil
        import ssl
        import tempfile
        from aiosmtpd.controller import Controller
        self.port = smtpgate.free_port()
        d = tempfile.mkdtemp(prefix="soak-sink-")
        try:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*smtpgate.make_cert(d))
        finally:
            shutil.rmtree(d, ignore_errors=True)
        self.controller = Controller(SinkHandler(counters, urls), hostname="127.0.0.1",
                                     port=self.port, decode_data=False,
                                     data_size_limit=64 << 20, tls_context=ctx)
        self.controller.start()
        smtpgate.wait_port(self.port)

    def stop(self):
        self.controller.stop()


class Callbacks:
    """The callback receiver of account "bench": counts POSTs and their
    bytes, answers 200; keeps nothing."""

    def __init__(self, counters):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                counters.add("callback_posts")
                counters.add("callback_kb", n // 1024)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/cb" % self.server.server_address[1]
        self.t = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.t.join(timeout=10)


# ---------------------------------------------------------------- messages
class Mix:
    """Recipients and messages of the mix; n makes every address new."""

    def __init__(self, seed, t0):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.n = 0
        self.t0 = t0
        self.letters = collections.deque(maxlen=500)
        self.bounced = collections.deque(maxlen=500)

    def minute(self):
        return int((time.monotonic() - self.t0) // 60)

    def rcpt(self):
        with self.lock:
            self.n += 1
            n = self.n
            kind = _weighted(self.rng, RCPT_KINDS)
            if kind == "suppressed" and self.bounced:
                return self.rng.choice(self.bounced)
            if kind in ("relay", "suppressed"):
                return "u%d@d%d-%d.soak.test" % (n, self.minute(), n % 50)
            addr = "%s+s%d@%s" % (kind, n, SIM)
            if kind == "bounce":
                self.bounced.append(addr)
            return addr

    def message(self, rcpts):
        """(kind, bytes) of one message to rcpts."""
        with self.lock:
            kind = _weighted(self.rng, MSG_KINDS)
            n = self.n
            camp = "c%d-%d" % (self.minute(), self.rng.randrange(4))
            headers = {"X-Campaign-Id": camp}
            if kind == "letter":
                lid = "L%d-%d" % (os.getpid(), n)
                self.letters.append(lid)
                headers["X-Letter-Id"] = lid
            elif kind == "dup_letter" and self.letters:
                headers["X-Letter-Id"] = self.rng.choice(self.letters)
        frm = "news@bench.example"
        to = ", ".join(rcpts)
        if kind == "html":
            return kind, html_message(frm, to, n, headers)
        omit = ("Subject",) if kind == "no_subject" else ()
        body = "Soak message %d.\r\n" % n + "Lorem ipsum dolor sit amet.\r\n" * 20
        return kind, smtpgate.message(frm=frm, to=to, subject="soak %d" % n, body=body,
                                      headers=headers, omit=omit)


def html_message(frm, to, n, headers):
    html = ("<html><body><p>Hello %d</p><p><a href=\"https://shop.example.com/item/%d\">"
            "item</a> <a href=\"https://shop.example.com/cat/%d\">more</a></p>"
            "</body></html>" % (n, n, n % 97))
    boundary = "=_soak_%d" % n
    body = ("--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello %d\r\n"
            "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s\r\n--%s--\r\n") % (
        boundary, n, boundary, html, boundary)
    h = dict(headers)
    h["Content-Type"] = "multipart/alternative; boundary=\"%s\"" % boundary
    return smtpgate.message(frm=frm, to=to, subject="soak html %d" % n, body=body,
                            omit=("Content-Type",), headers=h)


# ---------------------------------------------------------------- pacing
class Pacer:
    """Hands out send times at `rate` per second; never lets a stall turn
    into a burst of more than one second's worth."""

    def __init__(self, rate):
        self.rate = float(rate)
        self.lock = threading.Lock()
        self.next = time.monotonic()

    def wait(self, stop):
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now - 1.0) + 1.0 / self.rate
            due = self.next
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        return not stop.is_set()


# ---------------------------------------------------------------- senders
class Load:
    """The whole load: senders, rejected sessions, visitor and operator."""

    def __init__(self, gw, ports, rate, seed=1, senders=6, smtp_timeout=60, per_session=8,
                 bad_every=20, bad_threads=1):
        self.gw = gw
        self.port, self.port_tls = ports
        self.rate = rate
        self.stop = threading.Event()
        self.counters = Counters()
        self.urls = collections.deque(maxlen=2000)
        self.mix = Mix(seed, time.monotonic())
        self.pacer = Pacer(rate)
        self.timeout = smtp_timeout
        self.nsenders = senders
        self.per_session = per_session
        self.bad_every = bad_every
        self.bad_threads = bad_threads
        self.threads = []
        self.errors = collections.deque(maxlen=20)

    def start(self, track_port):
        self.track_port = track_port
        targets = [self._sender] * self.nsenders + [self._bad] * self.bad_threads + [
            self._visitor]
        for i, fn in enumerate(targets):
            t = threading.Thread(target=self._guard, args=(fn, i), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout=90):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))

    def _guard(self, fn, i):
        rng = random.Random(1000 + i)
        while not self.stop.is_set():
            try:
                fn(rng)
            except Exception as e:  # counted and shown; the load goes on
                self.counters.add("client_errors")
                self.errors.append("%s: %s" % (fn.__name__, e))
                self.stop.wait(0.5)

    def _sender(self, rng):
        """One session of 1..per_session messages from 127.0.0.1 (the
        pinned account)."""
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=self.timeout)
        try:
            s.ehlo("soak.client")
            for _ in range(rng.randint(1, self.per_session)):
                if not self.pacer.wait(self.stop):
                    break
                self._one(s, rng)
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
        self.counters.add("sessions")

    def _one(self, s, rng):
        rcpts = [self.mix.rcpt() for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 4))]
        kind, msg = self.mix.message(rcpts)
        try:
            refused = s.sendmail("bounce@bench.example", rcpts, msg)
            self.counters.add("accepted")
            self.counters.add("msg_" + kind)
            self.counters.add("rcpts_refused", len(refused))
        except smtplib.SMTPRecipientsRefused:
            self.counters.add("all_rcpts_refused")
            s.rset()
        except smtplib.SMTPResponseException as e:
            if e.smtp_code != 452:
                raise
            # not acknowledged: a client retries (counted; the soak says)
            self.counters.add("tempfail_452")
            s.rset()

    # ---- rejected and odd sessions, one for every bad_every messages
    def _bad(self, rng):
        self.stop.wait(float(self.bad_every) * self.bad_threads / self.rate)
        if self.stop.is_set():
            return
        with self.counters.lock:
            kind = BAD_KINDS[self.counters.c["bad_taken"] % len(BAD_KINDS)]
            self.counters.c["bad_taken"] += 1
        getattr(self, "_bad_" + kind)(rng)
        self.counters.add("bad_total")
        self.counters.add("bad_" + kind)

    def _raw(self, port=None, source=None):
        r = smtpgate.Raw(port or self.port, source=source, timeout=self.timeout)
        code, _ = r.reply()
        assert code == 220, code
        return r

    def _expect(self, r, line, codes):
        code, text = r.cmd(line)
        if code not in codes:
            raise RuntimeError("%r: %d %s" % (line[:40], code, text[:80]))
        return code

    def _bad_auth(self, rng):
        r = self._raw(self.port_tls)
        try:
            self._expect(r, "EHLO bad.auth", (250,))
            tok = base64.b64encode(b"\0%s\0wrong-%d" % (PW_LOGIN.encode(), rng.randrange(1 << 30)))
            self._expect(r, "AUTH PLAIN " + tok.decode(), (535, 454))
            self._expect(r, "QUIT", (221,))
        finally:
            r.close()

    def _bad_auth_tls(self, rng):
        r = self._raw(self.port_tls)
        try:
            self._expect(r, "EHLO bad.tls", (250,))
            self._expect(r, "STARTTLS", (220,))
            r.starttls()
            self._expect(r, "EHLO bad.tls", (250,))
            self._expect(r, "AUTH LOGIN", (334,))
            self._expect(r, base64.b64encode(b"nobody-%d" % rng.randrange(1000)).decode(), (334,))
            self._expect(r, base64.b64encode(b"bad").decode(), (535, 454))
        finally:
            r.close()

    def _bad_good_auth_tls(self, rng):
        """A good session: STARTTLS, AUTH, one message (account soakpw)."""
        s = smtplib.SMTP("127.0.0.1", self.port_tls, timeout=self.timeout)
        try:
            s.ehlo("good.tls")
            s.starttls(context=smtpgate.tls_ctx())
            s.ehlo("good.tls")
            s.login(PW_LOGIN, PW_PASS)
            rcpt = self.mix.rcpt()
            s.sendmail("pw@bench.example", [rcpt], self.mix.message([rcpt])[1])
            self.counters.add("accepted")
            self.counters.add("msg_auth")
            s.quit()
        finally:
            s.close()

    def _bad_size_param(self, rng):
        r = self._raw()
        try:
            self._expect(r, "EHLO size.param", (250,))
            self._expect(r, "MAIL FROM:<a@bench.example> SIZE=999999999999", (552, 555, 501))
            self._expect(r, "QUIT", (221,))
        finally:
            r.close()

    def _bad_oversize(self, rng):
        r = self._raw()
        try:
            self._expect(r, "EHLO over.size", (250,))
            self._expect(r, "MAIL FROM:<a@bench.example>", (250,))
            self._expect(r, "RCPT TO:<delivered+big@%s>" % SIM, (250,))
            self._expect(r, "DATA", (354,))
            line = b"x" * 998 + b"\r\n"
            r.send(smtpgate.message(subject="big") + line * 300)
            self._expect(r, ".", (552, 554))
        finally:
            r.close()

    def _bad_unauth(self, rng):
        r = self._raw(source="127.0.0.2")
        try:
            self._expect(r, "EHLO un.auth", (250,))
            self._expect(r, "MAIL FROM:<a@bench.example>", (250, 530, 550, 554))
            self._expect(r, "RCPT TO:<x@elsewhere.example>", (503, 530, 550, 554))
        finally:
            r.close()

    def _bad_domain(self, rng):
        r = self._raw()
        try:
            self._expect(r, "EHLO bad.domain", (250,))
            self._expect(r, "MAIL FROM:<a@bench.example>", (250,))
            self._expect(r, "RCPT TO:<x%d@-no-.such..domain>" % rng.randrange(1000),
                         (501, 550, 553, 555))
            self._expect(r, "RCPT TO:<x@[999.1.1.1]>", (501, 550, 553, 555))
            self._expect(r, "QUIT", (221,))
        finally:
            r.close()

    def _bad_garbage(self, rng):
        r = self._raw()
        try:
            self._expect(r, "\x01\x02GARBAGE %d" % rng.randrange(1 << 20), (500, 502))
            self._expect(r, "HELO " + "a" * 600, (500, 501))
            self._expect(r, "RCPT TO:<x@y.example>", (503,))
        finally:
            r.close()

    def _bad_abort_data(self, rng):
        """Closes mid-DATA: smtpd must drop its temporary file."""
        r = self._raw()
        try:
            self._expect(r, "EHLO abort.data", (250,))
            self._expect(r, "MAIL FROM:<a@bench.example>", (250,))
            self._expect(r, "RCPT TO:<delivered+ab@%s>" % SIM, (250,))
            self._expect(r, "DATA", (354,))
            r.send(smtpgate.message(subject="half")[:200])
        finally:
            r.close()

    # ---- the tracking visitor: opens, clicks, some one-click unsubscribes
    def _visitor(self, rng):
        try:
            urls = self.urls.popleft()
        except IndexError:
            self.stop.wait(0.2)
            return
        for kind, method, ok in (("o", "GET", 200), ("c", "GET", 302), ("u", "POST", 200)):
            tok = urls.get(kind)
            if tok is None or (kind == "u" and rng.random() > 0.1):
                continue
            st = self._http(method, "/%s/%s" % (kind, tok))
            self.counters.add("track_%s_%d" % (kind, st))
            if st != ok:
                self.counters.add("track_unexpected")
        # and a forged token: 404 and a log line, nothing kept
        forged = urls.get("o", "x")[:-4] + "%04d" % rng.randrange(10000)
        st = self._http("GET", "/o/" + forged)
        self.counters.add("track_forged_%d" % st)
        if st != 404:
            self.counters.add("track_unexpected")

    def _http(self, method, path, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.track_port,
                                       timeout=self.timeout)
        body = "List-Unsubscribe=One-Click" if method == "POST" else None
        hdr = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0"}
        if body:
            hdr["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            c.request(method, path, body=body, headers=hdr)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()


# ---------------------------------------------------------------- operator
def spoolctl_queries(day):
    """The operator's queries, taken in turn (argv, stdin)."""
    q = json.dumps(smtpgate.SEED_QUERY)
    return [
        (["queue", "--summary"], None), (["issues", "--json", "--date", day], None),
        (["bounces", "--last", "100", "--json"], None), (["query"], q),
        (["events", "--account", "bench", "--since", day + "T00:00:00Z", "--json"], None),
        (["status", "--json"], None), (["suppression", "list", "--account", "bench"], None),
        (["tls-report", "--date", day, "--json"], None), (["callbacks", "status"], None),
        (["stoplist", "list", "bench"], None),
    ]


class Operator:
    """spoolctl and a scrape of spoold's metrics every `every` seconds,
    SIGHUP to every daemon every `hup`."""

    def __init__(self, gw, daemons, counters, every=10.0, hup=60.0, env=None):
        self.gw, self.daemons, self.counters = gw, daemons, counters
        self.metrics_port = getattr(gw, "metrics_port", None)
        self.every, self.hup, self.env = every, hup, env
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t.start()

    def finish(self):
        self.stop.set()
        self.t.join(timeout=120)

    def _run(self):
        i, last_hup = 0, time.monotonic()
        while not self.stop.wait(self.every):
            day = time.strftime("%Y-%m-%d", time.gmtime())
            qs = spoolctl_queries(day)
            argv, stdin = qs[i % len(qs)]
            i += 1
            self._spoolctl(argv, stdin)
            self._scrape()
            if self.hup > 0 and time.monotonic() - last_hup >= self.hup:
                last_hup = time.monotonic()
                for name in self.daemons:
                    p = self.gw.procs.get(name)
                    if p is not None and p.poll() is None:
                        os.kill(p.pid, signal.SIGHUP)
                self.counters.add("sighup")

    def _scrape(self):
        if not self.metrics_port:
            return
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=30)
            c.request("GET", "/metrics")
            r = c.getresponse()
            n = len(r.read())
            c.close()
            self.counters.add("metrics_%d" % r.status)
            if r.status != 200 or n == 0:
                self.counters.add("metrics_bad")
        except OSError:
            self.counters.add("metrics_bad")

    def _spoolctl(self, argv, stdin):
        try:
            # output to /dev/null: an `events` answer may be large, and
            # holding it would make the soak's own memory grow
            r = subprocess.run([smtpgate.binary("spoolctl"), "-c", self.gw.conf_path] + argv,
                               input=stdin.encode() if stdin else None,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=120, env=self.env)
            self.counters.add("spoolctl_rc%d" % r.returncode)
            if r.returncode not in (0, 1):
                self.counters.add("spoolctl_bad")
        except subprocess.TimeoutExpired:
            self.counters.add("spoolctl_timeout")


def socket_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
