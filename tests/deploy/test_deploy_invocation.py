"""Rows to request bodies and answers to predictions, without an endpoint."""

from __future__ import annotations

import json

import pytest

from deploy import invocation
from deploy.errors import DeployError


def test_rows_encode_as_csv_and_json_with_missing_values() -> None:
    rows = invocation.read_rows(rows=["2,0,0.0,7.5,,20,2"], file=None)
    assert invocation.encode(rows, invocation.CSV) == b"2,0,0,7.5,,20,2\n"
    assert json.loads(invocation.encode(rows, invocation.JSON)) == {
        "instances": [[2, 0, 0, 7.5, None, 20, 2]]
    }


def test_the_six_mebibyte_limit_is_checked_before_sending() -> None:
    rows = [[1.0] * 100] * 40000
    with pytest.raises(DeployError, match="real-time limit"):
        invocation.encode(rows, invocation.CSV)


def test_answers_become_one_prediction_per_row() -> None:
    assert invocation.Answer(b"0.1\n0.2\n", "text/csv", "v").predictions() == ["0.1", "0.2"]
    document = json.dumps({"predictions": [{"score": 0.5}]}).encode()
    assert invocation.Answer(document, "application/json; charset=utf-8", "v").predictions() == [
        {"score": 0.5}
    ]
    with pytest.raises(DeployError, match="invalid JSON"):
        invocation.Answer(b"{", "application/json", "v").predictions()
