"""The batching OTLP/gRPC exporter against a real in-process OTLP receiver (grpc.aio
server built from opentelemetry-proto's service stubs), on uvloop like production."""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import uvloop
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from llmtap.gateway.config import ExportSettings
from llmtap.gateway.export import (
    DEFAULT_ENDPOINT,
    InMemorySpanExporter,
    NoopSpanExporter,
    SpanExporter,
    grpc_target,
    rejected_spans,
    retry_delay,
)
from llmtap.gateway.metrics import Metrics
from llmtap.gateway.spans import KIND_CLIENT, OtlpEncoder, SpanData

pytestmark = pytest.mark.timeout(120)

FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
]


def run(coro: Awaitable[Any]) -> Any:
    return uvloop.run(coro)  # type: ignore[arg-type]


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that records requests and can be told to fail."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.calls = 0
        self.failures: list[tuple[grpc.StatusCode, Any]] = []  # popped per call
        self.reject = 0

    @property
    def spans(self) -> list[Any]:
        return [
            s
            for r in self.requests
            for rs in r.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]

    async def Export(self, request: Any, context: Any) -> Any:
        self.calls += 1
        if self.failures:
            code, trailing = self.failures.pop(0)
            if trailing is not None:
                context.set_trailing_metadata(trailing)
            await context.abort(code, "told to fail")
        self.requests.append(request)
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        resp = trace_service_pb2.ExportTraceServiceResponse()
        if self.reject:
            resp.partial_success.rejected_spans = self.reject
            resp.partial_success.error_message = "too old"
        return resp


async def start_receiver(
    receiver: Receiver, port: int = 0, creds: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    addr = f"127.0.0.1:{port}" if creds is None else f"localhost:{port}"
    bound = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
    await server.start()
    return server, bound


def settings(port: int, **kw: Any) -> ExportSettings:
    base: dict[str, Any] = {
        "endpoint": f"http://127.0.0.1:{port}",
        "schedule_delay_ms": 20,
        "timeout_ms": 500,
        "export_timeout_ms": 2000,
    }
    base.update(kw)
    return ExportSettings(**base)


ENCODER = OtlpEncoder({"service.name": "llmtap-test"}, "llmtap", "0")


def span(i: int, pad: int = 0) -> bytes:
    return ENCODER.span(
        SpanData(
            trace_id=os.urandom(16),
            span_id=i.to_bytes(8, "big") if i else b"\x00" * 7 + b"\x01",
            parent_span_id=b"",
            trace_state="",
            flags=1,
            name=f"chat m{i}",
            kind=KIND_CLIENT,
            start_ns=time.time_ns(),
            end_ns=time.time_ns() + 1000,
            attributes={"i": i, "pad": "x" * pad},
            status_code=0,
            status_message="",
        )
    )


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- endpoint handling ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "insecure", "expected"),
    [
        (None, None, ("localhost:4317", False)),
        ("http://collector:4317", None, ("collector:4317", False)),
        ("https://collector:4317/", True, ("collector:4317", True)),
        ("collector:4317", None, ("collector:4317", True)),
        ("collector:4317", True, ("collector:4317", False)),
        ("unix:///tmp/otel.sock", None, ("unix:///tmp/otel.sock", False)),
        ("http://[::1]:4317", None, ("[::1]:4317", False)),
    ],
)
def test_grpc_target(endpoint: str | None, insecure: bool | None, expected: Any) -> None:
    assert grpc_target(endpoint, insecure) == expected
    assert DEFAULT_ENDPOINT == "http://localhost:4317"


def test_grpc_target_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="unsupported OTLP endpoint scheme 'ftp'"):
        grpc_target("ftp://x", None)


def test_reply_parsers() -> None:
    resp = trace_service_pb2.ExportTraceServiceResponse()
    resp.partial_success.rejected_spans = 3
    resp.partial_success.error_message = "nope"
    assert rejected_spans(resp.SerializeToString()) == (3, "nope")
    assert rejected_spans(b"") == (0, "")
    assert rejected_spans(b"\x0a\xff") == (0, "")  # truncated: ignored, not raised
    st = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED)
    st.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=2, nanos=5)))
    assert retry_delay([("grpc-status-details-bin", st.SerializeToString())]) == 2.000000005
    assert retry_delay([("other", b"x")]) is None
    assert retry_delay(None) is None


# -- against a real receiver --------------------------------------------------------------


