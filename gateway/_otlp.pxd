from libc.stdint cimport uint64_t


cdef class OtlpEncoder:
    cdef:
        unsigned char* buf       # scratch: one span is written here, then copied out once
        Py_ssize_t     cap
        Py_ssize_t     n
        dict           _keys     # attribute key -> encoded KeyValue.key field, or None (secret)
        dict           _attrs    # (key, short str value) -> whole Span.attributes field
        Py_ssize_t     _max_len  # string value cap in characters, -1 = none
        readonly object max_value_len
        readonly Py_ssize_t max_attributes
        readonly bytes resource_field
        readonly bytes scope_field

    cdef int _grow(self, Py_ssize_t extra) except -1
    cdef int _put(self, const unsigned char* p, Py_ssize_t k) except -1
    cdef int _byte(self, unsigned char c) except -1
    cdef int _varint(self, uint64_t v) except -1
    cdef int _fixed64(self, uint64_t v) except -1
    cdef int _fixed32(self, unsigned int v) except -1
    cdef Py_ssize_t _open(self) except -1
    cdef int _close(self, Py_ssize_t pos) except -1
    cdef int _str(self, object s) except -1
    cdef object _key(self, str key)
    cdef int _any(self, object v, int depth) except -1
    cdef int _attr(self, unsigned char tag, object key, object value) except -1
    cdef Py_ssize_t _attributes(self, object attrs, unsigned char tag) except -1
    cdef int _event(self, object ev) except -1
    cdef int _link(self, object ln) except -1
