"""Incremental response-body decompression with a hard bound on the output.

``Decompressor(encoding)`` takes a ``Content-Encoding`` value (``gzip``, ``x-gzip``,
``deflate``, ``br``, ``zstd``, ``identity``, or a list such as ``"gzip, br"``, which
is undone last-applied first) and decodes the body chunk by chunk with one
decompression state per stream; it never restarts from the beginning.

Every decompression call asks the C library for at most ``WINDOW`` bytes (zlib
``max_length`` + ``unconsumed_tail``, brotli ``output_buffer_limit``, a zstd
stream writer with ``write_size``), so a bomb is caught after at most one window
past ``max_output``: ``error`` is set, the call that crossed the bound returns
nothing (its output is dropped rather than copied) and further input is ignored.
Memory: the output of one ``feed`` is held until it returns, and joining its
windows copies it once, so a single call costs up to twice its output.

Bad input never raises: ``error`` says what went wrong and at which offset of the
compressed input (the start of the chunk in which the library failed); output of
earlier library calls is still returned (zlib drops that of the failing call).
``identity`` passes chunks through untouched and unbounded (body size limits live
elsewhere).

The C libraries are the native part, so there is no Cython twin.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import IO, cast

import brotli
import zstandard

__all__ = ["MAX_OUTPUT", "WINDOW", "Decompressor"]

#: Default bound on the decompressed size of one body.
MAX_OUTPUT = 64 * 1024 * 1024
#: Most output asked of a library in one call.
WINDOW = 256 * 1024
#: Most input given to zlib in one call.
SLICE = 64 * 1024

Chunk = bytes | bytearray | memoryview
Emit = Callable[[bytes], None]

_ALIASES = {"x-gzip": "gzip"}


class _Invalid(Exception):
    """A stage found bad input; ``str()`` is the reason."""


class _Failed(Exception):
    """A stage failed; ``str()`` is the complete message for ``error``."""


class _Full(Exception):
    """The output passed ``max_output``."""


class _ZlibStage:
    """gzip (any number of members) or deflate (zlib-wrapped, else raw)."""

    def __init__(self, name: str, emit: Emit) -> None:
        self.name = name
        self._emit = emit
        self._d: zlib._Decompress | None = None
        self._head = b""  # deflate: first bytes, held until the header can be told

    def write(self, data: bytes) -> None:
        if self._d is None:
            if self.name == "gzip":
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self._head + data
                if len(data) < 2:
                    self._head = data
                    return
                self._head = b""
                cmf, flg = data[0], data[1]
                zlib_wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
                self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        # zlib copies the unconsumed input into a new bytes object on every call
        # that stops at max_length: give it bounded slices, not the whole chunk.
        view = memoryview(data)
        for i in range(0, len(view), SLICE):
            rest: bytes | memoryview = view[i : i + SLICE]
            while rest:
                d = self._d
                if d.eof:
                    if self.name != "gzip":
                        raise _Invalid("data after the end of the deflate stream")
                    d = self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # next member
                out = d.decompress(rest, WINDOW)
                if out:
                    self._emit(out)
                while len(out) == WINDOW or d.unconsumed_tail:
                    out = d.decompress(d.unconsumed_tail, WINDOW)
                    if out:
                        self._emit(out)
                rest = d.unused_data if d.eof else b""

    def finish(self) -> str | None:
        if self._head or (self._d is not None and not self._d.eof):
            return "compressed data ends early"
        return None


class _BrotliStage:
    name = "br"

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._d = brotli.Decompressor()
        self._seen = False

    def write(self, data: bytes) -> None:
        self._seen = True
        out = self._d.process(data, output_buffer_limit=WINDOW)
        if out:
            self._emit(out)
        while not self._d.can_accept_more_data():
            out = self._d.process(b"", output_buffer_limit=WINDOW)
            if out:
                self._emit(out)

    def finish(self) -> str | None:
        if self._seen and not self._d.is_finished():
            return "compressed data ends early"
        return None


class _Sink:
    """File-like target for zstandard's stream writer."""

    def __init__(self, emit: Emit) -> None:
        self.write_bytes = emit

    def write(self, data: bytes) -> int:
        self.write_bytes(bytes(data))
        return len(data)


