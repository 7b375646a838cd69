"""Microbench of core/: framing + scanning per SSE event and per JSON body, against
the ways people usually do it in Python, all measured in the same run.

    python -m bench.micro_core [--json FILE] [--rounds N]

Ratios matter more than absolute numbers (shared, noisy machines): each method is
timed in alternating rounds and the best round is kept.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from bench.machine import banner, describe
from bench.payloads import json_bodies, sse_event_count, sse_streams
from llmtap.core import PathSet, StreamScanner

CHAT_PATHS = {
    "model": "model",
    "id": "id",
    "type": "type",
    "in": "usage.prompt_tokens",
    "out": "usage.completion_tokens",
    "cached": "usage.prompt_tokens_details.cached_tokens",
    "reasoning": "usage.completion_tokens_details.reasoning_tokens",
    "a_in": "message.usage.input_tokens",
    "a_out": "usage.output_tokens",
    "a_id": "message.id",
    "a_model": "message.model",
    "stop": "delta.stop_reason",
    "finish": "choices[*].finish_reason",
    "idx": "choices[*].index",
    "text": "?choices[*].delta.content",
    "a_text": "?delta.text",
}
FOLDS = {"finish": ("keyed", "idx")}


def scanner_is_native() -> bool:
    return StreamScanner.__module__.endswith("._stream")


# --- the msgspec baseline: Structs that name only the needed fields -----------------
class _Details(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    text: str | None = None
    stop_reason: str | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    finish_reason: str | None = None
    delta: _Delta | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Event(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    type: str | None = None
    usage: _Usage | None = None
    message: _Message | None = None
    delta: _Delta | None = None
    choices: list[_Choice] | None = None


_decoder = msgspec.json.Decoder(_Event)


def _split_sse(body: bytes):
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].lstrip(b" ")
                if data != b"[DONE]":
                    yield data


def run_msgspec(body: bytes, chunks: list[bytes]) -> Any:
    model = usage = None
    finish: dict[int, str] = {}
    for data in _split_sse(b"".join(chunks)):
        ev = _decoder.decode(data)
        model = ev.model or model
        usage = ev.usage or usage
        for c in ev.choices or ():
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    return model, usage, finish


def _run_dicts(loads: Callable[[bytes], Any], chunks: list[bytes]) -> Any:
    model = usage = None
    finish: dict[int, str] = {}
    for data in _split_sse(b"".join(chunks)):
        ev = loads(data)
        model = ev.get("model") or model
        usage = ev.get("usage") or usage
        for c in ev.get("choices") or ():
            if c.get("finish_reason"):
                finish[c.get("index", 0)] = c["finish_reason"]
    return model, usage, finish


def run_json(body: bytes, chunks: list[bytes]) -> Any:
    return _run_dicts(json.loads, chunks)


def run_orjson(body: bytes, chunks: list[bytes]) -> Any:
    return _run_dicts(orjson.loads, chunks)


_PATHS = PathSet(CHAT_PATHS)


def run_llmtap(body: bytes, chunks: list[bytes]) -> Any:
    ss = StreamScanner("sse", _PATHS, folds=FOLDS)
    for c in chunks:
        ss.feed(c)
    ss.close()
    return ss.values


def run_llmtap_json(body: bytes, chunks: list[bytes]) -> Any:
    ss = StreamScanner("json", _PATHS, folds=FOLDS)
    for c in chunks:
        ss.feed(c)
    ss.close()
    return ss.values


def run_msgspec_json(body: bytes, chunks: list[bytes]) -> Any:
    return _decoder.decode(b"".join(chunks))


def run_json_json(body: bytes, chunks: list[bytes]) -> Any:
    return json.loads(b"".join(chunks))


def run_orjson_json(body: bytes, chunks: list[bytes]) -> Any:
    return orjson.loads(b"".join(chunks))


SSE_METHODS = {
    "llmtap": run_llmtap,
    "msgspec-struct": run_msgspec,
    "orjson": run_orjson,
    "json.loads": run_json,
}
JSON_METHODS = {
    "llmtap": run_llmtap_json,
    "msgspec-struct": run_msgspec_json,
    "orjson": run_orjson_json,
    "json.loads": run_json_json,
}


def _chunks(body: bytes, size: int = 1400) -> list[bytes]:
    # Envoy forwards what the upstream wrote; ~one TCP segment per body message is typical.
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def measure(methods: dict[str, Callable], corpus: list[bytes], rounds: int, inner: int) -> dict:
    prepared = [(b, _chunks(b)) for b in corpus]
    best = {name: float("inf") for name in methods}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in methods.items():  # alternating turns: drift hits all alike
                t0 = time.perf_counter_ns()
                for _ in range(inner):
                    for body, chunks in prepared:
                        fn(body, chunks)
                best[name] = min(best[name], (time.perf_counter_ns() - t0) / inner)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    sse = [e.response for e in sse_streams()]
    events = sum(sse_event_count(b) for b in sse)
    sse_bytes = sum(len(b) for b in sse)
    bodies = [e.response for e in json_bodies()]
    body_bytes = sum(len(b) for b in bodies)

    print(f"# core microbench  native={scanner_is_native()}")
    print(f"# {banner()}")
    out: dict[str, Any] = {"machine": describe(), "native": scanner_is_native()}
    for label, methods, corpus, unit, n_units, nbytes in (
        ("SSE events", SSE_METHODS, sse, "event", events, sse_bytes),
        ("JSON bodies", JSON_METHODS, bodies, "body", len(bodies), body_bytes),
    ):
        best = measure(methods, corpus, args.rounds, args.inner)
        print(f"\n## {label}: {len(corpus)} recorded bodies, {n_units} {unit}s, {nbytes} bytes")
        print(f"| method | ns/{unit} | MB/s | llmtap speedup |")
        print("|---|---:|---:|---:|")
        rows = {}
        for name, ns in best.items():
            per = ns / n_units
            mbps = nbytes / (ns / 1e9) / 1e6
            ratio = ns / best["llmtap"]
            rows[name] = {"ns_per_unit": per, "mb_per_s": mbps, "llmtap_speedup": ratio}
            print(f"| {name} | {per:,.0f} | {mbps:,.1f} | {ratio:.2f}x |")
        out[label] = rows
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
