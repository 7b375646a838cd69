"""The calls ``llmtap demo`` makes: the official SDK when it is installed, else plain HTTP.

Each call gets the base URL of its provider on the Envoy listener (``.../openai``,
``.../anthropic`` ...) and the headers to send (``traceparent``, and ``x-demo-status``
for the call meant to fail). It reads the whole response, as an application would, and
returns how it was made (``"sdk"`` or ``"http"``). A provider error is an outcome, not a
demo failure: it is caught here and shows up as an error span.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROMPT = "In one sentence: why trace LLM calls?"
MESSAGES = [{"role": "user", "content": PROMPT}]


def has_sdk(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def sdk(module: str) -> Any:
    """The SDK module, untyped: the demo runs with whatever version is installed."""
    return importlib.import_module(module)


def http_post(url: str, body: Any, headers: dict[str, str], timeout: float = 30.0) -> bytes:
    """POST JSON and read the whole answer; an HTTP error status is returned, not raised."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("content-type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return bytes(r.read())
    except urllib.error.HTTPError as e:
        return bytes(e.read())


@dataclass(frozen=True)
class Call:
    """One demo call: ``run(base_url, headers)`` returns ``"sdk"`` or ``"http"``."""

    name: str
    provider: str
    run: Callable[[str, dict[str, str]], str]
    headers: dict[str, str] = field(default_factory=dict)


def openai_chat_stream(base: str, headers: dict[str, str]) -> str:
    if has_sdk("openai"):
        openai = sdk("openai")

        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        for _ in stream:
            pass
        return "sdk"
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    body["stream_options"] = {"include_usage": True}
    http_post(base + "/v1/chat/completions", body, headers)
    return "http"


def openai_compatible_chat(model: str, path: str, stream: bool) -> Callable[..., str]:
    """Chat through an OpenAI-compatible API (Groq, Mistral): ``path`` is the API root."""

    def run(base: str, headers: dict[str, str]) -> str:
        if has_sdk("openai"):
            openai = sdk("openai")

            client = openai.OpenAI(base_url=base + path, api_key="demo", max_retries=0)
            try:
                result = client.chat.completions.create(
                    model=model,
                    messages=MESSAGES,
                    stream=stream,
                    extra_headers=headers,
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIStatusError:
                pass
            return "sdk"
        body = {"model": model, "messages": MESSAGES, "stream": stream}
        http_post(base + path + "/chat/completions", body, headers)
        return "http"

    return run


def openai_responses(base: str, headers: dict[str, str]) -> str:
    if has_sdk("openai"):
        openai = sdk("openai")

        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
        client.responses.create(model="gpt-4.1-nano", input=PROMPT, extra_headers=headers)
        return "sdk"
    http_post(base + "/v1/responses", {"model": "gpt-4.1-nano", "input": PROMPT}, headers)
    return "http"


def openai_embeddings(base: str, headers: dict[str, str]) -> str:
    texts = ["llm call tracing", "time to first token"]
    if has_sdk("openai"):
        openai = sdk("openai")

        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
        client.embeddings.create(model="text-embedding-3-small", input=texts, extra_headers=headers)
        return "sdk"
    http_post(base + "/v1/embeddings", {"model": "text-embedding-3-small", "input": texts}, headers)
    return "http"


def anthropic_stream(base: str, headers: dict[str, str]) -> str:
    model = "claude-haiku-4-5"
    if has_sdk("anthropic"):
        anthropic = sdk("anthropic")

        client = anthropic.Anthropic(base_url=base, api_key="sk-ant-demo", max_retries=0)
        try:
            with client.messages.stream(
                model=model,
                max_tokens=200,
                messages=MESSAGES,
                extra_headers=headers,
            ) as s:
                s.get_final_message()
        except anthropic.APIStatusError:
            pass
        return "sdk"
    body = {"model": model, "max_tokens": 200, "messages": MESSAGES, "stream": True}
    http_post(base + "/v1/messages", body, {"anthropic-version": "2023-06-01", **headers})
    return "http"


def gemini_stream(base: str, headers: dict[str, str]) -> str:
    model = "gemini-2.5-flash"
    if has_sdk("google.genai"):
        genai = sdk("google.genai")
        types = sdk("google.genai.types")

        client = genai.Client(
            api_key="demo", http_options=types.HttpOptions(base_url=base, headers=headers)
        )
        for _ in client.models.generate_content_stream(model=model, contents=PROMPT):
            pass
        return "sdk"
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    url = f"{base}/v1beta/models/{model}:streamGenerateContent?alt=sse"
    http_post(url, body, {"x-goog-api-key": "demo", **headers})
    return "http"


def bedrock_converse_stream(base: str, headers: dict[str, str]) -> str:
    model = "amazon.nova-lite-v1:0"
    messages = [{"role": "user", "content": [{"text": PROMPT}]}]
    if has_sdk("boto3"):
        boto3 = sdk("boto3")

        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=base,
            region_name="us-east-1",
            aws_access_key_id="AKIADEMO",
            aws_secret_access_key="demo",
        )

        def add_headers(request: Any, **_: Any) -> None:
            for k, v in headers.items():
                request.headers[k] = v

        client.meta.events.register("before-send.bedrock-runtime.*", add_headers)
        for _ in client.converse_stream(modelId=model, messages=messages)["stream"]:
            pass
        return "sdk"
    url = f"{base}/model/{model.replace(':', '%3A')}/converse-stream"
    http_post(url, {"messages": messages}, headers)
    return "http"


