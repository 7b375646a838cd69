"""Decompressor (core/decompress.py): round trips in any split, bombs, bad input."""

from __future__ import annotations

import gzip
import random
import time
import tracemalloc
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from recorded import EXCHANGES, Exchange

from llmtap.core.decompress import MAX_OUTPUT, WINDOW, Decompressor

MiB = 1024 * 1024


def feed_all(d: Decompressor, chunks: list[bytes]) -> bytes:
    return b"".join([d.feed(c) for c in chunks] + [d.close()])


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def raw_deflate(data: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return co.compress(data) + co.flush()


def zstd_frames(*parts: bytes) -> bytes:
    return b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}

PAYLOAD = st.binary(max_size=3000) | st.text(max_size=2000).map(lambda s: (s * 7).encode())


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(sorted(ENCODERS)),
    data=PAYLOAD,
    cuts=st.lists(st.integers(1, 4000), max_size=12),
)
def test_round_trip_any_split(encoding: str, data: bytes, cuts: list[int]) -> None:
    wire = ENCODERS[encoding](data)
    d = Decompressor(encoding)
    assert feed_all(d, split_at(wire, cuts)) == data
    assert d.error is None and d.output_size == len(data)


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(PAYLOAD, min_size=1, max_size=4),
    cuts=st.lists(st.integers(1, 9000), max_size=12),
)
def test_multi_member_gzip_and_multi_frame_zstd(parts: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(gzip.compress(p) for p in parts)
    assert feed_all(Decompressor("gzip"), split_at(wire, cuts)) == b"".join(parts)
    wire = zstd_frames(*parts)
    assert feed_all(Decompressor("zstd"), split_at(wire, cuts)) == b"".join(parts)


@pytest.mark.parametrize("first", [1, 2, 5])
def test_deflate_zlib_wrapped_and_raw(first: int) -> None:
    data = b"deflate me " * 500
    for wire in (zlib.compress(data), raw_deflate(data)):
        # The header test needs two bytes: a 1-byte first chunk must be held back.
        d = Decompressor("deflate")
        assert feed_all(d, [wire[:first], wire[first:]]) == data
        assert d.error is None


def test_encoding_lists_are_undone_last_first() -> None:
    data = b'{"ok": true}' * 300
    wire = brotli.compress(gzip.compress(data))  # gzip applied first, then br
    for header in ("gzip, br", "GZIP,br", " gzip , identity, br "):
        d = Decompressor(header)
        assert feed_all(d, split_at(wire, [3, 50, 51])) == data
        assert d.error is None
    d = Decompressor("br, gzip")
    assert feed_all(d, [wire]) == b""
    assert d.error is not None and d.error.startswith(
        "gzip: invalid data in the chunk at compressed offset 0:"
    )


@pytest.mark.parametrize("encoding", [None, "", "identity", "Identity"])
def test_identity_passes_chunks_through(encoding: str | None) -> None:
    d = Decompressor(encoding)
    chunk = b"abc"
    assert d.feed(chunk) is chunk
    assert d.feed(bytearray(b"de")) == b"de" and d.feed(memoryview(b"f")) == b"f"
    assert d.close() == b"" and d.error is None


GZIPPED = [ex for ex in EXCHANGES if ex.response_gz is not None]


@pytest.mark.parametrize("ex", GZIPPED, ids=[ex.id for ex in GZIPPED])
def test_recorded_gzip_bodies(ex: Exchange) -> None:
    assert ex.response_gz is not None
    rnd = random.Random(ex.id)
    wire = ex.response_gz
    for cuts in ([], list(range(1, len(wire))), [rnd.randint(1, len(wire)) for _ in range(9)]):
        d = Decompressor(ex.header("content-encoding") or "gzip")
        assert feed_all(d, split_at(wire, cuts)) == ex.response
        assert d.error is None


# --- bombs -----------------------------------------------------------------------------------


def gzip_bomb(mib: int) -> bytes:
    """A gzip member inflating to ``mib`` MiB of zeros, built in O(size/1000).

    After a full flush a deflate compressor has no history, so the bytes it emits for
    the next MiB of zeros are the same every time: repeat them. The stream is never
    finished; the test stops long before its end."""
    co = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(MiB)
    co.compress(zeros)
    co.flush(zlib.Z_FULL_FLUSH)
    segment = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    assert segment == co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + segment * mib


@pytest.mark.parametrize("chunk", [4 * 1024, 16 * MiB])
def test_gzip_bomb_10_gib(chunk: int) -> None:
    bomb = gzip_bomb(10 * 1024)
    assert len(bomb) < 12 * MiB
    d = Decompressor("gzip")
    tracemalloc.start()
    start = time.perf_counter()
    out = 0
    for i in range(0, len(bomb), chunk):
        out += len(d.feed(bomb[i : i + chunk]))
    out += len(d.close())
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert d.error == f"decompressed size exceeds {MAX_OUTPUT} bytes"
    assert out < MAX_OUTPUT
    assert elapsed < 10
    # Small chunks: little output per call. One huge chunk: the call that crosses
    # the bound drops its windows instead of joining them.
    bound = 16 * MiB if chunk < MiB else MAX_OUTPUT + chunk + 4 * WINDOW
    assert peak < bound, peak


def bombs() -> dict[str, bytes]:
    zeros = bytes(16 * MiB)
    return {
        "gzip": gzip_bomb(16),
        "deflate": zlib.compress(zeros, 9),
        "br": brotli.compress(zeros, quality=5),
        "zstd": zstandard.ZstdCompressor(level=3).compress(zeros),
        "gzip, gzip": gzip.compress(gzip.compress(zeros, 9), 9),
    }


@pytest.mark.parametrize(("encoding", "wire"), bombs().items(), ids=list(bombs()))
def test_bombs_stop_one_window_past_the_bound(encoding: str, wire: bytes) -> None:
    cap = 1 * MiB
    tracemalloc.start()
    d = Decompressor(encoding, max_output=cap)
    got = feed_all(d, split_at(wire, list(range(0, len(wire), 4096))))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert d.error == f"decompressed size exceeds {cap} bytes"
    assert len(got) <= cap
    assert d.output_size <= cap + 2 * WINDOW
    assert peak < cap + 6 * WINDOW, peak
    assert d.feed(wire) == b"" and d.close() == b""


def test_output_bound_is_exact() -> None:
    data = bytes(range(256)) * 64
    wire = gzip.compress(data)
    d = Decompressor("gzip", max_output=len(data))
    assert feed_all(d, [wire]) == data and d.error is None
    d = Decompressor("gzip", max_output=len(data) - 1)
    assert feed_all(d, [wire]) == b""
    assert d.error == f"decompressed size exceeds {len(data) - 1} bytes"
    with pytest.raises(ValueError, match="max_output must be >= 0, got -1"):
        Decompressor("gzip", max_output=-1)


# --- bad input ---------------------------------------------------------------------------------


def test_unsupported_encoding() -> None:
    d = Decompressor("gzip, compress")
    assert d.error == "unsupported content-encoding 'compress'"
    assert d.feed(b"x") == b"" and d.close() == b""


def test_garbage_gzip() -> None:
    d = Decompressor("gzip")
    wire = gzip.compress(b"hello")
    assert d.feed(wire) == b"hello"
    assert d.feed(b"not gzip at all") == b""
    assert d.error == (
        "gzip: invalid data in the chunk at compressed offset 25: "
        "Error -3 while decompressing data: incorrect header check"
    )
    assert d.feed(wire) == b"" and d.close() == b""


def test_output_before_a_failure_is_kept() -> None:
    data = bytes(range(256)) * (3 * WINDOW // 256)
    wire = bytearray(gzip.compress(data))
    wire[-8] ^= 0xFF  # the CRC32 in the trailer
    d = Decompressor("gzip")
    out = feed_all(d, [bytes(wire)])
    assert d.error is not None and "incorrect data check" in d.error
    # The windows decoded before the call that met the bad trailer are kept.
    assert len(out) >= 2 * WINDOW and data.startswith(out)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_truncated_stream(encoding: str) -> None:
    wire = ENCODERS[encoding](bytes(range(256)) * 40)
    d = Decompressor(encoding)
    d.feed(wire[: len(wire) // 2])
    assert d.close() == b""
    assert (
        d.error == f"{encoding}: compressed data ends early (at compressed offset {len(wire) // 2})"
    )


def test_deflate_trailing_data() -> None:
    d = Decompressor("deflate")
    assert d.feed(zlib.compress(b"abc") + b"zz") == b"abc"
    assert d.error is not None
    assert d.error.endswith("data after the end of the deflate stream")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_empty_body(encoding: str) -> None:
    d = Decompressor(encoding)
    assert d.feed(b"") == b"" and d.close() == b"" and d.error is None


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br"]),
    wire=st.binary(max_size=200),
    cuts=st.lists(st.integers(1, 200), max_size=6),
)
def test_garbage_never_raises(encoding: str, wire: bytes, cuts: list[int]) -> None:
    d = Decompressor(encoding, max_output=4096)
    out = feed_all(d, split_at(wire, cuts))
    assert len(out) <= 4096
    assert d.feed(b"more") == b"" or d.error is None
