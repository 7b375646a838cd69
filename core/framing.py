"""Push framers for the wire formats LLM providers stream responses in.

Each framer takes the response body in whatever chunks the network delivers
(``bytes``, ``bytearray`` or ``memoryview``, any split) and returns the complete
frames each chunk finishes: ``feed(chunk) -> list``, ``close() -> list`` at the end
of the stream.

Common rules (identical in the pure-Python and the compiled twin):

* Frames that lie inside one chunk are ``memoryview`` slices of it (zero copy); the
  caller must not mutate a chunk while it holds frames from it. A frame that spans
  chunks is assembled in a carry-over buffer and returned as ``bytes``.
* A frame may hold at most ``max_frame`` bytes. The byte that would make it longer
  is an error, reported with the offset of the frame's first byte; so the carry-over
  never grows past ``max_frame`` and the outcome does not depend on the chunking.
* Bad input never raises: the framer records the first problem in ``error`` (what,
  and at which byte offset of the stream) and stops; ``feed``/``close`` then return
  ``[]``. Offsets count the bytes fed, from 0.
* ``truncated`` is set by ``close()`` when the stream ended inside a frame.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from ._env import NO_EXTENSIONS

__all__ = [
    "EVENTSTREAM_MAX_FRAME",
    "MAX_FRAME",
    "EventStreamFramer",
    "EventStreamMessage",
    "Framer",
    "JSONArrayFramer",
    "JSONBodyFramer",
    "NDJSONFramer",
    "SSEEvent",
    "SSEFramer",
    "framer_for",
]

#: Default bound on one frame (and on the carry-over buffer that assembles it).
MAX_FRAME = 8 * 1024 * 1024
#: AWS caps one event stream message at 16 MiB.
EVENTSTREAM_MAX_FRAME = 16 * 1024 * 1024

Chunk = bytes | bytearray | memoryview
FrameData = bytes | memoryview

_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"[\r\n]")
_JSON_WS = b" \t\r\n"
# Inside a JSON value only these bytes change the framer's state.
_STRUCTURAL = re.compile(rb'[\[\]{}",]')
_STRING_STOP = re.compile(rb'["\\]')
_INT64_MAX = (1 << 63) - 1


class SSEEvent(NamedTuple):
    """One dispatched server-sent event.

    ``event`` is the ``event:`` name (``None`` when absent or empty); ``data`` the
    ``data:`` lines joined with ``\\n``; ``id`` the last event ID (it persists across
    events, per the WHATWG spec; ``None`` until an ``id:`` field is seen); ``retry``
    the ``retry:`` value given inside this event, else ``None``.
    """

    event: str | None
    data: FrameData
    id: str | None
    retry: int | None


class EventStreamMessage(NamedTuple):
    """One AWS event stream message.

    ``error`` is ``None`` for a good message. A message whose CRC did not match or
    whose headers are malformed comes with ``error`` set, empty ``headers`` and the
    (untrusted) payload; a prelude CRC mismatch gives an empty payload and is the
    framer's last frame.
    """

    headers: dict[str, object]
    payload: FrameData
    error: str | None = None

    @property
    def event_type(self) -> str | None:
        return _str_header(self.headers, ":event-type")

    @property
    def message_type(self) -> str | None:
        return _str_header(self.headers, ":message-type")

    @property
    def exception_type(self) -> str | None:
        return _str_header(self.headers, ":exception-type")


def _str_header(headers: dict[str, object], name: str) -> str | None:
    v = headers.get(name)
    return v if isinstance(v, str) else None


def _view(data: Chunk) -> memoryview:
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    return mv


def _searchable(data: Chunk, mv: memoryview) -> bytes | bytearray:
    # memoryview has no find(); the compiled twin searches the buffer in place.
    if isinstance(data, bytes | bytearray):
        return data
    return mv.tobytes()


def _check_max_frame(max_frame: int) -> None:
    if max_frame < 1:
        raise ValueError(f"max_frame must be >= 1, got {max_frame}")


def _too_long(what: str, max_frame: int, start: int) -> str:
    return f"{what} longer than {max_frame} bytes (max_frame) at offset {start}"


class _Framer:
    """State shared by every framer: the error/truncated flags and the stream offset."""

    def __init__(self, max_frame: int) -> None:
        _check_max_frame(max_frame)
        self._max = max_frame
        self._error: str | None = None
        self._truncated = False
        self._closed = False
        self._offset = 0  # stream offset of the next byte fed

    @property
    def error(self) -> str | None:
        """The first problem found in the stream, or ``None``."""
        return self._error

    @property
    def truncated(self) -> bool:
        """``close()`` found the stream ended inside a frame."""
        return self._truncated

    @property
    def max_frame(self) -> int:
        return self._max


class SSEFramer(_Framer):
    """``text/event-stream`` per the WHATWG "event stream interpretation".

    Lines end with LF, CRLF or a bare CR (also a CR ending one chunk and its LF
    starting the next); a UTF-8 BOM is skipped at stream start only; ``:`` lines are
    comments; a line without a colon is a field with an empty value; one space after
    the colon is dropped; ``data`` lines are joined with ``\\n``; a blank line
    dispatches the event unless no ``data`` line was seen; ``id`` values containing
    NUL are ignored; ``retry`` takes ASCII digits only (up to 2**63-1, else ignored).
    ``event``/``id`` are decoded as UTF-8 with replacement, ``data`` stays bytes.

    ``data`` is a ``memoryview`` of the chunk when the event has one ``data`` line and
    that line and the blank line after it arrive in the same chunk; else ``bytes``.
    ``max_frame`` bounds each line and each event's joined data. An incomplete event
    at end of stream is discarded and ``close()`` sets ``truncated``.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._bom = 0  # BOM bytes matched at stream start; -1 once past it
        self._line = bytearray()  # partial line carried over from the previous chunk
        self._line_start = 0
        self._cr = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._data: bytearray | memoryview | None = None
        self._ndata = 0
        self._event = b""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, data: Chunk) -> list[SSEEvent]:
        if self._error is not None or self._closed:
            return []
        mv = _view(data)
        n = len(mv)
        if n == 0:
            return []
        buf = _searchable(data, mv)
        base = self._offset
        self._offset += n
        out: list[SSEEvent] = []
        pos = 0
        if self._bom >= 0:
            k = min(3 - self._bom, n)
            if buf[:k] == _BOM[self._bom : self._bom + k]:
                self._bom += k
                if self._bom < 3:
                    return out
                pos = k
            else:
                # A false start: the bytes held back belong to the first line.
                self._line += _BOM[: self._bom]
                self._line_start = 0
            self._bom = -1
        if self._cr:
            self._cr = False
            if pos < n and buf[pos] == 0x0A:
                pos += 1
        limit = self._max
        while pos < n:
            m = _EOL.search(buf, pos)
            end = n if m is None else m.start()
            carried = len(self._line)
            if carried + end - pos > limit:
                start = self._line_start if carried else base + pos
                self._error = _too_long("SSE line", limit, start)
                return out
            if m is None:
                if not carried:
                    self._line_start = base + pos
                self._line += mv[pos:]
                break
            if buf[end] == 0x0D:
                if end + 1 < n:
                    nxt = end + 2 if buf[end + 1] == 0x0A else end + 1
                else:
                    self._cr = True
                    nxt = end + 1
            else:
                nxt = end + 1
            if carried:
                self._line += mv[pos:end]
                line = bytes(self._line)
                self._line.clear()
                self._on_line(line, 0, len(line), None, self._line_start, out)
            else:
                self._on_line(buf, pos, end, mv, base + pos, out)
            if self._error is not None:
                return out
            pos = nxt
        if isinstance(self._data, memoryview):
            # The event is still open: it must not keep referencing this chunk.
            self._data = bytearray(self._data)
        return out

    def close(self) -> list[SSEEvent]:
        if self._error is not None or self._closed:
            return []
        self._closed = True
        if self._line or self._ndata or self._bom > 0:
            self._truncated = True
        self._line.clear()
        self._data = None
        self._ndata = 0
        return []

    def _on_line(
        self,
        src: bytes | bytearray,
        s: int,
        e: int,
        mv: memoryview | None,
        start: int,
        out: list[SSEEvent],
    ) -> None:
        if s == e:
            self._dispatch(out)
            return
        colon = src.find(b":", s, e)
        if colon == s:
            return
        if colon < 0:
            name = src[s:e]
            vs = e
        else:
            name = src[s:colon]
            vs = colon + 1
            if vs < e and src[vs] == 0x20:
                vs += 1
        if name == b"data":
            size = e - vs
            if self._ndata:
                size += len(self._data or b"") + 1
            if size > self._max:
                self._error = _too_long("SSE event data", self._max, start)
                return
            if not self._ndata:
                self._data = mv[vs:e] if mv is not None else bytearray(src[vs:e])
            else:
                if not isinstance(self._data, bytearray):
                    self._data = bytearray(self._data or b"")
                self._data += b"\n"
                self._data += src[vs:e]
            self._ndata += 1
        elif name == b"event":
            self._event = bytes(src[vs:e])
        elif name == b"id":
            if src.find(b"\0", vs, e) < 0:
                self._id = src[vs:e].decode("utf-8", "replace")
        elif name == b"retry":
            digits = src[vs:e]
            if digits.isdigit() and digits.isascii():
                value = int(digits)
                if value <= _INT64_MAX:
                    self._retry = value

    def _dispatch(self, out: list[SSEEvent]) -> None:
        if self._ndata:
            d = self._data
            data: FrameData = d if isinstance(d, memoryview) else bytes(d or b"")
            event = self._event.decode("utf-8", "replace") if self._event else None
            out.append(SSEEvent(event, data, self._id, self._retry))
        self._data = None
        self._ndata = 0
        self._event = b""
        self._retry = None


