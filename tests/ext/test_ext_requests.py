"""Request fields per family: the right names, only what the client sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmtap.ext import ExtConfig, RequestInfo, recognise

# Every test here runs on both twins (tests/ext/conftest.py).
pytestmark = pytest.mark.usefixtures("core_twin")


def attrs(authority: str, path: str, body: Any, config: Any = None) -> dict[str, Any]:
    ex = recognise(RequestInfo("POST", authority, path), config)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ex.on_request_body(raw[:7], False)
    ex.on_request_body(raw[7:], True)
    a = ex.finish().attributes()
    return {
        k.removeprefix("gen_ai.request."): v
        for k, v in a.items()
        if k.startswith("gen_ai.request.")
    } | {
        k: v
        for k, v in a.items()
        if k == "gen_ai.output.type" or k.startswith(("openai.", "gen_ai.embeddings"))
    }


OPENAI = ("api.openai.com", "/v1/chat/completions")


def test_openai_chat_fields() -> None:
    got = attrs(
        *OPENAI,
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi" * 100}],
            "stream": True,
            "max_completion_tokens": 50,
            "max_tokens": 10,
            "temperature": 0,
            "top_p": 0.5,
            "seed": 7,
            "n": 2,
            "stop": "END",
            "frequency_penalty": 0.1,
            "presence_penalty": -0.2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
            "service_tier": "flex",
        },
    )
    assert got == {
        "model": "gpt-4o",
        "stream": True,
        "max_tokens": 50,  # max_completion_tokens wins over the deprecated max_tokens
        "temperature": 0.0,
        "top_p": 0.5,
        "seed": 7,
        "choice.count": 2,
        "stop_sequences": ["END"],
        "frequency_penalty": 0.1,
        "presence_penalty": -0.2,
        "gen_ai.output.type": "json",
        "openai.request.service_tier": "flex",
    }


def test_only_what_was_sent() -> None:
    got = attrs(*OPENAI, {"model": "gpt-4o", "messages": []})
    assert got == {"model": "gpt-4o"}
    # n == 1 is the default: choice.count only when != 1
    assert "choice.count" not in attrs(*OPENAI, {"model": "m", "n": 1})
    # explicit nulls are "not sent"
    assert attrs(*OPENAI, {"model": "m", "temperature": None, "stop": None}) == {"model": "m"}


def test_bad_field_type_drops_only_that_field() -> None:
    got = attrs(*OPENAI, {"model": "m", "temperature": "hot", "top_p": 0.9, "stop": ["a", "b"]})
    assert got == {"model": "m", "top_p": 0.9, "stop_sequences": ["a", "b"]}


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'{"model": ', b"\xff\xfe"])
def test_bad_bodies_read_nothing(raw: bytes) -> None:
    assert attrs(*OPENAI, raw) == {}


def test_body_over_the_cap_still_names_the_model() -> None:
    body = {
        "messages": [{"role": "user", "content": "x" * 5000}],
        "model": "gpt-4o",
        "stream": True,
    }
    got = attrs(*OPENAI, body, config=ExtConfig(max_request_body=1024))
    assert got == {"model": "gpt-4o", "stream": True}


def test_openai_audio_output_is_speech() -> None:
    assert (
        attrs(*OPENAI, {"model": "m", "modalities": ["text", "audio"]})["gen_ai.output.type"]
        == "speech"
    )


def test_responses_fields() -> None:
    got = attrs(
        "api.openai.com",
        "/v1/responses",
        {
            "model": "gpt-5",
            "max_output_tokens": 99,
            "text": {"format": {"type": "json_object"}},
            "stream": False,
        },
    )
    assert got == {
        "model": "gpt-5",
        "max_tokens": 99,
        "stream": False,
        "gen_ai.output.type": "json",
    }


def test_embeddings_fields() -> None:
    got = attrs(
        "api.openai.com",
        "/v1/embeddings",
        {
            "model": "text-embedding-3-small",
            "input": ["a"],
            "encoding_format": "base64",
            "dimensions": 256,
        },
    )
    assert got == {
        "model": "text-embedding-3-small",
        "encoding_formats": ["base64"],
        "gen_ai.embeddings.dimension.count": 256,
    }


def test_azure_deployment_names_the_model_when_the_body_does_not() -> None:
    path = "/openai/deployments/my-gpt4/chat/completions?api-version=2024-02-01"
    assert attrs("r.openai.azure.com", path, {"messages": []}) == {"model": "my-gpt4"}
    assert attrs("r.openai.azure.com", path, {"model": "gpt-4o"})["model"] == "gpt-4o"


def test_anthropic_fields() -> None:
    got = attrs(
        "api.anthropic.com",
        "/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "temperature": 1.0,
            "top_k": 5,
            "top_p": 0.9,
            "stop_sequences": ["\n\nHuman:"],
            "stream": True,
        },
    )
    assert got == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "temperature": 1.0,
        "top_k": 5.0,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:"],
        "stream": True,
    }
    legacy = attrs(
        "api.anthropic.com", "/v1/complete", {"model": "claude-2.1", "max_tokens_to_sample": 300}
    )
    assert legacy == {"model": "claude-2.1", "max_tokens": 300}


def test_gemini_fields_and_url_model() -> None:
    got = attrs(
        "generativelanguage.googleapis.com",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {
            "contents": [],
            "generationConfig": {
                "maxOutputTokens": 64,
                "temperature": 0.2,
                "topP": 0.8,
                "topK": 40,
                "seed": 3,
                "candidateCount": 2,
                "stopSequences": ["x"],
                "presencePenalty": 0.5,
                "frequencyPenalty": 0.25,
                "responseMimeType": "application/json",
            },
        },
    )
    assert got == {
        "model": "gemini-2.5-flash",
        "stream": True,
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.8,
        "top_k": 40.0,
        "seed": 3,
        "choice.count": 2,
        "stop_sequences": ["x"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "gen_ai.output.type": "json",
    }
    image = attrs(
        "generativelanguage.googleapis.com",
        "/v1beta/models/gemini-2.5-flash-image:generateContent",
        {"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}},
    )
    assert image == {
        "model": "gemini-2.5-flash-image",
        "stream": False,
        "gen_ai.output.type": "image",
    }


BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com"


def test_bedrock_converse_fields() -> None:
    got = attrs(
        BEDROCK,
        "/model/amazon.nova-lite-v1%3A0/converse",
        {
            "messages": [],
            "inferenceConfig": {
                "maxTokens": 500,
                "temperature": 0.7,
                "topP": 0.9,
                "stopSequences": ["s"],
            },
            "additionalModelRequestFields": {"inferenceConfig": {"topK": 20}},
        },
    )
    assert got == {
        "model": "amazon.nova-lite-v1:0",
        "stream": False,
        "max_tokens": 500,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20.0,
        "stop_sequences": ["s"],
    }


@pytest.mark.parametrize(
    ("model", "body", "want"),
    [
        (
            "anthropic.claude-3-haiku-20240307-v1%3A0",
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 200,
                "top_k": 250,
                "stop_sequences": ["s"],
            },
            {"max_tokens": 200, "top_k": 250.0, "stop_sequences": ["s"]},
        ),
        (
            "meta.llama3-70b-instruct-v1%3A0",
            {"prompt": "p", "max_gen_len": 128, "top_p": 0.9},
            {"max_tokens": 128, "top_p": 0.9},
        ),
        (
            "amazon.titan-text-express-v1",
            {
                "inputText": "x",
                "textGenerationConfig": {"maxTokenCount": 8000, "temperature": 0.5, "topP": 0.5},
            },
            {"max_tokens": 8000, "temperature": 0.5, "top_p": 0.5},
        ),
        (
            "amazon.nova-lite-v1%3A0",
            {
                "schemaVersion": "messages-v1",
                "inferenceConfig": {"max_new_tokens": 300, "topK": 20},
            },
            {"max_tokens": 300, "top_k": 20.0},
        ),
        (
            "cohere.command-r-v1%3A0",
            {"message": "m", "p": 0.75, "k": 10},
            {"top_p": 0.75, "top_k": 10.0},
        ),
        (
            "mistral.mistral-7b-instruct-v0%3A2",
            {"prompt": "p", "stop": "</s>"},
            {"stop_sequences": ["</s>"]},
        ),
    ],
)
def test_bedrock_invoke_vendor_fields(
    model: str, body: dict[str, Any], want: dict[str, Any]
) -> None:
    got = attrs(BEDROCK, f"/model/{model}/invoke", body)
    assert got.pop("model") and got.pop("stream") is False
    assert got == want


def test_ollama_fields_and_default_stream() -> None:
    got = attrs(
        "localhost:11434",
        "/api/chat",
        {
            "model": "llama3",
            "messages": [],
            "format": "json",
            "options": {"num_predict": 64, "temperature": 0.1, "seed": 1, "stop": ["x"]},
        },
    )
    assert got == {
        "model": "llama3",
        "stream": True,  # Ollama streams unless told otherwise
        "max_tokens": 64,
        "temperature": 0.1,
        "seed": 1,
        "stop_sequences": ["x"],
        "gen_ai.output.type": "json",
    }
    assert attrs(
        "localhost:11434", "/api/generate", {"model": "m", "stream": False, "format": ""}
    ) == {
        "model": "m",
        "stream": False,
    }


def test_cohere_fields() -> None:
    got = attrs(
        "api.cohere.com",
        "/v2/chat",
        {
            "model": "command-r",
            "messages": [],
            "p": 0.5,
            "k": 3,
            "max_tokens": None,
            "response_format": {"type": "json_object"},
        },
    )
    assert got == {"model": "command-r", "top_p": 0.5, "top_k": 3.0, "gen_ai.output.type": "json"}
    emb = attrs(
        "api.cohere.com",
        "/v2/embed",
        {"model": "embed-v4.0", "embedding_types": ["float", "int8"], "output_dimension": 512},
    )
    assert emb == {
        "model": "embed-v4.0",
        "encoding_formats": ["float", "int8"],
        "gen_ai.embeddings.dimension.count": 512,
    }
