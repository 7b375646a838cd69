"""The bench run: every lane up at once, then turns in alternation.

For each scenario every configuration gets a turn in a fixed order, and the round
repeats (A B C … A B C …), so drift on the shared machine (other processes, the page
cache, thermal) lands on every configuration alike. A turn has two parts:

* **throughput**: ``turn_s`` seconds closed loop at ``connections`` connections. This
  is past saturation on a small machine: req/s is what the configuration sustains, and
  in observability mode Envoy does not wait for the ext_proc server, so a Python server
  falls behind and Envoy drops the streams it cannot hand over in time
  (``deferred_close_timeout``). Its requests carry the model ``bench-<scenario>-max``.
* **paced**: ``paced_s`` seconds at the scenario's ``paced_rps`` (the same
  ``connections``, each waiting before its next request), well below every
  configuration's capacity. CPU per request and per message, latency and the spans
  that must all arrive are measured here, on the model ``bench-<scenario>``.

Around each part: the ext_proc tree's CPU (``procstat``) and Envoy's counters (ext_proc
streams opened and failed, messages sent), and a wait until the ext_proc server is idle:
work that trails the load belongs to the part that caused it.
"""

from __future__ import annotations

import http.client
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import configs, procstat, scenarios
from bench.load.collector import Collector
from bench.load.configs import Config
from bench.load.loadgen import LoadGen, Result, merge
from bench.load.stack import BenchEnvoy, Lane, Upstream, launch_all

WARMUP_REQUESTS = 20
SETTLE_MAX_S = 10.0


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass
class Settings:
    quick: bool = False
    scenarios: list[str] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    turn_s: int = 1
    paced_s: int = 2
    rounds: int = 2
    connections: int = 8
    loadgen: str = "wrk"
    streams: int = 10_000
    memory: bool = True
    keep_workdir: bool = False
    custom: bool = False  # scenarios or configurations chosen by hand
    ext_proc_in_listener: bool = False


@dataclass
class Part:
    """One part of a turn: the load generator's result and what moved meanwhile."""

    result: Result | None
    cpu_s: float = 0.0
    cpu_ticks_s: float = 0.0  # the same from /proc/PID/stat's 10 ms ticks, a cross-check
    streams: int = 0  # ext_proc streams Envoy opened (requests, for the baseline)
    failed: int = 0  # ext_proc streams Envoy gave up on (failure_mode_allow)
    msgs: int = 0  # ext_proc messages Envoy sent
    settle_s: float = 0.0
    crashed: bool = False  # Envoy died during the part


@dataclass
class Turn:
    round: int
    throughput: Part
    paced: Part | None = None
    rss: int = 0
    crashed: bool = False


def _sum(parts: list[Part], attr: str) -> float:
    return sum(getattr(p, attr) for p in parts)


@dataclass
class Cell:
    scenario: str
    config: str
    turns: list[Turn] = field(default_factory=list)
    warm_streams: int = 0
    warm_completed: int = 0
    crashes: int = 0
    skipped: str = ""

    def good(self) -> list[Turn]:
        return [t for t in self.turns if not t.crashed and t.paced is not None]

    def summary(self) -> dict[str, Any]:
        turns = self.good()
        thr = [t.throughput for t in turns]
        paced = [t.paced for t in turns if t.paced is not None]
        thr_results = [p.result for p in thr if p.result is not None]
        paced_results = [p.result for p in paced if p.result is not None]
        done = sum(r.requests for r in thr_results)
        dur = sum(r.duration_s for r in thr_results)
        paced_done = sum(r.requests for r in paced_results)
        paced_dur = sum(r.duration_s for r in paced_results)
        streams, msgs, cpu = _sum(paced, "streams"), _sum(paced, "msgs"), _sum(paced, "cpu_s")
        thr_streams, thr_cpu = _sum(thr, "streams"), _sum(thr, "cpu_s")
        lat, lat_loaded = merge(paced_results), merge(thr_results)
        errors: dict[str, int] = {}
        for r in thr_results + paced_results:
            for k, v in r.errors.items():
                errors[k] = errors.get(k, 0) + v

        def ms(d: dict[str, float], k: str) -> float | None:
            return d[k] / 1000 if k in d else None

        return {
            "turns": len(turns),
            # throughput parts
            "rps": done / dur if dur else None,
            "completed_max": done,
            "streams_max": thr_streams,
            "failed_max": _sum(thr, "failed"),
            "cpu_us_per_req_max": thr_cpu / thr_streams * 1e6 if thr_streams else None,
            "p50_loaded_ms": ms(lat_loaded, "p50"),
            "p99_loaded_ms": ms(lat_loaded, "p99"),
            "settle_s_max": max((p.settle_s for p in thr), default=0.0),
            # paced parts
            "paced_rps": paced_done / paced_dur if paced_dur else None,
            "completed": paced_done,
            "streams": streams,
            "failed": _sum(paced, "failed"),
            "msgs": msgs,
            "msgs_per_req": msgs / streams if streams else None,
            "cpu_s": cpu,
            "cpu_ticks_s": _sum(paced, "cpu_ticks_s"),
            "cpu_us_per_req": cpu / streams * 1e6 if streams else None,
            "cpu_us_per_msg": cpu / msgs * 1e6 if msgs else None,
            "p50_ms": ms(lat, "p50"),
            "p99_ms": ms(lat, "p99"),
            "errors": errors,
            "rss_max": max((t.rss for t in turns), default=0),
            # spans: the paced parts plus the warm-up, and the throughput parts apart
            "expected_spans": self.warm_streams + streams,
            "warm_completed": self.warm_completed,
            "expected_spans_max": thr_streams,
            "crashes": self.crashes,
            "skipped": self.skipped,
        }


