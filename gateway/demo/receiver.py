"""A local OTLP/gRPC receiver: keeps the spans it is sent, for the demo and the e2e tests.

It implements the OTLP trace, metrics and logs services (the latter two only count what
arrives, so an exporter pointed here never sees UNIMPLEMENTED) on a loopback port, and
turns each exported span into a plain ``Span`` value. ``wait_for`` blocks until the spans
received so far satisfy a condition, which is how tests wait for asynchronous export.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_KINDS = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "INTERNAL",
    trace_pb2.Span.SPAN_KIND_SERVER: "SERVER",
    trace_pb2.Span.SPAN_KIND_CLIENT: "CLIENT",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "PRODUCER",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUS = {
    trace_pb2.Status.STATUS_CODE_UNSET: "UNSET",
    trace_pb2.Status.STATUS_CODE_OK: "OK",
    trace_pb2.Status.STATUS_CODE_ERROR: "ERROR",
}


def any_value(v: common_pb2.AnyValue) -> Any:
    """An OTLP ``AnyValue`` as the Python value it carries."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    return getattr(v, kind)


def attributes(kvs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass(frozen=True)
class Event:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Span:
    """One received span; ids are lowercase hex, ``parent_span_id`` is "" for a root."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: str
    status_message: str
    events: tuple[Event, ...] = ()
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    received_at: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    def get(self, *keys: str) -> Any:
        """The first of ``keys`` present in the attributes, else None."""
        for k in keys:
            if k in self.attributes:
                return self.attributes[k]
        return None

    @classmethod
    def from_proto(
        cls, s: trace_pb2.Span, resource: dict[str, Any], scope: str, now: float
    ) -> Span:
        return cls(
            trace_id=s.trace_id.hex(),
            span_id=s.span_id.hex(),
            parent_span_id=s.parent_span_id.hex(),
            name=s.name,
            kind=_KINDS.get(s.kind, str(s.kind)),
            start_ns=s.start_time_unix_nano,
            end_ns=s.end_time_unix_nano,
            attributes=attributes(s.attributes),
            status=_STATUS.get(s.status.code, str(s.status.code)),
            status_message=s.status.message,
            events=tuple(
                Event(e.name, e.time_unix_nano, attributes(e.attributes)) for e in s.events
            ),
            resource=resource,
            scope=scope,
            received_at=now,
        )


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Receiver) -> None:
        self.sink = sink

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        now = time.time()
        spans = [
            Span.from_proto(s, attributes(rs.resource.attributes), ss.scope.name, now)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        self.sink._add(spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: Receiver) -> None:
        self.sink = sink

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        names = [
            m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        ]
        with self.sink._cond:
            self.sink.metric_names.update(names)
            self.sink.metric_exports += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: Receiver) -> None:
        self.sink = sink

    def Export(
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
    ) -> logs_service_pb2.ExportLogsServiceResponse:
        n = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
        with self.sink._cond:
            self.sink.log_records += n
        return logs_service_pb2.ExportLogsServiceResponse()


class Receiver:
    """OTLP/gRPC on ``host:port`` (0 = any free port); ``endpoint`` once started."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        on_spans: Callable[[list[Span]], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.on_spans = on_spans
        self.spans: list[Span] = []
        self.metric_names: set[str] = set()
        self.metric_exports = 0
        self.log_records = 0
        self._cond = threading.Condition()
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Receiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), server)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        if not self.port:
            raise OSError(f"OTLP receiver could not bind {self.host}")
        server.start()
        self._server = server
        return self

    def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait(grace + 1)
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _add(self, spans: list[Span]) -> None:
        with self._cond:
            self.spans.extend(spans)
            self._cond.notify_all()
        if self.on_spans is not None and spans:
            self.on_spans(spans)

    def snapshot(self) -> list[Span]:
        with self._cond:
            return list(self.spans)

    def clear(self) -> None:
        with self._cond:
            self.spans.clear()

    def wait_for(
        self, condition: Callable[[list[Span]], Any], timeout: float = 10.0, what: str = ""
    ) -> Any:
        """Block until ``condition(spans)`` is truthy and return its value.

        Raises ``TimeoutError`` naming ``what`` and listing the spans that did arrive.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition(list(self.spans))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(
                        f"  {s.name!r} trace={s.trace_id} parent={s.parent_span_id or '-'}"
                        for s in self.spans[-20:]
                    )
                    raise TimeoutError(
                        f"no {what or 'matching spans'} after {timeout:.1f}s; "
                        f"{len(self.spans)} span(s) received, the last ones:\n{seen}"
                    )
                self._cond.wait(min(left, 0.5))

    def spans_in(self, trace_id: str) -> list[Span]:
        with self._cond:
            return [s for s in self.spans if s.trace_id == trace_id]
