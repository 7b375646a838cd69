"""StreamScanner folds beyond last/first/keyed, on both twins: ``concat`` (joined
strings, per key, under a byte cap), ``count`` and keys on plain value slots."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonoracle import chunks

from llmtap.core.paths import PathSet

SETTINGS = settings(
    max_examples=int(os.environ.get("HYP_N", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# An OpenAI-style chat stream, an Anthropic-style block stream and a count.
PS = PathSet(
    {
        "text": "choices[*].delta.content",
        "idx": "choices[*].index",
        "finish": "choices[*].finish_reason",
        "btext": "delta.text",
        "bjson": "delta.partial_json",
        "bname": "content_block.name",
        "bidx": "index",
        "out": "?choices[*].delta.content",
        "tool": "?delta.partial_json",
    }
)
FOLDS = {
    "text": ("concat", "idx"),
    "finish": ("keyed", "idx"),
    "btext": ("concat", "bidx"),
    "bjson": ("concat", "bidx"),
    "bname": ("keyed", "bidx"),
    "bidx": ("keyed", "bidx"),
    "out": ("count", "tool"),
}


def body(framing: str, docs: list[Any]) -> bytes:
    texts = [json.dumps(d).encode() for d in docs]
    if framing == "sse":
        return b"".join(b"data: " + t + b"\n\n" for t in texts) + b"data: [DONE]\n\n"
    if framing == "ndjson":
        return b"\n".join(texts)
    return b"[" + b",".join(texts) + b"]"


def run(cls: Any, framing: str, docs: list[Any], ps: PathSet = PS, **kw: Any) -> Any:
    kw.setdefault("folds", FOLDS)
    ss = cls(framing, ps, **kw)
    ss.feed(body(framing, docs) if framing != "json" else json.dumps(docs[0]).encode())
    ss.close()
    return ss


def chat(content: Any = None, index: int = 0, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


STREAM = [
    chat(""),
    chat("Hel"),
    chat("Ol", index=1),
    chat("lo"),
    chat(42),  # not a string: ignored
    chat(finish="stop"),
    chat("á", index=1, finish="length"),
    {"choices": []},
    {"index": 1, "content_block": {"type": "tool_use", "name": "get"}},
    {"index": 0, "delta": {"text": "Hi "}},
    {"index": 1, "delta": {"partial_json": '{"a":'}},
    {"index": 0, "delta": {"text": "there"}},
    {"index": 1, "delta": {"partial_json": " 1}"}},
    {"index": 2, "content_block": {"type": "text"}},
    {"delta": {"text": "no index: skipped"}},
]


@pytest.mark.parametrize("framing", ["sse", "ndjson", "json_array"])
def test_concat_keyed_and_count(StreamScanner: Any, framing: str) -> None:
    ss = run(StreamScanner, framing, STREAM)
    v = dict(zip(PS.names, ss.values, strict=True))
    assert v["text"] == ["Hello", "Olá"]  # joined per choice index
    assert v["finish"] == ["stop", "length"]  # same keys: the lists line up
    # keyed by a plain value slot: every slot keyed by "index" sees keys 0, 1, 2
    assert v["bidx"] == [0, 1, 2]
    assert v["btext"] == ["Hi there", None, None]
    assert v["bjson"] == [None, '{"a": 1}', None]
    assert v["bname"] == [None, "get", None]
    # documents with non-empty content (42 counts), or a tool delta (each once)
    assert v["out"] == 7
    assert ss.capped == [False] * len(PS)
    assert ss.first_index[PS.index("out")] == 1


def test_concat_value_slot_and_non_strings(StreamScanner: Any) -> None:
    ps = PathSet({"t": "t", "n": "n"})
    docs = [{"t": "a"}, {"t": 1}, {"t": None}, {"t": ""}, {"t": ["x"]}, {"t": "b"}, {"n": 1}]
    ss = run(StreamScanner, "ndjson", docs, ps, folds={"t": "concat", "n": "concat"})
    assert ss.values == ["ab", None]  # a slot that never held a string stays None
    assert ss.first_index == [0, 6]


def test_concat_wildcard_without_key_is_per_position(StreamScanner: Any) -> None:
    ps = PathSet({"t": "c[*].t"})
    docs = [{"c": [{"t": "a"}, {"t": "b"}]}, {"c": [{"t": "c"}]}, {"c": [{}, {}, {"t": "z"}]}]
    ss = run(StreamScanner, "ndjson", docs, ps, folds={"t": "concat"})
    assert ss.values == [["ac", "b", "z"]]


@pytest.mark.parametrize(
    ("cap", "want", "capped"),
    [
        (0, "", True),
        (1, "a", True),  # full; the next non-empty piece marks the cut
        (2, "a", True),  # "é" is 2 bytes: not split
        (3, "aé", True),
        (6, "aé", True),  # "😀" is 4 bytes
        (8, "aé😀b", True),  # the empty piece in between changes nothing
        (9, "aé😀bc", False),
        (100, "aé😀bc", False),
    ],
)
def test_concat_cap_cuts_at_a_character_boundary(
    StreamScanner: Any, cap: int, want: str, capped: bool
) -> None:
    ps = PathSet({"t": "t"})
    docs = [{"t": "a"}, {"t": "é"}, {"t": "😀"}, {"t": ""}, {"t": "b"}, {"t": "c"}]
    ss = run(StreamScanner, "ndjson", docs, ps, folds={"t": "concat"}, max_concat=cap)
    (value,) = ss.values
    assert (value, ss.capped) == (want, [capped])
    assert len(value.encode()) <= cap


def test_concat_cap_is_per_slot_summed_over_keys(StreamScanner: Any) -> None:
    docs = [chat("abc"), chat("def", index=1), chat("gh"), chat("ij", index=1)]
    ss = run(StreamScanner, "sse", docs, max_concat=7)
    v = dict(zip(PS.names, ss.values, strict=True))
    # 3 + 3 bytes, then "gh" is cut to "g": the slot is full, "ij" is dropped
    assert v["text"] == ["abcg", "def"]
    assert ss.capped == [n == "text" for n in PS.names]


def test_keys_are_bounded(StreamScanner: Any) -> None:
    docs = [{"index": i, "delta": {"text": str(i)}} for i in range(10)]
    ss = run(StreamScanner, "ndjson", docs, max_items=3)
    v = dict(zip(PS.names, ss.values, strict=True))
    assert (v["btext"], v["bidx"]) == (["0", "1", "2"], [0, 1, 2])


def test_key_kinds(StreamScanner: Any) -> None:
    # int and str keys; a float, bool or null key is no key (value slots: skipped)
    keyed = [("b", "x"), (1, "y"), (1.5, "no"), (True, "no"), (None, "no"), ("a", "z")]
    docs = [{"index": k, "delta": {"text": t}} for k, t in keyed]
    ss = run(StreamScanner, "ndjson", docs)
    v = dict(zip(PS.names, ss.values, strict=True))
    assert (v["bidx"], v["btext"]) == ([1, "a", "b"], ["y", "z", "x"])


def test_count(StreamScanner: Any) -> None:
    ps = PathSet({"n": "n", "p": "?p", "q": "?q", "w": "c[*].x", "any": "?p"})
    docs = [{"n": 1}, {"p": 1}, {"q": 1, "p": 1}, {"q": ""}, {"c": [{}]}, {"c": [{"x": 0}]}, {}]
    folds = {"n": "count", "p": "count", "w": "count", "any": ("count", "q", "w")}
    ss = run(StreamScanner, "ndjson", docs, ps, folds=folds)
    assert ss.values == [1, 2, True, 1, 3]
    assert ss.first_index == [0, 1, 2, 5, 1]


def test_json_framing_folds_the_one_document(StreamScanner: Any) -> None:
    # "json" does not fold last/first/wildcard keyed, but concat, count and
    # value-slot keys apply to its one document: a slot's type never depends on it
    doc = {
        "choices": [{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": 7}}],
        "index": 3,
        "delta": {"text": "t"},
    }
    ss = StreamScanner("json", PS, folds=FOLDS, max_concat=64)
    assert ss.values[PS.index("out")] == 0 and ss.values[PS.index("text")] is None
    ss.feed(json.dumps(doc).encode())
    v = dict(zip(PS.names, ss.values, strict=True))
    assert v["text"] == [None, "b"]  # keyed concat: ordered by key
    assert v["finish"] == [None, None]  # wildcard keyed: the document's own list
    assert (v["btext"], v["bidx"], v["bname"]) == (["t"], [3], [None])
    assert v["out"] == 1
    ss.close()
    assert ss.values == run(StreamScanner, "ndjson", [doc]).values


def test_json_framing_cap(StreamScanner: Any) -> None:
    ss = StreamScanner("json", PathSet({"t": "t"}), folds={"t": "concat"}, max_concat=3)
    ss.feed(b'{"t": "abcdef"}')
    ss.close()
    assert (ss.values, ss.capped) == (["abc"], [True])


@pytest.mark.parametrize(
    "folds",
    [
        {"out": "concat"},  # presence slots only OR or count
        {"out": ("keyed", "idx")},
        {"text": ("concat", "bidx")},  # wildcard keyed by a value slot
        {"btext": ("concat", "idx")},
        {"btext": ("keyed", "out")},
        {"text": ("concat", "nope")},
        {"out": ("count", "nope")},
        {"text": ("concat", "idx", "more")},
        {"text": "sum"},
    ],
)
def test_bad_folds(StreamScanner: Any, folds: dict) -> None:
    with pytest.raises(ValueError, match="fold"):
        StreamScanner("sse", PS, folds=folds)


def test_bad_max_concat(StreamScanner: Any) -> None:
    with pytest.raises(ValueError, match="max_concat"):
        StreamScanner("sse", PS, max_concat=-1)


def test_recycled_scanners_start_clean(StreamScanner: Any) -> None:
    # the compiled twin recycles fold buffers per PathSet: joined strings, counts,
    # keys and the cap must all start over
    for _ in range(3):
        ss = run(StreamScanner, "sse", STREAM, max_concat=4)
        assert ss.values[0] == ["Hel", "O"] and ss.capped[0]
        del ss
        ss = run(StreamScanner, "sse", [chat("x", index=2)])
        v = dict(zip(PS.names, ss.values, strict=True))
        assert (v["text"], v["btext"], v["out"], ss.capped) == (["x"], None, 1, [False] * 9)
        del ss


def test_bounded_memory_on_a_long_stream(StreamScanner: Any) -> None:
    piece = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"x" * 1000 + b'"}}]}\n\n'
    ss = StreamScanner("sse", PS, folds=FOLDS)
    for _ in range(2000):  # 2 MB of text into a 64 KiB slot
        ss.feed(piece)
    ss.close()
    (text,) = ss.values[0]
    assert len(text) == 64 * 1024 and ss.capped[0] and ss.values[-2] == 2000


# -- against a plain model ------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
KEY = st.one_of(st.integers(-1, 3), st.sampled_from(["a", "b"]), st.none(), st.just(1.5))
element = st.fixed_dictionaries({}, optional={"k": KEY, "t": st.one_of(TEXT, st.integers())})
model_docs = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "c": st.one_of(st.lists(element, max_size=3), st.none()),
            "k": KEY,
            "t": st.one_of(TEXT, st.none(), st.integers()),
        },
    ),
    min_size=1,
    max_size=8,
)
MODEL_PS = PathSet({"wt": "c[*].t", "wk": "c[*].k", "vt": "t", "vk": "k", "n": "?c[*].t"})
MODEL_FOLDS = {"wt": ("concat", "wk"), "vt": ("concat", "vk"), "n": ("count", "vt")}


class Joined:
    """The concat of docs/design.md, written the obvious way."""

    def __init__(self, cap: int) -> None:
        self.cap, self.size, self.cut = cap, 0, False

    def add(self, have: str | None, piece: str) -> str | None:
        if self.cut:
            return have
        data = piece.encode()
        if self.size + len(data) > self.cap:
            data = data[: self.cap - self.size]
            data = data.decode("utf-8", "ignore").encode()  # drop a split character
            self.cut = True
        self.size += len(data)
        return (have or "") + data.decode()


def is_key(k: Any) -> bool:
    return type(k) in (int, str)


def model(docs: list[dict], cap: int, max_items: int) -> tuple[list, list[bool]]:
    wt, vt = Joined(cap), Joined(cap)
    wmerged: dict | None = None
    vmerged: dict | None = None
    count = 0

    def merge(merged: dict, key: Any, v: Any, joined: Joined) -> None:
        if key not in merged:
            if len(merged) >= max_items:
                return
            merged[key] = None
        if isinstance(v, str):
            merged[key] = joined.add(merged[key], v)

    for d in docs:
        lst = d.get("c")
        if isinstance(lst, list):
            wmerged = {} if wmerged is None else wmerged
            for j, e in enumerate(lst[:max_items]):
                merge(wmerged, e["k"] if is_key(e.get("k")) else j, e.get("t"), wt)
        if is_key(d.get("k")):
            vmerged = {} if vmerged is None else vmerged
            merge(vmerged, d["k"], d.get("t"), vt)
        texts = [e.get("t") for e in lst] if isinstance(lst, list) else []
        if d.get("t") is not None or any(t not in (None, "") for t in texts):
            count += 1

    def ordered(m: dict | None) -> list | None:
        if m is None:
            return None
        return [m[k] for k in sorted(m, key=lambda k: (0, k) if isinstance(k, int) else (1, k))]

    return [ordered(wmerged), ordered(vmerged), count], [wt.cut, vt.cut]


@SETTINGS
@given(
    model_docs,
    st.sampled_from(["ndjson", "sse", "json_array"]),
    st.sampled_from([0, 3, 8, 64 * 1024]),
    st.sampled_from([256, 2]),
    st.lists(st.integers(0, 300), max_size=5),
)
def test_concat_and_count_model(
    both_streams: Any, docs: list[dict], framing: str, cap: int, max_items: int, cuts: list[int]
) -> None:
    data = body(framing, docs)
    want, want_cut = model(docs, cap, max_items)
    results = []
    for cls in both_streams:
        if cls is None:
            continue
        ss = cls(framing, MODEL_PS, folds=MODEL_FOLDS, max_concat=cap, max_items=max_items)
        for piece in chunks(data, cuts):
            ss.feed(piece)
        ss.close()
        v = ss.values
        got = [v[0], v[2], v[4]]
        assert got == want, (got, want)
        assert [ss.capped[0], ss.capped[2]] == want_cut
        results.append((repr(v), tuple(ss.first_index), tuple(ss.capped), ss.docs, ss.error))
    assert len(set(results)) == 1
