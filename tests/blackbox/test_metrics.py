"""The Prometheus endpoint (issue 18 item 5): a real Prometheus (Debian
package `prometheus`) scrapes spoold's metrics child and PromQL over its
HTTP API returns the counts of what was sent; the page passes `promtool
check metrics`; only GET /metrics is served; the child is supervised
(a killed child comes back and the restart is counted); the counters
survive in the spool's shared block. Every wait bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import peers
import smtpgate
from smtpgate import message, relaying_gateway, smtp_send, wait_for

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def get(url, method="GET", data=None, timeout=10):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def scrape(port):
    status, _, body = get("http://127.0.0.1:%d/metrics" % port)
    assert status == 200, body
    return body


def value(body, name, **labels):
    """The sample of name with exactly these labels (order-insensitive)."""
    want = sorted('%s="%s"' % kv for kv in labels.items())
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, v = line.rpartition(" ")
        rest = series[len(name):]
        if rest and rest[0] != "{":
            continue
        got = sorted(rest.strip("{}").split(",")) if rest else []
        if got == want:
            return float(v)
    return None


def metrics_child(g):
    """The pid of spoold's metrics child (comm spoold, parent spoold)."""
    ppid = g.pid("spoold")
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(ppid)], capture_output=True,
                         text=True, timeout=10).stdout.split()
    return [int(p) for p in out]


class Prometheus:
    """A real Prometheus scraping one target every second, its TSDB in a
    temporary directory, the web API on a free port."""

    def __init__(self, target_port):
        self.dir = tempfile.mkdtemp(prefix="sgprom-")
        if smtpgate.IS_ROOT:
            os.chmod(self.dir, 0o755)
        self.port = smtpgate.free_port()
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: smtpgate\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.p = subprocess.Popen(
            [PROMETHEUS, "--config.file", conf, "--storage.tsdb.path",
             os.path.join(self.dir, "data"), "--web.listen-address",
             "127.0.0.1:%d" % self.port], stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        smtpgate.wait_port(self.port, timeout=30)
        # the port opens before the TSDB: the API answers 503 until ready
        wait_for(lambda: get("http://127.0.0.1:%d/-/ready" % self.port)[0] == 200,
                 timeout=60, interval=0.2, what="prometheus ready")

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port,
                                                       urllib.parse.urlencode({"query": q}))
        status, _, body = get(url)
        assert status == 200, body
        return json.loads(body)["data"]["result"]

    def scalar(self, q):
        r = self.query(q)
        return float(r[0]["value"][1]) if r else None

    def target_up(self):
        return self.scalar('up{job="smtpgate"}') == 1

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def gate():
    mx = peers.Mx().start()
    for i in range(3):      # distinct: a bounced address is suppressed
        mx.rules["gone%d@bounce.example" % i] = ["550 5.1.1 No such user"]
    port = smtpgate.free_port()
    g = relaying_gateway(mx.port, metrics_listen="127.0.0.1:%d" % port)
    g.metrics_port = port
    try:
        smtpgate.wait_port(port, timeout=15)
        yield g, mx
    finally:
        g.close()
        mx.stop()


