"""Multi-model mode over real HTTP: `python -m container serve` with SAGEMAKER_MULTI_MODEL=true and
two workers (the harness's `ServerProcess`), loading the seed model, the default trained model
and models trained here; every answer checked against XGBoost's."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from mme_models import csv_body, csv_scores, train_raw_model
from server_process import running_server

from benchmark.server import ServerProcess
from tests.contract import read_reference
from tests.seed import SEED_REFERENCE, SEED_TARBALL

pytestmark = [pytest.mark.slow]

TOLERANCE = 1e-6
CSV = {"content-type": "text/csv", "accept": "text/csv"}
CLOSE = {**CSV, "connection": "close"}  # a new connection each: requests reach both workers


@dataclass(frozen=True)
class Served:
    """A model to load: its url, request rows and XGBoost's predictions for them."""

    name: str
    url: Path
    features: np.ndarray
    expected: np.ndarray


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Served]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("opt-ml-models")
    seed_dir = root / "seed" / "model"  # as SageMaker lays out /opt/ml/models/{name}/model
    seed_dir.mkdir(parents=True)
    with tarfile.open(SEED_TARBALL) as archive:
        archive.extractall(seed_dir, filter="data")
    rows, expected = read_reference(SEED_REFERENCE)
    served = [
        Served(
            "seed",
            seed_dir,
            np.array(rows[:500], dtype=np.float32),
            np.array(expected[:500], dtype=np.float64),
        )
    ]
    default_dir = root / "default" / "model"
    trained = subprocess.run(
        [sys.executable, "-m", "model", "train", "--rows", "20000", "--parity-rows", "2000"]
        + ["--output", str(default_dir), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    with np.load(default_dir / "verification.npz") as verification:  # XGBoost's predictions
        served.append(
            Served(
                "default",
                default_dir,
                verification["features"][:500],
                verification["expected"][:500].astype(np.float64),
            )
        )
    rng = np.random.default_rng(5)
    for seed in (21, 22):
        raw = train_raw_model(root / f"bidder-{seed}" / "model", seed=seed)
        features = rng.normal(size=(200, 4)).astype(np.float32)
        served.append(Served(f"bidder-{seed}", raw.directory, features, raw.expected(features)))
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp_path = tmp_path_factory.mktemp("mme-server")
    (tmp_path / "unused-model-dir").mkdir()
    with running_server(
        tmp_path / "unused-model-dir",
        tmp_path=tmp_path,
        workers=2,
        env={"SAGEMAKER_MULTI_MODEL": "true", "RTB_LOG_LEVEL": "INFO"},
    ) as process:
        yield process


def check_answer(response: httpx.Response, model: Served, rows: slice = slice(None)) -> None:
    assert response.status_code == 200, response.text
    got = csv_scores(response.content)
    assert np.abs(got - model.expected[rows]).max() <= TOLERANCE, model.name


def test_models_load_and_answer_as_xgboost_on_every_worker(
    server: ServerProcess, models: list[Served]
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        assert client.get("/ping").status_code == 200
        for model in models:
            answer = client.post(
                "/models",
                json={"model_name": model.name, "url": str(model.url)},
                headers={"X-Amzn-SageMaker-Target-Model": f"{model.name}.tar.gz"},
            )
            assert answer.status_code == 200, answer.text
        again = client.post("/models", json={"model_name": "seed", "url": str(models[0].url)})
        assert again.status_code == 409
        listed = client.get("/models").json()["models"]
        assert sorted(m["modelName"] for m in listed) == sorted(m.name for m in models)
        for model in models:
            batch = client.post(
                f"/models/{model.name}/invoke", content=csv_body(model.features), headers=CSV
            )
            check_answer(batch, model)
            for index in range(6):  # one row a request, on new connections
                single = client.post(
                    f"/models/{model.name}/invoke",
                    content=csv_body(model.features[index : index + 1]),
                    headers=CLOSE,
                )
                check_answer(single, model, slice(index, index + 1))
        missing = client.post("/models/nobody/invoke", content=b"1,2", headers=CSV)
        assert missing.status_code == 404 and missing.json()["error"] == "model_not_found"
    log = server.log()
    assert "seed.tar.gz" in log  # X-Amzn-SageMaker-Target-Model is logged
    # Loaded through one worker, every model was loaded lazily by the other one too.
    loaders = set(re.findall(r"\[(\d+)\] serve\.predictor: model loaded from", log))
    assert len(loaders) == 2, loaders


def test_an_unloaded_model_is_gone_from_every_worker_and_a_bad_model_harms_none(
    server: ServerProcess, models: list[Served], tmp_path: Path
) -> None:
    bidder = models[2]
    garbage = tmp_path / "garbage" / "model"
    garbage.mkdir(parents=True)
    (garbage / "xgboost-model").write_bytes(b"\x00\x01 not a model")
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        client.post("/models", json={"model_name": "gone", "url": str(bidder.url)})
        for _ in range(6):  # both workers hold it
            row = csv_body(bidder.features[:1])
            check_answer(
                client.post("/models/gone/invoke", content=row, headers=CLOSE), bidder, slice(1)
            )
        assert client.delete("/models/gone").status_code == 200
        for _ in range(8):
            answer = client.post("/models/gone/invoke", content=b"1,2,3,4", headers=CLOSE)
            assert answer.status_code == 404
        bad = client.post("/models", json={"model_name": "bad", "url": str(garbage)})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_model"
        for model in models:
            if client.get(f"/models/{model.name}").status_code == 200:
                answer = client.post(
                    f"/models/{model.name}/invoke", content=csv_body(model.features), headers=CSV
                )
                check_answer(answer, model)


def test_concurrent_loads_unloads_and_invokes_over_http(
    server: ServerProcess, models: list[Served]
) -> None:
    """Loads and unloads of one name from several clients while others invoke every model:
    no 5xx, and every 200 is the right model's answer."""
    churned = models[3]
    stable = [model for model in models if model.name != churned.name]

    def churn(_: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
            for _ in range(5):
                loaded = client.post(
                    "/models",
                    json={"model_name": "churn", "url": str(churned.url)},
                    headers={"connection": "close"},  # loads and unloads on both workers
                )
                statuses.append(loaded.status_code)
                unloaded = client.delete("/models/churn", headers={"connection": "close"})
                statuses.append(unloaded.status_code)
        return statuses

    def invoke(seed: int) -> list[int]:
        statuses = []
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
            for _ in range(30):
                pick = int(rng.integers(len(stable) + 1))
                model = churned if pick == len(stable) else stable[pick]
                name = "churn" if model is churned else model.name
                index = int(rng.integers(len(model.features)))
                answer = client.post(
                    f"/models/{name}/invoke",
                    content=csv_body(model.features[index : index + 1]),
                    headers=CLOSE,
                )
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    check_answer(answer, model, slice(index, index + 1))
                else:
                    assert name == "churn" and answer.status_code == 404, answer.text
        return statuses

    with ThreadPoolExecutor(max_workers=6) as pool:
        churns = [pool.submit(churn, index) for index in range(2)]
        invokes = [pool.submit(invoke, seed) for seed in range(4)]
        statuses = [s for future in churns + invokes for s in future.result()]
    assert set(statuses) <= {200, 404, 409}, sorted(set(statuses))
    assert "Traceback" not in server.log()


def test_a_replaced_worker_serves_the_registered_models(
    server: ServerProcess, models: list[Served]
) -> None:
    default = models[1]
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        if client.get("/models/default").status_code == 404:
            client.post("/models", json={"model_name": "default", "url": str(default.url)})
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the supervisor starts a new worker
            pids = server.worker_pids()
            if len(pids) == 2 and victim not in pids:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the killed worker was not replaced")
        for index in range(8):
            answer = client.post(
                "/models/default/invoke",
                content=csv_body(default.features[index : index + 1]),
                headers=CLOSE,
            )
            check_answer(answer, default, slice(index, index + 1))
