"""Traffic shaping per destination and back-off that reacts (issue 15
items 3, 4, and `spoolctl queue --summary` of item 7).

The next hops are raw SMTP servers (lib/chaos.HostileServer) on loopback
addresses that share remote_port, found through dnsmasq MX records
(lib/peers.Dns); they count the sessions open at once. Messages are filed
with tests/tools/deliverd-inject, so only deliverd runs. Every wait is
bounded; times are printed, never asserted (STYLE T4).
"""
import os
import signal
import threading
import time

import pytest

import chaos
import peers
import smtpgate
from smtpgate import Gateway, inject, put_msg, wait_for


def tarpit(c, srv):
    """Accepts the connection and never says a word."""
    srv.stop_ev.wait(120)


class Transactions(list):
    """A `received` for chaos.smtp_sink that keeps one entry per
    transaction (the list of its recipients)."""

    def extend(self, rcpts):
        self.append(list(rcpts))

    def rcpts(self):
        return [r for t in self for r in t]


def sink(log, hold=0.0):
    """A good server recording transactions; hold: seconds to keep each
    session busy before the greeting (so sessions overlap)."""
    def behave(c, srv):
        if hold:
            time.sleep(hold)
        chaos.smtp_sink(c, log, on_quit=lambda: srv.end_session(c))
    return behave


def throttling(log, state):
    """Answers the greeting with a 421 "too many connections" while
    state["throttle"] is set, else a good server."""
    def behave(c, srv):
        if state["throttle"]:
            c.sendall(b"421 4.7.0 Too many connections from your IP, slow down\r\n")
            return
        time.sleep(state.get("hold", 0))
        chaos.smtp_sink(c, log)
    return behave


@pytest.fixture
def net(tmp_path):
    """dnsmasq with MX records for tarpit.test (127.0.0.2), healthy.test
    (127.0.0.3), limited.test (127.0.0.4), throttle.test (127.0.0.5),
    workspace.test (MX aspmx.mx.provider.test, 127.0.0.6); the port every
    MX listens on."""
    port = smtpgate.free_port()
    records = []
    for i, d in enumerate(("tarpit", "healthy", "limited", "throttle"), start=2):
        records.append(peers.Dns.mx("%s.test" % d, "mx.%s.test" % d, 10))
        records.append(peers.Dns.a("mx.%s.test" % d, "127.0.0.%d" % i))
    # a domain hosted by a "provider": its MX is under the provider's name
    records.append(peers.Dns.mx("workspace.test", "aspmx.mx.provider.test", 10))
    records.append(peers.Dns.a("aspmx.mx.provider.test", "127.0.0.6"))
    with peers.Dns(records, workdir=str(tmp_path)) as dns:
        yield dns, port


def gateway(dns, port, shaping=None, **extra):
    conf = {"dns_server": dns.server, "remote_port": str(port),
            "deliverd_workers": "4", "command_timeout": "60s",
            "retry_schedule": "1h"}
    conf.update(extra)
    g = Gateway(tls=False, extra=conf)
    if shaping is not None:
        path = os.path.join(g.dir, "shaping")
        with open(path, "w") as f:
            f.write(shaping)
        g.conf["shaping_file"] = path
        g.write_conf()
    inject(g, "account", "acc")
    return g


def summary(g):
    return g.spoolctl_json("queue", "--summary")


def domain_row(g, domain):
    return next((d for d in summary(g)["destinations"] if d["domain"] == domain), None)


def hup(g):
    g.procs["deliverd"].send_signal(signal.SIGHUP)


# ---------------------------------------------------------------- tarpit

@pytest.mark.parametrize("shaping,ntarpit", [(None, 12), ("[healthy.test]\nconnections = 4\n", 2)],
                         ids=["defaults", "healthy-may-use-every-worker"])
