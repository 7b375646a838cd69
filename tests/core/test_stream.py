"""StreamScanner on both twins: framings, folds, recorded exchanges, bad input, memory."""

from __future__ import annotations

import base64
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonoracle import chunks, documents, encoded, expected, path_sets, same

from llmtap.core.paths import PathSet

SETTINGS = settings(
    max_examples=int(os.environ.get("HYP_N", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CHAT = PathSet(
    {
        "model": "model",
        "id": "id",
        "in": "usage.prompt_tokens",
        "finish": "choices[*].finish_reason",
        "idx": "choices[*].index",
        "text": "?choices[*].delta.content",
        "err": "error.message",
    }
)


def run(
    cls: Any, framing: str, paths: PathSet, *pieces: bytes, close: bool = True, **kw: Any
) -> Any:
    ss = cls(framing, paths, **kw)
    for p in pieces:
        ss.feed(p)
    if close:
        ss.close()
    return ss


def state(ss: Any) -> tuple:
    return (
        repr(ss.values),
        tuple(ss.first_index),
        ss.docs,
        ss.error,
        ss.doc_errors,
        ss.error_event,
        ss.done_sentinel,
        ss.truncated,
    )


def sse(*docs: Any, event: str | None = None) -> bytes:
    out = b""
    for d in docs:
        if event:
            out += f"event: {event}\n".encode()
        data = d if isinstance(d, bytes) else json.dumps(d).encode()
        out += b"data: " + data + b"\n\n"
    return out


def chat_chunk(
    content: str | None = None, finish: str | None = None, index: int = 0, **top: Any
) -> dict:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "model": "gpt-x",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        **top,
    }


# -- SSE ------------------------------------------------------------------------------


def test_sse_chat_stream(StreamScanner: Any) -> None:
    body = (
        sse(chat_chunk(""), chat_chunk("Hel"), chat_chunk("lo"), chat_chunk(finish="stop"))
        + sse({"id": "chatcmpl-1", "model": "gpt-x", "choices": [], "usage": {"prompt_tokens": 9}})
        + b": keepalive comment\n\ndata: [DONE]\n\n"
    )
    ss = run(StreamScanner, "sse", CHAT, body, folds={"finish": ("keyed", "idx")})
    assert ss.values == ["gpt-x", "chatcmpl-1", 9, ["stop"], [0], True, None]
    assert ss.first_index == [0, 0, 4, 3, 0, 1, -1]
    assert (ss.docs, ss.done_sentinel, ss.error, ss.doc_errors, ss.truncated) == (
        5,
        True,
        None,
        0,
        False,
    )


def test_output_started(StreamScanner: Any) -> None:
    text, fin = CHAT.index("text"), CHAT.index("finish")
    for framing, body in (
        ("sse", sse(chat_chunk(""))),
        ("json", json.dumps(chat_chunk("")).encode()),
    ):
        ss = run(StreamScanner, framing, CHAT, body, close=False)
        assert not ss.output_started([text, fin])
        more = sse(chat_chunk("hi")) if framing == "sse" else b""
        if framing == "json":  # one document: start over with output in it
            ss = run(
                StreamScanner, framing, CHAT, json.dumps(chat_chunk("hi")).encode(), close=False
            )
        ss.feed(more)
        assert ss.output_started([fin, text]) and not ss.output_started([fin])
        assert not ss.output_started([])
        with pytest.raises(IndexError):
            ss.output_started([len(CHAT)])
        with pytest.raises(IndexError):
            ss.output_started([-1])


def test_sse_last_fold_keeps_last_non_null_list(StreamScanner: Any) -> None:
    body = sse(chat_chunk(finish="stop"), {"choices": []}, chat_chunk())
    ss = run(StreamScanner, "sse", CHAT, body)
    assert ss.values[3] == ["stop"]


def test_sse_crlf_split_everywhere_and_blank_data(StreamScanner: Any) -> None:
    body = sse(chat_chunk("a")).replace(b"\n", b"\r\n") + b"data:\r\n\r\ndata:  \r\n\r\n"
    whole = state(run(StreamScanner, "sse", CHAT, body))
    for i in range(len(body) + 1):
        assert state(run(StreamScanner, "sse", CHAT, body[:i], body[i:])) == whole
    assert whole[2] == 1  # blank data is no document


def test_sse_bad_document_does_not_stop_the_stream(StreamScanner: Any) -> None:
    body = sse(chat_chunk("a"), b'{"model": "x",}', chat_chunk(finish="stop"), b"[1,")
    ss = run(StreamScanner, "sse", CHAT, body)
    assert ss.error == "document 1: invalid JSON: unexpected byte 0x7d at offset 14"
    assert (ss.docs, ss.doc_errors) == (4, 2)
    assert ss.values[0] == "gpt-x" and ss.values[3] == ["stop"]


def test_sse_error_event(StreamScanner: Any) -> None:
    body = sse(chat_chunk("a")) + sse({"error": {"message": "overloaded"}}, event="error")
    ss = run(StreamScanner, "sse", CHAT, body)
    assert ss.error_event == "error"
    assert ss.values[6] == "overloaded"
    assert ss.error is None


def test_sse_truncated_event_is_discarded(StreamScanner: Any) -> None:
    ss = run(StreamScanner, "sse", CHAT, sse(chat_chunk("a")) + b'data: {"model": "late"}\n')
    assert ss.truncated
    assert (ss.docs, ss.values[0]) == (1, "gpt-x")


# -- NDJSON / json_array / json -------------------------------------------------------------


def test_ndjson(StreamScanner: Any) -> None:
    body = b'{"model": "a", "done": false}\n\n{"model": "b", "done": true}'
    ps = PathSet({"m": "model", "d": "done", "first": "model"})
    ss = run(StreamScanner, "ndjson", ps, body, folds={"first": "first"})
    assert (ss.values, ss.docs, ss.first_index) == (["b", True, "a"], 2, [0, 0, 0])


def test_json_array_documents(StreamScanner: Any) -> None:
    body = (
        b'[{"candidates": [{"finishReason": null}]}\n,\r\n'
        b'{"candidates": [{"finishReason": "STOP"}],\n"usageMetadata": {"totalTokenCount": 7}}]'
    )
    ps = PathSet({"f": "candidates[*].finishReason", "u": "usageMetadata.totalTokenCount"})
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        ss = run(StreamScanner, "json_array", ps, *pieces)
        assert (ss.values, ss.first_index, ss.docs, ss.error) == ([["STOP"], 7], [1, 1], 2, None)


def test_json_array_errors(StreamScanner: Any) -> None:
    ss = run(StreamScanner, "json_array", CHAT, b'[{"model": "a"}, {"model": "b"')
    assert (ss.error, ss.truncated, ss.docs, ss.doc_errors) == (
        "invalid JSON: truncated at offset 30",
        True,
        2,
        1,
    )
    assert ss.values[0] == "a"  # the completed element was folded
    ss = run(StreamScanner, "json_array", CHAT, b'{"model": "a"}')
    assert ss.error == "invalid JSON: unexpected byte 0x7b at offset 0"
    assert not ss.truncated


def test_json_body(StreamScanner: Any) -> None:
    body = json.dumps(chat_chunk("hi", "stop") | {"usage": {"prompt_tokens": 3}}).encode()
    ss = run(StreamScanner, "json", CHAT, body[:20], close=False)
    assert (ss.docs, ss.values[1]) == (1, "chatcmpl-1")  # values are live mid-body
    ss.feed(body[20:])
    ss.close()
    assert ss.values == ["gpt-x", "chatcmpl-1", 3, ["stop"], [0], True, None]
    assert (ss.first_index, ss.error, ss.truncated) == ([0, 0, 0, 0, 0, 0, -1], None, False)


@pytest.mark.parametrize(
    ("body", "error", "truncated"),
    [
        (b"", None, False),
        (b" \n ", None, False),
        (b'{"model": "a"', "invalid JSON: truncated at offset 13", True),
        (b'{"model": "a"} x', "invalid JSON: trailing byte 0x78 at offset 15", False),
        (b"<html>", "invalid JSON: unexpected byte 0x3c at offset 0", False),
    ],
)
def test_json_body_errors(
    StreamScanner: Any, body: bytes, error: str | None, truncated: bool
) -> None:
    ss = run(StreamScanner, "json", CHAT, body)
    assert (ss.error, ss.truncated, ss.doc_errors) == (error, truncated, int(error is not None))
    assert ss.docs == int(bool(body.strip()))


# -- eventstream --------------------------------------------------------------------------


def es_message(payload: bytes, **headers: str) -> bytes:
    hdr = b""
    for name, value in headers.items():
        n = (":" + name.replace("_", "-")).encode()
        v = value.encode()
        hdr += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(hdr) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdr))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + hdr + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


