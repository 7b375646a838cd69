"""Replay upstream: serves the recorded exchanges in ../shared/fixtures, in place.

The test picks the exchange with a request header, ``x-replay-fixture: <shape>/<case>``
(Envoy forwards it; llmtap sees it too and ignores it). The answer is the recording:
its status, its headers, its body bytes, gzip-compressed where the recording kept the
compressed bytes (``response.gz.bin``, sent with its ``Content-Encoding``). The body is
cut into ``pieces`` parts at even byte offsets (so frames split mid-event, as TCP does)
and written with ``delay`` seconds between them, so Envoy hands llmtap several body
messages. Recordings whose headers were stripped get the content type their shape has.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from recorded import Exchange

from llmtap.gateway.demo.httpserver import Request, Response

HEADER = "x-replay-fixture"

# Framing and hop-by-hop headers describe the recorded connection, not ours.
_DROP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def _default_content_type(ex: Exchange) -> str:
    body = ex.response[:64].lstrip()
    if ex.shape == "bedrock" and ex.meta.get("response_is_stream") and ex.meta["status"] < 300:
        return "application/vnd.amazon.eventstream"
    if body.startswith((b"data:", b"event:")):
        return "text/event-stream"
    if ex.shape == "ollama_native" and ex.meta.get("response_is_stream"):
        return "application/x-ndjson"
    return "application/json"


@dataclass
class Seen:
    """One request the replay answered (tests check what Envoy forwarded)."""

    fixture: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Replay:
    """The HTTP handler; ``exchanges`` maps ``<shape>/<case>`` to the recording."""

    exchanges: dict[str, Exchange]
    pieces: int = 5
    delay: float = 0.02
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, req: Request) -> Response:
        name = req.header(HEADER)
        ex = self.exchanges.get(name)
        if ex is None:
            msg = f"replay: no recorded exchange {name!r} (set {HEADER}: <shape>/<case>)"
            return Response.whole(404, [("content-type", "text/plain")], msg.encode())
        with self._lock:
            self.seen.append(Seen(name, req.method, req.target, dict(req.headers), req.body))
        return self.response(ex, pieces=int(req.header("x-replay-pieces") or self.pieces))

    def response(self, ex: Exchange, pieces: int) -> Response:
        headers: list[tuple[str, str]] = []
        for k, v in ex.meta.get("response_headers", {}).items():
            if k.lower() in _DROP:
                continue
            for value in v if isinstance(v, list) else [v]:
                headers.append((k, str(value)))
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", _default_content_type(ex)))
        body = ex.response
        gz = ex.response_gz
        if gz is not None and (ex.header("content-encoding") or "").lower() == "gzip":
            body = gz
            headers.append(("content-encoding", "gzip"))
        step = max(1, -(-len(body) // max(1, pieces)))
        parts = [(self.delay, body[i : i + step]) for i in range(0, len(body), step)] or [
            (self.delay, b"")
        ]
        chunked = bool(ex.meta.get("response_is_stream"))
        return Response(ex.meta["status"], headers, parts, chunked=chunked)

    def requests_for(self, fixture: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.fixture == fixture]


def build(exchanges: list[Exchange], **kw: Any) -> Replay:
    return Replay({e.id: e for e in exchanges}, **kw)
