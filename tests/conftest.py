"""Shared test fixtures: the recorded exchanges in ../shared/fixtures (read in place)."""

from __future__ import annotations

import pytest
from recorded import EXCHANGES, FIXTURES, REPO, Exchange, all_exchanges

__all__ = ["EXCHANGES", "FIXTURES", "REPO", "Exchange", "all_exchanges"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize any test that takes ``exchange`` over every recorded exchange."""
    if "exchange" in metafunc.fixturenames:
        metafunc.parametrize("exchange", EXCHANGES, ids=[e.id for e in EXCHANGES])
