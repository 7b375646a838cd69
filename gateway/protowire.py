"""Protocol-buffer wire primitives for the cold paths of the ext_proc transport.

llmtap owns its wire contract instead of depending on generated Envoy classes: the hot
message (``ProcessingRequest`` with a body chunk) is decoded by ``extproc_wire`` (pure)
or ``_extproc_wire`` (compiled). Everything read at most a few times per exchange lives
here, shared by both twins: ``google.protobuf.Struct``/``Value``/``ListValue``,
``config.core.v3.Metadata``, the ``attributes`` map, ``google.protobuf.Any`` and Envoy's
``envoy.data.ai.v3.TokenUsage``; plus the encoders for the few responses llmtap sends.

Decoders here raise :class:`WireError` (a ``ValueError``) naming what was wrong and the
byte offset inside the buffer they were given; callers on the data path catch it.
"""

from __future__ import annotations

import struct as _struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any as _Any

__all__ = [
    "TOKEN_USAGE_TYPE_URL",
    "Metadata",
    "TokenUsage",
    "WireError",
    "decode_attributes",
    "decode_metadata",
    "decode_struct",
    "decode_token_usage",
    "encode_struct",
]

Buffer = bytes | bytearray | memoryview

#: ``Any.type_url`` of Envoy's typed token usage record.
TOKEN_USAGE_TYPE_URL = "type.googleapis.com/envoy.data.ai.v3.TokenUsage"

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
_MAX_NESTING = 64  # Struct values nest; a bound keeps hostile input off the C stack.
_unpack_double = _struct.Struct("<d").unpack_from
_pack_double = _struct.Struct("<d").pack


class WireError(ValueError):
    """A protobuf message could not be decoded; the message says what and where."""


# -- reading ----------------------------------------------------------------------------


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Return ``(value, next_pos)`` for the varint at ``pos``; at most 10 bytes."""
    result = 0
    shift = 0
    start = pos
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint longer than 10 bytes at offset {start}")
    raise WireError(f"truncated varint at offset {start}")


def iter_fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field, wire_type, value, pos)`` for each field in ``buf[pos:end]``.

    For length-delimited fields ``value`` is the start of the payload and ``pos`` its
    end; otherwise ``value`` is the scalar (fixed-width ones as unsigned ints) and
    ``pos`` the offset after it.
    """
    while pos < end:
        at = pos
        key, pos = read_varint(buf, pos, end)
        field = key >> 3
        wt = key & 7
        if field == 0:
            raise WireError(f"invalid field number 0 at offset {at}")
        if wt == _VARINT:
            value, pos = read_varint(buf, pos, end)
            yield field, wt, value, pos
        elif wt == _LEN:
            n, pos = read_varint(buf, pos, end)
            if n > end - pos:
                raise WireError(
                    f"field {field} length {n} overruns the message at offset {at} "
                    f"({end - pos} bytes left)"
                )
            yield field, wt, pos, pos + n
            pos += n
        elif wt == _I64:
            if end - pos < 8:
                raise WireError(f"truncated 64-bit field {field} at offset {at}")
            yield field, wt, int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
            pos += 8
        elif wt == _I32:
            if end - pos < 4:
                raise WireError(f"truncated 32-bit field {field} at offset {at}")
            yield field, wt, int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wt} for field {field} at offset {at}")


def _expect(field: int, wt: int, want: int, at: int) -> None:
    if wt != want:
        raise WireError(f"field {field} has wire type {wt}, expected {want}, at offset {at}")


def _text(buf: memoryview, start: int, end: int) -> str:
    return str(buf[start:end], "utf-8", "replace")


def _as_view(data: Buffer) -> memoryview:
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


# -- google.protobuf.Struct ---------------------------------------------------------------


def _value(buf: memoryview, start: int, end: int, depth: int) -> object:
    if depth > _MAX_NESTING:
        raise WireError(f"Struct nested deeper than {_MAX_NESTING} at offset {start}")
    out: object = None
    for field, wt, v, pos in iter_fields(buf, start, end):
        if field == 1:  # null_value
            out = None
        elif field == 2:  # number_value
            _expect(field, wt, _I64, pos)
            out = _unpack_double(buf, pos - 8)[0]
        elif field == 3:  # string_value
            _expect(field, wt, _LEN, v)
            out = _text(buf, v, pos)
        elif field == 4:  # bool_value
            _expect(field, wt, _VARINT, pos)
            out = bool(v)
        elif field == 5:  # struct_value
            _expect(field, wt, _LEN, v)
            out = _struct_fields(buf, v, pos, depth + 1)
        elif field == 6:  # list_value
            _expect(field, wt, _LEN, v)
            out = [
                _value(buf, s, e, depth + 1)
                for f, w, s, e in iter_fields(buf, v, pos)
                if f == 1 and w == _LEN
            ]
    return out


