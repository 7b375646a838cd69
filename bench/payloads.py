"""Real payloads for the microbenches, read in place from ../shared/fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from recorded import EXCHANGES, Exchange


def sse_streams(
    shape_prefixes: tuple[str, ...] = ("openai_chat", "anthropic_messages"),
) -> list[Exchange]:
    return [
        e
        for e in EXCHANGES
        if e.shape.startswith(shape_prefixes)
        and e.meta["status"] == 200
        and "event-stream" in (e.header("content-type") or "")
    ]


def json_bodies() -> list[Exchange]:
    return [
        e
        for e in EXCHANGES
        if e.meta["status"] == 200
        and (e.header("content-type") or "").startswith("application/json")
        and e.response.lstrip()[:1] == b"{"
    ]


def sse_event_count(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line.startswith(b"data:"))
