"""Every recorded exchange, replayed through ext as the gateway would drive it.

Each exchange runs whole, in 1-byte pieces, in random pieces and compressed
(``response.gz.bin`` with its Content-Encoding when recorded, else gzip applied here),
and the record must agree with ``meta.json`` ``expected`` under the GenAI mapping:

* response model / id as the body reports them (Bedrock Converse: the URL model is
  the request model, the body has none);
* inclusive usage: input includes cache reads/writes (Anthropic and Bedrock report
  them apart: input + cache_read + cache_creation; Gemini/Vertex add
  ``toolUsePromptTokenCount``), output includes reasoning (Gemini: candidates +
  thoughts); a count the body does not carry must be absent, not 0;
* finish reasons in choice order (Vertex integer enums by name);
* ``error.type`` by the rule in ext/errors.py, computed here from the raw error;
* the index of the event that carried the first output.
"""

from __future__ import annotations

import gzip
import random
import zlib
from typing import Any

import pytest
from recorded import Exchange

from llmtap.ext import CallRecord, RequestInfo, recognise

# Vertex Candidate.FinishReason numbers (what `enum-encoding=int` sends).
VERTEX_FINISH = ["FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION"]
EXCLUSIVE_INPUT = {"anthropic_messages", "anthropic_complete_legacy", "bedrock"}
GOOGLE = {"gemini", "vertex_ai"}


def request_info(ex: Exchange) -> RequestInfo:
    m = ex.meta
    path = m["url_path"] + (f"?{m['url_query']}" if m.get("url_query") else "")
    return RequestInfo(method=m["method"], authority=m["host"], path=path, headers={})


def response_headers(ex: Exchange, compressed: bool) -> dict[str, str]:
    h = {k.lower(): v for k, v in ex.meta["response_headers"].items()}
    if not compressed:
        h.pop("content-encoding", None)
    return h


def body(ex: Exchange, compressed: bool) -> tuple[bytes, dict[str, str]]:
    headers = response_headers(ex, compressed)
    if not compressed:
        return ex.response, headers
    gz = ex.response_gz
    if gz is None or headers.get("content-encoding") != "gzip":
        gz = gzip.compress(ex.response, mtime=0)
        headers["content-encoding"] = "gzip"
    return gz, headers


def split(data: bytes, how: str, seed: int) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes1":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 257)
        out.append(data[i : i + n])
        i += n
    return out


def replay(ex: Exchange, how: str, compressed: bool) -> tuple[CallRecord, int]:
    """Drive one Exchange; returns the record and how many chunks reported first output."""
    x = recognise(request_info(ex))
    req = ex.request
    if req is not None and x.wants_request_body:
        half = len(req) // 2
        x.on_request_body(req[:half], False)
        x.on_request_body(req[half:], True)
    data, headers = body(ex, compressed)
    x.on_response_headers(ex.meta["status"], headers)
    chunks = split(data, how, seed=zlib.crc32(ex.id.encode()))
    started = 0
    for i, c in enumerate(chunks):
        started += x.on_response_body(c, i == len(chunks) - 1)
    if not chunks:
        started += x.on_response_body(b"", True)
    return x.finish(), started


def expected_error_type(err: dict[str, Any] | None, status: int) -> str | None:
    """The documented rule, applied to the raw error the fixture recorded."""
    if err is None:
        return None
    for key in ("code", "type", "status"):
        v = err.get(key)
        if isinstance(v, str) and v and not v.isdigit():
            return v
    header = err.get("x-amzn-ErrorType_header")
    if header:
        return header.split(":")[0]
    return str(status)


def _add(*vals: int | None) -> int | None:
    present = [v for v in vals if v is not None]
    return sum(present) if present else None


def expected_usage(ex: Exchange) -> dict[str, int | None]:
    e = ex.meta["expected"]
    inp, out = e["input_tokens"], e["output_tokens"]
    cached, creation, reasoning = (
        e["cached_input_tokens"],
        e["cache_creation_input_tokens"],
        e["reasoning_tokens"],
    )
    if ex.shape in EXCLUSIVE_INPUT and inp is not None:
        inp = _add(inp, cached, creation)
    if ex.shape in GOOGLE:
        if inp is not None:
            inp = _add(inp, e.get("tool_use_prompt_tokens"))
        out = _add(out, reasoning)
    return {
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.usage.cache_creation.input_tokens": creation,
        "gen_ai.usage.reasoning.output_tokens": reasoning,
    }


def expected_finish(ex: Exchange) -> list[str]:
    raw = ex.meta["expected"]["finish_reasons"]
    return [VERTEX_FINISH[r] if isinstance(r, int) else str(r) for r in raw]


def check(ex: Exchange, rec: CallRecord, started: int) -> None:
    e, status = ex.meta["expected"], ex.meta["status"]
    attrs = rec.attributes()
    assert attrs["gen_ai.operation.name"] == rec.operation
    assert rec.provider != "unknown" and rec.family != "unknown", rec.family

    if e.get("model_from_url"):
        assert rec.request_model == e["model_from_url"]
    assert rec.response_model == e["model"]
    assert rec.response_id == e["response_id"]

    for key, want in expected_usage(ex).items():
        assert attrs.get(key) == want, (key, attrs.get(key), want)
    if e.get("total_tokens") is not None and ex.shape in GOOGLE:
        assert rec.input_tokens + rec.output_tokens == e["total_tokens"]

    assert (rec.finish_reasons or []) == expected_finish(ex)

    want_error = expected_error_type(e["error"], status)
    assert rec.error_type == want_error, (rec.error_type, rec.error_message)
    if want_error is None:
        assert rec.status == ("UNSET", None)
        assert rec.scan_error is None, rec.scan_error
        assert rec.cut_short is None
    else:
        assert rec.status[0] == "ERROR" and rec.status[1]
        assert attrs["error.type"] == want_error

    stream = e.get("stream") or {}
    if "first_output_event_index" in stream and 200 <= status < 300:
        assert rec.first_output_event == stream["first_output_event_index"]
    assert started == (1 if rec.first_output_kind else 0)
    assert (rec.first_output_kind is None) == (rec.first_output_event is None)


@pytest.mark.parametrize("how", ["whole", "bytes1", "random"])
def test_plain(exchange: Exchange, how: str, core_twin: Any) -> None:
    rec, started = replay(exchange, how, compressed=False)
    check(exchange, rec, started)


@pytest.mark.parametrize("how", ["whole", "random"])
def test_compressed(exchange: Exchange, how: str, core_twin: Any) -> None:
    rec, started = replay(exchange, how, compressed=True)
    check(exchange, rec, started)


def test_splits_agree(exchange: Exchange, core_twin: Any) -> None:
    """The whole record (not only what `expected` names) is independent of chunking."""
    whole, _ = replay(exchange, "whole", compressed=False)
    pieces, _ = replay(exchange, "random", compressed=True)
    assert whole.attributes() == pieces.attributes()
    assert whole.first_output_kind == pieces.first_output_kind
