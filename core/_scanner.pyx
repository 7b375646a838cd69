# cython: language_level=3
"""Compiled twin of core/scanner.py: same API, same results, same error strings.

core/scanner.py is the specification (its module docstring lists the rules).
This file is only the byte loop: one state machine over `const unsigned char*`,
memchr to skip strings, and slot values kept as C scalars and reused byte
buffers until `values` asks for Python objects.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from llmtap.core.paths import PathSet

cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* exc) except? -1.0

cdef extern from *:
    """
    /* Index of the closing quote of a string whose content starts at p[i], or n if
       it does not end inside p[:n] (then the caller takes the resumable path).
       Eight bytes at a time: a quote or backslash byte becomes zero after the
       XOR and the classic has-zero-byte test finds the first one. */
    static inline Py_ssize_t llmtap_skip_to_quote(const unsigned char* p, Py_ssize_t i,
                                                  Py_ssize_t n) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (i + 8 <= n) {
            uint64_t v, q, b, hit;
            memcpy(&v, p + i, 8);
            q = v ^ 0x2222222222222222ULL;
            b = v ^ 0x5C5C5C5C5C5C5C5CULL;
            hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
            if (!hit) { i += 8; continue; }
            i += __builtin_ctzll(hit) >> 3;
            if (p[i] == 0x22) return i;
            i += 2;   /* a backslash and the byte it escapes */
        }
    #endif
        while (i < n) {
            if (p[i] == 0x22) return i;
            i += p[i] == 0x5C ? 2 : 1;
        }
        return n;
    }

    /* End of a complete JSON number at p[i] followed, inside the chunk, by a byte
       that may follow a value; 0 if it is anything else (the caller takes the
       general path, which also reports errors). */
    static inline Py_ssize_t llmtap_skip_number(const unsigned char* p, Py_ssize_t i,
                                                Py_ssize_t n) {
        Py_ssize_t j = i + (p[i] == 0x2D), d;
        #define LLMTAP_DIGIT(k) ((k) < n && p[k] >= 0x30 && p[k] <= 0x39)
        d = j;
        while (LLMTAP_DIGIT(j)) j++;
        if (j == d || (p[d] == 0x30 && j - d > 1)) return 0;
        if (j < n && p[j] == 0x2E) {
            d = ++j;
            while (LLMTAP_DIGIT(j)) j++;
            if (j == d) return 0;
        }
        if (j < n && (p[j] == 0x65 || p[j] == 0x45)) {
            j++;
            if (j < n && (p[j] == 0x2B || p[j] == 0x2D)) j++;
            d = j;
            while (LLMTAP_DIGIT(j)) j++;
            if (j == d) return 0;
        }
        #undef LLMTAP_DIGIT
        if (j >= n) return 0;
        switch (p[j]) {
        case 0x2C: case 0x5D: case 0x7D: case 0x20: case 0x0A: case 0x0D: case 0x09:
            return j;
        }
        return 0;
    }

    /* First index at or after i whose byte needs attention inside a decoded string
       (quote, backslash, control, non-ASCII), or n. */
    static inline Py_ssize_t llmtap_plain_end(const unsigned char* p, Py_ssize_t i,
                                              Py_ssize_t n) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (i + 8 <= n) {
            uint64_t v, q, b, hit;
            memcpy(&v, p + i, 8);
            q = v ^ 0x2222222222222222ULL;
            b = v ^ 0x5C5C5C5C5C5C5C5CULL;
            hit = (v | ((q - ones) & ~q) | ((b - ones) & ~b) | (v - 0x2020202020202020ULL)) & highs;
            /* (v - 0x20..) sets the high bit of a byte < 0x20 (or below such a byte's
               borrow); v itself flags bytes >= 0x80: the lowest flag is exact. */
            if (hit) return i + (__builtin_ctzll(hit) >> 3);
            i += 8;
        }
    #endif
        while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != 0x22 && p[i] != 0x5C) i++;
        return i;
    }

    /* First non-whitespace index at or after i (or n). Pretty-printed JSON indents
       with runs of spaces: take those a word at a time. */
    static inline Py_ssize_t llmtap_skip_ws(const unsigned char* p, Py_ssize_t i,
                                            Py_ssize_t n) {
        uint64_t v;
        unsigned char c;
        for (;;) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            if (i + 8 <= n) {
                memcpy(&v, p + i, 8);
                v ^= 0x2020202020202020ULL;   /* spaces become zero bytes */
                if (!v) { i += 8; continue; }
                i += __builtin_ctzll(v) >> 3;
            }
    #endif
            if (i >= n) return n;
            c = p[i];
            if (c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09) { i++; continue; }
            return i;
        }
    }

    /* The first (up to) 8 bytes of a key as one word, zero padded. */
    static inline uint64_t llmtap_sig(const unsigned char* k, Py_ssize_t n) {
        uint64_t v = 0;
        Py_ssize_t i, m = n < 8 ? n : 8;
        for (i = 0; i < m; i++) v |= (uint64_t)k[i] << (8 * i);
        return v;
    }

    /* Equal byte strings of length n (short keys: no libc call). */
    static inline int llmtap_eq(const unsigned char* a, const unsigned char* b, Py_ssize_t n) {
        uint64_t x, y;
        while (n >= 8) {
            memcpy(&x, a, 8); memcpy(&y, b, 8);
            if (x != y) return 0;
            a += 8; b += 8; n -= 8;
        }
        while (n--) if (*a++ != *b++) return 0;
        return 1;
    }

    /* The child of the key k[:n] among keys i..e of a trie node, or -1. Nodes have
       few keys: one branch per key on length and first-8-byte signature together. */
    static inline int llmtap_match(const Py_ssize_t* klen, const uint64_t* ksig,
                                   const unsigned char** kptr, const int* kchild, int i,
                                   int e, const unsigned char* k, Py_ssize_t n) {
        uint64_t sig = llmtap_sig(k, n);
        for (; i < e; i++) {
            if ((klen[i] == n) & (ksig[i] == sig)) {
                if (n <= 8 || llmtap_eq(kptr[i] + 8, k + 8, n - 8)) return kchild[i];
            }
        }
        return -1;
    }
    """
    Py_ssize_t _skip_to_quote "llmtap_skip_to_quote" (const unsigned char* p, Py_ssize_t i,
                                                       Py_ssize_t n) noexcept nogil
    Py_ssize_t _skip_number "llmtap_skip_number" (const unsigned char* p, Py_ssize_t i,
                                                   Py_ssize_t n) noexcept nogil
    Py_ssize_t _plain_end "llmtap_plain_end" (const unsigned char* p, Py_ssize_t i,
                                               Py_ssize_t n) noexcept nogil
    bint _eq "llmtap_eq" (const unsigned char* a, const unsigned char* b,
                          Py_ssize_t n) noexcept nogil
    uint64_t _sig "llmtap_sig" (const unsigned char* k, Py_ssize_t n) noexcept nogil
    Py_ssize_t _skip_ws "llmtap_skip_ws" (const unsigned char* p, Py_ssize_t i,
                                           Py_ssize_t n) noexcept nogil
    int _match_keys "llmtap_match" (const Py_ssize_t* klen, const uint64_t* ksig,
                                    const unsigned char** kptr, const int* kchild, int i,
                                    int e, const unsigned char* k, Py_ssize_t n) noexcept nogil


cdef enum:
    NUM_MAX = 256
    SHORT = 64      # strings searched word by word before memchr takes over

    N_MINUS = 0
    N_ZERO = 1
    N_INT = 2
    N_DOT = 3
    N_FRAC = 4
    N_E = 5
    N_ESIGN = 6
    N_EXP = 7

    K_KEY = 0
    K_VALUE = 1
    K_SKIP = 2
    K_PRESENCE = 3
    K_CAPPED = 4
    K_SKIPKEY = 5

    OBJ = 1
    ARR = 2

    F_OBJ = 1   # node has keys or presence slots: descend into an object there
    F_ARR = 2   # node has [*] or presence slots: descend into an array there


# Byte classes, filled once at import.
cdef unsigned char WS[256]
cdef unsigned char DIGIT[256]
cdef signed char HEXV[256]
cdef unsigned char ESCAPED[256]   # \x -> byte, 0 if not an escape letter
cdef bint N_TERMINAL[8]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        WS[c] = c == 0x20 or c == 0x09 or c == 0x0A or c == 0x0D
        DIGIT[c] = 0x30 <= c <= 0x39
        HEXV[c] = -1
        ESCAPED[c] = 0
    for c in range(10):
        HEXV[0x30 + c] = c
    for c in range(6):
        HEXV[0x61 + c] = 10 + c
        HEXV[0x41 + c] = 10 + c
    ESCAPED[0x22] = 0x22
    ESCAPED[0x5C] = 0x5C
    ESCAPED[0x2F] = 0x2F
    ESCAPED[0x62] = 8
    ESCAPED[0x66] = 12
    ESCAPED[0x6E] = 10
    ESCAPED[0x72] = 13
    ESCAPED[0x74] = 9
    for c in range(8):
        N_TERMINAL[c] = c == N_ZERO or c == N_INT or c == N_FRAC or c == N_EXP


_init_tables()


# -- Val ---------------------------------------------------------------------------

cdef int val_set_str(Val* dst, const char* s, Py_ssize_t n) except -1:
    cdef Py_ssize_t cap
    cdef char* p
    if n > dst.scap:
        cap = n if n > 2 * dst.scap else 2 * dst.scap
        if cap < 16:
            cap = 16
        p = <char*>PyMem_Realloc(dst.s, cap)
        if p == NULL:
            raise MemoryError()
        dst.s = p
        dst.scap = cap
    if n:
        memcpy(dst.s, s, n)
    dst.slen = n
    dst.kind = V_STR
    return 0


cdef int val_set(Val* dst, const Val* src) except -1:
    if src.kind == V_STR:
        return val_set_str(dst, src.s, src.slen)
    dst.kind = src.kind
    dst.i = src.i
    dst.d = src.d
    return 0


cdef bint val_equal(const Val* a, const Val* b) noexcept:
    if a.kind != b.kind:
        return False
    if a.kind == V_INT:
        return a.i == b.i
    if a.kind == V_FLOAT:
        # bitwise, so -0.0 and 0.0 (and NaN payloads) are told apart
        return memcmp(&a.d, &b.d, sizeof(double)) == 0
    if a.kind == V_STR:
        return a.slen == b.slen and (a.slen == 0 or memcmp(a.s, b.s, a.slen) == 0)
    return True


cdef object val_object(const Val* v):
    cdef int k = v.kind
    if k == V_STR:
        if v.slen == 0:
            return ""
        return PyUnicode_DecodeUTF8(v.s, v.slen, NULL)
    if k == V_INT:
        return v.i
    if k == V_FLOAT:
        return v.d
    if k == V_TRUE:
        return True
    if k == V_FALSE:
        return False
    return None


cdef void val_free(Val* v) noexcept:
    PyMem_Free(v.s)
    v.s = NULL
    v.scap = 0
    v.slen = 0


# -- Trie --------------------------------------------------------------------------

cdef void* _alloc(Py_ssize_t n, Py_ssize_t size) except NULL:
    cdef void* p = PyMem_Malloc((n if n > 0 else 1) * size)
    if p == NULL:
        raise MemoryError()
    memset(p, 0, (n if n > 0 else 1) * size)
    return p


@cython.final
cdef class Trie:
    """A PathSet's trie as flat C arrays (built once per PathSet, then shared)."""

    def __cinit__(self, paths):
        nodes = paths.nodes
        cdef Py_ssize_t nn = len(nodes)
        cdef Py_ssize_t ns = len(paths.names)
        cdef Py_ssize_t ng = len(paths.group_slots)
        cdef Py_ssize_t nk = sum(len(node.keys) for node in nodes)
        cdef Py_ssize_t nl = sum(len(node.value_slots) + len(node.presence_slots) for node in nodes)
        nl += sum(len(g) for g in paths.group_slots)
        self.nnodes = nn
        self.nslots = ns
        self.ngroups = ng
        self.star = <int*>_alloc(nn, sizeof(int))
        self.group = <int*>_alloc(nn, sizeof(int))
        self.maxkey = <int*>_alloc(nn, sizeof(int))
        self.kfirst = <int*>_alloc(nn, sizeof(int))
        self.kcount = <int*>_alloc(nn, sizeof(int))
        self.vfirst = <int*>_alloc(nn, sizeof(int))
        self.vcount = <int*>_alloc(nn, sizeof(int))
        self.pfirst = <int*>_alloc(nn, sizeof(int))
        self.pcount = <int*>_alloc(nn, sizeof(int))
        self.flags = <unsigned char*>_alloc(nn, 1)
        self.single = <int*>_alloc(nn, sizeof(int))
        self.kptr = <const unsigned char**>_alloc(nk, sizeof(void*))
        self.klen = <Py_ssize_t*>_alloc(nk, sizeof(Py_ssize_t))
        self.ksig = <uint64_t*>_alloc(nk, sizeof(uint64_t))
        self.kchild = <int*>_alloc(nk, sizeof(int))
        self.slotlist = <int*>_alloc(nl, sizeof(int))
        self.slotkind = <int*>_alloc(ns, sizeof(int))
        self.slotgroup = <int*>_alloc(ns, sizeof(int))
        self.gfirst = <int*>_alloc(ng, sizeof(int))
        self.gcount = <int*>_alloc(ng, sizeof(int))

        keys = []
        cdef Py_ssize_t k = 0, l = 0, off = 0
        for node in nodes:
            i = node.index
            self.star[i] = node.star.index if node.star is not None else -1
            self.group[i] = node.group
            self.maxkey[i] = node.max_key
            self.kfirst[i] = k
            self.kcount[i] = len(node.keys)
            for key, child in node.keys.items():
                keys.append(key)
                self.klen[k] = len(key)
                self.kchild[k] = child.index
                k += 1
            self.vfirst[i] = l
            self.vcount[i] = len(node.value_slots)
            for s in node.value_slots:
                self.slotlist[l] = s
                l += 1
            self.pfirst[i] = l
            self.pcount[i] = len(node.presence_slots)
            for s in node.presence_slots:
                self.slotlist[l] = s
                l += 1
            self.single[i] = -1
            if len(node.value_slots) == 1 and paths.kinds[node.value_slots[0]] == SLOT_VALUE:
                self.single[i] = node.value_slots[0]
            if node.keys or node.presence_slots:
                self.flags[i] |= F_OBJ
            if node.star is not None or node.presence_slots:
                self.flags[i] |= F_ARR
        for g, members in enumerate(paths.group_slots):
            self.gfirst[g] = l
            self.gcount[g] = len(members)
            for s in members:
                self.slotlist[l] = s
                l += 1
        for s in range(ns):
            self.slotkind[s] = paths.kinds[s]
            self.slotgroup[s] = paths.groups[s]
        self.keys = b"".join(keys)
        self.pool = []
        cdef const unsigned char* base = <const unsigned char*>PyBytes_AS_STRING(self.keys)
        for i in range(nk):
            self.kptr[i] = base + off
            self.ksig[i] = _sig(self.kptr[i], self.klen[i])
            off += self.klen[i]

    def __dealloc__(self):
        PyMem_Free(self.star)
        PyMem_Free(self.group)
        PyMem_Free(self.maxkey)
        PyMem_Free(self.kfirst)
        PyMem_Free(self.kcount)
        PyMem_Free(self.vfirst)
        PyMem_Free(self.vcount)
        PyMem_Free(self.pfirst)
        PyMem_Free(self.pcount)
        PyMem_Free(self.flags)
        PyMem_Free(self.single)
        PyMem_Free(<void*>self.kptr)
        PyMem_Free(self.klen)
        PyMem_Free(self.ksig)
        PyMem_Free(self.kchild)
        PyMem_Free(self.slotlist)
        PyMem_Free(self.slotkind)
        PyMem_Free(self.slotgroup)
        PyMem_Free(self.gfirst)
        PyMem_Free(self.gcount)

    cdef int match(self, int node, const unsigned char* k, Py_ssize_t n) noexcept:
        return _match(self, node, k, n)