def ollama_chat(base: str, headers: dict[str, str]) -> str:
    if has_sdk("ollama"):
        ollama = sdk("ollama")

        for _ in ollama.Client(host=base, headers=headers).chat(
            model="llama3.2", messages=MESSAGES, stream=True
        ):
            pass
        return "sdk"
    http_post(base + "/api/chat", {"model": "llama3.2", "messages": MESSAGES}, headers)
    return "http"


def cohere_chat(base: str, headers: dict[str, str]) -> str:
    if has_sdk("cohere"):
        cohere = sdk("cohere")

        client = cohere.ClientV2(api_key="demo", base_url=base)
        for _ in client.chat_stream(
            model="command-r-plus",
            messages=MESSAGES,
            request_options={"additional_headers": headers},
        ):
            pass
        return "sdk"
    body = {"model": "command-r-plus", "messages": MESSAGES, "stream": True}
    http_post(base + "/v2/chat", body, headers)
    return "http"


#: One round, in waves: the calls of a wave run concurrently, like an agent's tool calls.
WAVES: list[list[Call]] = [
    [
        Call("openai chat, streamed", "openai", openai_chat_stream),
        Call("anthropic messages, streamed", "anthropic", anthropic_stream),
        Call("gemini generate, streamed", "gemini", gemini_stream),
    ],
    [
        Call("bedrock converse, streamed", "bedrock", bedrock_converse_stream),
        Call("ollama chat, streamed", "ollama", ollama_chat),
        Call("cohere chat, streamed", "cohere", cohere_chat),
        Call(
            "groq chat, streamed",
            "groq",
            openai_compatible_chat("llama-3.1-8b-instant", "/openai/v1", True),
        ),
    ],
    [
        Call("openai responses", "openai", openai_responses),
        Call("openai embeddings", "openai", openai_embeddings),
        Call(
            "mistral chat, rate limited",
            "mistral",
            openai_compatible_chat("mistral-small-latest", "/v1", False),
            {"x-demo-status": "429"},
        ),
    ],
]


def run_wave(calls: list[Call], url: str, headers: dict[str, str]) -> list[str | BaseException]:
    """Run ``calls`` concurrently against the Envoy listener at ``url``."""
    results: list[str | BaseException] = [""] * len(calls)

    def one(i: int, call: Call) -> None:
        try:
            results[i] = call.run(f"{url}/{call.provider}", {**headers, **call.headers})
        except BaseException as exc:  # reported by the runner, never kills the round
            results[i] = exc

    threads = [
        threading.Thread(target=one, args=(i, c), name=f"demo-call-{i}", daemon=True)
        for i, c in enumerate(calls)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
