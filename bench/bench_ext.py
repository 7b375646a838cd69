"""What ext costs on top of core: µs per exchange for each API family, same run.

    python -m bench.bench_ext [--json FILE] [--rounds N] [--inner N] [--capture]
    pytest bench/bench_ext.py --benchmark-enable

Every recorded 2xx exchange (../shared/fixtures, read in place) is replayed the way
the gateway drives it: ``recognise``, the request body, the response headers, the
body in 1400-byte chunks (about one TCP segment per body message), ``finish``. That
is compared with core alone: a ``StreamScanner`` with the family's own paths, folds
and framing over the same chunks, values read once. Bodies are fed uncompressed to
both, so decompression (zlib's cost, not ours) is not in either number.

``--capture`` also replays with message content capture on and the captured content
built (what a sampled span with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
pays). Times are best-of alternating rounds (``perf_counter``), so drift on a shared
machine hits all methods alike; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.machine import banner, describe
from bench.payloads import EXCHANGES, Exchange
from llmtap.core import StreamScanner
from llmtap.ext import ExtConfig, RequestInfo, recognise

CHUNK = 1400
NO_COST = ExtConfig(cost=False)
CAPTURE = ExtConfig(cost=False, capture_content=True)


@dataclass
class Case:
    """One recorded exchange, prepared once: what the gateway would hand ext."""

    id: str
    family: str
    framing: str
    info: RequestInfo
    request: bytes | None
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    spec: tuple[Any, Any, str | None]  # PathSet, folds, b64_field: core alone


def _headers(ex: Exchange) -> dict[str, str]:
    h = {k.lower(): v for k, v in ex.meta["response_headers"].items()}
    h.pop("content-encoding", None)
    return h


def prepare(ex: Exchange) -> Case | None:
    m = ex.meta
    if m["status"] != 200:
        return None
    path = m["url_path"] + (f"?{m['url_query']}" if m.get("url_query") else "")
    info = RequestInfo(method=m["method"], authority=m["host"], path=path, headers={})
    x = recognise(info, config=NO_COST)
    if x.family == "unknown":
        return None
    if x.wants_request_body and ex.request is not None:
        x.on_request_body(ex.request, True)
    headers = _headers(ex)
    x.on_response_headers(m["status"], headers)
    framing = x._framing
    if framing is None:
        return None
    fam = x._family
    pathset, folds = _core_spec(fam)
    b64 = fam.b64_field if framing == "eventstream" else None
    body = ex.response
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    return Case(
        ex.id, x.family, framing, info, ex.request, m["status"], headers, chunks,
        (pathset, folds, b64),
    )  # fmt: skip


def _core_spec(fam: Any) -> tuple[Any, Any]:
    spec = fam.scanner_spec()
    return spec.paths, spec.folds


def cases() -> list[Case]:
    return [c for c in map(prepare, EXCHANGES) if c is not None]


# -- the two methods ------------------------------------------------------------------------


def run_ext(c: Case, config: ExtConfig = NO_COST) -> Any:
    x = recognise(c.info, config=config)
    if c.request is not None and x.wants_request_body:
        x.on_request_body(c.request, True)
    x.on_response_headers(c.status, c.headers)
    last = len(c.chunks) - 1
    for i, chunk in enumerate(c.chunks):
        x.on_response_body(chunk, i == last)
    rec = x.finish()
    if config.capture_content:
        dict(rec.content or {})  # what Telemetry reads when the span is sampled
    return rec


def run_core(c: Case) -> Any:
    paths, folds, b64 = c.spec
    ss = StreamScanner(c.framing, paths, folds=folds, b64_field=b64)
    for chunk in c.chunks:
        ss.feed(chunk)
    ss.close()
    return ss.values


def run_capture(c: Case) -> Any:
    return run_ext(c, CAPTURE)


def groups(all_cases: list[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for c in all_cases:
        out.setdefault(f"{c.family} ({c.framing})", []).append(c)
    return dict(sorted(out.items()))


def measure(
    methods: dict[str, Callable[[Case], Any]], corpus: list[Case], rounds: int, inner: int
) -> dict[str, float]:
    """Best-of-rounds µs per exchange for each method, turns alternating."""
    best = dict.fromkeys(methods, float("inf"))
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in methods.items():
                t0 = time.perf_counter_ns()
                for _ in range(inner):
                    for c in corpus:
                        fn(c)
                per = (time.perf_counter_ns() - t0) / inner / len(corpus) / 1000
                best[name] = min(best[name], per)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    ap.add_argument("--capture", action="store_true", help="also time content capture")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    methods: dict[str, Callable[[Case], Any]] = {"core": run_core, "ext": run_ext}
    if args.capture:
        methods["ext+capture"] = run_capture
    native = StreamScanner.__module__.endswith("._stream")
    print(f"# ext on top of core, µs per exchange  native={native}")
    print(f"# {banner()}")
    cols = " | ".join(methods)
    print(f"| family (framing) | exchanges | {cols} | ext - core |")
    print("|---|---:|" + "---:|" * len(methods) + "---:|")
    out: dict[str, Any] = {"machine": describe(), "native": native, "families": {}}
    for name, corpus in groups(cases()).items():
        best = measure(methods, corpus, args.rounds, args.inner)
        cells = " | ".join(f"{best[m]:,.1f}" for m in methods)
        print(f"| {name} | {len(corpus)} | {cells} | {best['ext'] - best['core']:,.1f} |")
        out["families"][name] = {"exchanges": len(corpus), **best}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- pytest-benchmark ------------------------------------------------------------------------
# Under ``--benchmark-disable`` (the default run) each benchmark runs once.

try:
    import pytest
except ImportError:  # pragma: no cover - running as a script without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    _GROUPS = groups(cases())

    @pytest.mark.parametrize("method", ["core", "ext", "ext+capture"])
    @pytest.mark.parametrize("family", list(_GROUPS))
    def test_exchange(benchmark: Any, family: str, method: str) -> None:
        fn = {"core": run_core, "ext": run_ext, "ext+capture": run_capture}[method]
        corpus = _GROUPS[family]
        result = benchmark(lambda: [fn(c) for c in corpus])
        assert len(result) == len(corpus)

    def test_ext_reads_what_core_reads() -> None:
        # A benchmark of the wrong work is worse than none: ext's scan of each body
        # must be core's scan of it (same values), so "ext - core" is ext's own cost.
        for c in cases():
            x = recognise(c.info, config=NO_COST)
            if c.request is not None and x.wants_request_body:
                x.on_request_body(c.request, True)
            x.on_response_headers(c.status, c.headers)
            for chunk in c.chunks:
                x.on_response_body(chunk, False)
            x.on_response_body(b"", True)
            assert x._ss.values == run_core(c), c.id
