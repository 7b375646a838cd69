"""The per-exchange state machine without gRPC: phases, exits, mode policy."""

from __future__ import annotations

from typing import Any

import pytest
from extproc_helpers import (
    FakeExt,
    FakeTelemetry,
    header_map,
    parse_response,
    pb,
    req_body,
    req_headers,
    req_trailers,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorded import EXCHANGES

from llmtap.gateway import modes
from llmtap.gateway.exchange_state import CUT_REASONS, ExchangeState
from llmtap.gateway.extproc_wire import ProcessingMode, decode_request
from llmtap.gateway.modes import TransportOptions, envoy_covers, response_mode

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPECTED_ONEOF = {
    2: "request_headers",
    3: "response_headers",
    4: "request_body",
    5: "response_body",
    6: "request_trailers",
    7: "response_trailers",
}


def make(
    opts: TransportOptions | None = None, **kw: Any
) -> tuple[ExchangeState, FakeTelemetry, FakeExt]:
    tel = kw.pop("tel", None) or FakeTelemetry()
    ext = kw.pop("ext", None) or FakeExt()
    return ExchangeState(opts or TransportOptions(), tel, ext, {}), tel, ext


def feed(state: ExchangeState, raw: bytes, now: int) -> bytes | None:
    answer = state.on_message(decode_request(raw), now)
    state.drain()
    return answer


# -- a script: a prefix of the full message sequence, then an ending --------------------


@st.composite
def scripts(draw: st.DrawFn) -> dict:
    obs = draw(st.booleans())
    req = draw(st.lists(st.binary(min_size=0, max_size=40), max_size=4))
    resp = draw(st.lists(st.binary(min_size=0, max_size=40), max_size=5))
    end = draw(st.sampled_from(["body_eos", "trailers", "headers_eos"]))
    protocol = draw(st.sampled_from([None, modes.STREAMED]))
    first = pb().ep.ProcessingRequest(observability_mode=obs)
    first.request_headers.headers.CopyFrom(
        header_map([(":path", "/v1/chat/completions"), (":method", "POST")])
    )
    first.request_headers.end_of_stream = not req
    if protocol is not None:
        first.protocol_config.request_body_mode = modes.STREAMED
        first.protocol_config.response_body_mode = protocol
    msgs: list[bytes] = [first.SerializeToString()]
    for i, c in enumerate(req):
        msgs.append(req_body(c, eos=i == len(req) - 1, obs=obs, response=False))
    if end == "headers_eos":
        msgs.append(req_headers([(":status", "200")], eos=True, obs=obs, response=True))
        body: list[bytes] = []
    else:
        msgs.append(req_headers([(":status", "200")], obs=obs, response=True))
        body = resp or [b""]
        for i, c in enumerate(body):
            msgs.append(req_body(c, eos=end == "body_eos" and i == len(body) - 1, obs=obs))
        if end == "trailers":
            msgs.append(req_trailers([("x-t", "1")], obs=obs))
    cut = draw(st.integers(1, len(msgs)))
    return dict(
        obs=obs,
        msgs=msgs[:cut],
        whole=cut == len(msgs),
        req=req,
        body=body,
        reason=draw(st.sampled_from(["eof", "cancelled", "timeout", "shutdown"])),
    )


@SETTINGS
@given(scripts())
def test_every_exit_ends_the_exchange_exactly_once(s: dict) -> None:
    state, tel, ext = make()
    answers = []
    t = 1_000
    times = []
    for raw in s["msgs"]:
        t += 1_000
        times.append(t)
        answers.append(feed(state, raw, t))
    state.close(s["reason"], t + 1_000)
    state.close("cancelled", t + 2_000)  # a second close changes nothing
    state.drain()
    ex = ext.exchanges[0]
    assert len(ex.finished) == 1  # the fake also asserts this
    assert tel.started == 1 and len(tel.ends) == 1 and len(tel.finished) == 1
    outcome = tel.finished[0]
    assert outcome == "complete" or outcome in CUT_REASONS
    if s["whole"]:
        assert outcome == "complete" and ex.finished == [None]
    else:
        assert outcome != "complete" or _complete_without_body(s)
    if outcome != "complete":
        want = (
            s["reason"]
            if s["reason"] in ("timeout", "shutdown")
            else ("incomplete" if s["obs"] else "cancelled")
        )
        assert outcome == want
    # bytes delivered in order, whatever was sent before the end
    sent = [decode_request(m) for m in s["msgs"]]
    assert bytes(ex.request_body) == b"".join(bytes(r.body) for r in sent if r.kind == 4)
    assert bytes(ex.response_body) == b"".join(bytes(r.body) for r in sent if r.kind == 5)
    # one answer per message in normal mode, the matching one; none in observability mode
    if s["obs"]:
        assert answers == [None] * len(answers)
    else:
        assert [parse_response(a).WhichOneof("response") for a in answers] == [
            EXPECTED_ONEOF[r.kind] for r in sent
        ]
    # TTFT: the receipt time of the first non-empty response chunk
    end = tel.ends[0]
    chunks = [(tm, r) for tm, r in zip(times, sent, strict=True) if r.kind == 5 and len(r.body)]
    if chunks:
        assert end["first_chunk_ns"] == end["start_ns"] + (chunks[0][0] - times[0])
    else:
        assert end["first_chunk_ns"] is None
    assert end["start_ns"] <= end["end_ns"]


def _complete_without_body(s: dict) -> bool:
    # Response headers with eos=True was the last message sent.
    last = decode_request(s["msgs"][-1])
    return last.kind == 3 and last.end_of_stream


@SETTINGS
@given(
    st.lists(st.sampled_from(range(8)), max_size=12),
    st.booleans(),
    st.sampled_from(["eof", "cancelled", "timeout", "shutdown"]),
)
def test_any_message_order_never_raises(kinds: list[int], obs: bool, reason: str) -> None:
    state, tel, ext = make()
    msgs = {
        0: b"\x80",  # undecodable
        1: pb().ep.ProcessingRequest(observability_mode=obs).SerializeToString(),
        2: req_headers([(":path", "/v1/messages")], obs=obs),
        3: req_headers([(":status", "500")], obs=obs, response=True),
        4: req_body(b"{", obs=obs, response=False),
        5: req_body(b'{"a"', obs=obs),
        6: req_trailers([], obs=obs, response=False),
        7: req_trailers([], obs=obs),
    }
    for i, k in enumerate(kinds):
        feed(state, msgs[k], 10 * (i + 1))
        if state.abandon:
            break
    state.close(reason, 10_000)
    assert len(tel.finished) == (1 if ext.exchanges else 0)
    assert len(tel.ends) == (1 if ext.exchanges else 0)
    assert all(len(ex.finished) == 1 for ex in ext.exchanges)


# -- specific phases ---------------------------------------------------------------------


def test_observability_mode_reads_protocol_config() -> None:
    # Envoy configured response_body_mode NONE: response headers end the exchange.
    state, tel, _ = make()
    r = pb().ep.ProcessingRequest(observability_mode=True)
    r.request_headers.headers.headers.add(key=":path", raw_value=b"/v1/chat/completions")
    r.protocol_config.response_body_mode = 0
    r.protocol_config.request_body_mode = 1
    feed(state, r.SerializeToString(), 1)
    feed(state, req_headers([(":status", "200")], obs=True, response=True), 2)
    state.close("eof", 3)
    assert tel.finished == ["complete"]


def test_observability_with_streamed_bodies_needs_the_end() -> None:
    state, tel, _ = make()
    r = pb().ep.ProcessingRequest(observability_mode=True)
    r.request_headers.headers.headers.add(key=":path", raw_value=b"/v1/chat/completions")
    r.protocol_config.response_body_mode = 1
    feed(state, r.SerializeToString(), 1)
    feed(state, req_headers([(":status", "200")], obs=True, response=True), 2)
    state.close("eof", 3)
    assert tel.finished == ["incomplete"]


def test_trailers_only_exchange_with_envoy_usage() -> None:
    opts = TransportOptions(envoy_token_usage=True)
    state, tel, ext = make(opts, tel=FakeTelemetry(sampled=False))
    feed(state, req_headers([(":path", "/v1/chat/completions")]), 1)
    answer = feed(state, req_headers([(":status", "200")], response=True), 2)
    m = parse_response(answer).mode_override
    assert (m.response_body_mode, m.response_trailer_mode) == (modes.NONE, modes.SEND)
    tu = pb().tu.TokenUsage(model="gpt-4o-mini", extraction_status=1)
    tu.input_tokens.value = 7
    tu.output_tokens.value = 3
    tu.input_token_details.cached_tokens.value = 2
    tu.output_token_details.reasoning_tokens.value = 1
    answer = feed(state, req_trailers([], usage=tu), 3)
    usage = ext.exchanges[0].usage
    assert (
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cached_input_tokens,
        usage.reasoning_tokens,
    ) == ("gpt-4o-mini", 7, 3, None, 2, 1)
    md = parse_response(answer).dynamic_metadata.fields["llmtap"].struct_value.fields
    assert md["total_tokens"].number_value == 10
    assert tel.finished == ["complete"] and tel.ends[0]["first_chunk_ns"] is None


def test_trailers_only_exchange_without_trailers_is_complete() -> None:
    opts = TransportOptions(envoy_token_usage=True)
    state, tel, _ = make(opts, tel=FakeTelemetry(sampled=False))
    feed(state, req_headers([(":path", "/v1/messages")]), 1)
    feed(state, req_headers([(":status", "200")], response=True), 2)
    state.close("cancelled", 3)
    assert tel.finished == ["complete"]


def test_failed_extraction_passes_only_the_model() -> None:
    state, _, ext = make(TransportOptions(envoy_token_usage=True))
    feed(state, req_headers([(":path", "/v1/messages")]), 1)
    feed(state, req_headers([(":status", "200")], response=True), 2)
    tu = pb().tu.TokenUsage(model="claude", extraction_status=3)
    tu.input_tokens.value = 99
    feed(state, req_trailers([], usage=tu), 3)
    u = ext.exchanges[0].usage
    assert (u.model, u.input_tokens) == ("claude", None)


def test_provider_hint_from_dynamic_metadata() -> None:
    state, _, ext = make()
    r = pb().ep.ProcessingRequest()
    r.request_headers.headers.headers.add(key=":path", raw_value=b"/v1/chat/completions")
    r.request_headers.headers.headers.add(key=":authority", raw_value=b"llm.internal:8080")
    r.metadata_context.filter_metadata["llmtap"].update({"provider": "groq"})
    feed(state, r.SerializeToString(), 1)
    info = ext.exchanges[0].info
    assert (info.hint, info.authority, info.path) == (
        "groq",
        "llm.internal:8080",
        "/v1/chat/completions",
    )


def test_provider_hint_from_attributes() -> None:
    state, _, ext = make()
    r = pb().ep.ProcessingRequest()
    r.request_headers.headers.headers.add(key=":path", raw_value=b"/v1/chat/completions")
    r.attributes["envoy.filters.http.ext_proc"].update({"llmtap.provider": "mistral"})
    feed(state, r.SerializeToString(), 1)
    assert ext.exchanges[0].info.hint == "mistral"
    state, _, ext = make(TransportOptions(hint_namespace=""))
    feed(state, r.SerializeToString(), 1)
    assert ext.exchanges[0].info.hint is None


def test_last_chunk_is_answered_with_dynamic_metadata_only_when_enabled() -> None:
    for ns in ("llmtap", ""):
        state, _, _ = make(TransportOptions(metadata_namespace=ns))
        feed(state, req_headers([(":path", "/v1/chat/completions")]), 1)
        feed(state, req_headers([(":status", "200")], response=True), 2)
        ext_answer = feed(state, req_body(b"x", eos=True), 3)
        resp = parse_response(ext_answer)
        # FakeRecord has no tokens: no metadata either way, but the answer is right.
        assert resp.WhichOneof("response") == "response_body"
        assert state.ended


# -- mode policy -------------------------------------------------------------------------

COVERED = {
    "openai_chat_completions",
    "azure_openai",
    "groq",
    "mistral",
    "openai_responses",
    "anthropic_messages",
    "gemini",
    "vertex_ai",
    "ollama_openai_compat",
    "openai_compatible_other",
}


@pytest.mark.parametrize("ex", EXCHANGES, ids=[e.id for e in EXCHANGES])
def test_envoy_coverage_by_path(ex: Any) -> None:
    path = ex.meta["url_path"]
    want = ex.shape in COVERED and not path.endswith("/embeddings")
    assert envoy_covers(path) == want


def test_response_mode_without_envoy_usage_always_streams() -> None:
    opts = TransportOptions()
    for configured, want in (
        (-1, None),
        (modes.STREAMED, None),
        (modes.NONE, modes.STREAMED),
        (modes.BUFFERED, modes.STREAMED),
    ):
        mode, body = response_mode(
            opts,
            path="/v1/chat/completions",
            status=200,
            content_encoding="",
            sampled=False,
            configured_response=configured,
        )
        assert body is True
        assert (mode.response_body_mode if mode else None) == want


@pytest.mark.parametrize(
    ("path", "status", "encoding", "sampled", "stream_body"),
    [
        ("/v1/chat/completions", 200, "", False, False),
        ("/v1/chat/completions", 200, "identity", False, False),
        ("/v1/chat/completions", 200, "", True, False),  # sampled: Envoy 1.40 would stall
        ("/v1/chat/completions", 200, "gzip", False, True),  # Envoy skips encoded bodies
        ("/v1/chat/completions", 429, "", False, True),  # error type is in the body
        ("/model/x/converse-stream", 200, "", False, True),  # Bedrock: not covered
        ("/api/chat", 200, "", False, True),  # Ollama native
        ("/v1/embeddings", 200, "", False, True),
        ("/v1/messages?beta=true", 200, "", False, False),
    ],
)
def test_response_mode_with_envoy_usage(path, status, encoding, sampled, stream_body) -> None:
    opts = TransportOptions(envoy_token_usage=True)
    mode, body = response_mode(
        opts,
        path=path,
        status=status,
        content_encoding=encoding,
        sampled=sampled,
        configured_response=modes.NONE,
    )
    assert body is stream_body
    assert mode is not None
    if stream_body:
        assert mode.response_body_mode == modes.STREAMED
    else:
        assert (mode.response_body_mode, mode.response_trailer_mode) == (modes.NONE, modes.SEND)


def test_sampled_bodies_can_be_streamed_on_request() -> None:
    opts = TransportOptions(envoy_token_usage=True, stream_sampled_bodies=True)
    mode, body = response_mode(
        opts,
        path="/v1/responses",
        status=200,
        content_encoding="",
        sampled=True,
        configured_response=modes.NONE,
    )
    assert body is True and mode == ProcessingMode(response_body_mode=modes.STREAMED)
    mode, body = response_mode(
        opts,
        path="/v1/responses",
        status=200,
        content_encoding="",
        sampled=True,
        configured_response=modes.STREAMED,
    )
    assert body is True and mode is None


def test_options_from_settings() -> None:
    class Settings:
        listen = "unix:/tmp/x.sock"
        workers = 3
        envoy_token_usage = True
        unrelated = "ignored"

    o = TransportOptions.from_settings(Settings())
    assert (o.listen, o.workers, o.envoy_token_usage, o.exchange_timeout) == (
        "unix:/tmp/x.sock",
        3,
        True,
        TransportOptions().exchange_timeout,
    )
    assert TransportOptions.from_settings(None) == TransportOptions()
