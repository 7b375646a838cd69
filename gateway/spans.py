"""The span model: one compact tuple per LLM call, encoded straight to OTLP bytes.

llmtap never builds SDK ``Span`` objects or protobuf messages on the data path. A
finished call becomes a :class:`SpanData` tuple, :class:`OtlpEncoder` turns it into the
bytes of one ``ScopeSpans.spans`` field, and the exporter joins such fields into an
``ExportTraceServiceRequest``. The wire format is standard OTLP (``opentelemetry-proto``
decodes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .otlp import OtlpEncoder, OtlpEncoderPy

__all__ = [
    "FLAG_CONTEXT_HAS_IS_REMOTE",
    "FLAG_CONTEXT_IS_REMOTE",
    "KIND_CLIENT",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "Event",
    "Link",
    "OtlpEncoder",
    "OtlpEncoderPy",
    "SpanData",
    "status_code_of",
]

KIND_INTERNAL = 1
KIND_SERVER = 2
KIND_CLIENT = 3

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

#: ``Span.flags``/``Link.flags`` bits 8 and 9 (OTLP 1.1): whether the parent (or the
#: linked context) is known to be remote, and whether it is.
FLAG_CONTEXT_HAS_IS_REMOTE = 0x100
FLAG_CONTEXT_IS_REMOTE = 0x200


class Event(NamedTuple):
    time_ns: int
    name: str
    attributes: Mapping[str, Any]


class Link(NamedTuple):
    trace_id: bytes
    span_id: bytes
    trace_state: str
    flags: int
    attributes: Mapping[str, Any]


class SpanData(NamedTuple):
    """A finished span; field order is the encoder's contract."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # b"" for a root span
    trace_state: str
    flags: int  # W3C trace flags | FLAG_CONTEXT_* bits
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    status_code: int
    status_message: str
    events: tuple[Event, ...] = ()
    links: tuple[Link, ...] = ()


_STATUS_NAMES = {"UNSET": STATUS_UNSET, "OK": STATUS_OK, "ERROR": STATUS_ERROR}


def status_code_of(code: Any) -> int:
    """Normalise a status code given as an int, a name (``"ERROR"``) or an enum
    (``opentelemetry.trace.StatusCode``) to the OTLP number; unknown -> UNSET."""
    if type(code) is int:
        return code if 0 <= code <= 2 else STATUS_UNSET
    if code is None:
        return STATUS_UNSET
    name = getattr(code, "name", code)
    if isinstance(name, str):
        return _STATUS_NAMES.get(name.upper(), STATUS_UNSET)
    value = getattr(code, "value", None)
    return value if type(value) is int and 0 <= value <= 2 else STATUS_UNSET
