"""CPU cost of llmtap's span path against the stock OpenTelemetry SDK path, same run.

    python -m bench.bench_span_path [--json FILE] [--rounds N] [--batch N]
    pytest bench/bench_span_path.py --benchmark-enable

The span path of one sampled exchange is: build the span, encode it to OTLP protobuf
and hand it to the exporter. llmtap: a ``SpanData`` tuple, ``OtlpEncoder.span`` (compiled
twin, and the pure-Python reference for comparison) and ``SpanExporter.offer``. Stock
SDK: ``tracer.start_span`` with the same attributes, ``set_status``, ``end`` into a
``BatchSpanProcessor`` whose ``OTLPSpanExporter`` encodes the batch
(``encode_spans(...).SerializeToString()``) but does not send it.

Times are CPU seconds (``time.process_time``: it includes the SDK's export thread),
per exchange, best of alternating rounds, so that a noisy shared machine penalises all
methods alike. The whole ``Telemetry.end`` (metrics included) and ``Telemetry.begin``
are reported too.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.machine import banner, describe
from llmtap.gateway import otlp
from llmtap.gateway.config import load_settings
from llmtap.gateway.export import SpanExporter
from llmtap.gateway.spans import KIND_CLIENT, SpanData
from llmtap.gateway.telemetry import Telemetry

RESOURCE = {"service.name": "llmtap-bench", "telemetry.sdk.name": "llmtap"}

#: What a streamed OpenAI chat call typically carries (ext CallRecord.attributes()).
ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.max_tokens": 512,
    "gen_ai.request.temperature": 0.7,
    "gen_ai.request.stream": True,
    "gen_ai.response.id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 1187,
    "gen_ai.usage.output_tokens": 243,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "openai.response.system_fingerprint": "fp_0ba0d124f1",
    "server.address": "api.openai.com",
    "server.port": 443,
    "llmtap.usage.cost_usd": 0.000324,
    "gen_ai.response.time_to_first_chunk": 0.412,
    "http.response.status_code": 200,
}
NAME = "chat gpt-4o-mini"
T0 = 1_800_000_000_000_000_000
T1 = T0 + 2_345_678_901


class _Record:
    """A CallRecord stand-in whose ``attributes()`` returns a fresh dict, like ext's."""

    operation = "chat"
    provider = "openai"
    request_model = "gpt-4o-mini"
    response_model = "gpt-4o-mini-2024-07-18"
    input_tokens = 1187
    output_tokens = 243
    error_type = None
    stream = True
    server_address = "api.openai.com"
    output_chunks = 120
    span_name = "chat gpt-4o-mini"
    status = ("UNSET", None)

    def attributes(self, semconv_latest: bool = False) -> dict[str, Any]:
        a = dict(ATTRIBUTES)
        del a["gen_ai.response.time_to_first_chunk"], a["http.response.status_code"]
        return a


# -- llmtap ---------------------------------------------------------------------------


def llmtap_span_path(encoder_cls: type) -> tuple[Callable[[int], None], Callable[[], Any]]:
    """Build + encode + offer, ``n`` times. Returns (run, last span bytes)."""
    encoder = encoder_cls(RESOURCE, "llmtap", "0.1.0")
    exporter = SpanExporter(load_settings(env={}).export, encoder)
    trace_id, span_id = os.urandom(16), os.urandom(8)
    offer = exporter.offer
    span = encoder.span

    def run(n: int) -> None:
        exporter._q.clear()
        exporter._bytes = 0
        for _ in range(n):
            attrs = dict(ATTRIBUTES)  # the attribute dict a record hands over
            data = SpanData(trace_id, span_id, b"", "ot=th:0", 0x103, NAME, KIND_CLIENT, T0, T1,
                            attrs, 0, "")  # fmt: skip
            offer(span(data))

    return run, lambda: exporter._q[-1]


def llmtap_telemetry(sampled: bool) -> tuple[Callable[[int], None], Telemetry]:
    """The whole ``Telemetry.end`` (metrics, attributes, span) ``n`` times."""
    sampler = "always_on" if sampled else "always_off"
    t = Telemetry(
        load_settings(env={}, overrides={"metrics.prometheus": False, "tracing.sampler": sampler})
    )
    d = t.begin({}, {}, T0)
    rec = _Record()
    end = t.end
    q = t.exporter._q  # type: ignore[attr-defined]

    def run(n: int) -> None:
        q.clear()
        t.exporter._bytes = 0  # type: ignore[attr-defined]
        for _ in range(n):
            end(d, rec, T0, T1, T0 + 412_000_000, 200)

    return run, t


def llmtap_begin() -> Callable[[int], None]:
    t = Telemetry(load_settings(env={}, overrides={"metrics.prometheus": False}))
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    begin = t.begin

    def run(n: int) -> None:
        for _ in range(n):
            begin(headers, {}, T0)

    return run