def test_tarpit_beside_healthy(net, shaping, ntarpit):
    """One destination that accepts connections and never answers must
    not take every worker: the healthy destination gets all its mail
    while the tarpit still holds its connections. When the healthy one
    may use every worker, none of its jobs waits behind a tarpit job."""
    dns, port = net
    healthy_log = Transactions()
    with chaos.HostileServer(tarpit, host="127.0.0.2", port=port) as pit, \
            chaos.HostileServer(sink(healthy_log), host="127.0.0.3", port=port), \
            gateway(dns, port, shaping) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["t@tarpit.test"], count=ntarpit)
        wait_for(lambda: pit.active > 0, 20, what="the tarpit's first connection")
        t0 = time.monotonic()
        put_msg(g, "acc", ["h@healthy.test"], count=5)
        wait_for(lambda: len(healthy_log.rcpts()) >= 5, 30,
                 what="5 messages at the healthy destination")
        took = time.monotonic() - t0
        print("healthy destination: 5 of 5 messages in %.2fs beside a tarpit "
              "holding %d connections (4 workers)" % (took, pit.active))
        assert pit.active > 0, "the tarpit still holds connections"
        assert pit.max_active <= 2, "default connections = workers/2"


# ---------------------------------------------------------------- limits

def test_connection_limit_and_messages_per_connection(net):
    """connections = 1 (the default would be 2 of 4 workers): never more
    than one session at the peer; messages_per_connection = 2: a new
    session every second message."""
    dns, port = net
    log = Transactions()
    shaping = "[limited.test]\nconnections = 1\nmessages_per_connection = 2\n"
    with chaos.HostileServer(sink(log, hold=0.3), host="127.0.0.4", port=port) as srv, \
            gateway(dns, port, shaping) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["l@limited.test"], count=8)
        wait_for(lambda: len(log.rcpts()) >= 8, 60, what="8 messages at limited.test")
        print("limited.test: at most %d session(s) at once, %d sessions for 8 messages"
              % (srv.max_active, srv.conns))
        assert srv.max_active == 1
        assert srv.conns >= 4


def test_recipients_per_transaction(net):
    dns, port = net
    log = Transactions()
    rcpts = ["r%d@limited.test" % i for i in range(10)]
    with chaos.HostileServer(sink(log), host="127.0.0.4", port=port), \
            gateway(dns, port, "[limited.test]\nrecipients_per_transaction = 3\n") as g:
        g.start("deliverd")
        put_msg(g, "acc", rcpts)
        wait_for(lambda: len(log.rcpts()) >= 10, 30, what="10 recipients at limited.test")
        sizes = sorted(len(t) for t in log)
        print("transactions:", sizes)
        assert sorted(log.rcpts()) == sorted(rcpts)
        assert max(sizes) <= 3 and len(sizes) >= 4


# ---------------------------------------------------------------- back-off

THROTTLE_SHAPING = """[default]
slow_for = 20s
[throttle.test]
connections = 3
slowed_connections = 1
slowed_rate = 100/s
"""


def test_throttle_slows_then_recovers(net):
    """A 421 "too many connections" puts the destination into the slowed
    state (one connection instead of three, shown by queue --summary and
    logged); it returns to normal by itself."""
    dns, port = net
    log = Transactions()
    state = {"throttle": True, "hold": 1.0}
    with chaos.HostileServer(throttling(log, state), host="127.0.0.5", port=port) as srv, \
            gateway(dns, port, THROTTLE_SHAPING) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["first@throttle.test"])	# deferred (retry in 1h): keeps a row
        g.wait_events(lambda e: e["to"] == "first@throttle.test" and e["event"] == "deferred")
        row = wait_for(lambda: (domain_row(g, "throttle.test") or {}).get("state") == "slowed"
                       and domain_row(g, "throttle.test"), 10, what="slowed in queue --summary")
        print("summary while slowed:", row)
        assert row["connections"] == 1 and row["until"] is not None
        assert "Too many connections" in row["reason"]
        assert "destination=throttle.test, state=slowed" in g.log("deliverd")
        state["throttle"] = False
        srv.reset_max()
        put_msg(g, "acc", ["s@throttle.test"], count=4)
        wait_for(lambda: len(log.rcpts()) >= 4, 30, what="4 messages while slowed")
        assert domain_row(g, "throttle.test")["state"] == "slowed", "still slowed"
        print("while slowed: at most %d session(s) at once" % srv.max_active)
        assert srv.max_active == 1
        t0 = time.monotonic()
        row = wait_for(lambda: domain_row(g, "throttle.test")["state"] == "normal"
                       and domain_row(g, "throttle.test"), 60, what="back to normal")
        print("normal again after %.1fs more: %s" % (time.monotonic() - t0, row))
        assert row["until"] is None and row["connections"] == 3
        wait_for(lambda: "destination=throttle.test, state=normal, was=slowed"
                 in g.log("deliverd"), 10, what="the log line on leaving")
        srv.reset_max()
        put_msg(g, "acc", ["n@throttle.test"], count=6)
        wait_for(lambda: len(log.rcpts()) >= 10, 30, what="6 more messages")
        print("normal: at most %d sessions at once" % srv.max_active)
        assert 1 < srv.max_active <= 3


