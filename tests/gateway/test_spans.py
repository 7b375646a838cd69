"""The OTLP span encoder (pure ``py`` and compiled ``c`` twins): its bytes are what the
official protobuf classes produce and decode, and the twins agree byte for byte."""

from __future__ import annotations

import importlib
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

from llmtap.core import _env
from llmtap.gateway import otlp
from llmtap.gateway.spans import (
    KIND_CLIENT,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Event,
    Link,
    SpanData,
    status_code_of,
)


@pytest.fixture(params=["py", "c"])
def Encoder(request: pytest.FixtureRequest) -> Any:
    if request.param == "py":
        return otlp.OtlpEncoderPy
    if _env.NO_EXTENSIONS:
        pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
    return importlib.import_module("llmtap.gateway._otlp").OtlpEncoder


@pytest.mark.skipif(_env.NO_EXTENSIONS, reason="LLMTAP_NO_EXTENSIONS is set: twins only")
def test_native_encoder_is_compiled_and_preferred() -> None:
    mod = importlib.import_module("llmtap.gateway._otlp")
    assert mod.__file__ is not None and mod.__file__.endswith(".so")
    assert otlp.OtlpEncoder is mod.OtlpEncoder


RESOURCE = {"service.name": "llmtap", "service.instance.id": "abc", "process.pid": 42}


def any_value(v: Any) -> AnyValue:
    """The official AnyValue for a Python value (the encoder's documented mapping)."""
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return AnyValue(int_value=v)
        return AnyValue(double_value=float(v))
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, (list, tuple)):
        return AnyValue(
            array_value=ArrayValue(values=[any_value("" if x is None else x) for x in v])
        )
    if isinstance(v, dict):
        return AnyValue(
            kvlist_value=KeyValueList(
                values=[
                    KeyValue(key=str(k), value=any_value(x)) for k, x in v.items() if x is not None
                ]
            )
        )
    return AnyValue(string_value=str(v))


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items() if v is not None]


def expected_span(s: SpanData) -> Span:
    span = Span(
        trace_id=s.trace_id,
        span_id=s.span_id,
        trace_state=s.trace_state,
        parent_span_id=s.parent_span_id,
        flags=s.flags,
        name=s.name,
        kind=s.kind,
        start_time_unix_nano=s.start_ns,
        end_time_unix_nano=s.end_ns,
        attributes=key_values(dict(s.attributes)),
        events=[
            Span.Event(
                time_unix_nano=e.time_ns, name=e.name, attributes=key_values(dict(e.attributes))
            )
            for e in s.events
        ],
        links=[
            Span.Link(
                trace_id=ln.trace_id,
                span_id=ln.span_id,
                trace_state=ln.trace_state,
                attributes=key_values(dict(ln.attributes)),
                flags=ln.flags,
            )
            for ln in s.links
        ],
    )
    if s.status_code or s.status_message:
        span.status.CopyFrom(Status(code=s.status_code, message=s.status_message))
    return span


def full_span() -> SpanData:
    return SpanData(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8, 16)),
        parent_span_id=bytes(range(1, 9)),
        trace_state="ot=th:8,vendor=x",
        flags=0x301,
        name="chat gpt-4o-mini",
        kind=KIND_CLIENT,
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_002_500_000_000,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1234,
            "gen_ai.usage.output_tokens": 0,
            "gen_ai.request.temperature": 0.7,
            "gen_ai.request.stream": True,
            "gen_ai.response.finish_reasons": ["stop", "length"],
            "gen_ai.response.time_to_first_chunk": 0.25,
            "negative": -5,
            "huge": 2**80,
            "raw": b"\x00\xff",
            "nested": {"a": [1, "b", None, {"c": False}], "skip": None},
            "unicode": "héllo ✓ 🦙",
            "absent": None,
            "long": "x" * 5000,
        },
        status_code=STATUS_ERROR,
        status_message="rate limited",
        events=(
            Event(
                1_700_000_001_000_000_000,
                "gen_ai.client.inference.operation.details",
                {"gen_ai.input.messages": '[{"role":"user"}]'},
            ),
        ),
        links=(Link(bytes(range(16, 32)), bytes(8) + b"", "a=b", 0x301, {"link.kind": "caller"}),),
    )


