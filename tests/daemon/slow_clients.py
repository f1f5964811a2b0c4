#!/usr/bin/env python3
"""Slow clients against dnsmon's /metrics server, and a legitimate scraper beside them.

Phases (all traffic on loopback; every loop bounded in time):
1. `--slow` connections from 127.0.0.2 upwards (4 per address, under the per-address cap) send one
   byte of a never-ending request head per second, and reconnect whenever the server closes them;
   once they are all open (their first connects spread over 5 s), for `--seconds`. Meanwhile a scraper on 127.0.0.1 fetches /metrics once a second with a 1 s
   deadline: every scrape must return the whole exposition. The server must close each slow
   connection a few seconds after it was opened (its request-head deadline).
2. 12 idle connections from one address: the 4 beyond the per-address cap are closed at once,
   the 8 others are not.
3. 8 idle connections from each of 70 addresses (560): the ones beyond the global cap of 512 are
   closed at once.
4. 200 idle connections, then SIGTERM to dnsmon: every connection is closed within 2 s.

Prints what it measured and exits 1 if any check fails.
"""
import argparse
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time

HEAD = (b"GET /metrics HTTP/1.1\r\nHost: dnsmon\r\nUser-Agent: slow-client\r\nX-Pad: "
        + b"a" * 400)  # no blank line: the head never ends
PER_ADDRESS_CAP = 8
GLOBAL_CAP = 512
HEAD_TIMEOUT = 5.0

problems = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        problems.append(what)


def connect(source, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((source, 0))
        s.settimeout(0.5)  # a server that does not accept must not stall the test
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


class SlowClient:
    def __init__(self, source, start_at):
        self.source = source
        self.start_at = start_at  # first connect
        self.sock = None
        self.opened = 0.0
        self.next_send = 0.0
        self.sent = 0


class SlowPool:
    """Slow connections that send one byte per second and reconnect when closed. The first
    connects are spread over `ramp` seconds, so that the server's deadlines do not close them all
    in one wave."""

    def __init__(self, port, sources, ramp=0.0):
        self.port = port
        self.sel = selectors.DefaultSelector()
        t0 = time.monotonic()
        self.clients = [SlowClient(s, t0 + ramp * i / len(sources)) for i, s in enumerate(sources)]
        self.lifetimes = []  # seconds from connect to the server's close
        self.connect_failures = 0

    def open(self, c):
        try:
            c.sock = connect(c.source, self.port)
        except OSError:
            self.connect_failures += 1
            c.sock = None
            return
        c.opened = c.next_send = time.monotonic()
        c.sent = 0
        self.sel.register(c.sock, selectors.EVENT_READ, c)

    def drop(self, c, by_server):
        if by_server:
            self.lifetimes.append(time.monotonic() - c.opened)
        self.sel.unregister(c.sock)
        c.sock.close()
        c.sock = None

    def open_count(self):
        return sum(1 for c in self.clients if c.sock is not None)

    def run(self, seconds):
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            for c in self.clients:
                if time.monotonic() >= end:
                    break
                if c.sock is None:
                    if now >= c.start_at:
                        self.open(c)
                    continue
                if now >= c.next_send:
                    c.next_send += 1.0
                    try:
                        c.sock.send(HEAD[c.sent % len(HEAD):c.sent % len(HEAD) + 1])
                        c.sent += 1
                    except OSError:
                        self.drop(c, True)
            for key, _ in self.sel.select(timeout=0.05):
                c = key.data
                try:
                    c.sock.recv(4096)  # EOF or a reset: the server closed it
                except OSError:
                    pass
                self.drop(c, True)
                self.open(c)

    def close_all(self):
        for c in self.clients:
            if c.sock is not None:
                self.drop(c, False)


class Scraper(threading.Thread):
    def __init__(self, port, seconds):
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.results = []  # (ok, seconds, detail, open_connections)

    def scrape(self):
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=1.0,
                                         source_address=("127.0.0.1", 0))
        except OSError as e:
            return False, time.monotonic() - t0, f"connect: {e}", None
        with s:
            data = b""
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                while True:
                    left = 1.0 - (time.monotonic() - t0)
                    if left <= 0:
                        return False, time.monotonic() - t0, "no full answer within 1 s", None
                    s.settimeout(left)
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
            except OSError as e:
                return False, time.monotonic() - t0, f"{e} after {len(data)} bytes", None
        elapsed = time.monotonic() - t0
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            return False, elapsed, f"status line {lines[0]!r}", None
        length = next((int(l.split(":", 1)[1]) for l in lines[1:]
                       if l.lower().startswith("content-length:")), -1)
        if length != len(body) or not body.endswith(b"\n") or b"\ndnsmon_build_info{" not in body:
            return False, elapsed, f"incomplete exposition ({len(body)} of {length} bytes)", None
        open_now = None
        for line in body.decode().splitlines():
            if line.startswith("dnsmon_http_open_connections "):
                open_now = float(line.split()[1])
        return True, elapsed, "", open_now

    def run(self):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            self.results.append(self.scrape())
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))


def idle_connections(port, sources, budget=10.0):
    """Opens one idle connection per entry of sources; returns them (None where connect failed,
    or was not tried because the time budget ran out)."""
    out = []
    end = time.monotonic() + budget
    for src in sources:
        try:
            if time.monotonic() >= end:
                raise TimeoutError
            out.append(connect(src, port))
        except OSError:
            out.append(None)
    return out


