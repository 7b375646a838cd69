"""Framers (core/framing.py and its compiled twin core/_framing.pyx).

Every test runs on both twins (``framing`` fixture, ids ``py``/``c``); the
differential tests feed the same chunks to both and require identical frames,
frame types, errors and ``truncated`` flags.
"""

from __future__ import annotations

import random
import struct
import time
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded import EXCHANGES, Exchange

from llmtap.core import framing as pure
from llmtap.core.decompress import Decompressor

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SSE = "SSEFramer"
NDJSON = "NDJSONFramer"
ARRAY = "JSONArrayFramer"
BODY = "JSONBodyFramer"
ES = "EventStreamFramer"

STREAM_TYPES = {
    "text/event-stream": SSE,
    "application/x-ndjson": NDJSON,
    "application/stream+json": NDJSON,
    "application/vnd.amazon.eventstream": ES,
}


# --- helpers ------------------------------------------------------------------------


def body_kind(ex: Exchange) -> str:
    """The framer ext/ would pick: content type and status, else the URL."""
    if not 200 <= ex.meta["status"] < 300:
        return BODY
    ctype = (ex.header("content-type") or "").split(";")[0].strip().lower()
    if ctype in STREAM_TYPES:
        return STREAM_TYPES[ctype]
    if not ex.meta.get("response_is_stream"):
        return BODY
    path = ex.meta["url_path"]
    if "streamGenerateContent" in path:
        return SSE if "alt=sse" in (ex.meta.get("url_query") or "") else ARRAY
    if path.endswith(("/converse-stream", "/invoke-with-response-stream")):
        return ES
    if path.startswith("/api/"):
        return NDJSON
    return SSE


def value(x: Any) -> Any:
    return bytes(x) if isinstance(x, bytes | memoryview) else x


def contents(frames: list) -> list:
    """Frames without the bytes/memoryview distinction (it depends on the chunking)."""
    out = []
    for f in frames:
        if isinstance(f, tuple):
            out.append(tuple(value(x) for x in f))
        else:
            out.append(bytes(f))
    return out


def exact(frames: list) -> list:
    """Frames with the type of every data field (must match between twins)."""
    out = []
    for f in frames:
        if isinstance(f, tuple):
            out.append(tuple((type(x).__name__, value(x)) for x in f))
        else:
            out.append((type(f).__name__, bytes(f)))
    return out