class _ZstdStage:
    """zstd, any number of frames. A stream cut inside a frame is not detected:
    the stream writer does not expose the frame state."""

    name = "zstd"

    def __init__(self, emit: Emit) -> None:
        self._w = zstandard.ZstdDecompressor().stream_writer(
            cast(IO[bytes], _Sink(emit)), write_size=WINDOW, write_return_read=True
        )

    def write(self, data: bytes) -> None:
        self._w.write(data)

    def finish(self) -> str | None:
        return None


_Stage = _ZlibStage | _BrotliStage | _ZstdStage
_LIBRARY_ERRORS = (zlib.error, brotli.error, zstandard.ZstdError, _Invalid)


class Decompressor:
    """Decode one body compressed with ``encoding``; see the module docstring."""

    def __init__(self, encoding: str | None, max_output: int = MAX_OUTPUT) -> None:
        if max_output < 0:
            raise ValueError(f"max_output must be >= 0, got {max_output}")
        self._max = max_output
        self._error: str | None = None
        self._closed = False
        self._size = 0
        self._out: list[bytes] = []
        self._stages: list[_Stage] = []
        self._write: Emit = self._collect  # takes the wire bytes
        self._fed: list[int] = []  # compressed bytes given to each stage so far
        names = [n.strip().lower() for n in (encoding or "").split(",")]
        names = [_ALIASES.get(n, n) for n in names if n and n != "identity"]
        emit: Emit = self._collect
        # The encodings were applied left to right: undo them right to left, so
        # the last-listed stage gets the wire bytes and the first-listed one emits.
        for name in names:
            stage: _Stage
            if name in ("gzip", "deflate"):
                stage = _ZlibStage(name, emit)
            elif name == "br":
                stage = _BrotliStage(emit)
            elif name == "zstd":
                stage = _ZstdStage(emit)
            else:
                self._error = f"unsupported content-encoding {name!r}"
                self._stages = []
                break
            self._stages.append(stage)
            self._fed.append(0)
            emit = self._into(len(self._stages) - 1)
        self._write = emit

    @property
    def error(self) -> str | None:
        """The first problem (unsupported encoding, bad data, bomb), or ``None``."""
        return self._error

    @property
    def output_size(self) -> int:
        """Decompressed bytes produced so far (past ``max_output`` once it failed)."""
        return self._size

    def feed(self, data: Chunk) -> bytes:
        """Decompress the next chunk; returns whatever output it completes."""
        if self._error is not None or self._closed:
            return b""
        if not self._stages:
            return data if isinstance(data, bytes) else bytes(data)
        if len(data):
            self._run(bytes(data))
        return self._take()

    def close(self) -> bytes:
        """End of the body: flush, and flag a stream cut before its end."""
        if self._error is not None or self._closed:
            return b""
        self._closed = True
        # Outermost first: its flush may still feed the stages inside it.
        for i in range(len(self._stages) - 1, -1, -1):
            stage = self._stages[i]
            reason = stage.finish()
            if reason is not None:
                self._error = f"{stage.name}: {reason} (at compressed offset {self._fed[i]})"
                break
        return self._take()

    def _into(self, i: int) -> Emit:
        stage = self._stages[i]
        fed = self._fed

        def write(data: bytes) -> None:
            start = fed[i]
            fed[i] += len(data)
            try:
                stage.write(data)
            except _LIBRARY_ERRORS as exc:
                raise _Failed(
                    f"{stage.name}: invalid data in the chunk at compressed offset {start}: {exc}"
                ) from None

        return write

    def _run(self, data: bytes) -> None:
        try:
            self._write(data)
        except _Full:
            self._error = f"decompressed size exceeds {self._max} bytes"
            self._out = []
        except _Failed as exc:
            self._error = str(exc)

    def _collect(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._max:
            raise _Full
        self._out.append(piece)

    def _take(self) -> bytes:
        out = self._out
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)
