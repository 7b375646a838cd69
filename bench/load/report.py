"""Tables, targets and plots from one bench run's data (the JSON ``--out`` writes).

Everything here reads the data dict only, so a saved JSON can be re-rendered:
``python -m bench --render FILE.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BASELINE = "baseline"
DASH = "\N{EN DASH}"
TIMES = "\N{MULTIPLICATION SIGN}"
KIB = 1024


def _fmt(v: float | None, digits: int = 0, dash: str = DASH) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return dash
    return f"{v:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _geomean(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None and v > 0]
    if not vs:
        return None
    return math.exp(sum(math.log(v) for v in vs) / len(vs))


def cell(data: dict[str, Any], scenario: str, config: str) -> dict[str, Any] | None:
    c = data["cells"].get(scenario, {}).get(config)
    if c is None or not c.get("turns"):
        return None
    return dict(c)


def deltas(data: dict[str, Any], scenario: str, config: str) -> dict[str, float | None]:
    c, b = cell(data, scenario, config), cell(data, scenario, BASELINE)
    out: dict[str, float | None] = {"dp50_ms": None, "dp99_ms": None, "dp50_pct": None}
    if c is None or b is None or c["p50_ms"] is None or b["p50_ms"] is None:
        return out
    out["dp50_ms"] = c["p50_ms"] - b["p50_ms"]
    out["dp99_ms"] = c["p99_ms"] - b["p99_ms"]
    out["dp50_pct"] = (c["p50_ms"] / b["p50_ms"] - 1) * 100 if b["p50_ms"] else None
    return out


def span_totals(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    """One lane's spans over the run: paced parts, throughput parts, what was counted."""
    lane = data["lanes"].get(key, {})
    # Cells where Envoy crashed lost requests with it: only the others are counted.
    cells = [
        c[key]
        for c in data["cells"].values()
        if key in c and c[key].get("turns") and not c[key].get("crashes")
    ]
    if not cells:
        return None
    pe = sum(c["expected_spans"] for c in cells)
    pr = sum(c.get("spans_received") or 0 for c in cells)
    me = sum(c["expected_spans_max"] for c in cells)
    mr = sum(c.get("spans_received_max") or 0 for c in cells)
    mf = sum(c["failed_max"] for c in cells)
    mc = sum(max(0, c["streams_max"] - c["completed_max"]) for c in cells)
    unattributed = lane.get("spans_unattributed") or 0
    dropped = sum(
        v for k, v in lane.get("prometheus", {}).items()
        if k.startswith("llmtap_spans_dropped_total")
    )  # fmt: skip
    return {
        "paced_expected": pe,
        "paced_received": pr,
        "max_expected": me,
        "max_received": mr,
        "max_failed": mf,
        "unattributed": unattributed,
        "dropped": dropped,
        # A request cut before its body has a span without a model: not lost.
        "paced_lost": max(0, pe - pr - unattributed),
        # Requests the client cut (the end of a closed-loop part) may vanish before an
        # ext_proc server that is behind ever picks their stream up: abandoned, not lost.
        "max_cut": mc,
        "max_uncounted": max(0, int(me - mr - mf - dropped - mc)),
    }


# -- targets ---------------------------------------------------------------------------


def _target(
    name: str,
    value: float | None,
    goal: float,
    unit: str,
    detail: str,
    extra_ok: bool = True,
) -> dict[str, Any]:
    verdict = "n/a" if value is None else "PASS" if value <= goal and extra_ok else "MISS"
    return {"name": name, "value": value, "goal": goal, "unit": unit, "result": verdict,
            "detail": detail}  # fmt: skip


def _per_scenario(
    data: dict[str, Any], scenarios: list[str], a: str, b: str, metric: str
) -> dict[str, float | None]:
    out = {}
    for s in scenarios:
        ca, cb = cell(data, s, a), cell(data, s, b)
        out[s] = _ratio(ca[metric] if ca else None, cb[metric] if cb else None)
    return out


