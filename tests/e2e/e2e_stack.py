"""The e2e stack as plain code (the fixtures in conftest.py and the tests share it).

Kept out of conftest.py on purpose: several test folders have a ``conftest.py``, and a
``from conftest import ...`` would get whichever was imported last.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorded import EXCHANGES
from replay import HEADER, Replay

from llmtap.gateway import envoy_config as ec
from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.procs import Envoy, Llmtap
from llmtap.gateway.demo.receiver import Receiver, Span

MODES = ("observability", "normal")
AZURE_HOST = "llmtap-e2e.openai.azure.com"
SPAN_TIMEOUT = 20.0


@dataclass(frozen=True)
class Caller:
    """The span a test pretends to be in: the call's ``traceparent`` points at it."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Caller:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


@dataclass
class Stack:
    mode: str
    envoy: Envoy
    llmtap: Llmtap
    receiver: Receiver
    replay: Replay
    workdir: Path
    #: Traces whose span a test took; ``check_one_span_each`` looks again at the end.
    traces: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.envoy.url

    def base(self, provider: str) -> str:
        return f"{self.url}/{provider}"

    def headers(self, fixture: str, caller: Caller, **extra: str) -> dict[str, str]:
        return {HEADER: fixture, "traceparent": caller.traceparent, **extra}

    def span_for(self, caller: Caller, timeout: float = SPAN_TIMEOUT) -> Span:
        """The one span of ``caller``'s trace (waits for it to be exported)."""
        spans = self.receiver.wait_for(
            lambda all_spans: [s for s in all_spans if s.trace_id == caller.trace_id],
            timeout,
            f"span in trace {caller.trace_id} ({self.mode} mode)",
        )
        assert len(spans) == 1, f"one call made {len(spans)} spans: {[s.name for s in spans]}"
        self.traces.append(caller.trace_id)
        return spans[0]

    def check_one_span_each(self, settle: float = 1.0) -> None:
        """A late duplicate would arrive after ``span_for`` returned: look again."""
        time.sleep(settle)
        spans = self.receiver.snapshot()
        counts = {t: sum(s.trace_id == t for s in spans) for t in self.traces}
        extra = {t: n for t, n in counts.items() if n != 1}
        assert not extra, f"calls with more than one span ({self.mode} mode): {extra}"


def envoy_options(mode: str, socket: str, upstream_port: int) -> ec.Options:
    providers = ec.default_providers()
    providers["azure"] = ec.Provider("azure", AZURE_HOST)
    return ec.Options(
        mode=mode,
        listen=ec.Address("127.0.0.1", 0),
        admin=ec.Address("127.0.0.1", 0),
        ext_proc=ec.Address.parse(socket, unix=True),
        upstream=ec.Address("127.0.0.1", upstream_port),
        providers=providers,
        # A Python server on a shared 2-core machine: be generous before failing open.
        message_timeout=2.0,
    )


@contextmanager
def running_stack(
    mode: str,
    receiver: Receiver,
    replay: HttpServer,
    workdir: Path,
    llmtap_args: tuple[str, ...] = (),
) -> Iterator[Stack]:
    socket = f"unix:{workdir / 'llmtap.sock'}"
    llmtap = Llmtap(socket, receiver.endpoint, workdir, mode, llmtap_args)
    envoy = Envoy(envoy_options(mode, socket, replay.port), workdir)
    try:
        llmtap.start()
        envoy.start()
        handler = replay.handler
        assert isinstance(handler, Replay)
        yield Stack(mode, envoy, llmtap, receiver, handler, workdir)
    finally:
        envoy.stop()
        llmtap.stop()


def expected(fixture: str) -> dict[str, Any]:
    return next(e for e in EXCHANGES if e.id == fixture).meta["expected"]