def test_prometheus_counts(gate):
    """N messages delivered and M bounced through the real daemons: a real
    Prometheus scraping the endpoint answers PromQL with exactly those
    counts (smtpd accepted, spoold filed, deliverd by outcome, category and
    destination)."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("prometheus not installed (Debian package prometheus)")
    g, mx = gate
    n, m = 5, 2
    for i in range(n):
        smtp_send(g, ["rcpt%d@example.net" % i])
    for i in range(m):
        smtp_send(g, ["gone%d@bounce.example" % i])
    mx.wait_received(n, timeout=30)
    wait_for(lambda: sum(e["event"] == "bounced" for e in g.events()) >= m and
             sum(e["event"] == "delivered" for e in g.events()) >= n, timeout=30,
             what="the events")
    prom = Prometheus(g.metrics_port)
    try:
        wait_for(prom.target_up, timeout=30, what="prometheus scraping the target")
        want = {
            "smtpgate_deliverd_delivered_total": n,
            'sum(smtpgate_deliverd_outcomes_total{outcome="bounced"})': m,
            'smtpgate_deliverd_outcomes_total{outcome="bounced",category="bad-mailbox"}': m,
            'smtpgate_deliverd_outcomes_total{outcome="delivered",category="none"}': n,
            'smtpgate_deliverd_destination_outcomes_total'
            '{destination="example.net",outcome="delivered"}': n,
            'smtpgate_deliverd_destination_outcomes_total'
            '{destination="bounce.example",outcome="bounced"}': m,
            'smtpgate_smtpd_messages_total{result="accepted"}': n + m,
            # wait_port's probe is a session too
            'smtpgate_smtpd_sessions_total{result="accepted"} >= %d' % (n + m): None,
            "smtpgate_spoold_filed_total": n + m,
            'smtpgate_smtpd_replies_total{code="250"} > 0': None,
            "smtpgate_queue_recipients_pending": 0,
        }
        got = {}

        def all_match():
            for q, v in want.items():
                r = prom.query(q)
                got[q] = r
                if v is None:      # a comparison: true when not empty
                    if not r:
                        return False
                    continue
                if not r or float(r[0]["value"][1]) != v:
                    return False
            return True
        try:
            wait_for(all_match, timeout=30, interval=0.5, what="the PromQL answers")
        except TimeoutError:
            raise AssertionError("PromQL: %r\npage:\n%s" % (got, scrape(g.metrics_port)))
    finally:
        prom.close()


def test_format_paths_and_policy(gate):
    """The page passes promtool; a policy refusal (no Subject:) is counted
    by reason; other paths 404, other methods 405; the gauges are there."""
    g, _ = gate
    msg = message(to="a@example.net").replace(b"Subject: test\r\n", b"")
    assert b"Subject:" not in msg
    smtp_send(g, ["a@example.net"], msg=msg)
    g.wait_events(lambda e: e["event"] == "bounced" and e.get("class") == "policy",
                  timeout=20)
    body = None

    def counted():
        nonlocal body
        body = scrape(g.metrics_port)
        return value(body, "smtpgate_spoold_policy_refused_total", reason="no-subject") == 1
    wait_for(counted, timeout=10, what="no-subject counted")
    assert value(body, "smtpgate_spoold_policy_refused_total", reason="stoplist") == 0
    assert value(body, "smtpgate_queue_messages", age="5m") is not None
    assert value(body, "smtpgate_lmdb_map_used_bytes") > 0
    assert value(body, "smtpgate_callback_backlog_events") == 0
    if os.access(PROMTOOL, os.X_OK):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, text=True,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    status, headers, _ = get("http://127.0.0.1:%d/metrics" % g.metrics_port)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert get("http://127.0.0.1:%d/" % g.metrics_port)[0] == 404
    assert get("http://127.0.0.1:%d/metrics/x" % g.metrics_port)[0] == 404
    assert get("http://127.0.0.1:%d/metrics" % g.metrics_port, method="DELETE")[0] == 405


def test_child_restart_counted(gate):
    """The metrics child killed: spoold restarts it, the endpoint answers
    again, the restart is counted, and the counters kept their values
    (the block lives in the spool, not in the child)."""
    g, mx = gate
    smtp_send(g, ["one@example.net"])
    mx.wait_received(1, timeout=30)
    wait_for(lambda: value(scrape(g.metrics_port),
                           "smtpgate_deliverd_delivered_total") == 1, timeout=15)
    kids = metrics_child(g)
    assert len(kids) == 1, kids
    os.kill(kids[0], signal.SIGKILL)

    def back():
        try:
            return scrape(g.metrics_port)
        except (OSError, AssertionError):
            return None
    wait_for(lambda: metrics_child(g) not in ([], kids) and back(), timeout=20,
             what="metrics child restarted")
    body = back()
    assert value(body, "smtpgate_process_restarts_total", daemon="spoold",
                 reason="crash") == 1
    assert value(body, "smtpgate_deliverd_delivered_total") == 1
    assert "restart in" in g.log("spoold")


def test_bad_metrics_listen_exits_2():
    """A metrics_listen that is not ADDR:PORT: spoold exits 2 naming the key."""
    g = smtpgate.Gateway(tls=False, extra={"metrics_listen": "127.0.0.1"})
    try:
        p = subprocess.run([smtpgate.binary("spoold"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2
        assert "metrics_listen" in p.stderr
    finally:
        g.close()


def test_dashboard_queries(gate):
    """Every query of contrib/grafana-smtpgate.json parses as PromQL
    (promtool check rules) and names only metrics the endpoint serves."""
    import re
    g, _ = gate
    with open(os.path.join(smtpgate.SRCDIR, "contrib", "grafana-smtpgate.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 5
    body = scrape(g.metrics_port)
    served = {line.split("{")[0].split(" ")[0] for line in body.splitlines()
              if line and not line.startswith("#")}
    for e in exprs:
        for name in re.findall(r"\bsmtpgate_[a-z_]+", e):
            assert name in served, (name, e)
    if not os.access(PROMTOOL, os.X_OK):
        return
    d = tempfile.mkdtemp(prefix="sgrules-")
    try:
        rules = os.path.join(d, "rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, e in enumerate(exprs):
                f.write("      - record: dashboard:q%d\n        expr: %s\n"
                        % (i, json.dumps(e.replace("$__rate_interval", "5m"))))
        r = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tls_sessions_counted():
    """A STARTTLS session and a plain one: sessions_tls_total 1 of the
    accepted sessions (the TLS share's numerator and denominator); a
    session over smtpd_max_sessions_per_ip is refused at connect (421) and
    counted as refused."""
    import smtplib
    port = smtpgate.free_port()
    g = smtpgate.Gateway(extra={"metrics_listen": "127.0.0.1:%d" % port,
                                "smtpd_max_sessions_per_ip": "1"})
    try:
        g.start("spoold", "smtpd")
        smtpgate.wait_port(port, timeout=15)

        def idle():
            # smtpd releases the address's slot before it logs the
            # disconnect: a session may start once every one has ended
            log = g.log("smtpd")
            return (log.count("NOQUEUE: connect: client=") ==
                    log.count("NOQUEUE: disconnect: client="))
        wait_for(idle, timeout=10, what="wait_port's probe session closed")
        base = value(scrape(port), "smtpgate_smtpd_sessions_total", result="accepted")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        s.starttls(context=smtpgate.tls_ctx())
        s.ehlo("client.test")
        s.quit()
        wait_for(idle, timeout=10, what="the TLS session closed")
        s = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        s.ehlo("client.test")
        try:
            second = smtpgate.Raw(g.port)
            assert second.reply()[0] == 421, "the second session is refused"
            second.close()
        finally:
            s.quit()

        def counted():
            body = scrape(port)
            return (value(body, "smtpgate_smtpd_sessions_tls_total") == 1 and
                    value(body, "smtpgate_smtpd_sessions_total", result="accepted")
                    == base + 2 and
                    value(body, "smtpgate_smtpd_sessions_total", result="refused") == 1
                    and value(body, "smtpgate_smtpd_replies_total", code="421",
                              **{"class": "4xx"}) == 1)
        wait_for(counted, timeout=10, what="the TLS session counted")
    finally:
        g.close()


def test_full_disk_no_crash():
    """The spool's file system is full before the first daemon starts: the
    counter block cannot get its blocks, so the daemons run without
    metrics (one warning) instead of dying of SIGBUS on the first
    increment (a sparse mapping on a full tmpfs)."""
    if not smtpgate.IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    port = smtpgate.free_port()
    g = smtpgate.Gateway(tls=False, extra={"metrics_listen": "127.0.0.1:%d" % port})
    smtpgate.mount_tmpfs(g, "4m")
    try:
        g.start("spoold")           # creates the tree and the database
        g.stop("spoold")
        os.unlink(os.path.join(g.spool, "metrics.shm"))
        smtpgate.fill_disk(os.path.join(g.spool, "filler"))
        g.start("smtpd", "spoold", "deliverd")
        time.sleep(1)
        for name in ("smtpd", "spoold", "deliverd"):
            assert g.procs[name].poll() is None, g.log(name)
        assert "metrics off" in g.log("smtpd")
        assert not os.path.exists(os.path.join(g.spool, "metrics.shm")) or \
            os.path.getsize(os.path.join(g.spool, "metrics.shm")) == 0 or \
            "metrics off" in g.log("spoold")
    finally:
        try:
            g.stop()
        except Exception:
            pass
        smtpgate.umount_tmpfs(g)
        g.close()