def _list(ratios: dict[str, float | None], fmt: str = "{:.2f}" + TIMES) -> str:
    return ", ".join(f"{s} {fmt.format(v)}" for s, v in ratios.items() if v is not None)


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(data["cells"])
    streaming = [s for s in names if data["scenarios"][s]["streaming"]]
    out = []

    r = _per_scenario(data, names, "obs@1", "noop", "cpu_us_per_msg")
    g = _geomean(r.values())
    worst = max((v for v in r.values() if v is not None), default=None)
    out.append(
        _target(
            "llmtap CPU per ext_proc message vs the no-op floor (config 4 @1 ÷ config 2)",
            g,
            1.25,
            TIMES,
            f"geometric mean over {sum(v is not None for v in r.values())} scenarios; "
            f"worst {_fmt(worst, 2)}{TIMES}; {_list(r)}",
        )
    )

    r = _per_scenario(data, streaming, "normal@1", "naive@1", "cpu_us_per_req")
    worst = max((v for v in r.values() if v is not None), default=None)
    obs = _per_scenario(data, streaming, "obs@1", "naive@1", "cpu_us_per_req")
    floor = _per_scenario(data, streaming, "noop-answer", "naive@1", "cpu_us_per_req")
    out.append(
        _target(
            "llmtap CPU per request vs the naive anchor, streaming scenarios "
            "(config 5 @1 ÷ config 3 @1, each scenario)",
            worst,
            0.65,
            TIMES,
            f"worst shown; {_list(r)}; observability mode (config 4 @1): {_list(obs)}; "
            f"the answering no-op floor (config 2 answering) alone: {_list(floor) or 'not run'}",
        )
    )

    pct = {}
    for s in names:
        d = deltas(data, s, "obs@1")
        pct[s] = d["dp50_pct"]
    worst = max((v for v in pct.values() if v is not None), default=None)
    out.append(
        _target(
            "observability mode's added client p50 latency over Envoy alone "
            "(config 4 @1 vs config 1, each scenario)",
            worst,
            5.0,
            "%",
            "worst shown; " + _list(pct, "{:+.1f}%"),
        )
    )

    a, n = cell(data, "stream_200", "assisted@0.01"), cell(data, "stream_200", "naive@0.01")
    ratio = _ratio(a["cpu_us_per_req"] if a else None, n["cpu_us_per_req"] if n else None)
    f = cell(data, "stream_200", "noop-answer")
    floor_ratio = _ratio(f["cpu_us_per_req"] if f else None, n["cpu_us_per_req"] if n else None)
    done = (a["completed"] + a.get("warm_completed", 0)) if a else 0
    tokens_ok = bool(a and a.get("tokens_recorded") is not None and a["tokens_recorded"] >= done)
    tok = (
        f"token metrics recorded for {_fmt(a.get('tokens_recorded'))} of {done} completed "
        f"requests (paced parts and warm-up); CPU {_fmt(a['cpu_us_per_req'])} vs "
        f"{_fmt(n['cpu_us_per_req']) if n else DASH} µs per request; the answering no-op "
        f"floor alone is {_fmt(floor_ratio, 2)}{TIMES} the anchor"
        if a
        else "not run"
    )
    out.append(
        _target(
            "Envoy-assisted mode @0.01 CPU per request vs the naive anchor @0.01, "
            "200-chunk stream (config 7 ÷ config 3), token metrics of every request",
            ratio,
            0.15,
            TIMES,
            tok,
            extra_ok=tokens_ok,
        )
    )

    lost_total = 0
    uncounted_total = 0
    parts = []
    measured = False
    for key in data["lanes"]:
        cfg = data["configs"][key]
        if cfg["server"] not in ("llmtap", "naive") or cfg["sampling"] != 1.0:
            continue
        t = span_totals(data, key)
        if t is None:
            parts.append(f"{key}: n/a (no scenario without an Envoy crash)")
            continue
        if cfg["server"] == "llmtap":
            measured = True
            lost_total += t["paced_lost"]
            uncounted_total += t["max_uncounted"]
        parts.append(
            f"{key}: paced {t['paced_received']}/{t['paced_expected']} "
            f"(+{t['unattributed']} without a model: cut before the request body); "
            f"throughput {t['max_received']}/{t['max_expected']}, "
            f"{t['max_failed']} given up by Envoy (ext_proc streams_failed), "
            f"{t['max_cut']} cut by the client, "
            f"{t['dropped']:.0f} dropped by llmtap"
        )
    out.append(
        _target(
            "spans lost at the collector below saturation (paced parts), llmtap @1; beyond "
            "saturation (throughput parts) every loss counted",
            float(lost_total) if measured else None,
            0.0,
            " spans",
            "; ".join(parts) + f"; losses nobody counted: {uncounted_total}",
            extra_ok=uncounted_total == 0,
        )
    )

    mem = (data.get("memory") or {}).get("llmtap") or {}
    floor = (data.get("memory") or {}).get("noop") or {}
    per = mem.get("per_stream_bytes")
    out.append(
        _target(
            "llmtap RSS per open stream (memory run)",
            per / KIB if per is not None else None,
            16.0,
            " KiB",
            (
                f"{mem.get('active', 0):.0f} streams open; RSS idle "
                f"{mem.get('rss_idle', 0) / 2**20:.1f} MiB, open "
                f"{mem.get('rss_open', 0) / 2**20:.1f} MiB, after "
                f"{mem.get('rss_after', 0) / 2**20:.1f} MiB; the no-op server's floor "
                f"{(floor.get('per_stream_bytes') or 0) / KIB:.1f} KiB per stream"
                if mem
                else "not run"
            ),
        )
    )
    return out


