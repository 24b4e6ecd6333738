"""examples/sagemaker-sdk.ipynb, run headless the way a data scientist coming from AWS's RTB
guidance runs it: the SageMaker Python SDK (its own venv, `make sdk`) hosts the image under test
in local mode through the engine's Docker-compatible socket (`docker-compose`, `DOCKER_HOST`),
and the scores of every serializer (CSV, JSON, NumPy, RecordIO-protobuf) match XGBoost's own on
the seed model's 5,000 reference rows. The cells that need AWS are skipped (no `RTB_AWS`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.image.conftest import engine, image  # noqa: F401  (the image built once per session)
from tests.seed import SEED_REFERENCE

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "sagemaker-sdk.ipynb"
RUNNER = ROOT / "examples" / "notebook.py"
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
FORMATS = {"text/csv", "application/json", "application/x-npy", "application/x-recordio-protobuf"}
TOLERANCE = 1e-6


def test_the_committed_notebook_holds_no_outputs() -> None:
    """Outputs belong in docs/notebook.md; the .ipynb stays reviewable."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code
    for index, cell in enumerate(code, start=1):
        assert cell["outputs"] == [], f"code cell {index} has outputs"
        assert cell["execution_count"] is None, f"code cell {index} has an execution count"


def _compose_available() -> bool:
    if shutil.which("docker-compose"):
        return True
    found = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return found.returncode == 0 if shutil.which("docker") else False


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The SDK's venv, made from requirements/sdk.txt when missing or stale."""
    subprocess.run(["make", "--no-print-directory", "sdk"], cwd=ROOT, check=True)
    return SDK_PYTHON


@pytest.fixture
def local_mode(engine: Any, image: str) -> Iterator[str]:  # noqa: F811
    """What local mode needs besides the engine; afterwards, no container of its left behind
    (a failed cell stops the notebook before it deletes its endpoint)."""
    if not _compose_available():
        message = "SageMaker local mode needs docker-compose (or `docker compose`)"
        if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"RTB_REQUIRE_CONTAINER=1 but {message}", pytrace=False)
        pytest.skip(message)
    image_id = engine.images.get(image).id
    before = {container.id for container in _local_mode_containers(engine, image_id)}
    yield image
    for container in _local_mode_containers(engine, image_id):
        if container.id not in before:
            container.remove(force=True)


def _local_mode_containers(client: Any, image_id: str) -> list[Any]:
    """Containers local mode started from the image (its compose services are `algo-N-xxxxx`)."""
    found = client.containers.list(all=True, filters={"name": "-algo-"})
    return [container for container in found if container.image.id == image_id]


@pytest.mark.container
@pytest.mark.slow
def test_the_notebook_runs_in_local_mode_with_parity(
    local_mode: str, sdk_python: Path, tmp_path: Path
) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "RTB_AWS"}
    environment |= {"RTB_IMAGE": local_mode, "RTB_NOTEBOOK_OUTPUT": str(tmp_path / "output")}
    markdown = tmp_path / "notebook.md"
    run = subprocess.run(
        [str(sdk_python), str(RUNNER), "--markdown", str(markdown)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, f"the notebook failed:\n{run.stderr[-6000:]}"

    results = json.loads((tmp_path / "output" / "results.json").read_text())
    assert set(results) == FORMATS
    rows = len(SEED_REFERENCE.read_text().splitlines()) - 1  # less the header
    for media_type, result in results.items():
        assert result["rows"] == rows, media_type
        assert result["max_abs_diff"] <= TOLERANCE, media_type
    rendered = markdown.read_text()
    assert "skipped: set RTB_AWS=1" in rendered
    assert "\x1b[" not in rendered
