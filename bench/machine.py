"""Describe the machine and versions a benchmark ran on, so numbers are comparable."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(packages: tuple[str, ...] = ()) -> dict[str, str]:
    info = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
    }
    for name in ("llmtap", "Cython", "msgspec", "orjson", "grpcio", *packages):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    return info


def banner(packages: tuple[str, ...] = ()) -> str:
    return "; ".join(f"{k}={v}" for k, v in describe(packages).items())