def closed_within(socks, seconds):
    """How many of socks the server closes within `seconds` (each checked once)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        if s is not None:
            sel.register(s, selectors.EVENT_READ)
    registered = len(sel.get_map())
    closed = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(closed) < registered:
        for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
            if key.fileobj in closed:
                continue
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed.add(key.fileobj)
                sel.unregister(key.fileobj)
    sel.close()
    return len(closed) + sum(1 for s in socks if s is None)


def samples(port):
    """The exposition's samples as {"name{labels}": value}; {} if it cannot be fetched."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            while chunk := c.recv(1 << 16):
                data += chunk
    except OSError as e:
        print(f"cannot fetch /metrics: {e}", flush=True)
        return {}
    out = {}
    for line in data.partition(b"\r\n\r\n")[2].decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="dnsmon, stopped in phase 4")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--slow", type=int, default=500)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 700
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    # Phase 1: slow clients from 127.0.0.2 upwards, four per address, and the scraper.
    sources = [f"127.0.{i // 4 // 250}.{2 + (i // 4) % 250}" for i in range(args.slow)]
    pool = SlowPool(args.port, sources, ramp=HEAD_TIMEOUT)
    pool.run(HEAD_TIMEOUT + 0.5)
    print(f"phase 1: {pool.open_count()} slow connections open from "
          f"{len(set(sources))} addresses; scraping once a second for {args.seconds:.0f} s",
          flush=True)
    pool.lifetimes.clear()
    scraper = Scraper(args.port, args.seconds)
    scraper.start()
    pool.run(args.seconds + 0.5)
    scraper.join(timeout=5)
    results = scraper.results
    good = [r for r in results if r[0]]
    worst = max((r[1] for r in results), default=0)
    opens = [r[3] for r in good if r[3] is not None]
    print(f"scrapes: {len(good)} of {len(results)} complete within 1 s, slowest {worst:.3f} s; "
          f"server saw {min(opens, default=0):.0f} to {max(opens, default=0):.0f} open "
          f"connections", flush=True)
    for ok, elapsed, detail, _ in results:
        if not ok:
            print(f"  failed scrape after {elapsed:.3f} s: {detail}", flush=True)
    check(len(results) >= args.seconds - 2, f"{len(results)} scrapes in {args.seconds:.0f} s")
    check(len(good) == len(results), "every scrape returned the whole exposition within 1 s")
    check(bool(opens) and min(opens) >= 0.9 * args.slow,
          f"the server held at least {0.9 * args.slow:.0f} connections at every scrape")
    check(pool.connect_failures == 0, f"{pool.connect_failures} slow connects failed")
    lt = sorted(pool.lifetimes)
    if lt:
        print(f"slow connections closed by the server: {len(lt)}, after {lt[0]:.1f} to "
              f"{lt[-1]:.1f} s (median {lt[len(lt) // 2]:.1f} s)", flush=True)
    check(len(lt) >= args.slow * (args.seconds / HEAD_TIMEOUT - 1),
          "the server closed the slow connections, each about every 5 s")
    check(bool(lt) and lt[0] >= HEAD_TIMEOUT - 1.0 and lt[-1] <= HEAD_TIMEOUT + 3.0,
          f"each slow connection lived about {HEAD_TIMEOUT:.0f} s (the request-head deadline)")
    pool.close_all()
    time.sleep(0.5)

    # Phase 2: the per-address cap.
    socks = idle_connections(args.port, ["127.0.0.250"] * (PER_ADDRESS_CAP + 4))
    n = closed_within(socks, 1.0)
    check(n == 4, f"{n} of {PER_ADDRESS_CAP + 4} connections from one address were closed at "
                  f"once (4 expected)")
    kept = closed_within(socks[:PER_ADDRESS_CAP], 0.2)
    check(kept == 0, f"the first {PER_ADDRESS_CAP} connections stayed open ({kept} closed)")
    for s in socks:
        if s is not None:
            s.close()
    time.sleep(0.5)

    # Phase 3: the global cap.
    total = 560
    sources = [f"127.0.1.{1 + i // PER_ADDRESS_CAP}" for i in range(total)]
    socks = idle_connections(args.port, sources)
    n = closed_within(socks, 1.5)
    check(total - GLOBAL_CAP - 2 <= n <= total - GLOBAL_CAP + 2,
          f"{n} of {total} connections from {total // PER_ADDRESS_CAP} addresses were closed at "
          f"once ({total - GLOBAL_CAP} expected beyond the global cap of {GLOBAL_CAP})")
    for s in socks:
        if s is not None:
            s.close()
    time.sleep(0.5)

    exposition = samples(args.port)
    counters = {r: exposition.get(f'dnsmon_http_connections_total{{result="{r}"}}')
                for r in ("answered", "timed_out", "refused_per_address", "refused_global")}
    print(f"dnsmon_http_connections_total: {counters}", flush=True)
    check((counters["timed_out"] or 0) >= len(lt), "timed_out counts the slow connections")
    check((counters["refused_per_address"] or 0) >= 4, "refused_per_address counts phase 2")
    check((counters["refused_global"] or 0) >= total - GLOBAL_CAP - 2,
          "refused_global counts phase 3")
    check((counters["answered"] or 0) >= len(good), "answered counts the scrapes")

    # Phase 4: SIGTERM with 200 slow connections open closes them all at once.
    socks = idle_connections(args.port, [f"127.0.2.{2 + i // 4}" for i in range(200)])
    t0 = time.monotonic()
    os.kill(args.pid, signal.SIGTERM)
    n = closed_within(socks, 2.0)
    check(n == len(socks), f"SIGTERM closed {n} of {len(socks)} open connections within "
                           f"{time.monotonic() - t0:.2f} s")
    for s in socks:
        if s is not None:
            s.close()

    print("problems: " + ("; ".join(problems) if problems else "none"), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