def test_eventstream_converse(StreamScanner: Any) -> None:
    ps = PathSet({"text": "?delta.text", "stop": "stopReason", "out": "usage.outputTokens"})
    body = (
        es_message(b'{"role":"assistant"}', event_type="messageStart", message_type="event")
        + es_message(
            b'{"delta":{"text":"Hi"}}', event_type="contentBlockDelta", message_type="event"
        )
        + es_message(b'{"stopReason":"end_turn"}', event_type="messageStop", message_type="event")
        + es_message(b'{"usage":{"outputTokens":5}}', event_type="metadata", message_type="event")
    )
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        ss = run(StreamScanner, "eventstream", ps, *pieces)
        assert (ss.values, ss.first_index, ss.docs, ss.error) == (
            [True, "end_turn", 5],
            [1, 2, 3],
            4,
            None,
        )


def test_eventstream_exception_and_bad_crc(StreamScanner: Any) -> None:
    ps = PathSet({"msg": "message", "text": "?delta.text"})
    bad = bytearray(es_message(b'{"delta":{"text":"x"}}', event_type="contentBlockDelta"))
    bad[-5] ^= 1  # payload byte: the message CRC no longer matches
    body = (
        bytes(bad)
        + es_message(b'{"delta":{"text":"ok"}}', event_type="contentBlockDelta")
        + es_message(
            b'{"message":"slow down"}',
            message_type="exception",
            exception_type="throttlingException",
        )
    )
    ss = run(StreamScanner, "eventstream", ps, body)
    assert ss.error is not None and ss.error.startswith(
        "document 0: eventstream: message CRC mismatch"
    )
    assert (ss.docs, ss.doc_errors, ss.error_event) == (3, 1, "throttlingException")
    assert ss.values == ["slow down", True]