def test_span_matches_official_serialization(Encoder: Any) -> None:
    s = full_span()._replace(
        links=(Link(bytes(range(16, 32)), b"\x01" * 8, "a=b", 0x301, {"k": 1}),)
    )
    enc = Encoder(RESOURCE, "llmtap", "1.2.3")
    out = enc.span(s)
    expected = ScopeSpans(spans=[expected_span(s)]).SerializeToString()
    assert out == expected
    decoded = ScopeSpans.FromString(out).spans[0]
    assert decoded.kind == Span.SPAN_KIND_CLIENT
    assert decoded.status.code == Status.STATUS_CODE_ERROR
    assert decoded.flags & 0x300 == 0x300


def test_request_decodes_with_resource_and_scope(Encoder: Any) -> None:
    enc = Encoder(RESOURCE, "llmtap", "1.2.3")
    s = full_span()._replace(links=())
    spans = [enc.span(s._replace(span_id=os.urandom(8))) for _ in range(3)]
    req = ExportTraceServiceRequest.FromString(enc.request(spans))
    (rs,) = req.resource_spans
    assert rs.resource == Resource(attributes=key_values(RESOURCE))
    (ss,) = rs.scope_spans
    assert ss.scope == InstrumentationScope(name="llmtap", version="1.2.3")
    assert [x.span_id for x in ss.spans] == [
        ScopeSpans.FromString(b).spans[0].span_id for b in spans
    ]
    assert (
        ExportTraceServiceRequest.FromString(enc.request([])).resource_spans[0].scope_spans[0].spans
        == []
    )


def test_minimal_span_omits_defaults(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    s = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, {}, 0, "")
    out = enc.span(s)
    assert out == ScopeSpans(spans=[expected_span(s)]).SerializeToString()
    assert ScopeSpans.FromString(out).spans[0].HasField("status") is False


def test_secret_attribute_keys_are_dropped(Encoder: Any) -> None:
    enc = Encoder({"authorization": "Bearer resource-secret"}, "llmtap")
    attrs = {
        "authorization": "Bearer sk-secret",
        "http.request.header.x-api-key": ["k"],
        "http.request.header.cookie": "session=1",
        "api_key": "abc",
        "gen_ai.usage.input_tokens": 3,
    }
    s = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, attrs, 0, "")
    out = enc.span(s) + enc.request([])
    assert b"secret" not in out and b"session" not in out and b"abc" not in out
    keys = [kv.key for kv in ScopeSpans.FromString(enc.span(s)).spans[0].attributes]
    assert keys == ["gen_ai.usage.input_tokens"]


def test_value_length_and_count_limits(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap", max_value_len=4, max_attributes=2)
    attrs = {"a": "abcdefgh", "b": ["long-list-item"], "c": 1, "d": 2}
    s = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, attrs, 0, "")
    span = ScopeSpans.FromString(enc.span(s)).spans[0]
    assert (span.attributes[0].key, span.attributes[0].value.string_value) == ("a", "abcd")
    assert len(span.attributes) == 2
    assert span.dropped_attributes_count == 2


def test_lone_surrogates_become_replacement_chars(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    attrs = {"text": "a\ud800b", "k\udfff": "v", "pair": "\ud83e\udd99"}
    s = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "n\ud83d", KIND_CLIENT, 1, 2, attrs, 0, "")
    span = ScopeSpans.FromString(enc.span(s)).spans[0]  # protobuf rejects invalid UTF-8
    assert span.name == "n\ufffd"
    assert [(kv.key, kv.value.string_value) for kv in span.attributes] == [
        ("text", "a\ufffdb"),
        ("k\ufffd", "v"),
        ("pair", "\U0001f999"),
    ]


def test_bad_ids_raise(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    good = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, {}, 0, "")
    for bad in (
        good._replace(trace_id=b"\x01" * 15),
        good._replace(span_id="ab"),
        good._replace(parent_span_id=b"\x01" * 9),
    ):
        with pytest.raises(ValueError, match="must be"):
            enc.span(bad)


