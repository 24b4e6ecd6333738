"""What each prediction is answered with: the score, or the built-in container's selectable keys.

The SageMaker XGBoost container lets users pick per-record content with
`SAGEMAKER_INFERENCE_OUTPUT`, e.g. `predicted_label,probability`. For a `binary:logistic` model
it defines the keys below; we compute them the same way, except that `predicted_label` uses the
model's own `bid_threshold` (0.5 for a model imported from SageMaker, like the built-in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

Probabilities = npt.NDArray[np.float32]

DEFAULT_KEY = "score"


def _predicted_label(p: Probabilities, threshold: float) -> list[Any]:
    return (p > threshold).astype(np.int64).tolist()  # type: ignore[no-any-return]


def _labels(p: Probabilities, threshold: float) -> list[Any]:
    return [[0, 1]] * len(p)


def _probability(p: Probabilities, threshold: float) -> list[Any]:
    return list(p)


def _probabilities(p: Probabilities, threshold: float) -> list[Any]:
    one = np.float32(1.0)
    return [[one - v, v] for v in p]


# Key -> how to compute its column from the probabilities. As in the built-in container,
# `raw_score` and `predicted_score` of a binary:logistic model are the probability itself.
OUTPUT_COLUMNS: dict[str, Callable[[Probabilities, float], list[Any]]] = {
    "predicted_label": _predicted_label,
    "labels": _labels,
    "probability": _probability,
    "probabilities": _probabilities,
    "raw_score": _probability,
    "raw_scores": _probabilities,
    "predicted_score": _probability,
}
OUTPUT_KEYS = tuple(OUTPUT_COLUMNS)


@dataclass(frozen=True, slots=True)
class OutputSelection:
    """The keys to answer with (empty: the default `score`) and the label threshold."""

    keys: tuple[str, ...] = ()
    threshold: float = 0.5

    @property
    def is_default(self) -> bool:
        return not self.keys

    def records(self, probabilities: Probabilities) -> list[dict[str, Any]]:
        """One dict per row, keys in the configured order (JSON and JSON Lines)."""
        if not self.keys:
            return [{DEFAULT_KEY: value} for value in probabilities]
        columns = [OUTPUT_COLUMNS[key](probabilities, self.threshold) for key in self.keys]
        return [dict(zip(self.keys, row, strict=True)) for row in zip(*columns, strict=True)]

    def csv_lines(self, probabilities: Probabilities) -> list[str]:
        """One line per row, values in key order; lists quoted as the built-in container does."""
        columns = [OUTPUT_COLUMNS[key](probabilities, self.threshold) for key in self.keys]
        return [",".join(_csv_cell(value) for value in row) for row in zip(*columns, strict=True)]


def _csv_cell(value: Any) -> str:
    if isinstance(value, list):
        return '"[' + ", ".join(_csv_cell(item) for item in value) + ']"'
    if isinstance(value, np.floating):
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return str(value)
