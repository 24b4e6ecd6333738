"""The image as a SageMaker multi-model endpoint: `SAGEMAKER_MULTI_MODEL=true`, models under
/opt/ml/models, a read-only root file system with a tmpfs /tmp, a non-root user."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from docker.types import Mount

from tests import contract

from .conftest import RunServer


def test_the_image_loads_and_invokes_models_by_name(
    run_server: RunServer,
    seed_raw_dir: Path,
    seed_artifact_dir: Path,
    reference_csv: Path,
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    shutil.copytree(seed_raw_dir, models / "raw" / "model")
    shutil.copytree(seed_artifact_dir, models / "compiled" / "model")
    models.chmod(0o755)
    mount = Mount(target="/opt/ml/models", source=str(models), type="bind", read_only=True)
    options: dict[str, Any] = {
        "model_dir": None,
        "environment": {"SAGEMAKER_MULTI_MODEL": "true"},
        "mounts": [mount],
        "read_only": True,
        "user": "12345:12345",
        "tmpfs": {"/tmp": "rw,size=256m"},
    }
    with run_server(**options) as server, httpx.Client(base_url=server.base_url) as client:
        for name in ("raw", "compiled"):
            url = f"/opt/ml/models/{name}/model"
            loaded = client.post("/models", json={"model_name": name, "url": url}, timeout=120)
            assert loaded.status_code == 200, loaded.text
            answer = client.post(
                f"/models/{name}/invoke",
                content=",".join(str(v) for v in contract.SEED_ROW),
                headers={"content-type": "text/csv"},
            )
            assert answer.status_code == 200, answer.text
            assert abs(float(answer.text) - contract.SEED_SCORE) <= 1e-6
        rows, expected = contract.read_reference(reference_csv)
        batch = "\n".join(",".join("" if v != v else repr(v) for v in row) for row in rows[:1000])
        answer = client.post(
            "/models/raw/invoke", content=batch, headers={"content-type": "text/csv"}
        )
        got = [float(line) for line in answer.text.split()]
        assert max(abs(a - b) for a, b in zip(got, expected[:1000], strict=True)) <= 1e-6
        assert client.delete("/models/raw").status_code == 200
        assert client.get("/models").json()["models"] == [
            {"modelName": "compiled", "modelUrl": "/opt/ml/models/compiled/model"}
        ]
