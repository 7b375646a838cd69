"""Batching OTLP/gRPC span export on the servicer's own event loop.

The data path only calls :meth:`SpanExporter.offer` with already-encoded span bytes: an
O(1) append to a bounded queue (count and bytes), or a counted drop when it is full.
A single task on the same loop (grpc.aio, so no thread and no lock) wakes when a batch
is full or the schedule delay passed, joins up to ``max_export_batch_size`` spans behind
the precomputed resource/scope bytes and sends them with a raw unary call to
``/opentelemetry.proto.collector.trace.v1.TraceService/Export`` (identity
serialisation: the bytes are already an ``ExportTraceServiceRequest``).

Failures never reach the data path. Retryable statuses (UNAVAILABLE,
RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and the other transient codes of the OTLP spec)
are retried with exponential backoff and jitter, honouring a server's ``RetryInfo``,
until ``export_timeout`` runs out; then the batch is dropped and counted. While a
collector is down the queue stays bounded and newer spans are dropped (counted as
``queue_full``); when it comes back, export resumes from what is queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import grpc
import grpc.aio

from .._version import __version__
from .config import ExportSettings

__all__ = [
    "DEFAULT_ENDPOINT",
    "EXPORT_METHOD",
    "InMemorySpanExporter",
    "NoopSpanExporter",
    "SpanExporter",
    "grpc_target",
]

log = logging.getLogger("llmtap.export")

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
DEFAULT_ENDPOINT = "http://localhost:4317"
#: Room for the resource/scope prefix under gRPC's default 4 MiB receive limit.
MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024

_RETRYABLE = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class Encoder(Protocol):
    def request(self, spans: Sequence[bytes]) -> bytes: ...


class MetricsSink(Protocol):
    def spans_exported(self, n: int) -> None: ...
    def spans_dropped(self, n: int, reason: str) -> None: ...
    def export_duration(self, seconds: float, outcome: str) -> None: ...


def grpc_target(endpoint: str | None, insecure: bool | None) -> tuple[str, bool]:
    """``(target, secure)`` for an OTLP/gRPC endpoint, per the exporter spec:
    ``http://`` is plaintext, ``https://`` is TLS, and without a scheme
    ``insecure`` decides (unset means TLS). ``unix:`` paths are plaintext."""
    ep = (endpoint or DEFAULT_ENDPOINT).strip()
    if ep.startswith("unix:"):
        return ep, False
    if "://" in ep:
        parts = urlsplit(ep)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported OTLP endpoint scheme {scheme!r} in {ep!r}")
        return parts.netloc, scheme == "https"
    return ep.rstrip("/"), not insecure


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


# -- tiny protobuf reader for the two replies we look into ------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field, wire type, value)`` of a message; length-delimited values as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        v: Any
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def rejected_spans(response: bytes) -> tuple[int, str]:
    """``ExportTraceServiceResponse.partial_success``: (rejected spans, message)."""
    rejected, message = 0, ""
    with suppress(ValueError, IndexError):
        for num, wt, v in _fields(response):
            if num == 1 and wt == 2:
                for n2, w2, v2 in _fields(v):
                    if n2 == 1 and w2 == 0:
                        rejected = v2
                    elif n2 == 2 and w2 == 2:
                        message = bytes(v2).decode("utf-8", "replace")
    return rejected, message


def retry_delay(trailing: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in a status' ``grpc-status-details-bin``."""
    for key, value in trailing or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        with suppress(ValueError, IndexError):
            for num, wt, any_ in _fields(value):  # google.rpc.Status.details (Any)
                if num != 3 or wt != 2:
                    continue
                parts = {n: v for n, w, v in _fields(any_) if w == 2}
                if not bytes(parts.get(1, b"")).endswith(b"google.rpc.RetryInfo"):
                    continue
                for n2, w2, dur in _fields(parts.get(2, b"")):
                    if n2 == 1 and w2 == 2:
                        d = {n: v for n, w, v in _fields(dur) if w == 0}
                        return d.get(1, 0) + d.get(2, 0) / 1e9
    return None


# -- exporters --------------------------------------------------------------------------


