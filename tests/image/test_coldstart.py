"""`python -m benchmark coldstart` against the image under test: it measures every case."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from benchmark.coldstart import (
    CASE_TITLES,
    PODMAN_SOCKETS,
    EngineUnavailableError,
    connect_engine,
    main,
)

pytestmark = pytest.mark.container


def test_coldstart_benchmark_reports_size_and_every_case(
    image: str, seed_tarball: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["--image", image, "--seed-model", str(seed_tarball), "--repeat", "1", "--workers", "1"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.search(rf"^image {re.escape(image)}: \d+\.\d MB", out, re.MULTILINE), out
    assert "workers: 1" in out
    for title in CASE_TITLES.values():
        row = re.search(
            rf"^{title}\s+1\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+\d+\.\d$",
            out,
            re.MULTILINE,
        )
        assert row is not None, out
        engine_s, median_s, worst_s = (float(value) for value in row.groups())
        assert 0 < engine_s <= median_s == worst_s, out


def test_coldstart_refuses_a_missing_seed_model_and_bad_counts(tmp_path: Path) -> None:
    assert main(["--seed-model", str(tmp_path / "absent.tar.gz")]) == 2
    assert main(["--repeat", "0", "--cases", "baked"]) == 2
    assert main(["--workers", "0", "--cases", "baked"]) == 2


def test_no_engine_is_an_error_naming_every_endpoint_tried(tmp_path: Path) -> None:
    dead = tmp_path / "docker.sock"
    with pytest.raises(EngineUnavailableError) as raised:
        connect_engine(env={"DOCKER_HOST": f"unix://{dead}"}, podman_sockets=())
    assert f"unix://{dead}" in str(raised.value)
    assert "10-containers.sh" in str(raised.value)


def test_a_socket_nobody_listens_on_is_an_answer_not_a_leak(tmp_path: Path) -> None:
    """A stale socket file refuses the connection; nothing is left open (filterwarnings=error)."""
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(stale))  # bound, never listening, then closed: the file stays
    with pytest.raises(EngineUnavailableError, match="stale.sock"):
        connect_engine(env={"DOCKER_HOST": f"unix://{stale}"}, podman_sockets=(str(stale),))


def test_a_dead_docker_host_falls_back_to_a_podman_socket(tmp_path: Path) -> None:
    """Where podman's socket answers (as in CI), a DOCKER_HOST that does not is passed over."""
    if not any(Path(path).is_socket() for path in PODMAN_SOCKETS):
        pytest.skip("no podman API socket on this machine")
    client = connect_engine(env={"DOCKER_HOST": f"unix://{tmp_path / 'dead.sock'}"})
    try:
        assert client.ping()
        assert "podman" in str(client.version()).lower()
    finally:
        client.close()
