cdef class Scan:
    cdef readonly object spec
    cdef public object route, headers, capped, docs, error, error_event
    cdef public bint done_sentinel, truncated
    cdef tuple _names
    cdef dict _ix            # slot name -> slot (the spec's), empty without a scanner
    cdef list _v             # the scanner's folded values
    cdef object _ss
    cdef object _values, _first
    cdef list _first_index

    cdef int _init(self, object spec, object ss, object route, object headers) except -1
    cdef list first_index_c(self)
    cdef object slot_c(self, Py_ssize_t i)
    cpdef bint any_set(self, tuple slots) except -1
    cpdef assign(self, rec)
    cpdef tuple first_output(self)


cdef Scan new_scan(object spec, object ss, object route, object headers)
