"""The uvloop load client: wrk's job when wrk is missing, and the memory run's holder.

``load``: ``--connections`` keep-alive HTTP/1.1 connections, each sending the
scenario's request again as soon as the previous response is complete (closed loop,
like wrk), for ``--duration`` seconds. Prints one JSON line with the same fields the
wrk script prints (``loadgen.parse``): requests, duration, errors, latency quantiles.

``hold``: opens ``--connections`` connections spread over ``--url``s, sends each the
held scenario's request, prints ``open N`` once every response has started, then
reads them all to the end and prints a JSON summary. The upstream decides when the
held responses go on (``/_bench/release``).

    python -m bench.load.client load --url URL --scenario NAME [--connections 8] [--duration 3]
    python -m bench.load.client hold --url URL [--url URL2] --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.load import scenarios

QUANTILES = (
    *(i / 2 for i in range(1, 200)),
    99.6,
    99.7,
    99.8,
    99.9,
    99.95,
    99.99,
    100.0,
)


def request_bytes(url: str, sc: scenarios.Scenario, model: str | None = None) -> bytes:
    model = model or sc.model
    body = sc.body_for(model)
    parts = urlsplit(url)
    lines = [f"POST {sc.path_for(model)} HTTP/1.1", f"host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in sc.headers_for_request()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Response:
    """An incremental HTTP/1.1 response reader (content-length or chunked)."""

    __slots__ = ("body_seen", "buf", "chunked", "done", "need", "pos", "status")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.status = 0
        self.chunked = False
        self.need = -1  # content-length left, or -1 before the head
        self.pos = 0  # chunked: offset of the next chunk-size line
        self.done = False
        self.body_seen = 0

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; returns bytes past the end of this response."""
        self.buf += data
        if self.need < 0 and not self.chunked:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return b""
            head = bytes(self.buf[:end]).lower()
            self.status = int(head[9:12])
            del self.buf[: end + 4]
            if b"transfer-encoding: chunked" in head:
                self.chunked = True
            else:
                i = head.find(b"content-length:")
                self.need = int(head[i + 15 : head.find(b"\r\n", i + 15)]) if i >= 0 else 0
        if not self.chunked:
            take = min(self.need, len(self.buf))
            self.need -= take
            self.body_seen += take
            rest = bytes(self.buf[take:])
            del self.buf[:]
            if self.need == 0:
                self.done = True
                return rest
            return b""
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return b""
            size = int(buf[self.pos : eol].split(b";")[0], 16)
            if size == 0:
                if len(buf) < eol + 4:
                    return b""
                self.done = True
                return bytes(buf[eol + 4 :])
            if len(buf) < eol + 2 + size + 2:
                return b""
            self.body_seen += size
            del buf[: eol + 2 + size + 2]
            self.pos = 0


class Conn(asyncio.Protocol):
    def __init__(self, request: bytes, on_response: Callable[[Conn, Response], None]) -> None:
        self.request = request
        self.on_response = on_response
        self.transport: asyncio.Transport | None = None
        self.resp = Response()
        self.t0 = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(exc)

    def send(self) -> None:
        self.resp = Response()
        self.t0 = time.perf_counter_ns()
        if self.transport is not None:
            self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        rest = self.resp.feed(data)
        self.on_response(self, self.resp)
        if self.resp.done and rest:
            self.data_received(rest)


def _quantiles(latencies_us: list[int]) -> list[list[float]]:
    if not latencies_us:
        return []
    latencies_us.sort()
    n = len(latencies_us)
    return [[q, latencies_us[min(n - 1, int(q / 100 * n))]] for q in QUANTILES]


