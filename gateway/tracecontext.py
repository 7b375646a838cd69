"""Trace context in and out: W3C traceparent/tracestate, B3 (single and multi), baggage.

Parsers never raise on bad input: a malformed header yields ``None`` (no context),
exactly like a missing one, because a caller's broken header must not break its
request. Ids are kept as raw bytes (16 and 8), the form OTLP wants on the wire.

Header mappings are expected with lower-case names (Envoy hands ext_proc HTTP/2 style
lower-case header keys, and gRPC metadata keys are lower-case by definition).
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote

__all__ = [
    "FLAG_RANDOM",
    "FLAG_SAMPLED",
    "INVALID_SPAN_ID",
    "INVALID_TRACE_ID",
    "SpanContext",
    "extract",
    "format_b3",
    "format_b3_multi",
    "format_traceparent",
    "new_span_id",
    "new_trace_id",
    "ot_get",
    "ot_set_threshold",
    "parse_b3",
    "parse_b3_multi",
    "parse_baggage",
    "parse_traceparent",
    "parse_tracestate",
    "randomness",
    "threshold_from_th",
    "threshold_to_th",
]

FLAG_SAMPLED = 0x01
#: W3C Trace Context Level 2: the rightmost 56 bits of the trace id are random.
FLAG_RANDOM = 0x02

INVALID_TRACE_ID = bytes(16)
INVALID_SPAN_ID = bytes(8)

MAX_TRACESTATE_MEMBERS = 32
MAX_OT_VALUE_LEN = 256
MAX_BAGGAGE_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192

_HEX = frozenset("0123456789abcdef")


class SpanContext(NamedTuple):
    """A remote span context as read from headers (always remote for llmtap)."""

    trace_id: bytes
    span_id: bytes
    flags: int
    trace_state: str = ""

    @property
    def sampled(self) -> bool:
        return bool(self.flags & FLAG_SAMPLED)


# -- ids ------------------------------------------------------------------------------

# A private generator: getrandbits is ~10x cheaper than os.urandom per id, and W3C
# Level 2 asks for (pseudo-)random ids, not cryptographic ones. Re-seeded in forked
# workers so siblings never share a sequence.
_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))
_getrandbits = _rng.getrandbits


def new_trace_id() -> bytes:
    """A random, non-zero 16-byte trace id (all 128 bits random, so Level 2 holds)."""
    while True:
        v = _getrandbits(128)
        if v:
            return v.to_bytes(16, "big")


def new_span_id() -> bytes:
    """A random, non-zero 8-byte span id."""
    while True:
        v = _getrandbits(64)
        if v:
            return v.to_bytes(8, "big")


# -- W3C traceparent --------------------------------------------------------------------


def _is_lower_hex(s: str) -> bool:
    return bool(s) and _HEX.issuperset(s)


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str | None, tracestate: str | None = None) -> SpanContext | None:
    """Parse a ``traceparent`` header (W3C Trace Context, any version but ``ff``).

    Returns ``None`` for anything malformed, including all-zero ids. A valid
    ``tracestate`` is attached; an invalid one is dropped (W3C: never propagate a
    tracestate that could not be parsed).
    """
    if not value:
        return None
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None:
        return None
    version, tid, sid, fl, rest = m.groups()
    # Version 00 is exactly 55 chars; later versions may append "-..." fields.
    if version == "ff" or (rest is not None and version == "00"):
        return None
    if tid == _ZERO_TRACE or sid == _ZERO_SPAN:
        return None
    flags = int(fl, 16)
    if version == "00":
        # Level 2 defines only the sampled and random bits; others are not ours to keep.
        flags &= FLAG_SAMPLED | FLAG_RANDOM
    ts = normalize_tracestate(tracestate) if tracestate else ""
    return SpanContext(bytes.fromhex(tid), bytes.fromhex(sid), flags, ts)


def format_traceparent(trace_id: bytes, span_id: bytes, flags: int) -> str:
    return f"00-{trace_id.hex()}-{span_id.hex()}-{flags & 0xFF:02x}"


# -- W3C tracestate -------------------------------------------------------------------

_TS_KEY = re.compile(
    r"^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$"
)
_TS_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")


def parse_tracestate(value: str | None) -> list[tuple[str, str]] | None:
    """Split a ``tracestate`` header into ``(key, value)`` members, left first.

    Returns ``None`` when the header is invalid (bad key or value, duplicate key,
    more than 32 members); an empty/absent header gives ``[]``. Empty list members
    (``a=1,,b=2``) are allowed, as W3C says.
    """
    if not value:
        return []
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in value.split(","):
        item = raw.strip(" \t")
        if not item:
            continue
        key, eq, val = item.partition("=")
        if not eq or not _TS_KEY.match(key) or not _TS_VALUE.match(val) or key in seen:
            return None
        seen.add(key)
        members.append((key, val))
        if len(members) > MAX_TRACESTATE_MEMBERS:
            return None
    return members


def normalize_tracestate(value: str) -> str:
    """The header re-serialised canonically, or ``""`` when it is invalid."""
    members = parse_tracestate(value)
    if not members:
        return ""
    return ",".join(f"{k}={v}" for k, v in members)


# -- OpenTelemetry `ot` member: th / rv -------------------------------------------------


def ot_get(trace_state: str) -> dict[str, str]:
    """The sub-keys of the ``ot`` tracestate member (``ot=th:8;rv:...``), or ``{}``."""
    if "ot=" not in trace_state:
        return {}
    for key, val in parse_tracestate(trace_state) or ():
        if key == "ot":
            out: dict[str, str] = {}
            for part in val.split(";"):
                k, colon, v = part.partition(":")
                if colon and k:
                    out[k] = v
            return out
    return {}


def threshold_from_th(th: str | None) -> int | None:
    """Decode a ``th`` value (1-14 hex digits, implied trailing zeros) to a 56-bit int."""
    if not th or len(th) > 14:
        return None
    try:
        return int(th.ljust(14, "0"), 16)
    except ValueError:
        return None


def threshold_to_th(threshold: int) -> str:
    """Encode a 56-bit rejection threshold as ``th``: 14 hex digits, trailing zeros cut."""
    if threshold <= 0:
        return "0"
    return f"{threshold:014x}".rstrip("0")


def randomness(trace_id: bytes, trace_state: str) -> int:
    """The 56-bit sampling randomness: explicit ``ot=rv:`` if valid, else the trace id's
    rightmost 7 bytes (W3C Trace Context Level 2)."""
    if trace_state and "rv:" in trace_state:
        rv = ot_get(trace_state).get("rv")
        if rv is not None and len(rv) == 14 and _is_lower_hex(rv):
            return int(rv, 16)
    return int.from_bytes(trace_id[9:16], "big")


def ot_set_threshold(trace_state: str, threshold: int | None) -> str:
    """Return ``trace_state`` with ``ot``'s ``th`` set to ``threshold`` (or erased if
    ``None``), other ``ot`` sub-keys (``rv`` …) kept, and ``ot`` moved leftmost as W3C
    asks of a modified member. Over-long results leave ``th`` erased rather than fail."""
    if not trace_state:
        return "" if threshold is None else f"ot=th:{threshold_to_th(threshold)}"
    members = parse_tracestate(trace_state)
    if members is None:
        members = []
    subs: list[str] = []
    rest: list[tuple[str, str]] = []
    for key, val in members:
        if key == "ot":
            subs = [p for p in val.split(";") if p and not p.startswith("th:")]
        else:
            rest.append((key, val))
    if threshold is not None:
        with_th = [f"th:{threshold_to_th(threshold)}", *subs]
        if len(";".join(with_th)) <= MAX_OT_VALUE_LEN:
            subs = with_th
    out = [f"ot={';'.join(subs)}"] if subs else []
    out.extend(f"{k}={v}" for k, v in rest[: MAX_TRACESTATE_MEMBERS - len(out)])
    return ",".join(out)


# -- B3 ---------------------------------------------------------------------------------


def _b3_id(s: str, sizes: tuple[int, ...]) -> bytes | None:
    s = s.strip().lower()
    if len(s) not in sizes or not _is_lower_hex(s):
        return None
    raw = bytes.fromhex(s)
    if not any(raw):
        return None
    return raw


def _b3_trace_id(s: str) -> bytes | None:
    raw = _b3_id(s, (16, 32))
    if raw is not None and len(raw) == 8:
        raw = bytes(8) + raw  # 64-bit B3 ids are left-padded to 128 bits
    return raw


def parse_b3(value: str | None) -> SpanContext | None:
    """Parse a single ``b3`` header: ``{trace}-{span}[-{sampled}[-{parent}]]``.

    A bare sampling state (``b3: 0``) carries no ids, hence no context: ``None``.
    ``d`` (debug) counts as sampled.
    """
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 2 or len(parts) > 4:
        return None
    trace_id = _b3_trace_id(parts[0])
    span_id = _b3_id(parts[1], (16,))
    if trace_id is None or span_id is None:
        return None
    flags = 0
    if len(parts) >= 3:
        state = parts[2]
        if state in ("1", "d"):
            flags = FLAG_SAMPLED
        elif state != "0":
            return None
    if len(parts) == 4 and _b3_id(parts[3], (16,)) is None:
        return None
    return SpanContext(trace_id, span_id, flags, "")


def parse_b3_multi(headers: Mapping[str, str]) -> SpanContext | None:
    """Parse ``x-b3-traceid``/``x-b3-spanid``/``x-b3-sampled``/``x-b3-flags``."""
    tid = headers.get("x-b3-traceid")
    sid = headers.get("x-b3-spanid")
    if not tid or not sid:
        return None
    trace_id = _b3_trace_id(tid)
    span_id = _b3_id(sid, (16,))
    if trace_id is None or span_id is None:
        return None
    sampled = (headers.get("x-b3-sampled") or "").strip().lower() in ("1", "true")
    debug = (headers.get("x-b3-flags") or "").strip() == "1"
    return SpanContext(trace_id, span_id, FLAG_SAMPLED if sampled or debug else 0, "")


def format_b3(trace_id: bytes, span_id: bytes, flags: int) -> str:
    return f"{trace_id.hex()}-{span_id.hex()}-{1 if flags & FLAG_SAMPLED else 0}"


def format_b3_multi(trace_id: bytes, span_id: bytes, flags: int) -> list[tuple[str, str]]:
    return [
        ("x-b3-traceid", trace_id.hex()),
        ("x-b3-spanid", span_id.hex()),
        ("x-b3-sampled", "1" if flags & FLAG_SAMPLED else "0"),
    ]


# -- baggage ----------------------------------------------------------------------------

_BAGGAGE_KEY = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def parse_baggage(value: str | None) -> dict[str, str]:
    """W3C baggage to ``{key: value}`` (percent-decoded, properties dropped).

    Bad members are skipped one by one; beyond 180 members or 8192 bytes the rest is
    ignored (the W3C limits), so a hostile header costs bounded work.
    """
    out: dict[str, str] = {}
    if not value:
        return out
    if len(value) > MAX_BAGGAGE_BYTES:
        value = value[:MAX_BAGGAGE_BYTES]
    for raw in value.split(",", MAX_BAGGAGE_MEMBERS)[:MAX_BAGGAGE_MEMBERS]:
        kv = raw.split(";", 1)[0]
        key, eq, val = kv.partition("=")
        key = key.strip()
        if not eq or not _BAGGAGE_KEY.match(key):
            continue
        try:
            out[unquote(key, errors="strict")] = unquote(val.strip(), errors="strict")
        except UnicodeDecodeError:
            continue
    return out


# -- extraction -------------------------------------------------------------------------


def extract(headers: Mapping[str, str]) -> SpanContext | None:
    """The context in ``headers``: W3C first, then B3 single, then B3 multi."""
    tp = headers.get("traceparent")
    if tp:
        ctx = parse_traceparent(tp, headers.get("tracestate"))
        if ctx is not None:
            return ctx
    b3 = headers.get("b3")
    if b3:
        ctx = parse_b3(b3)
        if ctx is not None:
            return ctx
    if "x-b3-traceid" in headers:
        return parse_b3_multi(headers)
    return None
