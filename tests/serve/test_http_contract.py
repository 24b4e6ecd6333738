"""The contract over real HTTP: `python -m container` started as a subprocess, the seed model served
from its raw SageMaker artifact, every format pair, bad inputs, limits, SIGTERM, fuzzing."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_process import running_server

from benchmark.server import REPO_ROOT as ROOT
from benchmark.server import ServerProcess, free_port
from tests.contract import (
    SEED_ROW,
    SEED_SCORE,
    check_all,
    check_bad_inputs,
    check_content_types,
    check_custom_attributes,
    check_payload_limit,
    check_ping,
    check_seed_reference,
    host_and_port,
)
from tests.reliability import rawhttp
from tests.seed import SEED_REFERENCE, SEED_TARBALL

REFERENCE = SEED_REFERENCE

pytestmark = [
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def seed_raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What SageMaker puts in /opt/ml/model for the seed model: the unpacked tarball."""
    directory = tmp_path_factory.mktemp("opt-ml-model")
    with tarfile.open(SEED_TARBALL) as archive:
        archive.extractall(directory, filter="data")
    return directory


@pytest.fixture(scope="module")
def seed_server(
    seed_raw_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(
        seed_raw_dir, tmp_path=tmp_path_factory.mktemp("seed-server"), workers=2
    ) as server:
        yield server


def test_ping(seed_server: ServerProcess) -> None:
    check_ping(seed_server.base_url)


def test_check_all_passes_against_the_seed_server(seed_server: ServerProcess) -> None:
    check_all(seed_server.base_url, reference_csv=REFERENCE)


def test_every_content_type_and_accept_pair(seed_server: ServerProcess) -> None:
    check_content_types(seed_server.base_url)


def test_seed_model_from_its_raw_artifact_matches_reference_csv(seed_server: ServerProcess) -> None:
    assert check_seed_reference(seed_server.base_url, REFERENCE) <= 1e-6


def test_bad_inputs_are_4xx(seed_server: ServerProcess) -> None:
    check_bad_inputs(seed_server.base_url)


def test_payload_limit(seed_server: ServerProcess) -> None:
    check_payload_limit(seed_server.base_url)


def test_custom_attributes(seed_server: ServerProcess) -> None:
    check_custom_attributes(seed_server.base_url)


def test_the_raw_model_was_compiled_once_and_no_request_was_logged(
    seed_server: ServerProcess,
) -> None:
    log = seed_server.log()
    assert log.count("building the serving artifact") == 1
    assert "compiled predictor" in log
    assert "POST /invocations" not in log  # no access log by default


_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
# Header values as an HTTP client can send them (no surrounding whitespace).
_HEADER = _TEXT.map(str.strip)
_CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "text/csv",
            "application/json",
            "application/jsonlines",
            "application/x-npy",
            "text/csv; charset=utf-8",
        ]
    ),
    _HEADER,
)
_ACCEPTS = st.one_of(
    st.none(),
    st.sampled_from(["*/*", "text/csv", "application/json;q=0.1, text/*", "image/png"]),
    _HEADER,
)
_CSV_CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "1e400", "-0", " 3 ", "1_0", "0x1"]),
    _TEXT,
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.lists(_CSV_CELL, min_size=0, max_size=9).map(lambda cells: ",".join(cells).encode()),
    st.lists(st.lists(_CSV_CELL, min_size=7, max_size=7), max_size=4).map(
        lambda rows: "\n".join(",".join(r) for r in rows).encode()
    ),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | _TEXT,
        lambda children: (
            st.lists(children, max_size=8) | st.dictionaries(_TEXT, children, max_size=3)
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_BODIES, content_type=_CONTENT_TYPES, accept=_ACCEPTS, attributes=_HEADER)
def test_random_bodies_and_headers_never_get_a_5xx(
    seed_server: ServerProcess, body: bytes, content_type: str, accept: str | None, attributes: str
) -> None:
    headers = {"content-type": content_type, "x-amzn-sagemaker-custom-attributes": attributes}
    if accept is not None:
        headers["accept"] = accept
    response = httpx.post(
        f"{seed_server.base_url}/invocations", content=body, headers=headers, timeout=10.0
    )
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code not in (200, 204):  # 204: an empty body
        assert set(response.json()) == {"error", "message"}


