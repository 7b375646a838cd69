"""``llmtap serve``: the grpc.aio ext_proc server on uvloop.

* ``--listen HOST:PORT`` (TCP) or ``unix:/path``.
* ``--workers N``: N processes serve one TCP port (``SO_REUSEPORT``; the kernel
  spreads connections over them). The parent only supervises.
* The standard gRPC health service (``grpc.health.v1.Health``) reports SERVING for
  ``""`` and the ext_proc service, NOT_SERVING once shutdown began.
* SIGTERM/SIGINT: stop accepting streams, give open exchanges ``shutdown_grace``
  seconds to finish, end the rest (their spans say ``shutdown``), flush telemetry,
  exit.

``serve(settings)`` runs one server in the current event loop; ``run(settings)`` is
what the CLI calls (uvloop, workers, signals). Settings are read through
:meth:`TransportOptions.from_settings`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from llmtap.gateway.modes import TransportOptions
from llmtap.gateway.servicer import SERVICE, ExtProcServicer, default_start_exchange

__all__ = ["ExtProcServer", "add_arguments", "main", "run", "serve"]

log = logging.getLogger("llmtap.gateway")


def make_telemetry(settings: Any, worker_index: int = 0) -> Any:
    """The telemetry pipeline for ``settings`` (built per process: it owns threads)."""
    from llmtap.gateway.telemetry import Telemetry

    return Telemetry(settings, worker_index=worker_index)


class ExtProcServer:
    """One grpc.aio server: ext_proc servicer plus health, bound to one address."""

    def __init__(
        self,
        telemetry: Any,
        options: TransportOptions,
        start_exchange: Callable[[Any], Any] | None = None,
    ) -> None:
        self.options = options
        self.telemetry = telemetry
        self.servicer = ExtProcServicer(telemetry, options, start_exchange)
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        opts = self.options
        address = _grpc_address(opts.listen)
        grpc_options = [
            ("grpc.max_receive_message_length", opts.max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # Without workers, refuse to share the port with a stray second server.
            ("grpc.so_reuseport", 1 if opts.workers > 1 else 0),
            # Envoy pings its ext_proc connections (connection_keepalive) also while no
            # stream is open; gRPC's defaults answer pings more often than every 5 min
            # on an idle connection with GOAWAY (too_many_pings), churning connections.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
        server = grpc.aio.server(options=grpc_options)
        server.add_generic_rpc_handlers((self.servicer.handler(),))
        if opts.health:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        port = server.add_insecure_port(address)
        if port == 0 and not address.startswith("unix:"):
            raise OSError(f"cannot listen on {opts.listen}")
        self.port = port
        await _maybe_await(getattr(self.telemetry, "start", None))
        await server.start()
        self._server = server
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("ext_proc server listening on %s (pid %d)", opts.listen, os.getpid())

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: drain, cut what is left, flush telemetry. Idempotent."""
        if self._stopped.is_set() or self._server is None:
            self._stopped.set()
            return
        grace = self.options.shutdown_grace if grace is None else grace
        self.servicer.begin_shutdown()
        await self.health.enter_graceful_shutdown()
        log.info("shutting down: %d open exchanges, %ss grace", self.servicer.open_exchanges, grace)
        await self._server.stop(grace)
        cut = self.servicer.close_all("shutdown")
        if cut:
            log.info("ended %d exchanges cut by shutdown", cut)
        try:
            await _maybe_await(getattr(self.telemetry, "shutdown", None))
        except Exception:
            log.exception("flushing telemetry at shutdown failed")
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def _maybe_await(fn: Callable[[], Any] | None) -> None:
    if fn is not None:
        result = fn()
        if inspect.isawaitable(result):
            await result


def _grpc_address(listen: str) -> str:
    if listen.startswith("unix:"):
        return listen
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen wants HOST:PORT or unix:/path, got {listen!r}")
    return listen


async def serve(
    settings: Any,
    *,
    telemetry: Any = None,
    start_exchange: Callable[[Any], Any] | None = None,
    install_signals: bool = True,
) -> None:
    """Run one ext_proc server until SIGTERM/SIGINT (or cancellation), then stop it."""
    opts = TransportOptions.from_settings(settings)
    tel = telemetry if telemetry is not None else make_telemetry(settings)
    if start_exchange is None:
        start_exchange = default_start_exchange(settings)
    server = ExtProcServer(tel, opts, start_exchange)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await asyncio.shield(server.stop())


Factory = Callable[..., Any]


def _run_one(
    settings: Any,
    telemetry_factory: Factory | None,
    exchange_factory: Factory | None,
    worker_index: int = 0,
) -> None:
    _configure_logging(settings)
    tel = (telemetry_factory or make_telemetry)(settings, worker_index)
    start = exchange_factory(settings) if exchange_factory is not None else None
    main = serve(settings, telemetry=tel, start_exchange=start)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(main)
    else:
        uvloop.run(main)


def _worker(
    settings: Any,
    telemetry_factory: Factory | None,
    exchange_factory: Factory | None,
    worker_index: int,
) -> None:
    # The supervisor handles Ctrl-C; a worker stops on the SIGTERM it forwards.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _run_one(settings, telemetry_factory, exchange_factory, worker_index)


def run(
    settings: Any,
    *,
    telemetry_factory: Factory | None = None,
    exchange_factory: Factory | None = None,
) -> int:
    """Entry point of ``llmtap serve``; returns the process exit code.

    The factories (``(settings, worker_index) -> telemetry`` and
    ``settings -> start_exchange``) are called in each worker process, so with workers
    they must be picklable (module level); by default the real telemetry pipeline and
    ``ext.recognise``.
    """
    opts = TransportOptions.from_settings(settings)
    _grpc_address(opts.listen)
    if opts.workers <= 1:
        _run_one(settings, telemetry_factory, exchange_factory)
        return 0
    if opts.listen.startswith("unix:"):
        raise ValueError("--workers > 1 needs a TCP --listen (SO_REUSEPORT)")
    # spawn, not fork: grpc and the telemetry exporters must start fresh per process.
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker,
            args=(settings, telemetry_factory, exchange_factory, i),
            name=f"llmtap-worker-{i}",
        )
        for i in range(opts.workers)
    ]
    for p in procs:
        p.start()
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(timeout=0.5)
            if not p.is_alive() and p.exitcode not in (0, None) and not stopping:
                # One worker died: stop the rest and let the supervisor (systemd,
                # Kubernetes) restart the whole set with a clean slate.
                log.error("worker %s exited with %s; stopping", p.name, p.exitcode)
                code = 1
                forward(signal.SIGTERM, None)
    return code if code else max((p.exitcode or 0 for p in procs), default=0)


def _configure_logging(settings: Any) -> None:
    cfg = getattr(settings, "logging", None)
    if cfg is None:
        return
    from llmtap.gateway.logs import configure_logging

    configure_logging(cfg.level, cfg.format)


# -- CLI --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``llmtap serve`` flags (``--listen``, ``--workers``, ``--config``, ``--set``...)."""
    from llmtap.gateway.config import add_arguments as config_arguments

    config_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """``llmtap serve``: settings from flags, env and file, then :func:`run`."""
    from llmtap.gateway.config import ConfigError, settings_from_args

    try:
        settings = settings_from_args(args)
        return run(settings)
    except (ConfigError, ValueError) as e:
        print(f"llmtap serve: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="llmtap-serve")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