# -- markdown --------------------------------------------------------------------------

_COLUMNS = (
    "configuration",
    "max req/s",
    "paced req/s",
    "CPU µs/req",
    "CPU µs/msg",
    "msgs/req",
    "p50 ms",
    "p99 ms",
    "Δp50 vs 1",
    "Δp99 vs 1",
    "spans paced",
    "spans max (Envoy gave up)",
    "token metrics",
    "RSS MiB",
)


def _row(data: dict[str, Any], scenario: str, key: str) -> list[str]:
    cfg = data["configs"][key]
    c = data["cells"].get(scenario, {}).get(key)
    title = cfg["title"]
    if c is None:
        return [title, *[DASH] * (len(_COLUMNS) - 1)]
    if not c.get("turns"):
        return [title, f"**{c.get('skipped') or 'no data'}**", *[DASH] * (len(_COLUMNS) - 2)]
    d = deltas(data, scenario, key)
    is_base = key == BASELINE
    spans = spans_max = DASH
    if c.get("spans_received") is not None:
        spans = f"{c['spans_received']}/{c['expected_spans']}"
        spans_max = f"{c['spans_received_max']}/{c['expected_spans_max']} ({c['failed_max']})"
    tokens = DASH
    if c.get("tokens_recorded") is not None:
        tokens = f"{c['tokens_recorded']:.0f}/{c['completed'] + c.get('warm_completed', 0)}"
    pct = f" ({d['dp50_pct']:+.0f}%)" if d["dp50_pct"] is not None else ""
    note = f" ⚠ {c['skipped']}" if c.get("skipped") else ""
    errors = sum(c.get("errors", {}).values())
    if errors:
        note += f" ⚠ {errors} errors"
    return [
        title + note,
        _fmt(c["rps"]),
        _fmt(c["paced_rps"]),
        DASH if is_base else _fmt(c["cpu_us_per_req"]),
        DASH if is_base else _fmt(c["cpu_us_per_msg"]),
        DASH if is_base else _fmt(c["msgs_per_req"], 1),
        _fmt(c["p50_ms"], 2),
        _fmt(c["p99_ms"], 2),
        DASH if is_base else _fmt(d["dp50_ms"], 2, DASH) + pct,
        DASH if is_base else _fmt(d["dp99_ms"], 2),
        spans,
        spans_max,
        tokens,
        DASH if is_base else _fmt(c["rss_max"] / 2**20, 0),
    ]