def test_eventstream_b64_payloads(StreamScanner: Any) -> None:
    ps = PathSet({"type": "type", "stop": "delta.stop_reason", "text": "?delta.text"})

    def chunk(doc: dict, pad: bool = True) -> bytes:
        b64 = base64.b64encode(json.dumps(doc).encode()).decode()
        payload = {"bytes": b64 if pad else b64.rstrip("="), "p": "abc"}
        return es_message(json.dumps(payload).encode(), event_type="chunk", message_type="event")

    body = (
        chunk({"type": "message_start"})
        + chunk({"type": "content_block_delta", "delta": {"text": "Hi"}}, pad=False)
        + es_message(b'{"bytes": "!!!!"}', event_type="chunk")
        + es_message(b'{"type": "plain"}', event_type="chunk")
        + chunk({"type": "message_delta", "delta": {"stop_reason": "end_turn"}})
    )
    ss = run(StreamScanner, "eventstream", ps, body, b64_field="bytes")
    assert ss.values == ["message_delta", "end_turn", True]
    assert ss.first_index == [0, 4, 1]
    assert (ss.docs, ss.doc_errors, ss.error) == (5, 1, 'document 2: invalid base64 in "bytes"')


@pytest.mark.parametrize(
    "text",
    ["QQ", "QQ==", "QUI", "QUI=", "QUJD", "", "Q", "QQ=", "QUJD=", "QQ===", "Q Q=", "QQ==QQ=="],
)
def test_base64_rules_match_between_twins(both_streams: Any, text: str) -> None:
    ps = PathSet({"a": "a"})
    payload = json.dumps({"bytes": text}).encode()
    results = []
    for cls in both_streams:
        if cls is not None:
            ss = run(cls, "eventstream", ps, es_message(payload), b64_field="bytes")
            results.append(state(ss))
    assert len(set(results)) == 1, results


