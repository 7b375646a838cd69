"""The transport floor: a grpc.aio ext_proc server on uvloop that only reads messages.

Configuration 2 of the load bench. Envoy runs ext_proc in observability mode against
it, exactly as against llmtap in observability mode; this server registers the same
generic handler llmtap does (raw bytes in, no protobuf decoding), the same server
options, and then does nothing with a message but count it. Whatever CPU it uses per
message is what grpc.aio on uvloop costs before any work: the floor llmtap is held to.

With ``--answer`` it is the floor of normal mode instead: every message is answered at
once with an empty response of the matching kind (CONTINUE), found from the message's
first bytes, as Envoy waits for it in normal mode.

    python -m bench.noop_extproc --listen 127.0.0.1:50051 [--answer]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
METHOD = "Process"

# The options llmtap's server sets (gateway/server.py): the floor must pay for the same.
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


class Counts:
    streams = 0
    messages = 0


async def process(requests: AsyncIterator[bytes], context: Any) -> None:
    Counts.streams += 1
    n = 0
    async for _ in requests:
        n += 1
    Counts.messages += n


# ProcessingRequest's oneof fields 2..7 (request_headers … response_trailers) are
# answered by ProcessingResponse's fields 1..6 of the same kind, here empty.
_ANSWERS = {field: bytes([(field - 1) << 3 | 2, 0]) for field in range(2, 8)}


def answer_for(message: bytes) -> bytes | None:
    """The empty answer to ``message`` (a serialized ProcessingRequest), or None."""
    i, n = 0, len(message)
    while i < n:
        tag, i = _varint(message, i)
        field, wire = tag >> 3, tag & 7
        if field in _ANSWERS:
            return _ANSWERS[field]
        if wire == 0:
            _, i = _varint(message, i)
        elif wire == 2:
            size, i = _varint(message, i)
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return None
    return None


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(buf):
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    return value, i


async def process_answering(requests: AsyncIterator[bytes], context: Any) -> None:
    Counts.streams += 1
    n = 0
    async for message in requests:
        n += 1
        answer = answer_for(message)
        if answer is not None:
            await context.write(answer)
    Counts.messages += n


async def serve(listen: str, answer: bool = False) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {METHOD: grpc.stream_stream_rpc_method_handler(process_answering if answer else process)},
    )
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(listen) == 0 and not listen.startswith("unix:"):
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    print(f"noop_extproc: {Counts.streams} streams, {Counts.messages} messages", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.noop_extproc", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT or unix:PATH")
    p.add_argument("--answer", action="store_true", help="answer every message (normal mode)")
    args = p.parse_args(argv)
    import uvloop

    uvloop.run(serve(args.listen, args.answer))


if __name__ == "__main__":
    main()
