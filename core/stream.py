"""The fused hot path: framing + field scanning + folding across documents.

``StreamScanner`` is what ``ext/`` and the gateway feed response bodies to. This
is the pure-Python reference twin; ``core/_stream.pyx`` runs the same loop in C
(the compiled framers deliver frames to it through a C sink, nothing is made
per event) and gives the same results, down to error strings.

Refinements of docs/design.md ("StreamScanner"), binding for both twins:

* Documents: SSE events with data (an event whose data is empty or whitespace
  is ignored, ``[DONE]`` is the end sentinel and not a document), NDJSON lines,
  top-level array elements, eventstream messages with a payload, the JSON body.
* A slot is *non-null* in a document when its value is not None; a wildcard
  list when it has a non-None entry; a presence slot when True. ``first_index``
  is the index of the first document where the slot was non-null, else -1.
* Folds: ``"last"`` (default) keeps the last non-null document value,
  ``"first"`` the first; presence slots OR. ``("keyed", key_slot)`` (both
  wildcard slots of the same first array) merges element values across
  documents by the key slot's entry at the same element when it is an int or a
  str, else by the element's position; the last non-null value per key wins; a
  key seen only with null values gives None; at most ``max_items`` keys. The
  result is ordered by key: ints ascending, then strings in code point order.
  Both slots may instead be plain value slots: a document is then one element
  whose key is the key slot's value, and a document without an int or str key
  is skipped. Either way every slot keyed by the same key slot sees the same
  keys, so their lists line up.
* ``"concat"`` joins the string values of a slot across documents (other values
  are ignored): a value slot gives one str, a wildcard slot a list per element
  position. ``("concat", key_slot)`` joins per key, with the keys, pairing rules
  and result order of ``"keyed"``; a key with no string gives None. A slot keeps
  at most ``max_concat`` bytes of UTF-8 (default 64 KiB, summed over its keys):
  the piece that overflows is cut at a character boundary, nothing more is
  appended to that slot and ``capped`` is True for it, so every value is a
  prefix of the true one. (A piece longer than ``max_str`` was already cut by
  the scanner: keep ``max_str >= max_concat`` where that matters.)
* ``"count"`` counts the documents in which the slot was non-null;
  ``("count", slot, ...)`` the documents in which it or any named slot was
  (a document counts once). Presence slots may count; no other fold applies.
* ``json`` framing scans one document and does not fold: ``values`` are the
  document's own (``"last"``, ``"first"`` and wildcard ``"keyed"`` slots), except
  that ``"concat"``, ``"count"`` and value-slot ``"keyed"`` folds apply to the one
  document so a slot's type never depends on the framing.
* A document that fails to scan is not folded; it counts in ``doc_errors`` and
  the first such failure becomes ``error`` as ``"document <i>: <message>"``.
  An eventstream message with a bad CRC or malformed headers is such a document
  (its payload is not scanned); the framer's own stop errors are reported
  as they are. ``json``/``json_array`` scan the body straight through one
  resumable scanner: an error there ends the scan, its offset is in the body.
  An empty (or all-whitespace) ``json``/``json_array`` body is no document and
  no error.
* ``error_event``: the first SSE ``event: error`` gives ``"error"``; the first
  eventstream ``exception``/``error`` message gives its ``:exception-type`` /
  ``:error-code`` (``"error"`` when that header is missing). Such documents are
  still scanned.
* ``b64_field`` (eventstream): when a message payload has a string at that path
  it is standard base64 (padding optional; no whitespace) and the decoded bytes
  are the document; otherwise the payload itself is.
* ``truncated``: the framer's flag after ``close()``; for ``json``/``json_array``,
  the body ended inside the value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

from . import framing
from .paths import PRESENCE, VALUE, WILD, PathSet
from .scanner import E_TRUNCATED, S_ERROR, S_VALUE, JsonScannerPy

__all__ = ["StreamScanner"]

FRAMINGS = ("sse", "ndjson", "json_array", "json", "eventstream")

# Fold codes shared with the compiled twin.
FOLD_LAST = 0
FOLD_FIRST = 1
FOLD_KEYED = 2
FOLD_OR = 3
FOLD_CONCAT = 4
FOLD_COUNT = 5

#: Default cap of a ``"concat"`` slot, in bytes of UTF-8.
MAX_CONCAT = 64 * 1024

_B64 = re.compile(r"[A-Za-z0-9+/]*")
_WS = b" \t\r\n"


Folds = tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, ...], ...]]


def parse_folds(paths: PathSet, folds: Mapping[str, Any] | None) -> Folds:
    """(fold code, key slot or -1, counted slots) per slot; raises on specs that cannot
    apply.

    Cached on the PathSet: a scanner per response must stay cheap to make.
    """
    try:
        key = tuple(folds.items()) if folds else ()
        return paths._folds[key]
    except KeyError:
        parsed = _parse_folds(paths, folds)
        paths._folds[key] = parsed
        return parsed
    except TypeError:  # an unhashable spec: it will not parse anyway
        return _parse_folds(paths, folds)


def _slot(paths: PathSet, fold: str, name: Any, what: str) -> int:
    try:
        return paths.index(name)
    except (KeyError, TypeError):
        raise ValueError(f"fold {fold!r}: unknown {what} {name!r}") from None


def _parse_folds(paths: PathSet, folds: Mapping[str, Any] | None) -> Folds:
    kinds = paths.kinds
    codes = [FOLD_OR if k == PRESENCE else FOLD_LAST for k in kinds]
    keys = [-1] * len(kinds)
    counted: list[tuple[int, ...]] = [()] * len(kinds)
    for name, spec in (folds or {}).items():
        try:
            s = paths.index(name)
        except KeyError:
            raise ValueError(f"fold for unknown slot {name!r}") from None
        head = spec[0] if isinstance(spec, tuple) and spec else spec
        if head == "count":
            codes[s] = FOLD_COUNT
            more = spec[1:] if isinstance(spec, tuple) else ()
            counted[s] = tuple(_slot(paths, name, m, "slot") for m in more)
            continue
        if kinds[s] == PRESENCE:
            raise ValueError(f"slot {name!r} is a presence slot: it folds with OR, or with 'count'")
        if spec == "last":
            codes[s] = FOLD_LAST
        elif spec == "first":
            codes[s] = FOLD_FIRST
        elif spec == "concat":
            codes[s] = FOLD_CONCAT
        elif isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ("keyed", "concat"):
            k = _slot(paths, name, spec[1], "key slot")
            pair = kinds[k] == kinds[s] and (
                kinds[s] == VALUE or (kinds[s] == WILD and paths.groups[s] == paths.groups[k])
            )
            if not pair:
                raise ValueError(
                    f"fold {name!r}: keyed folds need two wildcard slots under the same "
                    f"first array or two value slots ({paths.specs[s]!r}, {paths.specs[k]!r})"
                )
            codes[s] = FOLD_KEYED if spec[0] == "keyed" else FOLD_CONCAT
            keys[s] = k
        else:
            raise ValueError(
                f"fold {name!r}: expected 'last', 'first', 'concat', 'count', "
                "('keyed', slot), ('concat', slot) or ('count', slot, ...)"
            )
    return tuple(codes), tuple(keys), tuple(counted)


def b64decode(text: str) -> bytes | None:
    """Standard base64 with optional padding; None if it is not that."""
    body = text.rstrip("=")
    pad = len(text) - len(body)
    if not _B64.fullmatch(body) or len(body) % 4 == 1:
        return None
    if pad and pad != -len(body) % 4:
        return None
    return base64.b64decode(body + "=" * (-len(body) % 4))


def key_order(key: int | str) -> tuple[int, int | str]:
    return (0, key) if isinstance(key, int) else (1, key)


def nonnull(kind: int, value: Any) -> bool:
    if kind == WILD:
        return value is not None and any(v is not None for v in value)
    if kind == PRESENCE:
        return value is True
    return value is not None


class StreamScanner:
    """Scan a response body in any chunks and fold the slots across its documents.

    >>> ps = PathSet({"model": "model", "fin": "choices[*].finish_reason"})
    >>> ss = StreamScanner("sse", ps)
    >>> ss.feed(b'data: {"model":"m","choices":[{"finish_reason":null}]}\\n\\n')
    >>> ss.feed(b'data: {"choices":[{"finish_reason":"stop"}]}\\n\\ndata: [DONE]\\n\\n')
    >>> ss.close(); ss.values, ss.docs, ss.done_sentinel
    (['m', ['stop']], 2, True)
    """

    def __init__(
        self,
        framing: str,
        paths: PathSet,
        *,
        folds: Mapping[str, Any] | None = None,
        b64_field: str | None = None,
        max_frame: int | None = None,
        max_str: int = 4096,
        max_depth: int = 512,
        max_items: int = 256,
        max_concat: int = MAX_CONCAT,
    ) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}; got {framing!r}")
        if not isinstance(paths, PathSet):
            raise TypeError(f"paths must be a PathSet, got {type(paths).__name__}")
        if b64_field is not None and framing != "eventstream":
            raise ValueError("b64_field applies to the eventstream framing only")
        self.framing = framing
        self.paths = paths
        if max_concat < 0:
            raise ValueError("max_concat must be >= 0")
        self._codes, self._keys, self._counted = parse_folds(paths, folds)
        self._max_items = max_items
        self._max_concat = max_concat
        # value-slot keyed folds and counts look at every document, touched or not
        self._json_folds = any(
            c in (FOLD_CONCAT, FOLD_COUNT) or (c == FOLD_KEYED and k == VALUE)
            for c, k in zip(self._codes, paths.kinds, strict=True)
        )
        self._sc = JsonScannerPy(paths, max_str=max_str, max_depth=max_depth, max_items=max_items)
        self._framer: Any = None
        if framing in ("sse", "ndjson", "eventstream"):
            cls = {"sse": _SSE, "ndjson": _NDJSON, "eventstream": _ES}[framing]
            self._framer = cls() if max_frame is None else cls(max_frame)
        elif framing == "json_array":
            self._sc._docs = True
        self._b64: JsonScannerPy | None = None
        self._b64_name = b64_field
        if b64_field is not None:
            bps = PathSet({"b": b64_field})
            if bps.kinds[0] != 0:
                raise ValueError(f"b64_field must be a plain path, got {b64_field!r}")
            limit = self._framer.max_frame
            self._b64 = JsonScannerPy(bps, max_str=limit, max_depth=max_depth)
        self._clear_folds()
        self._docs = 0
        self._doc_errors = 0
        self._error: str | None = None
        self._error_event: str | None = None
        self._sentinel = False
        self._truncated = False
        self._closed = False

    def _clear_folds(self) -> None:
        n = len(self.paths)
        self._vals: list[Any] = [
            0 if c == FOLD_COUNT else False if k == PRESENCE else None
            for k, c in zip(self.paths.kinds, self._codes, strict=True)
        ]
        self._keyed: list[dict[int | str, Any] | None] = [None] * n
        self._first = [-1] * n
        self._size = [0] * n  # concat: bytes kept
        self._cut = [False] * n  # concat: reached max_concat

    # -- public API -----------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Scan the next piece of the body. Bad input is recorded, never raised."""
        if self._closed:
            return
        framer = self._framer
        if framer is None:
            self._feed_json(chunk)
            return
        if framer.error is not None:
            framer.feed(chunk)  # still type-checks the argument
            return
        for frame in framer.feed(chunk):
            self._frame(frame)
        if framer.error is not None and self._error is None:
            self._error = framer.error

    def close(self) -> None:
        """End of the body."""
        if self._closed:
            return
        self._closed = True
        framer = self._framer
        if framer is None:
            sc = self._sc
            if sc._state == S_VALUE and sc._err is None:
                return  # nothing but whitespace: no document
            sc.end()
            if sc.error is not None and self._error is None:
                self._error = sc.error
                self._doc_errors = 1
                self._truncated = sc._err is not None and sc._err[0] == E_TRUNCATED
            return
        for frame in framer.close():
            self._frame(frame)
        if framer.error is not None and self._error is None:
            self._error = framer.error
        self._truncated = framer.truncated

    @property
    def values(self) -> list[Any]:
        """The folded value per slot."""
        if self.framing == "json":
            raw = self._sc.values
            if not self._json_folds:
                return raw
            self._fold_json()
            return [
                self._folded(s) if _folds_json(c, k) else raw[s]
                for s, (c, k) in enumerate(zip(self._codes, self.paths.kinds, strict=True))
            ]
        return [self._folded(s) for s in range(len(self._vals))]

    def _folded(self, s: int) -> Any:
        keyed = self._keyed[s]
        if keyed is not None:
            order = sorted(keyed, key=key_order)
            if self._codes[s] == FOLD_CONCAT:
                return [None if keyed[k] is None else "".join(keyed[k]) for k in order]
            return [keyed[k] for k in order]
        v = self._vals[s]
        if type(v) is list:
            return "".join(v) if self._codes[s] == FOLD_CONCAT else list(v)
        return v

    @property
    def capped(self) -> list[bool]:
        """Per slot: a ``"concat"`` fold reached ``max_concat`` (its value is a prefix)."""
        if self.framing == "json" and self._json_folds:
            self._fold_json()
        return list(self._cut)

    def _fold_json(self) -> None:
        # one document: fold it afresh each time (values are valid mid-document too)
        self._clear_folds()
        sc = self._sc
        if sc._state != S_VALUE or sc._err is not None:
            self._fold(0, sc._vals)

    @property
    def first_index(self) -> list[int]:
        """Per slot: the first document where it was non-null/present, or -1."""
        if self.framing == "json":
            kinds = self.paths.kinds
            return [0 if nonnull(k, v) else -1 for k, v in zip(kinds, self._sc.values, strict=True)]
        return list(self._first)

    def output_started(self, slots: Iterable[int]) -> bool:
        """Whether any of these slots was non-null in some document so far: the
        cheap per-chunk check for "first output" (no list is built)."""
        first = self.first_index
        for s in slots:
            if not 0 <= s < len(first):
                raise IndexError(f"slot {s} out of range")
            if first[s] >= 0:
                return True
        return False

    @property
    def docs(self) -> int:
        """Documents seen."""
        if self.framing == "json":
            return 0 if self._sc._state == S_VALUE and self._sc._err is None else 1
        if self.framing == "json_array":
            return int(self._sc._elements)
        return self._docs

    @property
    def done_sentinel(self) -> bool:
        """SSE ``data: [DONE]`` was seen."""
        return self._sentinel

    @property
    def error(self) -> str | None:
        """The first framing or scan error, or None."""
        if self._error is None and self._framer is None and self._sc.error is not None:
            self._error = self._sc.error
            self._doc_errors = 1
        return self._error

    @property
    def doc_errors(self) -> int:
        """Documents that failed to scan."""
        self.error  # noqa: B018 - a json/json_array scan error counts when first seen
        return self._doc_errors

    @property
    def error_event(self) -> str | None:
        """The first error event/message seen (see the module docstring), or None."""
        return self._error_event

    @property
    def truncated(self) -> bool:
        """The body ended inside a document or frame."""
        return self._truncated

    # -- documents ----------------------------------------------------------------------

    def _feed_json(self, chunk: bytes | bytearray | memoryview) -> None:
        sc = self._sc
        data = chunk if isinstance(chunk, bytes) else framing_bytes(chunk)
        if sc._state == S_ERROR:  # further input is ignored
            return
        if not sc._docs:
            sc.feed(data)
            return
        pos, end = 0, len(data)
        while pos < end:
            pos = sc._scan(data, pos, end)
            if sc._ready:
                sc._ready = False
                self._fold(sc._elements - 1, sc._vals)
                sc._reset_slots()
            elif sc._err is not None:
                break

    def _frame(self, frame: Any) -> None:
        if self.framing == "sse":
            if frame.event == "error" and self._error_event is None:
                self._error_event = "error"
            data = bytes(frame.data).strip(_WS)
            if not data:
                return
            if data == b"[DONE]":
                self._sentinel = True
                return
            self._doc(data)
        elif self.framing == "ndjson":
            self._doc(bytes(frame))
        else:
            self._message(frame)

    def _message(self, msg: framing.EventStreamMessage) -> None:
        if msg.error is not None:
            if self._framer.error is None:  # a bad message; the stream goes on
                self._fail(self._docs, msg.error)
                self._docs += 1
            return
        mtype = msg.message_type
        if mtype in ("exception", "error") and self._error_event is None:
            name = msg.headers.get(":exception-type" if mtype == "exception" else ":error-code")
            self._error_event = name if isinstance(name, str) and name else "error"
        payload = bytes(msg.payload)
        if not payload:
            return
        sub = self._b64
        if sub is not None:
            sub.reset()
            sub.feed(payload)
            sub.end()
            if sub.error is not None:
                self._fail(self._docs, sub.error)
                self._docs += 1
                return
            text = sub._vals[0]
            if isinstance(text, str):
                decoded = b64decode(text)
                if decoded is None:
                    self._fail(self._docs, f'invalid base64 in "{self._b64_name}"')
                    self._docs += 1
                    return
                payload = decoded
        self._doc(payload)

    def _doc(self, data: bytes) -> None:
        index = self._docs
        self._docs += 1
        sc = self._sc
        sc.reset()
        sc.feed(data)
        sc.end()
        if sc.error is not None:
            self._fail(index, sc.error)
            return
        self._fold(index, sc._vals)

    def _fail(self, index: int, message: str) -> None:
        self._doc_errors += 1
        if self._error is None:
            self._error = f"document {index}: {message}"

    def _fold(self, index: int, doc: list[Any]) -> None:
        kinds, codes, keys, first = self.paths.kinds, self._codes, self._keys, self._first
        for s, v in enumerate(doc):
            code = codes[s]
            kind = kinds[s]
            good = nonnull(kind, v)
            if good and first[s] < 0:
                first[s] = index
            if code in (FOLD_KEYED, FOLD_CONCAT):
                if kind == WILD:
                    if v is not None:
                        self._fold_keyed(s, v, doc[keys[s]] if keys[s] >= 0 else None)
                elif keys[s] >= 0:
                    k = doc[keys[s]]
                    if type(k) is int or type(k) is str:  # else: no key, no element
                        self._merge(s, self._keyed_dict(s), k, v)
                elif type(v) is str:
                    pieces = self._vals[s]
                    self._vals[s] = self._append(s, pieces, v)
            elif code == FOLD_COUNT:
                if good or any(nonnull(kinds[m], doc[m]) for m in self._counted[s]):
                    self._vals[s] += 1
            elif code == FOLD_OR:
                if v:
                    self._vals[s] = True
            elif good and (code == FOLD_LAST or self._vals[s] is None):
                self._vals[s] = list(v) if type(v) is list else v

    def _keyed_dict(self, s: int) -> dict[int | str, Any]:
        merged = self._keyed[s]
        if merged is None:
            merged = self._keyed[s] = {}
        return merged

    def _fold_keyed(self, s: int, lst: list[Any], keylist: list[Any] | None) -> None:
        merged = self._keyed_dict(s)
        for j, v in enumerate(lst):
            key: int | str = j
            if keylist is not None and j < len(keylist):
                k = keylist[j]
                if type(k) is int or type(k) is str:
                    key = k
            self._merge(s, merged, key, v)

    def _merge(self, s: int, merged: dict[int | str, Any], key: int | str, v: Any) -> None:
        if key not in merged:
            if len(merged) >= self._max_items:
                return
            merged[key] = None
        if self._codes[s] == FOLD_CONCAT:
            if type(v) is str:
                merged[key] = self._append(s, merged[key], v)
        elif v is not None:
            merged[key] = v

    def _append(self, s: int, pieces: list[str] | None, piece: str) -> list[str] | None:
        """Add ``piece`` to a concat value (a list of pieces) within the slot's cap."""
        if self._cut[s]:
            return pieces
        data = piece.encode()
        room = self._max_concat - self._size[s]
        if len(data) > room:
            while room > 0 and (data[room] & 0xC0) == 0x80:  # not inside a character
                room -= 1
            data = data[:room]
            piece = data.decode()
            self._cut[s] = True
        self._size[s] += len(data)
        if pieces is None:
            pieces = []
        pieces.append(piece)
        return pieces


def _folds_json(code: int, kind: int) -> bool:
    """Whether a slot's fold applies to the one document of the ``json`` framing."""
    return code in (FOLD_CONCAT, FOLD_COUNT) or (code == FOLD_KEYED and kind == VALUE)


def framing_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"expected bytes, bytearray or memoryview, got {type(chunk).__name__}")


# The pure twin always drives the pure framers (the compiled StreamScanner drives
# the compiled ones at C level).
_SSE = framing.SSEFramerPy
_NDJSON = framing.NDJSONFramerPy
_ES = framing.EventStreamFramerPy

StreamScannerPy = StreamScanner

from ._env import NO_EXTENSIONS  # noqa: E402

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):  # the pure twin serves
        from ._stream import StreamScanner  # type: ignore[no-redef]
