"""Start `python -m container` as a real subprocess on a free 127.0.0.1 port, and always stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.contract import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_server(
    model_dir: Path,
    *,
    tmp_path: Path,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 90.0,
) -> Iterator[ServerProcess]:
    """The server, ready (GET /ping 200); on exit SIGTERM, then SIGKILL after 15 s."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp_path),  # the raw-model artifact cache goes under the test's tmp dir
        **(env or {}),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "container",
                "--model-dir",
                str(model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        try:
            wait_until_ready(server.base_url, timeout_s=ready_timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"server did not become ready; exit code {process.poll()}:\n{server.log_text()}"
            ) from None
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], *, timeout_s: float = 15.0) -> int:
    """SIGTERM, wait, then SIGKILL; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