# -- folds ----------------------------------------------------------------------------------


def test_keyed_fold_orders_by_key_and_falls_back_to_position(StreamScanner: Any) -> None:
    ps = PathSet({"f": "c[*].f", "k": "c[*].k"})
    body = b"\n".join(
        json.dumps(d).encode()
        for d in [
            {"c": [{"k": 2, "f": None}, {"k": "b", "f": "x"}]},
            {"c": [{"k": 0, "f": "zero"}, {"f": "pos1"}]},
            {"c": [{"k": 2, "f": "two"}, {"k": "a"}, {"k": 1.5, "f": "pos2"}]},
            {"c": []},
        ]
    )
    ss = run(StreamScanner, "ndjson", ps, body, folds={"f": ("keyed", "k")})
    # keys: 0, 1 (position), 2, then "a", "b"; 1.5 is not a key: position 2
    assert ss.values[0] == ["zero", "pos1", "pos2", None, "x"]


def test_keyed_fold_is_bounded(StreamScanner: Any) -> None:
    ps = PathSet({"f": "c[*].f", "k": "c[*].k"})
    body = b"\n".join(json.dumps({"c": [{"k": i, "f": i}]}).encode() for i in range(10))
    ss = run(StreamScanner, "ndjson", ps, body, folds={"f": ("keyed", "k")}, max_items=3)
    assert ss.values[0] == [0, 1, 2]


def test_first_and_presence_folds(StreamScanner: Any) -> None:
    ps = PathSet({"id": "id", "last": "id", "p": "?x"})
    body = b'{"id": null, "x": ""}\n{"id": "a", "x": [1]}\n{"id": "b", "x": null}\n'
    ss = run(StreamScanner, "ndjson", ps, body, folds={"id": "first"})
    assert (ss.values, ss.first_index) == (["a", "b", True], [1, 1, 1])


@pytest.mark.parametrize(
    "folds",
    [
        {"nope": "last"},
        {"model": "sum"},
        {"text": "last"},
        {"model": ("keyed", "idx")},
        {"finish": ("keyed", "model")},
        {"finish": ("keyed", "nope")},
    ],
)
def test_bad_folds(StreamScanner: Any, folds: dict) -> None:
    with pytest.raises(ValueError):
        StreamScanner("sse", CHAT, folds=folds)


def test_bad_arguments(StreamScanner: Any) -> None:
    with pytest.raises(ValueError):
        StreamScanner("xml", CHAT)
    with pytest.raises(TypeError):
        StreamScanner("sse", {"m": "model"})
    with pytest.raises(ValueError):
        StreamScanner("sse", CHAT, b64_field="bytes")
    ss = StreamScanner("json", CHAT)
    with pytest.raises(TypeError):
        ss.feed("text")


