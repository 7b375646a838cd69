# cython: language_level=3
"""Compiled twin of ``extproc_wire.ProcessingRequest`` / ``decode_request``.

The field walk runs on a raw ``const unsigned char*``; errors are recorded in the
``Cursor`` (never raised across C) and formatted once, like the pure twin's messages.
Python objects are made only for what the caller reads: header strings, the headers
dict, and one ``memoryview`` slice for a body chunk.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint64_t

from llmtap.gateway.protowire import decode_attributes, decode_metadata

cdef object _decode_metadata = decode_metadata
cdef object _decode_attributes = decode_attributes


# -- field walk ------------------------------------------------------------------------
# Each helper returns the next offset, or -1 with the cursor's error set.

cdef inline Py_ssize_t _varint(Cursor* c, Py_ssize_t pos, Py_ssize_t end, uint64_t* out) noexcept nogil:
    cdef uint64_t result = 0
    cdef unsigned int shift = 0
    cdef unsigned char b
    cdef Py_ssize_t start = pos
    while pos < end:
        b = c.buf[pos]
        pos += 1
        if shift < 64:
            result |= (<uint64_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            out[0] = result
            return pos
        shift += 7
        if shift >= 70:
            c.err = ERR_VARINT_TOO_LONG
            c.err_at = start
            return -1
    c.err = ERR_VARINT_TRUNCATED
    c.err_at = start
    return -1


cdef inline Py_ssize_t _key(Cursor* c, Py_ssize_t pos, Py_ssize_t end,
                            uint64_t* field, int* wt) noexcept nogil:
    cdef uint64_t key
    cdef Py_ssize_t at = pos
    pos = _varint(c, pos, end, &key)
    if pos < 0:
        return -1
    field[0] = key >> 3
    wt[0] = <int>(key & 7)
    if field[0] == 0:
        c.err = ERR_FIELD_ZERO
        c.err_at = at
        return -1
    return pos


cdef inline Py_ssize_t _len(Cursor* c, Py_ssize_t pos, Py_ssize_t end, uint64_t field,
                            int wt, Py_ssize_t at, Py_ssize_t* start) noexcept nogil:
    """Bounds of a length-delimited payload; returns its end, ``start`` its start."""
    cdef uint64_t n
    if wt != LEN:
        c.err = ERR_EXPECTED_LEN
        c.err_at = at
        c.err_field = field
        c.err_a = <uint64_t>wt
        return -1
    pos = _varint(c, pos, end, &n)
    if pos < 0:
        return -1
    if n > <uint64_t>(end - pos):
        c.err = ERR_LEN_OVERRUN
        c.err_at = at
        c.err_field = field
        c.err_a = n
        c.err_left = end - pos
        return -1
    start[0] = pos
    return pos + <Py_ssize_t>n


cdef inline Py_ssize_t _flag(Cursor* c, Py_ssize_t pos, Py_ssize_t end, uint64_t field,
                             int wt, Py_ssize_t at, bint* out) noexcept nogil:
    cdef uint64_t v
    if wt != VARINT:
        c.err = ERR_EXPECTED_VARINT
        c.err_at = at
        c.err_field = field
        c.err_a = <uint64_t>wt
        return -1
    pos = _varint(c, pos, end, &v)
    if pos >= 0:
        out[0] = v != 0
    return pos


cdef Py_ssize_t _skip(Cursor* c, Py_ssize_t pos, Py_ssize_t end, uint64_t field,
                      int wt, Py_ssize_t at) noexcept nogil:
    cdef uint64_t v
    cdef Py_ssize_t start
    if wt == VARINT:
        return _varint(c, pos, end, &v)
    if wt == LEN:
        return _len(c, pos, end, field, wt, at, &start)
    if wt == I64:
        if end - pos < 8:
            c.err = ERR_I64_TRUNCATED
            c.err_at = at
            c.err_field = field
            return -1
        return pos + 8
    if wt == I32:
        if end - pos < 4:
            c.err = ERR_I32_TRUNCATED
            c.err_at = at
            c.err_field = field
            return -1
        return pos + 4
    c.err = ERR_WIRE_TYPE
    c.err_at = at
    c.err_field = field
    c.err_a = <uint64_t>wt
    return -1


cdef str _message(Cursor* c):
    cdef object f = c.err_field
    cdef object a = c.err_a
    cdef Py_ssize_t at = c.err_at
    if c.err == ERR_VARINT_TRUNCATED:
        what = f"truncated varint at offset {at}"
    elif c.err == ERR_VARINT_TOO_LONG:
        what = f"varint longer than 10 bytes at offset {at}"
    elif c.err == ERR_FIELD_ZERO:
        what = f"invalid field number 0 at offset {at}"
    elif c.err == ERR_LEN_OVERRUN:
        what = (f"field {f} length {a} overruns the message at offset {at} "
                f"({c.err_left} bytes left)")
    elif c.err == ERR_I64_TRUNCATED:
        what = f"truncated 64-bit field {f} at offset {at}"
    elif c.err == ERR_I32_TRUNCATED:
        what = f"truncated 32-bit field {f} at offset {at}"
    elif c.err == ERR_WIRE_TYPE:
        what = f"unsupported wire type {a} for field {f} at offset {at}"
    elif c.err == ERR_EXPECTED_LEN:
        what = f"field {f} has wire type {a}, expected 2, at offset {at}"
    else:
        what = f"field {f} has wire type {a}, expected 0, at offset {at}"
    return "invalid ProcessingRequest: " + what


cdef inline bint _has_upper(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if 65 <= p[i] <= 90:
            return True
    return False


# -- the message -----------------------------------------------------------------------

@cython.freelist(8)
cdef class ProcessingRequest:
    """One decoded ProcessingRequest (see ``extproc_wire.ProcessingRequest``)."""

    def __cinit__(self):
        self.kind = 0
        self.headers = None
        self.body = None
        self.end_of_stream = False
        self.observability_mode = False
        self.request_body_mode = -1
        self.response_body_mode = -1
        self.error = None
        self._buf = None

    def metadata(self):
        """``metadata_context`` (dynamic metadata Envoy forwarded); raises WireError."""
        return _decode_metadata(self._buf if self._buf is not None else b"")

    def attributes(self):
        """The ``attributes`` map (filter name -> attribute values); raises WireError."""
        return _decode_attributes(self._buf if self._buf is not None else b"")

    def __repr__(self):
        from llmtap.gateway.extproc_wire import KIND_NAMES

        parts = [f"kind={KIND_NAMES.get(self.kind, self.kind)}"]
        if self.headers is not None:
            parts.append(f"headers={self.headers!r}")
        if self.body is not None:
            parts.append(f"body=<{len(self.body)} bytes>")
        parts.append(f"end_of_stream={bool(self.end_of_stream)}")
        if self.observability_mode:
            parts.append("observability_mode=True")
        if self.error is not None:
            parts.append(f"error={self.error!r}")
        return f"ProcessingRequest({', '.join(parts)})"

    cdef int _body(self, Cursor* c, Py_ssize_t pos, Py_ssize_t stop) except -1:
        cdef uint64_t f
        cdef int wt
        cdef Py_ssize_t at, s, body_s = 0, body_e = 0
        cdef bint seen = False, eos = self.end_of_stream
        while pos < stop:
            at = pos
            pos = _key(c, pos, stop, &f, &wt)
            if pos < 0:
                return 0
            if f == 1:
                pos = _len(c, pos, stop, f, wt, at, &s)
                if pos < 0:
                    return 0
                body_s = s
                body_e = pos
                seen = True
            elif f == 2:
                pos = _flag(c, pos, stop, f, wt, at, &eos)
                if pos < 0:
                    return 0
            else:
                pos = _skip(c, pos, stop, f, wt, at)
                if pos < 0:
                    return 0
        self.end_of_stream = eos
        if seen:
            self.body = self._buf[body_s:body_e]
        elif self.body is None:
            self.body = self._buf[0:0]
        return 0

    cdef int _headers(self, Cursor* c, Py_ssize_t pos, Py_ssize_t stop, bint trailers) except -1:
        cdef uint64_t f, hf
        cdef int wt, hw
        cdef Py_ssize_t at, hat, s, e, hs, he
        cdef Py_ssize_t ks, ke, vs, ve, rs, re, ps
        cdef bint eos
        cdef const unsigned char* buf = c.buf
        cdef dict headers
        cdef PyObject* prev
        if self.headers is None:
            self.headers = {}
        headers = self.headers
        while pos < stop:
            at = pos
            pos = _key(c, pos, stop, &f, &wt)
            if pos < 0:
                return 0
            if f == 1:  # HeaderMap
                e = _len(c, pos, stop, f, wt, at, &s)
                if e < 0:
                    return 0
                pos = e
                while s < e:
                    hat = s
                    s = _key(c, s, e, &hf, &hw)
                    if s < 0:
                        return 0
                    if hf != 1:
                        s = _skip(c, s, e, hf, hw, hat)
                        if s < 0:
                            return 0
                        continue
                    he = _len(c, s, e, hf, hw, hat, &hs)
                    if he < 0:
                        return 0
                    s = he
                    ks = ke = vs = ve = rs = re = 0
                    while hs < he:  # HeaderValue
                        hat = hs
                        hs = _key(c, hs, he, &hf, &hw)
                        if hs < 0:
                            return 0
                        if 1 <= hf <= 3:
                            hs = _len(c, hs, he, hf, hw, hat, &ps)
                            if hs < 0:
                                return 0
                            if hf == 1:
                                ks = ps
                                ke = hs
                            elif hf == 2:
                                vs = ps
                                ve = hs
                            else:
                                rs = ps
                                re = hs
                        else:
                            hs = _skip(c, hs, he, hf, hw, hat)
                            if hs < 0:
                                return 0
                    if re > rs:
                        vs = rs
                        ve = re
                    if _has_upper(buf + ks, ke - ks):
                        name = PyBytes_FromStringAndSize(<const char*>buf + ks, ke - ks).lower()
                        name = name.decode("utf-8", "replace")
                    else:
                        name = PyUnicode_DecodeUTF8(<const char*>buf + ks, ke - ks, "replace")
                    text = PyUnicode_DecodeUTF8(<const char*>buf + vs, ve - vs, "replace")
                    prev = PyDict_GetItem(headers, name)
                    if prev is NULL:
                        PyDict_SetItem(headers, name, text)
                    else:
                        PyDict_SetItem(headers, name, f"{<object>prev}, {text}")
            elif f == 3 and not trailers:
                pos = _flag(c, pos, stop, f, wt, at, &eos)
                if pos < 0:
                    return 0
                self.end_of_stream = eos
            else:
                pos = _skip(c, pos, stop, f, wt, at)
                if pos < 0:
                    return 0
        return 0

    cdef int _decode(self, Cursor* c) except -1:
        cdef uint64_t f, v, sf
        cdef int wt, sw
        cdef Py_ssize_t pos = 0, end = c.end, at, sat, s, stop
        cdef bint flag
        while pos < end:
            at = pos
            pos = _key(c, pos, end, &f, &wt)
            if pos < 0:
                return 0
            if 2 <= f <= 7:
                if <int>f != self.kind:
                    # A different oneof case replaces the previous one; the same case
                    # appearing twice merges into it, as protobuf parsers do. The kind is
                    # taken before the payload is checked so a broken one can still be
                    # answered.
                    self.kind = <int>f
                    self.headers = None
                    self.body = None
                    self.end_of_stream = False
                stop = _len(c, pos, end, f, wt, at, &s)
                if stop < 0:
                    return 0
                pos = stop
                if f == 4 or f == 5:
                    self._body(c, s, stop)
                else:
                    self._headers(c, s, stop, f >= 6)
                if c.err != ERR_NONE:
                    return 0
            elif f == 10:
                pos = _flag(c, pos, end, f, wt, at, &flag)
                if pos < 0:
                    return 0
                self.observability_mode = flag
            elif f == 11:
                stop = _len(c, pos, end, f, wt, at, &s)
                if stop < 0:
                    return 0
                pos = stop
                if self.request_body_mode < 0:
                    self.request_body_mode = 0
                    self.response_body_mode = 0
                while s < stop:
                    sat = s
                    s = _key(c, s, stop, &sf, &sw)
                    if s < 0:
                        return 0
                    if (sf == 1 or sf == 2) and sw == VARINT:
                        s = _varint(c, s, stop, &v)
                        if s < 0:
                            return 0
                        # Enum values are int32; anything else is garbage, reported as -1.
                        if sf == 1:
                            self.request_body_mode = <int>v if v <= 0x7FFFFFFF else -1
                        else:
                            self.response_body_mode = <int>v if v <= 0x7FFFFFFF else -1
                    else:
                        s = _skip(c, s, stop, sf, sw, sat)
                        if s < 0:
                            return 0
            else:
                pos = _skip(c, pos, end, f, wt, at)
                if pos < 0:
                    return 0
        return 0


def decode_request(data) -> ProcessingRequest:
    """Decode one ``ProcessingRequest``; never raises on bad input (see ``error``)."""
    cdef ProcessingRequest req = ProcessingRequest.__new__(ProcessingRequest)
    cdef Cursor c
    cdef Py_buffer pybuf
    cdef bint release = False
    view = memoryview(data)
    if not PyBytes_CheckExact(data) and (view.format != "B" or view.ndim != 1):
        view = view.cast("B")
    req._buf = view
    c.err = ERR_NONE
    c.err_at = c.err_left = 0
    c.err_field = c.err_a = 0
    if PyBytes_CheckExact(data):
        c.buf = <const unsigned char*>PyBytes_AS_STRING(data)
        c.end = len(<bytes>data)
    else:
        PyObject_GetBuffer(view, &pybuf, PyBUF_SIMPLE)
        release = True
        c.buf = <const unsigned char*>pybuf.buf
        c.end = pybuf.len
    try:
        req._decode(&c)
    finally:
        if release:
            PyBuffer_Release(&pybuf)
    if c.err != ERR_NONE:
        req.error = _message(&c)
        req.headers = None
        req.body = None
        req.end_of_stream = False
    return req