async def load(
    url: str, name: str, connections: int, duration: float, model: str, think_ms: float
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    sc = scenarios.get(name)
    req = request_bytes(url, sc, model or None)
    parts = urlsplit(url)
    latencies: list[int] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    nbytes = 0
    stop_at = time.perf_counter() + duration

    def on_response(conn: Conn, resp: Response) -> None:
        nonlocal nbytes
        if not resp.done:
            return
        latencies.append((time.perf_counter_ns() - conn.t0) // 1000)
        nbytes += resp.body_seen
        if not 200 <= resp.status < 300:
            errors["status"] += 1
        if time.perf_counter() < stop_at:
            if think_ms > 0:
                loop.call_later(think_ms / 1000, conn.send)
            else:
                conn.send()
        elif conn.transport is not None:
            conn.transport.close()

    conns: list[Conn] = []
    t0 = time.perf_counter()
    for _ in range(connections):
        try:
            _, conn = await loop.create_connection(
                lambda: Conn(req, on_response), parts.hostname or "127.0.0.1", parts.port or 80
            )
        except OSError:
            errors["connect"] += 1
            continue
        conns.append(conn)
        conn.send()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    # Like wrk: requests still in flight when the time is up are not waited for.
    for conn in conns:
        if conn.transport is not None:
            conn.transport.abort()
    elapsed = time.perf_counter() - t0
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": nbytes,
        "errors": errors,
        "latency_us": _quantiles(latencies),
    }


async def hold(urls: list[str], connections: int, timeout: float, rate: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    sc = scenarios.get(scenarios.HOLD)
    opened = 0
    finished = 0
    all_open = asyncio.Event()
    all_done = asyncio.Event()
    failed = 0

    def on_response(conn: Conn, resp: Response) -> None:
        nonlocal opened, finished
        if not getattr(conn, "counted", False) and (resp.body_seen or resp.chunked):
            conn.counted = True  # type: ignore[attr-defined]
            opened += 1
            if opened + failed >= connections:
                all_open.set()
        if resp.done:
            finished += 1
            if conn.transport is not None:
                conn.transport.close()
            if finished + failed >= connections:
                all_done.set()

    sem = asyncio.Semaphore(256)  # connects in flight: stay under the listen backlog
    start = loop.time()

    async def one(i: int) -> Conn | None:
        nonlocal failed
        url = urls[i % len(urls)]
        parts = urlsplit(url)
        # A steady ramp: a burst of thousands of new streams is another test (how fast
        # Envoy and the ext_proc server accept streams), not the memory one.
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        async with sem:
            try:
                _, conn = await loop.create_connection(
                    lambda: Conn(request_bytes(url, sc), on_response),
                    parts.hostname or "127.0.0.1",
                    parts.port or 80,
                )
            except OSError:
                failed += 1
                return None
        conn.send()
        return conn

    t0 = time.perf_counter()
    conns = await asyncio.gather(*(one(i) for i in range(connections)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), timeout)
    print(f"open {opened} failed {failed}", flush=True)
    open_s = time.perf_counter() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), timeout)
    for conn in conns:
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
    return {"opened": opened, "failed": failed, "finished": finished, "open_s": open_s}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.load.client")
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--url", required=True)
    lp.add_argument("--scenario", required=True)
    lp.add_argument("--connections", type=int, default=8)
    lp.add_argument("--duration", type=float, default=3.0)
    lp.add_argument("--model", default="", help="request model (default bench-SCENARIO)")
    lp.add_argument("--think-ms", type=float, default=0.0, help="pause between requests")
    hp = sub.add_parser("hold")
    hp.add_argument("--url", action="append", required=True)
    hp.add_argument("--connections", type=int, default=10_000)
    hp.add_argument("--timeout", type=float, default=120.0)
    hp.add_argument("--rate", type=float, default=500.0, help="new streams per second")
    args = p.parse_args(argv)
    import uvloop

    if args.cmd == "load":
        out = uvloop.run(
            load(
                args.url, args.scenario, args.connections, args.duration, args.model, args.think_ms
            )
        )
    else:
        out = uvloop.run(hold(args.url, args.connections, args.timeout, args.rate))
    sys.stdout.write("BENCH_JSON " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