def test_reused_scanners_start_clean(StreamScanner: Any) -> None:
    # the compiled twin recycles the scanner (and fold buffers) of finished streams
    # per PathSet: whatever the previous one saw must not leak into the next
    ps = PathSet({"f": "c[*].f", "k": "c[*].k", "m": "m", "p": "?p"})
    keyed = b'{"c": [{"k": 1, "f": "a"}, {"k": 0, "f": "b"}], "m": "x", "p": 1}\n'
    for _ in range(3):
        ss = run(StreamScanner, "ndjson", ps, keyed, folds={"f": ("keyed", "k")})
        assert ss.values == [["b", "a"], [1, 0], "x", True]
        del ss
        ss = run(StreamScanner, "ndjson", ps, b'{"c": [{"f": "z"}]}\n')
        assert (ss.values, ss.first_index) == ([["z"], None, None, False], [0, -1, -1, -1])
        del ss
        ss = run(StreamScanner, "json_array", ps, b'[{"m": "y"}]', max_str=1)
        assert (ss.values, ss.docs) == ([None, None, "y", False], 1)
        del ss
        ss = run(StreamScanner, "json", ps, b'{"m": "long"}', max_str=2)
        assert ss.values == [None, None, "lo", False]
        del ss


def test_recycling_survives_gc_and_interpreter_exit() -> None:
    # Pooled scanners and their PathSet form reference cycles; the collector may
    # clear them in any order (regression: a scanner read its cleared trie on dealloc).
    code = textwrap.dedent(
        """
        import gc
        from llmtap.core import PathSet, StreamScanner
        keep = []
        for round in range(50):
            ps = PathSet({"m": "model", "f": "c[*].f", "k": "c[*].k"})
            for _ in range(6):
                ss = StreamScanner("sse", ps, folds={"f": ("keyed", "k")})
                ss.feed(b'data: {"model": "x", "c": [{"k": 1, "f": "a"}]}\\n\\n')
                keep.append(ss) if round % 7 == 0 else None
            del ps, ss
            gc.collect()
        print("ok", len(keep))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.split()[:1]) == (0, ["ok"]), r.stderr[-2000:]


def test_recycling_skips_scanners_the_collector_cleared() -> None:
    # Regression: a StreamScanner freed by the cyclic collector parked its scanner in
    # the pool, then the collector cleared that scanner too (it was condemned in the
    # same collection); the next StreamScanner of the PathSet got it and crashed.
    code = textwrap.dedent(
        """
        import gc
        from llmtap.core import PathSet, StreamScanner
        ps = PathSet({"m": "model", "f": "c[*].f", "k": "c[*].k"})
        for _ in range(20):
            holder = []  # older than the scanners: the collector clears it first
            ss = StreamScanner("sse", ps, folds={"f": ("keyed", "k")})
            ss.feed(b'data: {"model": "x", "c": [{"k": 1, "f": "a"}]}\\n\\n')
            holder += [ss, holder]
            del ss, holder
            gc.collect()
            ss = StreamScanner("sse", ps)
            ss.feed(b'data: {"model": "y"}\\n\\n')
            assert ss.values[0] == "y", ss.values
            del ss
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.split()[:1]) == (0, ["ok"]), r.stderr[-2000:]


def test_feed_after_close_is_ignored(StreamScanner: Any) -> None:
    ss = run(StreamScanner, "sse", CHAT, sse(chat_chunk("a")))
    before = state(ss)
    ss.feed(sse(chat_chunk(finish="stop")))
    ss.close()
    assert state(ss) == before


# -- recorded exchanges -------------------------------------------------------------------

GENERIC = PathSet(
    {
        "model": "model",
        "id": "id",
        "type": "type",
        "in": "usage.prompt_tokens",
        "out": "usage.completion_tokens",
        "total": "usage.total_tokens",
        "cached": "usage.prompt_tokens_details.cached_tokens",
        "a_in": "message.usage.input_tokens",
        "a_out": "usage.output_tokens",
        "a_model": "message.model",
        "stop": "delta.stop_reason",
        "finish": "choices[*].finish_reason",
        "idx": "choices[*].index",
        "text": "?choices[*].delta.content",
        "a_text": "?delta.text",
        "cand": "candidates[*].finishReason",
        "g_total": "usageMetadata.totalTokenCount",
        "stopReason": "stopReason",
        "err": "error.message",
        "err_type": "error.type",
        "resp_status": "response.status",
        "done": "done",
        "eval": "eval_count",
    }
)
FOLDS = {"finish": ("keyed", "idx"), "id": "first"}


