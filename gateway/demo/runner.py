"""``llmtap demo``: the whole path on loopback, printed as trace waterfalls.

One command starts a local OTLP receiver and the synthetic provider (threads of this
process), then ``llmtap serve`` and Envoy (child processes, on ports they pick), and
sends rounds of calls through Envoy with the official SDKs where installed (plain HTTP
otherwise). Each round is one trace: a root span made here, a span per step, and under
them the spans llmtap made from the traffic. Ctrl-C (or SIGTERM) stops everything;
``--once`` runs one round and exits 0 when every call's span arrived.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from llmtap.gateway import envoy_config
from llmtap.gateway.demo import calls as demo_calls
from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.procs import Envoy, Llmtap, stop_all
from llmtap.gateway.demo.receiver import Receiver, Span
from llmtap.gateway.demo.upstream import DemoUpstream, Timing
from llmtap.gateway.demo.waterfall import Waterfall

SDKS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google.genai": "google-genai",
    "boto3": "boto3",
    "ollama": "ollama",
    "cohere": "cohere",
}


class DemoStack:
    """Receiver, synthetic provider, llmtap and Envoy, started in that order."""

    def __init__(
        self,
        mode: str = "observability",
        speed: float = 1.0,
        workdir: Path | None = None,
        on_spans: Any = None,
    ) -> None:
        self.mode = mode
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="llmtap-demo-"))
        self.receiver = Receiver(on_spans=on_spans)
        self.upstream = HttpServer(DemoUpstream(Timing(speed=speed)))
        self.llmtap: Llmtap | None = None
        self.envoy: Envoy | None = None

    @property
    def url(self) -> str:
        assert self.envoy is not None
        return self.envoy.url

    def start(self) -> DemoStack:
        try:
            self.receiver.start()
            self.upstream.start()
            socket = f"unix:{self.workdir / 'llmtap.sock'}"
            self.llmtap = Llmtap(socket, self.receiver.endpoint, self.workdir, self.mode).start()
            opts = envoy_config.Options(
                mode=self.mode,
                listen=envoy_config.Address("127.0.0.1", 0),
                admin=envoy_config.Address("127.0.0.1", 0),
                ext_proc=envoy_config.Address.parse(socket, unix=True),
                upstream=envoy_config.Address("127.0.0.1", self.upstream.port),
            )
            self.envoy = Envoy(opts, self.workdir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for child in (self.envoy, self.llmtap):
            if child is not None:
                child.stop()
        self.upstream.stop()
        self.receiver.stop()

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


class Rounds:
    """Sends rounds of calls, each under a root span exported to the receiver."""

    def __init__(self, stack: DemoStack) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.stack = stack
        self.provider = TracerProvider(resource=Resource.create({"service.name": "llmtap-demo"}))
        exporter = OTLPSpanExporter(endpoint=stack.receiver.endpoint, insecure=True)
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("llmtap.demo")
        self.problems: list[str] = []
        # Import the SDKs now, not inside the first round's timed calls.
        for module in SDKS:
            if demo_calls.has_sdk(module):
                demo_calls.sdk(module)

    def run(self, n: int) -> tuple[str, int]:
        """One round; returns its trace id and how many spans it should produce."""
        from opentelemetry import trace

        expected = 1
        with self.tracer.start_as_current_span(f"demo round {n}") as root:
            trace_id = f"{root.get_span_context().trace_id:032x}"
            for i, wave in enumerate(demo_calls.WAVES, 1):
                with self.tracer.start_as_current_span(f"step {i}") as step:
                    span_id = f"{step.get_span_context().span_id:016x}"
                    headers = {"traceparent": _traceparent(trace_id, span_id)}
                    results = demo_calls.run_wave(wave, self.stack.url, headers)
                    for call, result in zip(wave, results, strict=True):
                        if isinstance(result, BaseException):
                            self.problems.append(f"{call.name}: {result!r}")
                            step.set_status(trace.StatusCode.ERROR)
                expected += 1 + len(wave)
        return trace_id, expected

    def close(self) -> None:
        self.provider.shutdown()


def _has_spans(trace_id: str, n: int) -> Callable[[list[Span]], bool]:
    return lambda spans: sum(s.trace_id == trace_id for s in spans) >= n


def _banner(stack: DemoStack, out: TextIO) -> None:
    have = [pip for mod, pip in SDKS.items() if demo_calls.has_sdk(mod)]
    missing = [pip for mod, pip in SDKS.items() if not demo_calls.has_sdk(mod)]
    assert stack.envoy is not None and stack.llmtap is not None
    lines = [
        f"llmtap demo ({stack.mode} mode), all on loopback:",
        f"  envoy      {stack.url}  (pid {stack.envoy.pid}, admin {stack.envoy.admin_url})",
        f"  llmtap     {stack.llmtap.listen}  (pid {stack.llmtap.pid})",
        f"  provider   http://{stack.upstream.address}  (synthetic: real wire formats)",
        f"  receiver   {stack.receiver.endpoint}  (OTLP/gRPC)",
        f"  calls via  SDKs: {', '.join(have) or 'none'}"
        + (f"; plain HTTP for {', '.join(missing)}" if missing else ""),
        f"  workdir    {stack.workdir}",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def run_demo(
    once: bool = False,
    mode: str = "observability",
    speed: float = 1.0,
    interval: float = 2.0,
    rounds: int = 0,
    out: TextIO | None = None,
    color: bool | None = None,
    keep_workdir: bool = False,
    timeout: float = 20.0,
) -> int:
    """Run the demo; returns the exit code (0: every span of every round arrived)."""
    out = out or sys.stdout
    waterfall = Waterfall(out, color=color)
    stack = DemoStack(mode, speed, on_spans=waterfall.add)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    code = 0
    sender: Rounds | None = None
    try:
        stack.start()
        _banner(stack, out)
        sender = Rounds(stack)
        n = 0
        while True:
            n += 1
            trace_id, expected = sender.run(n)
            try:
                stack.receiver.wait_for(
                    _has_spans(trace_id, expected), timeout, f"{expected} spans of round {n}"
                )
            except TimeoutError as exc:
                code = 1
                out.write(f"round {n}: {exc}\n")
            waterfall.flush(force=True)
            for problem in sender.problems:
                out.write(f"round {n}: call failed: {problem}\n")
            if sender.problems:
                code = 1
            sender.problems.clear()
            if once or (rounds and n >= rounds):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        out.write("\nstopping...\n")
    finally:
        if sender is not None:
            with contextlib.suppress(Exception):
                sender.close()
        stack.stop()
        stop_all()
        signal.signal(signal.SIGTERM, previous)
        if not keep_workdir:
            shutil.rmtree(stack.workdir, ignore_errors=True)
    out.write("demo stopped; no process left behind\n")
    out.flush()
    return code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``llmtap demo``."""
    parser.add_argument("--once", action="store_true", help="one round, print it, exit")
    parser.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0: Ctrl-C)")
    parser.add_argument("--mode", choices=envoy_config.MODES, default="observability")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="scale the synthetic model's delays (0.1 = ten times faster)",
    )
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")


def main(args: argparse.Namespace) -> int:
    """Entry point of ``llmtap demo``."""
    return run_demo(
        once=args.once,
        mode=args.mode,
        speed=args.speed,
        interval=args.interval,
        rounds=args.rounds,
        color=False if args.no_color else None,
        keep_workdir=args.keep_workdir,
    )


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="llmtap demo", description=__doc__)
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))