def test_spans_reach_the_receiver_with_headers_and_gzip() -> None:
    async def main() -> None:
        rx = Receiver()
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        ex = SpanExporter(
            settings(port, headers={"X-Tenant": "acme"}, compression="gzip"), ENCODER, m
        )
        await ex.start()
        for i in range(1, 11):
            assert ex.offer(span(i))
        assert await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert sorted(int.from_bytes(s.span_id, "big") for s in rx.spans) == list(range(1, 11))
        (res,) = {r.resource_spans[0].resource.SerializeToString() for r in rx.requests}
        assert b"llmtap-test" in res
        assert rx.metadata[0]["x-tenant"] == "acme"
        assert rx.metadata[0]["user-agent"].startswith("llmtap/")
        assert ex.exported == 10 and ex.dropped == 0
        assert m.spans_exported_total == 10 and m.export_durations["ok"].count >= 1

    run(main())


def test_batches_respect_max_export_batch_size() -> None:
    async def main() -> None:
        rx = Receiver()
        server, port = await start_receiver(rx)
        ex = SpanExporter(
            settings(port, max_export_batch_size=10, schedule_delay_ms=60_000), ENCODER
        )
        await ex.start()
        for i in range(1, 26):
            ex.offer(span(i))
        # Two full batches go out without waiting for the (one minute) schedule delay.
        await wait_for(lambda: len(rx.requests) == 2, 5)
        assert ex.queued == 5
        assert await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert [len(r.resource_spans[0].scope_spans[0].spans) for r in rx.requests] == [10, 10, 5]

    run(main())


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ],
)
def test_retryable_status_is_retried(code: grpc.StatusCode) -> None:
    async def main() -> None:
        rx = Receiver()
        rx.failures = [(code, None), (code, None)]
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        ex = SpanExporter(settings(port), ENCODER, m, backoff_s=0.01)
        await ex.start()
        ex.offer(span(1))
        assert await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert rx.calls == 3 and len(rx.spans) == 1
        assert ex.dropped == 0 and m.spans_exported_total == 1

    run(main())


def test_retry_info_delay_is_honoured() -> None:
    async def main() -> None:
        rx = Receiver()
        st = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="slow down")
        st.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=Duration(nanos=300_000_000)))
        trailing = (("grpc-status-details-bin", st.SerializeToString()),)
        rx.failures = [(grpc.StatusCode.RESOURCE_EXHAUSTED, trailing)]
        server, port = await start_receiver(rx)
        ex = SpanExporter(settings(port), ENCODER, backoff_s=0.001)
        await ex.start()
        ex.offer(span(1))
        t0 = time.monotonic()
        assert await ex.force_flush(5)
        waited = time.monotonic() - t0
        await ex.shutdown(5)
        await server.stop(None)
        assert rx.calls == 2 and len(rx.spans) == 1
        assert waited >= 0.3  # the server's delay, not the 1 ms backoff

    run(main())


def test_non_retryable_status_drops_the_batch_at_once() -> None:
    async def main() -> None:
        rx = Receiver()
        rx.failures = [(grpc.StatusCode.INVALID_ARGUMENT, None)]
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        ex = SpanExporter(settings(port), ENCODER, m, backoff_s=0.01)
        await ex.start()
        ex.offer(span(1))
        ex.offer(span(2))
        await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert rx.calls == 1 and rx.spans == []
        assert m.spans_dropped_by_reason == {"export_failed": 2}
        assert m.export_durations["failed"].count == 1

    run(main())


def test_partial_success_counts_rejected_spans() -> None:
    async def main() -> None:
        rx = Receiver()
        rx.reject = 1
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        ex = SpanExporter(settings(port), ENCODER, m)
        await ex.start()
        for i in range(1, 4):
            ex.offer(span(i))
        await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert m.spans_exported_total == 2
        assert m.spans_dropped_by_reason == {"rejected": 1}

    run(main())


