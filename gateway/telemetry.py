"""The telemetry facade the ext_proc servicer calls: one ``begin`` and one ``end`` per
exchange, plus a few counters.

``begin`` (request headers) reads the caller's trace context, makes the head-sampling
decision and returns the ``traceparent``/``tracestate`` to inject upstream. ``end``
(response done) always records the GenAI metrics; it builds a span only when the
exchange was sampled, or is kept anyway (``keep_errors``/``keep_slow_ms``). An
unsampled exchange costs no span, no attribute dict and no encoding.

Where the parent comes from (``tracing.context_source``, default ``auto``): Envoy puts
its own span's context in the ext_proc call's gRPC metadata when Envoy tracing is on.
That span is itself a descendant of the caller's context (the HTTP request headers), so
``auto`` prefers it: the LLM span then hangs under Envoy's span in one tree, and Envoy's
sampling decision is followed. If the metadata carries nothing (Envoy tracing off), the
HTTP headers are used. If both are present but name different traces (Envoy started a
new trace instead of joining the caller's), the caller's context is added as a link.

All ``*_ns`` arguments are wall-clock ``time.time_ns()`` values.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from .config import Settings
from .content import CaptureMode, content_attributes
from .export import InMemorySpanExporter, NoopSpanExporter, SpanExporter, grpc_target
from .metrics import Metrics
from .sampling import head_sample, sampler_from_config
from .spans import (
    FLAG_CONTEXT_HAS_IS_REMOTE,
    FLAG_CONTEXT_IS_REMOTE,
    KIND_CLIENT,
    STATUS_ERROR,
    Event,
    Link,
    OtlpEncoder,
    SpanData,
    status_code_of,
)
from .tracecontext import (
    FLAG_RANDOM,
    FLAG_SAMPLED,
    SpanContext,
    extract,
    format_b3,
    format_b3_multi,
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_baggage,
)

__all__ = ["KEPT_REASON", "Decision", "Telemetry"]

log = logging.getLogger("llmtap.telemetry")

#: Span attribute on spans exported although the head sampler said no.
KEPT_REASON = "llmtap.sampling.kept_reason"
CONTENT_EVENT = "gen_ai.client.inference.operation.details"
ATTR_TTFC = "gen_ai.response.time_to_first_chunk"
ATTR_HTTP_STATUS = "http.response.status_code"

_REMOTE_PARENT = FLAG_CONTEXT_HAS_IS_REMOTE | FLAG_CONTEXT_IS_REMOTE


class Decision:
    """The head decision for one exchange, from :meth:`Telemetry.begin`."""

    __slots__ = (
        "baggage_header",
        "inject_headers",
        "links",
        "parent_span_id",
        "sampled",
        "span_flags",
        "span_id",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        sampled: bool,
        inject_headers: list[tuple[str, str]],
        trace_id: bytes = b"",
        span_id: bytes = b"",
        parent_span_id: bytes = b"",
        trace_state: str = "",
        span_flags: int = 0,
        links: tuple[Link, ...] = (),
        baggage_header: str | None = None,
    ) -> None:
        #: Record and export the span (head sampler's verdict).
        self.sampled = sampled
        #: Headers to set on the upstream request (normal mode): ``traceparent``
        #: (+ ``tracestate`` with ``ot=th:``) and any other configured propagator.
        self.inject_headers = inject_headers
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.trace_state = trace_state
        #: OTLP ``Span.flags``: W3C trace flags plus the parent-is-remote bits.
        self.span_flags = span_flags
        self.links = links
        self.baggage_header = baggage_header

    @property
    def baggage(self) -> dict[str, str]:
        """The caller's W3C baggage (parsed on demand)."""
        return parse_baggage(self.baggage_header)

    @property
    def traceparent(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, self.span_flags)

    def __repr__(self) -> str:
        return f"Decision(sampled={self.sampled}, traceparent={self.traceparent!r})"


def _resource(settings: Settings) -> dict[str, Any]:
    res = settings.resource
    attrs: dict[str, Any] = {
        "telemetry.sdk.name": "llmtap",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
        "service.instance.id": str(uuid.uuid4()),
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
    }
    attrs.update(res.attributes)
    # OTEL_SERVICE_NAME beats service.name in OTEL_RESOURCE_ATTRIBUTES; the built-in
    # default does not.
    if res.service_name != "llmtap" or "service.name" not in res.attributes:
        attrs["service.name"] = res.service_name
    return attrs


