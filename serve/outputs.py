"""What each prediction is answered with: the score, or the built-in container's selectable keys.

The SageMaker XGBoost container lets users pick per-record content with
`SAGEMAKER_INFERENCE_OUTPUT`, e.g. `predicted_label,probability`. Which keys apply depends on
the model's objective (`VALID_KEYS`, the built-in's `VALID_OBJECTIVES`); a key that does not
apply is answered as NaN (`null` in JSON), as the built-in does, and logged once at start-up.
An objective the built-in cannot select from (e.g. `reg:pseudohubererror`, `rank:pairwise`) is
refused at start-up. Every per-objective choice is made once, in `OutputSelection.for_model`.

`predicted_label` of `binary:logistic` and `binary:logitraw` is `value > threshold` (strictly
greater, as the built-in's `int(p > 0.5)` and `int(p > 0)`): the manifest's `bid_threshold`, or
the built-in's 0.5 and 0.0 when it has none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

logger = logging.getLogger(__name__)

Predictions = npt.NDArray[np.float32]
"""What the predictor returns: (rows,), or (rows, num_class) for `multi:softprob`."""
Column = Callable[[Predictions], list[Any]]

DEFAULT_KEY = "score"
NAN = float("nan")

PREDICTED_LABEL = "predicted_label"
LABELS = "labels"
PROBABILITY = "probability"
PROBABILITIES = "probabilities"
RAW_SCORE = "raw_score"
RAW_SCORES = "raw_scores"
PREDICTED_SCORE = "predicted_score"
OUTPUT_KEYS = (
    PREDICTED_LABEL,
    LABELS,
    PROBABILITY,
    PROBABILITIES,
    RAW_SCORE,
    RAW_SCORES,
    PREDICTED_SCORE,
)

_CLASSIFICATION = (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES)
_PROBABILISTIC = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES)
VALID_KEYS: Mapping[str, tuple[str, ...]] = {
    "reg:squarederror": (PREDICTED_SCORE,),
    "reg:logistic": (PREDICTED_SCORE,),
    "reg:gamma": (PREDICTED_SCORE,),
    "reg:absoluteerror": (PREDICTED_SCORE,),
    "reg:tweedie": (PREDICTED_SCORE,),
    "binary:logistic": _PROBABILISTIC,
    "binary:logitraw": _CLASSIFICATION,
    "binary:hinge": _CLASSIFICATION,
    "multi:softmax": _CLASSIFICATION,
    "multi:softprob": _PROBABILISTIC,
}
"""Objective -> the keys that apply to it: the built-in's `VALID_OBJECTIVES`, key for key."""

OBJECTIVE_ALIASES: Mapping[str, str] = {"reg:linear": "reg:squarederror"}
"""Old names XGBoost (1.0 on, as in every built-in with selectable output) loads as the new."""

DEFAULT_THRESHOLDS: Mapping[str, float] = {"binary:logistic": 0.5, "binary:logitraw": 0.0}
"""The built-in's fixed label cut-offs (`p > 0.5`, `margin > 0`)."""


class OutputSelectionError(ValueError):
    """`SAGEMAKER_INFERENCE_OUTPUT` cannot be answered for this model: the server does not start."""


