"""An OTLP/gRPC receiver that only counts: spans per (service.name, request model).

Each configuration exports under its own ``service.name`` and each scenario sends its
own request model (``bench-<scenario>``), so one receiver attributes every span to its
cell. The demo's receiver (``gateway/demo/receiver.py``) turns every span into a Python
object; at thousands of spans a second that would take a core from the machine the
bench measures, so this one decodes the request and counts.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_TRACE = "opentelemetry.proto.collector.trace.v1.TraceService"
_METRICS = "opentelemetry.proto.collector.metrics.v1.MetricsService"
_LOGS = "opentelemetry.proto.collector.logs.v1.LogsService"
_MODEL = "gen_ai.request.model"


class Collector:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.spans: Counter[tuple[str, str]] = Counter()
        self.exports = 0
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Collector:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="collector"),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        trace_resp = trace_service_pb2.ExportTraceServiceResponse
        handlers = [
            grpc.method_handlers_generic_handler(
                _TRACE,
                {
                    "Export": grpc.unary_unary_rpc_method_handler(
                        self._traces,
                        request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
                        response_serializer=trace_resp.SerializeToString,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                _METRICS,
                {
                    "Export": grpc.unary_unary_rpc_method_handler(
                        lambda req, ctx: metrics_service_pb2.ExportMetricsServiceResponse(),
                        response_serializer=(
                            metrics_service_pb2.ExportMetricsServiceResponse.SerializeToString
                        ),
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                _LOGS,
                {
                    "Export": grpc.unary_unary_rpc_method_handler(
                        lambda req, ctx: logs_service_pb2.ExportLogsServiceResponse(),
                        response_serializer=(
                            logs_service_pb2.ExportLogsServiceResponse.SerializeToString
                        ),
                    )
                },
            ),
        ]
        server.add_generic_rpc_handlers(handlers)
        self.port = server.add_insecure_port(f"{self.host}:0")
        server.start()
        self._server = server
        return self

    def _traces(self, request: Any, context: Any) -> Any:
        counts: Counter[tuple[str, str]] = Counter()
        for rs in request.resource_spans:
            service = ""
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    service = kv.value.string_value
            for ss in rs.scope_spans:
                for span in ss.spans:
                    model = ""
                    for kv in span.attributes:
                        if kv.key == _MODEL:
                            model = kv.value.string_value
                            break
                    counts[(service, model)] += 1
        with self._lock:
            self.spans.update(counts)
            self.exports += 1
        return trace_service_pb2.ExportTraceServiceResponse()

    def count(self, service: str, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return sum(n for (s, _), n in self.spans.items() if s == service)
            return self.spans.get((service, model), 0)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(1).wait(3)
            self._server = None