def test_dead_destination_suspended(net):
    """Consecutive connection failures suspend the destination: its other
    recipients are rescheduled to the end of the suspension, not
    attempted, and the state shows in queue --summary."""
    dns, port = net
    shaping = "[tarpit.test]\nsuspend_after = 2\nsuspend_for = 1h\nconnections = 1\n"
    with gateway(dns, port, shaping, connect_timeout="2s") as g:
        # nothing listens on 127.0.0.2:port: every connection is refused
        g.start("deliverd")
        put_msg(g, "acc", ["d@tarpit.test"], count=6)
        row = wait_for(lambda: (domain_row(g, "tarpit.test") or {}).get("state") == "suspended"
                       and domain_row(g, "tarpit.test"), 30, what="suspended")
        print("suspended:", row)
        assert "destination=tarpit.test, state=suspended" in g.log("deliverd")
        time.sleep(2)	# would-be attempts: none happen
        attempts = [e for e in g.events() if e["to"] == "d@tarpit.test"]
        assert len(attempts) == 2, attempts	# the two that failed, no more
        q = g.spoolctl_json("queue")
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
        nexts = [r["next"] for m in q for r in m["recipients"]]
        print("next attempts:", nexts)
        assert len(nexts) == 6 and all(n is not None and n > later for n in nexts)
        assert row["total"] == 6


# ---------------------------------------------------------------- reload

def test_sighup_reload_and_bad_file(net):
    dns, port = net
    log = Transactions()
    with chaos.HostileServer(sink(log, hold=0.5), host="127.0.0.4", port=port) as srv, \
            gateway(dns, port, "[limited.test]\nconnections = 1\n") as g:
        path = g.conf["shaping_file"]
        g.start("deliverd")
        with open(path, "w") as f:
            f.write("[limited.test]\nconnections = lots\n")
        hup(g)
        wait_for(lambda: "keeping the old shaping" in g.log("deliverd"), 10,
                 what="the bad file refused")
        assert "%s:2: bad value for connections" % path in g.log("deliverd")
        put_msg(g, "acc", ["a@limited.test"], count=4)
        wait_for(lambda: len(log.rcpts()) >= 4, 30, what="4 messages")
        assert srv.max_active == 1, "the old limit still applies"
        with open(path, "w") as f:
            f.write("[limited.test]\nconnections = 3\n")
        hup(g)
        wait_for(lambda: "reload: shaping: " + path in g.log("deliverd"), 10, what="reload")
        srv.reset_max()
        put_msg(g, "acc", ["b@limited.test"], count=6)
        wait_for(lambda: len(log.rcpts()) >= 10, 30, what="6 more messages")
        print("after the reload: at most %d sessions at once" % srv.max_active)
        assert 1 < srv.max_active <= 3
        assert g.procs["deliverd"].poll() is None


def test_bad_shaping_file_at_start(net):
    dns, port = net
    with gateway(dns, port, "[x.test]\nrate = fast\n") as g:
        p = g.start("deliverd", wait=False).procs["deliverd"]
        assert p.wait(timeout=15) == 2
        err = g.log("deliverd")
        assert "shaping_file" in err and g.conf["shaping_file"] + ":2:" in err, err


