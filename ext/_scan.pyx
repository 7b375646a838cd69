# cython: language_level=3, boundscheck=True, wraparound=True
"""Compiled twin of ``scan.Scan``: same API, same values.

The reads families make while folding (``get``, ``num``, ``text``) are one dict
lookup and one list index in C; ``first_output`` walks the first-index list in C.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject

cdef dict _NO_SLOTS = {}
cdef dict _NO_HEADERS = {}
cdef object _EMPTY = frozenset()


cdef inline object _as_int(object v):
    # scan.as_int: numbers as int (a float only when integral); bools are not numbers
    if type(v) is int:
        return v
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


cdef class Scan:
    """Scanned values of one response, read once by ``Family.fold``."""

    def __init__(self, spec, ss, route=None, headers=None):
        self._init(spec, ss, route, headers)

    cdef int _init(self, object spec, object ss, object route, object headers) except -1:
        self.spec = spec
        self.route = route
        self.headers = headers if headers is not None else _NO_HEADERS
        self.capped = _EMPTY
        self._names = spec.names if spec is not None else ()
        self._values = None
        self._first = None
        self._first_index = None
        if ss is None or spec is None:
            self._ss = None
            self._ix = _NO_SLOTS
            self._v = []
            self.docs = 0
            self.done_sentinel = False
            self.error = None
            self.error_event = None
            self.truncated = False
            return 0
        self._ss = ss
        self._ix = spec.slot_of
        self._v = ss.values
        self.docs = ss.docs
        self.done_sentinel = ss.done_sentinel
        self.error = ss.error
        self.error_event = ss.error_event
        self.truncated = ss.truncated
        return 0

    @property
    def values(self):
        """Value per slot name (every slot of the spec; None where nothing was read)."""
        if self._values is None:
            if self._ix:
                self._values = dict(zip(self._names, self._v, strict=True))
            else:
                self._values = dict.fromkeys(self._names)
        return self._values

    @property
    def first(self):
        """Per slot name: the first document where it was non-null/present, or -1."""
        if self._first is None:
            self._first = dict(zip(self._names, self.first_index_c(), strict=True))
        return self._first

    def first_index(self):
        """Per slot: the first document where it was non-null/present, or -1."""
        return self.first_index_c()

    cdef list first_index_c(self):
        if self._first_index is None:
            if self._ss is not None:
                fi = self._ss.first_index
                self._first_index = fi if type(fi) is list else list(fi)
            else:
                self._first_index = [-1] * len(self._names)
        return self._first_index

    cdef object slot_c(self, Py_ssize_t i):
        if not self._ix:
            return None
        return self._v[i]

    def get(self, key):
        cdef PyObject* i = PyDict_GetItem(self._ix, key)
        if i is NULL:
            return None
        return self._v[<Py_ssize_t><object>i]

    def num(self, *keys):
        """First of ``keys`` holding a number, as int (Titan sends ``28.0``)."""
        cdef PyObject* i
        for k in keys:
            i = PyDict_GetItem(self._ix, k)
            if i is not NULL:
                v = _as_int(self._v[<Py_ssize_t><object>i])
                if v is not None:
                    return v
        return None

    def text(self, *keys):
        """First of ``keys`` holding a non-empty string."""
        cdef PyObject* i
        for k in keys:
            i = PyDict_GetItem(self._ix, k)
            if i is not NULL:
                v = self._v[<Py_ssize_t><object>i]
                if isinstance(v, str) and v:
                    return v
        return None

    def seq(self, key):
        v = self.get(key)
        return v if isinstance(v, list) else []

    def slot(self, Py_ssize_t i):
        """The value of slot ``i`` (an index into the spec's names)."""
        return self.slot_c(i)

    cpdef bint any_set(self, tuple slots) except -1:
        """Whether any of these slots holds a value."""
        if self._ix:
            for i in slots:
                if self._v[<Py_ssize_t>i] is not None:
                    return True
        return False

    cpdef assign(self, rec):
        """Set the record fields the spec's ``texts`` and ``numbers`` name: the first of
        their slots holding a non-empty string / a number, else None."""
        spec = self.spec
        if spec is None:
            return
        cdef bint scanned = bool(self._ix)
        cdef tuple slots
        for field, slots in spec.texts:
            found = None
            if scanned:
                for i in slots:
                    v = self._v[<Py_ssize_t>i]
                    if isinstance(v, str) and v:
                        found = v
                        break
            setattr(rec, field, found)
        for field, slots in spec.numbers:
            found = None
            if scanned:
                for i in slots:
                    found = _as_int(self._v[<Py_ssize_t>i])
                    if found is not None:
                        break
            setattr(rec, field, found)

    cpdef tuple first_output(self):
        """(kind, document index) of the first output, or (None, None)."""
        spec = self.spec
        if spec is None:
            return (None, None)
        cdef tuple out = spec.out
        if not out:
            return (None, None)
        cdef list first = self.first_index_c()
        cdef Py_ssize_t d = -1, f, best = -1, j
        for i in out:
            f = first[<Py_ssize_t>i]
            if f >= 0 and (d < 0 or f < d):
                d = f
        if d < 0:
            return (None, None)
        cdef tuple slots = spec.kind_slots, kinds = spec.kind_names
        kind = "text"
        for j in range(len(slots)):
            f = first[<Py_ssize_t>slots[j]]
            if best < f <= d:
                best = f
                kind = kinds[j]
        return (kind, d)


cdef Scan new_scan(object spec, object ss, object route, object headers):
    """``Scan(spec, ss, route, headers)`` without the Python call (for the Exchange)."""
    cdef Scan s = Scan.__new__(Scan)
    s._init(spec, ss, route, headers)
    return s
