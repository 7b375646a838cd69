"""CPU time and memory of a process tree, read from /proc (Linux).

CPU is ``utime + stime`` of every process in the tree (``/proc/PID/stat`` fields 14
and 15, which include the process's threads, also those that already exited), in
clock ticks turned into seconds. The tick is 10 ms on most kernels: the bench sums the
deltas of several turns before dividing, so a cell rests on seconds of CPU, not ticks.
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


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and all its descendants, in seconds."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            # after the name: state is field 3, utime 14 and stime 15 (1-based)
            total += int(fields[11]) + int(fields[12])
    return total * TICK


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