def framing_for(exchange: Any) -> str:
    """The framing a gateway would pick from the response status and content type.

    Some recordings lost their headers: then the body is sniffed the same way."""
    ct = (exchange.header("content-type") or "").lower()
    body = exchange.response
    if not 200 <= exchange.meta["status"] < 300:
        return "json"
    if not ct:
        head = body.lstrip()[:6]
        if head.startswith((b"data:", b"event:")):
            return "sse"
        if body[:1] == b"\x00":
            return "eventstream"
        ct = "application/json"
    if "text/event-stream" in ct:
        return "sse"
    if "ndjson" in ct or "stream+json" in ct:
        return "ndjson"
    if "vnd.amazon.eventstream" in ct:
        return "eventstream"
    if "application/json" in ct and body.lstrip()[:1] == b"[":
        return "json_array"
    return "json"


def scan_exchange(cls: Any, exchange: Any, pieces: list[bytes]) -> Any:
    framing = framing_for(exchange)
    kw: dict[str, Any] = {"folds": FOLDS}
    if framing == "eventstream" and "invoke" in exchange.path.name:
        kw["b64_field"] = "bytes"
    return run(cls, framing, GENERIC, *pieces, **kw)


def test_recorded_exchange_twins_agree(both_streams: Any, exchange: Any) -> None:
    body = exchange.response
    rnd = random.Random(exchange.id)
    splits = [
        [body],
        [body[i : i + 1] for i in range(len(body))],
        *(chunks(body, rnd.sample(range(len(body) + 1), min(5, len(body) + 1))) for _ in range(3)),
    ]
    results = set()
    for cls in both_streams:
        if cls is None:
            continue
        for pieces in splits:
            results.add(state(scan_exchange(cls, exchange, pieces)))
    assert len(results) == 1, results
    ss = scan_exchange(both_streams[0], exchange, [body])
    assert ss.error is None, ss.error
    assert not ss.truncated


def test_recorded_exchange_values(StreamScanner: Any, exchange: Any) -> None:
    """Check against what the recording's INDEX says the body carries."""
    ss = scan_exchange(StreamScanner, exchange, [exchange.response])
    v = dict(zip(GENERIC.names, ss.values, strict=True))
    exp = exchange.meta["expected"]
    stream = exp.get("stream") or {}
    framing = framing_for(exchange)
    if framing == "sse" and exchange.shape.startswith(("openai_chat", "azure", "groq", "mistral")):
        assert v["model"] == exp["model"]
        got = [f for f in v["finish"] or [] if f is not None]
        assert got == [f for f in exp["finish_reasons"] if f is not None]
        if stream.get("first_output_event_index") is not None and v["text"]:
            assert ss.first_index[GENERIC.index("text")] == stream["first_output_event_index"]
        assert ss.done_sentinel == bool(stream.get("done_sentinel", True))
    if framing == "sse" and exchange.shape == "anthropic_messages":
        assert v["a_model"] == exp["model"]
        assert v["stop"] == exp["finish_reasons"][0]
        assert v["a_out"] == exp["output_tokens"]
        if v["a_text"]:
            assert ss.first_index[GENERIC.index("a_text")] == stream["first_output_event_index"]
    if framing in ("json", "json_array") and exchange.meta["status"] == 200:
        assert ss.docs == (stream.get("elements", 1) if framing == "json_array" else 1)
        if exp.get("model") and exchange.shape.startswith(("openai", "azure", "groq", "mistral")):
            assert v["model"] == exp["model"]
    if framing == "sse" and "events" in stream:
        assert ss.docs + ss.done_sentinel == stream["events"]
    if framing == "eventstream" and "frames" in stream:
        assert ss.docs == stream["frames"]
    if framing == "ndjson" and "lines" in stream:
        assert ss.docs == stream["lines"]
    error = exp.get("error")
    if exchange.meta["status"] >= 400 and isinstance(error, dict) and "message" in error:
        body = json.loads(exchange.response)
        if isinstance(body.get("error"), dict) and "message" in body["error"]:
            assert v["err"] == error["message"]


