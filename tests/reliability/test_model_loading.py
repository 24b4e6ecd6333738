"""Hostile and broken models: refused with a clear log line, never healthy, no harm done.

Each case starts the real server on the model and watches /ping until the
process exits: /ping must never answer 200, the exit code must be non-zero, the log must say
what was refused, and the payload's marker file (a pickle's reduce, a shared library's
constructor) or the traversal's target must not exist afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.server import REPO_ROOT, ServerProcess, ping
from tests.artifacts import unpack

from .conftest import StartServer
from .hostile_models import (
    SEED_MODEL,
    HostileModel,
    artifact_cases,
    corrupt_library_with_matching_hash,
    pickle_cases,
    planted_artifact,
    traversal_archives,
)

REFUSAL_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def hostile_artifacts(artifact_dir: Path, hostile_root: Path) -> dict[str, HostileModel]:
    return {case.name: case for case in artifact_cases(artifact_dir, hostile_root / "artifacts")}


@pytest.fixture(scope="module")
def hostile_sources(hostile_root: Path) -> dict[str, HostileModel]:
    return {case.name: case for case in pickle_cases(hostile_root / "sources")}


@pytest.fixture(scope="module")
def hostile_archives(hostile_root: Path) -> dict[str, HostileModel]:
    return {case.name: case for case in traversal_archives(hostile_root / "archives")}


def watch_until_exit(
    server: ServerProcess, *, until_healthy: bool = False
) -> tuple[int | None, list[int | None]]:
    """Poll /ping until the server exits (or answers 200, with `until_healthy`) or the deadline
    passes; return (exit code or None, the statuses seen)."""
    statuses: list[int | None] = []
    deadline = time.monotonic() + REFUSAL_DEADLINE_S
    while time.monotonic() < deadline:
        code = server.returncode()
        if code is not None:
            return code, statuses
        statuses.append(ping(server.port, timeout=1.0))
        if until_healthy and statuses[-1] == 200:
            break
        time.sleep(0.1)
    return server.returncode(), statuses


def assert_refused(server: ServerProcess, case: HostileModel) -> None:
    code, statuses = watch_until_exit(server)
    log = server.log()
    assert 200 not in statuses, f"{case.name}: /ping answered 200 on a bad model\n{log}"
    assert code is not None, f"{case.name}: still running after {REFUSAL_DEADLINE_S} s\n{log}"
    assert code != 0, f"{case.name}: exited 0 on a bad model\n{log}"
    lowered = log.lower()
    assert any(word in lowered for word in case.log_mentions), (
        f"{case.name}: the log does not say why (expected one of {case.log_mentions}):\n{log}"
    )
    for path in case.must_not_exist:
        assert not path.exists(), f"{case.name}: {path} exists: the payload ran or escaped"


ARTIFACT_CASES = [
    "library-byte-flipped",
    "library-replaced-by-evil",
    "library-symlink-outside",
    "manifest-library-traversal",
    "manifest-library-absolute",
    "library-truncated",
    "checkpoint-truncated-no-library",
    "verification-garbage-rehashed",
    "verification-pickled-object",
    "verification-expected-shifted",
    "manifest-truncated",
    "manifest-missing-file",
]


SOURCE_CASES = [
    "pickle-os-system",
    "pickle-builtins-exec",
    "pickle-builtins-eval",
    "pickle-subprocess-popen",
    "pickle-booster-state-payload",
    "model-truncated-seed",
    "model-garbage",
    "model-empty",
]


@pytest.mark.parametrize("name", ARTIFACT_CASES + SOURCE_CASES)
def test_a_broken_or_hostile_model_is_refused(
    hostile_artifacts: dict[str, HostileModel],
    hostile_sources: dict[str, HostileModel],
    start_server: StartServer,
    name: str,
) -> None:
    """Our artifact broken or tampered with, or a raw SageMaker model carrying a payload."""
    case = {**hostile_artifacts, **hostile_sources}[name]
    assert_refused(start_server(case.path, wait=False), case)


def test_a_bad_model_is_refused_with_several_workers_too(
    hostile_artifacts: dict[str, HostileModel], start_server: StartServer
) -> None:
    """With a supervisor and two workers the whole server must still exit non-zero, not keep
    restarting workers or exit 0."""
    case = hostile_artifacts["library-replaced-by-evil"]
    assert_refused(start_server(case.path, workers=2, wait=False), case)


ARCHIVE_CASES = [
    "tar-dotdot",
    "tar-absolute",
    "tar-symlink-then-write",
    "tar-symlink-model",
    "tar-hardlink",
    "tar-fifo",
    "tar-too-many-members",
]


@pytest.mark.parametrize("name", ARCHIVE_CASES)
def test_a_hostile_archive_is_refused_by_model_build(
    hostile_archives: dict[str, HostileModel], tmp_path: Path, name: str
) -> None:
    """`python -m model build evil.tar.gz` exits 1 with a message naming the member, and
    writes nothing outside (the traversal target does not exist, the output was not made)."""
    case = hostile_archives[name]
    output = tmp_path / "out" / "model.tar.gz"
    result = subprocess.run(
        [sys.executable, "-m", "model", "build", str(case.path), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # a relative traversal would land here
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert any(word in result.stderr.lower() for word in case.log_mentions), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not output.exists()
    for path in case.must_not_exist:
        assert not path.exists(), f"{case.name}: {path} was written outside the target"


def test_a_corrupt_library_whose_hash_matches_is_refused_or_bypassed_with_a_log_line(
    artifact_dir: Path, hostile_root: Path, start_server: StartServer
) -> None:
    """Only the loader can notice this one. Acceptable: refuse it (exit non-zero, the log names
    the library) or fall back to the treelite checkpoint and say so. Not acceptable: a worker
    killed by a signal with nothing in the log."""
    directory = corrupt_library_with_matching_hash(artifact_dir, hostile_root / "corrupt")
    server = start_server(directory, wait=False)
    code, statuses = watch_until_exit(server, until_healthy=True)
    log = server.log()
    if code is None:  # still running: it must have fallen back, verified, and said so
        assert 200 in statuses, log
        assert "gtil" in log.lower() or "fallback" in log.lower(), log
    else:
        assert code > 0, f"killed by signal {-code} with no refusal in the log:\n{log}"
        assert 200 not in statuses, log
        assert "model.so" in log, log


@pytest.mark.parametrize("name", ["tar-dotdot", "tar-symlink-then-write", "tar-hardlink"])
def test_a_hostile_model_tar_gz_in_the_model_dir_is_refused_by_the_server(
    hostile_archives: dict[str, HostileModel], tmp_path: Path, start_server: StartServer, name: str
) -> None:
    """SageMaker may leave the archive itself in /opt/ml/model; the server imports it at
    start-up through the same checked extraction, so the refusal and the proof are the same."""
    case = hostile_archives[name]
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copyfile(case.path, model_dir / "model.tar.gz")
    server = start_server(model_dir, env={"TMPDIR": str(tmp_path)}, wait=False)
    assert_refused(server, case)


def test_an_artifact_planted_in_the_import_cache_by_another_user_is_not_loaded(
    artifact_dir: Path, hostile_root: Path, tmp_path: Path, start_server: StartServer
) -> None:
    """Another local user pre-creates the cache entry for a public model (its digest is
    predictable) in a world-writable temp dir. The server must not load code from a cache it
    does not own (or that others can write); the marker proves whether the library ran."""
    from container.model_source import CACHE_DIR_NAME, source_digest

    raw = unpack(SEED_MODEL, tmp_path / "raw")
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()
    shared_tmp.chmod(0o1777)  # like /tmp
    marker = hostile_root / "planted-library-ran.marker"
    cache = shared_tmp / CACHE_DIR_NAME
    cache.mkdir()
    planted = planted_artifact(artifact_dir, cache / source_digest(raw)[:32], marker=marker)
    for path in [cache, *cache.rglob("*")]:
        os.chown(path, 65534, 65534)  # owned by "nobody", as another user would leave it
        path.chmod(0o777 if path.is_dir() else 0o666)
    server = start_server(raw, env={"TMPDIR": str(shared_tmp)}, wait=False)
    watch_until_exit(server, until_healthy=True)
    server.stop()
    assert planted.exists()
    assert not marker.exists(), f"the server loaded the planted library:\n{server.log()}"


def test_the_good_artifact_still_serves(artifact_dir: Path, start_server: StartServer) -> None:
    """The control case: the same harness on the untouched artifact becomes healthy."""
    server = start_server(artifact_dir)
    assert ping(server.port) == 200
