"""Resumable JSON field scanner: the pure-Python reference twin.

``core/_scanner.pyx`` is the compiled twin with the same API and the same
results, down to error strings; this module is the specification. At its end
the compiled class is imported over ``JsonScanner`` unless
``LLMTAP_NO_EXTENSIONS`` is set (``JsonScannerPy`` always names this one).

Refinements of docs/design.md ("JsonScanner"), binding for both twins:

* Only what is extracted is decoded: keys of objects on a path, and strings,
  numbers and literals at value slots. Those are fully validated (escapes,
  control characters, UTF-8). Every other string is only searched for its end
  (``"`` not preceded by an odd run of backslashes) so skipping runs at memchr
  speed; its content is never validated. The JSON grammar outside strings is
  always validated.
* Decoded strings: ``\\uXXXX`` pairs are combined; a lone surrogate becomes
  U+FFFD. A value string keeps whole characters while they fit in ``max_str``
  UTF-8 bytes; the first character that does not fit ends extraction and the
  rest of the string is skipped unvalidated.
* Numbers at value slots are buffered up to 256 bytes (longer: error). Without
  fraction or exponent and inside int64 they are ``int``, else ``float`` (which
  may be ``inf``, as ``float()`` of the text gives).
* Duplicate keys: the last match wins, which for a repeated leaf key is the last
  occurrence. A wildcard list follows the last occurrence of its array.
* A wildcard list keeps at most ``max_items`` entries (default 256): elements
  past that are not recorded. This bounds memory on hostile arrays.
* Slot updates happen as values complete: a scalar when its last byte is seen
  (a number when the byte after it is), ``None`` for a container at its opening
  bracket, a presence slot at the first key or element of a container or at the
  end of a non-empty scalar. ``values`` is therefore meaningful between feeds.
* Offsets in errors count bytes from the start of the document (every byte fed
  since construction or ``reset()``). The offending byte is the first one after
  which the input cannot be valid under the rules above; a truncated document
  reports the total length.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

from .paths import PRESENCE, WILD, Node, PathSet

__all__ = ["JsonScanner"]

#: Extracted numbers longer than this are an error (they are buffered).
NUM_MAX = 256

# Error codes shared with the compiled twin (the message is built from them on
# access so the hot path only stores three integers).
E_BYTE = 1
E_TRAILING = 2
E_TRUNCATED = 3
E_DEPTH = 4
E_UTF8 = 5
E_ESCAPE = 6
E_NUMBER = 7


def error_message(code: int, byte: int, offset: int, max_depth: int) -> str:
    """The error string for a scanner error code (identical in both twins)."""
    if code == E_BYTE:
        return f"invalid JSON: unexpected byte 0x{byte:02x} at offset {offset}"
    if code == E_TRAILING:
        return f"invalid JSON: trailing byte 0x{byte:02x} at offset {offset}"
    if code == E_TRUNCATED:
        return f"invalid JSON: truncated at offset {offset}"
    if code == E_DEPTH:
        return f"invalid JSON: nesting deeper than {max_depth} at offset {offset}"
    if code == E_UTF8:
        return f"invalid JSON: invalid UTF-8 byte 0x{byte:02x} at offset {offset}"
    if code == E_ESCAPE:
        return f"invalid JSON: bad escape byte 0x{byte:02x} at offset {offset}"
    if code == E_NUMBER:
        return f"invalid JSON: number longer than {NUM_MAX} bytes at offset {offset}"
    raise AssertionError(code)


# Lexical states (the compiled twin uses the same numbering).
S_VALUE = 0  # a value must start (after ':' or ',' in an array, or at the top)
S_ARR_FIRST = 1  # after '[': a value or ']'
S_OBJ_FIRST = 2  # after '{': a key or '}'
S_KEY = 3  # after ',' in an object: a key
S_COLON = 4  # after a key
S_AFTER = 5  # after a value in a container: ',' or the closing bracket
S_END = 6  # top-level value complete: only whitespace may follow
S_ERROR = 7
S_SKIP = 8  # inside a string whose content is not decoded
S_STR = 9  # inside a decoded string (key or value)
S_ESC = 10  # after a backslash in a decoded string
S_HEX = 11  # inside \uXXXX
S_SURR = 12  # after a high surrogate escape: expecting '\'
S_SURR_U = 13  # after a high surrogate escape and '\': expecting 'u'
S_UTF8 = 14  # inside a multi-byte UTF-8 character
S_NUM = 15
S_LIT = 16

# Number sub-states; the ones marked terminal may end the number.
N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP = range(8)
_N_TERMINAL = (False, True, True, False, True, False, False, True)

# What ends a string: the three decoded-string kinds and the skipped ones.
K_KEY = 0  # object key, decoded for matching
K_VALUE = 1  # value at a value slot
K_SKIP = 2  # nothing to do
K_PRESENCE = 3  # presence-only: note non-emptiness
K_CAPPED = 4  # a value string past max_str: commit what was kept
K_SKIPKEY = 5  # key of an object whose keys lead nowhere

OBJ = 1
ARR = 2

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_WS = frozenset(b" \t\n\r")
_ESCAPES = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 12, 0x6E: 10, 0x72: 13, 0x74: 9}
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_LITERALS = {0x74: (b"true", True), 0x66: (b"false", False), 0x6E: (b"null", None)}
_PLAIN = re.compile(rb'[^"\\\x00-\x1f\x80-\xff]+')
_NUM_PLAIN = re.compile(rb"[0-9]+")


def _utf8_lead(c: int) -> tuple[int, int, int]:
    """(continuation bytes, low and high bound of the first one) or (0, 0, 0) if invalid."""
    if 0xC2 <= c <= 0xDF:
        return 1, 0x80, 0xBF
    if c == 0xE0:
        return 2, 0xA0, 0xBF
    if 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
        return 2, 0x80, 0xBF
    if c == 0xED:
        return 2, 0x80, 0x9F
    if c == 0xF0:
        return 3, 0x90, 0xBF
    if 0xF1 <= c <= 0xF3:
        return 3, 0x80, 0xBF
    if c == 0xF4:
        return 3, 0x80, 0x8F
    return 0, 0, 0


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"expected bytes, bytearray or memoryview, got {type(chunk).__name__}")


class JsonScanner:
    """Extract the slots of a :class:`PathSet` from one JSON document fed in pieces.

    >>> sc = JsonScanner(PathSet({"m": "model", "n": "usage.total"}))
    >>> sc.feed(b'{"model": "gpt", "usage": {"tot')
    >>> sc.feed(b'al": 7}}')
    >>> sc.end(); sc.done, sc.error, sc.values
    (True, None, ['gpt', 7])
    """

    def __init__(
        self, paths: PathSet, *, max_str: int = 4096, max_depth: int = 512, max_items: int = 256
    ) -> None:
        if not isinstance(paths, PathSet):
            raise TypeError(f"paths must be a PathSet, got {type(paths).__name__}")
        if max_str < 0 or max_depth < 1 or max_items < 0:
            raise ValueError("max_str and max_items must be >= 0 and max_depth >= 1")
        self.paths = paths
        self.max_str = max_str
        self.max_depth = max_depth
        self.max_items = max_items
        self._docs = False  # StreamScanner("json_array"): each top-level element is a document
        self.reset()

    # -- public API -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget the document (and any error); keep the PathSet and limits."""
        self._state = S_VALUE
        self._offset = 0  # bytes scanned so far
        self._base = 0  # document offset of the chunk being scanned, minus its start
        self._err: tuple[int, int, int] | None = None
        self._types = bytearray()  # container type per open level
        self._cnodes: list[Node | None] = []  # trie node per open level
        self._vnode: Node | None = self.paths.root  # node of the value about to start
        self._knode: Node | None = None  # object node whose key is being read
        self._buf = bytearray()  # decoded key or value string, or number text
        self._kind = K_SKIP
        self._snode: Node | None = None  # node of the string/number/literal in progress
        self._capped = False
        self._nomatch = False  # key longer than any key it could match
        self._any = False  # skipped string had content
        self._esc = False  # skipped string: pending backslash
        self._hex = 0
        self._hex_n = 0
        self._hi = -1  # pending high surrogate
        self._u8_need = 0
        self._u8_lo = 0x80
        self._u8_hi = 0xBF
        self._num = N_INT
        self._num_float = False
        self._num_start = 0
        self._num_keep = False
        self._lit = b""
        self._lit_pos = 0
        self._lit_val: bool | None = None
        self._elements = 0  # docs mode: top-level elements started
        self._ready = False  # docs mode: an element just completed
        self._reset_slots()

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Scan the next piece of the document. Bad input sets ``error``; it never raises."""
        data = _as_bytes(chunk)
        if self._state != S_ERROR:
            self._scan(data, 0, len(data))

    def end(self) -> None:
        """No more input: a document that is not complete becomes an error."""
        st = self._state
        if st == S_NUM and not self._types and _N_TERMINAL[self._num]:
            self._end_number()
            self._complete()
        elif st not in (S_END, S_ERROR):
            self._base = self._offset
            self._fail(E_TRUNCATED, 0, 0)

    @property
    def done(self) -> bool:
        """The top-level value is complete."""
        return self._state == S_END

    @property
    def error(self) -> str | None:
        """First error, or None."""
        if self._err is None:
            return None
        return error_message(*self._err, self.max_depth)

    @property
    def values(self) -> list[Any]:
        """One entry per slot (a fresh list; wildcard slots as fresh lists)."""
        return [list(v) if type(v) is list else v for v in self._vals]

    # -- slots --------------------------------------------------------------------

    def _reset_slots(self) -> None:
        kinds = self.paths.kinds
        self._vals: list[Any] = [False if k == PRESENCE else None for k in kinds]
        self._gcount = [0] * len(self.paths.group_slots)

    def _put(self, node: Node, value: Any) -> None:
        """A value completed at ``node``: write its value slots."""
        paths, vals = self.paths, self._vals
        for s in node.value_slots:
            if paths.kinds[s] == WILD:
                lst = vals[s]
                i = self._gcount[paths.groups[s]] - 1
                if lst is not None and 0 <= i < len(lst):
                    lst[i] = value
            else:
                vals[s] = value

    def _present(self, node: Node) -> None:
        for s in node.presence_slots:
            self._vals[s] = True

    # -- errors and completion ------------------------------------------------------

    def _fail(self, code: int, byte: int, pos: int) -> int:
        if self._err is None:
            self._err = (code, byte, self._base + pos)
        self._state = S_ERROR
        return pos

    def _complete(self) -> None:
        """A value just completed at the current level."""
        if not self._types:
            self._state = S_END
        else:
            self._state = S_AFTER
            if self._docs and len(self._types) == 1:
                self._ready = True

    def _end_number(self) -> None:
        node = self._snode
        if node is None:
            return
        if not self._num_keep:
            self._present(node)
            return
        text = bytes(self._buf)
        value: int | float
        if self._num_float:
            value = float(text)
        else:
            value = int(text)
            if not INT64_MIN <= value <= INT64_MAX:
                value = float(text)
        self._put(node, value)
        self._present(node)

    def _end_string(self) -> None:
        """Closing quote of a string: act on its kind; sets the next state."""
        kind = self._kind
        if kind == K_KEY:
            knode = self._knode
            assert knode is not None
            self._vnode = None if self._nomatch else knode.keys.get(bytes(self._buf))
            self._state = S_COLON
            return
        if kind == K_SKIPKEY:
            self._vnode = None
            self._state = S_COLON
            return
        if kind in (K_VALUE, K_CAPPED):
            node = self._snode
            assert node is not None
            self._put(node, self._buf.decode("utf-8"))
            if self._buf or self._capped:
                self._present(node)
        elif kind == K_PRESENCE and self._any:
            assert self._snode is not None
            self._present(self._snode)
        self._complete()

    # -- the byte loop ----------------------------------------------------------------

    def _push(self, ctype: int, node: Node | None, c: int, pos: int) -> bool:
        if len(self._types) >= self.max_depth:
            self._fail(E_DEPTH, c, pos)
            return False
        self._types.append(ctype)
        self._cnodes.append(node)
        return True

    def _start_value(self, c: int, pos: int) -> int:
        """First byte ``c`` of a value at ``pos``; returns the next position."""
        types = self._types
        node: Node | None
        if not types:
            node = self.paths.root
            if self._docs:  # the body must be an array whose elements are the documents
                if c != 0x5B:
                    return self._fail(E_BYTE, c, pos)
                if self._push(ARR, node, c, pos):
                    self._state = S_ARR_FIRST
                return pos + 1
        elif types[-1] == ARR:
            anode = self._cnodes[-1]
            if anode is None:
                node = None
            elif self._docs and len(types) == 1:
                node = anode
                self._elements += 1
            else:
                if anode.presence_slots:
                    self._present(anode)
                g = anode.group
                if g >= 0:
                    self._gcount[g] += 1
                    if self._gcount[g] <= self.max_items:
                        for s in self.paths.group_slots[g]:
                            self._vals[s].append(None)
                node = anode.star
        else:
            node = self._vnode
        if node is not None and node.group >= 0:
            # a repeated key replaces the whole array: forget the earlier one
            for s in self.paths.group_slots[node.group]:
                self._vals[s] = None
        if c == 0x22:  # '"'
            self._snode = node
            self._capped = False
            if node is not None and node.value_slots:
                self._kind = K_VALUE
                self._buf.clear()
                self._hi = -1
                self._state = S_STR
            else:
                self._kind = K_PRESENCE if node is not None and node.presence_slots else K_SKIP
                self._any = False
                self._esc = False
                self._state = S_SKIP
            return pos + 1
        if c == 0x7B:  # '{'
            active = node if node is not None and (node.keys or node.presence_slots) else None
            if not self._push(OBJ, active, c, pos):
                return pos
            if node is not None:
                self._put(node, None)
            self._state = S_OBJ_FIRST
            return pos + 1
        if c == 0x5B:  # '['
            active = node if node is not None and (node.star or node.presence_slots) else None
            if not self._push(ARR, active, c, pos):
                return pos
            if node is not None:
                self._put(node, None)
                if node.group >= 0:
                    self._gcount[node.group] = 0
                    for s in self.paths.group_slots[node.group]:
                        self._vals[s] = []
            self._state = S_ARR_FIRST
            return pos + 1
        if c == 0x2D or 0x30 <= c <= 0x39:  # '-' or digit
            self._snode = node
            self._num_keep = node is not None and bool(node.value_slots)
            self._num_float = False
            self._num_start = self._base + pos
            self._num = N_MINUS if c == 0x2D else N_ZERO if c == 0x30 else N_INT
            if self._num_keep:
                self._buf.clear()
                self._buf.append(c)
            self._state = S_NUM
            return pos + 1
        lit = _LITERALS.get(c)
        if lit is not None:
            self._snode = node
            self._lit, self._lit_val = lit
            self._lit_pos = 1
            self._state = S_LIT
            return pos + 1
        return self._fail(E_BYTE, c, pos)

    def _scan(self, d: bytes, pos: int, end: int) -> int:
        """Scan ``d[pos:end]``; return where it stopped (``end`` unless an error or, in
        docs mode, a completed top-level element stopped it early)."""
        self._base = self._offset - pos
        while pos < end:
            st = self._state
            if self._ready or st == S_ERROR:
                break
            if st <= S_END:
                c = d[pos]
                if c in _WS:
                    pos += 1
                    continue
                if st in (S_VALUE, S_ARR_FIRST):
                    if c == 0x5D and st == S_ARR_FIRST:  # ']'
                        pos = self._close(ARR, c, pos)
                    else:
                        pos = self._start_value(c, pos)
                elif st == S_AFTER:
                    if c == 0x2C:  # ','
                        self._state = S_VALUE if self._types[-1] == ARR else S_KEY
                        pos += 1
                    elif c == 0x5D or c == 0x7D:
                        pos = self._close(ARR if c == 0x5D else OBJ, c, pos)
                    else:
                        pos = self._fail(E_BYTE, c, pos)
                elif st in (S_OBJ_FIRST, S_KEY):
                    if c == 0x22:
                        pos = self._start_key(pos)
                    elif c == 0x7D and st == S_OBJ_FIRST:
                        pos = self._close(OBJ, c, pos)
                    else:
                        pos = self._fail(E_BYTE, c, pos)
                elif st == S_COLON:
                    if c == 0x3A:
                        self._state = S_VALUE
                        pos += 1
                    else:
                        pos = self._fail(E_BYTE, c, pos)
                else:  # S_END
                    pos = self._fail(E_TRAILING, c, pos)
            elif st == S_SKIP:
                pos = self._skip_string(d, pos, end)
            elif st == S_STR:
                pos = self._decode_string(d, pos, end)
            elif st == S_NUM:
                pos = self._number(d, pos, end)
            elif st == S_LIT:
                c = d[pos]
                if c != self._lit[self._lit_pos]:
                    pos = self._fail(E_BYTE, c, pos)
                    break
                pos += 1
                self._lit_pos += 1
                if self._lit_pos == len(self._lit):
                    node = self._snode
                    if node is not None:
                        self._put(node, self._lit_val)
                        if self._lit_val is not None:
                            self._present(node)
                    self._complete()
            else:
                pos = self._escape(d[pos], pos)
        self._offset = self._base + pos
        return pos

    def _close(self, ctype: int, c: int, pos: int) -> int:
        if self._types[-1] != ctype:
            return self._fail(E_BYTE, c, pos)
        self._types.pop()
        self._cnodes.pop()
        self._complete()
        return pos + 1

    def _start_key(self, pos: int) -> int:
        node = self._cnodes[-1]
        if node is not None and node.presence_slots:
            self._present(node)
        if node is not None and node.keys:
            self._knode = node
            self._kind = K_KEY
            self._buf.clear()
            self._nomatch = False
            self._capped = False
            self._hi = -1
            self._state = S_STR
        else:
            self._kind = K_SKIPKEY
            self._esc = False
            self._state = S_SKIP
        return pos + 1

    def _skip_string(self, d: bytes, pos: int, end: int) -> int:
        if self._esc:
            self._esc = False
            self._any = True
            return pos + 1
        q = d.find(b'"', pos, end)
        stop = end if q < 0 else q
        k = stop - 1
        while k >= pos and d[k] == 0x5C:
            k -= 1
        odd = (stop - 1 - k) & 1
        if stop > pos:
            self._any = True
        if q < 0:
            self._esc = bool(odd)
            return end
        if odd:  # an escaped quote: keep looking
            return q + 1
        self._end_string()
        return q + 1

    def _decode_string(self, d: bytes, pos: int, end: int) -> int:
        buf = self._buf
        while pos < end:
            m = _PLAIN.match(d, pos, end)
            if m is not None:
                run = m.end() - pos
                if self._kind != K_KEY:
                    room = self.max_str - len(buf)
                    if run > room:
                        buf += d[pos : pos + room]
                        return self._cap(pos + room)
                    buf += d[pos : m.end()]
                elif not self._nomatch:
                    buf += d[pos : m.end()]
                    self._key_overflow()
                pos = m.end()
                if pos == end:
                    break
            c = d[pos]
            if c == 0x22:
                self._end_string()
                return pos + 1
            if self._kind != K_KEY and len(buf) >= self.max_str:
                return self._cap(pos)
            if c == 0x5C:
                self._state = S_ESC
                return pos + 1
            if c < 0x20:
                return self._fail(E_BYTE, c, pos)
            need, lo, hi = _utf8_lead(c)
            if need == 0:
                return self._fail(E_UTF8, c, pos)
            if self._kind != K_KEY and len(buf) + need + 1 > self.max_str:
                return self._cap(pos)
            self._u8_need, self._u8_lo, self._u8_hi = need, lo, hi
            self._emit_raw(c)
            self._state = S_UTF8
            return pos + 1
        return pos

    def _emit_raw(self, c: int) -> None:
        if self._kind != K_KEY or not self._nomatch:
            self._buf.append(c)
            if self._kind == K_KEY:
                self._key_overflow()

    def _key_overflow(self) -> None:
        knode = self._knode
        assert knode is not None
        if len(self._buf) > knode.max_key:
            self._nomatch = True
            self._buf.clear()

    def _cap(self, pos: int) -> int:
        """A value string reached max_str at ``pos``: skip the rest unvalidated."""
        self._capped = True
        self._kind = K_CAPPED
        self._esc = False
        self._state = S_SKIP
        return pos

    def _emit_cp(self, cp: int, pos: int) -> bool:
        """Append code point ``cp``; False if it capped the string (state changed)."""
        enc = chr(0xFFFD if 0xD800 <= cp <= 0xDFFF else cp).encode()
        if self._kind == K_KEY:
            if not self._nomatch:
                self._buf += enc
                self._key_overflow()
            return True
        if len(self._buf) + len(enc) > self.max_str:
            self._cap(pos)
            return False
        self._buf += enc
        return True

    def _escape(self, c: int, pos: int) -> int:
        """States S_ESC .. S_UTF8: one byte at a time."""
        st = self._state
        if st == S_UTF8:
            if not self._u8_lo <= c <= self._u8_hi:
                return self._fail(E_UTF8, c, pos)
            self._emit_raw(c)
            self._u8_need -= 1
            self._u8_lo, self._u8_hi = 0x80, 0xBF
            if self._u8_need == 0:
                self._state = S_STR
            return pos + 1
        if st == S_ESC:
            if c == 0x75:  # 'u'
                self._hex = 0
                self._hex_n = 0
                self._state = S_HEX
                return pos + 1
            e = _ESCAPES.get(c)
            if e is None:
                return self._fail(E_ESCAPE, c, pos)
            self._state = S_STR
            self._emit_cp(e, pos + 1)
            return pos + 1
        if st == S_HEX:
            h = _HEX.get(c)
            if h is None:
                return self._fail(E_ESCAPE, c, pos)
            self._hex = self._hex * 16 + h
            self._hex_n += 1
            if self._hex_n < 4:
                return pos + 1
            cp = self._hex
            self._state = S_STR
            if self._hi >= 0:
                hi, self._hi = self._hi, -1
                if 0xDC00 <= cp <= 0xDFFF:
                    self._emit_cp(0x10000 + ((hi - 0xD800) << 10) + (cp - 0xDC00), pos + 1)
                    return pos + 1
                if not self._emit_cp(0xFFFD, pos + 1):
                    return pos + 1
            if 0xD800 <= cp <= 0xDBFF:
                self._hi = cp
                self._state = S_SURR
            else:
                self._emit_cp(cp, pos + 1)
            return pos + 1
        if st == S_SURR:
            if c == 0x5C:
                self._state = S_SURR_U
                return pos + 1
            self._hi = -1
            self._state = S_STR
            self._emit_cp(0xFFFD, pos)
            return pos  # reprocess c as string content
        # S_SURR_U: after a high surrogate and '\'
        if c == 0x75:
            self._hex = 0
            self._hex_n = 0
            self._state = S_HEX
            return pos + 1
        self._hi = -1
        self._state = S_ESC
        if not self._emit_cp(0xFFFD, pos):
            # capped right before the escape: the skip must see the backslash
            self._esc = True
        return pos  # reprocess c as the escape letter

    def _number(self, d: bytes, pos: int, end: int) -> int:
        start = pos
        while pos < end:
            c = d[pos]
            n = self._num
            if 0x30 <= c <= 0x39:
                if n == N_ZERO:
                    break
                if n == N_MINUS and c == 0x30:
                    self._num = N_ZERO
                    pos += 1
                    continue
                m = _NUM_PLAIN.match(d, pos, end)
                assert m is not None
                pos = m.end()
                self._num = N_INT if n <= N_INT else N_FRAC if n <= N_FRAC else N_EXP
                continue
            if c == 0x2E and (n in (N_ZERO, N_INT)):
                self._num = N_DOT
                self._num_float = True
            elif (c == 0x65 or c == 0x45) and (n in (N_ZERO, N_INT, N_FRAC)):
                self._num = N_E
                self._num_float = True
            elif (c == 0x2B or c == 0x2D) and n == N_E:
                self._num = N_ESIGN
            else:
                break
            pos += 1
        if self._num_keep:
            self._buf += d[start:pos]
            if len(self._buf) > NUM_MAX:
                self._err = (E_NUMBER, 0, self._num_start)
                self._state = S_ERROR
                return pos
        if pos == end:
            return pos
        if not _N_TERMINAL[self._num]:
            return self._fail(E_BYTE, d[pos], pos)
        self._end_number()
        self._complete()
        return pos  # the delimiter is scanned in the new state


JsonScannerPy = JsonScanner

from ._env import NO_EXTENSIONS  # noqa: E402

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):  # the pure twin serves
        from ._scanner import JsonScanner  # type: ignore[no-redef]
