"""Models for the multi-model tests: raw SageMaker-style XGBoost outputs trained here, each with
the booster that gives its expected predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.serve.artifacts import NUM_FEATURES, training_data


@dataclass(frozen=True)
class RawModel:
    """`directory/xgboost-model` (what the built-in algorithm writes) and its booster."""

    directory: Path
    booster: Any

    def expected(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64)


def train_raw_model(directory: Path, *, seed: int, rounds: int = 50) -> RawModel:
    """A `rounds`-tree binary:logistic model on the 4-feature test data, saved as a raw
    SageMaker output (JSON content under the name `xgboost-model`)."""
    import xgboost

    features, labels = training_data(seed=seed)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "seed": seed},
        xgboost.DMatrix(features, label=labels),
        num_boost_round=rounds,
    )
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / "model.json"))
    (directory / "model.json").rename(directory / "xgboost-model")
    return RawModel(directory=directory, booster=booster)


def request_rows(*, rows: int = 32, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, NUM_FEATURES)).astype(np.float32)
    features[rng.random(features.shape) < 0.1] = np.nan
    return features


def csv_body(features: np.ndarray) -> bytes:
    lines = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in features]
    return ("\n".join(lines)).encode()


def csv_scores(body: bytes) -> np.ndarray:
    return np.array([float(line) for line in body.decode().split("\n") if line], dtype=np.float64)
