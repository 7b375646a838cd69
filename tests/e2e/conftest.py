"""The e2e stack: a real Envoy, ``llmtap serve``, the replay upstream and an OTLP receiver.

Everything listens on 127.0.0.1: Envoy on ports it picks itself (read back through its
admin API), llmtap on a unix socket, the replay upstream and the receiver on ports the
kernel assigns. The receiver and the replay upstream live for the session; one llmtap
and one Envoy per Envoy mode (``stack`` is parametrized over the modes), so each test
runs once per mode. Every child process is stopped (SIGTERM, then SIGKILL) when its
fixture ends, and ``test_hygiene.py`` checks that none is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import MODES, Caller, Stack, running_stack
from recorded import EXCHANGES
from replay import build

from llmtap.gateway.demo.httpserver import HttpServer
from llmtap.gateway.demo.receiver import Receiver


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(120))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="session")
def replay_server() -> Iterator[HttpServer]:
    with HttpServer(build(EXCHANGES)) as server:
        yield server


@pytest.fixture(scope="session", params=MODES)
def stack(
    request: pytest.FixtureRequest,
    receiver: Receiver,
    replay_server: HttpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with running_stack(request.param, receiver, replay_server, workdir) as s:
        yield s
        s.check_one_span_each()


@pytest.fixture
def caller() -> Caller:
    return Caller.new()
