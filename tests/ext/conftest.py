"""ext runs on both core twins: ``py`` (pure StreamScanner) and ``c`` (compiled).

ext imports ``llmtap.core.StreamScanner`` when a response starts, so swapping the
name on ``llmtap.core`` switches the twin for everything ext does.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import llmtap.core
from llmtap.core import _env


@pytest.fixture(params=["py", "c"])
def core_twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    if request.param == "py":
        cls = importlib.import_module("llmtap.core.stream").StreamScannerPy
    else:
        if _env.NO_EXTENSIONS:
            pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
        cls = importlib.import_module("llmtap.core._stream").StreamScanner
    monkeypatch.setattr(llmtap.core, "StreamScanner", cls)
    return cls
