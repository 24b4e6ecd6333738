"""What the built image is: its metadata, its size, what it carries and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.container

SIZE_BUDGET_BYTES = 350_000_000


def run_to_completion(
    engine: Any, image: str, command: list[str], **options: Any
) -> tuple[int, str]:
    """`docker run IMAGE command`: (exit status, output); the container is removed."""
    container = engine.containers.run(image, command, detach=True, **options)
    try:
        status = int(container.wait(timeout=120)["StatusCode"])
        return status, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_sagemaker_metadata(engine: Any, image: str) -> None:
    config = engine.images.get(image).attrs["Config"]
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
    assert "8080/tcp" in config["ExposedPorts"]
    # Exec form: `serve` runs as PID 1 (no shell in between), so SIGTERM reaches the server.
    assert config["Entrypoint"] == ["/opt/venv/bin/serve"]
    assert config["Cmd"] == ["serve"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["RTB_MODEL_DIR"] == "/opt/ml/model"
    assert env["RTB_DEFAULT_MODEL_DIR"] == "/opt/rtb/default-model"


def test_image_is_under_its_size_budget(engine: Any, image: str) -> None:
    size = engine.images.get(image).attrs["Size"]
    assert size < SIZE_BUDGET_BYTES, f"image is {size / 1e6:.1f} MB, budget 350 MB"


def test_runtime_carries_no_training_stack_and_no_installer(engine: Any, image: str) -> None:
    probe = (
        "import importlib.util, json, shutil; "
        "print(json.dumps({"
        "'missing': [m for m in ('xgboost', 'pip', 'setuptools', 'scipy.stats', 'scipy.linalg') "
        "if importlib.util.find_spec(m.split('.')[0]) is None or "
        "('.' in m and importlib.util.find_spec(m) is None)], "
        "'present': [m for m in ('numpy', 'treelite', 'tl2cgen', 'uvloop', 'scipy.sparse', "
        "'model.build', 'serve.app', 'container.entrypoint') if importlib.util.find_spec(m)], "
        "'gcc': shutil.which('gcc')}))"
    )
    status, output = run_to_completion(engine, image, ["-c", probe], entrypoint=["python"])
    assert status == 0, output
    found = json.loads(output.strip().splitlines()[-1])
    assert sorted(found["missing"]) == sorted(
        ["xgboost", "pip", "setuptools", "scipy.stats", "scipy.linalg"]
    )
    assert len(found["present"]) == 8, found
    assert found["gcc"], "the default image compiles raw models: gcc must be on PATH"


def test_an_unknown_command_is_refused_with_usage_status(engine: Any, image: str) -> None:
    status, output = run_to_completion(engine, image, ["train"])
    assert status == 2, output
    assert "invalid choice: 'train'" in output


def test_a_model_that_cannot_load_never_becomes_healthy(
    engine: Any, image: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bad = tmp_path_factory.mktemp("bad-model")
    (bad / "xgboost-model").write_bytes(b"this is not a model\n" * 10)
    bad.chmod(0o755)
    (bad / "xgboost-model").chmod(0o644)
    status, output = run_to_completion(
        engine, image, ["serve"], volumes={str(bad): {"bind": "/opt/ml/model", "mode": "ro"}}
    )
    assert status == 1, output
    assert "cannot serve" in output
    assert "Uvicorn running" not in output


def test_a_raw_model_with_no_room_to_compile_exits_with_the_reason(
    engine: Any, image: str, seed_raw_dir: Path
) -> None:
    status, output = run_to_completion(
        engine,
        image,
        ["serve"],
        volumes={str(seed_raw_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
        read_only=True,
        tmpfs={"/tmp": "rw,size=4k"},
    )
    assert status == 1, output
    assert "cannot serve the model in /opt/ml/model" in output
    assert "No space left on device" in output
    assert "Uvicorn running" not in output
