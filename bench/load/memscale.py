"""The memory run: thousands of LLM streams open at once, RSS per open stream.

One ext_proc server (observability mode, sampling 1.0) behind as many Envoys as it
takes to keep each under the process's file limit (a proxied stream holds a downstream
and an upstream socket, and the hard ``ulimit -n`` here is 20000), all sharing one
upstream that answers the ``hold`` scenario's head and first pieces and then waits.
The uvloop client (``client.py hold``) opens the streams at a steady 500 a second
(a burst of 10,000 at once made Envoy 1.40 segfault with ext_proc in the upstream
filter chain, and is a test of accept rates, not of memory); once Envoy has them all open
on the ext_proc cluster (``upstream_rq_active``) and the server is idle, its RSS is
read, the upstream releases the streams, and for llmtap every stream must end with a
span. The same run against the no-op server gives the floor: what grpc.aio itself
keeps per open stream.

    RSS per stream = (RSS with N streams open - RSS idle after warm-up) / N
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load import procstat, scenarios
from bench.load.collector import Collector
from bench.load.configs import Config
from bench.load.stack import BenchEnvoy, Lane, Upstream, child_env, launch_all
from llmtap.gateway.envoy_config import EXT_PROC_CLUSTER

STREAMS_PER_ENVOY = 5000
DEFERRED_CLOSE_S = 1.0


def _active_streams(envoys: list[BenchEnvoy]) -> int:
    """ext_proc gRPC streams open, as Envoy sees them (works for any ext_proc server)."""
    name = f"cluster.{EXT_PROC_CLUSTER}.upstream_rq_active"
    return sum(e.stats(name).get(name, 0) for e in envoys)


def run(
    workdir: Path,
    upstream: Upstream,
    collector: Collector,
    streams: int,
    log: Callable[[str], None],
    in_listener: bool = False,
) -> dict[str, Any]:
    """The memory run for llmtap, then the same for the no-op server (the floor)."""
    out = {}
    for server in ("llmtap", "noop"):
        out[server] = _run_one(
            server, workdir / server, upstream, collector, streams, log, in_listener
        )
    return out


def _run_one(
    server: str,
    workdir: Path,
    upstream: Upstream,
    collector: Collector,
    streams: int,
    log: Callable[[str], None],
    in_listener: bool = False,
) -> dict[str, Any]:
    from bench.load.runner import settle, warm

    label = "llmtap observability" if server == "llmtap" else "no-op grpc.aio ext_proc"
    cfg = Config(f"memory-{server}", 4, label, server, "observability", 1.0)
    # A short deferred close: finished streams leave at once, the waits below stay short.
    lane = Lane(
        cfg,
        workdir,
        upstream.port,
        collector.endpoint,
        None,
        max_streams=streams + 1000,
        deferred_close_timeout=DEFERRED_CLOSE_S,
        ext_proc_in_listener=in_listener,
    )
    extra: list[BenchEnvoy] = []
    for i in range(1, math.ceil(streams / STREAMS_PER_ENVOY)):
        d = workdir / f"envoy{i}"
        d.mkdir(parents=True, exist_ok=True)
        extra.append(BenchEnvoy(lane.envoy.config, d))
    envoys = [lane.envoy, *extra]
    out: dict[str, Any] = {"server": server, "streams": streams, "envoys": len(envoys)}
    client: subprocess.Popen[str] | None = None
    try:
        launch_all([lane])
        for e in extra:
            e.launch()
        for e in extra:
            e.wait_ready()
        pid = lane.server_pid
        assert pid is not None
        # Warm-up: every code path and pool a stream touches, then quiet.
        for e in envoys:
            warm(e.port, scenarios.get("stream_20"), min(200, max(20, streams // 10)))
        time.sleep(DEFERRED_CLOSE_S + 1.0)  # the warm-up streams close
        settle(pid)
        out["rss_idle"] = procstat.rss_bytes(pid)

        urls = [f"http://127.0.0.1:{e.port}" for e in envoys]
        argv = [sys.executable, "-m", "bench.load.client", "hold", "--connections", str(streams)]
        for u in urls:
            argv += ["--url", u]
        t0 = time.monotonic()
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=child_env())
        first_line: list[str] = []
        reader = threading.Thread(
            target=lambda: first_line.append(client.stdout.readline() if client.stdout else ""),
            daemon=True,
        )
        reader.start()
        reader.join(timeout=180)
        out["client_open"] = first_line[0].strip() if first_line else "no answer"
        # The server may still be reading the first messages of the last streams.
        deadline = time.monotonic() + 60
        active = 0
        while time.monotonic() < deadline:
            active = _active_streams(envoys)
            if active >= streams:
                break
            time.sleep(0.5)
        settle(pid)
        out["open_s"] = time.monotonic() - t0
        out["active"] = active
        out["held_upstream"] = upstream.control("stats").get("held", 0)
        out["rss_open"] = procstat.rss_bytes(pid)
        out["per_stream_bytes"] = (out["rss_open"] - out["rss_idle"]) / max(active, 1)
        log(
            f"memory ({server}): {active} streams open, RSS {out['rss_idle'] / 2**20:.1f}"
            f" -> {out['rss_open'] / 2**20:.1f} MiB,"
            f" {out['per_stream_bytes'] / 1024:.1f} KiB per stream"
        )
        upstream.control("release")
        stdout, _ = client.communicate(timeout=180)
        for line in stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                out["client"] = json.loads(line[len("BENCH_JSON ") :])
        time.sleep(DEFERRED_CLOSE_S + 1.0)
        settle(pid)
        out["rss_after"] = procstat.rss_bytes(pid)
        out["peak_rss"] = procstat.peak_rss_bytes(pid)
        prom = lane.prometheus()
        out["outcomes"] = {
            k.split("outcome=")[1].rstrip("}"): v
            for k, v in prom.items()
            if k.startswith("llmtap_exchanges_total")
        }
        out["requests"] = sum(e.counters()["requests"] for e in envoys)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        for e in extra:
            e.stop()
        lane.stop()
    if server == "llmtap":
        out["spans_received"] = collector.count(lane.service)
    return out
