"""The bench's provider: a uvloop HTTP/1.1 server that answers precomputed bytes.

``gateway/demo/httpserver.py`` builds each answer per request on asyncio streams; here
the upstream shares two cores with everything it measures, so it does as little as
possible: every scenario's response is framed once at start, a request is matched by
its ``x-bench-scenario`` header, and each piece of a stream is one ``write`` (one
``send``, the socket has TCP_NODELAY) so that Envoy sees the stream in pieces as it
would from a provider. There are no delays: the bench measures throughput.

The ``hold`` scenario writes its head and first pieces, then waits until
``GET /_bench/release``: the memory run keeps thousands of streams open that way.
``GET /_bench/stats`` answers ``{"requests": n, "held": n}``.

    python -m bench.load.upstream --port-file FILE [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass

from bench.load import scenarios

HOLD_AFTER = 2  # pieces written before a held stream stops


@dataclass(frozen=True)
class Wire:
    head: bytes
    pieces: tuple[bytes, ...]
    hold_after: int | None = None


def wire(sc: scenarios.Scenario, hold_after: int | None = None) -> Wire:
    lines = [f"HTTP/1.1 {sc.status} OK", *(f"{k}: {v}" for k, v in sc.response_headers)]
    if sc.stream:
        lines.append("transfer-encoding: chunked")
        pieces = [b"%x\r\n%b\r\n" % (len(p), p) for p in sc.pieces]
        pieces[-1] += b"0\r\n\r\n"
    else:
        lines.append(f"content-length: {sc.body_bytes}")
        pieces = [b"".join(sc.pieces)]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Wire(head, tuple(pieces), hold_after)


def _reply(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        status,
        len(body),
        body,
    )


class Upstream:
    def __init__(self) -> None:
        self.wires = {n: wire(scenarios.get(n)) for n in scenarios.NAMES}
        self.wires[scenarios.HOLD] = wire(scenarios.get(scenarios.HOLD), HOLD_AFTER)
        self.requests = 0
        self.unknown = 0
        self.held: list[Conn] = []

    def release(self) -> int:
        held, self.held = self.held, []
        for conn in held:
            conn.resume()
        return len(held)


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "rest", "server", "transport")

    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.rest: tuple[bytes, ...] | None = None  # pieces still owed to a held stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._serve()

    def resume(self) -> None:
        rest, self.rest = self.rest, None
        t = self.transport
        if t is None or rest is None:
            return
        for p in rest:
            t.write(p)
        self._serve()

    def _serve(self) -> None:
        t = self.transport
        buf = self.buf
        while t is not None and self.rest is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            if b"\r\ntransfer-encoding: chunked" in head:
                # Envoy re-frames a request body that ext_proc streams as chunked.
                body_end = _chunked_end(buf, end + 4)
                if body_end < 0:
                    return
            else:
                body_end = end + 4 + _header_int(head, b"\r\ncontent-length:")
                if len(buf) < body_end:
                    return
            del buf[:body_end]
            self.server.requests += 1
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            if target.startswith(b"/_bench/"):
                t.write(self._control(target))
                continue
            name = _header(head, b"\r\n" + scenarios.SCENARIO_HEADER.encode() + b":")
            w = self.server.wires.get(name.decode("latin-1"))
            if w is None:
                self.server.unknown += 1
                if self.server.unknown <= 5:
                    print(f"unknown bench request: {head[:300]!r}", file=sys.stderr, flush=True)
                t.write(_reply(404, b'{"error":"no such bench scenario"}'))
                continue
            t.write(w.head)
            if w.hold_after is None:
                for p in w.pieces:
                    t.write(p)
                continue
            for p in w.pieces[: w.hold_after]:
                t.write(p)
            self.rest = w.pieces[w.hold_after :]
            self.server.held.append(self)

    def _control(self, target: bytes) -> bytes:
        if target == b"/_bench/release":
            n = self.server.release()
            return _reply(200, json.dumps({"released": n}).encode())
        if target == b"/_bench/stats":
            up = self.server
            doc = {"requests": up.requests, "held": len(up.held), "unknown": up.unknown}
            return _reply(200, json.dumps(doc).encode())
        return _reply(404, b"{}")


def _header(head: bytes, name: bytes) -> bytes:
    i = head.find(name)
    if i < 0:
        return b""
    j = head.find(b"\r\n", i + len(name))
    return head[i + len(name) : j if j >= 0 else len(head)].strip()


def _chunked_end(buf: bytearray, pos: int) -> int:
    """Offset just past a chunked body starting at ``pos``, or -1 if incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            # trailers (none expected), then the empty line
            end = buf.find(b"\r\n\r\n", eol)
            if end == eol:
                return eol + 4
            if end < 0:
                return -1
            return end + 4
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return -1


def _header_int(head: bytes, name: bytes) -> int:
    value = _header(head, name)
    return int(value) if value.isdigit() else 0


async def serve(host: str, port: int, port_file: str | None) -> None:
    loop = asyncio.get_running_loop()
    up = Upstream()
    server = await loop.create_server(lambda: Conn(up), host, port, backlog=8192)
    bound = server.sockets[0].getsockname()[1]
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(bound))
        os.replace(tmp, port_file)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.load.upstream")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    args = p.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port, args.port_file))


if __name__ == "__main__":
    main()
