"""The `serve` entrypoint's command line, uvicorn options and logging configuration."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from benchmark.server import ServerProcess, free_port
from container.entrypoint import build_parser
from container.http_protocol import GuardedHttpToolsProtocol
from container.logging_config import JsonFormatter, logging_config
from container.server_config import uvicorn_options
from serve.settings import Settings
from tests.artifacts import unpack
from tests.seed import SEED_TARBALL

ROOT = Path(__file__).resolve().parents[2]


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "container", *args],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"], **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sagemaker_serve_argument_and_no_argument_both_serve() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).command == "serve"
    assert parser.parse_args([]).command == "serve"
    with pytest.raises(SystemExit):
        parser.parse_args(["train"])


def test_help_exits_zero() -> None:
    result = run_serve("--help")
    assert result.returncode == 0
    assert "--model-dir" in result.stdout


def test_bad_configuration_exits_2_with_the_variable_named() -> None:
    result = run_serve("serve", env={"SAGEMAKER_BIND_TO_PORT": "eighty"})
    assert result.returncode == 2
    assert "SAGEMAKER_BIND_TO_PORT='eighty'" in result.stderr


def test_nothing_to_serve_exits_1(tmp_path: Path) -> None:
    result = run_serve("serve", env={"RTB_MODEL_DIR": str(tmp_path / "absent")})
    assert result.returncode == 1
    assert "nothing to serve" in result.stderr


def test_a_broken_artifact_exits_1_before_any_worker_starts(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    result = run_serve("serve", "--model-dir", str(tmp_path), "--workers", "2")
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr
    assert "Started parent process" not in result.stderr


def test_uvicorn_options_are_accepted_by_uvicorn() -> None:
    settings = Settings(workers=3, max_concurrency=100, graceful_timeout_s=20.5, keep_alive_s=75)
    options = uvicorn_options(settings)
    config = uvicorn.Config("container.entrypoint:create_worker_app", **options)
    assert config.workers == 3
    assert config.limit_concurrency is None  # container.http_protocol applies it, not to /ping
    assert config.timeout_graceful_shutdown == 21
    assert config.timeout_keep_alive == 75
    assert (config.loop, config.access_log) == ("uvloop", False)
    assert config.factory is True
    config.load()  # resolves the protocol class by its import path, as each worker does
    assert config.http_protocol_class is GuardedHttpToolsProtocol


def test_json_logs_are_one_object_per_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "ERROR" and entry["message"] == "failed here"
    assert "ValueError: boom" in entry["exception"]
    assert "\n" not in formatter.format(record)


def test_access_log_is_off_unless_asked() -> None:
    assert logging_config()["loggers"]["uvicorn.access"]["propagate"] is False
    assert logging_config(access_log=True)["loggers"]["uvicorn.access"]["propagate"] is True


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_ping_stays_truthful(tmp_path: Path) -> None:
    server = ServerProcess(
        model_dir=unpack(SEED_TARBALL, tmp_path / "model"),
        log_path=tmp_path / "server.log",
        workers=2,
        env={"TMPDIR": str(tmp_path)},
    )
    with server:
        server.wait_healthy(timeout=90)
        victim = min(server.worker_pids())
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = server.worker_pids()
            if victim not in current and len(current) == 2:
                break
            time.sleep(0.2)
        assert victim not in current and len(current) == 2, current
        server.wait_healthy(timeout=30)
        for _ in range(20):  # both workers answer, whichever takes the connection
            response = httpx.post(
                f"{server.base_url}/invocations",
                content=b"2,0,0.0,7.0,3.0,20.0,2",
                headers={"content-type": "text/csv"},
                timeout=5,
            )
            assert response.status_code == 200


@pytest.mark.slow
def test_a_worker_that_fails_to_start_stops_the_server_with_exit_3(tmp_path: Path) -> None:
    script = tmp_path / "serve_broken.py"
    script.write_text(
        "import sys\n"
        "from container.entrypoint import run_server\n"
        "from serve.settings import Settings\n"
        "if __name__ == '__main__':\n"
        "    settings = Settings(host='127.0.0.1', port=int(sys.argv[1]), workers=2)\n"
        "    sys.exit(run_server(settings, app='no_such_module:app'))\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), str(free_port())],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "a worker failed to start" in result.stderr


@pytest.mark.slow
def test_multi_model_mode_removes_the_registry_it_made_when_it_stops(tmp_path: Path) -> None:
    (tmp_path / "no-model").mkdir()
    server = ServerProcess(
        model_dir=tmp_path / "no-model",
        log_path=tmp_path / "server.log",
        workers=2,
        env={"SAGEMAKER_MULTI_MODEL": "true", "TMPDIR": str(tmp_path)},
    )
    with server:
        server.wait_healthy(timeout=90)
        registries = list(tmp_path.glob("rtb-inference-models-*"))
        assert len(registries) == 1 and registries[0].is_dir()
        assert server.stop() == 0  # SIGTERM: a drain, then a normal exit
    assert not registries[0].exists(), server.log()
