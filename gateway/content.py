"""Message content capture: the opt-in switch and a structure-keeping size cap.

Content (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``) is off by default. When on, each value is JSON
(the GenAI conventions' message schemas) and is cut to a byte budget by
:func:`truncate_json`, which keeps the JSON valid and its shape recognisable: long
strings are shortened first (marked with ``…``), then long arrays and objects lose
their tail members, so a reader still sees roles, parts and the start of each text.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from typing import Any

import msgspec

from .logs import is_secret_name, redact_text

__all__ = [
    "CONTENT_KEYS",
    "ELLIPSIS",
    "CaptureMode",
    "capture_enabled",
    "content_attributes",
    "parse_capture_mode",
    "truncate_json",
]

#: The content attributes, in the order they are written.
CONTENT_KEYS = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")
ELLIPSIS = "…"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class CaptureMode(enum.Enum):
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` values."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)


def parse_capture_mode(value: str | bool | None) -> CaptureMode:
    """Parse the capture switch: ``true``/``false`` (the pre-1.37 boolean form) or one
    of the enum names (case-insensitive). ``true`` means "wherever llmtap can put it":
    ``SPAN_AND_EVENT``. Empty/``None`` is the default, ``NO_CONTENT``. Anything else
    raises ``ValueError``."""
    if value is None or value is False:
        return CaptureMode.NO_CONTENT
    if value is True:
        return CaptureMode.SPAN_AND_EVENT
    v = value.strip().upper()
    if v in ("", "FALSE", "0", "NO"):
        return CaptureMode.NO_CONTENT
    if v in ("TRUE", "1", "YES"):
        return CaptureMode.SPAN_AND_EVENT
    try:
        return CaptureMode[v]
    except KeyError:
        raise ValueError(
            f"invalid content capture mode {value!r}; expected true, false, "
            + ", ".join(m.name for m in CaptureMode)
        ) from None


def capture_enabled(settings: Any) -> bool:
    """Whether a span can ever carry content under ``settings``: ext then builds it
    (``ExtConfig.capture_content``); otherwise ext reads, keeps and scans nothing of it."""
    tracing = getattr(settings, "tracing", None)
    export = getattr(settings, "export", None)
    if tracing is None or not tracing.enabled:
        return False
    if export is not None and export.traces_exporter == "none":
        return False
    return CaptureMode[tracing.capture_content] is not CaptureMode.NO_CONTENT


# -- truncation -------------------------------------------------------------------------


def _cut(v: Any, max_str: int, max_items: int = -1, max_keys: int = -1) -> Any:
    """A copy of ``v`` with strings over ``max_str`` characters, arrays over
    ``max_items`` and objects over ``max_keys`` members shortened (-1: kept whole)."""
    if isinstance(v, str):
        return v if len(v) <= max_str else v[:max_str] + ELLIPSIS
    if isinstance(v, list):
        if 0 <= max_items < len(v):
            v = v[:max_items]
        return [_cut(x, max_str, max_items, max_keys) for x in v]
    if isinstance(v, dict):
        items = list(v.items())
        if 0 <= max_keys < len(items):
            items = items[:max_keys]
        return {k: _cut(x, max_str, max_items, max_keys) for k, x in items}
    return v


def _longest(v: Any) -> int:
    if isinstance(v, str):
        return len(v)
    if isinstance(v, list):
        return max(map(_longest, v), default=0)
    if isinstance(v, dict):
        return max(map(_longest, v.values()), default=0)
    return 0


def _widest(v: Any) -> int:
    if isinstance(v, (list, dict)):
        inner = v if isinstance(v, list) else list(v.values())
        return max(len(v), max(map(_widest, inner), default=0))
    return 0


def truncate_json(value: Any, max_bytes: int) -> str:
    """Serialise ``value`` (a JSON text or a JSON-able object) to at most ``max_bytes``
    bytes of UTF-8, keeping it valid JSON.

    Strings are cut to a common length (the largest that fits, found by bisection),
    then, if still too big, containers keep only their first members. If even the
    skeleton does not fit, the result is a JSON string holding the cut text.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            obj = _decode(value)
        except msgspec.DecodeError:
            obj = value
    else:
        obj = value
    try:
        out = _encode(obj)
    except (TypeError, msgspec.EncodeError, OverflowError):
        obj = str(obj)
        out = _encode(obj)
    if len(out) <= max_bytes:
        return out.decode()

    def size(max_str: int, max_items: int = -1, max_keys: int = -1) -> int:
        return len(_encode(_cut(obj, max_str, max_items, max_keys)))

    def largest(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    # 1. Largest common string length that fits with every member kept.
    if size(0) <= max_bytes:
        n = largest(0, _longest(obj), lambda m: size(m) <= max_bytes)
        return _encode(_cut(obj, n)).decode()
    # 2. Strings cut to a stub; keep the first members of long arrays.
    for stub in (16, 0):
        if size(stub, 1) <= max_bytes:
            fits: Callable[[int], bool] = partial(lambda s, m: size(s, m) <= max_bytes, stub)
            n = largest(1, _widest(obj), fits)
            return _encode(_cut(obj, stub, n)).decode()
    # 3. Arrays down to one member; keep the first keys of wide objects.
    if size(0, 1, 1) <= max_bytes:
        n = largest(1, _widest(obj), lambda m: size(0, 1, m) <= max_bytes)
        return _encode(_cut(obj, 0, 1, n)).decode()
    # Not even a one-member skeleton fits: fall back to a JSON string of the text.
    text = out.decode()
    budget = max(0, max_bytes - 2 - len(ELLIPSIS.encode()))
    while budget > 0:
        s = _encode(text[:budget] + ELLIPSIS)
        if len(s) <= max_bytes:
            return s.decode()
        budget = budget * 3 // 4
    return '""' if max_bytes >= 2 else ""


def _scrub(v: Any) -> Any:
    if isinstance(v, str):
        return redact_text(v)
    if isinstance(v, list):
        return [_scrub(x) for x in v]
    if isinstance(v, dict):
        return {k: _scrub(x) for k, x in v.items() if not is_secret_name(str(k))}
    return v


def content_attributes(content: Mapping[str, Any] | None, max_bytes: int) -> dict[str, str]:
    """The content attributes present in ``content`` as JSON text, each capped at
    ``max_bytes``, with credential-looking text masked before the cut (a pasted
    ``Authorization: Bearer …`` in a prompt) so masking can never break the JSON."""
    out: dict[str, str] = {}
    if not content:
        return out
    for key in CONTENT_KEYS:
        v = content.get(key)
        if isinstance(v, (bytes, bytearray, memoryview)):
            v = bytes(v).decode("utf-8", "replace")
        if isinstance(v, str):
            with suppress(msgspec.DecodeError):
                v = _decode(v)
        if v is None or (isinstance(v, (str, list, dict)) and not v):
            continue
        out[key] = truncate_json(_scrub(v), max_bytes)
    return out
