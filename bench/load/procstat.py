"""CPU time and memory of a process tree, read from /proc (Linux).

CPU is what ``utime + stime`` in ``/proc/PID/stat`` measures, the time the process's
threads ran, but read at nanosecond resolution: the sum over its threads of
``/proc/PID/task/TID/schedstat`` (first field, the scheduler's ``sum_exec_runtime``).
``/proc/PID/stat`` has it in clock ticks (10 ms), too coarse for a turn of a few
hundred requests. Threads that already exited are gone from ``task/``, so per process
the larger of the two readings is taken (the tick count includes exited threads).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from llmtap.gateway.demo.procs import descendants

TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def _ticks_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the name: state is field 3, utime 14 and stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) * TICK


def _threads_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and all its descendants, in seconds (see the module doc)."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += max(_ticks_seconds(p), _threads_seconds(p))
    return total


def cpu_ticks_seconds(pid: int) -> float:
    """``utime + stime`` of the tree as ``/proc/PID/stat`` has it (10 ms ticks)."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += _ticks_seconds(p)
    return total


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of the tree now (sum of VmRSS)."""
    return sum(_status_kib(p, "VmRSS:") for p in tree(pid)) * 1024


def peak_rss_bytes(pid: int) -> int:
    """Sum over the tree of each process's peak resident memory (VmHWM)."""
    return sum(_status_kib(p, "VmHWM:") for p in tree(pid)) * 1024


@dataclass
class Sample:
    cpu_s: float
    rss: int


def sample(pid: int) -> Sample:
    return Sample(cpu_seconds(pid), rss_bytes(pid))
