# cython: language_level=3
"""Compiled twin of ``otlp.py``: same API, same bytes.

A span is written into one growable scratch buffer; nested messages reserve a one-byte
length and are shifted only when they outgrow 127 bytes (rare: long content strings),
so the common span costs one pass and one copy into the result ``bytes``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memmove

from .logs import is_secret_name

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

import collections.abc

cdef object _MISS = object()
cdef object _Mapping = collections.abc.Mapping

cdef enum:
    PREFIX = 6              # room for the span's field tag + a 5-byte length
    CACHE_MAX = 4096
    CACHE_STR_MAX = 128
    MAX_DEPTH = 16
    SPAN_ATTR = 0x4a        # Span.attributes: field 9, length-delimited
    SHRINK_ABOVE = 1 << 20  # give back scratch memory after an outsized span


cdef inline int _varint_size(uint64_t v) noexcept:
    cdef int k = 1
    while v >= 0x80:
        v >>= 7
        k += 1
    return k


cdef class OtlpEncoder:
    """Encode spans and export requests for one resource and instrumentation scope."""

    def __cinit__(self):
        self.buf = NULL
        self.cap = 0
        self.n = 0

    def __dealloc__(self):
        PyMem_Free(self.buf)

    def __init__(self, resource, str scope_name, str scope_version="", *,
                 max_value_len=None, Py_ssize_t max_attributes=128):
        self._keys = {}
        self._attrs = {}
        self.max_value_len = max_value_len
        self._max_len = -1 if max_value_len is None else <Py_ssize_t>max_value_len
        self.max_attributes = max_attributes
        self._grow(1024)
        self.n = 0
        self._attributes(resource, 0x0a)
        res = PyBytes_FromStringAndSize(<char*>self.buf, self.n)
        self.n = 0
        self._byte(0x0a)
        self._str(scope_name)
        if scope_version:
            self._byte(0x12)
            self._str(scope_version)
        scope = PyBytes_FromStringAndSize(<char*>self.buf, self.n)
        self.resource_field = _field(0x0a, res)
        self.scope_field = _field(0x0a, scope)

    # -- buffer primitives ------------------------------------------------------------

    cdef int _grow(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.n + extra
        cdef Py_ssize_t cap
        cdef unsigned char* nb
        if need <= self.cap:
            return 0
        cap = self.cap * 2 if self.cap else 1024
        while cap < need:
            cap *= 2
        nb = <unsigned char*>PyMem_Realloc(self.buf, cap)
        if nb == NULL:
            raise MemoryError()
        self.buf = nb
        self.cap = cap
        return 0

    cdef int _put(self, const unsigned char* p, Py_ssize_t k) except -1:
        if self.n + k > self.cap:
            self._grow(k)
        memcpy(self.buf + self.n, p, k)
        self.n += k
        return 0

    cdef int _byte(self, unsigned char c) except -1:
        if self.n + 1 > self.cap:
            self._grow(1)
        self.buf[self.n] = c
        self.n += 1
        return 0

    cdef int _varint(self, uint64_t v) except -1:
        if self.n + 10 > self.cap:
            self._grow(10)
        while v >= 0x80:
            self.buf[self.n] = <unsigned char>((v & 0x7F) | 0x80)
            self.n += 1
            v >>= 7
        self.buf[self.n] = <unsigned char>v
        self.n += 1
        return 0

    cdef int _fixed64(self, uint64_t v) except -1:
        cdef int i
        if self.n + 8 > self.cap:
            self._grow(8)
        for i in range(8):
            self.buf[self.n + i] = <unsigned char>(v >> (8 * i))
        self.n += 8
        return 0

    cdef int _fixed32(self, unsigned int v) except -1:
        cdef int i
        if self.n + 4 > self.cap:
            self._grow(4)
        for i in range(4):
            self.buf[self.n + i] = <unsigned char>(v >> (8 * i))
        self.n += 4
        return 0

    cdef Py_ssize_t _open(self) except -1:
        """Reserve a one-byte length for a nested message; returns its position."""
        cdef Py_ssize_t pos = self.n
        self._byte(0)
        return pos

    cdef int _close(self, Py_ssize_t pos) except -1:
        cdef Py_ssize_t body = self.n - pos - 1
        cdef int k
        cdef uint64_t v
        if body < 0x80:
            self.buf[pos] = <unsigned char>body
            return 0
        k = _varint_size(<uint64_t>body)
        self._grow(k - 1)
        memmove(self.buf + pos + k, self.buf + pos + 1, body)
        v = <uint64_t>body
        while v >= 0x80:
            self.buf[pos] = <unsigned char>((v & 0x7F) | 0x80)
            pos += 1
            v >>= 7
        self.buf[pos] = <unsigned char>v
        self.n += k - 1
        return 0

    cdef int _str(self, object s) except -1:
        """Length-prefixed UTF-8 of ``s`` (lone surrogates become U+FFFD, like the twin)."""
        cdef Py_ssize_t size
        cdef const char* p
        try:
            p = PyUnicode_AsUTF8AndSize(s, &size)
        except UnicodeEncodeError:
            b = (<str>s).encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
            self._varint(<uint64_t>PyBytes_GET_SIZE(b))
            return self._put(<const unsigned char*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        self._varint(<uint64_t>size)
        return self._put(<const unsigned char*>p, size)

    # -- values -------------------------------------------------------------------------

    cdef object _key(self, str key):
        kf = self._keys.get(key, _MISS)
        if kf is _MISS:
            if is_secret_name(key):
                kf = None
            else:
                kf = _field(0x0a, _utf8(key))
            if len(self._keys) >= CACHE_MAX:
                self._keys.clear()
            self._keys[key] = kf
        return kf

    cdef int _any(self, object v, int depth) except -1:
        cdef type t = type(v)
        cdef int overflow = 0
        cdef long long x
        cdef double d
        cdef uint64_t u
        cdef Py_ssize_t pos, inner, vpos
        if t is str:
            self._byte(0x0a)
            return self._str(v)
        if t is bool:
            self._byte(0x10)
            return self._byte(1 if v else 0)
        if t is int:
            x = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow == 0:
                self._byte(0x18)
                return self._varint(<uint64_t>x)
            v = float(v)
            t = float
        if t is float:
            d = v
            memcpy(&u, &d, 8)
            self._byte(0x21)
            return self._fixed64(u)
        if depth >= MAX_DEPTH:
            return self._any(str(v), depth)
        if t is list or t is tuple:
            self._byte(0x2a)
            pos = self._open()
            for x_ in v:
                self._byte(0x0a)
                inner = self._open()
                self._any(x_ if x_ is not None else "", depth + 1)
                self._close(inner)
            return self._close(pos)
        if t is dict:
            self._byte(0x32)
            pos = self._open()
            for k_, x_ in (<dict>v).items():
                if x_ is None:
                    continue
                self._byte(0x0a)
                inner = self._open()
                self._byte(0x0a)
                self._str(k_ if type(k_) is str else str(k_))
                self._byte(0x12)
                vpos = self._open()
                self._any(x_, depth + 1)
                self._close(vpos)
                self._close(inner)
            return self._close(pos)
        if t is bytes:
            self._byte(0x3a)
            self._varint(<uint64_t>PyBytes_GET_SIZE(v))
            return self._put(<const unsigned char*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
        if isinstance(v, bool):
            return self._any(bool(v), depth)
        if isinstance(v, int):
            return self._any(int(v), depth)
        if isinstance(v, float):
            return self._any(float(v), depth)
        if isinstance(v, str):
            return self._any(str(v), depth)
        if isinstance(v, (list, tuple)):
            return self._any(list(v), depth)
        if isinstance(v, _Mapping):
            return self._any(dict(v), depth)
        if isinstance(v, (bytearray, memoryview)):
            return self._any(bytes(v), depth)
        return self._any(str(v), depth)

    cdef int _attr(self, unsigned char tag, object key, object value) except -1:
        """One attribute as a repeated ``KeyValue`` field; 0 when the key is a secret."""
        cdef Py_ssize_t start = self.n
        cdef Py_ssize_t pos, vpos
        cdef bint cache = False
        cdef object ck = None
        if type(key) is not str:
            key = str(key)
        if type(value) is str:
            if self._max_len >= 0 and len(<str>value) > self._max_len:
                value = (<str>value)[:self._max_len]
            if tag == SPAN_ATTR and len(<str>value) <= CACHE_STR_MAX:
                ck = (key, value)
                hit = self._attrs.get(ck)
                if hit is not None:
                    self._put(<const unsigned char*>PyBytes_AS_STRING(hit), PyBytes_GET_SIZE(hit))
                    return 1
                cache = True
        kf = self._key(key)
        if kf is None:
            return 0
        self._byte(tag)
        pos = self._open()
        self._put(<const unsigned char*>PyBytes_AS_STRING(kf), PyBytes_GET_SIZE(kf))
        self._byte(0x12)
        vpos = self._open()
        self._any(value, 0)
        self._close(vpos)
        self._close(pos)
        if cache:
            if len(self._attrs) >= CACHE_MAX:
                self._attrs.clear()
            self._attrs[ck] = PyBytes_FromStringAndSize(<char*>self.buf + start, self.n - start)
        return 1

    cdef Py_ssize_t _attributes(self, object attrs, unsigned char tag) except -1:
        """Write the attributes; returns how many were dropped by the count limit."""
        cdef Py_ssize_t written = 0, dropped = 0, i = 0
        cdef PyObject* k
        cdef PyObject* v
        if type(attrs) is dict:
            while PyDict_Next(attrs, &i, &k, &v):
                if <object>v is None:
                    continue
                if written >= self.max_attributes:
                    dropped += 1
                    continue
                written += self._attr(tag, <object>k, <object>v)
            return dropped
        for key, value in attrs.items():
            if value is None:
                continue
            if written >= self.max_attributes:
                dropped += 1
                continue
            written += self._attr(tag, key, value)
        return dropped

    cdef int _event(self, object ev) except -1:
        cdef Py_ssize_t dropped
        time_ns, name, attrs = ev
        self._byte(0x09)
        self._fixed64(<uint64_t>time_ns)
        self._byte(0x12)
        self._str(name)
        dropped = self._attributes(attrs, 0x1a)
        if dropped:
            self._byte(0x20)
            self._varint(<uint64_t>dropped)
        return 0

    cdef int _link(self, object ln) except -1:
        cdef Py_ssize_t dropped
        trace_id, span_id, trace_state, flags, attrs = ln
        _check_id(trace_id, 16, "link trace_id")
        _check_id(span_id, 8, "link span_id")
        self._byte(0x0a)
        self._byte(16)
        self._put(<const unsigned char*>PyBytes_AS_STRING(trace_id), 16)
        self._byte(0x12)
        self._byte(8)
        self._put(<const unsigned char*>PyBytes_AS_STRING(span_id), 8)
        if trace_state:
            self._byte(0x1a)
            self._str(trace_state)
        dropped = self._attributes(attrs, 0x22)
        if dropped:
            self._byte(0x28)
            self._varint(<uint64_t>dropped)
        if flags:
            self._byte(0x35)
            self._fixed32(<unsigned int>(flags & 0xFFFFFFFF))
        return 0

    # -- public -------------------------------------------------------------------------

    def span(self, span):
        """One ``ScopeSpans.spans`` field (tag 2, length, ``Span``) for a ``SpanData``."""
        cdef tuple t
        cdef Py_ssize_t dropped, pos, body, start
        cdef uint64_t v
        if type(span) is tuple:
            t = <tuple>span
        else:
            t = tuple(span)
        if len(t) != 14:
            raise ValueError(f"expected a 14-field SpanData, got {len(t)} fields")
        trace_id = t[0]
        span_id = t[1]
        parent = t[2]
        _check_id(trace_id, 16, "trace_id")
        _check_id(span_id, 8, "span_id")
        if parent:
            _check_id(parent, 8, "parent_span_id")
        self.n = PREFIX
        self._grow(64)
        self._byte(0x0a)
        self._byte(16)
        self._put(<const unsigned char*>PyBytes_AS_STRING(trace_id), 16)
        self._byte(0x12)
        self._byte(8)
        self._put(<const unsigned char*>PyBytes_AS_STRING(span_id), 8)
        if t[3]:
            self._byte(0x1a)
            self._str(t[3])
        if parent:
            self._byte(0x22)
            self._byte(8)
            self._put(<const unsigned char*>PyBytes_AS_STRING(parent), 8)
        self._byte(0x2a)
        self._str(t[5])
        self._byte(0x30)
        self._varint(<uint64_t><unsigned char>t[6])
        self._byte(0x39)
        self._fixed64(<uint64_t>t[7])
        self._byte(0x41)
        self._fixed64(<uint64_t>t[8])
        dropped = self._attributes(t[9], SPAN_ATTR)
        if dropped:
            self._byte(0x50)
            self._varint(<uint64_t>dropped)
        for ev in t[12]:
            self._byte(0x5a)
            pos = self._open()
            self._event(ev)
            self._close(pos)
        for ln in t[13]:
            self._byte(0x6a)
            pos = self._open()
            self._link(ln)
            self._close(pos)
        code = t[10]
        msg = t[11]
        if code or msg:
            self._byte(0x7a)
            pos = self._open()
            if msg:
                self._byte(0x12)
                self._str(msg)
            if code:
                self._byte(0x18)
                self._varint(<uint64_t><long long>code)
            self._close(pos)
        if t[4]:
            self._byte(0x85)
            self._byte(0x01)
            self._fixed32(<unsigned int>(t[4] & 0xFFFFFFFF))
        # Write the field header right-aligned in front of the body: no second copy.
        body = self.n - PREFIX
        start = PREFIX - 1 - _varint_size(<uint64_t>body)
        self.buf[start] = 0x12
        pos = start + 1
        v = <uint64_t>body
        while v >= 0x80:
            self.buf[pos] = <unsigned char>((v & 0x7F) | 0x80)
            pos += 1
            v >>= 7
        self.buf[pos] = <unsigned char>v
        out = PyBytes_FromStringAndSize(<char*>self.buf + start, self.n - start)
        if self.cap > SHRINK_ABOVE:
            PyMem_Free(self.buf)
            self.buf = NULL
            self.cap = 0
            self.n = 0
            self._grow(1024)
        return out

    def request(self, spans):
        """An ``ExportTraceServiceRequest`` holding ``spans`` (outputs of :meth:`span`)."""
        cdef Py_ssize_t total = 0
        for s in spans:
            total += PyBytes_GET_SIZE(s)
        ss_len = PyBytes_GET_SIZE(self.scope_field) + total
        ss_hdr = b"\x12" + _varint_bytes(ss_len)
        rs_len = PyBytes_GET_SIZE(self.resource_field) + len(ss_hdr) + ss_len
        return b"".join(
            [b"\x0a", _varint_bytes(rs_len), self.resource_field, ss_hdr, self.scope_field, *spans]
        )


cdef bytes _utf8(str s):
    try:
        return s.encode()
    except UnicodeEncodeError:
        return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


cdef inline int _check_id(object b, Py_ssize_t size, str what) except -1:
    if type(b) is not bytes or PyBytes_GET_SIZE(b) != size:
        raise ValueError(f"{what} must be {size} bytes, got {b!r}")
    return 0


cdef bytes _varint_bytes(uint64_t v):
    cdef unsigned char out[10]
    cdef int k = 0
    while v >= 0x80:
        out[k] = <unsigned char>((v & 0x7F) | 0x80)
        k += 1
        v >>= 7
    out[k] = <unsigned char>v
    return PyBytes_FromStringAndSize(<char*>out, k + 1)


cdef bytes _field(unsigned char tag, bytes payload):
    return bytes((tag,)) + _varint_bytes(<uint64_t>PyBytes_GET_SIZE(payload)) + payload
