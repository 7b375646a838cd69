"""Compiled twin of core/stream.py: framing, scanning and folding in one C loop.

core/stream.py is the specification. Here the compiled framers call
`StreamScanner.on_frame` (a C-level FrameSink) for each frame; the frame is
scanned in place by the compiled JsonScanner and its slots are folded into C
values, so nothing Python-level is made per event. Repeated values (`model`,
`id`, ...) are compared as bytes and copied only when they change; Python
objects appear when `values` is read.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memcmp, memcpy, memset

from llmtap.core._framing cimport (
    FRAME_BAD_CRC,
    FRAME_BAD_MESSAGE,
    FRAME_ERROR_EVENT,
    EventStreamFramer,
    FrameSink,
    Framer,
    NDJSONFramer,
    SSEFramer,
)
from llmtap.core._scanner cimport (
    E_TRUNCATED,
    S_VALUE,
    SLOT_PRESENCE,
    SLOT_VALUE,
    SLOT_WILD,
    V_INT,
    V_NONE,
    V_STR,
    JsonScanner,
    Slot,
    Trie,
    Val,
    new_scanner,
    park_scanner,
    val_equal,
    val_free,
    val_object,
    val_set,
)

from llmtap.core.paths import PathSet


cdef enum:
    MODE_SSE = 0
    MODE_NDJSON = 1
    MODE_ARRAY = 2
    MODE_JSON = 3
    MODE_ES = 4

    # core/stream.py FOLD_*
    FOLD_LAST = 0
    FOLD_FIRST = 1
    FOLD_KEYED = 2
    FOLD_OR = 3
    FOLD_CONCAT = 4
    FOLD_COUNT = 5


# One key of a keyed fold and the value merged under it.
ctypedef struct Keyed:
    Val key
    Val val


# The folded state of one slot across documents.
ctypedef struct Fold:
    int code            # FOLD_*
    int kind            # SLOT_*
    int keyslot         # FOLD_KEYED/FOLD_CONCAT: the slot whose entries are the keys, or -1
    bint on             # FOLD_OR: the answer; lists: a list was seen; keys: one was seen
    bint cut            # FOLD_CONCAT: reached max_concat
    Py_ssize_t first    # first_index
    Py_ssize_t n        # entries in `ents` / keys in `keys`; FOLD_COUNT: the count
    Py_ssize_t size     # FOLD_CONCAT: bytes kept
    Py_ssize_t ecap     # allocated in `ents`
    Py_ssize_t kcap     # allocated in `keys` (a pooled Fold may have both)
    Py_ssize_t moff     # FOLD_COUNT: its other slots, in StreamScanner.members
    Py_ssize_t mcount
    Val one             # SLOT_VALUE; FOLD_CONCAT without key: the joined string
    Val* ents           # SLOT_WILD, last/first
    Keyed* keys         # FOLD_KEYED, FOLD_CONCAT by key or position


# Fold state parked on a pooled JsonScanner (core/_scanner.pyx new_scanner).
ctypedef struct FoldSet:
    Fold* folds
    Py_ssize_t n


cdef void _free_folds(Fold* folds, Py_ssize_t n) noexcept:
    cdef Py_ssize_t s, i
    cdef Fold* f
    for s in range(n):
        f = &folds[s]
        val_free(&f.one)
        if f.ents != NULL:
            for i in range(f.ecap):
                val_free(&f.ents[i])
            PyMem_Free(f.ents)
        if f.keys != NULL:
            for i in range(f.kcap):
                val_free(&f.keys[i].key)
                val_free(&f.keys[i].val)
            PyMem_Free(f.keys)
    PyMem_Free(folds)


cdef void _free_foldset(void* p) noexcept:
    cdef FoldSet* fs = <FoldSet*>p
    _free_folds(fs.folds, fs.n)
    PyMem_Free(fs)


cdef unsigned char B64[256]   # base64 alphabet value + 1; 0 = not in the alphabet


cdef void _init_b64() noexcept:
    cdef int i
    cdef const char* alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    memset(B64, 0, 256)
    for i in range(64):
        B64[<unsigned char>alphabet[i]] = i + 1


_init_b64()


cdef Py_ssize_t _b64_decode(const unsigned char* s, Py_ssize_t n, unsigned char* out) noexcept:
    """Standard base64, padding optional (core/stream.py b64decode); -1 if invalid."""
    cdef Py_ssize_t pad = 0, i, o = 0, body
    cdef unsigned int acc = 0
    cdef int bits = 0
    while n > pad and s[n - 1 - pad] == 0x3D:
        pad += 1
    body = n - pad
    if body % 4 == 1 or (pad and pad != (4 - body % 4) % 4):
        return -1
    for i in range(body):
        if B64[s[i]] == 0:
            return -1
        acc = (acc << 6) | (B64[s[i]] - 1)
        bits += 6
        if bits >= 8:
            bits -= 8
            out[o] = (acc >> bits) & 0xFF
            o += 1
    return o


cdef inline bint _nonnull(Slot* sl) noexcept:
    cdef Py_ssize_t i
    if sl.kind == SLOT_VALUE:
        return sl.one.kind != V_NONE
    if sl.kind == SLOT_PRESENCE:
        return sl.on
    if sl.on:
        for i in range(sl.n):
            if sl.ents[i].kind != V_NONE:
                return True
    return False


cdef inline bint _is_key(const Val* v) noexcept:
    return v.kind == V_INT or v.kind == V_STR


cdef inline bint _is_keyed(const Fold* f) noexcept:
    """Merged per key (or per element position): a list of keys in `keys`."""
    return ((f.code == FOLD_KEYED or f.code == FOLD_CONCAT)
            and (f.kind == SLOT_WILD or f.keyslot >= 0))


cdef inline bint _is_ws(unsigned char c) noexcept:
    return c == 0x20 or c == 0x09 or c == 0x0A or c == 0x0D


cdef object _key_order(object key):
    return (0, key) if type(key) is int else (1, key)


# Shared with the pure twin, bound on first use: core/stream.py imports this module
# at its end, so importing it at the top here would be circular.
cdef object FRAMINGS = None
cdef object parse_folds = None


cdef object _last_paths = None    # the last (paths, folds) parsed, folds copied:
cdef object _last_folds = None    # most processes build every scanner of a kind from
cdef object _last_copy = None     # one module-level PathSet and folds dict
cdef tuple _last_parsed = None


cdef tuple _folds(object paths, object folds):
    """parse_folds() through its caches, without a Python call on a hit."""
    global _last_paths, _last_folds, _last_copy, _last_parsed
    if paths is _last_paths and folds is _last_folds and (folds is None or folds == _last_copy):
        return _last_parsed
    cdef dict cache = paths._folds
    try:
        hit = cache.get(tuple(folds.items()) if folds else ())
    except (TypeError, AttributeError):
        hit = None
    if hit is None:
        hit = parse_folds(paths, folds)
    _last_paths = paths
    _last_folds = folds
    _last_copy = dict(folds) if folds else None
    _last_parsed = hit
    return hit




cdef int _bind_pure() except -1:
    global FRAMINGS, parse_folds
    if parse_folds is None:
        from llmtap.core import stream
        FRAMINGS = stream.FRAMINGS
        parse_folds = stream.parse_folds
        assert stream.MAX_CONCAT == 65536, "keep the default max_concat of the twins equal"
    return 0


@cython.final
cdef class StreamScanner(FrameSink):
    """Scan a response body in any chunks and fold the slots across its documents.

    Compiled twin of :class:`llmtap.core.stream.StreamScanner` (see there).
    """

    cdef:
        readonly str framing
        readonly object paths
        int mode
        Framer framer
        JsonScanner sc
        JsonScanner sub             # b64_field: finds the base64 string in a payload
        object b64_name
        unsigned char* scratch      # decoded base64 document
        Py_ssize_t scap
        Fold* folds
        Py_ssize_t nslots
        Py_ssize_t max_items
        Py_ssize_t max_concat
        int* late               # slots folded after the touched ones: value-slot keys, counts
        Py_ssize_t nlate
        int* members            # FOLD_COUNT: the other slots each count looks at
        bint json_folds         # json framing: some fold applies to the one document
        Py_ssize_t ndocs
        Py_ssize_t nerrors
        object err
        object err_event
        bint sentinel
        bint trunc
        bint closed

    def __init__(self, str framing, paths, *, folds=None, b64_field=None, max_frame=None,
                 Py_ssize_t max_str=4096, Py_ssize_t max_depth=512, Py_ssize_t max_items=256,
                 Py_ssize_t max_concat=65536):
        cdef tuple codes, keys, counted
        cdef Py_ssize_t s, m, nm = 0
        cdef Trie t
        cdef Fold* f
        _bind_pure()
        if framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}; got {framing!r}")
        if not isinstance(paths, PathSet):
            raise TypeError(f"paths must be a PathSet, got {type(paths).__name__}")
        if b64_field is not None and framing != "eventstream":
            raise ValueError("b64_field applies to the eventstream framing only")
        if self.folds != NULL:
            raise RuntimeError("StreamScanner is already initialised")
        if max_concat < 0:
            raise ValueError("max_concat must be >= 0")
        codes, keys, counted = _folds(paths, folds)
        self.framing = framing
        self.paths = paths
        self.mode = (<tuple>FRAMINGS).index(framing)
        self.max_items = max_items
        self.max_concat = max_concat
        self.sc = new_scanner(paths, max_str, max_depth, max_items)
        t = self.sc.trie
        if self.mode == MODE_SSE:
            self.framer = SSEFramer() if max_frame is None else SSEFramer(max_frame)
        elif self.mode == MODE_NDJSON:
            self.framer = NDJSONFramer() if max_frame is None else NDJSONFramer(max_frame)
        elif self.mode == MODE_ES:
            self.framer = EventStreamFramer() if max_frame is None else EventStreamFramer(max_frame)
        elif self.mode == MODE_ARRAY:
            self.sc.docs = True
        if b64_field is not None:
            bps = PathSet({"b": b64_field})
            if bps.kinds[0] != 0:
                raise ValueError(f"b64_field must be a plain path, got {b64_field!r}")
            self.sub = JsonScanner.__new__(JsonScanner)
            self.sub.setup(bps, self.framer.max_frame, max_depth, 0)
            self.b64_name = b64_field
        self.nslots = t.nslots
        if self.sc.attached != NULL:
            # a pooled scanner brings the fold state of its last StreamScanner:
            # keep the grown buffers, forget the values
            self.folds = (<FoldSet*>self.sc.attached).folds
            PyMem_Free(self.sc.attached)
            self.sc.attached = NULL
            self.clear_folds()
        else:
            self.folds = <Fold*>PyMem_Malloc((self.nslots or 1) * sizeof(Fold))
            if self.folds == NULL:
                raise MemoryError()
            memset(self.folds, 0, (self.nslots or 1) * sizeof(Fold))
        for s in range(self.nslots):
            f = &self.folds[s]
            f.code = codes[s]
            f.kind = t.slotkind[s]
            f.keyslot = keys[s]
            f.first = -1
            f.moff = nm
            f.mcount = len(<tuple>counted[s])
            nm += f.mcount
            if f.code == FOLD_COUNT or (_is_keyed(f) and f.kind == SLOT_VALUE):
                self.nlate += 1
            if f.code == FOLD_CONCAT or f.code == FOLD_COUNT or (
                    f.code == FOLD_KEYED and f.kind == SLOT_VALUE):
                self.json_folds = True
        if self.nlate or nm:
            self.late = <int*>PyMem_Malloc((self.nlate + nm) * sizeof(int))
            if self.late == NULL:
                raise MemoryError()
            self.members = self.late + self.nlate
            self.nlate = 0
            for s in range(self.nslots):
                f = &self.folds[s]
                if f.code == FOLD_COUNT or (_is_keyed(f) and f.kind == SLOT_VALUE):
                    self.late[self.nlate] = s
                    self.nlate += 1
                for m in range(f.mcount):
                    self.members[f.moff + m] = counted[s][m]

    def __dealloc__(self):
        cdef FoldSet* fs
        if self.folds != NULL and self.sc is not None and self.sc.attached == NULL:
            fs = <FoldSet*>PyMem_Malloc(sizeof(FoldSet))
            if fs != NULL:
                fs.folds = self.folds
                fs.n = self.nslots
                self.folds = NULL
                self.sc.attached = fs
                self.sc.attached_free = _free_foldset
                park_scanner(self.sc)
        if self.folds != NULL:
            _free_folds(self.folds, self.nslots)
        PyMem_Free(self.scratch)
        PyMem_Free(self.late)

    cdef void clear_folds(self) noexcept:
        """Forget the folded values, keep the grown buffers."""
        cdef Py_ssize_t s
        cdef Fold* f
        for s in range(self.nslots):
            f = &self.folds[s]
            f.on = False
            f.cut = False
            f.n = 0
            f.size = 0
            f.first = -1
            f.one.kind = V_NONE

    # -- public API -----------------------------------------------------------------

    def feed(self, chunk) -> None:
        """Scan the next piece of the body. Bad input is recorded, never raised."""
        cdef Py_buffer view
        if PyBytes_CheckExact(chunk):
            if not self.closed:
                self.run(<const unsigned char*>PyBytes_AS_STRING(chunk), PyBytes_GET_SIZE(chunk))
            return
        PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        try:
            if not self.closed:
                self.run(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def close(self) -> None:
        """End of the body."""
        cdef JsonScanner sc = self.sc
        if self.closed:
            return
        self.closed = True
        if self.framer is None:
            if sc.state == S_VALUE and sc.err_code == 0:
                return   # nothing but whitespace: no document
            sc.finish()
            self.note_scan_error()
            if sc.err_code == E_TRUNCATED and self.nerrors:
                self.trunc = True
            return
        self.framer.close_into(self)
        if self.framer.error is not None and self.err is None:
            self.err = self.framer.error
        self.trunc = self.framer.truncated

    @property
    def values(self) -> list:
        """The folded value per slot."""
        cdef Fold* f
        if self.mode == MODE_JSON:
            if not self.json_folds:
                return [self.sc.slot_object(s) for s in range(self.nslots)]
            self.fold_json()
            out = []
            for s in range(self.nslots):
                f = &self.folds[s]
                if f.code == FOLD_CONCAT or f.code == FOLD_COUNT or (
                        f.code == FOLD_KEYED and f.kind == SLOT_VALUE):
                    out.append(self.fold_object(s))
                else:
                    out.append(self.sc.slot_object(s))
            return out
        return [self.fold_object(s) for s in range(self.nslots)]

    @property
    def capped(self) -> list:
        """Per slot: a ``"concat"`` fold reached ``max_concat`` (its value is a prefix)."""
        if self.mode == MODE_JSON and self.json_folds:
            self.fold_json()
        return [bool(self.folds[s].cut) for s in range(self.nslots)]

    cdef int fold_json(self) except -1:
        # one document: fold it afresh each time (values are valid mid-document too)
        self.clear_folds()
        if self.sc.state != S_VALUE or self.sc.err_code != 0:
            self.fold(0)
        return 0

    @property
    def first_index(self) -> list:
        """Per slot: the first document where it was non-null/present, or -1."""
        if self.mode == MODE_JSON:
            return [0 if _nonnull(&self.sc.slots[s]) else -1 for s in range(self.nslots)]
        return [self.folds[s].first for s in range(self.nslots)]

    def output_started(self, slots) -> bool:
        """Whether any of these slots was non-null in some document so far: the
        cheap per-chunk check for "first output" (no list is built)."""
        cdef Py_ssize_t s
        for o in slots:
            s = o
            if s < 0 or s >= self.nslots:
                raise IndexError(f"slot {s} out of range")
            if self.mode == MODE_JSON:
                if _nonnull(&self.sc.slots[s]):
                    return True
            elif self.folds[s].first >= 0:
                return True
        return False

    @property
    def docs(self) -> int:
        """Documents seen."""
        if self.mode == MODE_JSON:
            return 0 if self.sc.state == S_VALUE and self.sc.err_code == 0 else 1
        if self.mode == MODE_ARRAY:
            return self.sc.elements
        return self.ndocs

    @property
    def done_sentinel(self) -> bool:
        """SSE ``data: [DONE]`` was seen."""
        return self.sentinel

    @property
    def error(self):
        """The first framing or scan error, or None."""
        return self.err

    @property
    def doc_errors(self) -> int:
        """Documents that failed to scan."""
        return self.nerrors

    @property
    def error_event(self):
        """The first error event/message seen, or None."""
        return self.err_event

    @property
    def truncated(self) -> bool:
        """The body ended inside a document or frame."""
        return self.trunc

    # -- the loop -----------------------------------------------------------------------

    cdef int run(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef JsonScanner sc = self.sc
        cdef Py_ssize_t pos = 0
        if self.framer is not None:
            if self.framer.error is not None:
                return 0
            self.framer.feed_into(p, n, self)
            if self.framer.error is not None and self.err is None:
                self.err = self.framer.error
            return 0
        if sc.err_code:
            return 0
        if self.mode == MODE_JSON:
            sc.scan(p, 0, n)
        else:
            while pos < n:
                pos = sc.scan(p, pos, n)
                if sc.ready:
                    sc.ready = False
                    self.fold(sc.elements - 1)
                    sc.clear_slots()
                elif sc.err_code:
                    break
        self.note_scan_error()
        return 0

    cdef void note_scan_error(self):
        if self.sc.err_code and self.err is None:
            self.err = self.sc.error
            self.nerrors = 1

    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1:
        if self.mode == MODE_SSE:
            if flags & FRAME_ERROR_EVENT and self.err_event is None:
                self.err_event = "error"
            while n and _is_ws(data[0]):
                data += 1
                n -= 1
            while n and _is_ws(data[n - 1]):
                n -= 1
            if n == 0:
                return 0
            if n == 6 and memcmp(data, b"[DONE]", 6) == 0:
                self.sentinel = True
                return 0
            return self.doc(data, n)
        if self.mode == MODE_NDJSON:
            return self.doc(data, n)
        # eventstream
        if flags & (FRAME_BAD_CRC | FRAME_BAD_MESSAGE):
            if self.framer.error is None:   # a bad message; the stream goes on
                self.fail(self.ndocs, (<EventStreamFramer>self.framer).frame_error)
                self.ndocs += 1
            return 0
        if flags & FRAME_ERROR_EVENT and self.err_event is None:
            self.err_event = (PyUnicode_DecodeUTF8(<const char*>name, name_len, "replace")
                              if name_len else "error")
        if n == 0:
            return 0
        if self.sub is None:
            return self.doc(data, n)
        return self.b64_doc(data, n)

    cdef int b64_doc(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef JsonScanner sub = self.sub
        cdef Val* v
        cdef Py_ssize_t m
        cdef unsigned char* buf
        sub.clear()
        sub.scan(data, 0, n)
        sub.finish()
        if sub.err_code:
            self.fail(self.ndocs, sub.error)
            self.ndocs += 1
            return 0
        v = &sub.slots[0].one
        if v.kind != V_STR:
            return self.doc(data, n)
        if v.slen + 4 > self.scap:
            buf = <unsigned char*>PyMem_Realloc(self.scratch, v.slen + 4)
            if buf == NULL:
                raise MemoryError()
            self.scratch = buf
            self.scap = v.slen + 4
        m = _b64_decode(<const unsigned char*>v.s, v.slen, self.scratch)
        if m < 0:
            self.fail(self.ndocs, f'invalid base64 in "{self.b64_name}"')
            self.ndocs += 1
            return 0
        return self.doc(self.scratch, m)

    cdef int doc(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef JsonScanner sc = self.sc
        cdef Py_ssize_t index = self.ndocs
        self.ndocs += 1
        sc.clear()
        sc.scan(data, 0, n)
        sc.finish()
        if sc.err_code:
            self.fail(index, sc.error)
            return 0
        return self.fold(index)

    cdef void fail(self, Py_ssize_t index, object message):
        self.nerrors += 1
        if self.err is None:
            self.err = f"document {index}: {message}"

    # -- folding --------------------------------------------------------------------------

    cdef int fold(self, Py_ssize_t index) except -1:
        cdef JsonScanner sc = self.sc
        cdef Py_ssize_t s, i, j
        cdef Slot* sl
        cdef Fold* f
        cdef bint good
        for j in range(sc.ntouched):   # an untouched slot is null: nothing to fold
            s = sc.touched[j]
            sl = &sc.slots[s]
            f = &self.folds[s]
            good = _nonnull(sl)
            if good and f.first < 0:
                f.first = index
            if f.code == FOLD_OR:
                if sl.on:
                    f.on = True
            elif f.code == FOLD_KEYED or f.code == FOLD_CONCAT:
                if f.kind == SLOT_WILD:
                    if sl.on:
                        self.fold_keyed(f, sl, &sc.slots[f.keyslot] if f.keyslot >= 0 else NULL)
                elif f.keyslot < 0 and sl.one.kind == V_STR:   # concat of a value slot
                    self.append(f, &f.one, sl.one.s, sl.one.slen)
            elif f.code == FOLD_COUNT or not good or (f.code == FOLD_FIRST and f.on):
                continue
            elif f.kind == SLOT_VALUE:
                f.on = True
                if not val_equal(&f.one, &sl.one):
                    val_set(&f.one, &sl.one)
            else:
                f.on = True
                self.reserve(f, sl.n, False)
                for i in range(sl.n):
                    if i >= f.n or not val_equal(&f.ents[i], &sl.ents[i]):
                        val_set(&f.ents[i], &sl.ents[i])
                f.n = sl.n
        for j in range(self.nlate):    # these look at documents where the slot is null too
            s = self.late[j]
            f = &self.folds[s]
            if f.code == FOLD_COUNT:
                if self.counts(f, s):
                    f.n += 1
            elif _is_key(&sc.slots[f.keyslot].one):
                self.merge(f, &sc.slots[f.keyslot].one, &sc.slots[s].one)
        return 0

    cdef bint counts(self, Fold* f, Py_ssize_t s) noexcept:
        """Whether the document counts for a FOLD_COUNT slot."""
        cdef Py_ssize_t m
        if _nonnull(&self.sc.slots[s]):
            return True
        for m in range(f.moff, f.moff + f.mcount):
            if _nonnull(&self.sc.slots[self.members[m]]):
                return True
        return False

    cdef int append(self, Fold* f, Val* dst, const char* s, Py_ssize_t n) except -1:
        """Add a piece to a concat value within the slot's cap (max_concat, summed over
        its keys); the piece that overflows is cut at a UTF-8 character boundary."""
        cdef Py_ssize_t room, cap
        cdef char* p
        if f.cut:
            return 0
        if dst.kind != V_STR:
            dst.kind = V_STR
            dst.slen = 0
        room = self.max_concat - f.size
        if n > room:
            n = room
            while n > 0 and (<unsigned char>s[n] & 0xC0) == 0x80:
                n -= 1
            f.cut = True
        if dst.slen + n > dst.scap:
            cap = 2 * dst.scap
            if cap < dst.slen + n:
                cap = dst.slen + n
            if cap < 16:
                cap = 16
            p = <char*>PyMem_Realloc(dst.s, cap)
            if p == NULL:
                raise MemoryError()
            dst.s = p
            dst.scap = cap
        if n:
            memcpy(dst.s + dst.slen, s, n)
        dst.slen += n
        f.size += n
        return 0

    cdef int reserve(self, Fold* f, Py_ssize_t n, bint keyed) except -1:
        cdef Py_ssize_t have = f.kcap if keyed else f.ecap
        cdef Py_ssize_t cap = have
        cdef void* p
        if n <= have:
            return 0
        while cap < n:
            cap = 4 if cap == 0 else 2 * cap
        if keyed:
            p = PyMem_Realloc(f.keys, cap * sizeof(Keyed))
            if p == NULL:
                raise MemoryError()
            f.keys = <Keyed*>p
            memset(f.keys + have, 0, (cap - have) * sizeof(Keyed))
            f.kcap = cap
        else:
            p = PyMem_Realloc(f.ents, cap * sizeof(Val))
            if p == NULL:
                raise MemoryError()
            f.ents = <Val*>p
            memset(f.ents + have, 0, (cap - have) * sizeof(Val))
            f.ecap = cap
        return 0

    cdef int fold_keyed(self, Fold* f, Slot* sl, Slot* ks) except -1:
        """Merge a wildcard slot's elements by the key slot's entries (NULL: by position)."""
        cdef Py_ssize_t j
        cdef Val pos
        cdef const Val* key
        f.on = True
        pos.kind = V_INT
        pos.s = NULL
        pos.slen = 0
        for j in range(sl.n):
            key = &pos
            pos.i = j
            if ks != NULL and ks.on and j < ks.n and _is_key(&ks.ents[j]):
                key = &ks.ents[j]
            self.merge(f, key, &sl.ents[j])
        return 0

    cdef int merge(self, Fold* f, const Val* key, const Val* v) except -1:
        """One element under its key: the last non-null value, or its string appended."""
        cdef Py_ssize_t k = 0
        f.on = True
        while k < f.n and not val_equal(&f.keys[k].key, key):
            k += 1
        if k == f.n:
            if f.n >= self.max_items:
                return 0
            self.reserve(f, f.n + 1, True)
            val_set(&f.keys[k].key, key)
            f.keys[k].val.kind = V_NONE
            f.n += 1
        if f.code == FOLD_CONCAT:
            if v.kind == V_STR:
                self.append(f, &f.keys[k].val, v.s, v.slen)
        elif v.kind != V_NONE and not val_equal(&f.keys[k].val, v):
            val_set(&f.keys[k].val, v)
        return 0

    cdef object fold_object(self, Py_ssize_t s):
        cdef Fold* f = &self.folds[s]
        if f.code == FOLD_OR:
            return bool(f.on)
        if f.code == FOLD_COUNT:
            return f.n
        if _is_keyed(f):
            if not f.on:
                return None
            merged = {val_object(&f.keys[i].key): val_object(&f.keys[i].val) for i in range(f.n)}
            return [merged[k] for k in sorted(merged, key=_key_order)]
        if f.kind == SLOT_VALUE:
            return val_object(&f.one)
        if not f.on:
            return None
        return [val_object(&f.ents[i]) for i in range(f.n)]
