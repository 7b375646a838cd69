"""The ext_proc wire codec: ``ProcessingRequest`` in, ``ProcessingResponse`` out.

llmtap registers ``envoy.service.ext_proc.v3.ExternalProcessor/Process`` as a generic
gRPC handler without a deserializer, so every message arrives as the raw bytes grpcio
read off the wire. :func:`decode_request` reads the few fields llmtap needs straight
from those bytes (field numbers as in Envoy's ``external_processor.proto``); a body
chunk comes back as a ``memoryview`` of the message buffer, so the bytes reach the
scanner without a copy. Metadata and attributes are decoded only when asked for
(:meth:`ProcessingRequest.metadata`, :meth:`ProcessingRequest.attributes`).

This module is the reference implementation. ``_extproc_wire.pyx`` is the compiled twin
of :class:`ProcessingRequest` and :func:`decode_request`; it is imported over them at
the end of this module unless ``LLMTAP_NO_EXTENSIONS`` is set. The encoders are pure
Python in both cases: llmtap answers with a handful of small, mostly constant messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import NamedTuple

from llmtap.core._env import NO_EXTENSIONS
from llmtap.gateway.protowire import (
    Buffer,
    Metadata,
    WireError,
    decode_attributes,
    decode_metadata,
    encode_struct,
    field_len,
    field_varint,
    read_varint,
)

__all__ = [
    "CONTINUE",
    "NO_REQUEST",
    "REQUEST_BODY",
    "REQUEST_HEADERS",
    "REQUEST_TRAILERS",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "RESPONSE_TRAILERS",
    "HeaderMutation",
    "ProcessingMode",
    "ProcessingRequest",
    "decode_request",
    "encode_response",
]

# ProcessingRequest.request oneof: the field number is the message kind.
NO_REQUEST = 0
REQUEST_HEADERS = 2
RESPONSE_HEADERS = 3
REQUEST_BODY = 4
RESPONSE_BODY = 5
REQUEST_TRAILERS = 6
RESPONSE_TRAILERS = 7

KIND_NAMES = {
    NO_REQUEST: "none",
    REQUEST_HEADERS: "request_headers",
    RESPONSE_HEADERS: "response_headers",
    REQUEST_BODY: "request_body",
    RESPONSE_BODY: "response_body",
    REQUEST_TRAILERS: "request_trailers",
    RESPONSE_TRAILERS: "response_trailers",
}

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class ProcessingRequest:
    """One decoded ``envoy.service.ext_proc.v3.ProcessingRequest``.

    * ``kind``: which ``request`` oneof field was set (``REQUEST_HEADERS``...), or
      ``NO_REQUEST``.
    * ``headers``: for header and trailer kinds, ``{lowercased name: value}``; the value
      is ``raw_value`` when non-empty, else ``value``, decoded as UTF-8 (invalid bytes
      replaced); repeated names are joined with ``", "``. ``None`` for other kinds.
    * ``body``: for body kinds, a ``memoryview`` into the message buffer; else ``None``.
    * ``end_of_stream``: ``HttpHeaders.end_of_stream`` / ``HttpBody.end_of_stream``.
    * ``observability_mode``: Envoy does not wait for (and ignores) answers.
    * ``request_body_mode`` / ``response_body_mode``: from ``protocol_config`` (only on
      the first message of a stream), ``-1`` when absent.
    * ``error``: ``None``, or what made the message undecodable and at which byte
      offset. Then ``headers``/``body`` are ``None`` and ``kind`` and
      ``observability_mode`` hold what was read before the error, so a server can still
      answer ``CONTINUE`` for that kind.
    """

    __slots__ = (
        "_buf",
        "body",
        "end_of_stream",
        "error",
        "headers",
        "kind",
        "observability_mode",
        "request_body_mode",
        "response_body_mode",
    )

    def __init__(self) -> None:
        self.kind = NO_REQUEST
        self.headers: dict[str, str] | None = None
        self.body: memoryview | None = None
        self.end_of_stream = False
        self.observability_mode = False
        self.request_body_mode = -1
        self.response_body_mode = -1
        self.error: str | None = None
        self._buf: memoryview = memoryview(b"")

    def metadata(self) -> Metadata:
        """``metadata_context`` (dynamic metadata Envoy forwarded); raises WireError."""
        return decode_metadata(self._buf)

    def attributes(self) -> dict[str, dict[str, object]]:
        """The ``attributes`` map (filter name -> attribute values); raises WireError."""
        return decode_attributes(self._buf)

    def __repr__(self) -> str:
        parts = [f"kind={KIND_NAMES.get(self.kind, self.kind)}"]
        if self.headers is not None:
            parts.append(f"headers={self.headers!r}")
        if self.body is not None:
            parts.append(f"body=<{len(self.body)} bytes>")
        parts.append(f"end_of_stream={self.end_of_stream}")
        if self.observability_mode:
            parts.append("observability_mode=True")
        if self.error is not None:
            parts.append(f"error={self.error!r}")
        return f"ProcessingRequest({', '.join(parts)})"


# The compiled twin is imported over the public name; the pure decoder keeps its own.
_PureRequest = ProcessingRequest


def _skip(buf: memoryview, pos: int, end: int, wt: int, field: int, at: int) -> int:
    if wt == _VARINT:
        return read_varint(buf, pos, end)[1]
    if wt == _LEN:
        return _len(buf, pos, end, field, wt, at)[1]
    if wt == _I64:
        if end - pos < 8:
            raise WireError(f"truncated 64-bit field {field} at offset {at}")
        return pos + 8
    if wt == _I32:
        if end - pos < 4:
            raise WireError(f"truncated 32-bit field {field} at offset {at}")
        return pos + 4
    raise WireError(f"unsupported wire type {wt} for field {field} at offset {at}")


def _key(buf: memoryview, pos: int, end: int) -> tuple[int, int, int]:
    at = pos
    key, pos = read_varint(buf, pos, end)
    if key >> 3 == 0:
        raise WireError(f"invalid field number 0 at offset {at}")
    return key >> 3, key & 7, pos


def _len(buf: memoryview, pos: int, end: int, field: int, wt: int, at: int) -> tuple[int, int]:
    """Payload bounds of a length-delimited field whose key was read at ``at``."""
    if wt != _LEN:
        raise WireError(f"field {field} has wire type {wt}, expected 2, at offset {at}")
    n, pos = read_varint(buf, pos, end)
    if n > end - pos:
        raise WireError(
            f"field {field} length {n} overruns the message at offset {at} ({end - pos} bytes left)"
        )
    return pos, pos + n


def _flag(buf: memoryview, pos: int, end: int, field: int, wt: int, at: int) -> tuple[bool, int]:
    if wt != _VARINT:
        raise WireError(f"field {field} has wire type {wt}, expected 0, at offset {at}")
    v, pos = read_varint(buf, pos, end)
    return v != 0, pos


def _header_map(buf: memoryview, pos: int, end: int, headers: dict[str, str]) -> None:
    while pos < end:
        at = pos
        field, wt, pos = _key(buf, pos, end)
        if field != 1:
            pos = _skip(buf, pos, end, wt, field, at)
            continue
        start, stop = _len(buf, pos, end, field, wt, at)
        pos = stop
        key = b""
        value = b""
        raw = b""
        while start < stop:
            hat = start
            hf, hw, start = _key(buf, start, stop)
            if hf in (1, 2, 3):
                s, e = _len(buf, start, stop, hf, hw, hat)
                start = e
                if hf == 1:
                    key = bytes(buf[s:e])
                elif hf == 2:
                    value = bytes(buf[s:e])
                else:
                    raw = bytes(buf[s:e])
            else:
                start = _skip(buf, start, stop, hw, hf, hat)
        # ASCII-only lowering (bytes.lower): header names are tokens, Envoy sends them
        # lowercased already; this only guards against other producers.
        name = key.lower().decode("utf-8", "replace")
        text = (raw or value).decode("utf-8", "replace")
        prev = headers.get(name)
        headers[name] = text if prev is None else f"{prev}, {text}"


def _decode(req: ProcessingRequest, buf: memoryview) -> None:
    pos = 0
    end = len(buf)
    while pos < end:
        at = pos
        field, wt, pos = _key(buf, pos, end)
        if REQUEST_HEADERS <= field <= RESPONSE_TRAILERS:
            if field != req.kind:
                # A different oneof case replaces the previous one; the same case
                # appearing twice merges into it, as protobuf parsers do. The kind is
                # taken before the payload is checked so a broken one can still be
                # answered.
                req.kind = field
                req.headers = None
                req.body = None
                req.end_of_stream = False
            start, stop = _len(buf, pos, end, field, wt, at)
            pos = stop
            if field in (REQUEST_BODY, RESPONSE_BODY):
                if req.body is None:
                    req.body = buf[0:0]
                while start < stop:
                    sat = start
                    sf, sw, start = _key(buf, start, stop)
                    if sf == 1:
                        s, e = _len(buf, start, stop, sf, sw, sat)
                        req.body = buf[s:e]
                        start = e
                    elif sf == 2:
                        req.end_of_stream, start = _flag(buf, start, stop, sf, sw, sat)
                    else:
                        start = _skip(buf, start, stop, sw, sf, sat)
            else:
                if req.headers is None:
                    req.headers = {}
                headers = req.headers
                trailers = field >= REQUEST_TRAILERS
                while start < stop:
                    sat = start
                    sf, sw, start = _key(buf, start, stop)
                    if sf == 1:
                        s, e = _len(buf, start, stop, sf, sw, sat)
                        _header_map(buf, s, e, headers)
                        start = e
                    elif sf == 3 and not trailers:
                        req.end_of_stream, start = _flag(buf, start, stop, sf, sw, sat)
                    else:
                        start = _skip(buf, start, stop, sw, sf, sat)
        elif field == 10:
            req.observability_mode, pos = _flag(buf, pos, end, field, wt, at)
        elif field == 11:
            start, stop = _len(buf, pos, end, field, wt, at)
            pos = stop
            if req.request_body_mode < 0:
                req.request_body_mode = 0
                req.response_body_mode = 0
            while start < stop:
                sat = start
                sf, sw, start = _key(buf, start, stop)
                if sf in (1, 2) and sw == _VARINT:
                    v, start = read_varint(buf, start, stop)
                    # Enum values are int32; anything else is garbage, reported as -1.
                    mode = v if v <= 0x7FFFFFFF else -1
                    if sf == 1:
                        req.request_body_mode = mode
                    else:
                        req.response_body_mode = mode
                else:
                    start = _skip(buf, start, stop, sw, sf, sat)
        else:
            pos = _skip(buf, pos, end, wt, field, at)


def decode_request(data: Buffer) -> ProcessingRequest:
    """Decode one ``ProcessingRequest``; never raises on bad input (see ``error``)."""
    req = _PureRequest()
    buf = data if isinstance(data, memoryview) else memoryview(data)
    if buf.format != "B" or buf.ndim != 1:
        buf = buf.cast("B")
    req._buf = buf
    try:
        _decode(req, buf)
    except WireError as exc:
        req.error = f"invalid ProcessingRequest: {exc}"
        req.headers = None
        req.body = None
        req.end_of_stream = False
    return req


# -- responses ----------------------------------------------------------------------------


class ProcessingMode(NamedTuple):
    """``envoy.extensions.filters.http.ext_proc.v3.ProcessingMode`` for ``mode_override``.

    Header/trailer modes: 0 DEFAULT (no change), 1 SEND, 2 SKIP. Body modes: 0 NONE,
    1 STREAMED, 2 BUFFERED, 3 BUFFERED_PARTIAL, 4 FULL_DUPLEX_STREAMED. ``NONE`` is the
    protobuf default, so an override always states the body modes it wants.
    """

    request_header_mode: int = 0
    response_header_mode: int = 0
    request_body_mode: int = 0
    response_body_mode: int = 0
    request_trailer_mode: int = 0
    response_trailer_mode: int = 0

    def encode(self) -> bytes:
        return b"".join(field_varint(i + 1, v) for i, v in enumerate(self) if v)


class HeaderMutation(NamedTuple):
    """Headers to set (name, value) and to remove."""

    set_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()

    def encode(self) -> bytes:
        out = bytearray()
        for name, value in self.set_headers:
            # HeaderValue{key, raw_value}; append_action OVERWRITE_IF_EXISTS_OR_ADD so an
            # injected traceparent replaces the client's instead of duplicating it.
            hv = field_len(1, name.encode()) + field_len(3, value.encode())
            out += field_len(1, field_len(1, hv) + field_varint(3, 2))
        for name in self.remove_headers:
            out += field_len(2, name.encode())
        return bytes(out)


def encode_response(
    kind: int,
    *,
    headers: HeaderMutation | None = None,
    dynamic_metadata: Mapping[str, Mapping[str, object]] | None = None,
    mode_override: ProcessingMode | None = None,
) -> bytes:
    """Encode the ``ProcessingResponse`` answering a request of ``kind``: CONTINUE.

    ``headers`` applies to header and trailer answers (ignored for bodies, where Envoy
    applies mutations only in BUFFERED mode). ``dynamic_metadata`` is a Struct whose
    top-level keys are namespaces (Envoy accepts only those listed in
    ``metadata_options.receiving_namespaces``). ``mode_override`` only has an effect on
    header answers.
    """
    if not REQUEST_HEADERS <= kind <= RESPONSE_TRAILERS:
        raise ValueError(f"cannot answer a ProcessingRequest of kind {kind}")
    mutation = headers.encode() if headers is not None else b""
    if kind >= REQUEST_TRAILERS:
        inner = field_len(1, mutation) if mutation else b""  # TrailersResponse
    elif kind <= RESPONSE_HEADERS:
        # HeadersResponse{response: CommonResponse{header_mutation}}; status CONTINUE is 0.
        inner = field_len(1, field_len(2, mutation)) if mutation else b""
    else:
        inner = b""  # BodyResponse{}: CONTINUE, body untouched
    # ProcessingResponse fields 1..6 mirror the request kinds 2..7.
    out = field_len(kind - 1, inner)
    if dynamic_metadata:
        out += field_len(8, encode_struct(dynamic_metadata))
    if mode_override is not None:
        out += field_len(9, mode_override.encode())
    return out


#: The constant answers: CONTINUE, no mutation, by request kind.
CONTINUE: dict[int, bytes] = {
    k: encode_response(k) for k in range(REQUEST_HEADERS, RESPONSE_TRAILERS + 1)
}


ProcessingRequestPy = ProcessingRequest
decode_request_py = decode_request

if not NO_EXTENSIONS:
    with suppress(ImportError):
        from llmtap.gateway._extproc_wire import (  # type: ignore[no-redef]
            ProcessingRequest,
            decode_request,
        )