def run(cls: Any, chunks: list, **kw: Any) -> tuple[list, str | None, bool, Any]:
    f = cls(**kw)
    frames = []
    for c in chunks:
        frames += f.feed(c)
    frames += f.close()
    return frames, f.error, f.truncated, f


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def random_splits(data: bytes, seed: str, count: int = 3) -> list[list[bytes]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        k = rnd.randint(1, max(1, min(40, len(data) // 2)))
        out.append(split_at(data, [rnd.randint(1, max(1, len(data) - 1)) for _ in range(k)]))
    return out


def ones(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# An AWS event stream encoder, for building test messages.

TRUE, FALSE, BYTE, SHORT, INT, LONG, BYTES, STRING, TIMESTAMP, UUID = range(10)


def es_header(name: str, vtype: int, v: Any = None) -> bytes:
    raw = name.encode()
    head = bytes([len(raw)]) + raw + bytes([vtype])
    if vtype in (TRUE, FALSE):
        return head
    if vtype in (BYTES, STRING):
        data = v if isinstance(v, bytes) else v.encode()
        return head + struct.pack(">H", len(data)) + data
    if vtype == UUID:
        return head + v.bytes
    fmt = {BYTE: ">b", SHORT: ">h", INT: ">i", LONG: ">q", TIMESTAMP: ">q"}[vtype]
    return head + struct.pack(fmt, v)


def es_message(headers: bytes, payload: bytes) -> bytes:
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + headers + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


def es_event(event_type: str, payload: bytes) -> bytes:
    return es_message(
        es_header(":event-type", STRING, event_type)
        + es_header(":content-type", STRING, "application/json")
        + es_header(":message-type", STRING, "event"),
        payload,
    )


# --- the recorded exchanges -----------------------------------------------------------


def test_every_exchange_has_a_framer() -> None:
    kinds = Counter(body_kind(ex) for ex in EXCHANGES)
    assert set(kinds) == {SSE, NDJSON, ARRAY, BODY, ES}, kinds


def check_expected(kind: str, ex: Exchange, frames: list, error: str | None, f: Any) -> None:
    """Frame counts against what meta.json records about the body."""
    stream = ex.meta["expected"].get("stream") or {}
    assert error is None
    if kind == SSE:
        assert len(frames) == stream["events"]
        assert all(e.id is None and e.retry is None for e in frames)
        names = {e.event for e in frames if e.event is not None}
        assert names == set(stream.get("event_names") or [])
        assert sum(bytes(e.data) == b"[DONE]" for e in frames) == int(stream["done_sentinel"])
    elif kind == ES:
        assert len(frames) == stream["frames"]
        assert stream["crc_ok"] is True
        assert all(m.error is None for m in frames)
        if "event_type_counts" in stream:
            assert Counter(m.event_type for m in frames) == stream["event_type_counts"]
        assert {m.message_type for m in frames} <= set(stream.get("message_types") or ["event"])
    elif kind == NDJSON:
        assert len(frames) == stream["lines"]
    elif kind == ARRAY:
        assert len(frames) == stream["elements"]
        for el in frames:
            assert bytes(el)[:1] == b"{" and bytes(el)[-1:] == b"}"
    else:
        assert f.complete
        assert b"".join(bytes(p) for p in frames) == ex.response


def test_exchange_framing(framing: Any, exchange: Exchange) -> None:
    """Whole body, 1-byte chunks and random splits give the same frames."""
    kind = body_kind(exchange)
    cls = getattr(framing, kind)
    body = exchange.response
    frames, error, truncated, f = run(cls, [body])
    check_expected(kind, exchange, frames, error, f)
    assert not truncated
    if kind != BODY:
        # One chunk: every frame is a zero-copy slice of it.
        assert all(
            isinstance(x.data if kind == SSE else x.payload if kind == ES else x, memoryview)
            for x in frames
        )
    for chunks in [ones(body), *random_splits(body, exchange.id)]:
        got, err, trunc, g = run(cls, chunks)
        assert (err, trunc) == (None, False)
        if kind == BODY:
            assert b"".join(bytes(p) for p in got) == body and g.complete
        else:
            assert contents(got) == contents(frames)


def test_exchange_twins_agree(both_framings: tuple[Any, Any], exchange: Exchange) -> None:
    py, c = both_framings
    if c is None:
        pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
    kind = body_kind(exchange)
    body = exchange.response
    for chunks in [[body], [bytearray(body)], [memoryview(body)], *random_splits(body, "t")]:
        a = run(getattr(py, kind), chunks)
        b = run(getattr(c, kind), chunks)
        assert (exact(a[0]), a[1], a[2]) == (exact(b[0]), b[1], b[2])


GZIPPED = [ex for ex in EXCHANGES if ex.response_gz is not None]


@pytest.mark.parametrize("ex", GZIPPED, ids=[ex.id for ex in GZIPPED])
def test_gzip_exchange_through_decompressor(framing: Any, ex: Exchange) -> None:
    assert ex.response_gz is not None
    kind = body_kind(ex)
    expected = contents(run(getattr(framing, kind), [ex.response])[0])
    for chunks in random_splits(ex.response_gz, ex.id, count=4):
        d = Decompressor(ex.header("content-encoding") or "gzip")
        plain = [d.feed(c) for c in chunks] + [d.close()]
        assert d.error is None
        got, err, _, _ = run(getattr(framing, kind), plain)
        assert err is None
        if kind == BODY:
            assert b"".join(bytes(p) for p in got) == ex.response
        else:
            assert contents(got) == expected


# --- SSE --------------------------------------------------------------------------------


def sse(framing: Any, chunks: list, **kw: Any) -> list[tuple]:
    frames, error, _, _ = run(framing.SSEFramer, chunks, **kw)
    assert error is None
    return [(e.event, bytes(e.data), e.id, e.retry) for e in frames]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings(framing: Any, eol: bytes) -> None:
    body = eol.join([b"event: a", b"data: 1", b"", b"data: 2", b"data: 3", b"", b""])
    expected = [("a", b"1", None, None), (None, b"2\n3", None, None)]
    assert sse(framing, [body]) == expected
    assert sse(framing, ones(body)) == expected


def test_sse_cr_and_lf_split_across_chunks(framing: Any) -> None:
    # The CR ends one chunk, its LF starts the next: one line break, not two.
    chunks = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert sse(framing, chunks) == [(None, b"a\nb", None, None)]
    # A bare CR at a chunk end followed by a blank line.
    assert sse(framing, [b"data: a\r", b"\r"]) == [(None, b"a", None, None)]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_sse_bom_split(framing: Any, cut: int) -> None:
    body = b"\xef\xbb\xbfdata: x\n\n"
    assert sse(framing, [body[:cut], body[cut:]]) == [(None, b"x", None, None)]
    assert sse(framing, ones(body)) == [(None, b"x", None, None)]


def test_sse_bom_only_at_stream_start(framing: Any) -> None:
    # A second BOM is part of the field name, so the line is an unknown field.
    body = b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n"
    assert sse(framing, [body]) == [(None, b"y", None, None)]
    # A BOM after the first event is no BOM either.
    body = b"data: x\n\n\xef\xbb\xbfdata: y\n\n"
    assert sse(framing, [body]) == [(None, b"x", None, None)]


def test_sse_false_bom_start(framing: Any) -> None:
    # Bytes held back as a possible BOM belong to the first line after all.
    for chunks in ([b"\xef\xbb", b"X: 1\ndata: z\n\n"], [b"\xef", b"\xbbX\n\ndata: z\n\n"]):
        assert sse(framing, chunks) == [(None, b"z", None, None)]
    frames, error, truncated, _ = run(framing.SSEFramer, [b"\xef\xbb"])
    assert (frames, error, truncated) == ([], None, True)


def test_sse_fields(framing: Any) -> None:
    body = (
        b": comment\n"
        b"data\n"  # no colon: the field name is the whole line, value empty
        b"\n"
        b"data:no space\n"
        b"data:  two spaces\n"
        b"\n"
        b"event: e\n"
        b"id: 7\n"
        b"retry: 1500\n"
        b"unknown: field\n"
        b"data: x\n"
        b"\n"
        b"data: keeps id\n"
        b"\n"
        b"id: bad\x00id\n"
        b"retry: 12x\n"
        b"retry:\n"
        b"data: nul id ignored\n"
        b"\n"
        b"id\n"
        b"data: empty id\n"
        b"\n"
        b"event: only\n"
        b"\n"
        b"data: name reset\n"
        b"\n"
        b"retry: 99999999999999999999\n"
        b"data: huge retry ignored\n"
        b"\n"
        b"event:\n"
        b"data: empty name\n"
        b"\n"
    )
    expected = [
        (None, b"", None, None),
        (None, b"no space\n two spaces", None, None),
        ("e", b"x", "7", 1500),
        (None, b"keeps id", "7", None),
        (None, b"nul id ignored", "7", None),
        (None, b"empty id", "", None),
        (None, b"name reset", "", None),
        (None, b"huge retry ignored", "", None),
        (None, b"empty name", "", None),
    ]
    assert sse(framing, [body]) == expected
    assert sse(framing, ones(body)) == expected


def test_sse_error_event_and_done_are_ordinary(framing: Any) -> None:
    body = b'event: error\ndata: {"error": {}}\n\ndata: [DONE]\n\n'
    assert sse(framing, [body]) == [
        ("error", b'{"error": {}}', None, None),
        (None, b"[DONE]", None, None),
    ]


def test_sse_utf8_names_and_invalid_utf8(framing: Any) -> None:
    body = "event: é€\nid: ☃\ndata: ü\n\n".encode() + b"event: \xff\ndata: \xfe\n\n"
    assert sse(framing, [body]) == [
        ("é€", "ü".encode(), "☃", None),
        ("\ufffd", b"\xfe", "☃", None),
    ]


def test_sse_truncated_event_discarded(framing: Any) -> None:
    for body, truncated in [
        (b"data: a\n\ndata: b\n", True),
        (b"data: a\n\ndata: b", True),
        (b"data: a\n\n: trailing comment", True),
        (b"data: a\n\nevent: x\n", False),
        (b"data: a\n\n", False),
        (b"", False),
    ]:
        frames, error, trunc, f = run(framing.SSEFramer, [body])
        assert [bytes(e.data) for e in frames] == [b"a"] * bool(body)
        assert (error, trunc) == (None, truncated), body
        assert f.close() == []


def test_sse_zero_copy(framing: Any) -> None:
    f = framing.SSEFramer()
    chunk = b"data: one\n\ndata: two\ndata: lines\n\ndata: open"
    a, b = f.feed(chunk)
    assert isinstance(a.data, memoryview) and a.data.obj is chunk
    assert isinstance(b.data, bytes) and b.data == b"two\nlines"
    (c,) = f.feed(b"\n\n")
    assert isinstance(c.data, bytes) and c.data == b"open"
    # The blank line in the next chunk: the data line must have been copied.
    buf = bytearray(b"data: reused\n")
    assert f.feed(buf) == []
    buf[:] = b"XXXXXXXXXXXXX"
    (d,) = f.feed(b"\n")
    assert d.data == b"reused"


def test_sse_accepts_buffers(framing: Any) -> None:
    body = b"data: x\n\n"
    for chunk in (body, bytearray(body), memoryview(body), memoryview(b"??" + body)[2:]):
        assert sse(framing, [chunk]) == [(None, b"x", None, None)]
    with pytest.raises(TypeError):
        framing.SSEFramer().feed("text")


def test_sse_max_frame(framing: Any) -> None:
    body = b"data: 1\n\n" + b"data: " + b"x" * 20 + b"\n\n"
    for chunks in ([body], ones(body)):
        frames, error, _, f = run(framing.SSEFramer, chunks, max_frame=16)
        assert [bytes(e.data) for e in frames] == [b"1"]
        assert error == "SSE line longer than 16 bytes (max_frame) at offset 9"
        assert f.feed(b"data: more\n\n") == [] and f.close() == []
    # Lines within the bound whose joined data is not.
    body = b"data: 12345678\ndata: 12345678\n\n"
    for chunks in ([body], ones(body)):
        frames, error, _, _ = run(framing.SSEFramer, chunks, max_frame=16)
        assert frames == []
        assert error == "SSE event data longer than 16 bytes (max_frame) at offset 15"
    # Exactly max_frame is fine.
    assert sse(framing, [b"data: " + b"x" * 10 + b"\n\n"], max_frame=16) == [
        (None, b"x" * 10, None, None)
    ]
    with pytest.raises(ValueError, match="max_frame must be >= 1, got 0"):
        framing.SSEFramer(max_frame=0)


# An event stream model: events made of fields, comments and line endings.

LINE_TEXT = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12
)
EOLS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[tuple]]:
    lines: list[str] = []
    expected: list[tuple] = []
    last_id: str | None = None
    for _ in range(draw(st.integers(0, 6))):
        event = draw(st.none() | LINE_TEXT)
        data = draw(st.lists(LINE_TEXT, max_size=3))
        eid = draw(st.none() | LINE_TEXT.filter(lambda s: "\0" not in s))
        retry = draw(st.none() | st.integers(0, 10**9))
        # Data lines keep their order; the other fields and comments go anywhere.
        fields = [
            f"data: {d}" if d[:1] == " " else draw(st.sampled_from(["data: ", "data:"])) + d
            for d in data
        ]
        others = [f"event: {event}"] if event is not None else []
        if eid is not None:
            others.append(f"id: {eid}")
            last_id = eid
        if retry is not None:
            others.append(f"retry: {retry}")
        others += [":" + draw(LINE_TEXT) for _ in range(draw(st.integers(0, 2)))]
        for other in others:
            fields.insert(draw(st.integers(0, len(fields))), other)
        lines += [*fields, ""]
        if data:
            expected.append((event or None, "\n".join(data).encode(), last_id, retry))
    out = ["\ufeff"] if draw(st.booleans()) else []
    prev = ""
    for line in lines:
        eol = draw(EOLS)
        if prev == "\r" and eol == "\n" and line == "":
            eol = "\r\n"  # CR then an LF-terminated blank line would read as one CRLF
        out += [line, eol]
        prev = eol
    return "".join(out).encode(), expected


@SETTINGS
@given(stream=sse_streams(), cuts=st.lists(st.integers(1, 400), max_size=8))
def test_sse_model_round_trip(
    both_framings: tuple[Any, Any], stream: tuple, cuts: list[int]
) -> None:
    body, expected = stream
    for twin in both_framings:
        if twin is None:
            continue
        got = run(twin.SSEFramer, split_at(body, cuts))
        assert got[1] is None and not got[2]
        assert [(e.event, bytes(e.data), e.id, e.retry) for e in got[0]] == expected


# --- NDJSON -------------------------------------------------------------------------------


def test_ndjson_lines(framing: Any) -> None:
    body = b'{"a":1}\n\n  \r\n{"b":2}\r\n{"c":3}'
    expected = [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    for chunks in ([body], ones(body), [bytearray(body)]):
        frames, error, truncated, _ = run(framing.NDJSONFramer, chunks)
        assert [bytes(x) for x in frames] == expected
        assert (error, truncated) == (None, False)
    f = framing.NDJSONFramer()
    (a,) = f.feed(b'{"a":1}\n{"b"')
    assert isinstance(a, memoryview)
    (c,) = f.feed(b":2}\n")
    assert isinstance(c, bytes) and c == b'{"b":2}'
    assert f.feed(b"  ") == [] and f.close() == []


def test_ndjson_max_frame(framing: Any) -> None:
    body = b"1234\n" + b"x" * 9 + b"\n"
    for chunks in ([body], ones(body)):
        frames, error, _, _ = run(framing.NDJSONFramer, chunks, max_frame=8)
        assert [bytes(x) for x in frames] == [b"1234"]
        assert error == "NDJSON line longer than 8 bytes (max_frame) at offset 5"
    assert run(framing.NDJSONFramer, [b"x" * 8 + b"\n"], max_frame=8)[1] is None


# --- JSON array ---------------------------------------------------------------------------


def test_json_array_elements(framing: Any) -> None:
    body = b' [{"a": "x,]}\\"{"}\n,\r\n [1, [2]] ,"s\\\\" , 3 ,{}]\n '
    expected = [b'{"a": "x,]}\\"{"}', b"[1, [2]]", b'"s\\\\"', b"3", b"{}"]
    for chunks in ([body], ones(body), *random_splits(body, "array", 5)):
        frames, error, truncated, _ = run(framing.JSONArrayFramer, chunks)
        assert [bytes(x) for x in frames] == expected
        assert (error, truncated) == (None, False)
    assert run(framing.JSONArrayFramer, [b"[]"])[:3] == ([], None, False)


@pytest.mark.parametrize(
    ("body", "frames", "error"),
    [
        (b"{}", [], "JSON array: unexpected byte 0x7b at offset 0"),
        (b"[1,]", [b"1"], "JSON array: unexpected byte 0x5d at offset 3"),
        (b"[,1]", [], "JSON array: unexpected byte 0x2c at offset 1"),
        (b"[1}]", [], "JSON array: unexpected byte 0x7d at offset 2"),
        (b"[1] x", [b"1"], "JSON array: trailing data at offset 4"),
        (b"[1, {", [b"1"], "JSON array: truncated at offset 5 (no closing ']')"),
        (b"", [], "JSON array: truncated at offset 0 (no closing ']')"),
    ],
)
def test_json_array_errors(framing: Any, body: bytes, frames: list, error: str) -> None:
    for chunks in ([body], ones(body)):
        got, err, _, f = run(framing.JSONArrayFramer, chunks)
        assert [bytes(x) for x in got] == frames
        assert err == error
        assert f.feed(b"[1]") == [] and f.close() == []


def test_json_array_max_frame(framing: Any) -> None:
    body = b'[1, "123456789", 2]'
    for chunks in ([body], ones(body)):
        got, err, _, _ = run(framing.JSONArrayFramer, chunks, max_frame=8)
        assert [bytes(x) for x in got] == [b"1"]
        assert err == "JSON array element longer than 8 bytes (max_frame) at offset 4"
    # An element of exactly max_frame bytes, trailing spaces included, passes.
    assert run(framing.JSONArrayFramer, [b'["123456"  ]'], max_frame=10)[1] is None


# --- JSON body ----------------------------------------------------------------------------


def test_json_body_pieces(framing: Any) -> None:
    f = framing.JSONBodyFramer()
    chunk = b'{"a": "}\\"", "b": [1, {}]'
    (piece,) = f.feed(chunk)
    assert isinstance(piece, memoryview) and piece.obj is chunk and not f.complete
    assert [bytes(p) for p in f.feed(b"}\n")] == [b"}\n"]
    assert f.complete
    assert [bytes(p) for p in f.feed(b"  ")] == [b"  "]
    assert f.close() == [] and f.error is None and f.complete


@pytest.mark.parametrize(
    ("body", "error", "complete"),
    [
        (b'{"a": 1} x', "JSON body: trailing data at offset 9", True),
        (b'{"a": 1}{}', "JSON body: trailing data at offset 8", True),
        (b'{"a": [1}', "JSON body: truncated at offset 9", False),
        (b"", "JSON body: truncated at offset 0", False),
        (b"  ", "JSON body: truncated at offset 2", False),
        (b"}", "JSON body: unexpected byte 0x7d at offset 0", False),
        (b'"str"', None, True),
        (b" 42 ", None, True),
        (b"42", None, True),
        (b"true", None, True),
    ],
)
def test_json_body_end(framing: Any, body: bytes, error: str | None, complete: bool) -> None:
    for chunks in ([body], ones(body)):
        got, err, truncated, f = run(framing.JSONBodyFramer, chunks)
        assert err == error
        assert f.complete is complete
        assert truncated is (error is not None and "truncated" in error)
        # A piece stops before the byte in error; truncation keeps everything.
        cut = int(error.rsplit(" ", 1)[1]) if error and "truncated" not in error else len(body)
        assert b"".join(bytes(p) for p in got) == body[:cut]


# --- AWS event stream -----------------------------------------------------------------------


def bedrock() -> Exchange:
    return next(ex for ex in EXCHANGES if ex.id == "bedrock/converse_stream_nova")


def test_eventstream_all_header_types(framing: Any) -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = b"".join(
        [
            es_header("t", TRUE),
            es_header("f", FALSE),
            es_header("b", BYTE, -2),
            es_header("s", SHORT, -300),
            es_header("i", INT, 70000),
            es_header("l", LONG, -(2**40)),
            es_header("raw", BYTES, b"\x00\xff"),
            es_header(":event-type", STRING, "chunk"),
            es_header("ts", TIMESTAMP, 1_700_000_000_123),
            es_header("huge-ts", TIMESTAMP, 2**62),
            es_header("u", UUID, u),
        ]
    )
    msg = es_message(headers, b'{"x":1}')
    (m,) = run(framing.EventStreamFramer, [msg])[0]
    assert m.error is None and bytes(m.payload) == b'{"x":1}'
    assert m.headers == {
        "t": True,
        "f": False,
        "b": -2,
        "s": -300,
        "i": 70000,
        "l": -(2**40),
        "raw": b"\x00\xff",
        ":event-type": "chunk",
        "ts": datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        "huge-ts": 2**62,
        "u": u,
    }
    assert (m.event_type, m.message_type, m.exception_type) == ("chunk", None, None)


def test_eventstream_exception_message(framing: Any) -> None:
    msg = es_message(
        es_header(":exception-type", STRING, "throttlingException")
        + es_header(":message-type", STRING, "exception"),
        b'{"message":"slow down"}',
    )
    (m,) = run(framing.EventStreamFramer, [es_event("messageStart", b"{}") + msg])[0][1:]
    assert (m.message_type, m.exception_type, m.event_type) == (
        "exception",
        "throttlingException",
        None,
    )


def test_eventstream_bad_message_crc_continues(framing: Any) -> None:
    body = bytearray(bedrock().response)
    first_len = struct.unpack_from(">I", body)[0]
    body[first_len - 6] ^= 0x01  # inside the first message's payload
    for chunks in ([bytes(body)], random_splits(bytes(body), "crc", 1)[0]):
        frames, error, truncated, _ = run(framing.EventStreamFramer, chunks)
        assert error is None and not truncated
        assert len(frames) == bedrock().meta["expected"]["stream"]["frames"]
        bad = frames[0]
        assert bad.error is not None
        assert bad.error.startswith("eventstream: message CRC mismatch at offset 0 (expected 0x")
        assert bad.headers == {}
        assert all(m.error is None for m in frames[1:])


def test_eventstream_bad_prelude_crc_stops(framing: Any) -> None:
    body = bytearray(bedrock().response)
    second = struct.unpack_from(">I", body)[0]
    body[second + 3] ^= 0x40  # the second message's total length
    for chunks in ([bytes(body)], ones(bytes(body))):
        frames, error, _, f = run(framing.EventStreamFramer, chunks)
        assert [m.error for m in frames[:1]] == [None]
        assert len(frames) == 2
        assert frames[1].payload == b"" and frames[1].headers == {}
        assert frames[1].error == error
        assert error is not None
        assert error.startswith(
            f"eventstream: prelude CRC mismatch at offset {second} (expected 0x"
        )
        assert f.feed(bytes(body)) == []


def test_eventstream_malformed_headers(framing: Any) -> None:
    for headers, where, reason in [
        (b"\x05ab", 0, "header runs past the header block"),
        (es_header("ok", TRUE) + b"\x01x\x0c", 4, "unknown header value type 12"),
        (b"\x01x\x07\x00\x09abc", 0, "header runs past the header block"),
        (b"\x01x\x09" + b"\x00" * 15, 0, "header runs past the header block"),
    ]:
        body = es_message(headers, b"p") + es_event("next", b"{}")
        frames, error, _, _ = run(framing.EventStreamFramer, [body])
        assert error is None
        assert frames[0].error == f"eventstream: malformed header at offset {12 + where}: {reason}"
        assert bytes(frames[0].payload) == b"p"
        assert frames[1].event_type == "next"


def test_eventstream_lengths(framing: Any) -> None:
    msg = es_event("a", b"x" * 40)
    frames, error, _, _ = run(framing.EventStreamFramer, [msg], max_frame=len(msg) - 1)
    assert frames == []
    over = f"declares {len(msg)} bytes, over max_frame ({len(msg) - 1})"
    assert error == f"eventstream: message at offset 0 {over}"
    assert run(framing.EventStreamFramer, [msg], max_frame=len(msg))[1] is None
    # A good CRC over impossible lengths.
    prelude = struct.pack(">II", 15, 0)
    bad = prelude + struct.pack(">I", zlib.crc32(prelude)) + b"...."
    error = run(framing.EventStreamFramer, [msg + bad])[1]
    assert (
        error
        == f"eventstream: message at offset {len(msg)} has impossible lengths (total 15, headers 0)"
    )
    assert framing.EventStreamFramer().max_frame == 16 * 1024 * 1024
    assert framing.SSEFramer().max_frame == 8 * 1024 * 1024


def test_eventstream_truncated(framing: Any) -> None:
    msg = es_event("a", b"{}")
    for cut, need in [(5, 12), (20, len(msg))]:
        frames, error, truncated, _ = run(framing.EventStreamFramer, [msg + msg[:cut]])
        assert len(frames) == 1 and truncated
        assert (
            error == f"eventstream: truncated message at offset {len(msg)} ({cut} of {need} bytes)"
        )


def test_eventstream_zero_copy(framing: Any) -> None:
    msg = es_event("a", b"{}")
    f = framing.EventStreamFramer()
    chunk = msg + msg[:10]
    (a,) = f.feed(chunk)
    assert isinstance(a.payload, memoryview) and a.payload.obj is chunk
    (b,) = f.feed(msg[10:])
    assert isinstance(b.payload, bytes) and b.payload == b"{}"


# --- both twins on random input -----------------------------------------------------------


@st.composite
def es_bodies(draw: st.DrawFn) -> bytes:
    msgs = []
    for _ in range(draw(st.integers(0, 4))):
        headers = b""
        for _ in range(draw(st.integers(0, 3))):
            vtype = draw(st.integers(0, 9))
            name = draw(st.sampled_from([":event-type", ":message-type", ":exception-type", "x"]))
            v: Any = None
            if vtype in (BYTES, STRING):
                v = draw(st.binary(max_size=8))
            elif vtype == UUID:
                v = uuid.UUID(bytes=draw(st.binary(min_size=16, max_size=16)))
            elif vtype in (BYTE, SHORT, INT, LONG, TIMESTAMP):
                bits = {BYTE: 8, SHORT: 16, INT: 32, LONG: 64, TIMESTAMP: 64}[vtype]
                v = draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
            headers += es_header(name, vtype, v)
        msgs.append(es_message(headers, draw(st.binary(max_size=20))))
    body = bytearray(b"".join(msgs))
    for _ in range(draw(st.integers(0, 2))):
        if body:
            body[draw(st.integers(0, len(body) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(body) + draw(st.binary(max_size=4))


GARBAGE = st.binary(max_size=300) | st.lists(
    st.sampled_from(
        [
            b"data:",
            b"event: error",
            b"\r",
            b"\n",
            b"\r\n",
            b":",
            b"[",
            b"]",
            b"{",
            b"}",
            b'"',
            b"\\",
            b",",
            b" ",
            b"x",
            b"\xef\xbb\xbf",
            b"id:\x00",
        ]
    ),
    max_size=60,
).map(b"".join)


def differential(
    both: tuple[Any, Any], kind: str, body: bytes, cuts: list[int], max_frame: int | None
) -> None:
    py, c = both
    kw = {} if max_frame is None else {"max_frame": max_frame}
    chunks = split_at(body, cuts)
    a = run(getattr(py, kind), chunks, **kw)
    if c is not None:
        b = run(getattr(c, kind), chunks, **kw)
        assert (exact(a[0]), a[1], a[2]) == (exact(b[0]), b[1], b[2])
    whole = run(getattr(py, kind), [body], **kw)
    # The chunking never changes the frames (JSON body pieces are the chunks) or the error.
    assert (a[1], a[2]) == (whole[1], whole[2])
    if kind != BODY:
        assert contents(a[0]) == contents(whole[0])


@SETTINGS
@given(
    kind=st.sampled_from([SSE, NDJSON, ARRAY, BODY, ES]),
    body=GARBAGE,
    cuts=st.lists(st.integers(1, 300), max_size=10),
    max_frame=st.none() | st.integers(1, 40),
)
def test_garbage_twins_agree(
    both_framings: tuple[Any, Any], kind: str, body: bytes, cuts: list[int], max_frame: int | None
) -> None:
    differential(both_framings, kind, body, cuts, max_frame)


@SETTINGS
@given(
    body=es_bodies(),
    cuts=st.lists(st.integers(1, 300), max_size=10),
    max_frame=st.none() | st.integers(16, 80),
)
def test_eventstream_twins_agree(
    both_framings: tuple[Any, Any], body: bytes, cuts: list[int], max_frame: int | None
) -> None:
    differential(both_framings, ES, body, cuts, max_frame)


def test_native_crc32_matches_zlib() -> None:
    if pure.SSEFramer is pure.SSEFramerPy:
        pytest.skip("compiled twin not loaded")
    from llmtap.core._framing import _crc32  # type: ignore[import-not-found]

    rnd = random.Random(5)
    for n in [0, 1, 7, 8, 9, 15, 16, 17, 1000, 4099]:
        data = rnd.randbytes(n)
        assert _crc32(data) == zlib.crc32(data)


@pytest.mark.parametrize(
    ("status", "ctype", "name", "cls"),
    [
        (200, "text/event-stream; charset=utf-8", "sse", "SSEFramer"),
        (200, "application/x-ndjson", "ndjson", "NDJSONFramer"),
        (200, "Application/Stream+JSON", "ndjson", "NDJSONFramer"),
        (200, "application/vnd.amazon.eventstream", "eventstream", "EventStreamFramer"),
        (200, "application/json", "json", "JSONBodyFramer"),
        (200, "", "json", "JSONBodyFramer"),
        (400, "text/event-stream", "json", "JSONBodyFramer"),
    ],
)
def test_framer_for(status: int, ctype: str, name: str, cls: str) -> None:
    got, framer = pure.framer_for(status, ctype)
    assert got == name
    # The compiled class when it is built, like every public name of the module.
    assert type(framer) is getattr(pure, cls)
    assert framer.feed(b"") == [] and framer.error is None


def test_sse_cr_only_stream_is_linear(framing: Any) -> None:
    # Regression: the compiled twin searched for LF from every line start, which is
    # quadratic when a stream uses bare CRs only (1 MB took minutes).
    body = b"data: x\r\r" * 100_000
    start = time.perf_counter()
    frames = framing.SSEFramer().feed(body)
    assert len(frames) == 100_000
    assert time.perf_counter() - start < 5
