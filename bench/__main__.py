"""``python -m bench``: the load bench, llmtap and its anchors through a real Envoy.

    python -m bench --quick                 # about a minute: 2 scenarios, 7 configurations
    python -m bench                         # everything (about 15 minutes on 2 cores)
    python -m bench --out results.json      # also results.md and results-*.png
    python -m bench --render results.json   # tables and plots again from saved data

See bench/README.md for what each configuration is and how to read the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

# The bench forks children (Envoy, wrk, servers) while its own gRPC collector runs;
# grpc's fork handlers would then run in every child before exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="the one-minute subset")
    p.add_argument("--out", default="bench-load.json", help="JSON results (default %(default)s)")
    p.add_argument("--md", help="markdown report (default: --out with .md)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--scenarios", help="comma-separated subset (see bench/README.md)")
    p.add_argument("--configs", help="comma-separated configuration keys, e.g. noop,obs@1")
    p.add_argument("--turn", type=int, help="seconds of the throughput part of a turn (1)")
    p.add_argument("--paced", type=int, help="seconds of the paced part of a turn (quick 1, 2)")
    p.add_argument("--rounds", type=int, help="turns per cell, in alternation (default 2)")
    p.add_argument("--connections", type=int, help="load generator connections (default 8)")
    p.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--streams", type=int, help="open streams in the memory run (full 10000)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory run")
    p.add_argument(
        "--ext-proc-in-listener",
        action="store_true",
        help="ext_proc in the listener's filter chain, not the upstream one (see README)",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")
    p.add_argument("--render", metavar="JSON", help="only render tables/plots from saved data")
    return p


def render(data: dict[str, Any], out: Path, md_path: Path, with_plots: bool) -> None:
    from bench.load import report

    text = report.markdown(data)
    md_path.write_text(text)
    sys.stdout.write(text)
    if with_plots:
        try:
            written = report.plots(data, out.with_suffix(""))
        except ImportError:
            print("matplotlib is missing: pip install -e '.[bench]' for the plots", file=sys.stderr)
        else:
            print("plots: " + ", ".join(str(p) for p in written), file=sys.stderr)
    print(f"results: {out} and {md_path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    md_path = Path(args.md) if args.md else out.with_suffix(".md")
    if args.render:
        saved = Path(args.render)
        md = md_path if args.md else saved.with_suffix(".md")
        data = json.loads(saved.read_text())
        from bench.load import report

        data["targets"] = report.targets(data)  # the current reading of the saved numbers
        render(data, saved, md, not args.no_plots)
        return 0

    from bench.load import configs, loadgen, report, scenarios
    from bench.load.runner import Bench, default_settings, results
    from bench.machine import banner

    _raise_nofile()
    s = default_settings(args.quick)
    s.custom = bool(args.scenarios or args.configs)
    if args.scenarios:
        s.scenarios = [n.strip() for n in args.scenarios.split(",")]
        for n in s.scenarios:
            scenarios.get(n)
    if args.configs:
        s.configs = configs.select(args.configs, args.quick)
    s.turn_s = args.turn or s.turn_s
    s.rounds = args.rounds or s.rounds
    s.connections = args.connections or s.connections
    s.paced_s = args.paced or s.paced_s
    s.streams = args.streams or s.streams
    s.memory = not args.no_memory
    s.keep_workdir = args.keep_workdir
    s.ext_proc_in_listener = args.ext_proc_in_listener
    s.custom = s.custom or s.ext_proc_in_listener
    if args.loadgen == "auto":
        s.loadgen = "wrk" if loadgen.wrk_available() else "python"
        if s.loadgen == "python":
            print("wrk not found: the uvloop client generates the load", file=sys.stderr)
    else:
        s.loadgen = args.loadgen
    if s.loadgen == "wrk" and not loadgen.wrk_available():
        raise SystemExit("wrk is not installed (apt-get install wrk), use --loadgen python")

    print(banner(), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(b: Bench, partial: bool = True) -> dict[str, Any]:
        data = results(b)
        data["partial"] = partial
        data["targets"] = report.targets(data)
        out.write_text(json.dumps(data, indent=2, default=str))
        return data

    bench = Bench(s)
    # Results so far are saved after each scenario: a run cut short still leaves data.
    bench.checkpoint = save
    bench.run()
    render(save(bench, partial=False), out, md_path, not args.no_plots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
