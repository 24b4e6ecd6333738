"""Fixtures: the seed model built into an artifact once; servers that never outlive a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from benchmark.server import ServerProcess
from tests.artifacts import build_artifact

from .hostile_models import SEED_MODEL

StartServer = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SageMaker seed model, built into our serving artifact by `python -m model build`."""
    return build_artifact(SEED_MODEL, tmp_path_factory.mktemp("artifact"))


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start the server (healthy unless `wait=False`); all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(
        model_dir: Path,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> ServerProcess:
        server = ServerProcess(
            model_dir=model_dir,
            workers=workers,
            env={"RTB_LOG_LEVEL": "INFO", **(env or {})},
            log_path=tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        server.start()
        if wait:
            server.wait_healthy(timeout=timeout)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
