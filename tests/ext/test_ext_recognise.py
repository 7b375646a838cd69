"""Recognition: hint, then host, then path; unknown requests still get an Exchange."""

from __future__ import annotations

import pytest

from llmtap.ext import FAMILIES, ExtConfig, RequestInfo, recognise

# Every test here runs on both twins (tests/ext/conftest.py).
pytestmark = pytest.mark.usefixtures("core_twin")


def rec(
    authority: str,
    path: str,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    hint: str | None = None,
    config: object = None,
) -> tuple[str, str, str]:
    ex = recognise(RequestInfo(method, authority, path, headers or {}, hint=hint), config)
    return ex.family, ex.provider, ex.operation


@pytest.mark.parametrize(
    ("authority", "path", "want"),
    [
        (
            "api.openai.com",
            "/v1/chat/completions?x=1",
            ("openai.chat_completions", "openai", "chat"),
        ),
        ("api.openai.com", "/v1/responses", ("openai.responses", "openai", "chat")),
        ("api.openai.com", "/v1/completions", ("openai.completions", "openai", "text_completion")),
        ("api.openai.com", "/v1/embeddings", ("openai.embeddings", "openai", "embeddings")),
        (
            "res.openai.azure.com",
            "/openai/deployments/d1/chat/completions?api-version=2024-02-01",
            ("openai.chat_completions", "azure.ai.openai", "chat"),
        ),
        (
            "res.cognitiveservices.azure.com",
            "/openai/v1/responses",
            ("openai.responses", "azure.ai.openai", "chat"),
        ),
        (
            "res.services.ai.azure.com",
            "/models/chat/completions?api-version=2024-05-01-preview",
            ("openai.chat_completions", "azure.ai.inference", "chat"),
        ),
        (
            "api.groq.com",
            "/openai/v1/chat/completions",
            ("openai.chat_completions", "groq", "chat"),
        ),
        (
            "api.mistral.ai",
            "/v1/chat/completions",
            ("openai.chat_completions", "mistral_ai", "chat"),
        ),
        (
            "api.deepseek.com",
            "/beta/chat/completions",
            ("openai.chat_completions", "deepseek", "chat"),
        ),
        (
            "api.together.xyz",
            "/v1/chat/completions",
            ("openai.chat_completions", "together_ai", "chat"),
        ),
        (
            "openrouter.ai",
            "/api/v1/chat/completions",
            ("openai.chat_completions", "openrouter", "chat"),
        ),
        ("api.x.ai", "/v1/chat/completions", ("openai.chat_completions", "x_ai", "chat")),
        ("localhost:11434", "/v1/chat/completions", ("openai.chat_completions", "ollama", "chat")),
        ("api.anthropic.com", "/v1/messages", ("anthropic.messages", "anthropic", "chat")),
        (
            "api.anthropic.com",
            "/v1/complete",
            ("anthropic.complete", "anthropic", "text_completion"),
        ),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            ("gemini.generate_content", "gcp.gemini", "generate_content"),
        ),
        (
            "us-central1-aiplatform.googleapis.com",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
            ("gemini.generate_content", "gcp.vertex_ai", "generate_content"),
        ),
        (
            "us-east5-aiplatform.googleapis.com",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict",
            ("anthropic.messages", "gcp.vertex_ai", "chat"),
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/amazon.nova-lite-v1%3A0/converse-stream",
            ("bedrock.converse", "aws.bedrock", "chat"),
        ),
        (
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream",
            ("bedrock.invoke", "aws.bedrock", "chat"),
        ),
        ("127.0.0.1:11434", "/api/chat", ("ollama.chat", "ollama", "chat")),
        ("127.0.0.1:11434", "/api/generate", ("ollama.generate", "ollama", "text_completion")),
        ("127.0.0.1:11434", "/api/embed", ("ollama.embed", "ollama", "embeddings")),
        ("api.cohere.com", "/v2/chat", ("cohere.chat", "cohere", "chat")),
        ("api.cohere.ai", "/v1/chat", ("cohere.chat", "cohere", "chat")),
        ("api.cohere.com", "/v2/embed", ("cohere.embed", "cohere", "embeddings")),
    ],
)
def test_host_then_path(authority: str, path: str, want: tuple[str, str, str]) -> None:
    assert rec(authority, path) == want


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/v1/chat/completions", ("openai.chat_completions", "openai", "chat")),
        (
            "/openai/deployments/dep/embeddings?api-version=1",
            ("openai.embeddings", "azure.ai.openai", "embeddings"),
        ),
        (
            "/openai/v1/chat/completions?api-version=preview",
            ("openai.chat_completions", "azure.ai.openai", "chat"),
        ),
        # Groq's prefix too: without api-version it is not taken for Azure
        ("/openai/v1/chat/completions", ("openai.chat_completions", "openai", "chat")),
        ("/v1/messages", ("anthropic.messages", "anthropic", "chat")),
        (
            "/v1beta/models/m:generateContent",
            ("gemini.generate_content", "gcp.gemini", "generate_content"),
        ),
        ("/model/m/converse", ("bedrock.converse", "aws.bedrock", "chat")),
        ("/api/chat", ("ollama.chat", "ollama", "chat")),
        ("/v2/chat", ("cohere.chat", "cohere", "chat")),
    ],
)
def test_path_shape_alone(path: str, want: tuple[str, str, str]) -> None:
    assert rec("llm-proxy.internal:8080", path) == want


