"""The load generator: wrk with a Lua script per scenario, or the uvloop client.

wrk is preferred: it is C on epoll, one thread here, and costs the machine a fraction
of what a Python client does at the same request rate (the bench and everything it
measures share two cores). Its ``done`` hook prints the same JSON line the uvloop
client prints, so a turn looks the same whichever ran it.

Latency quantiles come as a curve (0.5 % steps and a fine tail); :func:`merge`
combines the curves of several turns weighted by their request counts, which gives
the quantiles of all the turns' requests together (to the curve's resolution).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import scenarios
from bench.load.client import QUANTILES
from bench.load.stack import child_env

WRK = "wrk"

_DONE = """
local quantiles = {%(quantiles)s}
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for i, q in ipairs(quantiles) do
    parts[#parts + 1] = string.format("[%%g,%%d]", q, latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":[%%s]}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
"""


def wrk_available() -> bool:
    return shutil.which(WRK) is not None


def lua_script(sc: scenarios.Scenario, model: str, think_ms: float = 0.0) -> str:
    body = sc.body_for(model).decode()
    level = "=" * 4
    assert f"]{level}]" not in body
    lines = ['wrk.method = "POST"', f"wrk.body = [{level}[{body}]{level}]"]
    for k, v in sc.headers_for_request():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    if think_ms > 0:
        # Paced turns: each connection waits this long before its next request.
        lines.append(f"function delay() return {think_ms:.0f} end")
    quantiles = ",".join(f"{q:g}" for q in QUANTILES)
    return "\n".join(lines) + _DONE % {"quantiles": quantiles}


@dataclass
class Result:
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_us: list[tuple[float, float]]
    tool: str

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse(output: str, tool: str) -> Result:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            doc = json.loads(line[len("BENCH_JSON ") :])
            return Result(
                requests=int(doc["requests"]),
                duration_s=doc["duration_us"] / 1e6,
                errors={k: int(v) for k, v in doc["errors"].items()},
                latency_us=[(float(q), float(v)) for q, v in doc["latency_us"]],
                tool=tool,
            )
    raise RuntimeError(f"{tool} printed no result:\n{output[-2000:]}")


@dataclass
class LoadGen:
    workdir: Path
    tool: str = "wrk"  # wrk | python
    scripts: dict[tuple[str, str, float], Path] = field(default_factory=dict)

    def command(
        self,
        url: str,
        sc: scenarios.Scenario,
        seconds: int,
        connections: int,
        model: str,
        think_ms: float,
    ) -> list[str]:
        if self.tool == "wrk":
            key = (sc.name, model, think_ms)
            script = self.scripts.get(key)
            if script is None:
                script = self.workdir / f"{model}-{think_ms:.0f}.lua"
                script.write_text(lua_script(sc, model, think_ms))
                self.scripts[key] = script
            return [
                WRK,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(script),
                url + sc.path_for(model),
            ]
        return [
            sys.executable,
            "-m",
            "bench.load.client",
            "load",
            "--url",
            url,
            "--scenario",
            sc.name,
            "--model",
            model,
            "--think-ms",
            str(think_ms),
            "--connections",
            str(connections),
            "--duration",
            str(seconds),
        ]

    def run(
        self,
        url: str,
        sc: scenarios.Scenario,
        seconds: int,
        connections: int,
        *,
        model: str | None = None,
        think_ms: float = 0.0,
    ) -> Result:
        """``seconds`` of closed-loop load; ``think_ms`` paces each connection."""
        cmd = self.command(url, sc, seconds, connections, model or sc.model, think_ms)
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, env=child_env()
        )
        if r.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
        return parse(r.stdout, self.tool)


def merge(results: list[Any]) -> dict[str, float]:
    """p50/p99 over several turns' latency curves, weighted by their request counts."""
    points: list[tuple[float, float]] = []  # (latency, mass)
    for res in results:
        curve = res.latency_us
        if not res.requests or not curve:
            continue
        prev = 0.0
        for q, v in curve:
            points.append((v, (q - prev) / 100 * res.requests))
            prev = q
    if not points:
        return {}
    points.sort()
    total = sum(m for _, m in points)
    out: dict[str, float] = {}
    for name, q in (("p50", 0.50), ("p99", 0.99)):
        acc = 0.0
        for v, m in points:
            acc += m
            if acc >= q * total:
                out[name] = v
                break
    return out
