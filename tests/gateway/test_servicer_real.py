"""The servicer with the real provider readers (ext) and the real telemetry pipeline.

Every recorded exchange goes through gRPC in small chunks, in both modes; the span the
in-memory exporter holds must carry exactly what ext makes of the same exchange fed in
one piece, plus the timing the transport measured.
"""

from __future__ import annotations

from typing import Any

import pytest
from extproc_helpers import (
    Harness,
    LoopThread,
    exchange_messages,
    parse_response,
    request_header_pairs,
    response_header_pairs,
)
from recorded import EXCHANGES

from llmtap.ext import RequestInfo
from llmtap.gateway.config import load_settings
from llmtap.gateway.modes import TransportOptions
from llmtap.gateway.servicer import default_start_exchange
from llmtap.gateway.telemetry import Telemetry

GZIPPED = [e for e in EXCHANGES if (e.path / "response.gz.bin").exists()]
TTFC = "gen_ai.response.time_to_first_chunk"


@pytest.fixture(scope="module")
def real():
    lt = LoopThread()
    settings = load_settings(
        env={},
        overrides={
            "export.traces_exporter": "memory",
            "metrics.prometheus": False,
            "metrics.otlp": False,
        },
    )
    tel = Telemetry(settings)
    start = default_start_exchange(settings)
    opts = TransportOptions(listen="127.0.0.1:0")
    h = Harness(lt, opts, telemetry=tel, ext=start)
    yield h, start
    h.close()
    lt.close()


def value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


def direct_record(start: Any, exchange: Any, gz: bool) -> tuple[Any, bool]:
    """What ext makes of the exchange fed in one piece (no transport)."""
    pairs = dict(request_header_pairs(exchange))
    info = RequestInfo(
        method=pairs[":method"],
        authority=pairs[":authority"],
        path=pairs[":path"],
        headers={k: v for k, v in pairs.items() if not k.startswith(":")},
        scheme="https",
    )
    ex = start(info)
    if exchange.request is not None:
        ex.on_request_body(exchange.request, True)
    headers: dict[str, str] = {}
    for k, v in response_header_pairs(exchange, gz)[1:]:
        headers[k] = v if k not in headers else f"{headers[k]}, {v}"
    ex.on_response_headers(exchange.meta["status"], headers)
    body = exchange.response_gz if gz else exchange.response
    started = ex.on_response_body(body, True)
    return ex.finish(), started


def check(h: Any, start: Any, exchange: Any, *, obs: bool, gz: bool) -> None:
    tel = h.tel
    tel.exporter.clear()
    before = dict(tel.metrics.exchanges)
    msgs, _ = exchange_messages(exchange, obs=obs, gz=gz)
    answers = h.exchange(msgs, normal=not obs)
    h.wait_for(lambda: sum(tel.metrics.exchanges.values()) > sum(before.values()))
    rec, started = direct_record(start, exchange, gz)
    spans = tel.spans_for_test()
    assert len(spans) == 1
    span = spans[0]
    assert span.name == rec.span_name
    attrs = {kv.key: value(kv.value) for kv in span.attributes}
    for k, v in rec.attributes().items():
        assert attrs.get(k) == v, k
    assert attrs["http.response.status_code"] == exchange.meta["status"]
    if started:
        assert attrs[TTFC] > 0
        assert span.start_time_unix_nano < span.end_time_unix_nano
    else:
        assert TTFC not in attrs
    outcome = "complete" if rec.cut_short is None else rec.cut_short
    assert tel.metrics.exchanges.get(outcome, 0) == before.get(outcome, 0) + 1
    if not obs:
        # the provider call joins the trace: the injected traceparent names this span
        common = parse_response(answers[0]).request_headers.response
        injected = {
            o.header.key: o.header.raw_value.decode() for o in common.header_mutation.set_headers
        }
        _version, trace_id, span_id, flags = injected["traceparent"].split("-")
        assert (trace_id, span_id) == (span.trace_id.hex(), span.span_id.hex())
        assert int(flags, 16) & 1  # sampled


@pytest.mark.parametrize("obs", [False, True], ids=["normal", "observability"])
def test_every_exchange_through_real_ext_and_telemetry(real, exchange, obs) -> None:
    h, start = real
    check(h, start, exchange, obs=obs, gz=False)


@pytest.mark.parametrize("gzipped", GZIPPED, ids=[e.id for e in GZIPPED])
def test_gzip_exchanges_through_real_ext_and_telemetry(real, gzipped) -> None:
    h, start = real
    check(h, start, gzipped, obs=False, gz=True)