def test_contrib_shaping_loads_and_names_destinations(net):
    """contrib/shaping loads; queue --summary (text and JSON) puts each
    domain under its destination with that destination's limits."""
    dns, port = net
    with open(os.path.join(smtpgate.SRCDIR, "contrib", "shaping")) as f:
        text = f.read()
    with gateway(dns, port, text, deliverd_workers="8") as g:
        g.start("deliverd")
        assert "5 destinations" in g.log("deliverd")
        put_msg(g, "acc", ["a@googlemail.com", "b@Hotmail.com", "c@elsewhere.example"])
        wait_for(lambda: len(g.events()) >= 3, 30, what="3 deferrals (no DNS for them)")
        s = summary(g)
        rows = {d["domain"]: d for d in s["destinations"]}
        assert s["buckets"][0] == "0-5m" and s["total"]["total"] == 3
        assert rows["googlemail.com"]["destination"] == "gmail"
        assert rows["googlemail.com"]["connections"] == 5
        assert rows["googlemail.com"]["messages_per_connection"] == 50
        assert rows["hotmail.com"]["destination"] == "outlook"
        assert rows["elsewhere.example"]["destination"] == "elsewhere.example"
        assert rows["elsewhere.example"]["connections"] == 4	# 8 workers / 2
        assert all(r["state"] == "normal" and r["counts"][0] == 1 for r in rows.values())
        out = g.spoolctl("queue", "--summary").stdout
        print(out)
        assert "googlemail.com" in out and "dest=gmail" in out and "0-5m" in out
        r = g.spoolctl("queue", "--summary", "--domain", "x", check=False)
        assert r.returncode == 2


def test_message_rate(net):
    """rate = 60/m (one message a second, burst of one): eight messages
    cannot all be at the peer before seven seconds have passed, however
    fast the machine (a lower bound, not a speed)."""
    dns, port = net
    log = Transactions()
    with chaos.HostileServer(sink(log), host="127.0.0.4", port=port), \
            gateway(dns, port, "[limited.test]\nrate = 60/m\n") as g:
        g.start("deliverd")
        t0 = time.monotonic()
        put_msg(g, "acc", ["m@limited.test"], count=8)
        wait_for(lambda: len(log) >= 3, 30, what="the first messages")
        early = len(log)
        wait_for(lambda: len(log) >= 8, 60, what="8 messages")
        took = time.monotonic() - t0
        print("rate 60/m: 8 messages in %.1fs (%d within the first ones' wait)" % (took, early))
        assert took >= 6.5


def test_mx_rollup(net):
    """A domain without a section of its own whose MX host matches a
    section's `mx` joins that destination: its throttling reply slows the
    provider, and queue --summary shows the domain under it."""
    dns, port = net
    log = Transactions()
    state = {"throttle": True}
    shaping = ("[provider]\ndomains = provider.test\nmx = .mx.provider.test\n"
               "slow_for = 1h\nconnections = 3\n")
    with chaos.HostileServer(throttling(log, state), host="127.0.0.6", port=port), \
            gateway(dns, port, shaping) as g:
        g.start("deliverd")
        put_msg(g, "acc", ["later@workspace.test"])
        g.wait_events(lambda e: e["to"] == "later@workspace.test")
        wait_for(lambda: "destination=provider, domain=workspace.test" in g.log("deliverd"),
                 10, what="the domain learned by its MX")
        row = wait_for(lambda: (domain_row(g, "workspace.test") or {}).get("state") == "slowed"
                       and domain_row(g, "workspace.test"), 10, what="provider slowed")
        print(row)
        assert row["destination"] == "provider" and row["connections"] == 1
        assert "destination=provider, state=slowed" in g.log("deliverd")


def test_tarpit_backlog_beyond_the_memory_cap(net):
    """2,000 tarpit recipients due first are more than the scheduler keeps
    in memory with two workers (1,536): the tarpit keeps a quarter of that,
    and the healthy destination's mail, due later, is still taken and
    delivered while the tarpit holds its connection."""
    dns, port = net
    healthy_log = Transactions()
    with chaos.HostileServer(tarpit, host="127.0.0.2", port=port) as pit, \
            chaos.HostileServer(sink(healthy_log), host="127.0.0.3", port=port), \
            gateway(dns, port, deliverd_workers="2") as g:
        put_msg(g, "acc", ["t%d@tarpit.test" % i for i in range(1000)], count=2)
        time.sleep(1.1)		# the healthy mail is due later than all of it
        put_msg(g, "acc", ["h@healthy.test"], count=5)
        t0 = time.monotonic()
        g.start("deliverd")
        wait_for(lambda: len(healthy_log.rcpts()) >= 5, 30,
                 what="5 messages at the healthy destination")
        print("healthy: 5 of 5 in %.2fs behind 2,000 tarpit recipients; tarpit holds %d"
              % (time.monotonic() - t0, pit.active))
        assert pit.active == 1


