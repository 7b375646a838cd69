"""The servicer over a real grpc.aio channel on loopback, driven like Envoy drives it."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from extproc_helpers import (
    FakeExt,
    FakeTelemetry,
    Harness,
    LoopThread,
    exchange_messages,
    parse_response,
    pb,
    req_body,
    req_headers,
    req_trailers,
)
from recorded import EXCHANGES

from llmtap.gateway.modes import TransportOptions
from llmtap.gateway.protowire import field_len

KINDS = {
    2: "request_headers",
    3: "response_headers",
    4: "request_body",
    5: "response_body",
    6: "request_trailers",
    7: "response_trailers",
}


@pytest.fixture(scope="module")
def lt():
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def plain_server(lt):
    h = Harness(lt, TransportOptions(listen="127.0.0.1:0", exchange_timeout=30))
    yield h
    h.close()


@pytest.fixture
def h(plain_server):
    plain_server.reset()
    return plain_server


def oneof(answer: bytes) -> str:
    return parse_response(answer).WhichOneof("response")


def expected_oneofs(messages: list[bytes]) -> list[str]:
    return [
        KINDS[
            pb().ep.ProcessingRequest.FromString(m).WhichOneof("request")
            and pb()
            .ep.ProcessingRequest.DESCRIPTOR.fields_by_name[
                pb().ep.ProcessingRequest.FromString(m).WhichOneof("request")
            ]
            .number
        ]
        for m in messages
    ]


# -- every recorded exchange, both modes -----------------------------------------------


def check_delivery(h, exchange, response: bytes, *, normal: bool, answers: list[bytes], msgs):
    tel, ext = h.tel, h.ext
    h.wait_for(lambda: len(tel.finished) == 1)
    assert len(ext.exchanges) == 1
    ex = ext.exchanges[0]
    # Bytes reach ext exactly, in order, whatever the chunking.
    assert bytes(ex.request_body) == (exchange.request or b"")
    assert ex.request_eos == (exchange.request is not None)
    assert bytes(ex.response_body) == response and ex.response_eos
    assert ex.status == exchange.meta["status"]
    assert ex.info.method == exchange.meta.get("method", "POST")
    assert ex.info.authority == exchange.meta["host"]
    assert ex.info.path.startswith(exchange.meta["url_path"])
    assert ex.finished == [None]
    # One span, complete, with consistent timing.
    assert tel.started == 1 and tel.finished == ["complete"]
    assert len(tel.ends) == 1
    end = tel.ends[0]
    assert end["http_status"] == exchange.meta["status"]
    assert end["record"].cut_short is None
    first = end["first_chunk_ns"]
    if response:
        assert first is not None and end["start_ns"] <= first <= end["end_ns"]
    else:
        assert first is None
    assert tel.parse_errors == []
    if normal:
        assert [oneof(a) for a in answers] == expected_oneofs(msgs)
    else:
        assert answers == []


def test_every_exchange_normal_mode(h, exchange) -> None:
    msgs, response = exchange_messages(exchange)
    answers = h.exchange(msgs, normal=True)
    check_delivery(h, exchange, response, normal=True, answers=answers, msgs=msgs)


def test_every_exchange_observability_mode(h, exchange) -> None:
    msgs, response = exchange_messages(exchange, obs=True)
    answers = h.exchange(msgs, normal=False)
    check_delivery(h, exchange, response, normal=False, answers=answers, msgs=msgs)


GZIPPED = [e for e in EXCHANGES if (e.path / "response.gz.bin").exists()]


@pytest.mark.parametrize("gzipped", GZIPPED, ids=[e.id for e in GZIPPED])
def test_every_gzip_exchange(h, gzipped) -> None:
    exchange = gzipped
    for obs in (False, True):
        h.reset()
        msgs, response = exchange_messages(exchange, obs=obs, gz=True, trailers=True)
        answers = h.exchange(msgs, normal=not obs)
        assert h.ext.exchanges[0].response_headers["content-encoding"] == "gzip"
        h.wait_for(lambda: len(h.tel.finished) == 1)
        assert bytes(h.ext.exchanges[0].response_body) == response
        assert h.ext.exchanges[0].trailers == {}
        assert h.tel.finished == ["complete"] and len(h.tel.ends) == 1
        assert len(answers) == (0 if obs else len(msgs))


# -- answers ---------------------------------------------------------------------------


def test_request_headers_answer_injects_trace_context_and_strips_hint(h) -> None:
    h.reset(
        telemetry=FakeTelemetry(inject=[("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")])
    )
    msgs = [
        req_headers(
            [
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                (":authority", "api.openai.com"),
                ("x-llmtap-provider", "openai"),
                ("traceparent", "00-" + "c" * 32 + "-" + "d" * 16 + "-01"),
            ]
        )
    ]
    answers = h.exchange(msgs)
    common = parse_response(answers[0]).request_headers.response
    sets = [
        (o.header.key, o.header.raw_value.decode(), o.append_action)
        for o in common.header_mutation.set_headers
    ]
    assert sets == [("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01", 2)]
    assert list(common.header_mutation.remove_headers) == ["x-llmtap-provider"]
    # telemetry saw the client's headers (its parent context) and the hint reached ext
    assert h.tel.begins[0][0]["traceparent"].startswith("00-ccc")
    assert h.ext.exchanges[0].info.headers["x-llmtap-provider"] == "openai"


def test_grpc_metadata_reaches_telemetry(h) -> None:
    async def go():
        call = h.channel.stream_stream(
            "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
            request_serializer=None,
            response_deserializer=None,
        )(metadata=(("x-hop", "edge"), ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")))
        await call.write(req_headers([(":path", "/v1/messages"), (":method", "POST")]))
        await call.read()
        await call.done_writing()
        await call.code()

    h.lt.run(go())
    h.wait_for(lambda: h.tel.finished)
    md = h.tel.begins[0][1]
    assert md["x-hop"] == "edge" and md["traceparent"].startswith("00-111")


def test_not_an_llm_call_is_let_go(h) -> None:
    answers = h.exchange([req_headers([(":path", "/not-llm/health"), (":method", "GET")])])
    resp = parse_response(answers[0])
    m = resp.mode_override
    assert (
        m.response_header_mode,
        m.request_body_mode,
        m.response_body_mode,
        m.response_trailer_mode,
    ) == (2, 0, 0, 2)
    assert h.tel.begins == [] and h.tel.started == 0 and h.tel.ends == []


def test_request_body_skipped_when_ext_does_not_read_it(h) -> None:
    h.reset(ext=FakeExt(wants_body=False))
    r = pb().ep.ProcessingRequest()
    r.request_headers.headers.headers.add(key=":path", raw_value=b"/v1/embeddings")
    r.protocol_config.request_body_mode = 1
    r.protocol_config.response_body_mode = 1
    answers = h.exchange([r.SerializeToString()])
    m = parse_response(answers[0]).mode_override
    assert (m.request_body_mode, m.response_body_mode) == (0, 1)


def test_header_only_exchange(h) -> None:
    msgs = [
        req_headers([(":path", "/v1/models"), (":method", "POST")], eos=True),
        req_headers([(":status", "204")], eos=True, response=True),
    ]
    h.exchange(msgs)
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["complete"] and h.tel.ends[0]["http_status"] == 204
    assert h.tel.ends[0]["first_chunk_ns"] is None


def test_no_response_at_all(h) -> None:
    # Envoy sent the request and closed the stream (local reply, client gone early).
    h.exchange(
        [
            req_headers([(":path", "/v1/chat/completions")]),
            req_body(b"{}", eos=True, response=False),
        ]
    )
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["cancelled"]
    assert h.ext.exchanges[0].finished == ["cancelled"]
    assert h.tel.ends[0]["http_status"] is None


def test_dynamic_metadata_on_the_last_answer(h) -> None:
    h.reset()
    tu = pb().tu.TokenUsage(model="gpt-4o", extraction_status=1)
    tu.input_tokens.value = 10
    tu.output_tokens.value = 5
    msgs = [
        req_headers([(":path", "/v1/chat/completions")]),
        req_headers([(":status", "200")], response=True),
        req_body(b"data: {}\n\n"),
        req_trailers([], usage=tu),
    ]
    answers = h.exchange(msgs)
    last = parse_response(answers[-1])
    assert last.WhichOneof("response") == "response_trailers"
    ns = last.dynamic_metadata.fields["llmtap"].struct_value.fields
    assert ns["input_tokens"].number_value == 10
    assert ns["output_tokens"].number_value == 5
    assert ns["total_tokens"].number_value == 15
    usage = h.ext.exchanges[0].usage
    assert (usage.model, usage.input_tokens, usage.output_tokens) == ("gpt-4o", 10, 5)


# -- failures inside llmtap never break the stream -------------------------------------


@pytest.mark.parametrize(
    "fail_on",
    [
        "recognise",
        "on_request_body",
        "on_response_headers",
        "on_response_body",
        "on_response_trailers",
        "finish",
    ],
)
def test_ext_failures_still_answer(h, exchange_for_failures, fail_on) -> None:
    h.reset(ext=FakeExt(fail_on=fail_on))
    msgs, _ = exchange_messages(exchange_for_failures, trailers=True)
    answers = h.exchange(msgs)
    assert [oneof(a) for a in answers] == expected_oneofs(msgs)
    h.wait_for(lambda: h.tel.finished or fail_on == "recognise")
    if fail_on == "recognise":
        assert h.tel.parse_errors == ["ext"] and h.tel.ends == []
        return
    assert "ext" in h.tel.parse_errors
    assert len(h.tel.finished) == 1
    if fail_on == "finish":
        assert h.tel.ends == [] and h.tel.finished == ["error"]
    else:
        assert len(h.tel.ends) == 1


@pytest.fixture
def exchange_for_failures():
    from recorded import EXCHANGES

    return next(
        e
        for e in EXCHANGES
        if e.id == "openai_chat_completions/stream_basic"
        or (e.shape == "openai_chat_completions" and e.meta.get("streaming"))
    )


def test_telemetry_failures_still_answer(h, exchange_for_failures) -> None:
    h.reset(telemetry=FakeTelemetry(fail=True))
    msgs, _ = exchange_messages(exchange_for_failures)
    answers = h.exchange(msgs)
    assert [oneof(a) for a in answers] == expected_oneofs(msgs)
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.parse_errors.count("telemetry") == 2  # begin and end
    assert len(h.tel.ends) == 1 and h.tel.finished == ["complete"]


def test_undecodable_message_of_known_kind_is_answered(h) -> None:
    broken = field_len(5, b"\x0a\x05ab")  # response_body whose chunk overruns
    msgs = [
        req_headers([(":path", "/v1/chat/completions")]),
        req_headers([(":status", "200")], response=True),
        broken,
        req_body(b"", eos=True),
    ]
    answers = h.exchange(msgs)
    assert [oneof(a) for a in answers] == [
        "request_headers",
        "response_headers",
        "response_body",
        "response_body",
    ]
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.parse_errors == ["wire"]
    assert h.tel.finished == ["protocol_error"]


def test_undecodable_message_of_unknown_kind_closes_the_stream(h) -> None:
    async def go():
        call = h.stream()
        await call.write(req_headers([(":path", "/v1/chat/completions")]))
        first = await call.read()
        await call.write(b"\x80")  # not even a field key
        rest = await call.read()
        code = await call.code()
        return first, rest, code

    first, rest, code = h.lt.run(go())
    assert oneof(first) == "request_headers"
    assert rest is grpc.aio.EOF and code == grpc.StatusCode.OK  # Envoy carries on alone
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["protocol_error"]


# -- cut short ---------------------------------------------------------------------------


def _mid_stream(obs: bool = False) -> list[bytes]:
    return [
        req_headers([(":path", "/v1/chat/completions"), (":method", "POST")], obs=obs),
        req_headers(
            [(":status", "200"), ("content-type", "text/event-stream")], response=True, obs=obs
        ),
        req_body(b'data: {"choices": []}\n\n', obs=obs),
        req_body(b'data: {"choices": [', obs=obs),
    ]


def test_envoy_resets_the_stream(h) -> None:
    async def go():
        call = h.stream()
        for m in _mid_stream():
            await call.write(m)
            await call.read()
        call.cancel()

    h.lt.run(go())
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["cancelled"]
    assert h.ext.exchanges[0].finished == ["cancelled"]
    assert len(h.tel.ends) == 1 and h.tel.ends[0]["record"].cut_short == "cancelled"
    assert h.tel.ends[0]["first_chunk_ns"] is not None


def test_client_disconnects(h) -> None:
    async def go():
        channel = grpc.aio.insecure_channel(h.target)
        call = h.stream(channel)
        for m in _mid_stream():
            await call.write(m)
            await call.read()
        await channel.close(grace=None)  # the TCP connection goes away

    h.lt.run(go())
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["cancelled"] and len(h.tel.ends) == 1


def test_observability_stream_closed_before_the_end_is_incomplete(h) -> None:
    h.exchange(_mid_stream(obs=True), normal=False)
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["incomplete"]
    assert h.ext.exchanges[0].finished == ["incomplete"]


def test_observability_reset_before_the_end_is_incomplete(h) -> None:
    async def go():
        call = h.stream()
        for m in _mid_stream(obs=True):
            await call.write(m)
        await asyncio.sleep(0.05)
        call.cancel()

    h.lt.run(go())
    h.wait_for(lambda: h.tel.finished)
    assert h.tel.finished == ["incomplete"] and len(h.tel.ends) == 1


def test_per_exchange_timeout(lt) -> None:
    tel = FakeTelemetry()
    h = Harness(lt, TransportOptions(listen="127.0.0.1:0", exchange_timeout=0.3), tel)
    try:

        async def go():
            call = h.stream()
            for m in _mid_stream():
                await call.write(m)
                await call.read()
            # Envoy would keep the stream open; llmtap gives up on its own.
            rest = await call.read()
            return rest, await call.code()

        rest, code = lt.run(go(), timeout=5)
        assert rest is grpc.aio.EOF and code == grpc.StatusCode.OK
        h.wait_for(lambda: tel.finished)
        assert tel.finished == ["timeout"] and len(tel.ends) == 1
        assert h.ext.exchanges[0].finished == ["timeout"]
    finally:
        h.close()


def test_shutdown_ends_open_exchanges(lt) -> None:
    tel = FakeTelemetry()
    h = Harness(lt, TransportOptions(listen="127.0.0.1:0", shutdown_grace=0.2), tel)
    calls = []

    async def open_streams():
        for _ in range(3):
            call = h.stream()
            for m in _mid_stream():
                await call.write(m)
                await call.read()
            calls.append(call)

    lt.run(open_streams())
    assert h.server.servicer.open_exchanges == 3
    lt.run(h.server.stop(), timeout=10)
    h.wait_for(lambda: len(tel.finished) == 3)
    assert tel.finished == ["shutdown"] * 3 and len(tel.ends) == 3
    assert all(ex.finished == ["shutdown"] for ex in h.ext.exchanges)
    assert tel.flushed == 1
    assert h.server.servicer.open_exchanges == 0
    lt.run(h.channel.close())


def test_shutdown_lets_exchanges_finish_within_grace(lt) -> None:
    tel = FakeTelemetry()
    h = Harness(lt, TransportOptions(listen="127.0.0.1:0", shutdown_grace=5), tel)

    async def go():
        call = h.stream()
        msgs = _mid_stream()
        for m in msgs:
            await call.write(m)
            await call.read()
        stopping = asyncio.ensure_future(h.server.stop())
        await asyncio.sleep(0.1)
        await call.write(req_body(b"]}\n\n", eos=True))
        await call.read()
        await call.done_writing()
        await call.code()
        await stopping

    lt.run(go(), timeout=10)
    assert tel.finished == ["complete"] and len(tel.ends) == 1
    lt.run(h.channel.close())
