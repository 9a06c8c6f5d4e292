#!/usr/bin/python3
"""Latency sampler: N messages over S parallel SMTP sessions (connections are
reused), timing each message from the write of its end of data (CRLF.CRLF)
to the server's 250 reply.

    latency.py PORT [-n N] [-s SESSIONS] [-F FILE]
prints: count=N errors=E secs=T rate=R p50_ms=.. p99_ms=..
"""
import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import MSG_4K, percentile  # noqa: E402


def wire_message(path):
    """The file as SMTP DATA: CRLF line ends, dot-stuffed, with CRLF.CRLF."""
    with open(path, "rb") as f:
        lines = f.read().replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = [(b"." + ln) if ln.startswith(b".") else ln for ln in lines]
    return b"\r\n".join(out) + b"\r\n.\r\n"


async def _reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), line


async def _session(port, state, data, lat, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        code, _ = await asyncio.wait_for(_reply(reader), timeout)
        if code != 220:
            raise ConnectionError("greeting %d" % code)
        writer.write(b"EHLO bench.example\r\n")
        code, _ = await asyncio.wait_for(_reply(reader), timeout)
        while state["left"] > 0:
            state["left"] -= 1
            for cmd, want in ((b"MAIL FROM:<from@bench.example>\r\n", 250),
                              (b"RCPT TO:<to@bench.example>\r\n", 250),
                              (b"DATA\r\n", 354)):
                writer.write(cmd)
                code, line = await asyncio.wait_for(_reply(reader), timeout)
                if code != want:
                    raise ConnectionError("%s -> %s" % (cmd.strip().decode(), line.strip()))
            t0 = time.perf_counter()
            writer.write(data)
            code, line = await asyncio.wait_for(_reply(reader), timeout)
            t1 = time.perf_counter()
            if code != 250:
                state["errors"] += 1
                state["last_error"] = line.strip().decode(errors="replace")
                continue
            lat.append(t1 - t0)
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()


async def _run(port, n, sessions, data, timeout):
    state = {"left": n, "errors": 0, "last_error": None}
    lat = []
    t0 = time.perf_counter()
    res = await asyncio.gather(*[_session(port, state, data, lat, timeout)
                                 for _ in range(sessions)], return_exceptions=True)
    dt = time.perf_counter() - t0
    errs = [r for r in res if isinstance(r, Exception)]
    if errs and not lat:
        raise errs[0]
    return {"count": len(lat), "errors": state["errors"] + len(errs), "secs": dt,
            "rate": len(lat) / dt if dt > 0 else 0.0,
            "p50_ms": 1000 * percentile(lat, 50) if lat else None,
            "p99_ms": 1000 * percentile(lat, 99) if lat else None,
            "last_error": state["last_error"] or (str(errs[0]) if errs else None)}


def run(port, n, sessions=20, msgfile=MSG_4K, timeout=60):
    return asyncio.run(_run(port, n, sessions, wire_message(msgfile), timeout))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-s", type=int, default=20)
    ap.add_argument("-F", default=MSG_4K)
    a = ap.parse_args()
    r = run(a.port, a.n, a.s, a.F)
    print("count=%d errors=%d secs=%.3f rate=%.1f p50_ms=%.2f p99_ms=%.2f" % (
        r["count"], r["errors"], r["secs"], r["rate"], r["p50_ms"] or 0, r["p99_ms"] or 0))
    return 0 if r["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
