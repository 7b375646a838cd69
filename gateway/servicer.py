"""The ``envoy.service.ext_proc.v3.ExternalProcessor/Process`` servicer (grpc.aio).

Registered as a generic handler without (de)serializers: requests arrive as the raw
bytes grpcio read and answers leave as bytes from ``extproc_wire``. One stream is one
HTTP exchange (:class:`~llmtap.gateway.exchange_state.ExchangeState`); this module owns
the I/O around it: answering at once, the per-exchange timeout, and turning every way a
stream can end (end of stream, Envoy resetting it, the client connection dropping, a
timeout, shutdown, a bug of ours) into exactly one ``close`` of its state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from llmtap.gateway.content import capture_enabled
from llmtap.gateway.exchange_state import ExchangeState
from llmtap.gateway.extproc_wire import decode_request
from llmtap.gateway.modes import TransportOptions

__all__ = ["METHOD", "SERVICE", "ExtProcServicer", "default_start_exchange"]

log = logging.getLogger("llmtap.gateway")

SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
METHOD = "Process"


def default_start_exchange(settings: Any = None) -> Callable[[Any], Any]:
    """``ext.recognise`` bound to its config (read once from ``settings``): the server
    section's knobs, and message content only when a span could carry it."""
    from llmtap.ext import ExtConfig, recognise

    config = ExtConfig.of(getattr(settings, "server", settings))
    if capture_enabled(settings) and not config.capture_content:
        config = dataclasses.replace(config, capture_content=True)

    def start(info: Any) -> Any:
        return recognise(info, config=config)

    return start


class ExtProcServicer:
    """Serves ext_proc streams; tracks open exchanges so shutdown can end them."""

    def __init__(
        self,
        telemetry: Any,
        options: TransportOptions | None = None,
        start_exchange: Callable[[Any], Any] | None = None,
    ) -> None:
        self._tel = telemetry
        self._opts = options or TransportOptions()
        self._start_exchange = start_exchange or default_start_exchange()
        self._open: set[ExchangeState] = set()
        self._shutting_down = False

    @property
    def open_exchanges(self) -> int:
        return len(self._open)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to register on a grpc.aio server (raw bytes in/out)."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {METHOD: grpc.stream_stream_rpc_method_handler(self.process)},
        )

    def begin_shutdown(self) -> None:
        """From now on a cancelled stream was cut by shutdown, not by Envoy."""
        self._shutting_down = True

    def close_all(self, reason: str = "shutdown") -> int:
        """End every exchange still open (their tasks did not get to); returns how many."""
        now = time.monotonic_ns()
        n = 0
        for state in list(self._open):
            self._open.discard(state)
            try:
                state.close(reason, now)
                n += 1
            except Exception:
                log.exception("closing an exchange at shutdown failed")
        return n

    async def process(self, requests: AsyncIterator[bytes], context: Any) -> None:
        state = ExchangeState(self._opts, self._tel, self._start_exchange, _metadata(context))
        self._open.add(state)
        reason = "eof"
        try:
            async with asyncio.timeout(self._opts.exchange_timeout or None):
                async for raw in requests:
                    now = time.monotonic_ns()
                    answer = state.on_message(decode_request(raw), now)
                    if answer is not None:
                        await context.write(answer)
                    state.drain()
                    if state.abandon:
                        break
        except TimeoutError:
            reason = "timeout"
            log.info("ext_proc exchange timed out after %ss", self._opts.exchange_timeout)
        except asyncio.CancelledError:
            reason = "shutdown" if self._shutting_down else "cancelled"
            raise
        except Exception:
            reason = "error"
            log.exception("ext_proc stream failed")
            try:
                self._tel.parse_error("internal")
            except Exception:
                log.exception("telemetry parse_error failed")
        finally:
            if self._shutting_down and reason in ("eof", "cancelled"):
                reason = "shutdown"
            if state in self._open:
                self._open.discard(state)
                try:
                    state.close(reason, time.monotonic_ns())
                except Exception:
                    log.exception("closing an exchange failed")


def _metadata(context: Any) -> dict[str, str]:
    try:
        md = context.invocation_metadata() or ()
    except Exception:
        return {}
    return {k: v for k, v in md if isinstance(v, str)}
