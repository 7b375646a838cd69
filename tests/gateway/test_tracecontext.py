"""W3C traceparent/tracestate, B3 and baggage parsing, and the `ot` tracestate member."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.gateway import tracecontext as tc
from llmtap.gateway.tracecontext import SpanContext

TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"


def test_traceparent_valid() -> None:
    ctx = tc.parse_traceparent(f"00-{TID}-{SID}-01", "congo=t61rcWkgMzE,ot=th:8")
    assert ctx == SpanContext(
        bytes.fromhex(TID), bytes.fromhex(SID), 1, "congo=t61rcWkgMzE,ot=th:8"
    )
    assert ctx.sampled


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"00-{TID}-{SID}-0",  # short
        f"00-{TID}-{SID}-01-",  # version 00 must be exactly 55 chars
        f"ff-{TID}-{SID}-01",  # forbidden version
        f"00-{'0' * 32}-{SID}-01",  # zero trace id
        f"00-{TID}-{'0' * 16}-01",  # zero span id
        f"00-{TID.upper()}-{SID}-01",  # upper-case hex is invalid
        f"00-{TID}-{SID}-0g",
        f"00_{TID}-{SID}-01",
        f"0x-{TID}-{SID}-01",
        f"01-{TID}-{SID}-01x",  # future version: extra data must follow a dash
    ],
)
def test_traceparent_invalid(value: str) -> None:
    assert tc.parse_traceparent(value) is None


def test_traceparent_future_version_keeps_known_fields() -> None:
    ctx = tc.parse_traceparent(f"cc-{TID}-{SID}-09-what-the-future-holds")
    assert ctx is not None and ctx.trace_id == bytes.fromhex(TID) and ctx.flags == 9


def test_traceparent_version_00_keeps_only_defined_flags() -> None:
    ctx = tc.parse_traceparent(f"00-{TID}-{SID}-ff")
    assert ctx is not None and ctx.flags == tc.FLAG_SAMPLED | tc.FLAG_RANDOM


def test_invalid_tracestate_is_dropped_not_the_context() -> None:
    ctx = tc.parse_traceparent(f"00-{TID}-{SID}-01", "a=1,a=2")
    assert ctx is not None and ctx.trace_state == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("a=1", [("a", "1")]),
        ("a=1,,b=2", [("a", "1"), ("b", "2")]),
        (" a=1 ,\tb=2", [("a", "1"), ("b", "2")]),
        ("tenant@sys=x", [("tenant@sys", "x")]),
        ("ot=th:8;rv:0123456789abcd", [("ot", "th:8;rv:0123456789abcd")]),
    ],
)
def test_tracestate_valid(value: str, expected: list[tuple[str, str]]) -> None:
    assert tc.parse_tracestate(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "A=1",
        "a",
        "a=1,a=2",
        "a=b=c",
        "a=v\x01",
        "a=b,c",
        "1a=x" + "y" * 300,
        "a=" + "v" * 257,
        ",".join(f"k{i}=v" for i in range(33)),
    ],
)
def test_tracestate_invalid(value: str) -> None:
    assert tc.parse_tracestate(value) is None


def test_threshold_encoding_round_trip() -> None:
    assert tc.threshold_to_th(0) == "0"
    assert tc.threshold_to_th(1 << 55) == "8"
    assert tc.threshold_to_th(0x00FF0000000000) == "00ff"  # leading zeros are significant
    assert tc.threshold_from_th("8") == 1 << 55
    assert tc.threshold_from_th("00ff") == 0x00FF0000000000
    assert tc.threshold_from_th("fffffffffffffff") is None  # 15 digits
    assert tc.threshold_from_th("xyz") is None
    assert tc.threshold_from_th("") is None


@given(st.integers(0, (1 << 56) - 1))
@settings(max_examples=200)
def test_threshold_th_round_trip_property(t: int) -> None:
    assert tc.threshold_from_th(tc.threshold_to_th(t)) == t


def test_randomness_from_trace_id_low_56_bits() -> None:
    tid = bytes.fromhex("ffffffffffffffffff" + "0123456789abcd")
    assert tc.randomness(tid, "") == 0x0123456789ABCD


def test_randomness_explicit_rv_wins_when_valid() -> None:
    tid = bytes(16)
    assert tc.randomness(tid, "ot=rv:7479cfb506891d") == 0x7479CFB506891D
    # rv must be exactly 14 lower-case hex digits, else trace id randomness is used
    assert tc.randomness(tid, "ot=rv:7479CFB506891D") == 0
    assert tc.randomness(tid, "ot=rv:7479cf") == 0


def test_ot_set_threshold_keeps_rv_and_other_members_and_moves_ot_left() -> None:
    out = tc.ot_set_threshold("congo=x,ot=rv:7479cfb506891d;th:c,rojo=y", 1 << 55)
    assert out == "ot=th:8;rv:7479cfb506891d,congo=x,rojo=y"
    assert tc.ot_set_threshold("congo=x,ot=th:c", None) == "congo=x"
    assert tc.ot_set_threshold("", 0) == "ot=th:0"
    assert tc.ot_set_threshold("", None) == ""


def test_ot_set_threshold_keeps_at_most_32_members() -> None:
    ts = ",".join(f"k{i}=v" for i in range(32))
    out = tc.ot_set_threshold(ts, 0)
    members = tc.parse_tracestate(out)
    assert members is not None and len(members) == 32 and members[0] == ("ot", "th:0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{TID}-{SID}-1", SpanContext(bytes.fromhex(TID), bytes.fromhex(SID), 1, "")),
        (f"{TID}-{SID}-d", SpanContext(bytes.fromhex(TID), bytes.fromhex(SID), 1, "")),
        (f"{TID}-{SID}-0-{SID}", SpanContext(bytes.fromhex(TID), bytes.fromhex(SID), 0, "")),
        (f"{TID}-{SID}", SpanContext(bytes.fromhex(TID), bytes.fromhex(SID), 0, "")),
        (
            f"{TID[16:]}-{SID}-1",
            SpanContext(bytes(8) + bytes.fromhex(TID[16:]), bytes.fromhex(SID), 1, ""),
        ),
        ("0", None),
        ("1", None),
        (f"{TID}-{SID}-x", None),
        (f"{TID}-{'0' * 16}-1", None),
        (f"{TID[:30]}-{SID}-1", None),
    ],
)
def test_b3_single(value: str, expected: SpanContext | None) -> None:
    assert tc.parse_b3(value) == expected


def test_b3_multi() -> None:
    ctx = tc.parse_b3_multi(
        {"x-b3-traceid": TID, "x-b3-spanid": SID, "x-b3-sampled": "1", "x-b3-parentspanid": SID}
    )
    assert ctx == SpanContext(bytes.fromhex(TID), bytes.fromhex(SID), 1, "")
    debug = tc.parse_b3_multi({"x-b3-traceid": TID, "x-b3-spanid": SID, "x-b3-flags": "1"})
    assert debug is not None and debug.sampled
    assert tc.parse_b3_multi({"x-b3-traceid": TID}) is None
    assert tc.parse_b3_multi({"x-b3-traceid": "zz", "x-b3-spanid": SID}) is None


def test_extract_prefers_w3c_then_b3_then_b3_multi() -> None:
    other = "1" * 32
    both = {"traceparent": f"00-{TID}-{SID}-01", "b3": f"{other}-{SID}-1"}
    assert tc.extract(both).trace_id == bytes.fromhex(TID)  # type: ignore[union-attr]
    bad_w3c = {"traceparent": "garbage", "b3": f"{other}-{SID}-1"}
    assert tc.extract(bad_w3c).trace_id == bytes.fromhex(other)  # type: ignore[union-attr]
    multi = {"x-b3-traceid": other, "x-b3-spanid": SID}
    assert tc.extract(multi).trace_id == bytes.fromhex(other)  # type: ignore[union-attr]
    assert tc.extract({}) is None


def test_baggage() -> None:
    got = tc.parse_baggage("userId=alice,serverNode=DF%2028;prop=1, isProduction=false,bad,=x")
    assert got == {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"}
    many = ",".join(f"k{i}=v" for i in range(500))
    assert len(tc.parse_baggage(many)) == tc.MAX_BAGGAGE_MEMBERS
    assert tc.parse_baggage("k=%FF") == {}  # not UTF-8 after decoding: skipped


def test_new_ids_are_valid_and_distinct() -> None:
    ids = {tc.new_trace_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 16 and any(i) for i in ids)
    sids = {tc.new_span_id() for _ in range(1000)}
    assert len(sids) == 1000 and all(len(i) == 8 and any(i) for i in sids)


def test_format_round_trips_through_parse() -> None:
    tid, sid = tc.new_trace_id(), tc.new_span_id()
    assert tc.parse_traceparent(tc.format_traceparent(tid, sid, 3)) == SpanContext(tid, sid, 3)
    assert tc.parse_b3(tc.format_b3(tid, sid, 1)) == SpanContext(tid, sid, 1)
    assert tc.parse_b3_multi(dict(tc.format_b3_multi(tid, sid, 0))) == SpanContext(tid, sid, 0)


@given(st.text(max_size=120))
@settings(max_examples=200)
def test_parsers_never_raise(text: str) -> None:
    tc.parse_traceparent(text, text)
    tc.parse_tracestate(text)
    tc.parse_b3(text)
    tc.parse_baggage(text)
    tc.ot_get(text)
    tc.ot_set_threshold(text, 5)
    tc.threshold_from_th(text)
