"""A json.loads-based oracle for JsonScanner and the hypothesis strategies feeding it."""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from hypothesis import strategies as st

from llmtap.core.paths import parse_path

INT64 = (-(2**63), 2**63 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")

# Keys exercise escapes (quote, backslash, control), non-ASCII and astral characters.
KEY_CHARS = [*list('abcXYZ_-é"\\\n\t\x01 ]*\u2028'), "😀", "ÿ", "中"]
keys = st.text(alphabet=st.sampled_from(KEY_CHARS), max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
    | st.sampled_from(["", "stop", 'a"b\\c\n', "😀é", "\x00\x1f\x7f"])
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` as JSON text in a random but valid layout."""
    text = json.dumps(
        doc,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, None, 0, 2, "\t"])),
        separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])),
    )
    pad = draw(st.sampled_from(["", " ", "\n\r\t "]))
    return (pad + text + pad).encode("utf-8")


def _walk_paths(doc: Any, prefix: str, out: list[str], depth: int = 0) -> None:
    if depth > 6:
        return
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k and not any(ch in k for ch in ".[?"):
                p = f"{prefix}.{k}" if prefix else k
                out.append(p)
                _walk_paths(v, p, out, depth + 1)
    elif isinstance(doc, list) and doc:
        p = f"{prefix}[*]"
        out.append(p)
        for v in doc:
            _walk_paths(v, p, out, depth + 1)


@st.composite
def path_sets(draw: st.DrawFn, doc: Any) -> dict[str, str]:
    """Up to 6 paths drawn from the document (plus absent ones), some as presence slots."""
    found: list[str] = []
    _walk_paths(doc, "", found)
    found = list(dict.fromkeys(found))
    pool = [*found, "missing", "a.b", "[*]", "[*].a", "a[*].b[*]"]
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    return {f"s{i}": ("?" + p if draw(st.integers(0, 4)) == 0 else p) for i, p in enumerate(chosen)}


def cap(s: str, max_str: int) -> str:
    b = _SURROGATE.sub("\ufffd", s).encode("utf-8")
    return b[:max_str].decode("utf-8", "ignore") if len(b) > max_str else b.decode("utf-8")


def scalar(v: Any, max_str: int) -> Any:
    if isinstance(v, dict | list):
        return None
    if isinstance(v, str):
        return cap(v, max_str)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v if INT64[0] <= v <= INT64[1] else float(str(v))
    return v


def _matches(v: Any, steps: list[bytes | None]) -> list[Any]:
    if not steps:
        return [v]
    step, rest = steps[0], steps[1:]
    if step is None:
        if not isinstance(v, list):
            return []
        return [m for e in v for m in _matches(e, rest)]
    key = step.decode("utf-8")
    if not isinstance(v, dict) or key not in v:
        return []
    return _matches(v[key], rest)


def _nonempty(v: Any) -> bool:
    return v is not None and v != "" and v != [] and v != {}


def expected(doc: Any, specs: list[str], *, max_str: int = 4096, max_items: int = 256) -> list:
    """What JsonScanner must report for ``doc`` (no duplicate keys)."""
    out: list[Any] = []
    for spec in specs:
        presence, steps = parse_path(spec)
        if presence:
            out.append(any(_nonempty(m) for m in _matches(doc, steps)))
            continue
        if None not in steps:
            m = _matches(doc, steps)
            out.append(scalar(m[-1], max_str) if m else None)
            continue
        first = steps.index(None)
        arrays = _matches(doc, steps[:first])
        if not arrays or not isinstance(arrays[-1], list):
            out.append(None)
            continue
        lst = []
        for elem in arrays[-1][:max_items]:
            m = _matches(elem, steps[first + 1 :])
            lst.append(scalar(m[-1], max_str) if m else None)
        out.append(lst)
    return out


def same(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 and True from 1, and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
    return bool(a == b)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the given positions (sorted, deduplicated, clipped)."""
    pts = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(pts)]
