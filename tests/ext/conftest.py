"""ext runs on both twins: ``py`` (pure core StreamScanner, pure ext Exchange, Scan
and CallRecord) and ``c`` (all compiled).

ext looks ``llmtap.core.StreamScanner`` up when a response starts and ``recognise``
looks up ``Exchange`` when it makes one; the pure Exchange uses the pure Scan and
CallRecord, the compiled one the compiled ones. Swapping those two names switches
the twin for everything ext does.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import llmtap.core
from llmtap.core import _env

recognise_mod = importlib.import_module("llmtap.ext.recognise")


@pytest.fixture(params=["py", "c"])
def core_twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    if request.param == "py":
        cls = importlib.import_module("llmtap.core.stream").StreamScannerPy
        exchange = importlib.import_module("llmtap.ext.exchange").ExchangePy
    else:
        if _env.NO_EXTENSIONS:
            pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
        cls = importlib.import_module("llmtap.core._stream").StreamScanner
        exchange = importlib.import_module("llmtap.ext._exchange").Exchange
    monkeypatch.setattr(llmtap.core, "StreamScanner", cls)
    monkeypatch.setattr(recognise_mod, "Exchange", exchange)
    return cls
