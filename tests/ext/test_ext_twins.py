"""The compiled ext twins (``_exchange``, ``_scan``, ``_record``) against the pure ones.

The pure modules are the reference: every recorded exchange, and random exchanges
(hypothesis: bodies, splits, statuses, cuts, request sizes), must give field-for-field
the same record, content included; Scan and CallRecord agree on random inputs.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded import Exchange

import llmtap.ext as ext
from llmtap.core import _env
from llmtap.ext import EnvoyTokenUsage, ExtConfig, RequestInfo

pytestmark = pytest.mark.skipif(
    _env.NO_EXTENSIONS, reason="LLMTAP_NO_EXTENSIONS is set: no compiled twin to compare"
)

record_mod = importlib.import_module("llmtap.ext.record")
scan_mod = importlib.import_module("llmtap.ext.scan")
exchange_mod = importlib.import_module("llmtap.ext.exchange")
recognise_mod = importlib.import_module("llmtap.ext.recognise")
if not _env.NO_EXTENSIONS:
    C_RECORD = importlib.import_module("llmtap.ext._record")
    C_SCAN = importlib.import_module("llmtap.ext._scan")
    C_EXCHANGE = importlib.import_module("llmtap.ext._exchange")

FIELDS = tuple(f.name for f in dataclasses.fields(record_mod.CallRecordPy))
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_compiled_twins_serve() -> None:
    for mod in (C_RECORD, C_SCAN, C_EXCHANGE):
        assert mod.__file__ is not None and mod.__file__.endswith(".so"), mod.__file__
    assert ext.CallRecord is C_RECORD.CallRecord
    assert ext.Exchange is C_EXCHANGE.Exchange
    assert ext.family.Scan is C_SCAN.Scan
    x = ext.recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))
    assert type(x) is C_EXCHANGE.Exchange
    assert type(x.finish()) is C_RECORD.CallRecord


# -- CallRecord ------------------------------------------------------------------------


def outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    """What a call returns, or the exception it raises (type and message)."""
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return ("raised", type(e), str(e))


def test_record_fields_match() -> None:
    assert C_RECORD.FIELDS == FIELDS


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)


@SETTINGS
@given(st.fixed_dictionaries({}, optional={f: scalars for f in FIELDS}))
def test_records_agree(values: dict[str, Any]) -> None:
    values = {"family": "f", "provider": "openai", "operation": "chat", **values}
    py, c = record_mod.CallRecordPy(**values), C_RECORD.CallRecord(**values)
    for latest in (False, True):
        a, b = outcome(py.attributes, latest), outcome(c.attributes, latest)
        assert a == b and repr(a) == repr(b)
    assert outcome(lambda: py.span_name) == outcome(lambda: c.span_name)
    assert py.status == c.status
    assert repr(py) == repr(c)
    assert c == C_RECORD.CallRecord(**values) and c != py
    positional = C_RECORD.CallRecord(*(values.get(f) for f in FIELDS))
    assert positional == c


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (("f",), {}),
        (("f", "p"), {"family": "x"}),
        (("f", "p", "o"), {"nope": 1}),
        (tuple(range(len(FIELDS) + 1)), {}),
    ],
)
def test_record_constructor_errors_agree(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError) as py:
        record_mod.CallRecordPy(*args, **kwargs)
    with pytest.raises(TypeError) as c:
        C_RECORD.CallRecord(*args, **kwargs)
    assert str(py.value) == str(c.value)


def test_record_is_unhashable_like_the_dataclass() -> None:
    with pytest.raises(TypeError):
        hash(C_RECORD.CallRecord("f", "p", "o"))


# -- Scan ------------------------------------------------------------------------------


class FakeScanner:
    """What Scan reads of a finished StreamScanner."""

    def __init__(self, values: list[Any], first: list[int], **flags: Any) -> None:
        self.values, self.first_index = values, first
        self.docs = flags.get("docs", 0)
        self.done_sentinel = flags.get("done_sentinel", False)
        self.error = flags.get("error")
        self.error_event = flags.get("error_event")
        self.truncated = flags.get("truncated", False)


slot_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(),
    st.text(max_size=3),
    st.lists(st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2)), max_size=3),
)


@st.composite
def scans(draw: Any) -> tuple[Any, Any, list[str]]:
    n = draw(st.integers(0, 8))
    names = [f"s{i}" for i in range(n)]
    values = draw(st.lists(slot_values, min_size=n, max_size=n))
    first = draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n))
    index = st.integers(0, n - 1) if n else st.nothing()
    out = tuple(draw(st.lists(index, max_size=4))) if n else ()
    kind_slots = tuple(draw(st.lists(index, max_size=4))) if n else ()
    kinds = tuple(draw(st.sampled_from(["text", "reasoning", "tool_call"])) for _ in kind_slots)
    spec = scan_mod.Spec(
        paths=None,
        names=tuple(names),
        out=out,
        folds={},
        chunks=-1,
        slot_of={name: i for i, name in enumerate(names)},
        errors=tuple(draw(st.lists(index, max_size=3))) if n else (),
        kind_slots=kind_slots,
        kind_names=kinds,
    )
    flags = draw(
        st.fixed_dictionaries(
            {
                "docs": st.integers(0, 9),
                "done_sentinel": st.booleans(),
                "error": st.none() | st.text(max_size=4),
                "error_event": st.none() | st.text(max_size=4),
                "truncated": st.booleans(),
            }
        )
    )
    ss = draw(st.none() | st.just(FakeScanner(values, first, **flags)))
    return (spec if draw(st.booleans()) else None), ss, names


@SETTINGS
@given(scans(), st.lists(st.text(max_size=3), max_size=3))
def test_scans_agree(case: tuple[Any, Any, list[str]], extra_keys: list[str]) -> None:
    spec, ss, names = case
    py = scan_mod.ScanPy(spec, ss, "route", {"h": "v"})
    c = C_SCAN.Scan(spec, ss, "route", {"h": "v"})
    keys = [*names, *extra_keys]
    for attr in ("docs", "done_sentinel", "error", "error_event", "truncated", "route"):
        assert getattr(py, attr) == getattr(c, attr), attr
    assert py.headers == c.headers and py.capped == c.capped and py.spec is c.spec
    for k in keys:
        assert repr(py.get(k)) == repr(c.get(k))  # repr: NaN compares unequal
        assert py.text(k) == c.text(k) and py.seq(k) == c.seq(k)
    for i in range(len(keys)):
        assert py.num(*keys[i:]) == c.num(*keys[i:])
        assert py.text(*keys[i:]) == c.text(*keys[i:])
    for i in range(-len(names), len(names)) if spec is not None and ss is not None else ():
        assert repr(py.slot(i)) == repr(c.slot(i))
    if spec is not None:
        assert py.any_set(spec.errors) == c.any_set(spec.errors)
    assert py.first_output() == c.first_output()
    assert py.first_index() == c.first_index()
    assert repr(py.values) == repr(c.values) and py.first == c.first


def test_scan_without_a_scanner_reads_nothing() -> None:
    spec = ext.FAMILIES[0].scanner_spec()
    for cls in (scan_mod.ScanPy, C_SCAN.Scan):
        s = cls(spec, None)
        assert s.get("model") is None and s.num("in") is None and s.seq("finish") == []
        assert s.first_output() == (None, None) and s.slot(0) is None
        assert s.values == dict.fromkeys(spec.names)
        assert s.first_index() == [-1] * len(spec.names)
        assert cls(None, None).first_output() == (None, None)


# -- Exchange --------------------------------------------------------------------------


def record_of(rec: Any) -> tuple[Any, ...]:
    """Every field, the lazily built content as a plain dict."""
    return tuple(
        dict(rec.content) if f == "content" and rec.content is not None else getattr(rec, f)
        for f in FIELDS
    )


def drive(
    twin: type,
    info: RequestInfo,
    config: Any,
    request: bytes | None,
    req_split: int,
    status: int | None,
    headers: dict[str, str],
    chunks: list[bytes],
    eos: bool,
    trailers: dict[str, str] | None = None,
    envoy: EnvoyTokenUsage | None = None,
    cut_short: str | None = None,
) -> tuple[tuple[Any, ...], list[bool], Any]:
    saved = recognise_mod.Exchange
    recognise_mod.Exchange = twin
    try:
        x = ext.recognise(info, config)
    finally:
        recognise_mod.Exchange = saved
    assert type(x) is twin
    ident = (x.family, x.provider, x.operation, x.wants_request_body)
    if request is not None and x.wants_request_body:
        x.on_request_body(request[:req_split], False)
        x.on_request_body(request[req_split:], True)
    flags = []
    if status is not None:
        x.on_response_headers(status, headers)
        flags = [x.on_response_body(c, eos and i == len(chunks) - 1) for i, c in enumerate(chunks)]
        if trailers:
            x.on_response_trailers(trailers)
    if envoy is not None:
        x.apply_token_usage(envoy)
    rec = x.finish(cut_short)
    assert x.finish() is rec
    assert x.on_response_body(b"late", True) is False
    return record_of(rec), flags, ident


def both(*args: Any, **kwargs: Any) -> None:
    py = drive(exchange_mod.ExchangePy, *args, **kwargs)
    c = drive(C_EXCHANGE.Exchange, *args, **kwargs)
    assert repr(py) == repr(c)  # repr: NaN-safe, and types must match too


def split(data: bytes, seed: int) -> list[bytes]:
    out, i, step = [], 0, 1 + seed % 97
    while i < len(data):
        out.append(data[i : i + step])
        i += step
        step = 1 + (step * 31 + 7) % 211
    return out or [b""]


@pytest.mark.parametrize("mode", ["plain", "capture"])
def test_recorded_exchanges_agree(exchange: Exchange, mode: str) -> None:
    m = exchange.meta
    path = m["url_path"] + (f"?{m['url_query']}" if m.get("url_query") else "")
    info = RequestInfo(m["method"], m["host"], path, {})
    config = ExtConfig(capture_content=mode == "capture")
    headers = {k.lower(): v for k, v in m["response_headers"].items()}
    gz_headers = dict(headers)
    headers.pop("content-encoding", None)
    req = exchange.request
    half = len(req) // 2 if req else 0
    seed = zlib.crc32(exchange.id.encode())
    both(info, config, req, half, m["status"], headers, [exchange.response], True)
    both(info, config, req, 0, m["status"], headers, split(exchange.response, seed), True)
    cut = split(exchange.response, seed)[:-1] or [b""]
    both(info, config, req, half, m["status"], headers, cut, False, cut_short="timeout")
    if exchange.response_gz is not None and gz_headers.get("content-encoding"):
        gz = split(exchange.response_gz, seed)
        both(info, config, req, half, m["status"], gz_headers, gz, True)


# Random exchanges: chat-shaped and not, valid and broken, cut anywhere.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
events = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=4),
            "model": st.text(max_size=6),
            "choices": st.lists(
                st.fixed_dictionaries(
                    {"index": st.integers(0, 2)},
                    optional={
                        "delta": st.fixed_dictionaries(
                            {}, optional={"content": st.text(max_size=5), "tool_calls": json_values}
                        ),
                        "finish_reason": st.none() | st.sampled_from(["stop", "length"]),
                    },
                ),
                max_size=2,
            ),
            "usage": st.fixed_dictionaries(
                {}, optional={"prompt_tokens": st.integers(0, 99), "completion_tokens": json_values}
            ),
            "error": json_values,
        },
    ),
    max_size=5,
)
ENDPOINTS = [
    ("api.openai.com", "/v1/chat/completions"),
    ("api.anthropic.com", "/v1/messages"),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
    ("bedrock-runtime.us-east-1.amazonaws.com", "/model/m/converse-stream"),
    ("localhost:11434", "/api/chat"),
    ("example.com", "/v1/whatever/chat"),
    ("example.com", "/nothing"),
]


@SETTINGS
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    method=st.sampled_from(["POST", "post", "GET"]),
    hint=st.none() | st.sampled_from(["azure", "openai.chat_completions", "Bad Hint!", "groq"]),
    request=st.none() | json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=20),
    req_split=st.integers(0, 30),
    max_body=st.sampled_from([4, 64, 4 * 1024 * 1024]),
    capture=st.booleans(),
    status=st.none() | st.sampled_from([200, 200, 429, 500]),
    content_type=st.sampled_from(
        ["text/event-stream", "application/json", "application/x-ndjson", "", "text/plain"]
    ),
    evs=events,
    done=st.booleans(),
    garbage=st.binary(max_size=6),
    step=st.integers(1, 40),
    eos=st.booleans(),
    encoding=st.sampled_from([None, "identity", "gzip-broken", "br"]),
    trailers=st.none() | st.just({"x-amzn-requestid": "r1"}),
    envoy=st.none() | st.builds(EnvoyTokenUsage, input_tokens=st.none() | st.integers(0, 9)),
    cut_short=st.none() | st.sampled_from(["client_disconnect", "timeout"]),
)
def test_random_exchanges_agree(
    endpoint: tuple[str, str],
    method: str,
    hint: str | None,
    request: bytes | None,
    req_split: int,
    max_body: int,
    capture: bool,
    status: int | None,
    content_type: str,
    evs: list[dict[str, Any]],
    done: bool,
    garbage: bytes,
    step: int,
    eos: bool,
    encoding: str | None,
    trailers: dict[str, str] | None,
    envoy: EnvoyTokenUsage | None,
    cut_short: str | None,
) -> None:
    info = RequestInfo(method, endpoint[0], endpoint[1], {}, hint=hint)
    config = ExtConfig(max_request_body=max_body, capture_content=capture)
    if content_type == "text/event-stream":
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in evs)
        body += b"data: [DONE]\n\n" if done else b""
    elif content_type == "application/x-ndjson":
        body = b"".join(json.dumps(e).encode() + b"\n" for e in evs)
    else:
        body = json.dumps(evs[0] if evs else {}).encode()
    body += garbage
    headers = {"content-type": content_type} if content_type else {}
    if encoding is not None:
        headers["content-encoding"] = encoding
    chunks = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    both(
        info,
        config,
        request,
        req_split,
        status,
        headers,
        chunks,
        eos,
        trailers=trailers,
        envoy=envoy,
        cut_short=cut_short,
    )
