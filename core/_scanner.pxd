# Declarations of the compiled JsonScanner (core/_scanner.pyx), cimported by the
# fused StreamScanner (core/_stream.pyx), which drives it per document and folds
# the slot values in C. Numbering of states and codes follows core/scanner.py.

cimport cython
from libc.stdint cimport int64_t, uint64_t


cdef enum:
    # slot kinds (core/paths.py)
    SLOT_VALUE = 0
    SLOT_WILD = 1
    SLOT_PRESENCE = 2

    # value kinds
    V_NONE = 0
    V_INT = 1
    V_FLOAT = 2
    V_STR = 3
    V_TRUE = 4
    V_FALSE = 5

    # lexical states (core/scanner.py S_*)
    S_VALUE = 0
    S_ARR_FIRST = 1
    S_OBJ_FIRST = 2
    S_KEY = 3
    S_COLON = 4
    S_AFTER = 5
    S_END = 6
    S_ERROR = 7
    S_SKIP = 8
    S_STR = 9
    S_ESC = 10
    S_HEX = 11
    S_SURR = 12
    S_SURR_U = 13
    S_UTF8 = 14
    S_NUM = 15
    S_LIT = 16

    # error codes (core/scanner.py E_*)
    E_BYTE = 1
    E_TRAILING = 2
    E_TRUNCATED = 3
    E_DEPTH = 4
    E_UTF8 = 5
    E_ESCAPE = 6
    E_NUMBER = 7


# One scalar. A string owns its buffer, which is reused (never shrunk) so a slot
# written once per document allocates once per stream.
ctypedef struct Val:
    int kind
    int64_t i
    double d
    char* s
    Py_ssize_t slen
    Py_ssize_t scap


# The per-document state of one slot.
ctypedef struct Slot:
    int kind            # SLOT_*
    int group           # SLOT_WILD: its wildcard group
    bint on             # SLOT_PRESENCE: the answer; SLOT_WILD: the list exists
    bint mark           # written during this document (listed in JsonScanner.touched)
    Py_ssize_t n        # SLOT_WILD: entries in the list
    Py_ssize_t cap      # SLOT_WILD: entries allocated
    Val one             # SLOT_VALUE
    Val* ents           # SLOT_WILD


cdef int val_set(Val* dst, const Val* src) except -1
cdef int val_set_str(Val* dst, const char* s, Py_ssize_t n) except -1
cdef bint val_equal(const Val* a, const Val* b) noexcept
cdef object val_object(const Val* v)
cdef void val_free(Val* v) noexcept


# A PathSet flattened into C arrays (one per PathSet, cached on it).
@cython.final
cdef class Trie:
    cdef:
        Py_ssize_t nnodes, nslots, ngroups
        int* star           # per node: child through [*], or -1
        int* group          # per node: wildcard group whose array sits here, or -1
        int* maxkey         # per node: longest key below it
        int* kfirst         # per node: first key entry
        int* kcount
        int* vfirst         # per node: first entry in `slotlist` of its value slots
        int* vcount
        int* pfirst         # per node: its presence slots
        int* pcount
        unsigned char* flags    # per node: F_OBJ / F_ARR (worth descending into)
        int* single         # per node: its only value slot when that is a plain one, else -1
        const unsigned char** kptr
        Py_ssize_t* klen
        uint64_t* ksig          # first 8 bytes of the key, zero padded
        int* kchild
        int* slotlist
        int* slotkind       # per slot
        int* slotgroup
        int* gfirst         # per group: its WILD slots in `slotlist`
        int* gcount
        object keys         # keeps the key bytes alive
        list pool           # idle JsonScanners of finished StreamScanners, for reuse

    cdef int match(self, int node, const unsigned char* k, Py_ssize_t n) noexcept


cdef Trie trie_of(object paths)
cdef JsonScanner new_scanner(object paths, Py_ssize_t max_str, Py_ssize_t max_depth,
                             Py_ssize_t max_items)
cdef void park_scanner(JsonScanner sc) noexcept


ctypedef void (*attachment_free)(void* p) noexcept