@dataclass(frozen=True, slots=True)
class OutputSelection:
    """The keys to answer with (empty: the default `score`) and how to compute each column.

    Build it with `for_model`; `OutputSelection()` is the default `score` answer.
    """

    keys: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()

    @classmethod
    def for_model(
        cls,
        *,
        keys: tuple[str, ...],
        objective: str,
        num_class: int | None = None,
        threshold: float | None = None,
    ) -> OutputSelection:
        """The columns of `keys` for a model trained with `objective`; raises
        OutputSelectionError for an objective the built-in cannot select from."""
        if not keys:
            return cls()
        objective = OBJECTIVE_ALIASES.get(objective, objective)
        valid = VALID_KEYS.get(objective)
        if valid is None:
            raise OutputSelectionError(
                f"SAGEMAKER_INFERENCE_OUTPUT={','.join(keys)} is set, but the model's objective "
                f"{objective!r} has no selectable output (the SageMaker XGBoost container supports "
                f"it for {', '.join(VALID_KEYS)}); unset SAGEMAKER_INFERENCE_OUTPUT to answer "
                "with the score."
            )
        not_applicable = [key for key in keys if key not in valid]
        if not_applicable:
            logger.warning(
                "SAGEMAKER_INFERENCE_OUTPUT: %s do not apply to objective %r and are answered "
                "as NaN (null in JSON); the keys that apply: %s",
                ", ".join(not_applicable),
                objective,
                ", ".join(valid),
            )
        if threshold is None:
            threshold = DEFAULT_THRESHOLDS.get(objective, 0.5)
        columns = tuple(
            _column(key, objective, num_class=num_class, threshold=threshold)
            if key in valid
            else _not_applicable
            for key in keys
        )
        return cls(keys=keys, columns=columns)

    @property
    def is_default(self) -> bool:
        return not self.keys

    def records(self, predictions: Predictions) -> list[dict[str, Any]]:
        """One dict per row, keys in the configured order (JSON, JSON Lines, RecordIO).

        Values are ints, floats (float32 scalars), lists of them, or NaN for a key that does
        not apply. The default is `{"score": value}`, value a float32 array for `multi:softprob`.
        """
        if not self.keys:
            return [{DEFAULT_KEY: value} for value in predictions]
        columns = [column(predictions) for column in self.columns]
        return [dict(zip(self.keys, row, strict=True)) for row in zip(*columns, strict=True)]

    def csv_lines(self, predictions: Predictions) -> list[str]:
        """One line per row, values in key order; lists quoted as the built-in container does."""
        columns = [column(predictions) for column in self.columns]
        return [",".join(_csv_cell(value) for value in row) for row in zip(*columns, strict=True)]


def _column(key: str, objective: str, *, num_class: int | None, threshold: float) -> Column:
    """The built-in's `_get_<key>(objective, row)` for every row at once."""
    multi = objective == "multi:softprob"
    if key == PREDICTED_LABEL:
        if multi:
            return _argmax
        if objective in DEFAULT_THRESHOLDS:
            return _above(threshold)
        return _values  # binary:hinge and multi:softmax predict the label itself
    if key == LABELS:
        if objective.startswith("binary:"):
            return _constant([0, 1])
        if multi:
            return _class_indices
        if num_class:
            return _constant(list(range(num_class)))
        return _not_applicable  # the built-in's `labels` of a multi: model without num_class
    if key in (PROBABILITY, RAW_SCORE):
        return _row_max if multi else _values
    if key in (PROBABILITIES, RAW_SCORES):
        return _rows if multi else _complement_pairs
    return _values  # predicted_score


def _values(predictions: Predictions) -> list[Any]:
    return list(predictions)


def _above(threshold: float) -> Column:
    def labels(predictions: Predictions) -> list[Any]:
        return (predictions > threshold).astype(np.int64).tolist()  # type: ignore[no-any-return]

    return labels


def _argmax(predictions: Predictions) -> list[Any]:
    return predictions.argmax(axis=1).tolist()  # type: ignore[no-any-return]


def _row_max(predictions: Predictions) -> list[Any]:
    return list(predictions.max(axis=1))


def _rows(predictions: Predictions) -> list[Any]:
    return [list(row) for row in predictions]


def _complement_pairs(predictions: Predictions) -> list[Any]:
    """`[1 - v, v]`: the built-in's `probabilities` / `raw_scores` of a single-output model."""
    one = np.float32(1.0)
    return [[one - value, value] for value in predictions]


def _constant(value: list[int]) -> Column:
    def column(predictions: Predictions) -> list[Any]:
        return [value] * len(predictions)

    return column


def _class_indices(predictions: Predictions) -> list[Any]:
    return [list(range(predictions.shape[1]))] * len(predictions)


def _not_applicable(predictions: Predictions) -> list[Any]:
    return [NAN] * len(predictions)


def _csv_cell(value: Any) -> str:
    """As the built-in's `str(value)`, lists as `"[a, b]"`, NaN as `nan`; floats are the
    shortest text that parses back to the same float32."""
    if isinstance(value, list):
        return '"[' + ", ".join(_csv_cell(item) for item in value) + ']"'
    if isinstance(value, np.floating):
        if value != value:
            return "nan"
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return str(value)
