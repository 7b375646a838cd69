"""CI must test the compiled core: fail loudly if a native twin is missing."""

import importlib

import pytest

from llmtap.core import _env

NATIVE_MODULES = [
    "llmtap.core._scanner",
    "llmtap.core._framing",
    "llmtap.core._stream",
    "llmtap.gateway._extproc_wire",
    "llmtap.gateway._otlp",
    "llmtap.ext._exchange",
    "llmtap.ext._scan",
    "llmtap.ext._record",
]


@pytest.mark.skipif(_env.NO_EXTENSIONS, reason="LLMTAP_NO_EXTENSIONS is set: twins only")
@pytest.mark.parametrize("name", NATIVE_MODULES)
def test_native_module_is_compiled(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__file__ is not None and mod.__file__.endswith(".so"), mod.__file__
