"""Structured JSON logs, with secrets scrubbed before anything is written.

``configure_logging()`` installs one handler on the ``llmtap`` logger tree that writes
one JSON object per line (``ts``, ``level``, ``logger``, ``msg`` plus any ``extra=``
fields). Header-shaped secrets never reach the output: values under a secret-looking key
(``authorization``, ``api-key``, ``cookie`` …) are replaced, and bearer tokens or
provider keys embedded in free text are masked.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import msgspec

__all__ = [
    "REDACTED",
    "SECRET_HEADER_NAMES",
    "JsonFormatter",
    "configure_logging",
    "is_secret_name",
    "redact_headers",
    "redact_text",
]

REDACTED = "[REDACTED]"

#: Header names whose values are credentials (lower-case, ``_`` written as ``-``).
SECRET_HEADER_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "apikey",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "ocp-apim-subscription-key",
        "x-amz-security-token",
        "x-functions-key",
        "openai-api-key",
        "anthropic-api-key",
    }
)

_SECRET_TEXT = re.compile(
    r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(?:sk|rk|pk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{12,}"
    r"|\bAIza[0-9A-Za-z_-]{30,}"
    r"|((?:authorization|api[-_]?key|x-api-key|cookie|x-goog-api-key)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic)\s+)?)"
    r"[^\s\"',;&]+"
)


def is_secret_name(name: str) -> bool:
    """True for a header name or attribute key that carries a credential, e.g.
    ``Authorization``, ``x-api-key``, ``http.request.header.cookie``."""
    last = name.rsplit(".", 1)[-1].lower().replace("_", "-")
    return (
        last in SECRET_HEADER_NAMES
        or "api-key" in last
        or "apikey" in last
        or "cookie" in last
        or last.endswith("authorization")
    )


def _mask(m: re.Match[str]) -> str:
    prefix = m.group(1) or m.group(2)
    return f"{prefix}{REDACTED}" if prefix else REDACTED


def redact_text(text: str) -> str:
    """Mask bearer/basic credentials, provider keys and ``api-key=…`` pairs in text."""
    return _SECRET_TEXT.sub(_mask, text)


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``headers`` with every credential value replaced by ``[REDACTED]``."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in headers.items()}


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth > 6:
        return repr(type(value))
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if is_secret_name(str(k)) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return redact_text(value[:256].decode("utf-8", "replace"))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_encode = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra=`` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and key not in out:
                out[key] = REDACTED if is_secret_name(key) else _scrub(value)
        if record.exc_info:
            out["exc"] = redact_text(self.formatException(record.exc_info))
        return _encode(out).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(
    level: str = "info", fmt: str = "json", stream: TextIO | None = None
) -> logging.Handler:
    """Route the ``llmtap`` loggers to ``stream`` (stderr) as JSON lines (or plain
    text with ``fmt="text"``). Idempotent: a previous llmtap handler is replaced."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("llmtap")
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("llmtap")
    for old in list(root.handlers):
        if old.get_name() == "llmtap":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    return handler
