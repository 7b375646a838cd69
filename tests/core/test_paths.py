"""PathSet: path syntax, slot kinds, the trie both scanner twins walk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.core.paths import PRESENCE, VALUE, WILD, PathSet, parse_path


@pytest.mark.parametrize(
    ("spec", "presence", "steps"),
    [
        ("model", False, [b"model"]),
        (
            "usage.prompt_tokens_details.cached_tokens",
            False,
            [b"usage", b"prompt_tokens_details", b"cached_tokens"],
        ),
        ("choices[*].finish_reason", False, [b"choices", None, b"finish_reason"]),
        ("?choices[*].delta.content", True, [b"choices", None, b"delta", b"content"]),
        ("[*]", False, [None]),
        ("[*].a", False, [None, b"a"]),
        ("a[*][*].b", False, [b"a", None, None, b"b"]),
        ("été.😀", False, ["été".encode(), "😀".encode()]),
        ("a]b.*c*", False, [b"a]b", b"*c*"]),
        ('q"k.x\\y', False, [b'q"k', b"x\\y"]),
    ],
)
def test_parse(spec: str, presence: bool, steps: list) -> None:
    assert parse_path(spec) == (presence, steps)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "invalid path '': empty"),
        ("?", "invalid path '?': empty"),
        ("a.", "invalid path 'a.': unexpected '.' at 1"),
        (".a", "invalid path '.a': expected a key at 0"),
        ("a..b", "invalid path 'a..b': expected a key at 2"),
        ("a.[*]", "invalid path 'a.[*]': expected a key at 2"),
        ("a[*]b", "invalid path 'a[*]b': unexpected 'b' at 4"),
        ("a[0]", "invalid path 'a[0]': unexpected '[' at 1"),
        ("a?b", "invalid path 'a?b': unexpected '?' at 1"),
        ("??a", "invalid path '??a': expected a key at 1"),
        ("a.\ud800", "invalid path 'a.\\ud800': key is not valid UTF-8"),
    ],
)
def test_bad_paths(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        PathSet({"x": spec})
    assert str(err.value) == message


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        PathSet([("x", "model")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PathSet({"x": 3})  # type: ignore[dict-item]


def test_slots_follow_insertion_order() -> None:
    ps = PathSet({"b": "x", "a": "y", "c": "?z"})
    assert ps.names == ("b", "a", "c")
    assert ps.specs == ("x", "y", "?z")
    assert (len(ps), ps.index("a")) == (3, 1)
    with pytest.raises(KeyError):
        ps.index("nope")
    assert repr(ps) == "PathSet({'b': 'x', 'a': 'y', 'c': '?z'})"


def test_kinds_and_wildcard_groups() -> None:
    ps = PathSet(
        {
            "model": "model",
            "finish": "choices[*].finish_reason",
            "idx": "choices[*].index",
            "calls": "choices[*].tool_calls[*].id",
            "text": "?choices[*].delta.content",
            "top": "[*].a",
            "cands": "candidates[*]",
        }
    )
    assert ps.kinds == (VALUE, WILD, WILD, WILD, PRESENCE, WILD, WILD)
    # slots under the same first array share a group: their lists align
    assert ps.groups[1] == ps.groups[2] == ps.groups[3]
    assert len({ps.groups[1], ps.groups[5], ps.groups[6]}) == 3
    assert ps.groups[0] == ps.groups[4] == -1
    assert ps.group_slots[ps.groups[1]] == (1, 2, 3)


def test_trie_shares_prefixes() -> None:
    ps = PathSet({"a": "usage.in", "b": "usage.out", "c": "usage.in", "d": "?usage"})
    root = ps.root
    assert list(root.keys) == [b"usage"]
    usage = root.keys[b"usage"]
    assert usage.presence_slots == [3]
    assert sorted(usage.keys) == [b"in", b"out"]
    assert usage.keys[b"in"].value_slots == [0, 2]
    assert (root.max_key, usage.max_key) == (5, 3)
    assert [n.index for n in ps.nodes] == list(range(len(ps.nodes)))


def test_first_wildcard_group_sits_on_the_array_node() -> None:
    ps = PathSet({"x": "a[*].b[*].c", "y": "a[*].d"})
    a = ps.root.keys[b"a"]
    assert a.group == ps.groups[0] == ps.groups[1]
    assert a.star is not None and a.star.keys[b"b"].group == -1  # second wildcard: no group


keys = st.text(
    alphabet=st.characters(blacklist_characters=".[?", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.lists(st.one_of(keys, st.just(None)), min_size=1, max_size=6))
def test_parse_round_trip(presence: bool, steps: list[str | None]) -> None:
    text = "?" if presence else ""
    for i, step in enumerate(steps):
        if step is None:
            text += "[*]"
        else:
            text += ("." if i and text not in ("", "?") else "") + step
    want = [None if s is None else s.encode() for s in steps]
    assert parse_path(text) == (presence, want)