def test_tarball_in_the_model_dir_is_imported(tmp_path: Path) -> None:
    """A model dir holding only the uploaded `model.tar.gz` (not unpacked) is served too."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(SEED_TARBALL, model_dir / "model.tar.gz")
    with running_server(model_dir, tmp_path=tmp_path) as server:
        check_seed_reference(server.base_url, REFERENCE, batch=2500)


def test_default_model_dir_is_used_when_the_model_dir_is_empty(
    seed_raw_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"RTB_DEFAULT_MODEL_DIR": str(seed_raw_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    with running_server(empty, tmp_path=tmp_path, env=env) as server:  # --workers 1 wins
        check_content_types(server.base_url)
        parameters = httpx.get(f"{server.base_url}/execution-parameters", timeout=5).json()
    assert parameters["MaxConcurrentTransforms"] == 1


def test_restart_reuses_the_cached_artifact(seed_raw_dir: Path, tmp_path: Path) -> None:
    for _ in range(2):
        with running_server(seed_raw_dir, tmp_path=tmp_path) as server:
            check_ping(server.base_url)
        log = server.log()
    assert "reusing its cached artifact" in log
    assert "building the serving artifact" not in log


def test_a_model_failing_verification_exits_non_zero_without_serving(tmp_path: Path) -> None:
    from artifacts import build_tiny_artifact, corrupt_expected

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    bad = corrupt_expected(build_tiny_artifact(tmp_path / "good"), tmp_path / "bad")
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "container",
            "--model-dir",
            str(bad),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "fails verification" in result.stderr
    assert "refusing to serve" in result.stderr


def test_sigterm_lets_requests_in_flight_finish(seed_raw_dir: Path, tmp_path: Path) -> None:
    """Requests whose bodies are still arriving when SIGTERM lands are answered, then it exits."""
    body = ",".join(repr(v) for v in SEED_ROW).encode()
    with running_server(seed_raw_dir, tmp_path=tmp_path, workers=1) as server:
        host, port = host_and_port(server.base_url)
        sockets = []
        for _ in range(5):
            connection = socket.create_connection((host, port), timeout=10)
            connection.sendall(rawhttp.request_bytes(body=body)[: -len(body) + 5])
            sockets.append(connection)
        time.sleep(0.3)  # the server has read the headers: these requests are in flight
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        answers = []
        for connection in sockets:
            connection.sendall(body[5:])
            answers.append(rawhttp.read_response(connection))
            connection.close()
        # uvicorn re-raises the SIGTERM it handled once the graceful shutdown is done; a hang
        # would end in stop()'s SIGKILL (-9) instead.
        assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log()
    for answer in answers:
        assert answer.status == 200, answer
        assert abs(float(answer.body) - SEED_SCORE) <= 1e-6, answer


def test_without_a_compiler_the_raw_model_is_served_through_gtil(
    seed_raw_dir: Path, tmp_path: Path
) -> None:
    with running_server(seed_raw_dir, tmp_path=tmp_path, env={"PATH": str(tmp_path)}) as server:
        check_seed_reference(server.base_url, REFERENCE, batch=2500)
        log = server.log()
    assert "gtil predictor" in log
    assert "GTIL" in log and "WARNING" in log


def test_slow_or_silent_clients_are_disconnected(seed_raw_dir: Path, tmp_path: Path) -> None:
    """Slow-loris: a request head that does not complete within RTB_HEADER_TIMEOUT is dropped,
    the body has its own deadline (SAGEMAKER_MODEL_SERVER_TIMEOUT), and others are served."""
    env = {"RTB_HEADER_TIMEOUT": "1", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"}
    with running_server(seed_raw_dir, tmp_path=tmp_path, env=env) as server:
        host, port = host_and_port(server.base_url)
        silent = socket.create_connection((host, port), timeout=10)
        slow_head = socket.create_connection((host, port), timeout=10)
        slow_head.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
        slow_body = socket.create_connection((host, port), timeout=10)
        slow_body.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 100\r\n\r\n1,2"
        )
        check_ping(server.base_url)  # others are served meanwhile
        # Without the deadlines these reads would hit the sockets' own 10 s timeout and raise.
        assert silent.recv(100) == b""  # closed by the server
        assert slow_head.recv(100) == b""
        answer = rawhttp.read_response(slow_body)
        assert answer.status == 408, answer
        assert b"request_timeout" in answer.body
        for connection in (silent, slow_head, slow_body):
            connection.close()
        check_ping(server.base_url)
