"""Official SDKs -> Envoy -> replayed provider, and the span llmtap sends to the receiver.

Each case makes one call with a real client library pointed at Envoy (``/<provider>/``
routes), replays a recorded exchange for it, and checks the one span that arrives: its
parent is the caller's ``traceparent``, its attributes are the recording's values, and
a streamed call carries its time to first chunk. Runs once per Envoy mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from e2e_stack import AZURE_HOST, Caller, Stack, expected
from recorded import EXCHANGES

PROMPT = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
TTFT = "gen_ai.response.time_to_first_chunk"


def _request_model(fixture: str) -> str | None:
    ex = next(e for e in EXCHANGES if e.id == fixture)
    return ex.meta.get("request_summary", {}).get("model")


# -- the calls: (stack, fixture, caller) -> whatever the SDK returned -------------------------


def openai_client(stack: Stack, provider: str = "openai", path: str = "/v1") -> Any:
    import openai

    return openai.OpenAI(base_url=stack.base(provider) + path, api_key="sk-e2e", max_retries=0)


def openai_chat(stack: Stack, fixture: str, caller: Caller) -> Any:
    return openai_client(stack).chat.completions.create(
        model=_request_model(fixture),
        messages=PROMPT,
        extra_headers=stack.headers(fixture, caller),
    )


def openai_chat_stream(
    stack: Stack, fixture: str, caller: Caller, provider: str = "openai", path: str = "/v1"
) -> Any:
    stream = openai_client(stack, provider, path).chat.completions.create(
        model=_request_model(fixture),
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=stack.headers(fixture, caller),
    )
    return list(stream)


def openai_chat_error(stack: Stack, fixture: str, caller: Caller) -> Any:
    import openai

    with pytest.raises(openai.NotFoundError):
        openai_chat(stack, fixture, caller)


def openai_responses(stack: Stack, fixture: str, caller: Caller) -> Any:
    return openai_client(stack).responses.create(
        model=_request_model(fixture),
        input="What is 2 + 2?",
        extra_headers=stack.headers(fixture, caller),
    )


def openai_responses_stream(stack: Stack, fixture: str, caller: Caller) -> Any:
    stream = openai_client(stack).responses.create(
        model=_request_model(fixture),
        input="What is 2 + 2?",
        stream=True,
        extra_headers=stack.headers(fixture, caller),
    )
    events = list(stream)
    assert events[-1].type == "response.completed"
    return events


def openai_embeddings(stack: Stack, fixture: str, caller: Caller) -> Any:
    r = openai_client(stack).embeddings.create(
        model=_request_model(fixture),
        input="Hello",
        extra_headers=stack.headers(fixture, caller),
    )
    assert r.data and len(r.data[0].embedding) > 100
    return r


def groq_chat_stream(stack: Stack, fixture: str, caller: Caller) -> Any:
    return openai_chat_stream(stack, fixture, caller, "groq", "/openai/v1")


def mistral_chat_stream(stack: Stack, fixture: str, caller: Caller) -> Any:
    return openai_chat_stream(stack, fixture, caller, "mistral", "/v1")


def azure_chat(stream: bool) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        import openai

        client = openai.AzureOpenAI(
            azure_endpoint=stack.base("azure"),
            api_key="e2e",
            api_version="2024-02-01",
            max_retries=0,
        )
        result = client.chat.completions.create(
            model="openllmetry-testing",
            messages=PROMPT,
            stream=stream,
            extra_headers=stack.headers(fixture, caller),
        )
        return list(result) if stream else result

    return call


def anthropic_messages(stream: bool) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        import anthropic

        client = anthropic.Anthropic(base_url=stack.base("anthropic"), api_key="e2e", max_retries=0)
        kwargs: dict[str, Any] = {
            "model": _request_model(fixture),
            "max_tokens": 1024,
            "messages": PROMPT,
            "extra_headers": stack.headers(fixture, caller),
        }
        if not stream:
            return client.messages.create(**kwargs)
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message()

    return call


def gemini(stream: bool) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key="e2e",
            http_options=types.HttpOptions(
                base_url=stack.base("gemini"),
                api_version="v1beta",
                headers=stack.headers(fixture, caller),
            ),
        )
        if stream:
            return list(
                client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
            )
        return client.models.generate_content(model="gemini-2.0-flash", contents="hi")

    return call


def ollama_chat(stream: bool) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        import ollama

        client = ollama.Client(host=stack.base("ollama"), headers=stack.headers(fixture, caller))
        result = client.chat(model="llama3", messages=PROMPT, stream=stream)
        return list(result) if stream else result

    return call


def bedrock(stream: bool, model: str) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        import boto3

        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=stack.base("bedrock"),
            region_name="us-east-1",
            aws_access_key_id="AKIAE2E",
            aws_secret_access_key="e2e",
        )
        headers = stack.headers(fixture, caller)

        def add_headers(request: Any, **_: Any) -> None:
            for k, v in headers.items():
                request.headers[k] = v

        client.meta.events.register("before-send.bedrock-runtime.*", add_headers)
        messages = [{"role": "user", "content": [{"text": "What is the capital of Japan?"}]}]
        if not stream:
            return client.converse(modelId=model, messages=messages)
        return list(client.converse_stream(modelId=model, messages=messages)["stream"])

    return call


def cohere_chat(stream: bool) -> Callable[[Stack, str, Caller], Any]:
    def call(stack: Stack, fixture: str, caller: Caller) -> Any:
        import cohere

        client = cohere.ClientV2(api_key="e2e", base_url=stack.base("cohere"))
        options = {"additional_headers": stack.headers(fixture, caller), "max_retries": 0}
        model = _request_model(fixture)
        if stream:
            return list(client.chat_stream(model=model, messages=PROMPT, request_options=options))
        return client.chat(model=model, messages=PROMPT, request_options=options)

    return call


@dataclass(frozen=True)
class Case:
    fixture: str
    call: Callable[[Stack, str, Caller], Any]
    provider: str
    operation: str
    host: str
    stream: bool = False

    @property
    def id(self) -> str:
        return self.fixture


CASES = [
    Case(
        "openai_chat_completions/cached_tokens_1024_nonstream_gzip",
        openai_chat,
        "openai",
        "chat",
        "api.openai.com",
    ),
    Case(
        "openai_chat_completions/stream_include_usage_gpt4",
        openai_chat_stream,
        "openai",
        "chat",
        "api.openai.com",
        stream=True,
    ),
    Case(
        "openai_chat_completions/error_404_model_not_found",
        openai_chat_error,
        "openai",
        "chat",
        "api.openai.com",
    ),
    Case(
        "openai_responses/basic_nonstream_gzip",
        openai_responses,
        "openai",
        "chat",
        "api.openai.com",
    ),
    Case(
        "openai_responses/stream_basic",
        openai_responses_stream,
        "openai",
        "chat",
        "api.openai.com",
        stream=True,
    ),
    Case(
        "openai_embeddings/base64_single_gzip",
        openai_embeddings,
        "openai",
        "embeddings",
        "api.openai.com",
    ),
    Case(
        "azure_openai/chat_nonstream_content_filter_results",
        azure_chat(False),
        "azure.ai.openai",
        "chat",
        AZURE_HOST,
    ),
    Case(
        "groq/chat_stream_x_groq_usage",
        groq_chat_stream,
        "groq",
        "chat",
        "api.groq.com",
        stream=True,
    ),
    Case(
        "mistral/chat_stream",
        mistral_chat_stream,
        "mistral_ai",
        "chat",
        "api.mistral.ai",
        stream=True,
    ),
    Case(
        "anthropic_messages/nonstream_basic_gzip",
        anthropic_messages(False),
        "anthropic",
        "chat",
        "api.anthropic.com",
    ),
    Case(
        "anthropic_messages/stream_gzip_encoded_tool_use",
        anthropic_messages(True),
        "anthropic",
        "chat",
        "api.anthropic.com",
        stream=True,
    ),
    Case(
        "gemini/nonstream_basic",
        gemini(False),
        "gcp.gemini",
        "generate_content",
        "generativelanguage.googleapis.com",
    ),
    Case(
        "gemini/stream_sse_basic",
        gemini(True),
        "gcp.gemini",
        "generate_content",
        "generativelanguage.googleapis.com",
        stream=True,
    ),
    Case("ollama_native/chat_nonstream", ollama_chat(False), "ollama", "chat", "127.0.0.1"),
    Case(
        "ollama_native/chat_stream_ndjson",
        ollama_chat(True),
        "ollama",
        "chat",
        "127.0.0.1",
        stream=True,
    ),
    Case(
        "bedrock/converse_nova",
        bedrock(False, "amazon.nova-lite-v1:0"),
        "aws.bedrock",
        "chat",
        "bedrock-runtime.us-east-1.amazonaws.com",
    ),
    Case(
        "bedrock/converse_stream_claude_haiku_long",
        bedrock(True, "anthropic.claude-3-haiku-20240307-v1:0"),
        "aws.bedrock",
        "chat",
        "bedrock-runtime.us-east-1.amazonaws.com",
        stream=True,
    ),
    Case(
        "cohere/v2_chat_tool_calls_nonstream",
        cohere_chat(False),
        "cohere",
        "chat",
        "api.cohere.com",
    ),
    Case(
        "cohere/v2_chat_stream",
        cohere_chat(True),
        "cohere",
        "chat",
        "api.cohere.com",
        stream=True,
    ),
]


def _input_tokens(case: Case, e: dict[str, Any]) -> int | None:
    """The GenAI conventions count cached input in input tokens; Anthropic does not."""
    if e["input_tokens"] is None:
        return None
    if case.provider == "anthropic":
        return int(e["input_tokens"] + (e["cached_input_tokens"] or 0)) + (
            e["cache_creation_input_tokens"] or 0
        )
    return int(e["input_tokens"])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sdk_call_becomes_one_span(case: Case, stack: Stack, caller: Caller) -> None:
    case.call(stack, case.fixture, caller)
    span = stack.span_for(caller)
    e = expected(case.fixture)
    a = span.attributes

    assert span.parent_span_id == caller.span_id
    assert span.kind == "CLIENT"
    assert a["gen_ai.provider.name"] == case.provider
    assert a["gen_ai.operation.name"] == case.operation
    assert a["server.address"] == case.host
    request_model = _request_model(case.fixture)
    if request_model and case.provider != "azure.ai.openai":
        assert a["gen_ai.request.model"] == request_model
        assert span.name == f"{case.operation} {request_model}"
    if e["model"]:
        assert a["gen_ai.response.model"] == e["model"]
    if e["response_id"]:
        assert a["gen_ai.response.id"] == e["response_id"]
    want_in = _input_tokens(case, e)
    if want_in is not None:
        assert a["gen_ai.usage.input_tokens"] == want_in
    if e["output_tokens"] is not None:
        assert a["gen_ai.usage.output_tokens"] == e["output_tokens"]
    if e["cached_input_tokens"]:
        assert a["gen_ai.usage.cache_read.input_tokens"] == e["cached_input_tokens"]

    status = next(x for x in EXCHANGES if x.id == case.fixture).meta["status"]
    if status >= 400:
        assert span.status == "ERROR"
        assert a["error.type"]
        return
    assert span.status == "UNSET"
    assert "error.type" not in a
    if e["finish_reasons"]:
        assert list(a["gen_ai.response.finish_reasons"]) == [str(f) for f in e["finish_reasons"]]
    if case.stream:
        ttft = a.get(TTFT)
        assert isinstance(ttft, float), f"no {TTFT} on a streamed call: {sorted(a)}"
        # The span covers the whole call, the first chunk comes inside it.
        assert 0 < ttft <= span.duration_s
    else:
        assert TTFT not in a or a[TTFT] <= span.duration_s


def test_normal_mode_injects_traceparent_upstream(stack: Stack, caller: Caller) -> None:
    """Envoy forwards the caller's trace context; in normal mode llmtap may replace it
    with its own span's, which must then be the span it exported."""
    fixture = "openai_chat_completions/stream_include_usage_gpt4"
    openai_chat_stream(stack, fixture, caller)
    span = stack.span_for(caller)
    seen = stack.replay.requests_for(fixture)[-1]
    sent = seen.headers.get("traceparent", "")
    assert sent.split("-")[1] == caller.trace_id
    if stack.mode == "observability":
        assert sent == caller.traceparent  # Envoy does not wait for llmtap: nothing changes
    else:
        assert sent.split("-")[2] in (caller.span_id, span.span_id)