cdef inline int _match(Trie t, int node, const unsigned char* k, Py_ssize_t n) noexcept:
    return _match_keys(t.klen, t.ksig, t.kptr, t.kchild, t.kfirst[node],
                       t.kfirst[node] + t.kcount[node], k, n)


cdef inline Trie _trie(object paths):
    t = paths._native
    if t is None:
        t = Trie(paths)
        paths._native = t
    return <Trie>t


cdef Trie trie_of(object paths):
    return _trie(paths)


cdef enum:
    POOL_MAX = 4    # idle scanners kept per PathSet


cdef JsonScanner new_scanner(object paths, Py_ssize_t max_str, Py_ssize_t max_depth,
                             Py_ssize_t max_items):
    """A cleared scanner: an idle one from the PathSet's pool (its buffers already
    grown), else a new one. A StreamScanner is made per response: this keeps that
    to a few stores instead of a handful of allocations."""
    cdef Trie t = _trie(paths)
    cdef JsonScanner sc
    while t.pool:
        sc = <JsonScanner>t.pool.pop()
        # A StreamScanner freed by the cyclic collector parks its scanner here, but
        # when that scanner was condemned in the same collection the collector still
        # clears it afterwards (trie and paths become None): such a one is dropped.
        if sc.trie is not t:
            continue
        if sc.max_str == max_str and sc.max_depth == max_depth and sc.max_items == max_items:
            sc.docs = False
            sc.clear()
            return sc
    sc = JsonScanner.__new__(JsonScanner)
    sc.setup(paths, max_str, max_depth, max_items)
    return sc