class _Queue:
    """The bounded queue and drop accounting shared by the exporters."""

    def __init__(self, max_spans: int, max_bytes: int, metrics: MetricsSink | None) -> None:
        self._q: deque[bytes] = deque()
        self._bytes = 0
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.dropped = 0
        self.exported = 0

    @property
    def queued(self) -> int:
        return len(self._q)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _drop(self, n: int, reason: str) -> None:
        self.dropped += n
        if self.metrics is not None:
            self.metrics.spans_dropped(n, reason)

    def offer(self, span: bytes) -> bool:
        """Queue one encoded span (``OtlpEncoder.span`` output); False if dropped."""
        if len(self._q) >= self.max_spans or self._bytes + len(span) > self.max_bytes:
            self._drop(1, "queue_full")
            return False
        self._q.append(span)
        self._bytes += len(span)
        return True


class SpanExporter(_Queue):
    """Batching OTLP/gRPC exporter; see the module docstring."""

    def __init__(
        self,
        settings: ExportSettings,
        encoder: Encoder,
        metrics: MetricsSink | None = None,
        *,
        channel_options: Sequence[tuple[str, Any]] = (),
        backoff_s: float = 1.0,
        max_backoff_s: float = 32.0,
    ) -> None:
        super().__init__(settings.max_queue_size, settings.max_queue_bytes, metrics)
        self.settings = settings
        self.encoder = encoder
        self.target, self.secure = grpc_target(
            settings.traces_endpoint or settings.endpoint, settings.insecure
        )
        self._metadata = tuple((k.lower(), v) for k, v in settings.headers.items())
        self._batch = settings.max_export_batch_size
        self._delay = settings.schedule_delay_ms / 1000
        self._call_timeout = settings.timeout_ms / 1000
        self._export_timeout = settings.export_timeout_ms / 1000
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._options = [
            ("grpc.primary_user_agent", f"llmtap/{__version__}"),
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.min_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5000),
            *channel_options,
        ]
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._sending = 0
        self._flushes = 0
        self._last_warning = 0.0
        self._failures_since_warning = 0

    def offer(self, span: bytes) -> bool:
        if self._closing:
            self._drop(1, "shutdown")
            return False
        if not super().offer(span):
            return False
        if len(self._q) >= self._batch and self._wake is not None:
            self._wake.set()
        return True

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the channel and start the export task (call on the serving loop)."""
        if self._task is not None:
            return
        s = self.settings
        compression = grpc.Compression.Gzip if s.compression == "gzip" else None
        if self.secure:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(s.certificate),
                private_key=_read(s.client_key),
                certificate_chain=_read(s.client_certificate),
            )
            self._channel = grpc.aio.secure_channel(
                self.target, creds, options=self._options, compression=compression
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                self.target, options=self._options, compression=compression
            )
        self._call = self._channel.unary_unary(EXPORT_METHOD)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="llmtap-export")

    async def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Export everything queued now; True if the queue drained within the timeout."""
        if self._task is None or self._wake is None:
            return not self._q
        self._flushes += 1
        try:
            self._wake.set()
            deadline = time.monotonic() + timeout_s
            while (self._q or self._sending) and time.monotonic() < deadline:
                if self._task.done():
                    break
                await asyncio.sleep(0.005)
            return not self._q and not self._sending
        finally:
            self._flushes -= 1

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued within ``timeout_s``, then stop; leftovers are dropped
        (counted as ``shutdown``) and the channel is closed."""
        if self._closing:
            return
        self._closing = True
        if self._task is not None and self._wake is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await self._task
            except Exception:
                log.exception("span export task failed")
        if self._q:
            self._drop(len(self._q), "shutdown")
            self._q.clear()
            self._bytes = 0
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    # -- the export task ------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._q and self._closing:
                return
            urgent = self._closing or self._flushes
            if not self._q or (len(self._q) < self._batch and not urgent):
                # Sleep until a batch fills up, a flush/shutdown asks, or the delay ends.
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._delay)
            if self._q:
                batch = self._take()
                self._sending += 1
                try:
                    await self._send(batch)
                finally:
                    self._sending -= 1

    def _take(self) -> list[bytes]:
        q = self._q
        batch: list[bytes] = []
        size = 0
        while q and len(batch) < self._batch:
            n = len(q[0])
            if batch and size + n > MAX_REQUEST_BYTES:
                break
            span = q.popleft()
            self._bytes -= n
            if n > MAX_REQUEST_BYTES:
                self._drop(1, "too_large")
                continue
            batch.append(span)
            size += n
        return batch

    async def _send(self, batch: list[bytes]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        request = self.encoder.request(batch)
        start = loop.time()
        try:
            reply, error = await self._deliver(request, start + self._export_timeout)
        except asyncio.CancelledError:
            self._drop(len(batch), "shutdown")
            raise
        outcome = "ok"
        if error is not None:
            outcome = "failed"
            self._failed(len(batch), error)
        else:
            rejected, message = rejected_spans(reply or b"")
            accepted = max(0, len(batch) - rejected)
            self.exported += accepted
            if self.metrics is not None:
                self.metrics.spans_exported(accepted)
            if rejected:
                outcome = "partial"
                self._drop(rejected, "rejected")
                self._warn(f"receiver rejected {rejected} spans: {message}")
        if self.metrics is not None:
            self.metrics.export_duration(loop.time() - start, outcome)

    async def _deliver(self, request: bytes, deadline: float) -> tuple[bytes | None, str | None]:
        """Send with retries until ``deadline``: ``(reply, None)`` or ``(None, error)``."""
        loop = asyncio.get_running_loop()
        backoff = self._backoff
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None, "export timeout"
            try:
                reply = await self._call(
                    request, timeout=min(self._call_timeout, remaining), metadata=self._metadata
                )
                return reply, None
            except grpc.aio.AioRpcError as e:
                code = e.code()
                error = f"{code.name}: {e.details()}"
                if code not in _RETRYABLE:
                    return None, error
                delay = retry_delay(e.trailing_metadata())
                if delay is None:
                    delay = backoff * random.uniform(0.5, 1.0)
                    backoff = min(backoff * 2, self._max_backoff)
                if self._closing:
                    delay = min(delay, 0.1)  # shutting down: quick retries, no long backoff
                if loop.time() + delay >= deadline:
                    return None, error
            except Exception as e:  # never let an export bug kill the task
                return None, repr(e)
            await asyncio.sleep(delay)

    def _failed(self, n: int, why: str) -> None:
        self._drop(n, "export_failed")
        self._warn(f"dropped {n} spans after export to {self.target} failed: {why}")

    def _warn(self, message: str) -> None:
        # A down collector would otherwise log once per batch.
        now = time.monotonic()
        self._failures_since_warning += 1
        if now - self._last_warning >= 30.0:
            more = self._failures_since_warning - 1
            log.warning("%s%s", message, f" (+{more} similar)" if more else "")
            self._last_warning = now
            self._failures_since_warning = 0


class InMemorySpanExporter(_Queue):
    """Keeps encoded spans in memory (``export.traces_exporter: memory``): tests and
    ``llmtap inspect`` read them back as protobuf ``Span`` objects."""

    def __init__(self, encoder: Encoder, metrics: MetricsSink | None = None) -> None:
        super().__init__(1 << 30, 1 << 62, metrics)
        self.encoder = encoder

    async def start(self) -> None:
        return None

    async def force_flush(self, timeout_s: float = 0.0) -> bool:
        return True

    async def shutdown(self, timeout_s: float = 0.0) -> None:
        return None

    def request(self) -> bytes:
        """Everything offered so far as one ``ExportTraceServiceRequest``."""
        return self.encoder.request(list(self._q))

    def spans(self) -> list[Any]:
        """The offered spans decoded with the official protobuf classes."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        req = ExportTraceServiceRequest.FromString(self.request())
        return [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def clear(self) -> None:
        self._q.clear()
        self._bytes = 0


class NoopSpanExporter(_Queue):
    """``export.traces_exporter: none``: spans are not kept anywhere."""

    def __init__(self) -> None:
        super().__init__(0, 0, None)

    def offer(self, span: bytes) -> bool:
        return False

    async def start(self) -> None:
        return None

    async def force_flush(self, timeout_s: float = 0.0) -> bool:
        return True

    async def shutdown(self, timeout_s: float = 0.0) -> None:
        return None