def _blank(src: bytes | bytearray, s: int, e: int) -> bool:
    return not src[s:e].strip(b" \t\r")


class NDJSONFramer(_Framer):
    """Newline-delimited JSON (Ollama ``application/x-ndjson``, Cohere v1
    ``application/stream+json``).

    Frames are the lines without their ``\\n`` (and one ``\\r`` before it); lines of
    only spaces/tabs/CRs are skipped. A final line without newline is returned by
    ``close()``. ``max_frame`` bounds the line length (without the ``\\n``).
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._line = bytearray()
        self._line_start = 0

    def feed(self, data: Chunk) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        mv = _view(data)
        n = len(mv)
        if n == 0:
            return []
        buf = _searchable(data, mv)
        base = self._offset
        self._offset += n
        out: list[FrameData] = []
        pos = 0
        limit = self._max
        while pos < n:
            nl = buf.find(b"\n", pos)
            end = n if nl < 0 else nl
            carried = len(self._line)
            if carried + end - pos > limit:
                start = self._line_start if carried else base + pos
                self._error = _too_long("NDJSON line", limit, start)
                return out
            if nl < 0:
                if not carried:
                    self._line_start = base + pos
                self._line += mv[pos:]
                break
            if carried:
                self._line += mv[pos:end]
                self._emit_carry(out)
            else:
                e = end - 1 if end > pos and buf[end - 1] == 0x0D else end
                if not _blank(buf, pos, e):
                    out.append(mv[pos:e])
            pos = nl + 1
        return out

    def close(self) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        self._closed = True
        out: list[FrameData] = []
        if self._line:
            self._emit_carry(out)
        return out

    def _emit_carry(self, out: list[FrameData]) -> None:
        line = self._line
        e = len(line) - 1 if line and line[-1] == 0x0D else len(line)
        if not _blank(line, 0, e):
            out.append(bytes(line[:e]))
        line.clear()


# JSONArrayFramer states.
_A_START, _A_FIRST, _A_NEXT, _A_ELEM, _A_DONE = range(5)


def _unexpected(what: str, byte: int, offset: int) -> str:
    return f"{what}: unexpected byte 0x{byte:02x} at offset {offset}"


class JSONArrayFramer(_Framer):
    """Elements of one top-level JSON array (Gemini/Vertex ``streamGenerateContent``
    without ``alt=sse``: ``[{...}\\n,\\r\\n{...}]``).

    Strings, escapes and nesting depth are tracked to find the element boundaries;
    values are not parsed (the scanner validates them) and brackets are counted, not
    matched. Elements come without surrounding whitespace. ``close()`` errors if the
    closing ``]`` was not seen; anything but whitespace after it is an error.
    ``max_frame`` bounds an element from its first byte to its separator.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._state = _A_START
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._start = 0  # stream offset of the current element's first byte
        self._carry = bytearray()

    def feed(self, data: Chunk) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        mv = _view(data)
        n = len(mv)
        if n == 0:
            return []
        buf = _searchable(data, mv)
        base = self._offset
        self._offset += n
        out: list[FrameData] = []
        pos = 0
        while pos < n and self._error is None:
            state = self._state
            if state == _A_ELEM:
                pos = self._scan_elem(buf, mv, pos, n, base, out)
                continue
            c = buf[pos]
            if c in _JSON_WS:
                pos += 1
            elif state == _A_START:
                if c != 0x5B:
                    self._error = _unexpected("JSON array", c, base + pos)
                    break
                self._state = _A_FIRST
                pos += 1
            elif state == _A_DONE:
                self._error = f"JSON array: trailing data at offset {base + pos}"
                break
            elif c == 0x5D and state == _A_FIRST:
                self._state = _A_DONE
                pos += 1
            elif c in b",]":
                self._error = _unexpected("JSON array", c, base + pos)
                break
            else:
                self._state = _A_ELEM
                self._start = base + pos
                self._depth = 0
        if self._state == _A_ELEM and self._error is None:
            # The element continues in the next chunk.
            seg = self._start - base
            self._carry += mv[max(seg, 0) :]
        return out

    def _scan_elem(
        self,
        buf: bytes | bytearray,
        mv: memoryview,
        pos: int,
        n: int,
        base: int,
        out: list[FrameData],
    ) -> int:
        limit_at = self._start + self._max - base  # first chunk index over max_frame
        while pos < n:
            if self._in_str:
                if self._esc:
                    # The escaped byte is skipped whatever it is.
                    if pos >= limit_at:
                        return self._fail_long(n)
                    self._esc = False
                    pos += 1
                    continue
                m = _STRING_STOP.search(buf, pos)
                t = n if m is None else m.start()
                if t >= limit_at and (t < n or n > limit_at):
                    return self._fail_long(n)
                if t == n:
                    return n
                if buf[t] == 0x5C:
                    self._esc = True
                else:
                    self._in_str = False
                pos = t + 1
                continue
            m = _STRUCTURAL.search(buf, pos)
            t = n if m is None else m.start()
            if t == n:
                if t > limit_at:
                    return self._fail_long(n)
                return n
            c = buf[t]
            ends = self._depth == 0 and c in b",]"
            if t > limit_at or (t == limit_at and not ends):
                return self._fail_long(n)
            if c == 0x22:
                self._in_str = True
            elif c in b"[{":
                self._depth += 1
            elif c in b"]}":
                if self._depth:
                    self._depth -= 1
                elif c == 0x7D:
                    self._error = _unexpected("JSON array", c, base + t)
                    return n
            if ends:
                self._emit(buf, mv, t, base, out)
                self._state = _A_DONE if c == 0x5D else _A_NEXT
                return t + 1
            pos = t + 1
        return n

    def _fail_long(self, n: int) -> int:
        self._error = _too_long("JSON array element", self._max, self._start)
        return n

    def _emit(
        self, buf: bytes | bytearray, mv: memoryview, t: int, base: int, out: list[FrameData]
    ) -> None:
        s = self._start - base
        if s >= 0:
            e = t
            while e > s and buf[e - 1] in _JSON_WS:
                e -= 1
            out.append(mv[s:e])
        else:
            self._carry += mv[:t]
            out.append(bytes(self._carry.rstrip(_JSON_WS)))
            self._carry.clear()

    def close(self) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        self._closed = True
        if self._state != _A_DONE:
            self._truncated = True
            self._error = f"JSON array: truncated at offset {self._offset} (no closing ']')"
        self._carry.clear()
        return []


