"""Server startup: unix sockets, health, SO_REUSEPORT workers, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from extproc_helpers import (
    PROCESS,
    FakeExt,
    FakeTelemetry,
    LoopThread,
    parse_response,
    req_body,
    req_headers,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmtap.gateway import server as srv
from llmtap.gateway.modes import TransportOptions
from llmtap.gateway.servicer import SERVICE

HERE = Path(__file__).resolve().parent

EXCHANGE = [
    req_headers([(":path", "/v1/chat/completions"), (":method", "POST")]),
    req_headers([(":status", "200")], response=True),
    req_body(b"data: [DONE]\n\n", eos=True),
]


@pytest.fixture(scope="module")
def lt():
    loop = LoopThread()
    yield loop
    loop.close()


async def health(target: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return reply.status


async def play(target: str, messages=EXCHANGE) -> list[bytes]:
    async with grpc.aio.insecure_channel(target) as ch:
        call = ch.stream_stream(PROCESS, request_serializer=None, response_deserializer=None)()
        out = []
        for m in messages:
            await call.write(m)
            out.append(await call.read())
        await call.done_writing()
        await call.code()
        return out


def test_serve_on_a_unix_socket(lt, tmp_path) -> None:
    sock = tmp_path / "llmtap.sock"
    tel, ext = FakeTelemetry(), FakeExt()
    opts = TransportOptions(listen=f"unix:{sock}", shutdown_grace=1)
    task = lt.run(_start(srv.serve(opts, telemetry=tel, start_exchange=ext, install_signals=False)))
    target = f"unix:{sock}"
    _wait(lambda: sock.exists())
    assert lt.run(health(target)) == health_pb2.HealthCheckResponse.SERVING
    assert lt.run(health(target, SERVICE)) == health_pb2.HealthCheckResponse.SERVING
    answers = lt.run(play(target))
    assert [parse_response(a).WhichOneof("response") for a in answers] == [
        "request_headers",
        "response_headers",
        "response_body",
    ]
    assert tel.finished == ["complete"]
    lt.run(_cancel(task))
    assert tel.flushed == 1  # telemetry flushed on the way out


def test_unknown_health_service(lt) -> None:
    server = srv.ExtProcServer(FakeTelemetry(), TransportOptions(listen="127.0.0.1:0"), FakeExt())
    lt.run(server.start())
    try:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            lt.run(health(f"127.0.0.1:{server.port}", "no.such.Service"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        lt.run(server.stop(0))
        lt.run(server.stop(0))  # idempotent


def test_bad_listen_and_workers_on_unix() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        srv.run(TransportOptions(listen="localhost"))
    with pytest.raises(ValueError, match="TCP"):
        srv.run(TransportOptions(listen="unix:/tmp/x.sock", workers=2))


def test_port_taken_without_workers_fails(lt) -> None:
    a = srv.ExtProcServer(FakeTelemetry(), TransportOptions(listen="127.0.0.1:0"), FakeExt())
    lt.run(a.start())
    try:
        b = srv.ExtProcServer(
            FakeTelemetry(), TransportOptions(listen=f"127.0.0.1:{a.port}"), FakeExt()
        )
        with pytest.raises(Exception, match=r"127\.0\.0\.1"):
            lt.run(b.start())
    finally:
        lt.run(a.stop(0))


# -- real processes ----------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from extproc_helpers import fake_ext_factory, file_telemetry_factory
    from llmtap.gateway import server
    from llmtap.gateway.modes import TransportOptions
    opts = TransportOptions(listen=sys.argv[1], workers=int(sys.argv[2]), shutdown_grace=1.0)
    sys.exit(server.run(opts, telemetry_factory=file_telemetry_factory,
                        exchange_factory=fake_ext_factory))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listeners(port: int) -> int:
    """Listening TCP sockets on ``port`` (state 0A in /proc/net/tcp{,6}; grpc binds
    127.0.0.1 as a v4-mapped IPv6 socket)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def _spawn(tmp_path: Path, workers: int) -> tuple[subprocess.Popen, int, Path]:
    port = _free_port()
    log = tmp_path / "tel.log"
    env = {
        **os.environ,
        "LLMTAP_TEST_TEL_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"127.0.0.1:{port}", str(workers)], env=env
    )
    return proc, port, log


def _wait_serving(lt, target: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            if lt.run(health(target)) == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def test_workers_share_the_port_and_stop_on_sigterm(lt, tmp_path) -> None:
    proc, port, log = _spawn(tmp_path, workers=2)
    try:
        target = f"127.0.0.1:{port}"
        _wait_serving(lt, target, proc)
        _wait(lambda: _listeners(port) == 2, timeout=20)
        for _ in range(8):
            assert len(lt.run(play(target))) == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = log.read_text().split("\n")
    assert sum(line.endswith("finished complete") for line in lines) == 8
    flushers = {line.split()[0] for line in lines if line.endswith("flushed")}
    assert len(flushers) == 2  # every worker flushed its telemetry
    assert _listeners(port) == 0


def test_sigterm_ends_open_exchanges(lt, tmp_path) -> None:
    proc, port, log = _spawn(tmp_path, workers=1)
    target = f"127.0.0.1:{port}"
    try:
        _wait_serving(lt, target, proc)

        async def hang_then_sigterm():
            async with grpc.aio.insecure_channel(target) as ch:
                call = ch.stream_stream(
                    PROCESS, request_serializer=None, response_deserializer=None
                )()
                for m in [*EXCHANGE[:2], req_body(b"data: {}\n\n")]:
                    await call.write(m)
                    await call.read()
                proc.send_signal(signal.SIGTERM)
                # The server cuts the stream once its grace period is over.
                try:
                    while await call.read() is not grpc.aio.EOF:
                        pass
                except grpc.aio.AioRpcError as e:
                    return e.code()
                return await call.code()

        code = lt.run(hang_then_sigterm(), timeout=20)
        assert code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = log.read_text().split("\n")
    assert [line.split(" ", 1)[1] for line in lines if line] == ["finished shutdown", "flushed"]


# -- helpers -----------------------------------------------------------------------------


async def _start(coro):
    return asyncio.ensure_future(coro)


async def _cancel(task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
