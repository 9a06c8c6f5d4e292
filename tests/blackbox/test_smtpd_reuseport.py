"""Black-box tests of smtpd's listening sockets (issue 21): one
SO_REUSEPORT socket per worker and address, bound and kept by the master
(smtpd/smtpd_listen.c). The real binary on 127.0.0.1 and ::1; the
listening sockets are counted in /proc/net/tcp{,6}, the accept4 calls of
the workers traced with strace.

A connection wakes the one worker that polls its socket (with one shared
socket, every idle worker woke and all but one got EAGAIN: the first test
fails there); connections queued on a stopped or killed worker's socket
are taken by another worker or the replacement, never reset; SIGHUP with
another smtpd_workers binds more sockets and keeps every one."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import smtpgate
from smtpgate import Gateway, Raw, wait_for

needs_strace = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v strace"],
                   capture_output=True).returncode != 0,
    reason="strace not installed")

# a whole call, or the second half of one strace split (<... resumed>)
ACCEPT = re.compile(r"^(\d+)\s+(?:accept4\(|<\.\.\. accept4 resumed>)"
                    r".*\)\s+= (-?\d+)(?: (E[A-Z]+))?")


def workers(g):
    return smtpgate.smtpd_children(g)[0]


def settle(g, n, old=()):
    """n workers, none of them in old, each past its first board turns."""
    wait_for(lambda: len(workers(g)) == n and not set(workers(g)) & set(old),
             20, what="%d new workers" % n)
    time.sleep(0.5)


def greet(port, host="127.0.0.1", tls=False, timeout=15):
    r = Raw(port, host=host, timeout=timeout, tls=tls)
    code = r.reply()[0]
    assert code == 220
    assert r.cmd("QUIT")[0] == 221
    r.close()


def trace_accepts(pids, out):
    argv = ["strace", "-f", "-o", out, "-e", "trace=accept4"]
    for p in pids:
        argv += ["-p", str(p)]
    st = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return st


def accepts(st, out):
    """{pid: accepted count}, EAGAIN count."""
    st.send_signal(signal.SIGINT)
    st.wait(timeout=30)
    got, again = {}, 0
    with open(out, errors="replace") as f:
        for line in f:
            m = ACCEPT.match(line)
            if not m:
                continue
            if int(m.group(2)) >= 0:
                got[int(m.group(1))] = got.get(int(m.group(1)), 0) + 1
            elif m.group(3) == "EAGAIN":
                again += 1
    return got, again


def one_wakeup_each(g, tmp_path, n, hosts):
    """n sequential connections to each (host, port): every one accepted,
    by more than one worker, with (almost) no worker woken for nothing."""
    out = str(tmp_path / "accept4")
    st = trace_accepts(workers(g), out)
    try:
        for host, port in hosts:
            for _ in range(n):
                greet(port, host)
    finally:
        got, again = accepts(st, out)
    total = n * len(hosts)
    print("accepted per worker %s, EAGAIN %d for %d connections"
          % (sorted(got.values()), again, total))
    assert sum(got.values()) == total
    assert len(got) >= 2, "one client's connections all went to one worker"
    # The worker that accepts tries once more (EAGAIN ends its burst); with
    # a shared socket every other idle worker adds one: 4 per connection.
    assert again <= total + total // 4, "%d wake-ups for nothing" % (again - total)


@needs_strace
def test_each_connection_wakes_one_worker(tmp_path):
    with Gateway(tls=False, extra={"smtpd_workers": "4"}) as g:
        g.start("smtpd")
        settle(g, 4)
        assert smtpgate.listening_sockets(g.port)["4"] == 4
        one_wakeup_each(g, tmp_path, 40, [("127.0.0.1", g.port)])


def test_stopped_worker_connections_taken_by_others():
    """A stopped (stuck) worker's socket keeps receiving connections; the
    other worker takes them once its beat is stale."""
    with Gateway(tls=False, extra={"smtpd_workers": "2"}) as g:
        g.start("smtpd")
        settle(g, 2)
        stuck = workers(g)[0]
        os.kill(stuck, signal.SIGSTOP)
        try:
            conns = [Raw(g.port, timeout=15) for _ in range(16)]
            for r in conns:
                assert r.reply()[0] == 220
            for r in conns:
                assert r.cmd("QUIT")[0] == 221
                r.close()
        finally:
            os.kill(stuck, signal.SIGCONT)


def test_killed_workers_queued_connections_wait_for_replacements():
    """Both workers stopped, connections queue on their sockets; both are
    SIGKILLed: the master keeps the sockets, the replacements get them back
    and greet every queued connection; none is refused or reset."""
    with Gateway(tls=False, extra={"smtpd_workers": "2"}) as g:
        g.start("smtpd")
        settle(g, 2)
        old = workers(g)
        for p in old:
            os.kill(p, signal.SIGSTOP)
        conns = [Raw(g.port, timeout=15) for _ in range(16)]
        for r in conns:  # queued: nobody greets them yet
            r.sock.settimeout(0.2)
            with pytest.raises(socket.timeout):
                r.sock.recv(1)
            r.sock.settimeout(15)
        for p in old:
            os.kill(p, signal.SIGKILL)
        for r in conns:
            assert r.reply()[0] == 220
            assert r.cmd("QUIT")[0] == 221
            r.close()
        assert not set(workers(g)) & set(old)
        assert "killed by signal 9" in g.log("smtpd")


@needs_strace
def test_sighup_worker_count_ipv4_ipv6_implicit_tls(tmp_path):
    """2 -> 4 workers binds two more sockets per address (127.0.0.1, ::1,
    the implicit-TLS one); 4 -> 3 keeps all four, one worker polls two,
    and still no connection wakes a worker for nothing."""
    with Gateway(tls=True, extra={"smtpd_workers": "2"}) as g:
        port6 = smtpgate.free_port()
        g.listen.append("[::1]:%d tls=none" % port6)
        g.write_conf()
        g.start("smtpd")
        settle(g, 2)
        assert smtpgate.listening_sockets(g.port)["4"] == 2
        assert smtpgate.listening_sockets(g.port_implicit)["4"] == 2
        assert smtpgate.listening_sockets(port6)["6"] == 2
        for want, socks in ((4, 4), (3, 4)):
            old = workers(g)
            g.conf["smtpd_workers"] = str(want)
            g.write_conf()
            os.kill(g.pid("smtpd"), signal.SIGHUP)
            settle(g, want, old)
            assert smtpgate.listening_sockets(g.port)["4"] == socks
            assert smtpgate.listening_sockets(g.port_implicit)["4"] == socks
            assert smtpgate.listening_sockets(port6)["6"] == socks
            greet(g.port_implicit, tls=True)
            one_wakeup_each(g, tmp_path, 24,
                            [("127.0.0.1", g.port), ("::1", port6)])
        assert "reload: 4 sockets per address (were 2)" in g.log("smtpd")


def test_second_instance_on_the_port_fails():
    """SO_REUSEPORT would let a second smtpd of the same user share the
    port: it must fail as before (exit 2, the address in use)."""
    with Gateway(tls=False) as g:
        g.start("smtpd")
        r = subprocess.run([smtpgate.binary("smtpd"), "-c", g.conf_path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2
        assert "Address already in use" in r.stdout + r.stderr
        greet(g.port)
