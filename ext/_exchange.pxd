from ._record cimport CallRecord
from ._scan cimport Scan


cdef class Exchange:
    cdef readonly object _family     # read by tests and the bench, like the pure twin's
    cdef readonly object _cfg
    cdef readonly object _framing
    cdef readonly object _ss         # StreamScanner, None when the body goes unread
    cdef readonly object _req_body   # capture: the request body
    cdef readonly object _resp       # capture: a plain response body (bytearray)
    cdef object _route, _spec, _out
    cdef CallRecord _rec
    cdef object _record              # the finished record, once finish() ran
    cdef object _body                # bytearray while the request body is buffered
    cdef object _overflow            # StreamScanner reading a request past the cap
    cdef object _status
    cdef dict _headers
    cdef object _dec, _envoy, _scan_error
    cdef Py_ssize_t _max_body
    cdef bint _capture, _cost
    cdef bint _req_done, _started, _seen, _eos

    cdef int _start_overflow(self, object chunk) except -1
    cdef int _finish_request(self, object whole) except -1
    cdef int _end_body(self) except -1
    cdef int _keep(self, object data) except -1
    cdef int _fold(self, CallRecord rec, object cut_short) except -1
    cdef bint _body_incomplete(self, Scan s) except -1
