"""Content capture switch and the structure-keeping JSON truncation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.gateway.content import (
    ELLIPSIS,
    CaptureMode,
    content_attributes,
    parse_capture_mode,
    truncate_json,
)


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, CaptureMode.NO_CONTENT),
        ("", CaptureMode.NO_CONTENT),
        ("false", CaptureMode.NO_CONTENT),
        ("FALSE", CaptureMode.NO_CONTENT),
        ("true", CaptureMode.SPAN_AND_EVENT),
        (True, CaptureMode.SPAN_AND_EVENT),
        (False, CaptureMode.NO_CONTENT),
        ("NO_CONTENT", CaptureMode.NO_CONTENT),
        ("span_only", CaptureMode.SPAN_ONLY),
        (" EVENT_ONLY ", CaptureMode.EVENT_ONLY),
        ("SPAN_AND_EVENT", CaptureMode.SPAN_AND_EVENT),
    ],
)
def test_parse_capture_mode(value: str | bool | None, mode: CaptureMode) -> None:
    assert parse_capture_mode(value) is mode


def test_parse_capture_mode_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid content capture mode 'sometimes'"):
        parse_capture_mode("sometimes")


def test_mode_targets() -> None:
    assert not CaptureMode.NO_CONTENT.on_span and not CaptureMode.NO_CONTENT.on_event
    assert CaptureMode.SPAN_ONLY.on_span and not CaptureMode.SPAN_ONLY.on_event
    assert CaptureMode.EVENT_ONLY.on_event and not CaptureMode.EVENT_ONLY.on_span
    assert CaptureMode.SPAN_AND_EVENT.on_span and CaptureMode.SPAN_AND_EVENT.on_event


MESSAGES = [
    {"role": "system", "parts": [{"type": "text", "content": "be brief " * 100}]},
    {"role": "user", "parts": [{"type": "text", "content": "héllo ✓ " * 400}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f",
                                     "arguments": {"q": "x" * 900}}]},
]  # fmt: skip


def test_fits_unchanged() -> None:
    assert truncate_json(MESSAGES, 1_000_000) == json.dumps(MESSAGES, ensure_ascii=False,
                                                             separators=(",", ":"))  # fmt: skip
    assert truncate_json('{"a": 1}', 100) == '{"a":1}'


def test_long_strings_shortened_first_keeping_every_member() -> None:
    out = truncate_json(MESSAGES, 1500)
    assert len(out.encode()) <= 1500
    doc = json.loads(out)
    assert [m["role"] for m in doc] == ["system", "user", "assistant"]
    assert doc[2]["parts"][0]["name"] == "f"
    assert doc[1]["parts"][0]["content"].endswith(ELLIPSIS)


def test_then_array_members_dropped_from_the_end() -> None:
    many = [{"role": "user", "parts": [{"type": "text", "content": str(i)}]} for i in range(200)]
    out = truncate_json(many, 600)
    doc = json.loads(out)
    assert len(out.encode()) <= 600 and 1 <= len(doc) < 200
    assert doc[0] == many[0]


def test_non_json_text_and_tiny_caps() -> None:
    assert json.loads(truncate_json("plain text, not JSON " * 20, 50)).endswith(ELLIPSIS)
    assert truncate_json(MESSAGES, 2) == '""'
    assert truncate_json(MESSAGES, 1) == ""


@given(
    st.recursive(
        st.one_of(st.text(max_size=50), st.integers(), st.booleans(), st.none(),
                  st.floats(allow_nan=False, allow_infinity=False)),
        lambda inner: st.one_of(st.lists(inner, max_size=6),
                                st.dictionaries(st.text(max_size=8), inner, max_size=5)),
        max_leaves=30,
    ),
    st.integers(2, 400),
)  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_always_valid_json_within_the_cap(value: object, cap: int) -> None:
    out = truncate_json(value, cap)
    assert len(out.encode()) <= cap
    json.loads(out)


def test_content_attributes_scrub_and_cap() -> None:
    content = {
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "content": "my key is sk-proj-abcdefghijklmnopqrstu, ok?"}]
        ),
        "gen_ai.output.messages": [{"role": "assistant", "api_key": "hunter2", "text": "x" * 9000}],
        "gen_ai.system_instructions": "",
        "unrelated": "ignored",
    }
    out = content_attributes(content, 2000)
    assert set(out) == {"gen_ai.input.messages", "gen_ai.output.messages"}
    assert "sk-proj-abcdefghijklmnopqrstu" not in out["gen_ai.input.messages"]
    assert "[REDACTED]" in out["gen_ai.input.messages"]
    assert "hunter2" not in out["gen_ai.output.messages"]
    assert len(out["gen_ai.output.messages"].encode()) <= 2000
    for v in out.values():
        json.loads(v)
    assert content_attributes(None, 100) == {}
