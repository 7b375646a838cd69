"""A small HTTP/1.1 server for fake upstreams: streams a response in timed pieces.

Envoy talks HTTP/1.1 to plaintext upstreams. What matters here is control over the
wire: the exact body bytes, the status and headers, and when each piece is written, so
that Envoy forwards the pieces as separate body messages. The standard library's
``http.server`` buffers and cannot pace a chunked body, hence this (stdlib only).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024

# Framing is ours: headers the handler copies from elsewhere must not contradict it.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    """``parts`` are ``(delay_before_seconds, bytes)``; ``chunked`` picks the framing."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    parts: Sequence[tuple[float, bytes]] = ()
    chunked: bool = True

    @classmethod
    def whole(
        cls,
        status: int,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        delay: float = 0.0,
    ) -> Response:
        return cls(status, headers, [(delay, body)], chunked=False)

    @property
    def body(self) -> bytes:
        return b"".join(p for _, p in self.parts)


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class BadRequest(Exception):
    pass


@dataclass
class Stats:
    requests: int = 0
    active: int = 0
    aborted: int = 0
    errors: list[str] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise BadRequest("connection closed inside the request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest(f"request head larger than {MAX_HEAD} bytes") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest(f"bad request line {lines[0]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            raise BadRequest(f"request body of {length} bytes is over {MAX_BODY}")
        body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers: not needed
            return bytes(out)
        if len(out) + size > MAX_BODY:
            raise BadRequest(f"request body over {MAX_BODY} bytes")
        out += await reader.readexactly(size)
        await reader.readexactly(2)


def _head(resp: Response, length: int | None) -> bytes:
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {resp.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in resp.headers if k.lower() not in _FRAMING_HEADERS]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """Serve ``handler`` on a loopback port from a background thread.

    ``start()`` returns once the port is bound; ``stop()`` closes the listener and
    every open connection (streams in flight are cut, as a crashed provider would).
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.stats = Stats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> HttpServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)
                )
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"httpserver-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(timeout)

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    req = await _read_request(reader)
                except (BadRequest, ValueError) as exc:
                    self.stats.errors.append(str(exc))
                    writer.write(_head(Response(400), 0))
                    return
                if req is None:
                    return
                self.stats.requests += 1
                self.stats.active += 1
                try:
                    await self._respond(req, writer)
                finally:
                    self.stats.active -= 1
                if req.header("connection").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.stats.aborted += 1
        except asyncio.CancelledError:
            # stop(): end quietly (a cancelled connection task makes asyncio log noise).
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, req: Request, writer: asyncio.StreamWriter) -> None:
        try:
            result = self.handler(req)
            resp = await result if isinstance(result, Awaitable) else result
        except Exception as exc:  # a handler bug must show, not hang the client
            self.stats.errors.append(f"{req.method} {req.target}: {exc!r}")
            msg = f"upstream handler failed: {exc!r}".encode()
            resp = Response.whole(500, [("content-type", "text/plain")], msg)
        if resp.chunked:
            writer.write(_head(resp, None))
            for delay, data in resp.parts:
                if delay > 0:
                    await writer.drain()
                    await asyncio.sleep(delay)
                if data:
                    writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            writer.write(b"0\r\n\r\n")
        else:
            # A whole body is sent once it is ready, head included, as providers do.
            parts = list(resp.parts)
            if parts and parts[0][0] > 0:
                await asyncio.sleep(parts[0][0])
                parts[0] = (0.0, parts[0][1])
            writer.write(_head(resp, len(resp.body)))
            for delay, data in parts:
                if delay > 0:
                    await writer.drain()
                    await asyncio.sleep(delay)
                writer.write(data)
        await writer.drain()
