"""Smoke test of the load bench (``python -m bench``): the whole machinery, tiny.

One scenario, the baseline and llmtap in observability mode, one round of a second of
each kind of load, and a memory run of 50 streams, through a real Envoy, wrk (or the
uvloop client) and the counting collector. It proves that the bench runs and that what
it reports is self-consistent; the numbers themselves mean nothing at this size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    argv = [
        "--scenarios", "stream_20",
        "--configs", "obs@1",
        "--turn", "1",
        "--paced", "1",
        "--rounds", "1",
        "--streams", "50",
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text())

    assert list(data["configs"]) == ["baseline", "obs@1"]
    base = data["cells"]["stream_20"]["baseline"]
    obs = data["cells"]["stream_20"]["obs@1"]
    for cell in (base, obs):
        assert cell["turns"] == 1 and not cell["crashes"], cell
        assert cell["rps"] > 0 and cell["paced_rps"] > 0
        assert 0 < cell["p50_ms"] <= cell["p99_ms"]
        assert sum(cell["errors"].values()) == 0, cell["errors"]
    # The baseline has no ext_proc server; llmtap read every message Envoy sent.
    assert base["cpu_s"] == 0 and base["msgs"] == 0
    assert obs["cpu_us_per_req"] > 0 and obs["msgs_per_req"] >= 4
    # Below saturation nothing is lost: one span per ext_proc stream, warm-up included,
    # and one input-token observation per completed request.
    assert obs["expected_spans"] >= obs["warm_completed"] + obs["completed"] > 0
    assert obs["spans_received"] == obs["expected_spans"]
    assert obs["tokens_recorded"] >= obs["completed"] + obs["warm_completed"]

    mem = data["memory"]
    for server in ("llmtap", "noop"):
        assert mem[server]["active"] == 50, mem[server]
        assert mem[server]["rss_open"] > mem[server]["rss_idle"] > 0
    assert mem["llmtap"]["spans_received"] == mem["llmtap"]["requests"]

    names = [t["name"] for t in data["targets"]]
    assert len(names) == 6
    assert {t["result"] for t in data["targets"]} <= {"PASS", "MISS", "n/a"}
    md = out.with_suffix(".md").read_text()
    assert "### chat stream, 20 chunks" in md and "## Targets" in md
    assert "| 4. llmtap observability @1 |" in md
    # matplotlib is in the test extra: the plots are part of what must work.
    for kind in ("throughput", "latency", "cpu"):
        assert (tmp_path / f"smoke-{kind}.png").stat().st_size > 1000