def test_huge_span_round_trips_and_encoder_recovers(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    big = SpanData(
        b"\x01" * 16,
        b"\x02" * 8,
        b"",
        "",
        0,
        "x",
        KIND_CLIENT,
        1,
        2,
        {"content": "y" * 3_000_000, "list": ["z" * 200] * 1000},
        0,
        "",
    )
    out = enc.span(big)
    assert out == ScopeSpans(spans=[expected_span(big)]).SerializeToString()
    small = full_span()
    assert enc.span(small) == ScopeSpans(spans=[expected_span(small)]).SerializeToString()


def test_string_attribute_cache_does_not_leak_between_values(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    base = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, {}, 0, "")
    for model in ["a", "b", "a", "c"] * 3:
        span = ScopeSpans.FromString(enc.span(base._replace(attributes={"m": model}))).spans[0]
        assert span.attributes[0].value.string_value == model


def test_status_code_of() -> None:
    from opentelemetry.trace import StatusCode

    assert status_code_of("ERROR") == STATUS_ERROR
    assert status_code_of("ok") == STATUS_OK
    assert status_code_of(StatusCode.ERROR) == STATUS_ERROR
    assert status_code_of(None) == STATUS_UNSET
    assert status_code_of(7) == STATUS_UNSET
    assert status_code_of(2) == STATUS_ERROR


# -- twins agree on anything -----------------------------------------------------------

_scalars = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.binary(max_size=12),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_ids = st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8)
_spans = st.builds(
    SpanData,
    trace_id=_ids[0],
    span_id=_ids[1],
    parent_span_id=st.one_of(st.just(b""), _ids[1]),
    trace_state=st.text(max_size=20),
    flags=st.integers(0, 2**32 - 1),
    name=st.text(max_size=40),
    kind=st.integers(0, 5),
    start_ns=st.integers(0, 2**64 - 1),
    end_ns=st.integers(0, 2**64 - 1),
    attributes=st.dictionaries(st.text(min_size=1, max_size=20), _values, max_size=10),
    status_code=st.integers(0, 2),
    status_message=st.text(max_size=20),
    events=st.lists(
        st.builds(
            Event,
            st.integers(0, 2**64 - 1),
            st.text(max_size=10),
            st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=3),
        ),
        max_size=2,
    ).map(tuple),
    links=st.lists(
        st.builds(
            Link,
            _ids[0],
            _ids[1],
            st.text(max_size=10),
            st.integers(0, 2**32 - 1),
            st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=3),
        ),
        max_size=2,
    ).map(tuple),
)


@pytest.mark.skipif(_env.NO_EXTENSIONS, reason="LLMTAP_NO_EXTENSIONS is set: twins only")
@given(_spans, st.one_of(st.none(), st.integers(0, 50)), st.integers(0, 12))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_twins_agree_and_match_protobuf(s: SpanData, max_len: int | None, max_attrs: int) -> None:
    c_cls = importlib.import_module("llmtap.gateway._otlp").OtlpEncoder
    py = otlp.OtlpEncoderPy(
        RESOURCE, "llmtap", "1", max_value_len=max_len, max_attributes=max_attrs
    )
    c = c_cls(RESOURCE, "llmtap", "1", max_value_len=max_len, max_attributes=max_attrs)
    a, b = py.span(s), c.span(s)
    assert a == b
    assert py.request([a]) == c.request([b])
    decoded = ScopeSpans.FromString(a).spans[0]
    widest = max([len(s.attributes)] + [len(x.attributes) for x in (*s.events, *s.links)])
    if max_len is None and max_attrs >= widest:
        # Same message; bytes may differ only where protobuf omits proto3 defaults
        # (kind 0, zero timestamps, empty name) that llmtap's spans never have.
        assert decoded == expected_span(s)
    assert decoded.name == s.name and decoded.end_time_unix_nano == s.end_ns


def test_special_floats(Encoder: Any) -> None:
    enc = Encoder({}, "llmtap")
    attrs = {"inf": math.inf, "ninf": -math.inf, "nan": math.nan}
    s = SpanData(b"\x01" * 16, b"\x02" * 8, b"", "", 0, "x", KIND_CLIENT, 1, 2, attrs, 0, "")
    vals = [kv.value.double_value for kv in ScopeSpans.FromString(enc.span(s)).spans[0].attributes]
    assert vals[0] == math.inf and vals[1] == -math.inf and math.isnan(vals[2])
