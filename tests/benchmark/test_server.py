"""The server-process harness: start any /ping server on a free port, wait, report, stop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmark.server import ServerProcess, free_port, ping

SCORING_SERVER = Path(__file__).with_name("scoring_server.py")


def test_a_ping_server_is_started_waited_for_and_stopped(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(
        argv=[sys.executable, str(SCORING_SERVER), str(port)],
        port=port,
        log_path=tmp_path / "server.log",
    )
    with server:
        server.wait_healthy(timeout=20)
        assert server.base_url == f"http://127.0.0.1:{port}"
        assert ping(port) == 200
        assert server.worker_pids() == [server.pid]
    assert server.returncode() is not None
    assert ping(port, timeout=0.5) is None
    assert "ready" in server.log()


def test_a_server_that_exits_before_answering_is_reported_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('cannot serve: no model here'); sys.exit(3)"
    server = ServerProcess(
        argv=[sys.executable, "-c", script], port=free_port(), log_path=tmp_path / "server.log"
    )
    with server, pytest.raises(RuntimeError, match=r"exited with 3(.|\n)*no model here"):
        server.wait_healthy(timeout=30)


def test_the_server_command_line_or_another_one_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_dir"):
        ServerProcess(log_path=tmp_path / "log")
    with pytest.raises(ValueError, match="port"):
        ServerProcess(argv=["server"], log_path=tmp_path / "log")
    served = ServerProcess(model_dir=tmp_path, log_path=tmp_path / "log", workers=3, port=8123)
    assert served.argv[-6:] == ["--host", "127.0.0.1", "--port", "8123", "--workers", "3"]
