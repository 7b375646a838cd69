"""No process is left behind: by a stopped stack, by ``llmtap demo --once``, or by a demo
stopped with Ctrl-C. Also checks the demo's output: one waterfall per round."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from e2e_stack import running_stack

from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.procs import descendants, pid_alive
from llmtap.gateway.demo.receiver import Receiver

DEMO = [sys.executable, "-m", "llmtap", "demo", "--speed", "0.05", "--no-color"]


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if text in args and pid != os.getpid() and pid_alive(pid):
            found.append((pid, args))
    return found


def test_stopped_stack_leaves_no_process(
    receiver: Receiver, replay_server: HttpServer, tmp_path: Path
) -> None:
    with running_stack("normal", receiver, replay_server, tmp_path) as stack:
        pids = [stack.envoy.pid, stack.llmtap.pid]
        pids += descendants(stack.envoy.pid) + descendants(stack.llmtap.pid)
        assert all(pid_alive(p) for p in pids)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if pid_alive(p)] == []
    assert _processes_mentioning(str(tmp_path)) == []


def _workdir(output: str) -> str:
    m = re.search(r"^  workdir +(\S+)$", output, re.M)
    assert m, output
    return m.group(1)


def test_demo_once_prints_every_call_and_exits_clean() -> None:
    r = subprocess.run([*DEMO, "--once"], capture_output=True, text=True, timeout=120)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert out.count("\ntrace ") == 1
    for provider in ("openai", "anthropic", "gcp.gemini", "aws.bedrock", "ollama", "cohere"):
        assert re.search(rf"^.*─ .+ {re.escape(provider)} ", out, re.M), provider
    # The forced 429 shows as an error row; everything else is ok.
    assert re.search(r"mistral_ai .* (rate_limit|429|error)", out), out
    assert "demo stopped; no process left behind" in out
    assert _processes_mentioning(_workdir(out)) == []


def test_demo_stops_on_ctrl_c_leaving_nothing() -> None:
    proc = subprocess.Popen(
        [*DEMO, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("trace "):
                break
            assert time.monotonic() < deadline, "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    assert "stopping..." in out
    assert _processes_mentioning(_workdir(out)) == []