# -- stock SDK ----------------------------------------------------------------------------


def sdk_span_path(batch: int) -> tuple[Callable[[int], None], Callable[[], Any]]:
    """Stock SDK: span creation with the same attributes + BatchSpanProcessor +
    OTLPSpanExporter encode (no network)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class EncodeOnly(OTLPSpanExporter):
        last: bytes = b""

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            EncodeOnly.last = encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.create(RESOURCE))
    bsp = BatchSpanProcessor(
        EncodeOnly(endpoint="localhost:4317", insecure=True),
        max_queue_size=batch * 2,
        max_export_batch_size=batch,
        schedule_delay_millis=3_600_000,
    )
    provider.add_span_processor(bsp)
    tracer = provider.get_tracer("llmtap", "0.1.0")
    ok = Status(StatusCode.UNSET)

    def run(n: int) -> None:
        for _ in range(n):
            span = tracer.start_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=ATTRIBUTES, start_time=T0
            )
            span.set_status(ok)
            span.end(end_time=T1)
        bsp.force_flush()

    return run, lambda: EncodeOnly.last


# -- measuring -----------------------------------------------------------------------------


def cpu_per_call(run: Callable[[int], None], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        run(n)
        return (time.process_time() - t0) / n
    finally:
        gc.enable()


def methods(batch: int) -> dict[str, Callable[[int], None]]:
    out: dict[str, Callable[[int], None]] = {}
    if otlp.OtlpEncoder is not otlp.OtlpEncoderPy:
        out["llmtap span path (compiled encoder)"] = llmtap_span_path(otlp.OtlpEncoder)[0]
    out["llmtap span path (pure-Python encoder)"] = llmtap_span_path(otlp.OtlpEncoderPy)[0]
    out["stock SDK: span + BatchSpanProcessor + OTLP encode"] = sdk_span_path(batch)[0]
    out["llmtap Telemetry.end, sampled (metrics + span)"] = llmtap_telemetry(True)[0]
    out["llmtap Telemetry.end, unsampled (metrics only)"] = llmtap_telemetry(False)[0]
    out["llmtap Telemetry.begin (parent in headers)"] = llmtap_begin()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=512, help="exchanges per round")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    print(banner(("opentelemetry-sdk", "opentelemetry-proto", "protobuf")))
    runs = methods(args.batch)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = min(best[name], cpu_per_call(run, args.batch))
    sdk = best["stock SDK: span + BatchSpanProcessor + OTLP encode"]
    width = max(map(len, best))
    print(f"{'':{width}}  µs CPU/exchange   vs stock SDK")
    for name, sec in best.items():
        print(f"{name:{width}}  {sec * 1e6:10.2f}        {sdk / sec:6.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            us = {k: v * 1e6 for k, v in best.items()}
            json.dump({"machine": describe(), "us_per_exchange": us}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- pytest-benchmark ------------------------------------------------------------------------
# Kept out of the default test run (file name); ``--benchmark-disable`` runs each once.

BATCH = 256


def _bench(benchmark: Any, run: Callable[[int], None]) -> None:
    benchmark.extra_info["machine"] = banner(("opentelemetry-sdk",))
    benchmark.extra_info["exchanges_per_round"] = BATCH
    benchmark.pedantic(run, args=(BATCH,), rounds=20, iterations=1, warmup_rounds=2)


def test_llmtap_span_path_compiled(benchmark: Any) -> None:
    import pytest

    if otlp.OtlpEncoder is otlp.OtlpEncoderPy:
        pytest.skip("compiled encoder not built")
    _bench(benchmark, llmtap_span_path(otlp.OtlpEncoder)[0])


def test_llmtap_span_path_pure(benchmark: Any) -> None:
    _bench(benchmark, llmtap_span_path(otlp.OtlpEncoderPy)[0])


def test_sdk_span_path(benchmark: Any) -> None:
    _bench(benchmark, sdk_span_path(BATCH)[0])


def test_telemetry_end_sampled(benchmark: Any) -> None:
    _bench(benchmark, llmtap_telemetry(True)[0])


def test_both_paths_produce_the_same_span() -> None:
    """A benchmark of the wrong thing is worse than none: same span content both ways."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

    run, last = llmtap_span_path(otlp.OtlpEncoder)
    run(1)
    ours = ScopeSpans.FromString(last()).spans[0]
    run_sdk, last_sdk = sdk_span_path(4)
    run_sdk(1)
    theirs = ExportTraceServiceRequest.FromString(last_sdk()).resource_spans[0]
    theirs_span = theirs.scope_spans[0].spans[0]
    assert list(ours.attributes) == list(theirs_span.attributes)
    assert (ours.name, ours.kind, ours.start_time_unix_nano, ours.end_time_unix_nano) == (
        theirs_span.name,
        theirs_span.kind,
        theirs_span.start_time_unix_nano,
        theirs_span.end_time_unix_nano,
    )
