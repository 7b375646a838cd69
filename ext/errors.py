"""How ``error.type`` is chosen, in one place.

Rule, applied to error bodies and in-stream error events alike:

1. the provider's ``error.code`` if it is a non-empty, non-numeric string
   (OpenAI ``model_not_found``, Azure ``DeploymentNotFound``, Groq ``tool_use_failed``);
2. else ``error.type`` (Anthropic ``not_found_error``, OpenAI when ``code`` is null);
3. else Google's ``error.status`` (``NOT_FOUND``, ``RESOURCE_EXHAUSTED``);
4. else the exception name AWS sends (``x-amzn-errortype`` header or the eventstream
   ``:exception-type``), without its ``:http://...`` suffix (``ValidationException``);
5. else the HTTP status code as a string (``"404"``); for a 2xx stream that failed
   without saying how, the SSE event name or ``stream_error``.

Numeric codes are skipped because they repeat the HTTP status (Gemini ``code: 404``,
Azure ``code: "401"``); the status itself is the rule's fallback. A stream cut short
gets the reason the gateway passes (``client_disconnect``, ``timeout``, ...).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["describe", "pick_error_type"]

_MAX_DESCRIPTION = 256
# Error messages sometimes echo part of a credential ("Incorrect API key provided:
# sk-...abcd"): mask anything shaped like one before it reaches a span.
_SECRETISH = re.compile(r"\b(?:sk|pk|rk)-[-_A-Za-z0-9*.]+|\bAIza[-_A-Za-z0-9]{10,}")


def pick_error_type(*candidates: Any) -> str | None:
    """First candidate that is a non-empty, non-numeric string."""
    for c in candidates:
        if isinstance(c, str):
            c = c.strip()
            if c and not c.lstrip("-").isdigit():
                return c
    return None


def aws_error_type(value: str | None) -> str | None:
    """``ValidationException:http://internal.amazon.com/...`` -> ``ValidationException``."""
    if not value:
        return None
    return value.partition(":")[0].strip() or None


def describe(message: str | None) -> str | None:
    """A provider error message fit for a span status: credentials masked, capped."""
    if not message:
        return None
    msg = _SECRETISH.sub("[redacted]", message.strip())
    if len(msg) > _MAX_DESCRIPTION:
        msg = msg[: _MAX_DESCRIPTION - 1] + "\u2026"
    return msg