def test_hint_header_beats_host_and_path() -> None:
    h = {"x-llmtap-provider": "Groq"}
    assert rec("api.openai.com", "/v1/chat/completions", headers=h)[1] == "groq"
    # aliases map to the semconv names
    assert rec("proxy", "/v1/chat/completions", headers={"x-llmtap-provider": "azure"})[1] == (
        "azure.ai.openai"
    )
    assert (
        rec("proxy", "/v1/messages", headers={"x-llmtap-provider": "bedrock"})[1] == "aws.bedrock"
    )


def test_gateway_hint_beats_header() -> None:
    h = {"x-llmtap-provider": "groq"}
    assert rec("proxy", "/v1/chat/completions", headers=h, hint="mistral")[1] == "mistral_ai"


def test_hint_header_name_is_configurable() -> None:
    h = {"x-provider": "deepseek", "x-llmtap-provider": "groq"}
    assert rec(
        "proxy", "/v1/chat/completions", headers=h, config=ExtConfig(hint_header="x-provider")
    )[1] == ("deepseek")

    class GatewayConfig:  # any object with the attribute names will do
        hint_header = "x-provider"

    assert rec("proxy", "/v1/chat/completions", headers=h, config=GatewayConfig())[1] == "deepseek"


def test_family_name_hint_picks_the_family() -> None:
    fam, provider, op = rec("llm.internal", "/generate", hint="anthropic.messages")
    assert (fam, provider, op) == ("anthropic.messages", "anthropic", "chat")


def test_malformed_hint_is_ignored() -> None:
    h = {"x-llmtap-provider": "evil provider\n with spaces"}
    assert rec("api.anthropic.com", "/v1/messages", headers=h)[1] == "anthropic"


def test_host_names_the_provider_path_names_the_api() -> None:
    # Anthropic's OpenAI-compatible endpoint
    assert rec("api.anthropic.com", "/v1/chat/completions") == (
        "openai.chat_completions",
        "anthropic",
        "chat",
    )


def test_unknown_requests_never_fail() -> None:
    assert rec("example.com", "/v1/models", method="GET") == ("unknown", "unknown", "unknown")
    assert rec("example.com", "/v9/chatbot") == ("unknown", "unknown", "chat")
    assert rec("example.com", "/x/embedder") == ("unknown", "unknown", "embeddings")
    assert rec("example.com", "/") == ("unknown", "unknown", "unknown")
    # a known host keeps its provider even for an API llmtap does not know
    assert rec("api.openai.com", "/v1/audio/speech") == ("unknown", "openai", "unknown")
    # a GET on a chat path (OpenAI lists stored completions) is not an LLM call
    assert rec("api.openai.com", "/v1/chat/completions", method="GET")[0] == "unknown"
    # garbage authority
    assert rec("[::1", "/v1/chat/completions")[0] == "openai.chat_completions"
    assert rec("", "")[0] == "unknown"


def test_unknown_exchange_yields_a_record() -> None:
    ex = recognise(RequestInfo("GET", "example.com", "/health"))
    assert not ex.wants_request_body
    ex.on_response_headers(200, {"content-type": "text/html"})
    assert ex.on_response_body(b"<html>", True) is False
    r = ex.finish()
    assert r.provider == "unknown" and r.error_type is None
    assert r.attributes()["gen_ai.operation.name"] == "unknown"
    assert r.span_name == "unknown"


def test_route_model_and_server_fields() -> None:
    ex = recognise(
        RequestInfo(
            "POST",
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.amazon.nova-lite-v1%3A0/converse",
        )
    )
    r = ex.finish()
    assert (
        r.request_model == "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-lite-v1:0"
    )
    assert (r.server_address, r.server_port) == ("bedrock-runtime.us-east-1.amazonaws.com", 443)
    ex = recognise(RequestInfo("POST", "localhost:11434", "/api/chat", scheme="http"))
    assert (ex.finish().server_address, ex.finish().server_port) == ("localhost", 11434)
    ex = recognise(RequestInfo("POST", "[::1]:8080", "/v1/chat/completions", scheme="http"))
    assert (ex.finish().server_address, ex.finish().server_port) == ("::1", 8080)


def test_gemini_route_details() -> None:
    ex = recognise(
        RequestInfo(
            "POST",
            "us-central1-aiplatform.googleapis.com",
            "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
            "?%24alt=json%3Benum-encoding%3Dint",
        )
    )
    r = ex.finish()
    assert (r.request_model, r.stream) == ("gemini-2.5-flash", True)


def test_family_names_are_unique_and_hintable() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for f in FAMILIES:
        assert recognise(RequestInfo("POST", "x", "/", hint=f.name)).family == f.name
