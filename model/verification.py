"""Verification rows: a deterministic sample that exercises every split, and parity checks.

The sample mixes missing values, values exactly equal to split thresholds (the `<` versus `<=`
and float32 rounding traps), their float32 neighbours, and values spread over each feature's
threshold range. Expected outputs come from treelite GTIL, the reference implementation; the
compiled library must reproduce them before an artifact is written.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from model.artifact import Tolerance
from model.errors import ParityError, SourceError

if TYPE_CHECKING:
    import treelite

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_TOLERANCE",
    "ParityReport",
    "check_parity",
    "class_index",
    "predict_compiled",
    "predict_gtil",
    "read_reference_csv",
    "sample_features",
    "split_thresholds",
]

DEFAULT_ROWS = 1_000
DEFAULT_TOLERANCE = Tolerance()
_NUMERICAL_TEST_NODE = 1  # treelite's TreeNodeType::kNumericalTestNode


def split_thresholds(model: treelite.Model) -> list[npt.NDArray[np.float32]]:
    """The sorted, distinct numerical split thresholds of each feature (empty if never split)."""
    per_feature: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(model.num_feature)]
    for tree_id in range(model.num_tree):
        tree = model.get_tree_accessor(tree_id)
        node_type = tree.get_field("node_type")
        split_index = tree.get_field("split_index")
        threshold = tree.get_field("threshold").astype(np.float32)
        numerical = node_type == _NUMERICAL_TEST_NODE
        for feature in np.unique(split_index[numerical]):
            per_feature[int(feature)].append(threshold[numerical & (split_index == feature)])
    return [
        np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.float32)
        for found in per_feature
    ]


def sample_features(
    thresholds: Sequence[npt.NDArray[np.float32]],
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = 0,
    missing_rate: float = 0.1,
) -> npt.NDArray[np.float32]:
    """A deterministic float32 sample, C-contiguous (rows, len(thresholds)).

    Row 0 is all missing, row 1 all zeros; in the rest each cell is, at random: missing,
    exactly a split threshold, the float32 just below or above one, or a value drawn over the
    feature's threshold range (half rounded to integers, as label-indexed RTB fields are).
    """
    rng = np.random.default_rng(seed)
    num_features = len(thresholds)
    features = np.empty((rows, num_features), dtype=np.float32)
    for column, found in enumerate(thresholds):
        if found.size:
            low, high = float(found[0]) - 1.0, float(found[-1]) + 1.0
        else:
            low, high = 0.0, 10.0
        drawn = rng.uniform(low, high, size=rows)
        spread = np.where(rng.random(rows) < 0.5, np.round(drawn), drawn).astype(np.float32)
        if found.size:
            exact = found[rng.integers(0, found.size, size=rows)]
            below = np.nextafter(exact, np.float32(-np.inf))
            above = np.nextafter(exact, np.float32(np.inf))
        else:
            exact = below = above = spread
        choice = rng.random(rows)
        column_values = np.select(
            [
                choice < missing_rate,
                choice < missing_rate + 0.35,
                choice < missing_rate + 0.42,
                choice < missing_rate + 0.49,
            ],
            [np.float32(np.nan), exact, below, above],
            default=spread,
        )
        features[:, column] = column_values
    if rows > 0:
        features[0, :] = np.nan
    if rows > 1:
        features[1, :] = 0.0
    return np.ascontiguousarray(features)


def predict_gtil(
    model: treelite.Model, features: npt.NDArray[np.float32], *, output_kind: str = "score"
) -> npt.NDArray[np.float64]:
    """What XGBoost's `predict` returns, computed by treelite GTIL, as float64: (rows,) for one
    output per row, (rows, num_class) for `multi:softprob`; for `output_kind="class_index"`
    (`multi:softmax`) the index of the largest margin."""
    import treelite

    data = np.ascontiguousarray(features, dtype=np.float32)
    if output_kind == "class_index":
        margin = treelite.gtil.predict(model, data, pred_margin=True)
        return class_index(np.asarray(margin).reshape(features.shape[0], -1))
    output = treelite.gtil.predict(model, data)
    return _rows(np.asarray(output, dtype=np.float64), features.shape[0])


def class_index(margins: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The first index of the largest margin per row, as XGBoost's `multi:softmax` returns it."""
    return np.asarray(np.argmax(margins, axis=1), dtype=np.float64)