@cython.final
cdef class JsonScanner:
    cdef:
        readonly object paths
        readonly Py_ssize_t max_str
        readonly Py_ssize_t max_depth
        readonly Py_ssize_t max_items
        Trie trie
        # lexical state
        int state
        int64_t offset          # bytes scanned so far
        int64_t base            # document offset of the chunk being scanned, minus its start
        int err_code
        int err_byte
        int64_t err_off
        unsigned char* types    # container type per open level
        int* cnodes             # trie node per open level (-1: inactive)
        Py_ssize_t depth
        Py_ssize_t stack_cap
        int vnode               # node of the value about to start
        int knode               # object node whose key is being read
        int snode               # node of the string/number/literal in progress
        int kind                # what ends the string in progress (K_*)
        bint capped
        bint nomatch
        bint any
        bint esc
        int hexv
        int hexn
        int hi
        int u8need
        int u8lo
        int u8hi
        int num
        bint num_float
        bint num_keep
        int64_t num_start
        const char* lit
        int lit_len
        int lit_pos
        int lit_kind
        # documents mode (StreamScanner "json_array"): top-level elements are documents
        bint docs
        bint ready
        Py_ssize_t elements
        # decoded key / string / number text
        char* buf
        Py_ssize_t blen
        Py_ssize_t bcap
        # slots
        Py_ssize_t nslots
        Py_ssize_t ngroups
        Slot* slots
        Py_ssize_t* gseen       # per group: elements seen in the current array
        int* touched            # slots written during this document: only they are
        Py_ssize_t ntouched     # cleared for the next one, and folded by the StreamScanner
        # state its StreamScanner parks here while the scanner waits in the pool
        void* attached
        attachment_free attached_free

    # used by the StreamScanner
    cdef int setup(self, object paths, Py_ssize_t max_str, Py_ssize_t max_depth,
                   Py_ssize_t max_items) except -1
    cdef void clear(self) noexcept
    cdef void clear_slots(self) noexcept
    cdef Py_ssize_t scan(self, const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) except -2
    cdef int finish(self) except -1
    cdef object slot_object(self, Py_ssize_t s)

    # slots
    cdef Val* target(self, int s) noexcept
    cdef int put(self, int node, const Val* v) except -1
    cdef int put_kind(self, int node, int kind) except -1
    cdef int put_str(self, int node, const char* s, Py_ssize_t n) except -1
    cdef void mark(self, int s) noexcept
    cdef void present(self, int node) noexcept
    cdef void group_lists(self, int g, bint on) noexcept
    cdef int new_element(self, int g) except -1

    # the byte loop
    cdef Py_ssize_t fail(self, int code, int byte, Py_ssize_t pos) noexcept
    cdef void complete(self) noexcept
    cdef int buf_add(self, const unsigned char* s, Py_ssize_t n) except -1
    cdef bint push(self, int ctype, int node, int c, Py_ssize_t pos) except -1
    cdef int grow_stack(self) except -1
    cdef Py_ssize_t close(self, int ctype, int c, Py_ssize_t pos) noexcept
    cdef Py_ssize_t cap(self, Py_ssize_t pos) noexcept
    cdef int key_add(self, const unsigned char* s, Py_ssize_t n) except -1
    cdef int end_string(self) except -1
    cdef int end_number(self) except -1
    cdef int emit_cp(self, int cp, Py_ssize_t pos) except -1
    cdef Py_ssize_t start_value(self, const unsigned char* p, Py_ssize_t pos,
                                Py_ssize_t n) except -2
    cdef Py_ssize_t start_key(self, const unsigned char* p, Py_ssize_t pos,
                              Py_ssize_t n) except -2
    cdef Py_ssize_t skip_string(self, const unsigned char* p, Py_ssize_t pos,
                                Py_ssize_t n) except -2
    cdef Py_ssize_t decode_string(self, const unsigned char* p, Py_ssize_t pos,
                                  Py_ssize_t n) except -2
    cdef Py_ssize_t escape(self, unsigned char c, Py_ssize_t pos) except -2
    cdef Py_ssize_t number(self, const unsigned char* p, Py_ssize_t pos,
                           Py_ssize_t n) except -2
    cdef Py_ssize_t structure(self, const unsigned char* p, Py_ssize_t pos,
                              Py_ssize_t n) except -2
    cdef Py_ssize_t literal(self, unsigned char c, Py_ssize_t pos) except -2
