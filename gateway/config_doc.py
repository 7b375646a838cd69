"""Render the configuration reference (docs/configuration.md) from the settings Structs.

The reference is generated, not written, so it cannot drift: every setting's default
comes from the Struct, its description from the ``#:`` comment above it in config.py,
and its environment variables from the same table ``load_settings`` reads.

    python -m llmtap.gateway.config_doc > docs/configuration.md
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import msgspec

from . import config

# Sample values that some parser in the env table accepts; probing each env var with
# them reveals which settings it feeds without the table having to say so twice.
_SAMPLES = (
    "1",
    "true",
    "k=v",
    "otlp",
    "grpc",
    "gen_ai_latest_experimental",
    "SPAN_ONLY",
    "always_on",
    "tracecontext",
    "http://localhost:4317",
    "info",
    "normal",
    "x",
)


def _doc_comments(cls: type) -> dict[str, str]:
    """``#:`` comment lines directly above each field of a settings Struct."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = re.match(r"(\w+)\s*:", stripped)
        if m and m.group(1) in cls.__struct_fields__:  # type: ignore[attr-defined]
            out[m.group(1)] = " ".join(pending)
        pending = []
    return out


def _env_by_path() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, parser in config._ENV:
        for sample in _SAMPLES:
            try:
                paths = parser(sample)
            except Exception:
                continue
            for path in paths:
                found.setdefault(path, []).append(name)
            break
    return found


def _md(text: str) -> str:
    """The Structs' comments are reST-flavoured (``x``); the reference is Markdown."""
    return text.replace("``", "`")


def _default(section: Any, field: str) -> str:
    value = msgspec.to_builtins(getattr(section, field))
    if value is None:
        return "—"
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"`{value}` ({value // (1024 * 1024)} MiB)"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def render_markdown() -> str:
    defaults = config.Settings()
    env = _env_by_path()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `gateway/config.py` by `python -m llmtap.gateway.config_doc`;",
        "a test fails when this file is stale.",
        "",
        "Settings come from a file (`llmtap serve --config FILE`, YAML or TOML, sections as",
        "below), environment variables and flags (`--set section.key=value`, plus the",
        "shortcuts in `llmtap serve --help`). Precedence: flag > environment > file >",
        "default. An unknown key in a file or flag is an error that names the key; a bad",
        "environment value is reported and ignored. Where OpenTelemetry defines a variable",
        "it is honoured; every setting also has an `LLMTAP_<SECTION>_<KEY>` variable,",
        "which wins over the `OTEL_*` one.",
        "",
    ]
    for section in config.Settings.__struct_fields__:
        cls = type(getattr(defaults, section))
        docs = _doc_comments(cls)
        head = _md((cls.__dict__.get("__doc__") or "").strip().split("\n\n")[0])
        lines += [f"## `{section}`", ""]
        if head:
            lines += [" ".join(head.split()), ""]
        lines += ["| key | default | environment | meaning |", "|---|---|---|---|"]
        for field in cls.__struct_fields__:
            path = f"{section}.{field}"
            names = ", ".join(f"`{n}`" for n in env.get(path, []))
            meaning = _md(docs.get(field, "")).replace("|", "\\|")
            lines.append(
                f"| `{field}` | {_default(getattr(defaults, section), field)} "
                f"| {names} | {meaning} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
