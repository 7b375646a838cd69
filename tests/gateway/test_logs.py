"""JSON logs: one object per line, secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from llmtap.gateway.logs import (
    REDACTED,
    configure_logging,
    is_secret_name,
    redact_headers,
    redact_text,
)


@pytest.fixture(autouse=True)
def _restore_llmtap_logger() -> Iterator[None]:
    """configure_logging changes the shared ``llmtap`` logger; put it back for the
    other suites (caplog needs propagation)."""
    root = logging.getLogger("llmtap")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.propagate = saved[2]


@pytest.mark.parametrize(
    "name",
    ["Authorization", "proxy-authorization", "api-key", "X-API-Key", "x_api_key", "apikey",
     "x-goog-api-key", "Cookie", "set-cookie", "http.request.header.authorization",
     "ocp-apim-subscription-key", "openai_api_key"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["content-type", "gen_ai.usage.input_tokens", "x-request-id", "keyword", "host"]
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOi"),
        ("key sk-proj-AbCdEfGhIjKlMnOp1234 used", "AbCdEfGhIjKlMnOp1234"),
        ("anthropic sk-ant-api03-abcdefghijklmnop", "abcdefghijklmnop"),
        ("gemini AIzaSyD36taFUaT7sv0iKwzLyuFeqZiZPoQtSnA here", "FUaT7sv0"),
        ("url?api_key=abc123secret&x=1", "abc123secret"),
        ('{"x-api-key": "topsecret"}', "topsecret"),
        ("cookie=session%3Dabcdef", "abcdef"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ],
)
def test_redact_text(text: str, leak: str) -> None:
    out = redact_text(text)
    assert leak not in out and REDACTED in out


def test_redact_headers() -> None:
    h = {"authorization": "Bearer x", "content-type": "application/json", "Api-Key": "k"}
    assert redact_headers(h) == {
        "authorization": REDACTED,
        "content-type": "application/json",
        "Api-Key": REDACTED,
    }


def test_json_lines_with_extras_and_no_secrets() -> None:
    buf = io.StringIO()
    configure_logging("debug", "json", stream=buf)
    log = logging.getLogger("llmtap.test")
    log.info(
        "request from %s with Bearer abcdefghijkl",
        "client",
        extra={"headers": {"Authorization": "Bearer zzzzzzzzzz", "accept": "*/*"},
               "api_key": "plain", "exchange": 7, "tags": ["sk-live-1234567890abcdef"]},
    )  # fmt: skip
    try:
        raise ValueError("token Bearer qqqqqqqqqqqq")
    except ValueError:
        log.exception("failed")
    lines = buf.getvalue().splitlines()
    first = json.loads(lines[0])
    assert first["level"] == "info" and first["logger"] == "llmtap.test"
    assert first["msg"] == f"request from client with Bearer {REDACTED}"
    assert first["headers"] == {"Authorization": REDACTED, "accept": "*/*"}
    assert first["api_key"] == REDACTED and first["exchange"] == 7
    assert first["ts"].endswith("Z")
    second = json.loads(lines[1])
    assert "qqqqqqqqqqqq" not in second["exc"] and "ValueError" in second["exc"]
    text = buf.getvalue()
    for secret in ("abcdefghijkl", "zzzzzzzzzz", "plain", "1234567890abcdef"):
        assert secret not in text


def test_configure_logging_is_idempotent_and_text_mode_redacts() -> None:
    buf = io.StringIO()
    configure_logging("info", "json", stream=io.StringIO())
    configure_logging("info", "text", stream=buf)
    root = logging.getLogger("llmtap")
    assert [h.get_name() for h in root.handlers].count("llmtap") == 1
    logging.getLogger("llmtap.x").warning("api-key=abcdef123")
    assert "abcdef123" not in buf.getvalue() and "WARNING llmtap.x" in buf.getvalue()
    logging.getLogger("llmtap.x").debug("hidden")
    assert "hidden" not in buf.getvalue()
