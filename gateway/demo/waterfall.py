"""Print traces as terminal waterfalls: one row per span, a bar on a shared time axis.

Rows are in tree order (children indented under their parent) with the columns span,
provider, model, tokens in and out, TTFT, duration, cost and status, then the bar. In a
bar, ``░`` is the wait for the first chunk (TTFT) and ``█`` the rest of the call.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from llmtap.gateway.demo.receiver import Span

PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
INPUT_TOKENS = ("gen_ai.usage.input_tokens",)
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens",)
# Seconds, as the GenAI conventions define it; the llmtap name is a fallback.
TTFT = ("gen_ai.response.time_to_first_chunk", "llmtap.response.time_to_first_chunk")
COST = ("llmtap.usage.cost_usd",)
ERROR_TYPE = ("error.type",)

BAR = 24
_COLUMNS = (
    ("span", 28, "<"),
    ("provider", 12, "<"),
    ("model", 22, "<"),
    ("in", 6, ">"),
    ("out", 6, ">"),
    ("ttft", 7, ">"),
    ("dur", 7, ">"),
    ("cost", 10, ">"),
    ("status", 12, "<"),
)

_RED, _DIM, _BOLD, _RESET = "\033[31m", "\033[2m", "\033[1m", "\033[0m"


def _fit(text: str, width: int, align: str) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"{text:{align}{width}}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f}ms"
    return f"{s:.2f}s"


def fmt_cost(usd: Any) -> str:
    if not isinstance(usd, (int, float)):
        return "-"
    if usd == 0:
        return "$0"
    if usd >= 0.01:
        return f"${usd:.2f}"
    if usd < 0.000001:
        return "<$0.000001"
    return f"${usd:.6f}".rstrip("0")


def _int(v: Any) -> str:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else "-"


def _ttft(span: Span) -> float | None:
    v = span.get(*TTFT)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _status(span: Span) -> str:
    if span.status != "ERROR":
        return "ok"
    return str(span.get(*ERROR_TYPE) or "error")


def _ordered(spans: Sequence[Span]) -> list[tuple[Span, str]]:
    """Spans in tree order with their tree prefix ("├─ ", "│  └─ " ...)."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    roots = []
    for s in spans:
        if s.parent_span_id and s.parent_span_id in ids:
            children.setdefault(s.parent_span_id, []).append(s)
        else:
            roots.append(s)
    out: list[tuple[Span, str]] = []

    def walk(s: Span, lead: str, branch: str) -> None:
        out.append((s, lead + branch))
        kids = sorted(children.get(s.span_id, []), key=lambda k: k.start_ns)
        # The root's own children start flush left under it.
        nested = lead + ("" if not branch else "   " if branch == "└─ " else "│  ")
        for i, k in enumerate(kids):
            walk(k, nested, "└─ " if i == len(kids) - 1 else "├─ ")

    for r in sorted(roots, key=lambda s: s.start_ns):
        walk(r, "", "")
    return out


def _bar(span: Span, t0: int, total: int) -> str:
    scale = BAR / total if total > 0 else 0.0
    start = int((span.start_ns - t0) * scale)
    end = max(start + 1, round((span.end_ns - t0) * scale))
    ttft = _ttft(span)
    wait = 0
    if ttft is not None:
        wait = min(end - start, round(ttft * 1e9 * scale))
    return " " * start + "░" * wait + "█" * (end - start - wait)


def render_trace(spans: Sequence[Span], color: bool = False) -> str:
    """The waterfall for one trace's spans, header line included."""
    if not spans:
        return ""
    t0 = min(s.start_ns for s in spans)
    t1 = max(s.end_ns for s in spans)
    head = f"trace {spans[0].trace_id}  {len(spans)} span{'s' * (len(spans) != 1)}  "
    head += fmt_seconds((t1 - t0) / 1e9)
    titles = "  ".join(_fit(name, w, a) for name, w, a in _COLUMNS) + "  timeline"
    if color:
        head, titles = f"{_BOLD}{head}{_RESET}", f"{_DIM}{titles}{_RESET}"
    lines = [head, titles]
    for span, prefix in _ordered(spans):
        ttft = _ttft(span)
        values = (
            prefix + span.name,
            str(span.get(*PROVIDER) or ""),
            str(span.get(*MODEL) or ""),
            _int(span.get(*INPUT_TOKENS)),
            _int(span.get(*OUTPUT_TOKENS)),
            fmt_seconds(ttft) if ttft is not None else "-",
            fmt_seconds(span.duration_s),
            fmt_cost(span.get(*COST)),
            _status(span),
        )
        row = "  ".join(_fit(v, w, a) for v, (_, w, a) in zip(values, _COLUMNS, strict=True))
        row += "  " + _bar(span, t0, t1 - t0)
        if color and span.status == "ERROR":
            row = _RED + row + _RESET
        lines.append(row)
    return "\n".join(lines)


class Waterfall:
    """Collects spans as they arrive and prints each trace once it has gone quiet.

    A trace is printed when no span of it arrived for ``settle`` seconds (llmtap exports
    in batches, and a caller's own span may come later than the calls it made).
    """

    def __init__(
        self, out: TextIO | None = None, settle: float = 0.5, color: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.settle = settle
        self.color = self.out.isatty() if color is None else color
        self._lock = threading.Lock()
        self._traces: dict[str, list[Span]] = {}
        self._last: dict[str, float] = {}
        self.printed: list[str] = []

    def add(self, spans: Iterable[Span]) -> None:
        now = time.monotonic()
        with self._lock:
            for s in spans:
                self._traces.setdefault(s.trace_id, []).append(s)
                self._last[s.trace_id] = now

    def pending(self) -> int:
        with self._lock:
            return len(self._traces)

    def flush(self, force: bool = False) -> int:
        """Print every quiet trace (every trace if ``force``); returns how many."""
        now = time.monotonic()
        with self._lock:
            ready = [t for t, last in self._last.items() if force or now - last >= self.settle]
            batches = [(t, self._traces.pop(t)) for t in sorted(ready, key=lambda t: self._last[t])]
            for t in ready:
                del self._last[t]
        for trace_id, spans in batches:
            self.out.write(render_trace(spans, self.color) + "\n\n")
            self.printed.append(trace_id)
        if batches:
            self.out.flush()
        return len(batches)