def _table(header: Iterable[str], rows: Iterable[list[str]]) -> list[str]:
    header = list(header)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def targets_markdown(data: dict[str, Any]) -> str:
    lines = ["## Targets", ""]
    rows = []
    for t in data["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.2f}{t['unit']}"
        rows.append([t["name"], value, f"≤ {t['goal']:g}{t['unit']}", f"**{t['result']}**"])
    lines += _table(("target", "measured", "goal", "result"), rows)
    lines.append("")
    for t in data["targets"]:
        lines.append(f"- {t['name']}: {t['detail']}")
    return "\n".join(lines) + "\n"


def markdown(data: dict[str, Any]) -> str:
    s = data["settings"]
    lines = [
        f"# llmtap load bench ({data['mode']})",
        "",
        f"{data['machine_banner']}",
        "",
        f"Load: {s['loadgen']}, {s['connections']} connections; per cell {s['rounds']} "
        f"turns in alternation, each {s['turn_s']} s closed loop (**max req/s**, past "
        f"saturation) then {s['paced_s']} s paced at the scenario's fixed rate (**paced "
        "req/s**, below saturation: CPU, latency and spans are from these parts); Envoy "
        f"{data.get('envoy', '?')} with ext_proc in the "
        f"{s.get('ext_proc_chain', 'upstream')} filter chain; "
        f"{data['elapsed_s'] / 60:.1f} min.",
        "",
        "CPU: run time of the ext_proc server's process tree (utime+stime, at ns resolution "
        "from the threads' schedstat), per ext_proc stream Envoy opened and per message "
        "Envoy sent (`stream_msgs_sent`). Δ: against configuration 1 "
        "in the same scenario. Spans: received/expected, expected = ext_proc streams Envoy "
        "opened (paced parts and warm-up; the throughput parts apart, with the streams "
        "Envoy gave up on in parentheses). Token metrics: llmtap's input-token "
        "observations for the scenario's paced model / requests completed (warm-up "
        "included).",
        "",
    ]
    keys = list(data["configs"])
    for name, sc in data["scenarios"].items():
        if name not in data["cells"]:
            continue
        lines.append(
            f"### {sc['title']} (`{name}`: {sc['pieces']} upstream writes, "
            f"{sc['body_bytes'] / 1024:.1f} KiB body)"
        )
        lines.append("")
        lines += _table(_COLUMNS, (_row(data, name, k) for k in keys))
        lines.append("")
    lines.append("### Spans and exchanges per configuration (whole run)")
    lines.append("")
    rows = []
    for key, lane in data["lanes"].items():
        cfg = data["configs"][key]
        if cfg["server"] not in ("llmtap", "naive"):
            continue
        prom = lane.get("prometheus", {})
        t = span_totals(data, key)
        outcomes = {
            k.split("outcome=")[1].rstrip("}"): int(v)
            for k, v in prom.items()
            if k.startswith("llmtap_exchanges_total")
        }
        rows.append(
            [
                cfg["title"],
                _fmt(lane.get("streams_total")),
                _fmt(lane.get("spans_total")),
                f"{t['paced_received']}/{t['paced_expected']}" if t else DASH,
                f"{t['max_received']}/{t['max_expected']} ({t['max_failed']})" if t else DASH,
                _fmt(lane.get("spans_unattributed")),
                _fmt(t["dropped"]) if t and cfg["server"] == "llmtap" else DASH,
                ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or DASH,
                _fmt(lane.get("peak_rss", 0) / 2**20, 0),
            ]
        )
    lines += _table(
        ("configuration", "ext_proc streams", "spans", "paced", "throughput (Envoy gave up)",
         "no model (cut early)", "dropped by llmtap", "llmtap outcomes", "peak RSS MiB"),
        rows,
    )  # fmt: skip
    lines.append("")
    mem = data.get("memory") or {}
    if mem:
        lines.append("### Memory run")
        lines.append("")
        rows = []
        for name, m in mem.items():
            rows.append(
                [
                    "llmtap observability @1" if name == "llmtap" else "no-op grpc.aio ext_proc",
                    f"{m.get('active', 0)}/{m['streams']}",
                    str(m["envoys"]),
                    _fmt(m.get("rss_idle", 0) / 2**20, 1),
                    _fmt(m.get("rss_open", 0) / 2**20, 1),
                    _fmt(m.get("rss_after", 0) / 2**20, 1),
                    f"**{m.get('per_stream_bytes', 0) / KIB:.1f}**",
                    _fmt(m.get("open_s"), 0),
                    (
                        f"{m.get('spans_received')}/{m.get('requests')}; {m.get('outcomes')}"
                        if name == "llmtap"
                        else DASH
                    ),
                ]
            )
        lines += _table(
            ("server", "streams open", "Envoys", "RSS idle MiB", "RSS open MiB",
             "RSS after MiB", "KiB per open stream", "opening s", "spans/requests; outcomes"),
            rows,
        )  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n" + targets_markdown(data)


# -- plots -----------------------------------------------------------------------------


def plots(data: dict[str, Any], stem: Path) -> list[Path]:
    """throughput, latency and CPU per request, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    names = [n for n in data["scenarios"] if n in data["cells"]]
    keys = list(data["configs"])
    titles = [data["configs"][k]["title"] for k in keys]
    cmap = plt.get_cmap("tab20")
    colors = [cmap(i % 20) for i in range(len(keys))]
    written = []

    def panel_grid(title: str) -> tuple[Any, list[Any]]:
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.32 * len(keys) * rows + 1.6),
                                 squeeze=False)  # fmt: skip
        fig.suptitle(title)
        flat = [ax for row in axes for ax in row]
        for ax in flat[len(names) :]:
            ax.axis("off")
        return fig, flat

    def save(fig: Any, suffix: str) -> None:
        fig.tight_layout()
        path = stem.with_name(stem.name + f"-{suffix}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    fig, axes = panel_grid("Requests per second (higher is better)")
    for ax, name in zip(axes, names, strict=False):
        vals = [(cell(data, name, k) or {}).get("rps") or 0 for k in keys]
        ax.barh(range(len(keys)), vals, color=colors)
        ax.set_yticks(range(len(keys)), titles, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(data["scenarios"][name]["title"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    save(fig, "throughput")

    fig, axes = panel_grid("Client latency, ms: p50 bar, p99 tick (lower is better)")
    for ax, name in zip(axes, names, strict=False):
        p50 = [(cell(data, name, k) or {}).get("p50_ms") or 0 for k in keys]
        p99 = [(cell(data, name, k) or {}).get("p99_ms") or 0 for k in keys]
        ax.barh(range(len(keys)), p50, color=colors)
        ax.scatter(p99, range(len(keys)), marker="|", s=120, color="black", zorder=3)
        ax.set_yticks(range(len(keys)), titles, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(data["scenarios"][name]["title"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    save(fig, "latency")

    fig, axes = panel_grid("ext_proc server CPU per request, µs (lower is better)")
    for ax, name in zip(axes, names, strict=False):
        vals = [(cell(data, name, k) or {}).get("cpu_us_per_req") or 0 for k in keys]
        ax.barh(range(len(keys)), vals, color=colors)
        ax.set_yticks(range(len(keys)), titles, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(data["scenarios"][name]["title"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    save(fig, "cpu")
    return written