class Telemetry:
    """Tracing, sampling, export and metrics for one llmtap process.

    ``worker_index`` offsets the Prometheus port so several workers can each serve
    their own ``/metrics``. ``exporter``/``metric_exporter`` replace the configured
    ones (tests); ``channel_options`` are added to the OTLP/gRPC channel.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        worker_index: int = 0,
        exporter: Any = None,
        metric_exporter: Any = None,
        channel_options: Any = (),
    ) -> None:
        self.settings = s = settings or Settings()
        tr = s.tracing
        self.resource = _resource(s)
        self.worker_index = worker_index
        self._tracing = tr.enabled and s.export.traces_exporter != "none"
        self._sampler = sampler_from_config(tr.sampler, tr.sampler_arg)
        self._source = tr.context_source
        self._link_mode = tr.parent == "link"
        self._latest = tr.semconv_latest
        self._keep_errors = tr.keep_errors
        self._keep_slow_ns = None if tr.keep_slow_ms is None else int(tr.keep_slow_ms * 1e6)
        self._capture = CaptureMode[tr.capture_content]
        self._content_max = tr.content_max_bytes
        props = set(tr.propagators)
        inject = s.server.mode == "normal" and "none" not in props
        self._inject_w3c = inject and "tracecontext" in props
        self._inject_b3 = inject and "b3" in props
        self._inject_b3multi = inject and "b3multi" in props
        self.encoder = OtlpEncoder(
            self.resource,
            "llmtap",
            __version__,
            max_value_len=tr.attribute_value_length_limit,
            max_attributes=tr.attribute_count_limit,
        )
        m = s.metrics
        self._metric_exporter = metric_exporter
        self.metrics = Metrics(
            prometheus=m.prometheus,
            resource=self.resource,
            export_interval_s=m.export_interval_ms / 1000,
            max_series=m.max_series,
        )
        if exporter is not None:
            self.exporter = exporter
        elif not self._tracing:
            self.exporter = NoopSpanExporter()
        elif s.export.traces_exporter == "memory":
            self.exporter = InMemorySpanExporter(self.encoder, self.metrics)
        else:
            self.exporter = SpanExporter(
                s.export, self.encoder, self.metrics, channel_options=channel_options
            )
        self.prometheus_port: int | None = None

    # -- per exchange ---------------------------------------------------------------------

    def begin(
        self, request_headers: Mapping[str, str], grpc_metadata: Mapping[str, str], start_ns: int
    ) -> Decision:
        """Head decision at request headers: parent context, sampling, headers to inject."""
        if not self._tracing:
            return Decision(False, [])
        parent: SpanContext | None = None
        links: tuple[Link, ...] = ()
        src = self._source
        if src != "headers" and grpc_metadata:
            parent = extract(grpc_metadata)
        if src != "grpc":
            from_headers = extract(request_headers) if request_headers else None
            if parent is None:
                parent = from_headers
            elif from_headers is not None and from_headers.trace_id != parent.trace_id:
                links = (_link(from_headers),)
        if parent is not None and self._link_mode:
            links = (_link(parent), *links)
            parent = None
        if parent is None:
            trace_id = new_trace_id()
            parent_span_id = b""
            trace_state = ""
            flags = FLAG_RANDOM
            remote = FLAG_CONTEXT_HAS_IS_REMOTE
        else:
            trace_id = parent.trace_id
            parent_span_id = parent.span_id
            trace_state = parent.trace_state
            flags = parent.flags & FLAG_RANDOM
            remote = _REMOTE_PARENT
        span_id = new_span_id()
        sampled, trace_state = head_sample(self._sampler, trace_id, parent, trace_state)
        if sampled:
            flags |= FLAG_SAMPLED
        inject: list[tuple[str, str]] = []
        if self._inject_w3c:
            inject.append(("traceparent", format_traceparent(trace_id, span_id, flags)))
            if trace_state:
                inject.append(("tracestate", trace_state))
        if self._inject_b3:
            inject.append(("b3", format_b3(trace_id, span_id, flags)))
        if self._inject_b3multi:
            inject.extend(format_b3_multi(trace_id, span_id, flags))
        return Decision(
            sampled,
            inject,
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags | remote,
            links,
            request_headers.get("baggage") if request_headers else None,
        )

    def end(
        self,
        d: Decision | None,
        record: Any,
        start_ns: int,
        end_ns: int,
        first_chunk_ns: int | None,
        http_status: int | None,
    ) -> None:
        """Record the call's metrics; emit its span if sampled or kept."""
        error_type = record.error_type
        ttfc = None
        if first_chunk_ns is not None and first_chunk_ns >= start_ns:
            ttfc = (first_chunk_ns - start_ns) / 1e9
        stream = getattr(record, "stream", None)
        tpoc = None
        if stream and first_chunk_ns is not None and ttfc is not None:
            # One sample per call: the mean gap between output chunks after the first
            # (the servicer sees chunk times; ext counts chunks as ``output_chunks``).
            chunks = getattr(record, "output_chunks", None)
            if chunks is not None and chunks > 1 and end_ns > first_chunk_ns:
                tpoc = (end_ns - first_chunk_ns) / (chunks - 1) / 1e9
        self.metrics.record_call(
            (
                record.operation,
                record.provider,
                record.request_model,
                record.response_model,
                getattr(record, "server_address", None),
                error_type,
            ),
            (end_ns - start_ns) / 1e9,
            ttfc if stream else None,
            tpoc,
            record.input_tokens,
            record.output_tokens,
        )
        if d is None or not d.trace_id:
            return
        kept = None
        if not d.sampled:
            if self._keep_errors and (
                error_type is not None or (http_status is not None and http_status >= 400)
            ):
                kept = "error"
            elif self._keep_slow_ns is not None and end_ns - start_ns >= self._keep_slow_ns:
                kept = "slow"
            else:
                return
        attrs = record.attributes(self._latest)
        if ttfc is not None:
            attrs[ATTR_TTFC] = ttfc
        if http_status is not None:
            attrs[ATTR_HTTP_STATUS] = http_status
        if kept is not None:
            attrs[KEPT_REASON] = kept
        code, description = record.status
        code = status_code_of(code)
        if error_type is not None:
            code = STATUS_ERROR
            attrs.setdefault("error.type", error_type)
        events: tuple[Event, ...] = ()
        if self._capture is not CaptureMode.NO_CONTENT:
            content = getattr(record, "content", None)
            if content:
                captured = content_attributes(content, self._content_max)
                if captured and self._capture.on_span:
                    attrs.update(captured)
                if captured and self._capture.on_event:
                    events = (Event(end_ns, CONTENT_EVENT, captured),)
        self.exporter.offer(
            self.encoder.span(
                SpanData(
                    d.trace_id,
                    d.span_id,
                    d.parent_span_id,
                    d.trace_state,
                    d.span_flags,
                    record.span_name,
                    KIND_CLIENT,
                    start_ns,
                    end_ns,
                    attrs,
                    code,
                    (description or "") if code == STATUS_ERROR else "",
                    events,
                    d.links,
                )
            )
        )

    def exchange_started(self) -> None:
        self.metrics.exchange_started()

    def exchange_finished(self, outcome: str) -> None:
        self.metrics.exchange_finished(outcome)

    def parse_error(self, kind: str) -> None:
        self.metrics.parse_error(kind)

    @property
    def streams_active(self) -> int:
        """Exchanges between ``exchange_started`` and ``exchange_finished``."""
        return self.metrics.streams_active

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start export (on the serving loop), the OTLP metric push and ``/metrics``."""
        await self.exporter.start()
        m = self.settings.metrics
        exporter = self._metric_exporter
        endpoint = m.otlp_endpoint or self.settings.export.endpoint
        if exporter is None and m.otlp and endpoint:
            exporter = self._otlp_metric_exporter(endpoint)
        if exporter is not None:
            self.metrics.start(exporter)
        if m.prometheus:
            port = m.prometheus_port + self.worker_index if m.prometheus_port else 0
            self.prometheus_port = self.metrics.serve_prometheus(m.prometheus_host, port)
            log.info("serving Prometheus metrics on %s:%d", m.prometheus_host, port)

    def _otlp_metric_exporter(self, endpoint: str) -> Any:
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        e = self.settings.export
        target, secure = grpc_target(endpoint, e.insecure)

        def read(p: str | None) -> bytes | None:
            return Path(p).read_bytes() if p else None

        creds = None
        if secure:
            creds = grpc.ssl_channel_credentials(
                read(e.certificate), read(e.client_key), read(e.client_certificate)
            )
        return OTLPMetricExporter(
            endpoint=target,
            insecure=not secure,
            credentials=creds,
            headers=dict(e.headers),
            timeout=e.timeout_ms / 1000,
            compression=grpc.Compression.Gzip if e.compression == "gzip" else None,
        )

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Flush spans (bounded by ``timeout_s``), push metrics a last time, stop."""
        try:
            await self.exporter.shutdown(timeout_s)
        finally:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(
                loop.run_in_executor(None, self.metrics.shutdown, timeout_s / 2), timeout_s
            )

    async def force_flush(self, timeout_s: float = 10.0) -> bool:
        return bool(await self.exporter.force_flush(timeout_s))

    def spans_for_test(self) -> list[Any]:
        """Spans offered so far, decoded with the official protobuf classes
        (``export.traces_exporter: memory`` only)."""
        if not isinstance(self.exporter, InMemorySpanExporter):
            raise RuntimeError("spans_for_test needs export.traces_exporter = memory")
        return self.exporter.spans()


def _link(ctx: SpanContext) -> Link:
    return Link(ctx.trace_id, ctx.span_id, ctx.trace_state, ctx.flags | _REMOTE_PARENT, {})
