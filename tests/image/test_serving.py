"""The image serving over HTTP: the baked model, a raw SageMaker model, our artifact, as root,
as an arbitrary non-root user and on a read-only root file system."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import contract

from .conftest import RunServer, matches_reference, seed_answers, served

pytestmark = pytest.mark.container


def process_uid(container: Any) -> str:
    """The real uid of the container's PID 1, read from the host's /proc where the engine runs
    on this kernel (rootful podman, Docker on Linux), else through `exec id -u`."""
    container.reload()
    status = Path(f"/proc/{container.attrs['State']['Pid']}/status")
    try:
        text = status.read_text()
    except OSError:
        output: bytes = container.exec_run(["id", "-u"]).output
        return output.decode().strip()
    return next(line.split()[1] for line in text.splitlines() if line.startswith("Uid:"))


@pytest.mark.parametrize("command", [None, ("serve",)], ids=["docker-run-IMAGE", "IMAGE-serve"])
def test_baked_default_model_serves_with_no_volume(
    run_server: RunServer, command: tuple[str, ...] | None
) -> None:
    any_score = partial(contract.check_content_types, expected=None)
    log = served(run_server, contract.check_ping, any_score, command=command)
    assert "serving the default model /opt/rtb/default-model" in log
    assert "compiled predictor" in log


def test_raw_sagemaker_model_is_imported_at_start_and_matches_reference(
    run_server: RunServer, seed_raw_dir: Path, reference_csv: Path
) -> None:
    log = served(run_server, matches_reference(reference_csv), seed_answers, model_dir=seed_raw_dir)
    assert "holds a raw SageMaker model; building the serving artifact" in log
    assert "compiled predictor" in log


def test_our_artifact_mounted_is_served_as_is(
    run_server: RunServer, seed_artifact_dir: Path, reference_csv: Path
) -> None:
    log = served(
        run_server,
        matches_reference(reference_csv),
        contract.check_bad_inputs,
        contract.check_payload_limit,
        contract.check_custom_attributes,
        model_dir=seed_artifact_dir,
    )
    assert "building the serving artifact" not in log
    assert "serving /opt/ml/model" in log


def test_arbitrary_non_root_user_imports_a_raw_model(
    run_server: RunServer, seed_raw_dir: Path
) -> None:
    with run_server(model_dir=seed_raw_dir, user="12345:12345") as server:
        seed_answers(server.base_url)
        uid = process_uid(server.container)
    assert uid == "12345"


def test_read_only_root_file_system_serves_a_compiled_artifact(
    run_server: RunServer, seed_artifact_dir: Path
) -> None:
    served(run_server, seed_answers, model_dir=seed_artifact_dir, read_only=True)


def test_read_only_root_non_root_user_compiles_a_raw_model_into_tmpfs(
    run_server: RunServer, seed_raw_dir: Path
) -> None:
    """Docker's `--read-only` gives no writable /tmp: the documented way is `--tmpfs /tmp`."""
    log = served(
        run_server,
        seed_answers,
        model_dir=seed_raw_dir,
        read_only=True,
        user="12345:12345",
        tmpfs={"/tmp": "rw,size=256m"},
    )
    assert "building the serving artifact into /tmp/" in log


def test_a_full_tmp_does_not_prevent_serving_a_compiled_artifact(
    run_server: RunServer, seed_artifact_dir: Path
) -> None:
    served(
        run_server,
        seed_answers,
        model_dir=seed_artifact_dir,
        read_only=True,
        tmpfs={"/tmp": "rw,size=4k"},
    )
