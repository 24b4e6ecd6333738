"""SAGEMAKER_INFERENCE_OUTPUT per objective, key by key, as the built-in's serve_utils defines it
(`VALID_OBJECTIVES` and the `_get_*` functions); the encoders' framing is in test_codecs.py."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import orjson
import pytest

from serve.codecs import CSV, ENCODERS, JSON
from serve.outputs import OUTPUT_KEYS, VALID_KEYS, OutputSelection, OutputSelectionError

NAN = "nan"  # stands for a NaN in the expected records below


def f32(values: Any) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# (objective, num_class, predictions, key -> expected column). Every key of OUTPUT_KEYS is
# listed for every objective: the ones not in the built-in's VALID_OBJECTIVES[objective] are NaN.
CASES: list[tuple[str, int | None, np.ndarray, dict[str, list[Any]]]] = [
    (
        "binary:logistic",
        None,
        f32([0.25, 0.5, 0.75]),
        {
            "predicted_label": [0, 0, 1],  # int(p > 0.5): exactly 0.5 is label 0
            "labels": [[0, 1]] * 3,
            "probability": [0.25, 0.5, 0.75],
            "probabilities": [[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]],
            "raw_score": [0.25, 0.5, 0.75],
            "raw_scores": [[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]],
            "predicted_score": [NAN] * 3,
        },
    ),
    (
        "binary:logitraw",
        None,
        f32([-1.5, 0.0, 2.0]),
        {
            "predicted_label": [0, 0, 1],  # int(margin > 0)
            "labels": [[0, 1]] * 3,
            "probability": [NAN] * 3,
            "probabilities": [NAN] * 3,
            "raw_score": [-1.5, 0.0, 2.0],
            "raw_scores": [[2.5, -1.5], [1.0, 0.0], [-1.0, 2.0]],
            "predicted_score": [NAN] * 3,
        },
    ),
    (
        "binary:hinge",
        None,
        f32([0.0, 1.0]),
        {
            "predicted_label": [0.0, 1.0],  # the prediction itself, a float
            "labels": [[0, 1]] * 2,
            "probability": [NAN] * 2,
            "probabilities": [NAN] * 2,
            "raw_score": [0.0, 1.0],
            "raw_scores": [[1.0, 0.0], [0.0, 1.0]],
            "predicted_score": [NAN] * 2,
        },
    ),
    (
        "multi:softmax",
        3,
        f32([2.0, 0.0]),
        {
            "predicted_label": [2.0, 0.0],
            "labels": [[0, 1, 2]] * 2,
            "probability": [NAN] * 2,
            "probabilities": [NAN] * 2,
            "raw_score": [2.0, 0.0],
            "raw_scores": [[-1.0, 2.0], [1.0, 0.0]],  # the built-in's [1 - v, v], as it is
            "predicted_score": [NAN] * 2,
        },
    ),
    (
        "multi:softprob",
        3,
        f32([[0.25, 0.5, 0.25], [0.75, 0.125, 0.125]]),
        {
            "predicted_label": [1, 0],  # argmax
            "labels": [[0, 1, 2]] * 2,
            "probability": [0.5, 0.75],  # max
            "probabilities": [[0.25, 0.5, 0.25], [0.75, 0.125, 0.125]],
            "raw_score": [0.5, 0.75],
            "raw_scores": [[0.25, 0.5, 0.25], [0.75, 0.125, 0.125]],
            "predicted_score": [NAN] * 2,
        },
    ),
    *[
        (
            objective,
            None,
            f32([3.5, -0.25]),
            {
                **dict.fromkeys(OUTPUT_KEYS, [NAN] * 2),
                "predicted_score": [3.5, -0.25],
            },
        )
        for objective in (
            "reg:squarederror",
            "reg:logistic",
            "reg:gamma",
            "reg:absoluteerror",
            "reg:tweedie",
        )
    ],
]


def test_every_objective_of_the_builtin_is_covered() -> None:
    assert {case[0] for case in CASES} == set(VALID_KEYS)


def plain(value: Any) -> Any:
    """A record value as comparable Python: floats, ints, lists, NAN for NaN."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, int):
        return value
    number = float(value)
    return NAN if math.isnan(number) else number


