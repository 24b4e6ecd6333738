"""Benchmark test fixtures: the default model, the server on it, a stand-in server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmark.server import REPO_ROOT, ServerProcess, free_port
from tests.artifacts import unpack

SCORING_SERVER = Path(__file__).with_name("scoring_server.py")


@pytest.fixture(scope="session")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default model, trained once: (unpacked artifact directory, XGBoost JSON model)."""
    directory = tmp_path_factory.mktemp("default-model")
    archive = directory / "model.tar.gz"
    xgboost_json = directory / "model.xgboost.json"
    subprocess.run(
        [sys.executable, "-m", "model", "train", "--output", str(archive), "--quiet"]
        + ["--save-json", str(xgboost_json)],
        check=True,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    return unpack(archive, directory / "artifact"), xgboost_json


@pytest.fixture(scope="session")
def serve_url(
    default_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The server with one worker on the default model, on a free 127.0.0.1 port."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServerProcess(model_dir=default_model[0], log_path=log) as server:
        server.wait_healthy()
        yield server.base_url


@pytest.fixture
def scoring_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start the stand-in server (`scoring_server.py`) with extra arguments; returns its URL."""
    servers: list[ServerProcess] = []

    def start(*args: str) -> str:
        port = free_port()
        server = ServerProcess(
            argv=[sys.executable, str(SCORING_SERVER), str(port), *args],
            port=port,
            log_path=tmp_path / f"scoring-server-{port}.log",
        )
        servers.append(server.start())
        server.wait_healthy(timeout=20)
        return server.base_url

    yield start
    for server in servers:
        server.stop()
