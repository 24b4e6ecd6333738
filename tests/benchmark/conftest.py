"""Benchmark test fixtures: the default model, `python -m container` on it, a stand-in server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCORING_SERVER = Path(__file__).with_name("scoring_server.py")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_ping(url: str, process: subprocess.Popen[bytes], *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}/ping did not answer 200 within {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    artifact = directory / "artifact"
    artifact.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(artifact, filter="data")
    return artifact, xgboost_json


@pytest.fixture(scope="session")
def serve_url(
    default_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`python -m container` with one worker on the default model, on a free 127.0.0.1 port."""
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    command = [sys.executable, "-m", "serve", "--model-dir", str(default_model[0])]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, process)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture
def scoring_server() -> Iterator[Callable[..., str]]:
    """Start the stand-in server (`scoring_server.py`) with extra arguments; returns its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(SCORING_SERVER), str(port), *args],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, process, timeout_s=20)
        return url

    yield start
    for process in processes:
        stop(process)