cdef void park_scanner(JsonScanner sc) noexcept:
    """Give a scanner back for new_scanner() (dropped if the pool is full)."""
    cdef Trie t = sc.trie
    if t is not None and t.pool is not None and len(t.pool) < POOL_MAX:
        t.pool.append(sc)


cdef inline int _utf8_lead(unsigned char c, int* lo, int* hi) noexcept:
    """Continuation bytes after lead byte `c` (0: not a lead byte); bounds of the next."""
    lo[0] = 0x80
    hi[0] = 0xBF
    if 0xC2 <= c <= 0xDF:
        return 1
    if c == 0xE0:
        lo[0] = 0xA0
        return 2
    if 0xE1 <= c <= 0xEF:
        if c == 0xED:
            hi[0] = 0x9F
        return 2
    if c == 0xF0:
        lo[0] = 0x90
        return 3
    if 0xF1 <= c <= 0xF3:
        return 3
    if c == 0xF4:
        hi[0] = 0x8F
        return 3
    return 0


# -- JsonScanner ----------------------------------------------------------------------

@cython.final
cdef class JsonScanner:
    """Extract the slots of a PathSet from one JSON document fed in pieces.

    Compiled twin of :class:`llmtap.core.scanner.JsonScanner` (see there).
    """

    def __cinit__(self):
        self.attached = NULL
        self.attached_free = NULL
        self.types = NULL
        self.cnodes = NULL
        self.buf = NULL
        self.slots = NULL
        self.gseen = NULL

    def __init__(self, paths, *, Py_ssize_t max_str=4096, Py_ssize_t max_depth=512,
                 Py_ssize_t max_items=256):
        self.setup(paths, max_str, max_depth, max_items)

    cdef int setup(self, object paths, Py_ssize_t max_str, Py_ssize_t max_depth,
                   Py_ssize_t max_items) except -1:
        """__init__ without the Python call (the StreamScanner makes one per response)."""
        if not isinstance(paths, PathSet):
            raise TypeError(f"paths must be a PathSet, got {type(paths).__name__}")
        if max_str < 0 or max_depth < 1 or max_items < 0:
            raise ValueError("max_str and max_items must be >= 0 and max_depth >= 1")
        if self.slots != NULL:
            raise RuntimeError("JsonScanner is already initialised")
        self.paths = paths
        self.max_str = max_str
        self.max_depth = max_depth
        self.max_items = max_items
        self.trie = _trie(paths)
        cdef Trie t = self.trie
        # the nesting stack grows on demand up to max_depth
        self.stack_cap = 16 if max_depth > 16 else max_depth
        self.types = <unsigned char*>_alloc(self.stack_cap, 1)
        self.cnodes = <int*>_alloc(self.stack_cap, sizeof(int))
        self.bcap = 64
        self.buf = <char*>_alloc(self.bcap, 1)
        self.nslots = t.nslots
        self.ngroups = t.ngroups
        self.slots = <Slot*>_alloc(t.nslots, sizeof(Slot))
        self.gseen = <Py_ssize_t*>_alloc(t.ngroups, sizeof(Py_ssize_t))
        self.touched = <int*>_alloc(t.nslots, sizeof(int))
        self.ntouched = 0
        cdef Py_ssize_t s
        for s in range(t.nslots):
            self.slots[s].kind = t.slotkind[s]
            self.slots[s].group = t.slotgroup[s]
        self.docs = False
        self.clear()
        return 0

    def __dealloc__(self):
        cdef Py_ssize_t s, i
        if self.attached != NULL and self.attached_free != NULL:
            self.attached_free(self.attached)
        if self.slots != NULL:
            for s in range(self.nslots):   # not self.trie: GC may have cleared it
                val_free(&self.slots[s].one)
                for i in range(self.slots[s].cap):
                    val_free(&self.slots[s].ents[i])
                PyMem_Free(self.slots[s].ents)
        PyMem_Free(self.slots)
        PyMem_Free(self.types)
        PyMem_Free(self.cnodes)
        PyMem_Free(self.buf)
        PyMem_Free(self.gseen)
        PyMem_Free(self.touched)

    # -- public API ---------------------------------------------------------------

    def reset(self) -> None:
        """Forget the document (and any error); keep the PathSet and limits."""
        self.clear()

    def feed(self, chunk) -> None:
        """Scan the next piece of the document. Bad input sets ``error``; it never raises."""
        cdef Py_buffer view
        if PyBytes_CheckExact(chunk):
            if self.state != S_ERROR:
                self.scan(<const unsigned char*>PyBytes_AS_STRING(chunk), 0,
                          PyBytes_GET_SIZE(chunk))
            return
        PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        try:
            if self.state != S_ERROR:
                self.scan(<const unsigned char*>view.buf, 0, view.len)
        finally:
            PyBuffer_Release(&view)

    def end(self) -> None:
        """No more input: a document that is not complete becomes an error."""
        self.finish()

    @property
    def done(self) -> bool:
        """The top-level value is complete."""
        return self.state == S_END

    @property
    def error(self):
        """First error, or None."""
        if self.err_code == 0:
            return None
        from llmtap.core.scanner import error_message

        return error_message(self.err_code, self.err_byte, self.err_off, self.max_depth)

    @property
    def values(self) -> list:
        """One entry per slot (a fresh list; wildcard slots as fresh lists)."""
        return [self.slot_object(s) for s in range(self.nslots)]

    # -- C API (StreamScanner) --------------------------------------------------------

    cdef void clear(self) noexcept:
        self.state = S_VALUE
        self.offset = 0
        self.base = 0
        self.err_code = 0
        self.err_byte = 0
        self.err_off = 0
        self.depth = 0
        self.vnode = 0
        self.knode = -1
        self.snode = -1
        self.kind = K_SKIP
        self.capped = False
        self.nomatch = False
        self.any = False
        self.esc = False
        self.hi = -1
        self.blen = 0
        self.elements = 0
        self.ready = False
        self.clear_slots()

    cdef void clear_slots(self) noexcept:
        cdef Py_ssize_t i
        cdef Slot* sl
        for i in range(self.ntouched):
            sl = &self.slots[self.touched[i]]
            sl.on = False
            sl.n = 0
            sl.one.kind = V_NONE
            sl.mark = False
        self.ntouched = 0
        for i in range(self.ngroups):
            self.gseen[i] = 0

    cdef object slot_object(self, Py_ssize_t s):
        cdef Slot* sl = &self.slots[s]
        if sl.kind == SLOT_VALUE:
            return val_object(&sl.one)
        if sl.kind == SLOT_PRESENCE:
            return bool(sl.on)
        if not sl.on:
            return None
        return [val_object(&sl.ents[i]) for i in range(sl.n)]

    cdef int finish(self) except -1:
        if self.state == S_NUM and self.depth == 0 and N_TERMINAL[self.num]:
            self.end_number()
            self.complete()
        elif self.state != S_END and self.state != S_ERROR:
            self.base = self.offset
            self.fail(E_TRUNCATED, 0, 0)
        return 0

    # -- slots ----------------------------------------------------------------------

    cdef Val* target(self, int s) noexcept:
        cdef Slot* sl = &self.slots[s]
        cdef Py_ssize_t i
        if sl.kind == SLOT_VALUE:
            return &sl.one
        i = self.gseen[sl.group] - 1
        if sl.on and 0 <= i < sl.n:
            return &sl.ents[i]
        return NULL

    cdef int put(self, int node, const Val* v) except -1:
        cdef Trie t = self.trie
        cdef int k = t.single[node]
        cdef int e
        cdef Val* dst
        if k >= 0:   # the common case: one plain value slot
            self.mark(k)
            return val_set(&self.slots[k].one, v)
        k = t.vfirst[node]
        e = k + t.vcount[node]
        while k < e:
            dst = self.target(t.slotlist[k])
            if dst != NULL:
                self.mark(t.slotlist[k])
                val_set(dst, v)
            k += 1
        return 0

    cdef int put_kind(self, int node, int kind) except -1:
        cdef Val v
        v.kind = kind
        v.i = 0
        v.d = 0
        return self.put(node, &v)

    cdef int put_str(self, int node, const char* s, Py_ssize_t n) except -1:
        cdef Val v
        v.kind = V_STR
        v.s = <char*>s
        v.slen = n
        return self.put(node, &v)

    cdef void mark(self, int s) noexcept:
        if not self.slots[s].mark:
            self.slots[s].mark = True
            self.touched[self.ntouched] = s
            self.ntouched += 1

    cdef void present(self, int node) noexcept:
        cdef Trie t = self.trie
        cdef int k = t.pfirst[node]
        cdef int e = k + t.pcount[node]
        while k < e:
            self.mark(t.slotlist[k])
            self.slots[t.slotlist[k]].on = True
            k += 1

    cdef void group_lists(self, int g, bint on) noexcept:
        """Every list of group `g` becomes empty (`on`) or absent."""
        cdef Trie t = self.trie
        cdef int k = t.gfirst[g]
        cdef int e = k + t.gcount[g]
        while k < e:
            self.mark(t.slotlist[k])
            self.slots[t.slotlist[k]].on = on
            self.slots[t.slotlist[k]].n = 0
            k += 1
        self.gseen[g] = 0

    cdef int new_element(self, int g) except -1:
        cdef Trie t = self.trie
        cdef int k = t.gfirst[g]
        cdef int e = k + t.gcount[g]
        cdef Slot* sl
        cdef Py_ssize_t cap
        cdef Val* ents
        self.gseen[g] += 1
        if self.gseen[g] > self.max_items:
            return 0
        while k < e:
            self.mark(t.slotlist[k])
            sl = &self.slots[t.slotlist[k]]
            if sl.n == sl.cap:
                cap = 4 if sl.cap == 0 else 2 * sl.cap
                ents = <Val*>PyMem_Realloc(sl.ents, cap * sizeof(Val))
                if ents == NULL:
                    raise MemoryError()
                memset(ents + sl.cap, 0, (cap - sl.cap) * sizeof(Val))
                sl.ents = ents
                sl.cap = cap
            sl.ents[sl.n].kind = V_NONE
            sl.n += 1
            k += 1
        return 0

    # -- helpers of the byte loop -------------------------------------------------------

    cdef Py_ssize_t fail(self, int code, int byte, Py_ssize_t pos) noexcept:
        if self.err_code == 0:
            self.err_code = code
            self.err_byte = byte
            self.err_off = self.base + pos
        self.state = S_ERROR
        return pos

    cdef void complete(self) noexcept:
        if self.depth == 0:
            self.state = S_END
        else:
            self.state = S_AFTER
            if self.docs and self.depth == 1:
                self.ready = True

    cdef int buf_add(self, const unsigned char* s, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap
        cdef char* p
        if self.blen + n + 1 > self.bcap:
            cap = 2 * self.bcap
            if cap < self.blen + n + 1:
                cap = self.blen + n + 1
            p = <char*>PyMem_Realloc(self.buf, cap)
            if p == NULL:
                raise MemoryError()
            self.buf = p
            self.bcap = cap
        memcpy(self.buf + self.blen, s, n)
        self.blen += n
        return 0

    cdef bint push(self, int ctype, int node, int c, Py_ssize_t pos) except -1:
        if self.depth >= self.stack_cap:
            if self.depth >= self.max_depth:
                self.fail(E_DEPTH, c, pos)
                return False
            self.grow_stack()
        self.types[self.depth] = ctype
        self.cnodes[self.depth] = node
        self.depth += 1
        return True

    cdef int grow_stack(self) except -1:
        cdef Py_ssize_t cap = 2 * self.stack_cap
        cdef void* p
        if cap > self.max_depth:
            cap = self.max_depth
        p = PyMem_Realloc(self.types, cap)
        if p == NULL:
            raise MemoryError()
        self.types = <unsigned char*>p
        p = PyMem_Realloc(self.cnodes, cap * sizeof(int))
        if p == NULL:
            raise MemoryError()
        self.cnodes = <int*>p
        self.stack_cap = cap
        return 0

    cdef Py_ssize_t close(self, int ctype, int c, Py_ssize_t pos) noexcept:
        if self.types[self.depth - 1] != ctype:
            return self.fail(E_BYTE, c, pos)
        self.depth -= 1
        self.complete()
        return pos + 1

    cdef Py_ssize_t cap(self, Py_ssize_t pos) noexcept:
        """A value string reached max_str at `pos`: skip the rest unvalidated."""
        self.capped = True
        self.kind = K_CAPPED
        self.esc = False
        self.state = S_SKIP
        return pos

    cdef int key_add(self, const unsigned char* s, Py_ssize_t n) except -1:
        if self.nomatch:
            return 0
        if self.blen + n > self.trie.maxkey[self.knode]:
            self.nomatch = True
            self.blen = 0
            return 0
        return self.buf_add(s, n)

    cdef int end_string(self) except -1:
        cdef int kind = self.kind
        cdef Trie t
        if kind == K_KEY:
            t = self.trie
            self.vnode = -1 if self.nomatch else t.match(
                self.knode, <const unsigned char*>self.buf, self.blen)
            self.state = S_COLON
            return 0
        if kind == K_SKIPKEY:
            self.vnode = -1
            self.state = S_COLON
            return 0
        if kind == K_VALUE or kind == K_CAPPED:
            self.put_str(self.snode, self.buf, self.blen)
            if self.blen or self.capped:
                self.present(self.snode)
        elif kind == K_PRESENCE and self.any:
            self.present(self.snode)
        self.complete()
        return 0

    cdef int end_number(self) except -1:
        cdef int node = self.snode
        cdef Val v
        cdef uint64_t acc = 0, limit
        cdef Py_ssize_t i = 0
        cdef bint neg
        cdef bint ok = True
        if node < 0:
            return 0
        if not self.num_keep:
            self.present(node)
            return 0
        v.s = NULL
        v.slen = 0
        if not self.num_float:
            neg = self.buf[0] == 0x2D
            i = 1 if neg else 0
            limit = (<uint64_t>1 << 63) if neg else ((<uint64_t>1 << 63) - 1)
            while i < self.blen:
                if acc > (limit - <uint64_t>(self.buf[i] - 0x30)) // 10:
                    ok = False
                    break
                acc = acc * 10 + <uint64_t>(self.buf[i] - 0x30)
                i += 1
            if ok:
                v.kind = V_INT
                v.i = -<int64_t>(acc - 1) - 1 if neg and acc else (<int64_t>acc)
        if self.num_float or not ok:
            self.buf[self.blen] = 0   # buf_add keeps a spare byte
            v.kind = V_FLOAT
            v.d = PyOS_string_to_double(self.buf, NULL, NULL)
        self.put(node, &v)
        self.present(node)
        return 0

    cdef int emit_cp(self, int cp, Py_ssize_t pos) except -1:
        """Append code point `cp` (surrogates become U+FFFD); 0 if that capped the string."""
        cdef unsigned char enc[4]
        cdef Py_ssize_t n
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0xFFFD
        if cp < 0x80:
            enc[0] = cp
            n = 1
        elif cp < 0x800:
            enc[0] = 0xC0 | (cp >> 6)
            enc[1] = 0x80 | (cp & 0x3F)
            n = 2
        elif cp < 0x10000:
            enc[0] = 0xE0 | (cp >> 12)
            enc[1] = 0x80 | ((cp >> 6) & 0x3F)
            enc[2] = 0x80 | (cp & 0x3F)
            n = 3
        else:
            enc[0] = 0xF0 | (cp >> 18)
            enc[1] = 0x80 | ((cp >> 12) & 0x3F)
            enc[2] = 0x80 | ((cp >> 6) & 0x3F)
            enc[3] = 0x80 | (cp & 0x3F)
            n = 4
        if self.kind == K_KEY:
            self.key_add(enc, n)
            return 1
        if self.blen + n > self.max_str:
            self.cap(pos)
            return 0
        self.buf_add(enc, n)
        return 1

    # -- the byte loop ------------------------------------------------------------------

    cdef Py_ssize_t start_value(self, const unsigned char* p, Py_ssize_t pos,
                                Py_ssize_t n) except -2:
        cdef unsigned char c = p[pos]
        cdef Trie t = self.trie
        cdef int node, anode, g, active
        cdef Py_ssize_t i, lim
        if self.depth == 0:
            node = 0
            if self.docs:   # the body must be an array whose elements are the documents
                if c != 0x5B:
                    return self.fail(E_BYTE, c, pos)
                if self.push(ARR, 0, c, pos):
                    self.state = S_ARR_FIRST
                return pos + 1
        elif self.types[self.depth - 1] == ARR:
            anode = self.cnodes[self.depth - 1]
            if anode < 0:
                node = -1
            elif self.docs and self.depth == 1:
                node = anode
                self.elements += 1
            else:
                if t.pcount[anode]:
                    self.present(anode)
                g = t.group[anode]
                if g >= 0:
                    self.new_element(g)
                node = t.star[anode]
        else:
            node = self.vnode
        if node >= 0 and t.group[node] >= 0:
            # a repeated key replaces the whole array: forget the earlier one
            self.group_lists(t.group[node], False)

        if c == 0x22:   # '"'
            self.snode = node
            self.capped = False
            if node >= 0 and t.vcount[node]:
                # whole plain string inside this chunk: no copy through `buf`
                lim = pos + 1 + self.max_str
                if lim > n:
                    lim = n
                i = _plain_end(p, pos + 1, lim)
                if i < n and p[i] == 0x22:
                    self.put_str(node, <const char*>p + pos + 1, i - pos - 1)
                    if i > pos + 1 and t.pcount[node]:
                        self.present(node)
                    self.complete()
                    return i + 1
                self.kind = K_VALUE
                self.blen = 0
                self.hi = -1
                self.state = S_STR
            else:
                self.kind = K_PRESENCE if node >= 0 and t.pcount[node] else K_SKIP
                self.any = False
                self.esc = False
                self.state = S_SKIP
            return pos + 1
        if c == 0x7B:   # '{'
            active = node if node >= 0 and t.flags[node] & F_OBJ else -1
            if not self.push(OBJ, active, c, pos):
                return pos
            if node >= 0 and t.vcount[node]:
                self.put_kind(node, V_NONE)
            self.state = S_OBJ_FIRST
            return pos + 1
        if c == 0x5B:   # '['
            active = node if node >= 0 and t.flags[node] & F_ARR else -1
            if not self.push(ARR, active, c, pos):
                return pos
            if node >= 0:
                if t.vcount[node]:
                    self.put_kind(node, V_NONE)
                if t.group[node] >= 0:
                    self.group_lists(t.group[node], True)
            self.state = S_ARR_FIRST
            return pos + 1
        if c == 0x2D or DIGIT[c]:
            self.snode = node
            self.num_keep = node >= 0 and t.vcount[node] > 0
            self.num_float = False
            self.num_start = self.base + pos
            self.num = N_MINUS if c == 0x2D else (N_ZERO if c == 0x30 else N_INT)
            if self.num_keep:
                self.buf[0] = c
                self.blen = 1
            self.state = S_NUM
            return pos + 1
        if c == 0x74:
            self.lit = b"true"
            self.lit_len = 4
            self.lit_kind = V_TRUE
        elif c == 0x66:
            self.lit = b"false"
            self.lit_len = 5
            self.lit_kind = V_FALSE
        elif c == 0x6E:
            self.lit = b"null"
            self.lit_len = 4
            self.lit_kind = V_NONE
        else:
            return self.fail(E_BYTE, c, pos)
        self.snode = node
        if pos + self.lit_len <= n and memcmp(p + pos, self.lit, self.lit_len) == 0:
            if node >= 0:
                self.put_kind(node, self.lit_kind)
                if self.lit_kind != V_NONE:
                    self.present(node)
            self.complete()
            return pos + self.lit_len
        self.lit_pos = 1
        self.state = S_LIT
        return pos + 1

    cdef Py_ssize_t start_key(self, const unsigned char* p, Py_ssize_t pos,
                              Py_ssize_t n) except -2:
        cdef int node = self.cnodes[self.depth - 1]
        cdef Trie t = self.trie
        cdef Py_ssize_t i
        if node >= 0 and t.pcount[node]:
            self.present(node)
        if node >= 0 and t.kcount[node]:
            # whole plain key inside this chunk: match it in place
            i = _plain_end(p, pos + 1, n)
            if i < n and p[i] == 0x22:
                self.vnode = t.match(node, p + pos + 1, i - pos - 1)
                self.state = S_COLON
                return i + 1
            self.knode = node
            self.kind = K_KEY
            self.blen = 0
            self.nomatch = False
            self.capped = False
            self.hi = -1
            self.state = S_STR
        else:
            self.kind = K_SKIPKEY
            self.esc = False
            self.state = S_SKIP
        return pos + 1

    cdef Py_ssize_t skip_string(self, const unsigned char* p, Py_ssize_t pos,
                                Py_ssize_t n) except -2:
        cdef const unsigned char* q
        cdef Py_ssize_t stop, k
        cdef bint odd
        if self.esc:
            self.esc = False
            self.any = True
            return pos + 1
        # short strings end within a few words; long ones are left to memchr
        stop = _skip_to_quote(p, pos, n if n - pos < SHORT else pos + SHORT)
        if stop < n and (n - pos < SHORT or stop < pos + SHORT):
            if stop > pos:
                self.any = True
            self.end_string()
            return stop + 1
        q = <const unsigned char*>memchr(p + pos, 0x22, n - pos)
        stop = n if q == NULL else q - p
        k = stop - 1
        while k >= pos and p[k] == 0x5C:
            k -= 1
        odd = (stop - 1 - k) & 1
        if stop > pos:
            self.any = True
        if q == NULL:
            self.esc = odd
            return n
        if odd:   # an escaped quote: keep looking
            return stop + 1
        self.end_string()
        return stop + 1

    cdef Py_ssize_t decode_string(self, const unsigned char* p, Py_ssize_t pos,
                                  Py_ssize_t n) except -2:
        cdef Py_ssize_t i, run, room
        cdef unsigned char c
        cdef int need, lo = 0, hi = 0
        cdef bint key = self.kind == K_KEY
        while pos < n:
            i = _plain_end(p, pos, n)
            if i > pos:
                run = i - pos
                if not key:
                    room = self.max_str - self.blen
                    if run > room:
                        self.buf_add(p + pos, room)
                        return self.cap(pos + room)
                    self.buf_add(p + pos, run)
                else:
                    self.key_add(p + pos, run)
                pos = i
                if pos == n:
                    break
            c = p[pos]
            if c == 0x22:
                self.end_string()
                return pos + 1
            if not key and self.blen >= self.max_str:
                return self.cap(pos)
            if c == 0x5C:
                self.state = S_ESC
                return pos + 1
            if c < 0x20:
                return self.fail(E_BYTE, c, pos)
            need = _utf8_lead(c, &lo, &hi)
            if need == 0:
                return self.fail(E_UTF8, c, pos)
            if not key and self.blen + need + 1 > self.max_str:
                return self.cap(pos)
            self.u8need = need
            self.u8lo = lo
            self.u8hi = hi
            if key:
                self.key_add(&c, 1)
            else:
                self.buf_add(&c, 1)
            self.state = S_UTF8
            return pos + 1
        return pos

    cdef Py_ssize_t escape(self, unsigned char c, Py_ssize_t pos) except -2:
        """States S_ESC .. S_UTF8: one byte at a time."""
        cdef int st = self.state
        cdef int e, h, cp, hi
        if st == S_UTF8:
            if c < self.u8lo or c > self.u8hi:
                return self.fail(E_UTF8, c, pos)
            if self.kind == K_KEY:
                self.key_add(&c, 1)
            else:
                self.buf_add(&c, 1)
            self.u8need -= 1
            self.u8lo = 0x80
            self.u8hi = 0xBF
            if self.u8need == 0:
                self.state = S_STR
            return pos + 1
        if st == S_ESC:
            if c == 0x75:   # 'u'
                self.hexv = 0
                self.hexn = 0
                self.state = S_HEX
                return pos + 1
            e = ESCAPED[c]
            if e == 0:
                return self.fail(E_ESCAPE, c, pos)
            self.state = S_STR
            self.emit_cp(e, pos + 1)
            return pos + 1
        if st == S_HEX:
            h = HEXV[c]
            if h < 0:
                return self.fail(E_ESCAPE, c, pos)
            self.hexv = self.hexv * 16 + h
            self.hexn += 1
            if self.hexn < 4:
                return pos + 1
            cp = self.hexv
            self.state = S_STR
            if self.hi >= 0:
                hi = self.hi
                self.hi = -1
                if 0xDC00 <= cp <= 0xDFFF:
                    self.emit_cp(0x10000 + ((hi - 0xD800) << 10) + (cp - 0xDC00), pos + 1)
                    return pos + 1
                if not self.emit_cp(0xFFFD, pos + 1):
                    return pos + 1
            if 0xD800 <= cp <= 0xDBFF:
                self.hi = cp
                self.state = S_SURR
            else:
                self.emit_cp(cp, pos + 1)
            return pos + 1
        if st == S_SURR:
            if c == 0x5C:
                self.state = S_SURR_U
                return pos + 1
            self.hi = -1
            self.state = S_STR
            self.emit_cp(0xFFFD, pos)
            return pos   # reprocess c as string content
        # S_SURR_U: after a high surrogate and '\'
        if c == 0x75:
            self.hexv = 0
            self.hexn = 0
            self.state = S_HEX
            return pos + 1
        self.hi = -1
        self.state = S_ESC
        if not self.emit_cp(0xFFFD, pos):
            self.esc = True   # capped right before the escape: the skip must see the backslash
        return pos   # reprocess c as the escape letter

    cdef Py_ssize_t number(self, const unsigned char* p, Py_ssize_t pos,
                           Py_ssize_t n) except -2:
        cdef Py_ssize_t start = pos
        cdef unsigned char c
        cdef int nn
        while pos < n:
            c = p[pos]
            nn = self.num
            if DIGIT[c]:
                if nn == N_ZERO:
                    break
                if nn == N_MINUS and c == 0x30:
                    self.num = N_ZERO
                    pos += 1
                    continue
                self.num = N_INT if nn <= N_INT else (N_FRAC if nn <= N_FRAC else N_EXP)
                pos += 1
                while pos < n and DIGIT[p[pos]]:
                    pos += 1
                continue
            if c == 0x2E and (nn == N_ZERO or nn == N_INT):
                self.num = N_DOT
                self.num_float = True
            elif (c == 0x65 or c == 0x45) and (nn == N_ZERO or nn == N_INT or nn == N_FRAC):
                self.num = N_E
                self.num_float = True
            elif (c == 0x2B or c == 0x2D) and nn == N_E:
                self.num = N_ESIGN
            else:
                break
            pos += 1
        if self.num_keep:
            if self.blen + (pos - start) > NUM_MAX:
                if self.err_code == 0:
                    self.err_code = E_NUMBER
                    self.err_byte = 0
                    self.err_off = self.num_start
                self.state = S_ERROR
                return pos
            self.buf_add(p + start, pos - start)
        if pos == n:
            return pos
        if not N_TERMINAL[self.num]:
            return self.fail(E_BYTE, p[pos], pos)
        self.end_number()
        self.complete()
        return pos   # the delimiter is scanned in the new state

    cdef Py_ssize_t scan(self, const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) except -2:
        """Scan p[pos:n]; return where it stopped (n unless an error or, in documents
        mode, a completed top-level element stopped it early).

        The common transitions are inline and work on locals; everything else (and
        every case where a token crosses the end of the chunk) goes through the
        out-of-line handlers, which keep the state in `self`.
        """
        cdef int st = self.state
        cdef unsigned char c
        cdef int node
        cdef Py_ssize_t q
        cdef Trie t = self.trie
        self.base = self.offset - pos
        while pos < n:
            if self.ready or st == S_ERROR:
                break
            c = p[pos]
            if c <= 0x20 and st <= S_END and WS[c]:
                pos = _skip_ws(p, pos + 1, n)
                continue
            # The blocks below run in order: one that moves to a later state
            # falls through with the next byte instead of going round the loop.
            if st == S_AFTER:
                if c == 0x2C:   # ','
                    pos += 1
                    st = S_VALUE if self.types[self.depth - 1] == ARR else S_KEY
                    if pos == n:
                        continue
                    c = p[pos]
                    if WS[c]:
                        continue
                elif c == 0x5D or c == 0x7D:
                    if self.types[self.depth - 1] != (ARR if c == 0x5D else OBJ):
                        self.state = st
                        pos = self.fail(E_BYTE, c, pos)
                        st = S_ERROR
                        continue
                    pos += 1
                    self.depth -= 1
                    if self.depth == 0:
                        st = S_END
                    elif self.docs and self.depth == 1:
                        self.ready = True
                    continue
            if (st == S_KEY or st == S_OBJ_FIRST) and c == 0x22:
                node = self.cnodes[self.depth - 1]
                q = -1
                if node < 0:
                    # a key of an object off every path: skip it in place
                    q = _skip_to_quote(p, pos + 1, n if n - pos <= SHORT else pos + 1 + SHORT)
                    if q < n and q <= pos + SHORT:
                        self.vnode = -1
                    else:
                        q = -1
                elif t.kcount[node] and not t.pcount[node]:
                    # a plain key inside this chunk: match it in place
                    q = _plain_end(p, pos + 1, n)
                    if q < n and p[q] == 0x22:
                        self.vnode = _match(t, node, p + pos + 1, q - pos - 1)
                    else:
                        q = -1
                if q >= 0:
                    pos = q + 1
                    st = S_COLON
                    if pos == n:
                        continue
                    c = p[pos]
                    if WS[c]:
                        continue
            if st == S_COLON and c == 0x3A:
                pos += 1
                st = S_VALUE
                if pos == n:
                    continue
                c = p[pos]
                if WS[c]:
                    continue
            if st == S_VALUE or st == S_ARR_FIRST:
                if self.depth and self.types[self.depth - 1] == OBJ:
                    node = self.vnode
                elif self.depth and self.cnodes[self.depth - 1] < 0:
                    node = -1   # element of an array off every path
                else:
                    node = 0
                if node < 0 and not (c == 0x5D and st == S_ARR_FIRST):
                    # a value off every path: skip the common shapes in place
                    if c == 0x22:
                        q = _skip_to_quote(p, pos + 1, n if n - pos <= SHORT else pos + 1 + SHORT)
                        if q < n and q <= pos + SHORT:
                            pos = q + 1
                            st = S_AFTER
                            continue
                    elif c == 0x7B or c == 0x5B:
                        if self.depth < self.stack_cap:
                            self.types[self.depth] = OBJ if c == 0x7B else ARR
                            self.cnodes[self.depth] = -1
                            self.depth += 1
                            pos += 1
                            st = S_OBJ_FIRST if c == 0x7B else S_ARR_FIRST
                            continue
                    elif c == 0x6E and pos + 4 < n and memcmp(p + pos, b"null", 4) == 0:
                        pos += 4
                        st = S_AFTER
                        continue
                    elif DIGIT[c] or c == 0x2D:
                        q = _skip_number(p, pos, n)
                        if q > 0:
                            pos = q
                            st = S_AFTER
                            continue
                elif st == S_VALUE:
                    self.state = st
                    pos = self.start_value(p, pos, n)
                    st = self.state
                    continue
            # everything else: out of line
            self.state = st
            if st == S_VALUE:
                pos = self.start_value(p, pos, n)
            elif st <= S_END:
                pos = self.structure(p, pos, n)
            elif st == S_SKIP:
                pos = self.skip_string(p, pos, n)
            elif st == S_STR:
                pos = self.decode_string(p, pos, n)
            elif st == S_NUM:
                pos = self.number(p, pos, n)
            elif st == S_LIT:
                pos = self.literal(p[pos], pos)
            else:
                pos = self.escape(p[pos], pos)
            st = self.state
        self.state = st
        self.offset = self.base + pos
        return pos

    cdef Py_ssize_t structure(self, const unsigned char* p, Py_ssize_t pos,
                              Py_ssize_t n) except -2:
        """One structural byte (not whitespace) in states S_VALUE .. S_END."""
        cdef int st = self.state
        cdef unsigned char c = p[pos]
        if st == S_VALUE:
            return self.start_value(p, pos, n)
        if st == S_AFTER:
            if c == 0x2C:
                self.state = S_VALUE if self.types[self.depth - 1] == ARR else S_KEY
                return pos + 1
            if c == 0x5D:
                return self.close(ARR, c, pos)
            if c == 0x7D:
                return self.close(OBJ, c, pos)
            return self.fail(E_BYTE, c, pos)
        if st == S_COLON:
            if c == 0x3A:
                self.state = S_VALUE
                return pos + 1
            return self.fail(E_BYTE, c, pos)
        if st == S_OBJ_FIRST or st == S_KEY:
            if c == 0x22:
                return self.start_key(p, pos, n)
            if c == 0x7D and st == S_OBJ_FIRST:
                return self.close(OBJ, c, pos)
            return self.fail(E_BYTE, c, pos)
        if st == S_ARR_FIRST:
            if c == 0x5D:
                return self.close(ARR, c, pos)
            return self.start_value(p, pos, n)
        return self.fail(E_TRAILING, c, pos)   # S_END

    cdef Py_ssize_t literal(self, unsigned char c, Py_ssize_t pos) except -2:
        cdef int node
        if c != <unsigned char>self.lit[self.lit_pos]:
            return self.fail(E_BYTE, c, pos)
        self.lit_pos += 1
        if self.lit_pos == self.lit_len:
            node = self.snode
            if node >= 0:
                self.put_kind(node, self.lit_kind)
                if self.lit_kind != V_NONE:
                    self.present(node)
            self.complete()
        return pos + 1
