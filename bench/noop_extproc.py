"""The transport floor: a grpc.aio ext_proc server on uvloop that only reads messages.

Configuration 2 of the load bench. Envoy runs ext_proc in observability mode against
it, exactly as against llmtap in observability mode; this server registers the same
generic handler llmtap does (raw bytes in, no protobuf decoding), the same server
options, and then does nothing with a message but count it. Whatever CPU it uses per
message is what grpc.aio on uvloop costs before any work: the floor llmtap is held to.

    python -m bench.noop_extproc --listen 127.0.0.1:50051
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


async def serve(listen: str) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.stream_stream_rpc_method_handler(process)}
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
    args = p.parse_args(argv)
    import uvloop

    uvloop.run(serve(args.listen))


if __name__ == "__main__":
    main()
