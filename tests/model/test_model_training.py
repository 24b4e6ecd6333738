"""The default model: deterministic synthetic RTB data, guidance hyper-parameters, exact parity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from model_testdata import requires_gcc

from model.artifact import read_manifest, verify_files
from model.training import FEATURE_NAMES, TrainingResult, synthesize_bids, train_artifact
from model.verification import predict_compiled

xgboost = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, TrainingResult]:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    root = tmp_path_factory.mktemp("trained")
    result = train_artifact(
        output_dir=root / "artifact",
        rows=40_000,
        seed=7,
        parity_rows=10_000,
        save_json=root / "model.json",
    )
    return root / "artifact", root / "model.json", result


def test_synthetic_data_is_deterministic_and_plausible() -> None:
    first = synthesize_bids(rows=50_000, seed=3)
    again = synthesize_bids(rows=50_000, seed=3)
    other = synthesize_bids(rows=50_000, seed=4)
    np.testing.assert_array_equal(first.features, again.features)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.features, other.features)
    features = first.features
    assert features.dtype == np.float32 and features.shape == (50_000, len(FEATURE_NAMES))
    column = dict(zip(FEATURE_NAMES, features.T, strict=True))
    assert set(np.unique(column["dow"])) == set(range(7))
    assert set(np.unique(column["hour"])) == set(range(24))
    assert column["IndexDomain"].max() < 3_000 and len(np.unique(column["IndexDomain"])) > 500
    assert set(np.unique(column["device_type_id"])) <= set(range(6))
    # Skew: the most popular domain is far more common than the median one.
    counts = np.bincount(column["IndexDomain"].astype(int))
    assert counts.max() > 20 * np.median(counts[counts > 0])
    assert 0.01 < first.labels.mean() < 0.08, "positives are rare, a few percent"
    assert not np.isnan(features).any()


def test_labels_depend_on_hour_device_and_domain() -> None:
    data = synthesize_bids(rows=200_000, seed=0)
    column = dict(zip(FEATURE_NAMES, data.features.T, strict=True))

    def spread(name: str) -> float:
        values = column[name].astype(int)
        rates = [
            data.labels[values == v].mean() for v in np.unique(values) if (values == v).sum() > 500
        ]
        return float(max(rates) / min(rates))

    assert spread("hour") > 1.5
    assert spread("device_type_id") > 2.0
    assert spread("IndexRegionID") > 1.5


def test_missing_rate_blanks_cells() -> None:
    data = synthesize_bids(rows=10_000, seed=1, missing_rate=0.05)
    assert 0.04 < np.isnan(data.features).mean() < 0.06


@requires_gcc
def test_trained_artifact_matches_xgboost_on_ten_thousand_rows(
    trained: tuple[Path, Path, TrainingResult],
) -> None:
    artifact, saved_json, result = trained
    assert result.parity_rows == 10_000 and result.max_abs_diff <= 1e-6
    # Independently of train_artifact: reload the saved JSON in xgboost, compare on fresh rows.
    booster = xgboost.Booster(model_file=str(saved_json))
    rows = synthesize_bids(rows=12_000, seed=99, missing_rate=0.03).features
    matrix = xgboost.DMatrix(rows, feature_names=list(FEATURE_NAMES))
    expected = booster.predict(matrix).astype(np.float64)
    compiled = predict_compiled(artifact / "model.so", rows)
    np.testing.assert_allclose(compiled, expected, rtol=0, atol=1e-6)


@requires_gcc
def test_trained_manifest_and_json(trained: tuple[Path, Path, TrainingResult]) -> None:
    artifact, saved_json, result = trained
    manifest = read_manifest(artifact)
    verify_files(artifact, manifest)
    assert manifest == result.manifest
    assert manifest.model.source_format == "trained"
    assert manifest.model.objective == "binary:logistic"
    assert manifest.model.num_trees == 50
    assert manifest.model.feature_names == FEATURE_NAMES
    assert manifest.versions.xgboost == xgboost.__version__
    assert saved_json.read_bytes().lstrip().startswith(b"{")  # JSON, never a pickle
    assert 0.6 < result.auc < 0.95


def test_guidance_hyper_parameters_are_used() -> None:
    import json

    from model.training import train_model

    booster = train_model(synthesize_bids(rows=2_000, seed=1), rounds=2)
    config = json.loads(booster.save_config())
    learner = config["learner"]
    params = learner["gradient_booster"]["tree_train_param"]
    assert learner["objective"]["name"] == "binary:logistic"
    assert params["max_depth"] == "5" and params["gamma"] == "4"
    assert params["min_child_weight"] == "6"
    assert float(params["subsample"]) == pytest.approx(0.8)
    assert float(params["eta"]) == pytest.approx(0.2)


def test_training_is_deterministic(tmp_path: Path) -> None:
    from model.training import train_model

    data = synthesize_bids(rows=5_000, seed=2)
    one = train_model(data, seed=2, rounds=5)
    two = train_model(data, seed=2, rounds=5)
    assert one.save_raw("json") == two.save_raw("json")


def test_disagreeing_with_xgboost_unpublishes_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model import training
    from model.errors import ParityError

    real = training._served_predictions

    def drifted(*args: object, **kwargs: object) -> np.ndarray:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        result[-1] += 1e-4
        return result

    monkeypatch.setattr(training, "_served_predictions", drifted)
    with pytest.raises(ParityError, match="against xgboost: 1 of 10000 rows"):
        train_artifact(
            output_dir=tmp_path / "a", rows=5_000, rounds=3, parity_rows=10_000, compile=False
        )
    assert not (tmp_path / "a" / "manifest.json").exists()


def test_save_json_must_be_json(tmp_path: Path) -> None:
    from model.errors import ModelError

    with pytest.raises(ModelError, match="must end in .json"):
        train_artifact(output_dir=tmp_path / "a", rows=1_000, save_json=tmp_path / "m.pkl")
    assert not (tmp_path / "a").exists()