def _struct_fields(buf: memoryview, start: int, end: int, depth: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for field, wt, v, pos in iter_fields(buf, start, end):
        if field != 1 or wt != _LEN:
            continue
        key = ""
        value: object = None
        for f, w, s, e in iter_fields(buf, v, pos):
            if f == 1 and w == _LEN:
                key = _text(buf, s, e)
            elif f == 2 and w == _LEN:
                value = _value(buf, s, e, depth)
        out[key] = value
    return out


def decode_struct(data: Buffer) -> dict[str, object]:
    """Decode a ``google.protobuf.Struct`` into plain Python values.

    Numbers are ``float`` (Struct numbers are doubles), null is ``None``.
    """
    buf = _as_view(data)
    return _struct_fields(buf, 0, len(buf), 0)


def _map_entry(buf: memoryview, start: int, end: int) -> tuple[str, int, int]:
    """``(key, value_start, value_end)`` of one ``map<string, Message>`` entry."""
    key = ""
    vs = ve = start
    for f, w, s, e in iter_fields(buf, start, end):
        if f == 1 and w == _LEN:
            key = _text(buf, s, e)
        elif f == 2 and w == _LEN:
            vs, ve = s, e
    return key, vs, ve


# -- ProcessingRequest.metadata_context / attributes --------------------------------------


class Metadata:
    """``envoy.config.core.v3.Metadata``: untyped and typed filter metadata by namespace."""

    __slots__ = ("filter_metadata", "typed_filter_metadata")

    def __init__(
        self,
        filter_metadata: dict[str, dict[str, object]] | None = None,
        typed_filter_metadata: dict[str, tuple[str, bytes]] | None = None,
    ) -> None:
        #: namespace -> decoded Struct
        self.filter_metadata = filter_metadata if filter_metadata is not None else {}
        #: namespace -> (``Any.type_url``, ``Any.value``)
        self.typed_filter_metadata = (
            typed_filter_metadata if typed_filter_metadata is not None else {}
        )

    def token_usage(self, namespace: str = "envoy.ai.token_usage") -> TokenUsage | None:
        """The typed ``TokenUsage`` published under ``namespace``, if any.

        Raises :class:`WireError` if it is present but malformed or of another type.
        """
        entry = self.typed_filter_metadata.get(namespace)
        if entry is None:
            return None
        type_url, value = entry
        if type_url.rsplit("/", 1)[-1] != "envoy.data.ai.v3.TokenUsage":
            raise WireError(f"metadata {namespace!r} holds {type_url!r}, not TokenUsage")
        return decode_token_usage(value)

    def __repr__(self) -> str:
        return (
            f"Metadata(filter_metadata={self.filter_metadata!r}, "
            f"typed_filter_metadata={self.typed_filter_metadata!r})"
        )


def decode_metadata(data: Buffer, field: int = 8) -> Metadata:
    """Collect field ``field`` (``metadata_context``) of a top-level ProcessingRequest.

    Repeated occurrences merge, as protobuf parsers do.
    """
    buf = _as_view(data)
    md = Metadata()
    for f, w, s, e in iter_fields(buf, 0, len(buf)):
        if f != field or w != _LEN:
            continue
        for mf, mw, ms, me in iter_fields(buf, s, e):
            if mw != _LEN:
                continue
            if mf == 1:
                key, vs, ve = _map_entry(buf, ms, me)
                md.filter_metadata[key] = _struct_fields(buf, vs, ve, 0)
            elif mf == 2:
                key, vs, ve = _map_entry(buf, ms, me)
                type_url = ""
                value = b""
                for af, aw, a_s, a_e in iter_fields(buf, vs, ve):
                    if af == 1 and aw == _LEN:
                        type_url = _text(buf, a_s, a_e)
                    elif af == 2 and aw == _LEN:
                        value = bytes(buf[a_s:a_e])
                md.typed_filter_metadata[key] = (type_url, value)
    return md


def decode_attributes(data: Buffer, field: int = 9) -> dict[str, dict[str, object]]:
    """Collect the ``map<string, Struct> attributes`` (field 9) of a ProcessingRequest.

    Envoy keys the map by filter name (``envoy.filters.http.ext_proc``); each Struct
    maps attribute names (``request.path``, ``xds.cluster_name``...) to values.
    """
    buf = _as_view(data)
    out: dict[str, dict[str, object]] = {}
    for f, w, s, e in iter_fields(buf, 0, len(buf)):
        if f == field and w == _LEN:
            key, vs, ve = _map_entry(buf, s, e)
            out[key] = _struct_fields(buf, vs, ve, 0)
    return out


# -- envoy.data.ai.v3.TokenUsage ----------------------------------------------------------


class TokenUsage:
    """Envoy's canonical token usage (``envoy.data.ai.v3.TokenUsage``), alpha in Envoy.

    Counts follow Envoy's *inclusive* contract: ``input_tokens`` includes cached reads,
    cache writes and tool-use prompt tokens; ``output_tokens`` includes reasoning. The
    details are subsets. Every count is ``None`` when Envoy did not publish it.
    ``api_protocol``: 0 unspecified, 1 OpenAI chat completions, 2 OpenAI Responses,
    3 Anthropic messages, 4 Gemini generateContent. ``extraction_status``: 0 unspecified,
    1 complete, 2 partial, 3 failed.
    """

    __slots__ = (
        "api_protocol",
        "cache_creation_tokens",
        "cached_tokens",
        "extraction_status",
        "input_tokens",
        "model",
        "output_tokens",
        "provider_total_tokens",
        "reasoning_tokens",
        "tool_use_tokens",
        "total_tokens",
    )

    API_PROTOCOLS = (
        "unspecified",
        "openai_chat_completions",
        "openai_responses",
        "anthropic_messages",
        "gemini_generate_content",
    )
    STATUSES = ("unspecified", "complete", "partial", "failed")

    def __init__(self) -> None:
        self.api_protocol = 0
        self.model = ""
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.total_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.cache_creation_tokens: int | None = None
        self.tool_use_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.provider_total_tokens: int | None = None
        self.extraction_status = 0

    @property
    def api_protocol_name(self) -> str:
        p = self.api_protocol
        return self.API_PROTOCOLS[p] if 0 <= p < len(self.API_PROTOCOLS) else str(p)

    @property
    def status_name(self) -> str:
        s = self.extraction_status
        return self.STATUSES[s] if 0 <= s < len(self.STATUSES) else str(s)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUsage) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v is not None)
        return f"TokenUsage({fields})"


