"""Starting and stopping the bench's processes: the upstream and one lane per configuration.

A lane is an Envoy plus its ext_proc server (none for the baseline). Processes are
``gateway/demo/procs.py`` children: own process group, SIGTERM then SIGKILL, killed
with the bench if it dies. Every lane is launched first and waited for afterwards, so
starting a dozen of them takes about as long as starting the slowest.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.load import configs
from bench.load.configs import Config
from llmtap.gateway import envoy_config as ec
from llmtap.gateway.demo.procs import Child, Envoy, Llmtap, grpc_serving, wait_until

REPO = Path(__file__).resolve().parents[2]
INGRESS = "http.llmtap_ingress."
#: With llmtap workers: ext_proc streams per HTTP/2 connection (see configs.bootstrap).
WORKER_STREAMS_PER_CONNECTION = 8
# Envoy's /stats?filter= is a regex; the full dump is thousands of lines.
_COUNTER_FILTER = urllib.parse.quote(r"downstream_rq_(total|2xx)$|\.ext_proc\.")


def free_port(pairs: int = 1) -> int:
    """A loopback port (and the ``pairs - 1`` after it) that nothing listens on now.

    Picked below the kernel's ephemeral range (32768+ on Linux): the bench opens
    thousands of outgoing connections, and a port handed out by ``bind(0)`` could be
    taken by one of them before the server that was meant to listen on it starts.
    """
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000 - pairs)
        try:
            for p in range(port, port + pairs):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise OSError("no free port found in 20000-32000")


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def python_child(name: str, module: str, args: list[str], workdir: Path) -> Child:
    argv = [sys.executable, "-m", module, *args]
    return Child(name, argv, env=child_env(), log=workdir / f"{name}.log")


class BenchEnvoy(Envoy):
    """``procs.Envoy`` on a bootstrap given as data, launched without waiting."""

    def __init__(self, config: dict[str, Any], workdir: Path, concurrency: int = 2) -> None:
        super().__init__(ec.Options(), workdir, concurrency)
        self.config = config

    def launch(self) -> None:
        self.config_path.write_text(ec.render(self.config))
        with contextlib.suppress(FileNotFoundError):
            self.admin_path.unlink()
        Child.start(self)

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.admin_url = "http://" + wait_until(
            lambda: self.admin_path.read_text().strip(), timeout, "envoy admin address", self
        )
        wait_until(lambda: self.admin("/ready") == "LIVE", timeout, "envoy to be ready", self)
        self.port = wait_until(self._listener_port, timeout, "envoy listener port", self)

    def counters(self) -> dict[str, int]:
        """Requests through the listener and ext_proc messages, summed over clusters."""
        stats = self.stats(_COUNTER_FILTER)
        out = {
            "requests": stats.get(INGRESS + "downstream_rq_total", 0),
            "responses_2xx": stats.get(INGRESS + "downstream_rq_2xx", 0),
            "msgs_sent": 0,
            "msgs_received": 0,
            "streams_started": 0,
            "streams_failed": 0,
            "failure_mode_allowed": 0,
            "message_timeouts": 0,
        }
        for name, value in stats.items():
            if ".ext_proc." not in name:
                continue
            for key, suffix in (
                ("msgs_sent", ".stream_msgs_sent"),
                ("msgs_received", ".stream_msgs_received"),
                ("streams_started", ".streams_started"),
                ("streams_failed", ".streams_failed"),
                ("failure_mode_allowed", ".failure_mode_allowed"),
                ("message_timeouts", ".message_timeouts"),
            ):
                if name.endswith(suffix):
                    out[key] += value
        return out


class Upstream(Child):
    def __init__(self, workdir: Path) -> None:
        self.port_file = workdir / "upstream.port"
        argv = [sys.executable, "-m", "bench.load.upstream", "--port-file", str(self.port_file)]
        super().__init__("upstream", argv, env=child_env(), log=workdir / "upstream.log")
        self.port = 0

    def start(self) -> Upstream:
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()
        super().start()
        self.port = int(
            wait_until(lambda: self.port_file.read_text().strip(), 30, "upstream port", self)
        )
        return self

    def control(self, what: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/_bench/{what}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc: dict[str, Any] = json.loads(r.read())
        return doc


def _grpc_ready(address: str) -> bool:
    import grpc

    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=1)
    return True


class Lane:
    """One configuration: its Envoy, its ext_proc server, where it reports."""

    def __init__(
        self,
        cfg: Config,
        workdir: Path,
        upstream_port: int,
        collector: str,
        protos: Path | None,
        *,
        max_streams: int = 10_000,
        deferred_close_timeout: float = 5.0,
        ext_proc_in_listener: bool = False,
    ) -> None:
        self.cfg = cfg
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.service = f"bench-{cfg.key}"
        self.ext_port = free_port()
        self.address = f"127.0.0.1:{self.ext_port}"
        self.prom_port = free_port(cfg.workers) if cfg.server == "llmtap" else 0
        self.server: Child | None = None
        if cfg.server == "noop":
            args = ["--listen", self.address]
            if cfg.envoy_mode != "observability":
                args.append("--answer")
            self.server = python_child("noop", "bench.noop_extproc", args, workdir)
        elif cfg.server == "naive":
            assert protos is not None
            args = ["--listen", self.address, "--protos", str(protos)]
            args += ["--otlp-endpoint", collector, "--service-name", self.service]
            args += ["--sampling", str(cfg.sampling if cfg.sampling is not None else 1.0)]
            self.server = python_child("naive", "bench.naive_extproc", args, workdir)
        elif cfg.server == "llmtap":
            extra = ["--service-name", self.service, "--log-level", "warning"]
            extra += ["--prometheus-port", str(self.prom_port)]
            extra += ["--set", "metrics.prometheus_host=127.0.0.1"]
            if cfg.sampling is not None and cfg.sampling < 1.0:
                extra += ["--sampler", "parentbased_traceidratio"]
                extra += ["--sampler-arg", f"{cfg.sampling:g}"]
            if cfg.workers > 1:
                extra += ["--workers", str(cfg.workers)]
            env = child_env(OTEL_METRICS_EXPORTER="prometheus", OTEL_BSP_SCHEDULE_DELAY="5000")
            self.server = Llmtap(self.address, collector, workdir, cfg.envoy_mode, extra, env)
        per_connection = WORKER_STREAMS_PER_CONNECTION if cfg.workers > 1 else None
        boot = configs.bootstrap(
            cfg,
            ext_proc_port=self.ext_port,
            upstream_port=upstream_port,
            max_streams=max_streams,
            ext_proc_streams_per_connection=per_connection,
            deferred_close_timeout=deferred_close_timeout,
            ext_proc_in_listener=ext_proc_in_listener,
        )
        self.envoy = BenchEnvoy(boot, workdir)

    @property
    def server_pid(self) -> int | None:
        return self.server.pid if self.server is not None and self.server.alive else None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.envoy.port}{path}"

    def launch(self) -> None:
        if self.server is not None:
            Child.start(self.server)
        self.envoy.launch()

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.server is not None:
            check = grpc_serving if self.cfg.server == "llmtap" else _grpc_ready
            wait_until(lambda: check(self.address), timeout, f"{self.cfg.key} server", self.server)
        self.envoy.wait_ready(timeout)

    def prometheus(self) -> dict[str, float]:
        """llmtap's metrics, summed over workers: ``{"name{label=value,...}": value}``."""
        out: dict[str, float] = {}
        if self.cfg.server != "llmtap":
            return out
        for i in range(self.cfg.workers):
            url = f"http://127.0.0.1:{self.prom_port + i}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    key = f"{s.name}{{{labels}}}"
                    out[key] = out.get(key, 0.0) + s.value
        return out

    def stop(self) -> None:
        self.envoy.stop()
        if self.server is not None:
            # Long enough for llmtap/the SDK to flush the spans they still hold.
            self.server.stop(grace=20.0)


def launch_all(lanes: list[Lane], timeout: float = 90.0) -> None:
    for lane in lanes:
        lane.launch()
    deadline = time.monotonic() + timeout
    for lane in lanes:
        lane.wait_ready(max(5.0, deadline - time.monotonic()))
