"""Hand-written OTLP protobuf encoder for llmtap's spans (pure-Python reference twin).

No protobuf objects are built: a span tuple (:class:`llmtap.gateway.spans.SpanData`)
is written straight to the bytes of one ``ScopeSpans.spans`` field (tag, length,
``Span`` message), and a batch of those becomes an ``ExportTraceServiceRequest`` by a
single join behind precomputed resource and scope bytes. Fields are written in field
number order, as protobuf's own serializer does. The compiled twin is
``_otlp.pyx``; both produce identical bytes.

Attribute values: ``str``, ``bool``, ``int`` (int64; larger ones become doubles),
``float``, ``bytes``, homogeneous or mixed ``list``/``tuple`` (an ``ArrayValue``),
``dict`` (a ``KeyValueList``); ``None`` drops the attribute; anything else is ``str()``-ed.
Lone surrogates become U+FFFD. Keys that name credentials (``authorization``,
``api-key``, ``cookie`` …) are dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from ..core._env import NO_EXTENSIONS
from .logs import is_secret_name

__all__ = ["OtlpEncoder", "OtlpEncoderPy"]

_VARINT1 = [bytes((i,)) for i in range(128)]
_MASK64 = (1 << 64) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_CACHE_MAX = 4096
_CACHE_STR_MAX = 128
_MAX_DEPTH = 16

_SPAN_ATTR = b"\x4a"  # Span.attributes (field 9, length-delimited)

_pack_d = struct.Struct("<d").pack
_pack_I = struct.Struct("<I").pack
_pack_ids = struct.Struct("<2s16s2s8s").pack
# kind (field 6, varint), start (7, fixed64), end (8, fixed64)
_pack_times = struct.Struct("<BBBQBQ").pack


def _varint(n: int) -> bytes:
    if n < 128:
        return _VARINT1[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _utf8(s: str) -> bytes:
    """UTF-8 of ``s``; lone surrogates (JSON allows ``\\ud800``) become U+FFFD and split
    pairs are joined, since invalid UTF-8 in a string field makes a receiver reject the
    whole request."""
    try:
        return s.encode()
    except UnicodeEncodeError:
        return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag + _varint(len(payload)) + payload


def _any_value(v: Any, depth: int = 0) -> bytes:
    """The bytes of an ``AnyValue`` message for ``v`` (``v`` is not ``None``)."""
    t = type(v)
    if t is str:
        b = _utf8(v)
        return b"\x0a" + _varint(len(b)) + b
    if t is bool:
        return b"\x10\x01" if v else b"\x10\x00"
    if t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            return b"\x18" + _varint(v & _MASK64)
        return b"\x21" + _pack_d(float(v))
    if t is float:
        return b"\x21" + _pack_d(v)
    if depth >= _MAX_DEPTH:
        return _any_value(str(v))
    if t is list or t is tuple:
        inner = b"".join(
            [_ld(b"\x0a", _any_value(x if x is not None else "", depth + 1)) for x in v]
        )
        return _ld(b"\x2a", inner)
    if t is dict:
        inner = b"".join(
            [
                _ld(b"\x0a", _key_value(k if type(k) is str else str(k), x, depth + 1))
                for k, x in v.items()
                if x is not None
            ]
        )
        return _ld(b"\x32", inner)
    if t is bytes:
        return _ld(b"\x3a", v)
    if isinstance(v, bool):
        return _any_value(bool(v), depth)
    if isinstance(v, int):
        return _any_value(int(v), depth)
    if isinstance(v, float):
        return _any_value(float(v), depth)
    if isinstance(v, str):
        return _any_value(str(v), depth)
    if isinstance(v, (list, tuple)):
        return _any_value(list(v), depth)
    if isinstance(v, Mapping):
        return _any_value(dict(v), depth)
    if isinstance(v, (bytearray, memoryview)):
        return _any_value(bytes(v), depth)
    return _any_value(str(v), depth)


def _check_id(b: Any, size: int, what: str) -> None:
    if type(b) is not bytes or len(b) != size:
        raise ValueError(f"{what} must be {size} bytes, got {b!r}")


def _key_value(key: str, v: Any, depth: int) -> bytes:
    kb = _utf8(key)
    return b"\x0a" + _varint(len(kb)) + kb + _ld(b"\x12", _any_value(v, depth))


class OtlpEncoder:
    """Encode spans and export requests for one resource and instrumentation scope.

    ``max_value_len`` truncates string attribute values (characters, like
    ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``); ``max_attributes`` caps attributes per
    span, the rest counted in ``dropped_attributes_count``.
    """

    def __init__(
        self,
        resource: Mapping[str, Any],
        scope_name: str,
        scope_version: str = "",
        *,
        max_value_len: int | None = None,
        max_attributes: int = 128,
    ) -> None:
        self.max_value_len = max_value_len
        self.max_attributes = max_attributes
        self._keys: dict[str, bytes | None] = {}
        self._attrs: dict[tuple[str, Any], bytes] = {}
        res = self._attributes_field(resource, b"\x0a")[0]
        scope = _ld(b"\x0a", _utf8(scope_name)) + (
            _ld(b"\x12", _utf8(scope_version)) if scope_version else b""
        )
        #: ``ResourceSpans.resource`` and ``ScopeSpans.scope`` fields, precomputed.
        self.resource_field = _ld(b"\x0a", res)
        self.scope_field = _ld(b"\x0a", scope)

    # -- attributes -------------------------------------------------------------------

    def _key(self, key: str) -> bytes | None:
        kf = self._keys.get(key)
        if kf is None and key not in self._keys:
            kf = None if is_secret_name(key) else _ld(b"\x0a", _utf8(key))
            if len(self._keys) >= _CACHE_MAX:
                self._keys.clear()
            self._keys[key] = kf
        return kf

    def _attr(self, tag: bytes, key: str, value: Any) -> bytes | None:
        """One attribute as a repeated ``KeyValue`` field with tag ``tag``."""
        t = type(value)
        if t is str:
            ml = self.max_value_len
            if ml is not None and len(value) > ml:
                value = value[:ml]
            if tag is _SPAN_ATTR and len(value) <= _CACHE_STR_MAX:
                # Span attributes repeat (provider, operation, model): cache whole fields.
                ck = (key, value)
                hit = self._attrs.get(ck)
                if hit is not None:
                    return hit
                kf = self._key(key)
                if kf is None:
                    return None
                vb = _utf8(value)
                av = b"\x0a" + _varint(len(vb)) + vb
                kv = kf + b"\x12" + _varint(len(av)) + av
                out = tag + _varint(len(kv)) + kv
                if len(self._attrs) >= _CACHE_MAX:
                    self._attrs.clear()
                self._attrs[ck] = out
                return out
        kf = self._key(key)
        if kf is None:
            return None
        if t is int and 0 <= value < 128:
            kv = kf + b"\x12\x02\x18" + _VARINT1[value]
        else:
            av = _any_value(value)
            kv = kf + b"\x12" + _varint(len(av)) + av
        return tag + _varint(len(kv)) + kv

    def _attributes_field(self, attrs: Mapping[str, Any], tag: bytes) -> tuple[bytes, int]:
        parts: list[bytes] = []
        dropped = 0
        limit = self.max_attributes
        attr = self._attr
        for key, value in attrs.items():
            if value is None:
                continue
            if len(parts) >= limit:
                dropped += 1
                continue
            f = attr(tag, key if type(key) is str else str(key), value)
            if f is not None:
                parts.append(f)
        return b"".join(parts), dropped

    # -- spans ------------------------------------------------------------------------

    def span(self, span: Sequence[Any]) -> bytes:
        """One ``ScopeSpans.spans`` field (tag 2, length, ``Span``) for a ``SpanData``."""
        (
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags,
            name,
            kind,
            start_ns,
            end_ns,
            attributes,
            status_code,
            status_message,
            events,
            links,
        ) = span
        _check_id(trace_id, 16, "trace_id")
        _check_id(span_id, 8, "span_id")
        if parent_span_id:
            _check_id(parent_span_id, 8, "parent_span_id")
        parts = [_pack_ids(b"\x0a\x10", trace_id, b"\x12\x08", span_id)]
        if trace_state:
            parts.append(_ld(b"\x1a", _utf8(trace_state)))
        if parent_span_id:
            parts.append(b"\x22\x08" + parent_span_id)
        nb = _utf8(name)
        parts.append(b"\x2a" + _varint(len(nb)) + nb)
        parts.append(_pack_times(0x30, kind, 0x39, start_ns, 0x41, end_ns))
        attrs, dropped = self._attributes_field(attributes, _SPAN_ATTR)
        parts.append(attrs)
        if dropped:
            parts.append(b"\x50" + _varint(dropped))
        for ev in events:
            parts.append(_ld(b"\x5a", self._event(ev)))
        for ln in links:
            parts.append(_ld(b"\x6a", self._link(ln)))
        if status_code or status_message:
            st = b""
            if status_message:
                st = _ld(b"\x12", _utf8(status_message))
            if status_code:
                st += b"\x18" + _varint(status_code & _MASK64)
            parts.append(_ld(b"\x7a", st))
        if flags:
            parts.append(b"\x85\x01" + _pack_I(flags))
        body = b"".join(parts)
        return b"\x12" + _varint(len(body)) + body

    def _event(self, ev: Sequence[Any]) -> bytes:
        time_ns, name, attrs = ev
        attrs_b, dropped = self._attributes_field(attrs, b"\x1a")
        out = b"\x09" + struct.pack("<Q", time_ns) + _ld(b"\x12", _utf8(name)) + attrs_b
        if dropped:
            out += b"\x20" + _varint(dropped)
        return out

    def _link(self, ln: Sequence[Any]) -> bytes:
        trace_id, span_id, trace_state, flags, attrs = ln
        _check_id(trace_id, 16, "link trace_id")
        _check_id(span_id, 8, "link span_id")
        out = b"\x0a\x10" + trace_id + b"\x12\x08" + span_id
        if trace_state:
            out += _ld(b"\x1a", _utf8(trace_state))
        attrs_b, dropped = self._attributes_field(attrs, b"\x22")
        out += attrs_b
        if dropped:
            out += b"\x28" + _varint(dropped)
        if flags:
            out += b"\x35" + _pack_I(flags)
        return out

    def request(self, spans: Sequence[bytes]) -> bytes:
        """An ``ExportTraceServiceRequest`` holding ``spans`` (outputs of :meth:`span`)."""
        ss_len = len(self.scope_field) + sum(map(len, spans))
        ss_hdr = b"\x12" + _varint(ss_len)
        rs_len = len(self.resource_field) + len(ss_hdr) + ss_len
        return b"".join(
            [b"\x0a", _varint(rs_len), self.resource_field, ss_hdr, self.scope_field, *spans]
        )


OtlpEncoderPy = OtlpEncoder

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):
        from ._otlp import OtlpEncoder  # type: ignore[no-redef]
