"""JsonScanner on both twins: unit cases, a json.loads oracle, twin agreement, bad input."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonoracle import chunks, documents, encoded, expected, path_sets, same

from llmtap.core.paths import PathSet

#: ``HYP_N=5000`` runs the property tests harder than the default CI budget.
SETTINGS = settings(
    max_examples=int(os.environ.get("HYP_N", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def scan(cls: Any, paths: dict[str, str], *pieces: bytes, end: bool = True, **kw: Any) -> Any:
    sc = cls(PathSet(paths), **kw)
    for p in pieces:
        sc.feed(p)
    if end:
        sc.end()
    return sc


def one(cls: Any, spec: str, doc: bytes, **kw: Any) -> Any:
    sc = scan(cls, {"x": spec}, doc, **kw)
    assert sc.error is None, sc.error
    return sc.values[0]


# -- values -------------------------------------------------------------------------


def test_basic_types(JsonScanner: Any) -> None:
    doc = b'{"s": "hi", "i": -12, "f": 1.5e3, "t": true, "F": false, "n": null, "o": {}, "a": [1]}'
    paths = {k: k for k in ("s", "i", "f", "t", "F", "n", "o", "a", "missing")}
    sc = scan(JsonScanner, paths, doc)
    assert (sc.done, sc.error) == (True, None)
    assert sc.values == ["hi", -12, 1500.0, True, False, None, None, None, None]
    assert [type(v) for v in sc.values[:5]] == [str, int, float, bool, bool]


def test_nested_paths_and_skipping(JsonScanner: Any) -> None:
    doc = (
        b'{"id": "x", "skip": {"deep": [1, {"usage": 9}, "u\\"sage"]}, '
        b'"usage": {"prompt_tokens": 3, "details": {"cached": 2}}, "model": "m"}'
    )
    paths = {"in": "usage.prompt_tokens", "c": "usage.details.cached", "m": "model", "id": "id"}
    assert scan(JsonScanner, paths, doc).values == [3, 2, "m", "x"]


def test_top_level_scalars(JsonScanner: Any) -> None:
    for doc in (b'"abc"', b" 12 ", b"true", b"null", b"[]", b"-0.5e-2"):
        sc = scan(JsonScanner, {"x": "x"}, doc)
        assert (sc.done, sc.error, sc.values) == (True, None, [None])


def test_number_completes_only_at_delimiter_or_end(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"x": "[*]"}, b"[12", end=False)
    assert sc.values == [[None]]
    sc.feed(b"3]")
    assert sc.values == [[123]] and sc.done
    top = scan(JsonScanner, {"x": "x"}, b"42", end=False)
    assert not top.done
    top.end()
    assert top.done and top.error is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"9223372036854775807", 9223372036854775807),
        (b"-9223372036854775808", -9223372036854775808),
        (b"9223372036854775808", 9.223372036854776e18),
        (b"-9223372036854775809", -9.223372036854776e18),
        (b"1" * 300 + b".5", None),  # longer than 256 bytes: an error, see below
        (b"1e400", float("inf")),
        (b"-0", 0),
        (b"0.1", 0.1),
        (b"1E+2", 100.0),
        (b"12e-1", 1.2),
    ],
)
def test_numbers(JsonScanner: Any, text: bytes, value: Any) -> None:
    sc = scan(JsonScanner, {"x": "x"}, b'{"x": ' + text + b"}")
    if value is None:
        assert sc.error == "invalid JSON: number longer than 256 bytes at offset 6"
    else:
        assert sc.error is None
        assert same(sc.values[0], value)


def test_long_numbers_are_fine_when_skipped(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"x": "x"}, b'{"y": ' + b"1" * 100_000 + b', "x": 1}')
    assert (sc.error, sc.values) == (None, [1])


def test_escapes(JsonScanner: Any) -> None:
    doc = rb'{"x": "a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00\u0000"}'
    assert one(JsonScanner, "x", doc) == 'a"b\\c/d\b\f\n\r\té中😀\x00'


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (rb'"\ud83d"', "\ufffd"),  # lone high at the end
        (rb'"\ude00x"', "\ufffdx"),  # lone low
        (rb'"\ud83dx"', "\ufffdx"),  # high then a plain byte
        (rb'"\ud83d\n"', "\ufffd\n"),  # high then another escape
        (rb'"\ud83d\u0041"', "\ufffdA"),  # high then a non-surrogate \u
        (rb'"\ud83d\ud83d\ude00"', "\ufffd😀"),  # high, then a proper pair
    ],
)
def test_lone_surrogates_become_replacement_characters(
    JsonScanner: Any, raw: bytes, text: str
) -> None:
    assert one(JsonScanner, "x", b'{"x": ' + raw + b"}") == text


def test_escaped_keys_match(JsonScanner: Any) -> None:
    doc = b'{"mod\\u0065l": "a", "\\u00e9t\\u00e9": 1, "q\\"k": 2, "\\ud83d\\ude00": 3}'
    paths = {"m": "model", "e": "été", "q": 'q"k', "s": "😀"}
    assert scan(JsonScanner, paths, doc).values == ["a", 1, 2, 3]


def test_long_keys_do_not_match_prefixes(JsonScanner: Any) -> None:
    doc = b'{"modelx": 1, "mode": 2, "' + b"m" * 5000 + b'": 3, "model": 4}'
    assert one(JsonScanner, "model", doc) == 4


@pytest.mark.parametrize(
    ("value", "max_str", "kept"),
    [
        ("abcdef", 4, "abcd"),
        ("abcdef", 0, ""),
        ("aé", 2, "a"),  # é is two bytes: cut before it
        ("aé", 3, "aé"),
        ("a😀b", 4, "a"),
        ("a😀b", 5, "a😀"),
    ],
)
def test_strings_are_capped_at_character_boundaries(
    JsonScanner: Any, value: str, max_str: int, kept: str
) -> None:
    for ensure_ascii in (True, False):
        doc = json.dumps({"x": value, "y": 1}, ensure_ascii=ensure_ascii).encode()
        sc = scan(JsonScanner, {"x": "x", "y": "y", "p": "?x"}, doc, max_str=max_str)
        assert (sc.error, sc.values) == (None, [kept, 1, True])


def test_capped_rest_is_skipped_unvalidated(JsonScanner: Any) -> None:
    doc = b'{"x": "abcd\xff\\q\\"", "y": 2}'
    sc = scan(JsonScanner, {"x": "x", "y": "y"}, doc, max_str=4)
    assert (sc.error, sc.values) == (None, ["abcd", 2])


def test_presence(JsonScanner: Any) -> None:
    doc = (
        b'{"e": "", "n": null, "a": [], "o": {}, "s": "x", "z": 0, "f": false, '
        b'"aa": [null], "oo": {"k": null}}'
    )
    names = ["e", "n", "a", "o", "s", "z", "f", "aa", "oo", "missing"]
    sc = scan(JsonScanner, {k: "?" + k for k in names}, doc)
    assert sc.values == [False, False, False, False, True, True, True, True, True, False]


def test_presence_under_wildcards(JsonScanner: Any) -> None:
    paths = {"t": "?choices[*].delta.content"}
    off = b'{"choices": [{"delta": {"content": ""}}, {"delta": {"content": null}}]}'
    on = b'{"choices": [{"delta": {"content": ""}}, {"delta": {"content": "hi"}}]}'
    assert scan(JsonScanner, paths, off).values == [False]
    assert scan(JsonScanner, paths, on).values == [True]


def test_wildcards_align_to_first_array(JsonScanner: Any) -> None:
    doc = (
        b'{"choices": [{"index": 0, "finish_reason": "stop"}, {"index": 1}, 7, '
        b'{"index": 2, "finish_reason": "length", "tool_calls": [{"id": "a"}, {"id": "b"}, {}]}]}'
    )
    paths = {
        "f": "choices[*].finish_reason",
        "i": "choices[*].index",
        "tc": "choices[*].tool_calls[*].id",
        "all": "choices[*]",
    }
    sc = scan(JsonScanner, paths, doc)
    assert sc.values == [
        ["stop", None, None, "length"],
        [0, 1, None, 2],
        [None, None, None, "b"],
        [None, None, 7, None],
    ]


def test_wildcard_absent_or_not_an_array(JsonScanner: Any) -> None:
    paths = {"f": "choices[*].finish_reason"}
    assert scan(JsonScanner, paths, b"{}").values == [None]
    assert scan(JsonScanner, paths, b'{"choices": {"a": 1}}').values == [None]
    assert scan(JsonScanner, paths, b'{"choices": null}').values == [None]
    assert scan(JsonScanner, paths, b'{"choices": []}').values == [[]]


def test_top_level_array_paths(JsonScanner: Any) -> None:
    doc = b'[{"a": 1}, {"a": "x"}, [], {"b": 2}]'
    sc = scan(JsonScanner, {"a": "[*].a", "p": "?[*].b"}, doc)
    assert sc.values == [[1, "x", None, None], True]


def test_wildcard_lists_are_capped(JsonScanner: Any) -> None:
    doc = json.dumps({"d": [{"i": i} for i in range(10)]}).encode()
    assert one(JsonScanner, "d[*].i", doc, max_items=3) == [0, 1, 2]
    assert one(JsonScanner, "d[*].i", doc, max_items=0) == []


def test_duplicate_keys_last_wins(JsonScanner: Any) -> None:
    doc = b'{"m": "a", "m": "b", "n": 1, "n": null, "c": [1, 2], "c": [{"x": 3}]}'
    sc = scan(JsonScanner, {"m": "m", "n": "n", "c": "c[*].x"}, doc)
    assert sc.values == ["b", None, [3]]
    gone = scan(JsonScanner, {"c": "c[*]"}, b'{"c": [1], "c": 5}')
    assert gone.values == [None]


def test_same_path_twice_and_container_value_slots(JsonScanner: Any) -> None:
    doc = b'{"usage": {"a": 1}, "x": [1, 2]}'
    paths = {"u": "usage", "ua": "usage.a", "ua2": "usage.a", "x": "x", "xs": "x[*]"}
    assert scan(JsonScanner, paths, doc).values == [None, 1, 1, None, [1, 2]]


def test_values_are_valid_mid_document_and_fresh_lists(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"m": "model", "f": "c[*]"}, b'{"model": "a", "c": [1,', end=False)
    v = sc.values
    assert v == ["a", [1, None]] or v == ["a", [1]]
    v[1].append("mutated")
    assert "mutated" not in sc.values[1]
    assert not sc.done and sc.error is None


def test_reset_reuses_the_scanner(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"m": "m"}, b'{"m": 1} x')
    assert sc.error is not None
    sc.reset()
    assert (sc.error, sc.done, sc.values) == (None, False, [None])
    sc.feed(b'{"m": 2}')
    sc.end()
    assert (sc.error, sc.done, sc.values) == (None, True, [2])


def test_accepts_buffer_types(JsonScanner: Any) -> None:
    sc = JsonScanner(PathSet({"m": "m"}))
    sc.feed(bytearray(b'{"m"'))
    sc.feed(memoryview(b'xx: "v"}')[2:])
    sc.end()
    assert sc.values == ["v"]
    with pytest.raises(TypeError):
        sc.feed("text")


def test_bad_arguments(JsonScanner: Any) -> None:
    with pytest.raises(TypeError):
        JsonScanner({"m": "m"})
    with pytest.raises(ValueError):
        JsonScanner(PathSet({"m": "m"}), max_depth=0)


# -- errors ----------------------------------------------------------------------------

ERRORS = [
    (b"", "invalid JSON: truncated at offset 0"),
    (b"  ", "invalid JSON: truncated at offset 2"),
    (b'{"a": 1', "invalid JSON: truncated at offset 7"),
    (b'{"a": "x', "invalid JSON: truncated at offset 8"),
    (b"[1, 2", "invalid JSON: truncated at offset 5"),
    (b"tru", "invalid JSON: truncated at offset 3"),
    (b"-", "invalid JSON: truncated at offset 1"),
    (b"[}", "invalid JSON: unexpected byte 0x7d at offset 1"),
    (b"[1}", "invalid JSON: unexpected byte 0x7d at offset 2"),
    (b'{"a": 1]', "invalid JSON: unexpected byte 0x5d at offset 7"),
    (b"[1,]", "invalid JSON: unexpected byte 0x5d at offset 3"),
    (b'{"a": 1,}', "invalid JSON: unexpected byte 0x7d at offset 8"),
    (b'{"a" 1}', "invalid JSON: unexpected byte 0x31 at offset 5"),
    (b"{1: 2}", "invalid JSON: unexpected byte 0x31 at offset 1"),
    (b"[01]", "invalid JSON: unexpected byte 0x31 at offset 2"),
    (b"[1.]", "invalid JSON: unexpected byte 0x5d at offset 3"),
    (b"[1e]", "invalid JSON: unexpected byte 0x5d at offset 3"),
    (b"[-a]", "invalid JSON: unexpected byte 0x61 at offset 2"),
    (b"[truth]", "invalid JSON: unexpected byte 0x74 at offset 4"),
    (b"[nul]", "invalid JSON: unexpected byte 0x5d at offset 4"),
    (b"[1 2]", "invalid JSON: unexpected byte 0x32 at offset 3"),
    (b"{} x", "invalid JSON: trailing byte 0x78 at offset 3"),
    (b"1 2", "invalid JSON: trailing byte 0x32 at offset 2"),
    (b"\xef\xbb\xbf{}", "invalid JSON: unexpected byte 0xef at offset 0"),
    (b'{"x": "a\\x"}', "invalid JSON: bad escape byte 0x78 at offset 9"),
    (b'{"x": "\\u12g4"}', "invalid JSON: bad escape byte 0x67 at offset 11"),
    (b'{"x": "a\nb"}', "invalid JSON: unexpected byte 0x0a at offset 8"),
    (b'{"x": "a\xffb"}', "invalid JSON: invalid UTF-8 byte 0xff at offset 8"),
    (b'{"x": "a\xc3("}', "invalid JSON: invalid UTF-8 byte 0x28 at offset 9"),
    (b'{"x": "\xed\xa0\x80"}', "invalid JSON: invalid UTF-8 byte 0xa0 at offset 8"),
    (b'{"x": "\xf0\x80\x80\x80"}', "invalid JSON: invalid UTF-8 byte 0x80 at offset 8"),
    (b'{"x": "\xc0\xaf"}', "invalid JSON: invalid UTF-8 byte 0xc0 at offset 7"),
    (b'{"mod\\el": 1}', "invalid JSON: bad escape byte 0x65 at offset 6"),
]


@pytest.mark.parametrize(("doc", "message"), ERRORS, ids=[repr(d)[2:-1] for d, _ in ERRORS])
def test_error_messages(JsonScanner: Any, doc: bytes, message: str) -> None:
    for pieces in ([doc], [doc[i : i + 1] for i in range(len(doc))]):
        sc = scan(JsonScanner, {"x": "x", "m": "model"}, *pieces)
        assert sc.error == message
        assert not sc.done


def test_skipped_strings_are_not_validated(JsonScanner: Any) -> None:
    doc = b'{"y": "a\xff\n\\x\\u12g4", "z": {"k\xff\\q": "\x01"}, "x": 1}'
    assert scan(JsonScanner, {"x": "x"}, doc).error is None
    assert scan(JsonScanner, {"x": "x", "p": "?y"}, doc).values == [1, True]


def test_first_error_sticks_and_further_input_is_ignored(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"x": "x"}, b'{"x": 1 2', b'{"x": 3}', b"\xff")
    assert sc.error == "invalid JSON: unexpected byte 0x32 at offset 8"
    assert sc.values == [None] or sc.values == [1]


def test_depth_cap(JsonScanner: Any) -> None:
    sc = scan(JsonScanner, {"x": "x"}, b"[" * 5 + b"]" * 5, max_depth=5)
    assert sc.error is None
    sc = scan(JsonScanner, {"x": "x"}, b'{"x": ' + b"[" * 5, max_depth=5)
    assert sc.error == "invalid JSON: nesting deeper than 5 at offset 10"


def test_gigabyte_of_open_brackets_stops_at_the_depth_cap(JsonScanner: Any) -> None:
    def gigabyte() -> Iterator[bytes]:
        block = b"[" * (1 << 20)
        for _ in range(1024):
            yield block

    sc = JsonScanner(PathSet({"x": "x"}))
    t0 = time.perf_counter()
    for block in gigabyte():  # every block is fed: after the error each is a no-op
        sc.feed(block)
    assert sc.error == "invalid JSON: nesting deeper than 512 at offset 512"
    assert time.perf_counter() - t0 < 2.0
    assert not sc.done


def test_ten_megabyte_string(JsonScanner: Any) -> None:
    big = b"x" * 10_000_000
    doc = b'{"skip": "' + big + b'", "take": "' + big + b'\\"", "after": 1}'
    sc = scan(JsonScanner, {"take": "take", "after": "after"}, doc)
    assert sc.error is None
    assert sc.values == ["x" * 4096, 1]
    # the same in 64 KiB pieces
    pieces = chunks(doc, list(range(0, len(doc), 65536)))
    sc = scan(JsonScanner, {"take": "take", "after": "after"}, *pieces)
    assert sc.values == ["x" * 4096, 1]


# -- oracle and twin agreement --------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, bytes, dict[str, str], list[bytes], dict[str, int]]:
    doc = draw(documents)
    data = draw(encoded(doc))
    paths = draw(path_sets(doc))
    if draw(st.integers(0, 5)) == 0:
        pieces = [data[i : i + 1] for i in range(len(data))]
    else:
        pieces = chunks(data, draw(st.lists(st.integers(0, len(data)), max_size=6)))
    limits = {
        "max_str": draw(st.sampled_from([4096, 4096, 0, 1, 3, 7])),
        "max_items": draw(st.sampled_from([256, 256, 0, 2])),
    }
    return doc, data, paths, pieces, limits


@SETTINGS
@given(cases())
def test_matches_json_loads_oracle(JsonScanner: Any, case: Any) -> None:
    doc, _data, paths, pieces, limits = case
    sc = scan(JsonScanner, paths, *pieces, **limits)
    assert (sc.error, sc.done) == (None, True)
    want = expected(doc, list(paths.values()), **limits)
    assert same(sc.values, want), (sc.values, want)


def _state(sc: Any) -> tuple:
    return sc.error, sc.done, repr(sc.values)


@SETTINGS
@given(cases())
def test_twins_agree_after_every_piece(both_scanners: Any, case: Any) -> None:
    py, c = both_scanners
    if c is None:
        pytest.skip("compiled twin disabled")
    _, _, paths, pieces, limits = case
    ps = PathSet(paths)
    a, b = py(ps, **limits), c(ps, **limits)
    for p in pieces:
        a.feed(p)
        b.feed(p)
        assert _state(a) == _state(b)
    a.end()
    b.end()
    assert _state(a) == _state(b)


JSONISH = st.sampled_from([*list(b'{}[]":,\\ \n0123456789-+.eEtrufalsn\xff\xc3\xa9ux'), 1, 127])


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    """Random bytes, JSON-ish soup, or a valid document with a few bytes mutated."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=64))
    if kind == 1:
        return bytes(draw(st.lists(JSONISH, max_size=64)))
    data = bytearray(draw(encoded(draw(documents))))
    for _ in range(draw(st.integers(1, 3))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(JSONISH)
    return bytes(data)


@SETTINGS
@given(garbage(), st.lists(st.integers(0, 64), max_size=4), st.sampled_from([1, 3, 512]))
def test_garbage_never_raises_and_twins_agree(
    both_scanners: Any, data: bytes, cuts: list[int], max_depth: int
) -> None:
    ps = PathSet({"a": "a", "b": "[*]", "c": "?a.b", "d": "a[*].b", "e": "x[*][*]"})
    results = []
    for cls in both_scanners:
        if cls is None:
            continue
        sc = cls(ps, max_depth=max_depth, max_str=5)
        for p in chunks(data, cuts):
            sc.feed(p)
        sc.end()
        results.append(_state(sc))
        assert (sc.error is None) == sc.done
    assert len(set(results)) == 1, results


@SETTINGS
@given(documents, st.data())
def test_every_prefix_is_truncated(JsonScanner: Any, doc: Any, data: st.DataObject) -> None:
    text = data.draw(encoded(doc)).rstrip()
    cut = data.draw(st.integers(0, len(text) - 1))
    sc = scan(JsonScanner, {"x": "x"}, text[:cut])
    prefix = text[:cut].strip()
    if prefix and isinstance(doc, int | float) and not isinstance(doc, bool):
        return  # "12" is a complete prefix of "123"
    if prefix.startswith(b"-") or (prefix and prefix[:1].isdigit()):
        return
    assert sc.error == f"invalid JSON: truncated at offset {cut}"


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([b"[", b'{"x":']))
def test_deep_nesting(JsonScanner: Any, depth: int, cap: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    doc = opener * depth + b"1" + closer * depth
    sc = scan(JsonScanner, {"x": "x" + ".x" * (depth - 1)}, doc, max_depth=cap)
    if depth <= cap:
        assert sc.error is None
        assert sc.values == [1 if opener != b"[" else None]
    else:
        assert sc.error == f"invalid JSON: nesting deeper than {cap} at offset {cap * len(opener)}"