# ---------------------------------------------------------------- MX host sets

HOSTER = "mx{mx1.hoster.test,mx2.hoster.test}"


@pytest.fixture
def hoster(tmp_path):
    """dnsmasq: shared1.test and shared2.test hosted by one provider (MX
    mx1.hoster.test and mx2.hoster.test, equal preference, so in random
    order); other.test with MX mx1.hoster.test only (another set). Every
    host is 127.0.0.7."""
    port = smtpgate.free_port()
    records = []
    for d in ("shared1", "shared2"):
        records.append(peers.Dns.mx("%s.test" % d, "mx1.hoster.test", 10))
        records.append(peers.Dns.mx("%s.test" % d, "mx2.hoster.test", 10))
    records.append(peers.Dns.mx("other.test", "mx1.hoster.test", 10))
    records.append(peers.Dns.a("mx1.hoster.test", "127.0.0.7"))
    records.append(peers.Dns.a("mx2.hoster.test", "127.0.0.7"))
    with peers.Dns(records, workdir=str(tmp_path)) as dns:
        yield dns, port


def test_mx_set_shares_one_destination(hoster):
    """Two domains no section names whose MX records name the same hosts
    share one destination, learned from their first delivery: with both
    domains' mail queued, the provider never sees more sessions than one
    destination's connections (the default, 2 of 4 workers; 4 when each
    domain was a destination of its own). A domain with another MX set is
    a destination of its own. queue --summary shows the MX set."""
    dns, port = hoster
    log = Transactions()
    with gateway(dns, port) as g:
        srv = chaos.HostileServer(sink(log, hold=1.0), host="127.0.0.7", port=port)
        with srv:
            g.start("deliverd")
            put_msg(g, "acc", ["a@shared1.test", "b@shared2.test", "c@other.test"])
            wait_for(lambda: len(log.rcpts()) >= 3, 30, what="the first message")
            for d, dest in (("shared1.test", HOSTER), ("shared2.test", HOSTER),
                            ("other.test", "mx{mx1.hoster.test}")):
                wait_for(lambda: "destination=%s, domain=%s (by its MX host set)" % (dest, d)
                         in g.log("deliverd"), 10, what="%s learned by its MX set" % d)
            # the workers' cached connections (other.test's too) close when idle
            wait_for(lambda: srv.active == 0, 20, what="idle connections closed")
            srv.reset_max()
            put_msg(g, "acc", ["x@shared1.test"], count=6)
            put_msg(g, "acc", ["y@shared2.test"], count=6)
            wait_for(lambda: len(log.rcpts()) >= 15, 60, what="12 messages to the provider")
            print("shared1.test + shared2.test: at most %d sessions at once (limit 2)"
                  % srv.max_active)
            assert srv.max_active <= 2
            wait_for(lambda: srv.active == 0, 20, what="idle connections closed")
            srv.reset_max()
            put_msg(g, "acc", ["x@shared1.test"], count=4)
            put_msg(g, "acc", ["z@other.test"], count=4)
            wait_for(lambda: len(log.rcpts()) >= 23, 60, what="8 more messages")
            print("shared1.test + other.test: at most %d sessions at once" % srv.max_active)
            assert srv.max_active > 2, "other.test is a destination of its own"
        # the provider is gone: the next message stays queued under the MX set
        put_msg(g, "acc", ["w@shared2.test"])
        g.wait_events(lambda e: e["to"] == "w@shared2.test" and e["event"] == "deferred")
        row = domain_row(g, "shared2.test")
        print(row)
        assert row["destination"] == HOSTER and row["connections"] == 2
        out = g.spoolctl("queue", "--summary").stdout
        print(out)
        assert "dest=%s" % HOSTER in out