def warm(port: int, sc: scenarios.Scenario, n: int) -> None:
    """``n`` requests one after the other on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = dict(sc.headers_for_request())
        for _ in range(n):
            conn.request("POST", sc.path_for(sc.model), body=sc.body_for(sc.model), headers=headers)
            conn.getresponse().read()
    finally:
        conn.close()


def settle(pid: int | None, quiet_polls: int = 2, interval: float = 0.1) -> float:
    """Wait until the ext_proc tree stops using CPU; returns the seconds waited."""
    if pid is None:
        return 0.0
    t0 = time.monotonic()
    last = procstat.cpu_seconds(pid)
    quiet = 0
    while time.monotonic() - t0 < SETTLE_MAX_S:
        time.sleep(interval)
        now = procstat.cpu_seconds(pid)
        # An idle grpc.aio server still wakes up now and then: under 2 % CPU is idle.
        quiet = quiet + 1 if now - last < 0.02 * interval else 0
        last = now
        if quiet >= quiet_polls:
            break
    return time.monotonic() - t0


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.workdir = Path(tempfile.mkdtemp(prefix="llmtap-bench-"))
        self.loadgen = LoadGen(self.workdir, settings.loadgen)
        self.collector = Collector()
        self.upstream = Upstream(self.workdir)
        self.lanes: dict[str, Lane] = {}
        self.cells: dict[tuple[str, str], Cell] = {}
        self.restarts: dict[str, int] = {}
        self.lane_end: dict[str, dict[str, Any]] = {}
        self.memory: dict[str, Any] = {}
        self.started = time.time()
        #: Called after each scenario (``python -m bench`` saves the results so far).
        self.checkpoint: Callable[[Bench], Any] | None = None

    # -- setup -----------------------------------------------------------------------

    def start(self) -> None:
        from bench.naive_extproc import compile_protos

        self.collector.start()
        self.upstream.start()
        protos = None
        if any(c.server == "naive" for c in self.s.configs):
            protos = compile_protos(self.workdir / "protos")
        for cfg in self.s.configs:
            self.lanes[cfg.key] = Lane(
                cfg,
                self.workdir / cfg.key,
                self.upstream.port,
                self.collector.endpoint,
                protos,
                ext_proc_in_listener=self.s.ext_proc_in_listener,
            )
        t0 = time.monotonic()
        launch_all(list(self.lanes.values()))
        log(f"{len(self.lanes)} lanes up in {time.monotonic() - t0:.1f}s (work dir {self.workdir})")

    @staticmethod
    def _counters(lane: Lane) -> dict[str, int] | None:
        """Envoy's counters, or None if Envoy is gone (or going: its admin stops first)."""
        try:
            return lane.envoy.counters()
        except Exception:
            return None

    def _envoy_down(self, lane: Lane) -> bool:
        """After a failure: did Envoy die? Waits a moment for a crashing Envoy to exit."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if not lane.envoy.alive:
                return True
            if self._counters(lane) is not None:
                return False
            time.sleep(0.2)
        return True  # up but not answering its admin: as good as crashed

    def _restart_envoy(self, lane: Lane) -> None:
        # Its counters start again from zero: the lane's totals are void from now on.
        self.restarts[lane.cfg.key] = self.restarts.get(lane.cfg.key, 0) + 1
        lane.envoy.stop(grace=1.0)
        lane.envoy = BenchEnvoy(lane.envoy.config, lane.workdir)
        lane.envoy.launch()
        lane.envoy.wait_ready()

    # -- the turns -------------------------------------------------------------------

    def _part(
        self, lane: Lane, sc: scenarios.Scenario, seconds: int, model: str, think_ms: float
    ) -> Part:
        pid = lane.server_pid
        c0 = procstat.cpu_seconds(pid) if pid else 0.0
        t0 = procstat.cpu_ticks_seconds(pid) if pid else 0.0
        e0 = self._counters(lane)
        if e0 is None:
            return Part(None, crashed=True)
        result: Result | None = None
        try:
            result = self.loadgen.run(
                lane.url(""), sc, seconds, self.s.connections, model=model, think_ms=think_ms
            )
        except Exception as exc:  # a crashed Envoy makes wrk fail too
            log(f"    load on {lane.cfg.key} failed: {exc}")
        part = Part(result, settle_s=settle(pid))
        e1 = self._counters(lane) if lane.envoy.alive else None
        if e1 is None or (result is None and self._envoy_down(lane)):
            part.crashed = True
            return part
        part.cpu_s = (procstat.cpu_seconds(pid) if pid else 0.0) - c0
        part.cpu_ticks_s = (procstat.cpu_ticks_seconds(pid) if pid else 0.0) - t0
        key = "streams_started" if lane.cfg.server != "none" else "requests"
        part.streams = e1[key] - e0[key]
        part.failed = e1["streams_failed"] - e0["streams_failed"]
        part.msgs = e1["msgs_sent"] - e0["msgs_sent"]
        return part

    def turn(self, lane: Lane, sc: scenarios.Scenario, rnd: int) -> Turn:
        t = Turn(rnd, self._part(lane, sc, self.s.turn_s, sc.model_max, 0.0))
        if t.throughput.crashed:
            t.crashed = True
            return t
        think_ms = self.s.connections / sc.paced_rps * 1000
        t.paced = self._part(lane, sc, self.s.paced_s, sc.model, think_ms)
        pid = lane.server_pid
        t.rss = procstat.rss_bytes(pid) if pid else 0
        t.crashed = t.paced.crashed
        return t

    @classmethod
    def _opened(cls, lane: Lane) -> int | None:
        """Exchanges the lane's ext_proc server was told about (requests for the baseline).

        Envoy runs ext_proc in the upstream filter chain: a request the client gives up
        on before an upstream connection is assigned never reaches ext_proc, so it
        cannot have a span. None if Envoy is not answering.
        """
        c = cls._counters(lane)
        if c is None:
            return None
        return c["streams_started"] if lane.cfg.server != "none" else c["requests"]

    def run_scenario(self, name: str) -> None:
        sc = scenarios.get(name)
        for key, lane in self.lanes.items():
            cell = self.cells[(name, key)] = Cell(name, key)
            before = self._opened(lane)
            try:
                warm(lane.envoy.port, sc, WARMUP_REQUESTS)
                after = self._opened(lane)
                if before is None or after is None:
                    raise ConnectionError("Envoy's admin stopped answering")
            except Exception as exc:
                log(f"  warm-up of {key} on {name} failed: {exc}")
                if self._envoy_down(lane):
                    cell.crashes += 1
                    cell.skipped = "Envoy crashed in warm-up"
                    self._restart_envoy(lane)
                else:
                    cell.skipped = f"warm-up failed: {exc}"
                continue
            cell.warm_streams = after - before
            cell.warm_completed = WARMUP_REQUESTS
        for rnd in range(self.s.rounds):
            for key, lane in self.lanes.items():
                cell = self.cells[(name, key)]
                if cell.skipped:
                    continue
                if lane.server is not None and not lane.server.alive:
                    cell.skipped = "ext_proc server died"
                    continue
                try:
                    t = self.turn(lane, sc, rnd)
                except Exception as exc:  # one broken cell must not end the whole run
                    log(f"  {name} {key}: turn failed: {exc!r}")
                    cell.skipped = f"turn failed: {exc}"
                    continue
                cell.turns.append(t)
                if t.crashed:
                    cell.crashes += 1
                    cell.skipped = "Envoy crashed under load"
                    log(f"  {name} {key}: Envoy crashed (see {lane.envoy.log_path})")
                    self._restart_envoy(lane)
                    continue
                r, p = t.throughput.result, t.paced
                rps = r.requests / r.duration_s if r and r.duration_s else 0.0
                paced = ""
                if p is not None and p.result is not None and p.streams:
                    paced = (
                        f"  paced {p.result.requests / p.result.duration_s:6.1f} req/s"
                        f"  cpu {p.cpu_s / p.streams * 1e6:6.0f} us/req"
                    )
                log(
                    f"  {name:12} r{rnd} {key:14} max {rps:7.1f} req/s"
                    f" (settle {t.throughput.settle_s:.1f}s){paced}"
                )

    def run(self) -> None:
        self.start()
        try:
            for name in self.s.scenarios:
                log(f"scenario {name}: {scenarios.get(name).title}")
                self.run_scenario(name)
                if self.checkpoint is not None:
                    self.checkpoint(self)
            self.finish_lanes()
        finally:
            self.stop_lanes()
        if self.s.memory:
            self.run_memory()
        self.upstream.stop()
        self.collector.stop()
        if not self.s.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the end ---------------------------------------------------------------------

    def finish_lanes(self) -> None:
        # Every part ended with the servers idle; the spans still batched are flushed when
        # the servers stop (SIGTERM), after this.
        time.sleep(1.0)
        for key, lane in self.lanes.items():
            pid = lane.server_pid
            counters = self._counters(lane)
            valid = counters is not None and not self.restarts.get(key)
            self.lane_end[key] = {
                "envoy_restarts": self.restarts.get(key, 0),
                "prometheus": lane.prometheus(),
                "peak_rss": procstat.peak_rss_bytes(pid) if pid else 0,
                "requests_total": counters["requests"] if counters and valid else None,
                "streams_total": self._opened(lane) if valid else None,
            }

    def stop_lanes(self) -> None:
        threads = [threading.Thread(target=lane.stop) for lane in self.lanes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for key, lane in self.lanes.items():
            end = self.lane_end.setdefault(key, {})
            end["spans_total"] = self.collector.count(lane.service)
            end["spans_unattributed"] = self.collector.count(lane.service, "")

    def run_memory(self) -> None:
        from bench.load import memscale

        self.memory = memscale.run(
            self.workdir / "memory",
            self.upstream,
            self.collector,
            self.s.streams,
            log,
            self.s.ext_proc_in_listener,
        )

    def cell_summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (name, key), cell in self.cells.items():
            summary = cell.summary()
            lane = self.lanes[key]
            model = scenarios.get(name).model
            exports = lane.cfg.exports_spans
            max_model = scenarios.get(name).model_max
            summary["spans_received"] = (
                self.collector.count(lane.service, model) if exports else None
            )
            summary["spans_received_max"] = (
                self.collector.count(lane.service, max_model) if exports else None
            )
            prom = self.lane_end.get(key, {}).get("prometheus", {})
            tokens = [
                v
                for k, v in prom.items()
                if k.startswith("gen_ai_client_token_usage_count{")
                and f"gen_ai_request_model={model}," in k
                and "gen_ai_token_type=input" in k
            ]
            summary["tokens_recorded"] = sum(tokens) if lane.cfg.server == "llmtap" else None
            out.setdefault(name, {})[key] = summary
        return out


def results(bench: Bench) -> dict[str, Any]:
    """Everything the report needs, as plain data (what ``--out`` writes)."""
    from bench.machine import banner, describe

    s = bench.s
    return {
        "version": 1,
        "mode": "quick" if s.quick else "custom" if s.custom else "full",
        "machine": describe(),
        "machine_banner": banner(),
        "envoy": envoy_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(bench.started)),
        "elapsed_s": time.time() - bench.started,
        "settings": {
            "turn_s": s.turn_s,
            "paced_s": s.paced_s,
            "rounds": s.rounds,
            "connections": s.connections,
            "loadgen": s.loadgen,
            "streams": s.streams if s.memory else 0,
            "ext_proc_chain": "listener" if s.ext_proc_in_listener else "upstream",
        },
        "scenarios": {
            n: {
                "title": sc.title,
                "path": sc.path,
                "pieces": len(sc.pieces),
                "body_bytes": sc.body_bytes,
                "events": sc.events,
                "streaming": sc.streaming,
                "paced_rps": sc.paced_rps,
            }
            for n, sc in ((n, scenarios.get(n)) for n in s.scenarios)
        },
        "configs": {
            c.key: {
                "number": c.number,
                "label": c.label,
                "title": c.title,
                "server": c.server,
                "envoy_mode": c.envoy_mode,
                "sampling": c.sampling,
                "workers": c.workers,
            }
            for c in s.configs
        },
        "cells": bench.cell_summaries(),
        "lanes": bench.lane_end,
        "memory": bench.memory,
    }


def envoy_version() -> str:
    import subprocess

    from llmtap.gateway.demo.procs import envoy_binary

    try:
        r = subprocess.run(
            [envoy_binary(), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = r.stdout.strip().split("version:")[-1].strip()
    return text.split("/")[1] if "/" in text else text


def default_settings(quick: bool) -> Settings:
    if quick:
        return Settings(
            quick=True,
            scenarios=list(scenarios.QUICK),
            configs=configs.select(None, quick=True),
            turn_s=1,
            paced_s=1,
            rounds=2,
            streams=1000,
        )
    return Settings(
        scenarios=list(scenarios.NAMES),
        configs=configs.select(None, quick=False),
    )
