from libc.stdint cimport uint64_t


cdef enum WireType:
    VARINT = 0
    I64 = 1
    LEN = 2
    I32 = 5


# Why a decode failed; turned into the same message as the pure twin's WireError only
# once, on the cold path, after the C loop returned.
cdef enum WireErr:
    ERR_NONE = 0
    ERR_VARINT_TRUNCATED
    ERR_VARINT_TOO_LONG
    ERR_FIELD_ZERO
    ERR_LEN_OVERRUN
    ERR_I64_TRUNCATED
    ERR_I32_TRUNCATED
    ERR_WIRE_TYPE
    ERR_EXPECTED_LEN
    ERR_EXPECTED_VARINT


cdef struct Cursor:
    const unsigned char* buf
    Py_ssize_t end          # end of the whole message: offsets are absolute
    WireErr err
    Py_ssize_t err_at
    uint64_t err_field
    uint64_t err_a          # wire type, or length
    Py_ssize_t err_left


cdef class ProcessingRequest:
    cdef readonly int kind
    cdef readonly object headers
    cdef readonly object body
    cdef readonly bint end_of_stream
    cdef readonly bint observability_mode
    cdef readonly int request_body_mode
    cdef readonly int response_body_mode
    cdef readonly object error
    cdef object _buf

    cdef int _decode(self, Cursor* c) except -1
    cdef int _body(self, Cursor* c, Py_ssize_t pos, Py_ssize_t stop) except -1
    cdef int _headers(self, Cursor* c, Py_ssize_t pos, Py_ssize_t stop, bint trailers) except -1
