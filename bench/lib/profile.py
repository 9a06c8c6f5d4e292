#!/usr/bin/python3
"""Profiles one smtpgate daemon under the end-to-end load (needs perf/strace).

    bench/lib/profile.py DAEMON {perf|strace|stat} [-n N] [--dkim rsa|none]
                         [--builddir DIR] [--root-only] [-o PREFIX]
                         [--msg FILE] [--track] [--set KEY=VALUE]...

Starts smtpgate (relayhost = smtp-sink) in a temp dir, attaches
`perf record -e cpu-clock -g` or `strace -c -f` to DAEMON (smtpd, spoold
or deliverd) and its workers, sends N x 4 KB with smtp-source (20
sessions) until smtp-sink has them all, and prints the rate, the CPU of
every process and the profile summary (perf report by pid/dso and by
symbol, or the strace -c table). `stat`: `perf stat -e
context-switches,cpu-migrations,task-clock` of the same processes, with
the context switches per message. --root-only: only the daemon's main
process (e.g. deliverd's scheduler).
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("daemon", choices=["smtpd", "spoold", "deliverd"])
    ap.add_argument("tool", choices=["perf", "strace", "stat"])
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--dkim", choices=["rsa", "none"], default="rsa")
    ap.add_argument("--builddir")
    ap.add_argument("--root-only", action="store_true")
    ap.add_argument("--accept", action="store_true",
                    help="smtpd only (spoold stopped), as bench/run's accept figure")
    ap.add_argument("-o", default=None, help="output prefix (default: a temp dir)")
    ap.add_argument("--msg", default=None, help="send this message file instead of 4 KB")
    ap.add_argument("--track", action="store_true",
                    help="the account tracks opens, clicks and unsubscribes")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration key for the gateway (repeatable), "
                         "e.g. feedback_id_sender=gw")
    a = ap.parse_args()
    if a.builddir:
        os.environ["SMTPGATE_BUILDDIR"] = os.path.abspath(a.builddir)
    import benchlib as bl
    import gate_fixture as gf

    out = a.o or os.path.join(tempfile.mkdtemp(prefix="sgbench-prof-"), a.daemon)
    keys = []
    if a.dkim == "rsa":
        keys = [("rsa", gf.make_key(out + "-rsa.pem", "rsa"))]
    if a.accept and a.daemon != "smtpd":
        ap.error("--accept profiles smtpd")
    sink = bl.Sink()
    g = gf.Gate(sink.port, dkim=keys, extra=dict(kv.split("=", 1) for kv in a.set))
    prof = None
    try:
        if a.track:
            g.gw.spoolctl("account", "set", gf.ACCOUNT, "--track",
                          "opens,clicks,unsubscribe", "--track-host", "t.bench.example")
        g.start(*(["smtpd"] if a.accept else []))
        bl.smtp_source(g.port, 5, 5)
        if not a.accept:
            sink.wait_count(5, 60)
        roots = g.daemon_pids(a.daemon)
        pids = roots if a.root_only else bl.tree(roots)
        if a.tool == "stat":
            argv = ["perf", "stat", "-e", "context-switches,cpu-migrations,task-clock",
                    "-x", ",", "-o", out + ".stat", "-p", ",".join(map(str, pids))]
        elif a.tool == "perf":
            argv = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", out + ".perf",
                    "-p", ",".join(map(str, pids))]
        else:
            argv = ["strace", "-c", "-f", "-o", out + ".strace"]
            for p in pids:
                argv += ["-p", str(p)]
        prof = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        c0 = {p: bl._stat(p) for p in bl.tree(g.pids)}
        t0 = time.monotonic()
        bl.smtp_source(g.port, a.n, 20, msgfile=a.msg or bl.MSG_4K, timeout=600)
        if a.accept:
            bl.wait_for(lambda: g.count("new") >= a.n + 5, 60, what="incoming/new")
        else:
            sink.wait_count(a.n + 5, 900)
        dt = time.monotonic() - t0
        print("%d messages %s in %.2fs: %.0f msg/s" % (
            a.n, "accepted" if a.accept else "end to end", dt, a.n / dt))
        for p in bl.tree(g.pids):
            st, s0 = bl._stat(p), c0.get(p)
            if s0:
                print("  pid %d %-10s user %.2fs sys %.2fs" % (
                    p, bl.proc_name(p), (st["utime"] - s0["utime"]) / bl.CLK_TCK,
                    (st["stime"] - s0["stime"]) / bl.CLK_TCK))
        prof.send_signal(signal.SIGINT)
        prof.wait(timeout=120)
        prof = None
    finally:
        if prof is not None:
            prof.kill()
        g.close()
        sink.stop()
    if a.tool == "stat":
        with open(out + ".stat") as f:
            for ln in f:
                p = ln.strip().split(",")
                if len(p) > 2 and p[0].replace(".", "").isdigit():
                    print("%-18s %14s  %.2f per message" % (p[2], p[0], float(p[0]) / a.n))
    elif a.tool == "perf":
        for sort in ("pid,dso", "dso,sym"):
            r = subprocess.run(["perf", "report", "-i", out + ".perf", "--no-children", "--sort",
                                sort, "--stdio", "-g", "none"], capture_output=True, text=True)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
            print("\n".join(lines[:30]))
            print()
    else:
        with open(out + ".strace") as f:
            print(f.read())
    print("profile data: %s.*" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