def test_collector_outage_bounded_queue_counted_drops_and_recovery() -> None:
    """Receiver down: the queue stays bounded (count and bytes), drops are counted, the
    loop stays responsive; receiver back on the same port: export resumes."""

    async def main() -> None:
        rx = Receiver()
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        cfg = settings(
            port,
            max_queue_size=50,
            max_export_batch_size=10,
            max_queue_bytes=40_000,
            timeout_ms=200,
            export_timeout_ms=500,
        )
        ex = SpanExporter(cfg, ENCODER, m, channel_options=FAST_RECONNECT, backoff_s=0.02)
        await ex.start()
        ex.offer(span(1))
        await ex.force_flush(5)
        assert len(rx.spans) == 1

        await server.stop(None)  # -- outage --
        t0 = time.monotonic()
        worst_tick = 0.0
        offered = 0
        while time.monotonic() - t0 < 2.0:
            for _ in range(20):
                offered += 1
                ex.offer(span(1000 + offered, pad=500))
            assert ex.queued <= 50 and ex.queued_bytes <= 40_000
            tick = time.monotonic()
            await asyncio.sleep(0.01)
            worst_tick = max(worst_tick, time.monotonic() - tick)
        dropped = m.spans_dropped_by_reason
        assert dropped.get("queue_full", 0) > 0
        assert dropped.get("export_failed", 0) > 0  # batches that ran out of time
        assert worst_tick < 0.5  # exporting never blocks the loop for long
        assert len(rx.spans) == 1

        # -- receiver back on the same port: what was queued goes out first --
        server, port2 = await start_receiver(rx, port)
        assert port2 == port
        await wait_for(lambda: any(int.from_bytes(s.span_id, "big") > 1000 for s in rx.spans))
        assert await ex.force_flush(5)
        assert ex.queued == 0
        for i in range(5):
            assert ex.offer(span(5000 + i))
        assert await ex.force_flush(5)
        got = {int.from_bytes(s.span_id, "big") for s in rx.spans}
        assert set(range(5000, 5005)) <= got
        await ex.shutdown(5)
        await server.stop(None)
        # Every span is accounted for: exported or dropped with a reason, none lost.
        total_dropped = sum(m.spans_dropped_by_reason.values())
        assert m.spans_exported_total + total_dropped == offered + 1 + 5

    run(main())


def test_shutdown_is_bounded_and_counts_leftovers() -> None:
    async def main() -> None:
        m = Metrics(prometheus=False)
        # Nothing listens here: every attempt fails, retries would go on for 30 s.
        cfg = settings(1, export_timeout_ms=30_000, timeout_ms=200)
        ex = SpanExporter(cfg, ENCODER, m, channel_options=FAST_RECONNECT, backoff_s=0.05)
        await ex.start()
        for i in range(1, 21):
            ex.offer(span(i))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await ex.shutdown(1.0)
        assert time.monotonic() - t0 < 3.0
        assert sum(m.spans_dropped_by_reason.values()) == 20
        assert not ex.offer(span(99))  # closed
        assert m.spans_dropped_by_reason["shutdown"] >= 1

    run(main())


def test_oversized_span_is_dropped_not_sent() -> None:
    async def main() -> None:
        rx = Receiver()
        server, port = await start_receiver(rx)
        m = Metrics(prometheus=False)
        ex = SpanExporter(settings(port), ENCODER, m)
        await ex.start()
        ex.offer(span(1, pad=5 * 1024 * 1024))
        ex.offer(span(2))
        await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert [int.from_bytes(s.span_id, "big") for s in rx.spans] == [2]
        assert m.spans_dropped_by_reason == {"too_large": 1}

    run(main())


def _tls_material(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(name: str, key: Any, issuer: Any, issuer_key: Any, ca: bool, san: bool) -> Any:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        return b.sign(issuer_key, hashes.SHA256())

    def pem_key(k: Any) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = cert("test-ca", ca_key, ca_name, ca_key, True, False)
    out = {}
    for who in ("server", "client"):
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(who, k, ca_name, ca_key, False, who == "server")
        out[f"{who}.key"] = tmp / f"{who}.key"
        out[f"{who}.key"].write_bytes(pem_key(k))
        out[f"{who}.crt"] = tmp / f"{who}.crt"
        out[f"{who}.crt"].write_bytes(c.public_bytes(serialization.Encoding.PEM))
    out["ca.crt"] = tmp / "ca.crt"
    out["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return out


def test_mutual_tls_with_certificate_envs(tmp_path: Path) -> None:
    pem = _tls_material(tmp_path)

    async def main() -> None:
        rx = Receiver()
        creds = grpc.ssl_server_credentials(
            [(pem["server.key"].read_bytes(), pem["server.crt"].read_bytes())],
            root_certificates=pem["ca.crt"].read_bytes(),
            require_client_auth=True,
        )
        server, port = await start_receiver(rx, creds=creds)
        cfg = settings(
            port,
            endpoint=f"https://localhost:{port}",
            certificate=str(pem["ca.crt"]),
            client_key=str(pem["client.key"]),
            client_certificate=str(pem["client.crt"]),
        )
        ex = SpanExporter(cfg, ENCODER)
        assert ex.secure
        await ex.start()
        ex.offer(span(7))
        assert await ex.force_flush(5)
        await ex.shutdown(5)
        await server.stop(None)
        assert [int.from_bytes(s.span_id, "big") for s in rx.spans] == [7]

    run(main())


def test_memory_and_noop_exporters() -> None:
    m = Metrics(prometheus=False)
    mem = InMemorySpanExporter(ENCODER, m)
    assert mem.offer(span(3))
    (s,) = mem.spans()
    assert s.name == "chat m3"
    mem.clear()
    assert mem.spans() == []
    noop = NoopSpanExporter()
    assert not noop.offer(span(1))
    run(noop.shutdown())
