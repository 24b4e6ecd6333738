"""`running_server`: the harness's server (`benchmark/server.py`) for one test, its log and its
raw-model artifact cache under the test's tmp dir, ready (GET /ping 200)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from benchmark.server import ServerProcess, free_port


@contextmanager
def running_server(
    model_dir: Path,
    *,
    tmp_path: Path,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 90.0,
) -> Iterator[ServerProcess]:
    """The server, ready; on exit SIGTERM, then SIGKILL (`ServerProcess.stop`)."""
    port = free_port()
    server = ServerProcess(
        model_dir=model_dir,
        log_path=tmp_path / f"server-{port}.log",
        port=port,
        workers=workers,
        env={"TMPDIR": str(tmp_path), **(env or {})},
    )
    with server:
        server.wait_healthy(timeout=ready_timeout_s)
        yield server
