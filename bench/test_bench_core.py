"""pytest-benchmark microbenches of core/ on the real fixture payloads.

In CI they run once each (``--benchmark-disable``) only to prove they run; compare
numbers with ``pytest bench --benchmark-enable`` or ``python -m bench.micro_core``.
"""

from __future__ import annotations

import pytest

from bench import micro_core
from bench.payloads import json_bodies, sse_streams

SSE = [(e.response, micro_core._chunks(e.response)) for e in sse_streams()]
BODIES = [(e.response, micro_core._chunks(e.response)) for e in json_bodies()]


def _all(fn, corpus):
    return [fn(b, c) for b, c in corpus]


@pytest.mark.parametrize("method", list(micro_core.SSE_METHODS))
def test_sse_events(benchmark, method: str) -> None:
    fn = micro_core.SSE_METHODS[method]
    result = benchmark(_all, fn, SSE)
    assert len(result) == len(SSE)


@pytest.mark.parametrize("method", list(micro_core.JSON_METHODS))
def test_json_bodies(benchmark, method: str) -> None:
    fn = micro_core.JSON_METHODS[method]
    result = benchmark(_all, fn, BODIES)
    assert len(result) == len(BODIES)


def test_llmtap_agrees_with_msgspec_on_finish_reasons() -> None:
    # A benchmark that measures the wrong thing is worse than none: check that the
    # fast path extracts what the baseline extracts.
    for body, chunks in SSE:
        ours = dict(zip(micro_core.CHAT_PATHS, micro_core.run_llmtap(body, chunks), strict=True))
        _, _, finish = micro_core.run_msgspec(body, chunks)
        got = [f for f in (ours["finish"] or []) if f is not None]
        assert got == [finish[k] for k in sorted(finish)]