# JSONBodyFramer states.
_B_START, _B_VALUE, _B_SCALAR, _B_DONE = range(4)


class JSONBodyFramer(_Framer):
    """Pieces of one JSON document, as they arrive.

    Each piece is the fed chunk itself (a ``memoryview`` of it), nothing is buffered:
    the scanner behind it is resumable. The framer only follows strings and nesting
    to know when the top-level value is ``complete``; a top-level scalar completes
    at the whitespace after it or at ``close()``. Non-whitespace after the value is
    an error (the piece then stops before it); ``close()`` before the value is
    complete is an error and sets ``truncated``. ``max_frame`` is accepted for a
    uniform signature and ignored.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._state = _B_START
        self._depth = 0
        self._in_str = False
        self._esc = False

    @property
    def complete(self) -> bool:
        """The top-level value has closed."""
        return self._state == _B_DONE

    def feed(self, data: Chunk) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        mv = _view(data)
        n = len(mv)
        if n == 0:
            return []
        buf = _searchable(data, mv)
        base = self._offset
        self._offset += n
        pos = 0
        while pos < n:
            state = self._state
            if state == _B_VALUE:
                pos = self._scan_value(buf, pos, n)
                continue
            c = buf[pos]
            if state == _B_SCALAR:
                if c in _JSON_WS:
                    self._state = _B_DONE
                pos += 1
            elif c in _JSON_WS:
                pos += 1
            elif state == _B_DONE:
                self._error = f"JSON body: trailing data at offset {base + pos}"
                break
            elif c in b"{[":
                self._state = _B_VALUE
                self._depth = 1
                pos += 1
            elif c == 0x22:
                self._state = _B_VALUE
                self._in_str = True
                pos += 1
            elif c in b"}],:":
                self._error = _unexpected("JSON body", c, base + pos)
                break
            else:
                self._state = _B_SCALAR
                pos += 1
        piece = mv if pos >= n else mv[:pos]
        return [piece] if len(piece) else []

    def _scan_value(self, buf: bytes | bytearray, pos: int, n: int) -> int:
        while pos < n:
            if self._in_str:
                if self._esc:
                    self._esc = False
                    pos += 1
                    continue
                m = _STRING_STOP.search(buf, pos)
                if m is None:
                    return n
                t = m.start()
                if buf[t] == 0x5C:
                    self._esc = True
                else:
                    self._in_str = False
                    if self._depth == 0:
                        self._state = _B_DONE
                        return t + 1
                pos = t + 1
                continue
            m = _STRUCTURAL.search(buf, pos)
            if m is None:
                return n
            t = m.start()
            c = buf[t]
            if c == 0x22:
                self._in_str = True
            elif c in b"[{":
                self._depth += 1
            elif c in b"]}":
                self._depth -= 1
                if self._depth == 0:
                    self._state = _B_DONE
                    return t + 1
            pos = t + 1
        return n

    def close(self) -> list[FrameData]:
        if self._error is not None or self._closed:
            return []
        self._closed = True
        if self._state == _B_SCALAR:
            self._state = _B_DONE
        elif self._state != _B_DONE:
            self._truncated = True
            self._error = f"JSON body: truncated at offset {self._offset}"
        return []


# --- AWS event stream -----------------------------------------------------------

_PRELUDE = 12
_ES_OVERHEAD = 16  # prelude + message CRC
_U32 = struct.Struct(">I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED_SIZE = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
_SIGNED_FORMAT = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


class _MalformedHeaders(ValueError):
    def __init__(self, where: int, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


def _parse_headers(block: bytes | memoryview) -> dict[str, object]:
    """Decode an event stream header block; raise ``_MalformedHeaders`` (offset in
    the block) when a header runs past the block or has an unknown value type."""
    headers: dict[str, object] = {}
    b = bytes(block)
    pos = 0
    n = len(b)
    while pos < n:
        start = pos
        name_len = b[pos]
        pos += 1
        if pos + name_len + 1 > n:
            raise _MalformedHeaders(start, "header runs past the header block")
        name = b[pos : pos + name_len].decode("utf-8", "replace")
        pos += name_len
        vtype = b[pos]
        pos += 1
        value: object
        if vtype in (0, 1):
            value = vtype == 0
        elif vtype in _FIXED_SIZE:
            size = _FIXED_SIZE[vtype]
            if pos + size > n:
                raise _MalformedHeaders(start, "header runs past the header block")
            raw = b[pos : pos + size]
            pos += size
            if vtype == 9:
                value = uuid.UUID(bytes=raw)
            else:
                value = struct.unpack(_SIGNED_FORMAT[vtype], raw)[0]
                if vtype == 8:
                    value = _timestamp(value)  # type: ignore[arg-type]
        elif vtype in (6, 7):
            if pos + 2 > n:
                raise _MalformedHeaders(start, "header runs past the header block")
            size = (b[pos] << 8) | b[pos + 1]
            pos += 2
            if pos + size > n:
                raise _MalformedHeaders(start, "header runs past the header block")
            raw = b[pos : pos + size]
            pos += size
            value = raw if vtype == 6 else raw.decode("utf-8", "replace")
        else:
            raise _MalformedHeaders(start, f"unknown header value type {vtype}")
        headers[name] = value
    return headers


def _timestamp(ms: int) -> datetime | int:
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return ms  # outside datetime's range: keep the raw milliseconds


class EventStreamFramer(_Framer):
    """AWS ``application/vnd.amazon.eventstream`` (Bedrock ConverseStream and
    InvokeModelWithResponseStream).

    Each message: prelude (total length, headers length, CRC32 of those 8 bytes),
    headers, payload, CRC32 of everything before it. A prelude CRC mismatch gives
    one error frame and stops the framer (the lengths cannot be trusted); a message
    CRC mismatch or malformed headers give an error frame and framing continues with
    the next message. A message declaring more than ``max_frame`` bytes (default
    16 MiB, the AWS limit) or impossible lengths is an error. Header values decode
    to ``bool``/``int``/``bytes``/``str``/``datetime`` (UTC; raw ms if out of
    range)/``uuid.UUID``.
    """

    def __init__(self, max_frame: int = EVENTSTREAM_MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._carry = bytearray()
        self._start = 0  # stream offset of the message being assembled

    def feed(self, data: Chunk) -> list[EventStreamMessage]:
        if self._error is not None or self._closed:
            return []
        mv = _view(data)
        n = len(mv)
        if n == 0:
            return []
        base = self._offset
        self._offset += n
        out: list[EventStreamMessage] = []
        pos = 0
        while pos < n and self._error is None:
            if self._carry:
                need = self._need(self._carry)
                if need is None:
                    take = min(_PRELUDE - len(self._carry), n - pos)
                    self._carry += mv[pos : pos + take]
                    pos += take
                    if len(self._carry) < _PRELUDE:
                        break
                    need = self._need(self._carry)
                    if need is None:
                        self._prelude_error(self._carry, self._start, out)
                        break
                take = min(need - len(self._carry), n - pos)
                self._carry += mv[pos : pos + take]
                pos += take
                if len(self._carry) == need:
                    self._message(memoryview(bytes(self._carry)), self._start, out, copy=True)
                    self._carry.clear()
                continue
            avail = n - pos
            if avail >= _PRELUDE:
                total = self._need(mv[pos : pos + _PRELUDE])
                if total is None:
                    self._prelude_error(mv[pos : pos + _PRELUDE], base + pos, out)
                    break
                if total <= avail:
                    self._message(mv[pos : pos + total], base + pos, out, copy=False)
                    pos += total
                    continue
            self._start = base + pos
            self._carry += mv[pos:]
            pos = n
        return out

    def _need(self, prelude: bytes | bytearray | memoryview) -> int | None:
        """Total length of the message whose prelude this is, once its CRC checks;
        ``None`` if fewer than 12 bytes are there or the prelude is bad."""
        if len(prelude) < _PRELUDE:
            return None
        total, hlen, crc = struct.unpack_from(">III", prelude)
        if zlib.crc32(prelude[:8]) != crc:
            return None
        if total < _ES_OVERHEAD or hlen > total - _ES_OVERHEAD or total > self._max:
            return None
        return int(total)

    def _prelude_error(
        self, prelude: bytes | bytearray | memoryview, start: int, out: list[EventStreamMessage]
    ) -> None:
        total, hlen, crc = struct.unpack_from(">III", prelude)
        actual = zlib.crc32(prelude[:8])
        if actual != crc:
            self._error = (
                f"eventstream: prelude CRC mismatch at offset {start} "
                f"(expected 0x{crc:08x}, got 0x{actual:08x})"
            )
            out.append(EventStreamMessage({}, b"", self._error))
        elif total > self._max:
            self._error = (
                f"eventstream: message at offset {start} declares {total} bytes, "
                f"over max_frame ({self._max})"
            )
        else:
            self._error = (
                f"eventstream: message at offset {start} has impossible lengths "
                f"(total {total}, headers {hlen})"
            )
        self._carry.clear()

    def _message(
        self, msg: memoryview, start: int, out: list[EventStreamMessage], copy: bool
    ) -> None:
        total = len(msg)
        hlen = _U32.unpack_from(msg, 4)[0]
        payload: FrameData = msg[_PRELUDE + hlen : total - 4]
        if copy:
            payload = bytes(payload)
        crc = _U32.unpack_from(msg, total - 4)[0]
        actual = zlib.crc32(msg[: total - 4])
        if actual != crc:
            err = (
                f"eventstream: message CRC mismatch at offset {start} "
                f"(expected 0x{crc:08x}, got 0x{actual:08x})"
            )
            out.append(EventStreamMessage({}, payload, err))
            return
        try:
            headers = _parse_headers(msg[_PRELUDE : _PRELUDE + hlen])
        except _MalformedHeaders as exc:
            err = (
                f"eventstream: malformed header at offset {start + _PRELUDE + exc.where}: "
                f"{exc.reason}"
            )
            out.append(EventStreamMessage({}, payload, err))
            return
        out.append(EventStreamMessage(headers, payload, None))

    def close(self) -> list[EventStreamMessage]:
        if self._error is not None or self._closed:
            return []
        self._closed = True
        if self._carry:
            have = len(self._carry)
            need = self._need(self._carry)
            self._truncated = True
            self._error = (
                f"eventstream: truncated message at offset {self._start} "
                f"({have} of {need if need is not None else _PRELUDE} bytes)"
            )
            self._carry.clear()
        return []


class Framer(Protocol):
    """What every framer offers (both twins)."""

    @property
    def error(self) -> str | None: ...

    @property
    def truncated(self) -> bool: ...

    def feed(self, data: Chunk) -> list[Any]: ...

    def close(self) -> list[Any]: ...


_NDJSON_TYPES = frozenset(
    ["application/x-ndjson", "application/ndjson", "application/jsonl", "application/stream+json"]
)


def framer_for(status: int, content_type: str) -> tuple[str, Framer]:
    """The framing name (as ``StreamScanner`` takes it) and a fresh framer for a
    response, from its status and ``Content-Type`` alone: error statuses are plain
    JSON whatever the type says. A JSON array stream (Gemini without ``alt=sse``)
    cannot be told from the headers; ext/ knows it from the URL."""
    ctype = content_type.partition(";")[0].strip().lower()
    if not 200 <= status < 300:
        return "json", JSONBodyFramer()
    if ctype == "text/event-stream":
        return "sse", SSEFramer()
    if ctype in _NDJSON_TYPES:
        return "ndjson", NDJSONFramer()
    if ctype == "application/vnd.amazon.eventstream":
        return "eventstream", EventStreamFramer()
    return "json", JSONBodyFramer()


SSEFramerPy = SSEFramer
NDJSONFramerPy = NDJSONFramer
JSONArrayFramerPy = JSONArrayFramer
JSONBodyFramerPy = JSONBodyFramer
EventStreamFramerPy = EventStreamFramer

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):
        from ._framing import (  # type: ignore[no-redef]
            EventStreamFramer,
            JSONArrayFramer,
            JSONBodyFramer,
            NDJSONFramer,
            SSEFramer,
        )
