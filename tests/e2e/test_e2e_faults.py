"""Faults through the real stack: a client that walks away mid-stream, and llmtap dying.

Envoy runs ext_proc with ``failure_mode_allow``: when llmtap is gone, calls must still
succeed, and once llmtap is back, spans must come again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import MODES, Caller, Stack, running_stack

from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.procs import Llmtap
from llmtap.gateway.demo.receiver import Receiver

LONG_STREAM = "groq/chat_stream_x_groq_usage"  # 75 events
PROMPT = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]


def _client(stack: Stack) -> object:
    import openai

    return openai.OpenAI(
        base_url=stack.base("groq") + "/openai/v1", api_key="e2e", max_retries=0, timeout=10
    )


def test_client_cancelling_a_stream_gives_an_error_span(stack: Stack, caller: Caller) -> None:
    # 40 pieces, 20 ms apart: the stream is still going when the client leaves.
    headers = stack.headers(LONG_STREAM, caller, **{"x-replay-pieces": "40"})
    stream = _client(stack).chat.completions.create(  # type: ignore[attr-defined]
        model="llama3-8b-8192", messages=PROMPT, stream=True, extra_headers=headers
    )
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.role == "assistant"
    assert next(chunks).choices[0].delta.content
    stream.close()
    span = stack.span_for(caller)
    assert span.parent_span_id == caller.span_id
    assert span.status == "ERROR"
    # Normal mode: Envoy tore the exchange down; observability: the body stopped short.
    assert span.attributes["error.type"] in ("cancelled", "incomplete")
    assert span.attributes.get("gen_ai.usage.output_tokens") != 73


@pytest.fixture(params=MODES)
def own_stack(
    request: pytest.FixtureRequest,
    receiver: Receiver,
    replay_server: HttpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack of its own: this test kills its llmtap."""
    workdir = tmp_path_factory.mktemp(f"faults-{request.param}")
    with running_stack(request.param, receiver, replay_server, workdir) as s:
        yield s
        s.llmtap.stop()  # the restarted one, if the test got that far


def _chat(stack: Stack, caller: Caller) -> str:
    fixture = "mistral/chat_stream"
    import openai

    client = openai.OpenAI(base_url=stack.base("mistral") + "/v1", api_key="e2e", max_retries=0)
    chunks = client.chat.completions.create(
        model="mistral-tiny",
        messages=PROMPT,  # type: ignore[arg-type]
        stream=True,
        extra_headers=stack.headers(fixture, caller),
        timeout=10,
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_llmtap_killed_and_restarted(own_stack: Stack) -> None:
    stack = own_stack
    first = Caller.new()
    text = _chat(stack, first)
    assert text.startswith("Here")
    assert stack.span_for(first).attributes["gen_ai.provider.name"] == "mistral_ai"

    stack.llmtap.kill()
    assert not stack.llmtap.alive
    for _ in range(3):
        assert _chat(stack, Caller.new()) == text, "traffic must flow without llmtap"
    allowed = stack.envoy.stats("cluster.provider_mistral.ext_proc.llmtap.failure_mode_allowed")
    assert sum(allowed.values()) >= 3

    restarted = Llmtap(
        stack.llmtap.listen, stack.receiver.endpoint, Path(stack.workdir), stack.mode
    ).start()
    stack.llmtap = restarted
    # Envoy reconnects on its own; the first calls may still find the old connection gone.
    deadline = time.monotonic() + 30
    while True:
        caller = Caller.new()
        assert _chat(stack, caller) == text
        try:
            span = stack.span_for(caller, timeout=2)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
    assert span.parent_span_id == caller.span_id
    assert span.attributes["gen_ai.request.model"] == "mistral-tiny"