@pytest.mark.parametrize(("objective", "num_class", "predictions", "expected"), CASES)
def test_each_key_per_objective(
    objective: str, num_class: int | None, predictions: np.ndarray, expected: dict[str, list[Any]]
) -> None:
    for key in OUTPUT_KEYS:
        selection = OutputSelection.for_model(keys=(key,), objective=objective, num_class=num_class)
        column = [plain(record[key]) for record in selection.records(predictions)]
        assert column == expected[key], key
        types = {type(record[key]) for record in selection.records(predictions)}
        if expected[key][0] in (0, 1) and type(expected[key][0]) is int:
            assert types == {int}, key  # a label is an int, `1`, not `1.0`


def test_keys_that_do_not_apply_are_warned_once_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="serve.outputs"):
        selection = OutputSelection.for_model(
            keys=("predicted_score", "probability"), objective="binary:logitraw"
        )
        selection.records(f32([1.0, 2.0]))
    assert len(caplog.records) == 1
    assert "predicted_score, probability" in caplog.text and "binary:logitraw" in caplog.text


def test_nan_is_null_in_json_and_nan_in_csv() -> None:
    """The built-in's json.dumps writes a bare `NaN` (not JSON); we write `null`. Its CSV
    writes str(nan), `nan`; so do we."""
    selection = OutputSelection.for_model(
        keys=("predicted_score", "probability"), objective="binary:logistic"
    )
    scores = f32([0.25])
    document = orjson.loads(ENCODERS[JSON](scores, selection))
    assert document == {"predictions": [{"predicted_score": None, "probability": 0.25}]}
    assert ENCODERS[CSV](scores, selection) == b"nan,0.25"


def test_csv_lists_are_quoted_as_the_builtin_writes_them() -> None:
    selection = OutputSelection.for_model(
        keys=("labels", "probabilities", "predicted_label"), objective="multi:softprob", num_class=3
    )
    line = ENCODERS[CSV](f32([[0.25, 0.5, 0.25]]), selection)
    assert line == b'"[0, 1, 2]","[0.25, 0.5, 0.25]",1'


def test_threshold_is_strictly_greater_than_the_manifest_bid_threshold() -> None:
    """A bid is p > threshold: p exactly at the threshold is label 0."""
    selection = OutputSelection.for_model(
        keys=("predicted_label",), objective="binary:logistic", threshold=0.75
    )
    at = np.float32(0.75)
    above = np.nextafter(at, np.float32(1.0))
    below = np.nextafter(at, np.float32(0.0))
    records = selection.records(f32([below, at, above]))
    assert [record["predicted_label"] for record in records] == [0, 0, 1]


@pytest.mark.parametrize("objective", ["reg:pseudohubererror", "rank:pairwise", "survival:cox"])
def test_objectives_without_selectable_output_are_refused_at_start_up(objective: str) -> None:
    with pytest.raises(OutputSelectionError, match=objective):
        OutputSelection.for_model(keys=("predicted_score",), objective=objective)
    assert OutputSelection.for_model(keys=(), objective=objective).is_default


def test_keys_keep_their_configured_order() -> None:
    selection = OutputSelection.for_model(
        keys=("probability", "predicted_label"), objective="binary:logistic"
    )
    assert list(selection.records(f32([0.75]))[0]) == ["probability", "predicted_label"]
    assert selection.csv_lines(f32([0.75])) == ["0.75,1"]


def test_complements_equal_the_builtins_double_arithmetic_once_parsed_as_float32() -> None:
    """The built-in's `probabilities` is `[1.0 - p, p]` in double (exact for a float32 p); ours
    is the float32 `1 - p`, written shortest: the same float32 once parsed."""
    p = np.random.default_rng(5).random(50_000, dtype=np.float32)
    selection = OutputSelection.for_model(keys=("probabilities",), objective="binary:logistic")
    ours = [line.strip('"[]').split(", ") for line in selection.csv_lines(p)]
    builtin = [[repr(1.0 - value), repr(value)] for value in p.tolist()]
    assert np.array_equal(np.array(ours, dtype=np.float32), np.array(builtin, dtype=np.float32))


def test_reg_linear_is_reg_squarederror() -> None:
    """A 0.90 model's `reg:linear` loads as `reg:squarederror` in XGBoost 1.0 on, as in every
    built-in that has selectable output."""
    selection = OutputSelection.for_model(keys=("predicted_score",), objective="reg:linear")
    assert selection.records(f32([2.5])) == [{"predicted_score": 2.5}]
