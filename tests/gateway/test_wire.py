"""The ext_proc wire codec against protobuf classes compiled from Envoy's own protos."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import pytest
from extproc_helpers import header_map, parse_response, pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmtap.core import _env
from llmtap.gateway import extproc_wire as w
from llmtap.gateway import protowire as pw

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(params=["py", "c"])
def decode(request: pytest.FixtureRequest) -> Any:
    if request.param == "py":
        return w.decode_request_py
    if _env.NO_EXTENSIONS:
        pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
    return importlib.import_module("llmtap.gateway._extproc_wire").decode_request


def twins() -> list[Any]:
    out = [w.decode_request_py]
    if not _env.NO_EXTENSIONS:
        out.append(importlib.import_module("llmtap.gateway._extproc_wire").decode_request)
    return out


def view(r: Any) -> tuple:
    body = None if r.body is None else bytes(r.body)
    return (
        r.kind,
        r.headers,
        body,
        bool(r.end_of_stream),
        bool(r.observability_mode),
        r.request_body_mode,
        r.response_body_mode,
        r.error,
    )


@pytest.mark.skipif(_env.NO_EXTENSIONS, reason="LLMTAP_NO_EXTENSIONS is set: twins only")
def test_native_wire_is_compiled() -> None:
    mod = importlib.import_module("llmtap.gateway._extproc_wire")
    assert mod.__file__ is not None and mod.__file__.endswith(".so")
    assert w.decode_request is mod.decode_request


# -- every oneof ----------------------------------------------------------------------------

HEADER_KINDS = {
    "request_headers": w.REQUEST_HEADERS,
    "response_headers": w.RESPONSE_HEADERS,
}
BODY_KINDS = {"request_body": w.REQUEST_BODY, "response_body": w.RESPONSE_BODY}
TRAILER_KINDS = {
    "request_trailers": w.REQUEST_TRAILERS,
    "response_trailers": w.RESPONSE_TRAILERS,
}


@pytest.mark.parametrize("field", list(HEADER_KINDS))
@pytest.mark.parametrize("eos", [False, True])
def test_headers_oneof(decode: Any, field: str, eos: bool) -> None:
    r = pb().ep.ProcessingRequest()
    getattr(r, field).headers.CopyFrom(
        header_map([(":method", "POST"), (":path", "/v1/chat/completions"), ("x-a", "1")])
    )
    getattr(r, field).end_of_stream = eos
    got = decode(r.SerializeToString())
    assert got.error is None
    assert got.kind == HEADER_KINDS[field]
    assert got.headers == {":method": "POST", ":path": "/v1/chat/completions", "x-a": "1"}
    assert got.body is None
    assert got.end_of_stream is eos or got.end_of_stream == eos
    assert not got.observability_mode


@pytest.mark.parametrize("field", list(BODY_KINDS))
@pytest.mark.parametrize("eos", [False, True])
def test_body_oneof(decode: Any, field: str, eos: bool) -> None:
    r = pb().ep.ProcessingRequest(observability_mode=True)
    getattr(r, field).body = b'data: {"x": 1}\n\n'
    getattr(r, field).end_of_stream = eos
    raw = r.SerializeToString()
    got = decode(raw)
    assert got.error is None
    assert got.kind == BODY_KINDS[field]
    assert got.headers is None
    assert isinstance(got.body, memoryview)
    assert bytes(got.body) == b'data: {"x": 1}\n\n'
    assert bool(got.end_of_stream) == eos
    assert got.observability_mode


@pytest.mark.parametrize("field", list(TRAILER_KINDS))
def test_trailers_oneof(decode: Any, field: str) -> None:
    r = pb().ep.ProcessingRequest()
    getattr(r, field).trailers.CopyFrom(header_map([("grpc-status", "0")]))
    got = decode(r.SerializeToString())
    assert (got.kind, got.headers, got.body, got.error) == (
        TRAILER_KINDS[field],
        {"grpc-status": "0"},
        None,
        None,
    )


def test_empty_body_and_empty_headers(decode: Any) -> None:
    r = pb().ep.ProcessingRequest()
    r.response_body.end_of_stream = True
    got = decode(r.SerializeToString())
    assert got.kind == w.RESPONSE_BODY and bytes(got.body) == b"" and got.end_of_stream
    r = pb().ep.ProcessingRequest()
    r.response_trailers.SetInParent()
    got = decode(r.SerializeToString())
    assert got.kind == w.RESPONSE_TRAILERS and got.headers == {}


def test_no_oneof_is_not_an_error(decode: Any) -> None:
    got = decode(pb().ep.ProcessingRequest(observability_mode=True).SerializeToString())
    assert (got.kind, got.error, got.observability_mode) == (w.NO_REQUEST, None, True)
    assert decode(b"").kind == w.NO_REQUEST


# -- header values --------------------------------------------------------------------------


def test_raw_value_and_value(decode: Any) -> None:
    m = pb().base.HeaderMap()
    m.headers.add(key="only-value", value="v")
    m.headers.add(key="only-raw", raw_value=b"r")
    m.headers.add(key="both", value="ignored", raw_value=b"raw wins")
    m.headers.add(key="empty-raw", value="falls back")
    m.headers.add(key="empty", raw_value=b"")
    r = pb().ep.ProcessingRequest()
    r.request_headers.headers.CopyFrom(m)
    got = decode(r.SerializeToString())
    assert got.headers == {
        "only-value": "v",
        "only-raw": "r",
        "both": "raw wins",
        "empty-raw": "falls back",
        "empty": "",
    }


def test_repeated_names_are_joined_and_names_lowercased(decode: Any) -> None:
    m = header_map([("Accept", "a"), ("accept", "b"), ("X-Trace", "t")])
    r = pb().ep.ProcessingRequest()
    r.response_headers.headers.CopyFrom(m)
    assert decode(r.SerializeToString()).headers == {"accept": "a, b", "x-trace": "t"}


def test_invalid_utf8_is_replaced(decode: Any) -> None:
    r = pb().ep.ProcessingRequest()
    r.request_headers.headers.headers.add(key="x-bin", raw_value=b"a\xffb\xc3")
    assert decode(r.SerializeToString()).headers == {"x-bin": "a\ufffdb\ufffd"}


# -- top-level fields -----------------------------------------------------------------------


def test_protocol_config(decode: Any) -> None:
    r = pb().ep.ProcessingRequest()
    r.request_headers.SetInParent()
    r.protocol_config.request_body_mode = 1
    r.protocol_config.response_body_mode = 4
    r.protocol_config.send_body_without_waiting_for_header_response = True
    got = decode(r.SerializeToString())
    assert (got.request_body_mode, got.response_body_mode) == (1, 4)
    r.ClearField("protocol_config")
    got = decode(r.SerializeToString())
    assert (got.request_body_mode, got.response_body_mode) == (-1, -1)
    r.protocol_config.SetInParent()  # present but all NONE
    got = decode(r.SerializeToString())
    assert (got.request_body_mode, got.response_body_mode) == (0, 0)


def test_unknown_fields_are_skipped(decode: Any) -> None:
    base = pb().ep.ProcessingRequest(observability_mode=True)
    base.response_body.body = b"xyz"
    raw = base.SerializeToString()
    extra = (
        b"\x08\x01"  # reserved field 1 (async_mode), varint
        + b"\x65\x01\x02\x03\x04"  # field 12, fixed32
        + b"\x69"
        + b"\x00" * 8  # field 13, fixed64
        + b"\x72\x03abc"  # field 14, length-delimited
    )
    for data in (extra + raw, raw + extra):
        got = decode(data)
        assert got.error is None
        assert (got.kind, bytes(got.body), got.observability_mode) == (5, b"xyz", True)


def test_body_is_a_view_of_the_message(decode: Any) -> None:
    r = pb().ep.ProcessingRequest()
    r.response_body.body = b"0123456789" * 100
    raw = r.SerializeToString()
    got = decode(raw)
    assert got.body.obj is raw  # no copy: a slice of grpcio's bytes
    assert got.body.readonly  # a view of immutable bytes
    for data in (bytearray(raw), memoryview(raw), memoryview(b"??" + raw)[2:]):
        assert bytes(decode(data).body) == b"0123456789" * 100


def test_oneof_last_case_wins_and_same_case_merges(decode: Any) -> None:
    a = pb().ep.ProcessingRequest()
    a.request_headers.headers.CopyFrom(header_map([("a", "1")]))
    b = pb().ep.ProcessingRequest()
    b.response_body.body = b"later"
    got = decode(a.SerializeToString() + b.SerializeToString())
    assert (got.kind, got.headers, bytes(got.body)) == (w.RESPONSE_BODY, None, b"later")
    c = pb().ep.ProcessingRequest()
    c.request_headers.headers.CopyFrom(header_map([("b", "2")]))
    c.request_headers.end_of_stream = True
    got = decode(a.SerializeToString() + c.SerializeToString())
    oracle = pb().ep.ProcessingRequest.FromString(a.SerializeToString() + c.SerializeToString())
    assert len(oracle.request_headers.headers.headers) == 2
    assert got.headers == {"a": "1", "b": "2"} and got.end_of_stream


# -- lazy metadata and attributes -----------------------------------------------------------


def _token_usage_pb(**counts: int) -> Any:
    tu = pb().tu.TokenUsage(api_protocol=3, model="claude-sonnet-4-6", extraction_status=2)
    for name in ("input_tokens", "output_tokens", "total_tokens", "provider_total_tokens"):
        if name in counts:
            getattr(tu, name).value = counts[name]
    for name in ("cached_tokens", "cache_creation_tokens", "tool_use_tokens"):
        if name in counts:
            getattr(tu.input_token_details, name).value = counts[name]
    if "reasoning_tokens" in counts:
        tu.output_token_details.reasoning_tokens.value = counts["reasoning_tokens"]
    return tu


def test_token_usage_typed_metadata(decode: Any) -> None:
    counts = dict(
        input_tokens=1190,
        output_tokens=221,
        total_tokens=1411,
        provider_total_tokens=1411,
        cached_tokens=1165,
        cache_creation_tokens=21,
        tool_use_tokens=0,
        reasoning_tokens=2**40,
    )
    r = pb().ep.ProcessingRequest()
    r.response_trailers.SetInParent()
    r.metadata_context.typed_filter_metadata["envoy.ai.token_usage"].Pack(_token_usage_pb(**counts))
    r.metadata_context.filter_metadata["llmtap"].update({"provider": "anthropic"})
    got = decode(r.SerializeToString())
    md = got.metadata()
    assert md.filter_metadata == {"llmtap": {"provider": "anthropic"}}
    usage = md.token_usage()
    assert usage is not None
    assert usage.model == "claude-sonnet-4-6"
    assert (usage.api_protocol_name, usage.status_name) == ("anthropic_messages", "partial")
    for name, value in counts.items():
        assert getattr(usage, name) == value, name
    assert md.token_usage("elsewhere") is None


def test_token_usage_absent_counts_are_none() -> None:
    tu = pb().tu.TokenUsage(api_protocol=1, extraction_status=3)
    tu.input_tokens.value = 0  # present and zero is not absent
    usage = pw.decode_token_usage(tu.SerializeToString())
    assert usage.input_tokens == 0
    assert usage.output_tokens is None and usage.reasoning_tokens is None
    assert usage.model == "" and usage.status_name == "failed"
    assert usage == pw.decode_token_usage(tu.SerializeToString())


def test_token_usage_of_another_type_is_an_error() -> None:
    md = pw.Metadata(typed_filter_metadata={"envoy.ai.token_usage": ("x/foo.Bar", b"")})
    with pytest.raises(pw.WireError, match="not TokenUsage"):
        md.token_usage()


def test_attributes(decode: Any) -> None:
    r = pb().ep.ProcessingRequest()
    r.request_headers.SetInParent()
    r.attributes["envoy.filters.http.ext_proc"].update(
        {
            "request.path": "/v1/messages",
            "xds.cluster_name": "anthropic",
            "request.size": 12.5,
            "flag": True,
            "nothing": None,
            "nested": {"list": [1, "two", False, None, {"k": []}]},
        }
    )
    got = decode(r.SerializeToString())
    assert got.error is None
    assert got.attributes() == {
        "envoy.filters.http.ext_proc": {
            "request.path": "/v1/messages",
            "xds.cluster_name": "anthropic",
            "request.size": 12.5,
            "flag": True,
            "nothing": None,
            "nested": {"list": [1.0, "two", False, None, {"k": []}]},
        }
    }
    assert got.metadata().filter_metadata == {}


def test_malformed_metadata_raises_wire_error_on_access(decode: Any) -> None:
    # metadata_context whose inner map entry overruns: the top level is fine.
    inner = b"\x0a\x05\x0a\x09abc"
    raw = pw.field_len(8, inner) + pw.field_len(5, b"")
    got = decode(raw)
    assert got.error is None and got.kind == w.RESPONSE_BODY
    with pytest.raises(pw.WireError, match="overruns the message"):
        got.metadata()


# -- errors ---------------------------------------------------------------------------------

ERRORS = [
    (b"\x2a\x05ab", "field 5 length 5 overruns the message at offset 0 (2 bytes left)"),
    (b"\x80", "truncated varint at offset 0"),
    (b"\x50\xff", "truncated varint at offset 1"),
    (b"\x00\x01", "invalid field number 0 at offset 0"),
    (b"\x2a\x01\x10", "truncated varint at offset 3"),
    (b"\x2b", "field 5 has wire type 3, expected 2, at offset 0"),
    (b"\x63", "unsupported wire type 3 for field 12 at offset 0"),
    (b"\x28\x01", "field 5 has wire type 0, expected 2, at offset 0"),
    (b"\x52\x00", "field 10 has wire type 2, expected 0, at offset 0"),
    (b"\x65\x00\x00", "truncated 32-bit field 12 at offset 0"),
    (b"\x69\x00", "truncated 64-bit field 13 at offset 0"),
    (b"\x50" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes at offset 1"),
    (
        b"\x1a\x04\x0a\x02\x0a\x05",
        "field 1 length 5 overruns the message at offset 4 (0 bytes left)",
    ),
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_error_messages(decode: Any, data: bytes, message: str) -> None:
    got = decode(data)
    assert got.error == f"invalid ProcessingRequest: {message}"
    assert got.headers is None and got.body is None and not got.end_of_stream


def test_error_keeps_kind_for_the_answer(decode: Any) -> None:
    # A body message whose chunk is cut: the kind is known, so CONTINUE can still go out.
    r = pb().ep.ProcessingRequest()
    r.response_body.body = b"x" * 50
    got = decode(r.SerializeToString()[:-10])
    assert got.error is not None and got.kind == w.RESPONSE_BODY


# -- hypothesis: random valid messages against the oracle -----------------------------------

header_name = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12
)
headers_st = st.lists(st.tuples(header_name, st.binary(max_size=20)), max_size=8)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, Any]:
    r = pb().ep.ProcessingRequest(observability_mode=draw(st.booleans()))
    kind = draw(st.sampled_from([None, *HEADER_KINDS, *BODY_KINDS, *TRAILER_KINDS]))
    if kind in HEADER_KINDS or kind in TRAILER_KINDS:
        target = getattr(r, kind)
        m = target.headers if kind in HEADER_KINDS else target.trailers
        for k, v in draw(headers_st):
            hv = m.headers.add(key=k)
            if draw(st.booleans()):
                hv.raw_value = v
            else:
                hv.value = v.decode("latin-1")
        target.SetInParent()
        if kind in HEADER_KINDS:
            target.end_of_stream = draw(st.booleans())
    elif kind is not None:
        target = getattr(r, kind)
        target.body = draw(st.binary(max_size=300))
        target.end_of_stream = draw(st.booleans())
        target.SetInParent()
    if draw(st.booleans()):
        r.protocol_config.request_body_mode = draw(st.integers(0, 4))
        r.protocol_config.response_body_mode = draw(st.integers(0, 4))
    if draw(st.booleans()):
        r.attributes["f"].update({"k": draw(st.text(max_size=5))})
    if draw(st.booleans()):
        r.metadata_context.filter_metadata["ns"].update({"n": draw(st.floats(allow_nan=False))})
    return r.SerializeToString(), r


def expected(r: Any) -> tuple:
    kind = r.WhichOneof("request")
    headers = body = None
    eos = False
    if kind in HEADER_KINDS or kind in TRAILER_KINDS:
        target = getattr(r, kind)
        m = target.headers if kind in HEADER_KINDS else target.trailers
        headers = {}
        for hv in m.headers:
            name = hv.key.encode().lower().decode()
            text = (hv.raw_value or hv.value.encode()).decode("utf-8", "replace")
            headers[name] = text if name not in headers else f"{headers[name]}, {text}"
        eos = kind in HEADER_KINDS and target.end_of_stream
    elif kind is not None:
        body = getattr(r, kind).body
        eos = getattr(r, kind).end_of_stream
    modes = (-1, -1)
    if r.HasField("protocol_config"):
        modes = (r.protocol_config.request_body_mode, r.protocol_config.response_body_mode)
    number = 0 if kind is None else r.DESCRIPTOR.fields_by_name[kind].number
    return (number, headers, body, eos, r.observability_mode, *modes, None)


@SETTINGS
@given(requests())
def test_random_messages_match_the_oracle(msg: tuple[bytes, Any]) -> None:
    raw, r = msg
    want = expected(r)
    for d in twins():
        got = d(raw)
        assert view(got) == want
        assert got.attributes() == {k: dict(v) for k, v in r.attributes.items()}
        md = got.metadata()
        assert md.filter_metadata == {
            k: dict(v) for k, v in r.metadata_context.filter_metadata.items()
        }


# -- hypothesis: garbage never crashes, and both twins agree --------------------------------


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_never_raises(data: bytes) -> None:
    views = [view(d(data)) for d in twins()]
    assert all(v == views[0] for v in views)


@SETTINGS
@given(requests(), st.data())
def test_mutated_messages_never_raise(msg: tuple[bytes, Any], data: st.DataObject) -> None:
    raw = bytearray(msg[0])
    if raw:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    views = []
    for d in twins():
        got = d(bytes(raw))
        views.append(view(got))
        if got.error is None:
            # Lazy parts either decode or raise WireError: never anything else.
            for accessor in (got.metadata, got.attributes):
                with contextlib.suppress(pw.WireError):
                    accessor()
    assert all(v == views[0] for v in views)


# -- encoders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (w.REQUEST_HEADERS, "request_headers"),
        (w.RESPONSE_HEADERS, "response_headers"),
        (w.REQUEST_BODY, "request_body"),
        (w.RESPONSE_BODY, "response_body"),
        (w.REQUEST_TRAILERS, "request_trailers"),
        (w.RESPONSE_TRAILERS, "response_trailers"),
    ],
)
def test_continue_constants(kind: int, field: str) -> None:
    resp = parse_response(w.CONTINUE[kind])
    assert resp.WhichOneof("response") == field
    assert not resp.HasField("dynamic_metadata") and not resp.HasField("mode_override")
    assert resp.SerializeToString() == w.CONTINUE[kind]


def test_header_mutation_on_request_headers() -> None:
    data = w.encode_response(
        w.REQUEST_HEADERS,
        headers=w.HeaderMutation(
            (
                ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("tracestate", "k=v"),
            ),
            ("x-llmtap-provider",),
        ),
        mode_override=w.ProcessingMode(request_body_mode=0, response_body_mode=1),
    )
    resp = parse_response(data)
    common = resp.request_headers.response
    assert common.status == 0  # CONTINUE
    sets = [
        (o.header.key, o.header.raw_value, o.append_action)
        for o in common.header_mutation.set_headers
    ]
    assert sets == [
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 2),
        ("tracestate", b"k=v", 2),
    ]
    assert list(common.header_mutation.remove_headers) == ["x-llmtap-provider"]
    assert resp.mode_override.response_body_mode == 1
    assert resp.mode_override.request_body_mode == 0


def test_trailer_mutation_and_dynamic_metadata() -> None:
    data = w.encode_response(
        w.RESPONSE_TRAILERS,
        headers=w.HeaderMutation(remove_headers=("x-secret",)),
        dynamic_metadata={"llmtap": {"input_tokens": 12, "model": "gpt-4o", "ok": True}},
    )
    resp = parse_response(data)
    assert list(resp.response_trailers.header_mutation.remove_headers) == ["x-secret"]
    ns = resp.dynamic_metadata.fields["llmtap"].struct_value
    assert ns.fields["input_tokens"].number_value == 12
    assert ns.fields["model"].string_value == "gpt-4o"
    assert ns.fields["ok"].bool_value is True


def test_mode_override_all_fields() -> None:
    mode = w.ProcessingMode(0, 2, 1, 1, 2, 1)
    resp = parse_response(w.encode_response(w.RESPONSE_HEADERS, mode_override=mode))
    m = resp.mode_override
    got = (
        m.request_header_mode,
        m.response_header_mode,
        m.request_body_mode,
        m.response_body_mode,
        m.request_trailer_mode,
        m.response_trailer_mode,
    )
    assert got == tuple(mode)


def test_encode_rejects_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind 0"):
        w.encode_response(0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_struct_round_trip(value: dict) -> None:
    from google.protobuf.json_format import MessageToDict

    data = pw.encode_struct(value)
    oracle = pb().ep.ProcessingResponse()
    oracle.dynamic_metadata.ParseFromString(data)
    assert MessageToDict(oracle.dynamic_metadata) == value
    assert pw.decode_struct(data) == value
