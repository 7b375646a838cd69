"""Assisted mode: Envoy's ai_protocol_manager reads the token usage, llmtap gets it with
the synthesized response trailers and the response body never crosses gRPC.

In this mode llmtap does not ask for the body of a call Envoy reads (Envoy 1.40 stalls
a response whose body is streamed to ext_proc while ai_protocol_manager synthesizes
trailers), so the token counts in these spans can only have come from Envoy's
TokenUsage record, and Envoy's message counter shows the body never crossed gRPC. A
gzip-encoded response is the exception (Envoy does not read compressed bodies): llmtap
asks for that body itself and still gets the counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_stack import Caller, Stack, expected, running_stack
from test_e2e_sdks import anthropic_messages, gemini, openai_chat_stream

from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.receiver import Receiver


@pytest.fixture(scope="module")
def assisted(
    receiver: Receiver, replay_server: HttpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("assisted")
    with running_stack("assisted", receiver, replay_server, workdir) as s:
        yield s


CASES = [
    ("openai_chat_completions/stream_include_usage_gpt4", openai_chat_stream),
    ("gemini/stream_sse_basic", gemini(True)),
    ("anthropic_messages/stream_basic", anthropic_messages(True)),
]


def _messages_sent(stack: Stack, provider: str) -> int:
    name = f"cluster.provider_{provider}.ext_proc.llmtap.stream_msgs_sent"
    return stack.envoy.stats(name).get(name, 0)


@pytest.mark.parametrize(("fixture", "call"), CASES, ids=[c[0] for c in CASES])
def test_usage_from_envoy(assisted: Stack, caller: Caller, fixture: str, call: object) -> None:
    provider = {"openai_chat_completions": "openai", "gemini": "gemini"}.get(
        fixture.split("/")[0], "anthropic"
    )
    before = _messages_sent(assisted, provider)
    call(assisted, fixture, caller)  # type: ignore[operator]
    span = assisted.span_for(caller)
    # Request headers, request body (one or two messages), response headers, trailers:
    # had the five response body pieces the replay wrote crossed gRPC, it would be 9+.
    assert _messages_sent(assisted, provider) - before <= 6
    e = expected(fixture)
    a = span.attributes
    assert span.parent_span_id == caller.span_id
    assert a["gen_ai.usage.input_tokens"] == e["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == e["output_tokens"]
    assert a["gen_ai.response.model"] == e["model"]
    assert span.status == "UNSET", (span.status_message, a)


def test_compressed_body_is_read_by_llmtap(assisted: Stack, caller: Caller) -> None:
    fixture = "anthropic_messages/stream_gzip_encoded_tool_use"
    anthropic_messages(True)(assisted, fixture, caller)
    span = assisted.span_for(caller)
    e = expected(fixture)
    assert span.attributes["gen_ai.usage.output_tokens"] == e["output_tokens"]
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == e["finish_reasons"]
