"""Twin fixtures for core/: every suite runs on the pure-Python reference (``py``)
and on the compiled module (``c``).

The ``c`` twin is imported from the extension module itself, never through the
pure module's fallback, so a missing or broken build fails these tests instead of
quietly testing Python twice. Only an explicit ``LLMTAP_NO_EXTENSIONS`` skips it.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from llmtap.core import _env

TWINS = ["py", "c"]


def twin(request: pytest.FixtureRequest, pure: str, native: str, name: str) -> Any:
    """The ``py`` or ``c`` implementation of class ``name`` (by ``request.param``)."""
    if request.param == "py":
        return getattr(importlib.import_module(f"llmtap.core.{pure}"), f"{name}Py")
    if _env.NO_EXTENSIONS:
        pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
    return getattr(importlib.import_module(f"llmtap.core.{native}"), name)


@pytest.fixture(params=TWINS)
def JsonScanner(request: pytest.FixtureRequest) -> Any:
    return twin(request, "scanner", "_scanner", "JsonScanner")


@pytest.fixture(params=TWINS)
def StreamScanner(request: pytest.FixtureRequest) -> Any:
    return twin(request, "stream", "_stream", "StreamScanner")


@pytest.fixture(scope="session")
def both_scanners() -> tuple[Any, Any]:
    """(pure, compiled) JsonScanner for differential tests; compiled is None if disabled."""
    from llmtap.core import scanner

    if _env.NO_EXTENSIONS:
        return scanner.JsonScannerPy, None
    return scanner.JsonScannerPy, importlib.import_module("llmtap.core._scanner").JsonScanner


@pytest.fixture(scope="session")
def both_streams() -> tuple[Any, Any]:
    """(pure, compiled) StreamScanner for differential tests; compiled is None if disabled."""
    from llmtap.core import stream

    if _env.NO_EXTENSIONS:
        return stream.StreamScannerPy, None
    return stream.StreamScannerPy, importlib.import_module("llmtap.core._stream").StreamScanner


FRAMERS = ("SSEFramer", "NDJSONFramer", "JSONArrayFramer", "JSONBodyFramer", "EventStreamFramer")


def framing_twin(name: str) -> Any:
    """The framer classes of twin ``name`` (``py``/``c``) as a namespace."""
    import types

    if name == "py":
        mod = importlib.import_module("llmtap.core.framing")
        return types.SimpleNamespace(**{n: getattr(mod, f"{n}Py") for n in FRAMERS}, id="py")
    mod = importlib.import_module("llmtap.core._framing")
    return types.SimpleNamespace(**{n: getattr(mod, n) for n in FRAMERS}, id="c")


@pytest.fixture(params=TWINS, scope="session")
def framing(request: pytest.FixtureRequest) -> Any:
    """The framers of one twin: ``framing.SSEFramer`` ... (session scoped for hypothesis)."""
    if request.param == "c" and _env.NO_EXTENSIONS:
        pytest.skip("LLMTAP_NO_EXTENSIONS is set: the compiled twin is not tested")
    return framing_twin(request.param)


@pytest.fixture(scope="session")
def both_framings() -> tuple[Any, Any]:
    """(pure, compiled) framer namespaces for differential tests; compiled is None if disabled."""
    return framing_twin("py"), None if _env.NO_EXTENSIONS else framing_twin("c")
