# Native twin of core/framing.py: same classes, same frames, same error messages.
# The framing loops run on C pointers and deliver frames through FrameSink.on_frame;
# the Python-level feed()/close() use a sink that builds the frame objects of the
# pure module. Only the byte loops are here; frame types and the header decoder
# for the Python API are reused from the pure module.

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint32_t
from libc.string cimport memchr, memcmp, memcpy

MAX_FRAME = 8 * 1024 * 1024
EVENTSTREAM_MAX_FRAME = 16 * 1024 * 1024

cdef long long INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef Py_ssize_t KEEP_CARRY = 64 * 1024  # larger idle buffers are given back

# Frame types and the header decoder come from the pure module, bound on first use:
# framing.py imports this module at its end, so importing it here would be circular.
cdef object SSEEvent = None
cdef object EventStreamMessage = None
cdef object parse_headers = None


cdef int bind_pure() except -1:
    global SSEEvent, EventStreamMessage, parse_headers
    if SSEEvent is None:
        from llmtap.core import framing
        SSEEvent = framing.SSEEvent
        EventStreamMessage = framing.EventStreamMessage
        parse_headers = framing._parse_headers
    return 0


# --- carry-over buffers -----------------------------------------------------------

cdef int carry_append(Carry* c, const void* p, Py_ssize_t n) except -1:
    cdef Py_ssize_t need = c.n + n
    cdef Py_ssize_t cap
    cdef unsigned char* q
    if n <= 0:
        return 0
    if need > c.cap:
        cap = c.cap * 2 if c.cap else 256
        if cap < need:
            cap = need
        q = <unsigned char*>PyMem_Realloc(c.p, cap)
        if q == NULL:
            raise MemoryError()
        c.p = q
        c.cap = cap
    memcpy(c.p + c.n, p, n)
    c.n = need
    return 0


cdef inline void carry_trim(Carry* c) noexcept:
    # An empty buffer that once held a big frame is freed, so idle streams stay small.
    if c.n == 0 and c.cap > KEEP_CARRY:
        PyMem_Free(c.p)
        c.p = NULL
        c.cap = 0


cdef inline void carry_free(Carry* c) noexcept:
    PyMem_Free(c.p)
    c.p = NULL
    c.n = 0
    c.cap = 0


cdef str too_long(str what, Py_ssize_t max_frame, Py_ssize_t start):
    return f"{what} longer than {max_frame} bytes (max_frame) at offset {start}"


cdef str unexpected(str what, unsigned char c, Py_ssize_t offset):
    return f"{what}: unexpected byte 0x{c:02x} at offset {offset}"


cdef inline bint is_ws(unsigned char c) noexcept:
    return c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09


# --- CRC32 (IEEE, reflected), slicing-by-8 ----------------------------------------

cdef uint32_t CRC[8][256]


cdef void crc_init() noexcept:
    cdef uint32_t c
    cdef int i, j
    for i in range(256):
        c = i
        for j in range(8):
            c = (c >> 1) ^ (0xEDB88320u if c & 1 else 0u)
        CRC[0][i] = c
    for i in range(256):
        c = CRC[0][i]
        for j in range(1, 8):
            c = CRC[0][c & 0xFF] ^ (c >> 8)
            CRC[j][i] = c


crc_init()


cdef uint32_t crc32(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef uint32_t crc = 0xFFFFFFFFu
    cdef uint32_t a, b
    while n >= 8:
        a = (p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)) ^ crc
        b = p[4] | (<uint32_t>p[5] << 8) | (<uint32_t>p[6] << 16) | (<uint32_t>p[7] << 24)
        crc = (CRC[7][a & 0xFF] ^ CRC[6][(a >> 8) & 0xFF] ^ CRC[5][(a >> 16) & 0xFF]
               ^ CRC[4][a >> 24] ^ CRC[3][b & 0xFF] ^ CRC[2][(b >> 8) & 0xFF]
               ^ CRC[1][(b >> 16) & 0xFF] ^ CRC[0][b >> 24])
        p += 8
        n -= 8
    while n > 0:
        crc = CRC[0][(crc ^ p[0]) & 0xFF] ^ (crc >> 8)
        p += 1
        n -= 1
    return ~crc