# -- random streams -------------------------------------------------------------------------


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[Any], dict[str, str]]:
    docs = draw(st.lists(documents, min_size=1, max_size=5))
    paths = draw(path_sets(docs[0]))
    body = b""
    for d in docs:
        if draw(st.booleans()):
            body += b": comment\n"
        if draw(st.booleans()):
            body += b"event: " + draw(st.sampled_from([b"message", b"error", b"delta"])) + b"\n"
        text = draw(encoded(d)).strip()
        for line in text.split(b"\n"):  # a pretty-printed document spans several data lines
            body += b"data: " + line + b"\n"
        body += draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
    if draw(st.booleans()):
        body += b"data: [DONE]\n\n"
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    return body.replace(b"\n", eol) if eol != b"\n" else body, docs, paths


@SETTINGS
@given(sse_streams(), st.lists(st.integers(0, 400), max_size=6), st.booleans())
def test_random_sse_streams(both_streams: Any, case: Any, cuts: list[int], bytewise: bool) -> None:
    body, docs, paths = case
    ps = PathSet(paths)
    pieces = [body[i : i + 1] for i in range(len(body))] if bytewise else chunks(body, cuts)
    results = []
    for cls in both_streams:
        if cls is None:
            continue
        ss = run(cls, "sse", ps, *pieces)
        results.append(state(ss))
        assert (ss.error, ss.docs) == (None, len(docs))
        # the last fold against the oracle, slot by slot
        per_doc = [expected(d, list(paths.values())) for d in docs]
        for s, kind in enumerate(ps.kinds):
            col = [row[s] for row in per_doc]
            if kind == 2:
                want: Any = any(col)
            else:
                good = [
                    c for c in col if c is not None and (kind == 0 or any(x is not None for x in c))
                ]
                want = good[-1] if good else None
            assert same(ss.values[s], want), (s, ss.values[s], want)
    assert len(set(results)) == 1


choice = st.fixed_dictionaries(
    {},
    optional={
        "k": st.one_of(
            st.integers(-2, 5), st.sampled_from(["a", "b", "é"]), st.none(), st.just(1.5)
        ),
        "f": st.one_of(st.none(), st.sampled_from(["stop", "length", ""]), st.integers(0, 3)),
    },
)
chat_docs = st.lists(
    st.fixed_dictionaries({}, optional={"c": st.one_of(st.lists(choice, max_size=4), st.none())}),
    min_size=1,
    max_size=6,
)


def keyed_model(docs: list[dict], max_items: int) -> list | None:
    """The keyed fold of docs/design.md, written the obvious way."""
    merged: dict = {}
    seen = False
    for d in docs:
        lst = d.get("c")
        if not isinstance(lst, list):
            continue
        seen = True
        for j, e in enumerate(lst[:max_items]):
            k = e.get("k")
            key = k if type(k) in (int, str) else j
            if key not in merged:
                if len(merged) >= max_items:
                    continue
                merged[key] = None
            if e.get("f") is not None:
                merged[key] = e["f"]
    if not seen:
        return None
    order = sorted(merged, key=lambda k: (0, k) if isinstance(k, int) else (1, k))
    return [merged[k] for k in order]


