"""Predictors for in-process tests of the app: no model, known answers."""

from __future__ import annotations

import numpy as np


class FakePredictor:
    """Scores a row by the sum of its values / 100; records what it saw."""

    kind = "fake"
    num_features = 3
    num_outputs = 1

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def predict(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(features)
        return (np.nan_to_num(features).sum(axis=1) / 100).astype(np.float32)

    def predict_row(self, values: list[float]) -> np.ndarray:
        return self.predict(np.array((values,), dtype=np.float32))


class BrokenPredictor(FakePredictor):
    def predict(self, features: np.ndarray) -> np.ndarray:
        raise RuntimeError("secret internal detail")

    def predict_row(self, values: list[float]) -> np.ndarray:
        raise RuntimeError("secret internal detail")


class ConstantPredictor(FakePredictor):
    """Seven features, every row scored 0.5: the shape of the seed model, for schema tests."""

    num_features = 7

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], 0.5, dtype=np.float32)
