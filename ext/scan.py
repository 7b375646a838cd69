"""What a family's response scan is made of (:class:`Spec`) and what it read (:class:`Scan`).

A :class:`Spec` is built once per family (and capture variant): the PathSet and folds
for the StreamScanner plus every slot index the folding needs, so nothing is looked
up by name per response. A :class:`Scan` wraps one finished StreamScanner for
:meth:`Family.fold` and the other hooks: reads by slot name go through the spec's
name -> slot index into the scanner's value list. The compiled twin
(``_scan.pyx``) has the same API.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any, NamedTuple

__all__ = ["Scan", "Spec", "as_int"]


class Spec(NamedTuple):
    """What a family's StreamScanner is made of, built once per family and variant."""

    paths: Any  # PathSet
    names: tuple[str, ...]
    out: tuple[int, ...]  # marker slots: the first document with one is the first output
    folds: Mapping[str, Any]  # the same object every time: core caches parsed folds by it
    chunks: int  # the OUTPUT_DOCS slot, or -1 (a family without output slots)
    slot_of: Mapping[str, int]  # slot name -> slot
    errors: tuple[int, ...]  # slots whose value in a 2xx body reports an error
    kind_slots: tuple[int, ...]  # the ``outputs`` slots, in declaration order
    kind_names: tuple[str, ...]  # and their kinds
    # Family.texts / Family.numbers: (record field, slots to try in order)
    texts: tuple[tuple[str, tuple[int, ...]], ...] = ()
    numbers: tuple[tuple[str, tuple[int, ...]], ...] = ()


_NO_SLOTS: Mapping[str, int] = {}
_NO_HEADERS: Mapping[str, str] = {}


def as_int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


class Scan:
    """Scanned values of one response, read once by :meth:`Family.fold`.

    ``values`` and ``first`` (dicts by slot name, for the content code) are built
    when read. Without a scanner (no body, or one llmtap could not read) every slot
    reads as None.
    """

    __slots__ = (
        "_first",
        "_first_index",
        "_ix",
        "_names",
        "_ss",
        "_v",
        "_values",
        "capped",
        "docs",
        "done_sentinel",
        "error",
        "error_event",
        "headers",
        "route",
        "spec",
        "truncated",
    )

    def __init__(
        self,
        spec: Spec | None,
        ss: Any,
        route: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.route = route
        self.headers: Mapping[str, str] = headers if headers is not None else _NO_HEADERS
        self.capped: frozenset[str] = frozenset()  # "concat" slots cut at max_concat
        self._names: tuple[str, ...] = spec.names if spec is not None else ()
        self._values: dict[str, Any] | None = None
        self._first: dict[str, int] | None = None
        self._first_index: list[int] | None = None
        if ss is None or spec is None:
            self._ss = None
            self._ix = _NO_SLOTS
            self._v: list[Any] = []
            self.docs = 0
            self.done_sentinel = False
            self.error: str | None = None
            self.error_event: Any = None
            self.truncated = False
            return
        self._ss = ss
        self._ix = spec.slot_of
        self._v = ss.values
        self.docs = ss.docs
        self.done_sentinel = bool(ss.done_sentinel)
        self.error = ss.error
        self.error_event = ss.error_event
        self.truncated = bool(ss.truncated)

    @property
    def values(self) -> dict[str, Any]:
        """Value per slot name (every slot of the spec; None where nothing was read)."""
        d = self._values
        if d is None:
            if self._ix:
                d = dict(zip(self._names, self._v, strict=True))
            else:
                d = dict.fromkeys(self._names)
            self._values = d
        return d

    @property
    def first(self) -> dict[str, int]:
        """Per slot name: the first document where it was non-null/present, or -1."""
        d = self._first
        if d is None:
            d = self._first = dict(zip(self._names, self.first_index(), strict=True))
        return d

    def first_index(self) -> list[int]:
        """Per slot: the first document where it was non-null/present, or -1."""
        f = self._first_index
        if f is None:
            ss = self._ss
            f = ss.first_index if ss is not None else [-1] * len(self._names)
            self._first_index = f
        return f

    def get(self, key: str) -> Any:
        i = self._ix.get(key)
        return None if i is None else self._v[i]

    def num(self, *keys: str) -> int | None:
        """First of ``keys`` holding a number, as int (Titan sends ``28.0``)."""
        ix, values = self._ix, self._v
        for k in keys:
            i = ix.get(k)
            if i is not None:
                v = as_int(values[i])
                if v is not None:
                    return v
        return None

    def text(self, *keys: str) -> str | None:
        """First of ``keys`` holding a non-empty string."""
        ix, values = self._ix, self._v
        for k in keys:
            i = ix.get(k)
            if i is not None:
                v = values[i]
                if isinstance(v, str) and v:
                    return v
        return None

    def seq(self, key: str) -> list[Any]:
        v = self.get(key)
        return v if isinstance(v, list) else []

    def slot(self, i: int) -> Any:
        """The value of slot ``i`` (an index into the spec's names)."""
        return self._v[i] if self._ix else None

    def any_set(self, slots: tuple[int, ...]) -> bool:
        """Whether any of these slots holds a value."""
        if self._ix:
            values = self._v
            for i in slots:
                if values[i] is not None:
                    return True
        return False

    def assign(self, rec: Any) -> None:
        """Set the record fields the spec's ``texts`` and ``numbers`` name: the first of
        their slots holding a non-empty string / a number, else None."""
        spec = self.spec
        if spec is None:
            return
        values = self._v if self._ix else None
        for field, slots in spec.texts:
            found = None
            if values is not None:
                for i in slots:
                    v = values[i]
                    if isinstance(v, str) and v:
                        found = v
                        break
            setattr(rec, field, found)
        for field, slots in spec.numbers:
            number = None
            if values is not None:
                for i in slots:
                    number = as_int(values[i])
                    if number is not None:
                        break
            setattr(rec, field, number)

    def first_output(self) -> tuple[str | None, int | None]:
        """(kind, document index) of the first output, or (None, None).

        The document is the first one with a marker slot (``Spec.out``); the kind is
        that of the latest ``outputs`` slot seen at or before it, declaration order
        breaking ties (``text`` when none was).
        """
        spec = self.spec
        if spec is None or not spec.out:
            return None, None
        first = self.first_index()
        d = -1
        for i in spec.out:
            f = first[i]
            if f >= 0 and (d < 0 or f < d):
                d = f
        if d < 0:
            return None, None
        best, kind = -1, "text"
        for i, k in zip(spec.kind_slots, spec.kind_names, strict=True):
            f = first[i]
            if best < f <= d:
                best, kind = f, k
        return kind, d


ScanPy = Scan

from llmtap.core._env import NO_EXTENSIONS  # noqa: E402

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):  # the pure twin serves
        from ._scan import Scan  # type: ignore[no-redef]
