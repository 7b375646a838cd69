"""Path specs compiled into the trie both JsonScanner twins walk.

A :class:`PathSet` names the fields a scanner extracts. It is pure Python and
shared by both twins: the pure scanner walks its nodes directly, the compiled one
flattens them into C arrays once per PathSet (cached on the instance).

Syntax (docs/design.md, "Paths"): dot-separated object keys; ``[*]`` after a key
(or at the very start, or after another ``[*]``) means every element of the
array there; a leading ``?`` makes a presence slot. Keys may contain any
character except ``.``, ``[`` and ``?``; they are matched against the decoded
JSON key, byte for byte in UTF-8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PathSet"]

#: Slot kinds.
VALUE = 0  # scalar value, no wildcard
WILD = 1  # value under one or more ``[*]``: a list aligned to the first wildcard array
PRESENCE = 2  # ``?path``: True when any match is present and non-empty


class Node:
    """One trie node: the JSON value reached by a key or ``[*]`` sequence.

    ``group`` is the wildcard group whose array sits at this node: set when the
    ``[*]`` edge leaving this node is the first wildcard on its paths, so every
    WILD slot below it is a list aligned to this array's elements.
    """

    __slots__ = ("group", "index", "keys", "max_key", "presence_slots", "star", "value_slots")

    def __init__(self, index: int) -> None:
        self.index = index
        self.keys: dict[bytes, Node] = {}
        self.star: Node | None = None
        self.value_slots: list[int] = []  # VALUE and WILD slots ending here
        self.presence_slots: list[int] = []
        self.group = -1
        self.max_key = 0  # longest key below (UTF-8 bytes): longer keys cannot match


def parse_path(spec: str) -> tuple[bool, list[bytes | None]]:
    """Split ``spec`` into (presence, steps); a step is a UTF-8 key or None for ``[*]``.

    >>> parse_path("?choices[*].delta.content")
    (True, [b'choices', None, b'delta', b'content'])
    """
    if not isinstance(spec, str):
        raise TypeError(f"path must be str, got {type(spec).__name__}")
    presence = spec.startswith("?")
    rest = spec[1:] if presence else spec
    steps: list[bytes | None] = []
    i, n = 0, len(rest)
    if n == 0:
        raise ValueError(f"invalid path {spec!r}: empty")
    while rest.startswith("[*]", i):  # a leading [*]: the document is an array
        steps.append(None)
        i += 3
    while i < n:
        if steps:
            if rest[i] != "." or i + 1 == n:
                raise ValueError(f"invalid path {spec!r}: unexpected {rest[i]!r} at {i + presence}")
            i += 1
        j = i
        while j < n and rest[j] not in ".[?":
            j += 1
        if j == i:
            raise ValueError(f"invalid path {spec!r}: expected a key at {i + presence}")
        try:
            steps.append(rest[i:j].encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(f"invalid path {spec!r}: key is not valid UTF-8") from None
        i = j
        while rest.startswith("[*]", i):
            steps.append(None)
            i += 3
    return presence, steps


class PathSet:
    """Compiled path specs; slot order is the mapping's insertion order.

    >>> ps = PathSet({"model": "model", "finish": "choices[*].finish_reason"})
    >>> ps.names
    ('model', 'finish')
    """

    __slots__ = (
        "_folds",
        "_native",
        "group_slots",
        "groups",
        "kinds",
        "names",
        "nodes",
        "root",
        "specs",
    )

    def __init__(self, paths: Mapping[str, str]) -> None:
        if not isinstance(paths, Mapping):
            raise TypeError(f"paths must be a mapping of name to path, got {type(paths).__name__}")
        self.names: tuple[str, ...] = tuple(paths)
        self.specs: tuple[str, ...] = tuple(paths.values())
        self.root = Node(0)
        self.nodes: list[Node] = [self.root]
        kinds: list[int] = []
        groups: list[int] = []  # per slot: wildcard group of a WILD slot, else -1
        group_slots: list[list[int]] = []
        for slot, spec in enumerate(self.specs):
            presence, steps = parse_path(spec)
            node, group = self.root, -1
            for step in steps:
                if step is None:
                    if group < 0 and not presence:
                        if node.group < 0:
                            node.group = len(group_slots)
                            group_slots.append([])
                        group = node.group
                    if node.star is None:
                        node.star = self._new()
                    node = node.star
                else:
                    child = node.keys.get(step)
                    if child is None:
                        child = node.keys[step] = self._new()
                    node.max_key = max(node.max_key, len(step))
                    node = child
            if presence:
                kinds.append(PRESENCE)
                node.presence_slots.append(slot)
            else:
                kinds.append(WILD if group >= 0 else VALUE)
                node.value_slots.append(slot)
                if group >= 0:
                    group_slots[group].append(slot)
            groups.append(group)
        self.kinds: tuple[int, ...] = tuple(kinds)
        self.groups: tuple[int, ...] = tuple(groups)
        self.group_slots: tuple[tuple[int, ...], ...] = tuple(tuple(g) for g in group_slots)
        self._native: Any = None  # the compiled twin's flattened trie, built on first use
        self._folds: dict[Any, Any] = {}  # parsed StreamScanner fold specs (core/stream.py)

    def _new(self) -> Node:
        node = Node(len(self.nodes))
        self.nodes.append(node)
        return node

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {s!r}" for n, s in zip(self.names, self.specs, strict=True))
        return f"PathSet({{{inner}}})"

    def index(self, name: str) -> int:
        """Slot index of ``name``; KeyError if unknown."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None