def _uint64_value(buf: memoryview, start: int, end: int) -> int:
    value = 0
    for f, w, v, _ in iter_fields(buf, start, end):
        if f == 1 and w == _VARINT:
            value = v
    return value


def decode_token_usage(data: Buffer) -> TokenUsage:
    """Decode an ``envoy.data.ai.v3.TokenUsage`` (the ``Any.value`` bytes)."""
    buf = _as_view(data)
    u = TokenUsage()
    for f, w, v, pos in iter_fields(buf, 0, len(buf)):
        if f == 1 and w == _VARINT:
            u.api_protocol = v
        elif f == 2 and w == _LEN:
            u.model = _text(buf, v, pos)
        elif f in (3, 4, 5, 8) and w == _LEN:
            name = {3: "input_tokens", 4: "output_tokens", 5: "total_tokens"}.get(
                f, "provider_total_tokens"
            )
            setattr(u, name, _uint64_value(buf, v, pos))
        elif f == 6 and w == _LEN:
            for df, dw, dv, dpos in iter_fields(buf, v, pos):
                if dw == _LEN and df in (1, 2, 3):
                    name = ("cached_tokens", "cache_creation_tokens", "tool_use_tokens")[df - 1]
                    setattr(u, name, _uint64_value(buf, dv, dpos))
        elif f == 7 and w == _LEN:
            for df, dw, dv, dpos in iter_fields(buf, v, pos):
                if df == 1 and dw == _LEN:
                    u.reasoning_tokens = _uint64_value(buf, dv, dpos)
        elif f == 9 and w == _VARINT:
            u.extraction_status = v
    return u


# -- writing ------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """Encode a non-negative int (negative int32/int64 as 10-byte two's complement)."""
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def field_len(field: int, payload: bytes) -> bytes:
    """A length-delimited field (submessage, string or bytes)."""
    return tag(field, _LEN) + varint(len(payload)) + payload


def field_varint(field: int, value: int) -> bytes:
    return tag(field, _VARINT) + varint(value)


def encode_value(value: object, depth: int = 0) -> bytes:
    """Encode one ``google.protobuf.Value``."""
    if depth > _MAX_NESTING:
        raise ValueError(f"value nested deeper than {_MAX_NESTING}")
    if value is None:
        return field_varint(1, 0)
    if isinstance(value, bool):
        return field_varint(4, int(value))
    if isinstance(value, int | float):
        return tag(2, _I64) + _pack_double(float(value))
    if isinstance(value, str):
        return field_len(3, value.encode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return field_len(5, encode_struct(value, depth + 1))
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = b"".join(field_len(1, encode_value(v, depth + 1)) for v in value)
        return field_len(6, items)
    raise TypeError(f"cannot encode {type(value).__name__} as google.protobuf.Value")


def encode_struct(fields: Mapping[str, _Any], depth: int = 0) -> bytes:
    """Encode a mapping as a ``google.protobuf.Struct`` (keys in the mapping's order)."""
    out = bytearray()
    for key, value in fields.items():
        entry = field_len(1, str(key).encode("utf-8", "replace")) + field_len(
            2, encode_value(value, depth)
        )
        out += field_len(1, entry)
    return bytes(out)
