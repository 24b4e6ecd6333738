"""Fixtures: the seed model built into an artifact once; servers that never outlive a test."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from benchmark.server import ServerProcess

from .hostile_models import SEED_MODEL

StartServer = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SageMaker seed model, built into our serving artifact by `python -m model build`."""
    import os  # DEV-ONLY

    if os.environ.get("DEV_ARTIFACT"):
        return Path(os.environ["DEV_ARTIFACT"])
    root = tmp_path_factory.mktemp("artifact")
    archive = root / "model.tar.gz"
    built = subprocess.run(
        [sys.executable, "-m", "model", "build", str(SEED_MODEL), "--output", str(archive)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, f"python -m model build failed:\n{built.stderr}"
    directory = root / "model"
    directory.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start `python -m container` (healthy unless `wait=False`); all are stopped at teardown."""
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
            try:
                server.wait_healthy(timeout=timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"{exc}; server log:\n{server.log()}") from exc
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