@SETTINGS
@given(chat_docs, st.sampled_from(["ndjson", "sse", "json_array"]), st.sampled_from([256, 2]))
def test_keyed_fold_model(
    both_streams: Any, docs: list[dict], framing: str, max_items: int
) -> None:
    ps = PathSet({"f": "c[*].f", "k": "c[*].k"})
    texts = [json.dumps(d).encode() for d in docs]
    if framing == "ndjson":
        body = b"\n".join(texts)
    elif framing == "sse":
        body = b"".join(b"data: " + t + b"\n\n" for t in texts)
    else:
        body = b"[" + b",".join(texts) + b"]"
    results = []
    for cls in both_streams:
        if cls is None:
            continue
        ss = run(cls, framing, ps, body, folds={"f": ("keyed", "k")}, max_items=max_items)
        assert ss.values[0] == keyed_model(docs, max_items)
        results.append(state(ss))
    assert len(set(results)) == 1


@st.composite
def stream_garbage(draw: st.DrawFn) -> bytes:
    soup = st.sampled_from(list(b'{}[]":,\\ \n\r0123456789-.etrufalsndaDONE:[]\xff\x00\x07:'))
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    return bytes(draw(st.lists(soup, max_size=200)))


@SETTINGS
@given(
    st.sampled_from(["sse", "ndjson", "json_array", "json", "eventstream"]),
    stream_garbage(),
    st.lists(st.integers(0, 200), max_size=5),
)
def test_garbage_never_raises_and_twins_agree(
    both_streams: Any, framing: str, data: bytes, cuts: list[int]
) -> None:
    results = []
    for cls in both_streams:
        if cls is None:
            continue
        ss = run(cls, framing, CHAT, *chunks(data, cuts), folds={"finish": ("keyed", "idx")})
        results.append(state(ss))
    assert len(set(results)) == 1, results


def test_eventstream_garbage_after_good_messages(both_streams: Any) -> None:
    body = (
        es_message(b'{"model": "m"}', event_type="x") + b"\x00\x00\x00\x20garbage-garbage-garbage"
    )
    results = {state(run(c, "eventstream", CHAT, body)) for c in both_streams if c is not None}
    assert len(results) == 1
    (one,) = results
    assert one[0].startswith("['m'") and one[3] is not None


# -- memory --------------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    from llmtap.core import PathSet
    from llmtap.core._stream import StreamScanner

    ps = PathSet({"model": "model", "in": "usage.prompt_tokens", "idx": "data[*].index",
                  "emb": "data[*].embedding", "p": "?data[*].object"})
    item = b'{"object": "embedding", "index": 0, "embedding": [' + b", ".join(
        b"-0.0123456789" for _ in range(1000)) + b"]}"
    chunk = 64 * 1024
    total = 104 * 1024 * 1024  # 100 MiB after the warm-up

    def body():
        yield b'{"object": "list", "model": "text-embedding-3-small", "data": ['
        sent = 0
        while sent < total:
            yield item + b", "
            sent += len(item) + 2
        yield item + b'], "usage": {"prompt_tokens": 42, "total_tokens": 42}}'

    def pieces():
        buf = b""
        for part in body():
            buf += part
            while len(buf) >= chunk:
                yield buf[:chunk]
                buf = buf[chunk:]
        yield buf

    ss = StreamScanner("json", ps)
    it = pieces()
    for _ in range(32):  # warm up: first allocations, caches
        ss.feed(next(it))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fed = 0
    for p in it:
        ss.feed(p)
        fed += len(p)
    ss.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    v = ss.values
    print(fed, peak - base, ss.error, v[0], v[1], len(v[2]), v[4])
    """
)


@pytest.mark.skipif(bool(os.environ.get("LLMTAP_NO_EXTENSIONS")), reason="native twin only")
def test_hundred_megabyte_body_in_bounded_memory() -> None:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    fed, growth_kib = int(out[0]), int(out[1])
    assert fed > 100 * 1024 * 1024
    assert out[2:] == ["None", "text-embedding-3-small", "42", "256", "True"]
    assert growth_kib < 1024, f"peak RSS grew by {growth_kib} KiB"
