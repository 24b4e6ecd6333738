"""Faults: a worker killed with SIGKILL, SIGTERM under load, a drain of keep-alive clients, a
body over the limit sent whole before reading, a read-only model and a full disk.

Short versions of `python -m benchmark faults` (same functions, shorter runs), plus start-up on
a read-only model directory with the temporary directory on a full tmpfs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from benchmark import faults

from . import rawhttp
from .conftest import StartServer
from .hostile_models import SEED_MODEL

ROW = b"2,0,0.0,7.0,3.0,20.0,2"


@pytest.fixture
def short_load(artifact_dir: Path, tmp_path: Path) -> faults.Load:
    """Two workers under a lighter load than the command's, for a shorter run."""
    return faults.Load(
        model_dir=artifact_dir,
        log_dir=tmp_path,
        workers=2,
        connections=8,
        rate=200.0,
        before_s=2.0,
    )


def test_killed_workers_are_replaced_and_only_their_requests_fail(short_load: faults.Load) -> None:
    """Both original workers are killed in turn: at the end only replacements serve."""
    report = faults.kill_worker(
        short_load,
        between_s=3.0,  # the first replacement has imported and loaded the model by then
        after_s=4.0,
    )
    print(f"\n{faults.render_kill(report)}")
    assert len(report.replacement_pids) == 2, "uvicorn's supervisor did not replace a worker"
    assert not set(report.replacement_pids) & set(report.killed_pids)
    # Each client connection on a killed worker loses at most the request in flight (or the
    # next one it sends on the dead socket); connections to the other worker lose nothing.
    assert report.failed == report.failed_connections <= 2 * report.connections
    assert report.failed_later == 0
    assert report.served_by_replacements > 0
    assert report.server_errors == 0
    assert set(report.outcomes) <= {"200", "CLOSED_BEFORE_RESPONSE", "CLOSED_MID_RESPONSE"}
    # /ping stays truthful: 200 throughout, since a worker always serves; a probe the dying
    # worker had just accepted may be reset (at most one per kill, within a second of it).
    assert report.ping["pings"] > 0, report.ping
    assert report.ping_failed_otherwise == 0 and report.ping_failed_at_kill <= 2, report
    assert report.passed


def test_sigterm_under_load_finishes_in_flight_requests_and_exits_0(
    short_load: faults.Load,
) -> None:
    report = faults.sigterm(short_load)
    print(f"\n{faults.render_sigterm(report)}")
    assert report.probe_status == 200, "a request in flight at SIGTERM was not answered"
    assert report.failed_in_flight == 0, report.outcomes
    assert report.ok > 0
    assert report.exit_code == 0
    assert report.exit_s is not None and report.exit_s < faults.SIGTERM_DEADLINE_S
    assert report.passed


def test_sigterm_drains_keep_alive_clients_without_a_reset(
    artifact_dir: Path, tmp_path: Path
) -> None:
    """Clients sending back to back across SIGTERM, on keep-alive connections and on a new
    connection for each request: each request is answered or, once the listener is gone,
    refused before it connects; keep-alive clients are told `Connection: close`."""
    run = faults.drain_run(
        model_dir=artifact_dir,
        log_path=tmp_path / "drain.log",
        workers=1,
        clients=4,
        fresh_clients=2,
    )
    print(f"\n{run}")
    assert run.reset == 0 and run.disconnected == 0, run
    assert run.answered_after_sigterm > 0, "nothing was served during the drain"
    assert run.close_headers >= 4, "a client was not told to close"  # each, once at least
    assert run.refused == 6  # every client ends on the closed listener
    assert run.exit_code == 0
    assert run.exit_s is not None and run.exit_s < faults.SIGTERM_DEADLINE_S


def test_a_body_over_the_limit_sent_whole_before_reading_gets_the_413(
    artifact_dir: Path, start_server: StartServer
) -> None:
    """A client that writes a 7 MB body before it reads (as http.client does) gets the 413
    JSON, not a reset: the server reads and discards the rest after answering."""
    server = start_server(artifact_dir)
    body = ROW + b"\n" + b"1,2,3.0,4.0,5.0,6.0,7\n" * (7 * rawhttp.MIB // 22)
    with rawhttp.connect(server.port, timeout=30) as sock:
        sock.sendall(rawhttp.request_bytes(body=body))  # raises on a reset
        response = rawhttp.read_response(sock, timeout=30)
        assert response.status == 413
        assert response.header("connection") == "close"
        assert orjson.loads(response.body)["error"] == "payload_too_large"
        sock.settimeout(30)
        assert sock.recv(1) == b"", "the server did not close after its 413"


def test_faults_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--model-dir", "/nonexistent"],
        ["--model-dir", ".", "--workers", "1"],
        ["--model-dir", ".", "--rate", "0"],
        ["--model-dir", ".", "--scenario", "drain", "--drain-runs", "0"],
        ["--model-dir", ".", "--scenario", "reboot"],
    ):
        with pytest.raises(SystemExit) as exited:
            faults.main(argv)
        assert exited.value.code == 2, argv
    assert "kill-worker needs --workers 2" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Read-only model directory, full disk.


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[Path]:
    """`mount ARGS TARGET` on a new directory `target`, unmounted on the way out."""
    target.mkdir(parents=True)
    _mount(*args, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False, timeout=30)


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """A read-only bind mount of `source` at `target` (even root cannot write through it)."""
    with _mounted(target, "--bind", str(source)):
        _mount("-o", "remount,ro,bind", str(target))
        yield target


@contextlib.contextmanager
def full_tmpfs(target: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs filled to the last byte."""
    with _mounted(target, "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
        with contextlib.suppress(OSError), (target / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield target


@pytest.fixture
def mounts_allowed(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only view and a full tmpfs needs root")
    probe = tmp_path / "probe"
    try:
        with full_tmpfs(probe):
            pass
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"mount is not permitted here: {exc}")


def test_a_compiled_artifact_serves_from_a_read_only_dir_with_a_full_disk(
    artifact_dir: Path, tmp_path: Path, start_server: StartServer, mounts_allowed: None
) -> None:
    with (
        read_only_view(artifact_dir, tmp_path / "ro-model") as model_dir,
        full_tmpfs(tmp_path / "full-tmp") as full,
    ):
        with pytest.raises(OSError):
            (model_dir / "written").write_bytes(b"x")
        with pytest.raises(OSError):
            (full / "written").write_bytes(b"x" * 8192)
        server = start_server(model_dir, env={"TMPDIR": str(full)})
        response = rawhttp.exchange(server.port, rawhttp.request_bytes(body=ROW))
        assert response.status == 200
        assert abs(float(response.body) - 0.00084757) < 1e-6
        server.stop()


def test_a_raw_sagemaker_model_on_a_read_only_dir_is_imported_into_tmpdir(
    tmp_path: Path, start_server: StartServer, mounts_allowed: None
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with tarfile.open(SEED_MODEL) as tar:
        tar.extractall(raw, filter="data")
    writable = tmp_path / "tmp"
    writable.mkdir()
    with read_only_view(raw, tmp_path / "ro-raw") as model_dir:
        server = start_server(model_dir, env={"TMPDIR": str(writable)}, timeout=120)
        response = rawhttp.exchange(server.port, rawhttp.request_bytes(body=ROW))
        assert response.status == 200
        assert abs(float(response.body) - 0.00084757) < 1e-6
        server.stop()
    assert any(writable.rglob("manifest.json")), "the import did not land in TMPDIR"