def _crc32(data) -> int:
    """CRC32 of a bytes-like object (the native routine, exposed for tests)."""
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return crc32(<const unsigned char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef inline uint32_t be32(const unsigned char* p) noexcept:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


# --- sinks ------------------------------------------------------------------------

cdef class FrameSink:
    """Receives frames from a native framer (C level only)."""

    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1:
        return 0


cdef class _ListSink(FrameSink):
    """Builds the Python frames of one feed()/close() call."""

    cdef list out
    cdef object chunk
    cdef object view
    cdef const unsigned char* base
    cdef Py_ssize_t n

    cdef object frame(self, const unsigned char* data, Py_ssize_t n):
        cdef Py_ssize_t off
        if data != NULL and data >= self.base and data + n <= self.base + self.n:
            if self.view is None:
                self.view = memoryview(self.chunk)
                if self.view.ndim != 1 or self.view.itemsize != 1:
                    self.view = self.view.cast("B")
            off = data - self.base
            return self.view[off:off + n]
        if data == NULL:
            return b""
        return PyBytes_FromStringAndSize(<const char*>data, n)

    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1:
        self.out.append(self.frame(data, n))
        return 0


cdef class _SSESink(_ListSink):
    cdef SSEFramer framer

    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1:
        cdef SSEFramer f = self.framer
        event = None
        if name_len:
            event = PyUnicode_DecodeUTF8(<const char*>name, name_len, "replace")
        eid = None
        if f.has_id:
            eid = PyUnicode_DecodeUTF8(<const char*>f.last_id.p, f.last_id.n, "replace")
        self.out.append(
            SSEEvent(event, self.frame(data, n), eid, f.retry if f.has_retry else None)
        )
        return 0


cdef class _EventStreamSink(_ListSink):
    cdef EventStreamFramer framer

    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1:
        cdef EventStreamFramer f = self.framer
        payload = self.frame(data, n)
        if flags & (FRAME_BAD_CRC | FRAME_BAD_MESSAGE):
            self.out.append(EventStreamMessage({}, payload, f.frame_error))
        else:
            headers = parse_headers(PyBytes_FromStringAndSize(<const char*>f.hdr, f.hdr_len))
            self.out.append(EventStreamMessage(headers, payload, None))
        return 0


cdef list run_feed(Framer framer, object data, _ListSink sink):
    cdef Py_buffer view
    sink.out = []
    if framer.error is not None or framer.closed:
        return sink.out
    if type(data) is bytes:
        sink.chunk = data
        sink.base = <const unsigned char*>PyBytes_AS_STRING(data)
        sink.n = PyBytes_GET_SIZE(data)
        try:
            framer.feed_into(sink.base, sink.n, sink)
        finally:
            sink.chunk = sink.view = None
        return sink.out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        sink.chunk = data
        sink.base = <const unsigned char*>view.buf
        sink.n = view.len
        framer.feed_into(sink.base, sink.n, sink)
    finally:
        sink.chunk = sink.view = None
        PyBuffer_Release(&view)
    return sink.out


cdef list run_close(Framer framer, _ListSink sink):
    sink.out = []
    sink.base = NULL
    sink.n = 0
    framer.close_into(sink)
    return sink.out


cdef int setup(Framer f, Py_ssize_t max_frame) except -1:
    if max_frame < 1:
        raise ValueError(f"max_frame must be >= 1, got {max_frame}")
    f.max_frame = max_frame
    return 0


# --- the framers ------------------------------------------------------------------

cdef class Framer:
    """Base of the native framers: error state, stream offset, carry-over buffer."""

    def __dealloc__(self):
        carry_free(&self.carry)

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        return 0

    cdef int close_into(self, FrameSink sink) except -1:
        return 0


cdef const unsigned char* BOM = b"\xef\xbb\xbf"


cdef class SSEFramer(Framer):
    """``text/event-stream`` (WHATWG); see ``llmtap.core.framing.SSEFramer``."""

    def __init__(self, Py_ssize_t max_frame=MAX_FRAME):
        setup(self, max_frame)

    def __dealloc__(self):
        carry_free(&self.data)
        carry_free(&self.event)
        carry_free(&self.last_id)

    def feed(self, data) -> list:
        cdef _SSESink sink = _SSESink.__new__(_SSESink)
        bind_pure()
        sink.framer = self
        return run_feed(self, data, sink)

    def close(self) -> list:
        cdef _SSESink sink = _SSESink.__new__(_SSESink)
        bind_pure()
        sink.framer = self
        return run_close(self, sink)

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        cdef Py_ssize_t base = self.offset
        cdef Py_ssize_t pos = 0, end, nxt, carried, k
        cdef Py_ssize_t lf = -1  # next LF at or after pos (n: none), kept across lines
        cdef const unsigned char* hit
        if self.error is not None or self.closed or n <= 0:
            return 0
        self.offset += n
        if self.bom >= 0:
            k = 3 - self.bom
            if k > n:
                k = n
            if memcmp(buf, BOM + self.bom, k) == 0:
                self.bom += k
                if self.bom < 3:
                    return 0
                pos = k
            else:
                # A false start: the bytes held back belong to the first line.
                carry_append(&self.carry, BOM, self.bom)
                self.line_start = 0
            self.bom = -1
        if self.cr:
            self.cr = False
            if pos < n and buf[pos] == b'\n':
                pos += 1
        while pos < n:
            # Searching for LF from every line start would be quadratic in a
            # CR-only stream: remember where the next one is.
            if lf < pos:
                hit = <const unsigned char*>memchr(buf + pos, b'\n', n - pos)
                lf = (hit - buf) if hit != NULL else n
            end = lf
            hit = <const unsigned char*>memchr(buf + pos, b'\r', end - pos)
            if hit != NULL:
                end = hit - buf
            carried = self.carry.n
            if carried + end - pos > self.max_frame:
                self.error = too_long(
                    "SSE line", self.max_frame, self.line_start if carried else base + pos
                )
                return 0
            if end == n:
                if not carried:
                    self.line_start = base + pos
                carry_append(&self.carry, buf + pos, n - pos)
                break
            if buf[end] == b'\r':
                if end + 1 < n:
                    nxt = end + 2 if buf[end + 1] == b'\n' else end + 1
                else:
                    self.cr = True
                    nxt = end + 1
            else:
                nxt = end + 1
            if carried:
                carry_append(&self.carry, buf + pos, end - pos)
                self.on_line(self.carry.p, self.carry.n, False, self.line_start, sink)
                self.carry.n = 0
            else:
                self.on_line(buf + pos, end - pos, True, base + pos, sink)
            if self.error is not None:
                return 0
            pos = nxt
        if self.ndata and not self.dcarried:
            # The event is still open: it must not keep pointing into this chunk.
            self.data.n = 0
            carry_append(&self.data, self.dptr, self.dlen)
            self.dcarried = True
        carry_trim(&self.carry)
        carry_trim(&self.data)
        return 0

    cdef int on_line(self, const unsigned char* s, Py_ssize_t n, bint in_chunk,
                     Py_ssize_t start, FrameSink sink) except -1:
        cdef const unsigned char* colon
        cdef const unsigned char* v
        cdef Py_ssize_t name_len, vs, vlen, size, i
        cdef long long value
        cdef unsigned char d
        if n == 0:
            return self.dispatch(sink)
        colon = <const unsigned char*>memchr(s, b':', n)
        if colon == s:
            return 0
        if colon == NULL:
            name_len = n
            vs = n
        else:
            name_len = colon - s
            vs = name_len + 1
            if vs < n and s[vs] == b' ':
                vs += 1
        v = s + vs
        vlen = n - vs
        if name_len == 4 and memcmp(s, b"data", 4) == 0:
            size = vlen
            if self.ndata:
                size += (self.data.n if self.dcarried else self.dlen) + 1
            if size > self.max_frame:
                self.error = too_long("SSE event data", self.max_frame, start)
                return 0
            if self.ndata == 0:
                if in_chunk:
                    self.dptr = v
                    self.dlen = vlen
                    self.dcarried = False
                else:
                    self.data.n = 0
                    carry_append(&self.data, v, vlen)
                    self.dcarried = True
            else:
                if not self.dcarried:
                    self.data.n = 0
                    carry_append(&self.data, self.dptr, self.dlen)
                    self.dcarried = True
                carry_append(&self.data, b"\n", 1)
                carry_append(&self.data, v, vlen)
            self.ndata += 1
        elif name_len == 5 and memcmp(s, b"event", 5) == 0:
            self.event.n = 0
            carry_append(&self.event, v, vlen)
        elif name_len == 2 and memcmp(s, b"id", 2) == 0:
            if vlen == 0 or memchr(v, 0, vlen) == NULL:
                self.last_id.n = 0
                carry_append(&self.last_id, v, vlen)
                self.has_id = True
        elif name_len == 5 and memcmp(s, b"retry", 5) == 0:
            if vlen == 0:
                return 0
            value = 0
            for i in range(vlen):
                d = v[i] - 0x30
                if d > 9 or value > (INT64_MAX - d) // 10:
                    return 0
                value = value * 10 + d
            self.retry = value
            self.has_retry = True
        return 0

    cdef int dispatch(self, FrameSink sink) except -1:
        cdef int flags = 0
        if self.ndata:
            if self.event.n == 5 and memcmp(self.event.p, b"error", 5) == 0:
                flags = FRAME_ERROR_EVENT
            if self.dcarried:
                sink.on_frame(self.data.p, self.data.n, self.event.p, self.event.n, flags)
            else:
                sink.on_frame(self.dptr, self.dlen, self.event.p, self.event.n, flags)
        self.ndata = 0
        self.dcarried = False
        self.data.n = 0
        self.event.n = 0
        self.has_retry = False
        return 0

    cdef int close_into(self, FrameSink sink) except -1:
        if self.error is not None or self.closed:
            return 0
        self.closed = True
        if self.carry.n or self.ndata or self.bom > 0:
            self.truncated = True
        carry_free(&self.carry)
        carry_free(&self.data)
        self.ndata = 0
        return 0


cdef inline bint ndjson_blank(const unsigned char* s, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] != b' ' and s[i] != b'\t' and s[i] != b'\r':
            return False
    return True


cdef class NDJSONFramer(Framer):
    """Newline-delimited JSON; see ``llmtap.core.framing.NDJSONFramer``."""

    def __init__(self, Py_ssize_t max_frame=MAX_FRAME):
        setup(self, max_frame)

    def feed(self, data) -> list:
        return run_feed(self, data, _ListSink.__new__(_ListSink))

    def close(self) -> list:
        return run_close(self, _ListSink.__new__(_ListSink))

    cdef int emit_line(self, const unsigned char* s, Py_ssize_t n, FrameSink sink) except -1:
        if n and s[n - 1] == b'\r':
            n -= 1
        if not ndjson_blank(s, n):
            sink.on_frame(s, n, NULL, 0, 0)
        return 0

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        cdef Py_ssize_t base = self.offset
        cdef Py_ssize_t pos = 0, end, carried
        cdef const unsigned char* nl
        if self.error is not None or self.closed or n <= 0:
            return 0
        self.offset += n
        while pos < n:
            nl = <const unsigned char*>memchr(buf + pos, b'\n', n - pos)
            end = (nl - buf) if nl != NULL else n
            carried = self.carry.n
            if carried + end - pos > self.max_frame:
                self.error = too_long(
                    "NDJSON line", self.max_frame, self.line_start if carried else base + pos
                )
                return 0
            if nl == NULL:
                if not carried:
                    self.line_start = base + pos
                carry_append(&self.carry, buf + pos, n - pos)
                break
            if carried:
                carry_append(&self.carry, buf + pos, end - pos)
                self.carry.n = 0
                self.emit_line(self.carry.p, carried + end - pos, sink)
            else:
                self.emit_line(buf + pos, end - pos, sink)
            pos = end + 1
        carry_trim(&self.carry)
        return 0

    cdef int close_into(self, FrameSink sink) except -1:
        cdef Py_ssize_t n = self.carry.n
        if self.error is not None or self.closed:
            return 0
        self.closed = True
        self.carry.n = 0
        if n:
            self.emit_line(self.carry.p, n, sink)
        carry_free(&self.carry)
        return 0


# Bytes that matter between JSON strings: quotes, brackets, commas. The rest is
# skipped by a table lookup (the scanner validates values, the framers do not).
cdef unsigned char JSON_STOP[256]
JSON_STOP[b'"'] = JSON_STOP[b'['] = JSON_STOP[b']'] = 1
JSON_STOP[b'{'] = JSON_STOP[b'}'] = JSON_STOP[b','] = 1


cdef inline Py_ssize_t skip_plain(const unsigned char* buf, Py_ssize_t i,
                                  Py_ssize_t stop) noexcept:
    while i < stop and not JSON_STOP[buf[i]]:
        i += 1
    return i


cdef inline Py_ssize_t skip_string(const unsigned char* buf, Py_ssize_t i, Py_ssize_t stop,
                                   bint* in_str, bint* esc) noexcept:
    """Move through JSON string content up to `stop`: returns the index after the
    closing quote (and clears `in_str`), or `stop`."""
    cdef unsigned char c
    cdef bint e = esc[0]
    while i < stop:
        c = buf[i]
        i += 1
        if e:
            e = False
        elif c == b'\\':
            e = True
        elif c == b'"':
            in_str[0] = False
            break
    esc[0] = e
    return i


cdef class JSONArrayFramer(Framer):
    """Elements of a top-level JSON array; see ``llmtap.core.framing.JSONArrayFramer``."""

    def __init__(self, Py_ssize_t max_frame=MAX_FRAME):
        setup(self, max_frame)

    def feed(self, data) -> list:
        return run_feed(self, data, _ListSink.__new__(_ListSink))

    def close(self) -> list:
        return run_close(self, _ListSink.__new__(_ListSink))

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        cdef Py_ssize_t base = self.offset
        cdef Py_ssize_t i = 0, s, e, limit_at
        cdef Py_ssize_t depth = self.depth
        cdef int state = self.state
        cdef bint in_str = self.in_str, esc = self.esc, ends
        cdef unsigned char c
        if self.error is not None or self.closed or n <= 0:
            return 0
        self.offset += n
        while i < n:
            if state == A_ELEM:
                # First chunk index at which the element would pass max_frame.
                limit_at = self.start + self.max_frame - base
                if in_str:
                    i = skip_string(buf, i, limit_at if limit_at < n else n, &in_str, &esc)
                    if in_str and i < n:
                        self.error = too_long("JSON array element", self.max_frame, self.start)
                        return 0
                    continue
                i = skip_plain(buf, i, limit_at if limit_at < n else n)
                if i == n:
                    break
                c = buf[i]
                ends = depth == 0 and (c == b',' or c == b']')
                if i >= limit_at and not ends:
                    self.error = too_long("JSON array element", self.max_frame, self.start)
                    return 0
                if c == b'"':
                    in_str = True
                elif c == b'[' or c == b'{':
                    depth += 1
                elif c == b']' or c == b'}':
                    if depth:
                        depth -= 1
                    elif c == b'}':
                        self.error = unexpected("JSON array", c, base + i)
                        return 0
                if ends:
                    s = self.start - base
                    if s >= 0:
                        e = i
                        while e > s and is_ws(buf[e - 1]):
                            e -= 1
                        sink.on_frame(buf + s, e - s, NULL, 0, 0)
                    else:
                        carry_append(&self.carry, buf, i)
                        e = self.carry.n
                        self.carry.n = 0
                        while e > 0 and is_ws(self.carry.p[e - 1]):
                            e -= 1
                        sink.on_frame(self.carry.p, e, NULL, 0, 0)
                    state = A_DONE if c == b']' else A_NEXT
                i += 1
                continue
            c = buf[i]
            if is_ws(c):
                i += 1
            elif state == A_START:
                if c != b'[':
                    self.error = unexpected("JSON array", c, base + i)
                    return 0
                state = A_FIRST
                i += 1
            elif state == A_DONE:
                self.error = f"JSON array: trailing data at offset {base + i}"
                return 0
            elif c == b']' and state == A_FIRST:
                state = A_DONE
                i += 1
            elif c == b',' or c == b']':
                self.error = unexpected("JSON array", c, base + i)
                return 0
            else:
                state = A_ELEM
                self.start = base + i
                depth = 0
        self.state = state
        self.depth = depth
        self.in_str = in_str
        self.esc = esc
        if state == A_ELEM:
            s = self.start - base
            if s < 0:
                s = 0
            carry_append(&self.carry, buf + s, n - s)
        carry_trim(&self.carry)
        return 0

    cdef int close_into(self, FrameSink sink) except -1:
        if self.error is not None or self.closed:
            return 0
        self.closed = True
        if self.state != A_DONE:
            self.truncated = True
            self.error = f"JSON array: truncated at offset {self.offset} (no closing ']')"
        carry_free(&self.carry)
        return 0


cdef class JSONBodyFramer(Framer):
    """Pieces of one JSON document; see ``llmtap.core.framing.JSONBodyFramer``."""

    def __init__(self, Py_ssize_t max_frame=MAX_FRAME):
        setup(self, max_frame)

    @property
    def complete(self) -> bool:
        """The top-level value has closed."""
        return self.state == B_DONE

    def feed(self, data) -> list:
        return run_feed(self, data, _ListSink.__new__(_ListSink))

    def close(self) -> list:
        return run_close(self, _ListSink.__new__(_ListSink))

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        cdef Py_ssize_t base = self.offset
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t depth = self.depth
        cdef int state = self.state
        cdef bint in_str = self.in_str, esc = self.esc
        cdef unsigned char c
        if self.error is not None or self.closed or n <= 0:
            return 0
        self.offset += n
        while i < n:
            if state == B_VALUE:
                if in_str:
                    i = skip_string(buf, i, n, &in_str, &esc)
                    if not in_str and depth == 0:
                        state = B_DONE
                    continue
                i = skip_plain(buf, i, n)
                if i == n:
                    break
                c = buf[i]
                i += 1
                if c == b'"':
                    in_str = True
                elif c == b'[' or c == b'{':
                    depth += 1
                elif c == b']' or c == b'}':
                    depth -= 1
                    if depth == 0:
                        state = B_DONE
                continue
            c = buf[i]
            if state == B_SCALAR:
                if is_ws(c):
                    state = B_DONE
                i += 1
            elif is_ws(c):
                i += 1
            elif state == B_DONE:
                self.error = f"JSON body: trailing data at offset {base + i}"
                break
            elif c == b'{' or c == b'[':
                state = B_VALUE
                depth = 1
                i += 1
            elif c == b'"':
                state = B_VALUE
                in_str = True
                i += 1
            elif c == b'}' or c == b']' or c == b',' or c == b':':
                self.error = unexpected("JSON body", c, base + i)
                break
            else:
                state = B_SCALAR
                i += 1
        self.state = state
        self.depth = depth
        self.in_str = in_str
        self.esc = esc
        if i:
            sink.on_frame(buf, i, NULL, 0, 0)
        return 0

    cdef int close_into(self, FrameSink sink) except -1:
        if self.error is not None or self.closed:
            return 0
        self.closed = True
        if self.state == B_SCALAR:
            self.state = B_DONE
        elif self.state != B_DONE:
            self.truncated = True
            self.error = f"JSON body: truncated at offset {self.offset}"
        return 0


# --- AWS event stream ---------------------------------------------------------------

cdef enum:
    PRELUDE = 12
    ES_OVERHEAD = 16


cdef inline bint str_eq(const unsigned char* p, Py_ssize_t n, const char* s,
                        Py_ssize_t sn) noexcept:
    return n == sn and memcmp(p, s, n) == 0


cdef class EventStreamFramer(Framer):
    """AWS event stream; see ``llmtap.core.framing.EventStreamFramer``."""

    def __init__(self, Py_ssize_t max_frame=EVENTSTREAM_MAX_FRAME):
        setup(self, max_frame)

    def feed(self, data) -> list:
        cdef _EventStreamSink sink = _EventStreamSink.__new__(_EventStreamSink)
        bind_pure()
        sink.framer = self
        return run_feed(self, data, sink)

    def close(self) -> list:
        cdef _EventStreamSink sink = _EventStreamSink.__new__(_EventStreamSink)
        bind_pure()
        sink.framer = self
        return run_close(self, sink)

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1:
        cdef Py_ssize_t base = self.offset
        cdef Py_ssize_t pos = 0, take, total, avail
        if self.error is not None or self.closed or n <= 0:
            return 0
        self.offset += n
        while pos < n and self.error is None:
            if self.carry.n:
                if self.carry.n < PRELUDE:
                    take = min(PRELUDE - self.carry.n, n - pos)
                    carry_append(&self.carry, buf + pos, take)
                    pos += take
                    if self.carry.n < PRELUDE:
                        break
                    self.need = self.check_prelude(self.carry.p, self.start, sink)
                    if self.need < 0:
                        break
                take = min(self.need - self.carry.n, n - pos)
                carry_append(&self.carry, buf + pos, take)
                pos += take
                if self.carry.n == self.need:
                    self.carry.n = 0
                    self.message(self.carry.p, self.need, self.start, sink)
                continue
            avail = n - pos
            if avail >= PRELUDE:
                total = self.check_prelude(buf + pos, base + pos, sink)
                if total < 0:
                    break
                if total <= avail:
                    self.message(buf + pos, total, base + pos, sink)
                    pos += total
                    continue
                self.need = total
            self.start = base + pos
            carry_append(&self.carry, buf + pos, avail)
            pos = n
        carry_trim(&self.carry)
        return 0

    cdef Py_ssize_t check_prelude(self, const unsigned char* p, Py_ssize_t start,
                                  FrameSink sink) except -2:
        """Total length of the message starting at p, or -1 with `error` set."""
        cdef uint32_t total = be32(p), hlen = be32(p + 4), crc = be32(p + 8)
        cdef uint32_t actual = crc32(p, 8)
        if actual != crc:
            self.error = (
                f"eventstream: prelude CRC mismatch at offset {start} "
                f"(expected 0x{crc:08x}, got 0x{actual:08x})"
            )
            self.frame_error = self.error
            self.carry.n = 0
            sink.on_frame(NULL, 0, NULL, 0, FRAME_BAD_CRC)
            return -1
        if <Py_ssize_t>total > self.max_frame:
            self.error = (
                f"eventstream: message at offset {start} declares {total} bytes, "
                f"over max_frame ({self.max_frame})"
            )
        elif total < ES_OVERHEAD or hlen > total - ES_OVERHEAD:
            self.error = (
                f"eventstream: message at offset {start} has impossible lengths "
                f"(total {total}, headers {hlen})"
            )
        else:
            return total
        self.carry.n = 0
        return -1

    cdef int message(self, const unsigned char* p, Py_ssize_t total, Py_ssize_t start,
                     FrameSink sink) except -1:
        cdef Py_ssize_t hlen = be32(p + 4)
        cdef const unsigned char* h = p + PRELUDE
        cdef const unsigned char* payload = h + hlen
        cdef Py_ssize_t plen = total - ES_OVERHEAD - hlen
        cdef uint32_t crc = be32(p + total - 4)
        cdef uint32_t actual = crc32(p, total - 4)
        cdef Py_ssize_t pos = 0, hstart = 0, name_len, size
        cdef const unsigned char* hname
        cdef unsigned char vtype
        cdef const unsigned char* event = NULL
        cdef const unsigned char* mtype = NULL
        cdef const unsigned char* exc = NULL
        cdef const unsigned char* code = NULL
        cdef Py_ssize_t event_n = 0, mtype_n = 0, exc_n = 0, code_n = 0
        cdef int flags = 0
        cdef str reason = None
        if actual != crc:
            self.frame_error = (
                f"eventstream: message CRC mismatch at offset {start} "
                f"(expected 0x{crc:08x}, got 0x{actual:08x})"
            )
            return sink.on_frame(payload, plen, NULL, 0, FRAME_BAD_CRC)
        while pos < hlen:
            hstart = pos
            name_len = h[pos]
            pos += 1
            if pos + name_len + 1 > hlen:
                reason = "header runs past the header block"
                break
            hname = h + pos
            pos += name_len
            vtype = h[pos]
            pos += 1
            if vtype <= 1:
                size = 0
            elif vtype == 2:
                size = 1
            elif vtype == 3:
                size = 2
            elif vtype == 4:
                size = 4
            elif vtype == 5 or vtype == 8:
                size = 8
            elif vtype == 9:
                size = 16
            elif vtype == 6 or vtype == 7:
                if pos + 2 > hlen:
                    reason = "header runs past the header block"
                    break
                size = (h[pos] << 8) | h[pos + 1]
                pos += 2
            else:
                reason = f"unknown header value type {vtype}"
                break
            if pos + size > hlen:
                reason = "header runs past the header block"
                break
            if vtype == 7:
                if str_eq(hname, name_len, ":event-type", 11):
                    event, event_n = h + pos, size
                elif str_eq(hname, name_len, ":message-type", 13):
                    mtype, mtype_n = h + pos, size
                elif str_eq(hname, name_len, ":exception-type", 15):
                    exc, exc_n = h + pos, size
                elif str_eq(hname, name_len, ":error-code", 11):
                    code, code_n = h + pos, size
            elif str_eq(hname, name_len, ":event-type", 11):
                event, event_n = NULL, 0
            elif str_eq(hname, name_len, ":message-type", 13):
                mtype, mtype_n = NULL, 0
            elif str_eq(hname, name_len, ":exception-type", 15):
                exc, exc_n = NULL, 0
            elif str_eq(hname, name_len, ":error-code", 11):
                code, code_n = NULL, 0
            pos += size
        if reason is not None:
            self.frame_error = (
                f"eventstream: malformed header at offset {start + PRELUDE + hstart}: {reason}"
            )
            return sink.on_frame(payload, plen, NULL, 0, FRAME_BAD_MESSAGE)
        self.hdr = h
        self.hdr_len = hlen
        if str_eq(mtype, mtype_n, "exception", 9):
            return sink.on_frame(payload, plen, exc, exc_n, FRAME_ERROR_EVENT)
        if str_eq(mtype, mtype_n, "error", 5):
            return sink.on_frame(payload, plen, code, code_n, FRAME_ERROR_EVENT)
        return sink.on_frame(payload, plen, event, event_n, flags)

    cdef int close_into(self, FrameSink sink) except -1:
        if self.error is not None or self.closed:
            return 0
        self.closed = True
        if self.carry.n:
            self.truncated = True
            self.error = (
                f"eventstream: truncated message at offset {self.start} "
                f"({self.carry.n} of {self.need if self.carry.n >= PRELUDE else PRELUDE} bytes)"
            )
        carry_free(&self.carry)
        return 0