def _rows(output: npt.NDArray[np.float64], rows: int) -> npt.NDArray[np.float64]:
    flat = output.reshape(rows, -1)
    return flat.reshape(rows) if flat.shape[1] == 1 else flat


def predict_compiled(
    libpath: Path, features: npt.NDArray[np.float32], *, output_kind: str = "score"
) -> npt.NDArray[np.float64]:
    """The compiled library's prediction for each row, through tl2cgen's Predictor.

    The library is loaded from a private copy with a unique name: the dynamic loader reuses an
    already-open library of the same path, so checking a rebuilt `model.so` while the process
    still holds the previous one would otherwise test the old code.
    """
    import tl2cgen

    libpath = Path(libpath)
    fd, private = tempfile.mkstemp(prefix=".check-", suffix=libpath.suffix, dir=libpath.parent)
    os.close(fd)
    try:
        shutil.copyfile(libpath, private)
        predictor = tl2cgen.Predictor(private, nthread=1)
        matrix = tl2cgen.DMatrix(np.ascontiguousarray(features, dtype=np.float32))
        margin = output_kind == "class_index"
        output = predictor.predict(matrix, pred_margin=margin)
        del predictor
    finally:
        Path(private).unlink(missing_ok=True)
    if margin:
        return class_index(np.asarray(output).reshape(features.shape[0], -1))
    return _rows(np.asarray(output, dtype=np.float64), features.shape[0])


@dataclass(frozen=True, slots=True)
class ParityReport:
    """How far two predictions of the same rows are apart."""

    rows: int
    max_abs_diff: float
    worst_row: int


def check_parity(
    actual: npt.NDArray[np.float64],
    expected: npt.NDArray[np.float64],
    *,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    what: str,
) -> ParityReport:
    """Raise `ParityError` (naming `what` and the worst row) unless every value is within
    `tolerance` (`model.artifact.Tolerance`: absolute plus relative to the expected value).
    Predictions are (rows,) or (rows, outputs)."""
    if actual.shape != expected.shape:
        raise ParityError(f"{what}: {actual.shape} predictions for {expected.shape} expected")
    if actual.size == 0:
        return ParityReport(rows=0, max_abs_diff=0.0, worst_row=-1)
    rows = actual.shape[0]
    flat_actual = actual.reshape(rows, -1)
    flat_expected = expected.reshape(rows, -1)
    excess = tolerance.excess(flat_actual, flat_expected).max(axis=1)
    diff = np.abs(flat_actual - flat_expected).max(axis=1)
    broken = ~(excess <= 0)  # NaN counts as broken
    worst = int(np.argmax(np.where(np.isnan(excess), np.inf, excess)))
    report = ParityReport(rows=rows, max_abs_diff=float(np.nanmax(diff)), worst_row=worst)
    if broken.any():
        raise ParityError(
            f"{what}: {int(np.count_nonzero(broken))} of {rows} rows differ by more than "
            f"{tolerance.describe()}; worst is row {worst}: {actual[worst]!r} instead of "
            f"{expected[worst]!r} (|diff| {diff[worst]:.3g})"
        )
    return report


def read_reference_csv(
    path: Path | str, *, num_features: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Rows of `num_features` features then the expected prediction; an empty field is missing.

    A first line that is not numeric is taken as a header. Returns (features float32,
    expected float64). Raises `SourceError` naming the file and line on a malformed row.
    """
    path = Path(path)
    features: list[list[float]] = []
    expected: list[float] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the reference rows: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != num_features + 1:
            raise SourceError(
                f"{path}:{number}: {len(fields)} fields, expected {num_features} features "
                "and the expected prediction"
            )
        try:
            values = [float(field) if field.strip() else math.nan for field in fields]
        except ValueError:
            if number == 1 and not features:
                continue  # header
            raise SourceError(f"{path}:{number}: a field is not a number") from None
        if not math.isfinite(values[-1]) or any(math.isinf(value) for value in values):
            raise SourceError(f"{path}:{number}: infinite value or missing expected prediction")
        features.append(values[:-1])
        expected.append(values[-1])
    if not features:
        raise SourceError(f"{path}: holds no reference rows")
    return (
        np.ascontiguousarray(np.array(features, dtype=np.float32)),
        np.array(expected, dtype=np.float64),
    )
