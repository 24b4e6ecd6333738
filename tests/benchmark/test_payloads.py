from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmark.payloads import (
    CONTENT_TYPES,
    FEATURE_NAMES,
    encode_rows,
    load_reference,
    make_rows,
)
from serve.codecs import DECODERS
from tests.seed import SEED_REFERENCE


def test_rows_are_float32_with_the_model_features_and_reproducible() -> None:
    rows = make_rows(2000, seed=7)
    assert rows.dtype == np.float32
    assert rows.shape == (2000, len(FEATURE_NAMES))
    np.testing.assert_array_equal(rows, make_rows(2000, seed=7))
    assert not np.array_equal(rows, make_rows(2000, seed=8), equal_nan=True)


def test_rows_hold_integer_codes_in_range_and_some_missing_fields() -> None:
    rows = make_rows(20_000, seed=1)
    present = rows[~np.isnan(rows)]
    assert np.all(present >= 0)
    assert np.all(present == np.round(present))
    assert np.nanmax(rows[:, 0]) <= 6  # day of week
    assert np.nanmax(rows[:, 1]) <= 23  # hour
    missing = np.isnan(rows).mean()
    assert 0.005 < missing < 0.03
    assert not np.isnan(make_rows(1000, seed=1, missing_rate=0.0)).any()


def test_rows_can_be_drawn_from_reference_data(tmp_path: Path) -> None:
    path = tmp_path / "reference.csv"
    path.write_text(
        ",".join(FEATURE_NAMES) + ",probability\n1,2,3,4,5,6,7,0.5\n,1.5,0,0,0,0,0,0.1\n"
    )
    reference = load_reference(path)
    assert reference.shape == (2, 7)
    assert math.isnan(reference[1, 0])
    drawn = make_rows(50, seed=3, reference=reference)
    assert {tuple(np.nan_to_num(row, nan=-1)) for row in drawn} <= {
        (1, 2, 3, 4, 5, 6, 7),
        (-1, 1.5, 0, 0, 0, 0, 0),
    }


def test_seed_reference_loads() -> None:
    reference = load_reference(SEED_REFERENCE)
    assert reference.shape == (5000, 7)
    assert np.isnan(reference).any()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("a,b\n", "no data rows"),
        ("h\n1,2\n", "at least 7"),
        ("h\n1,2,3,4,5,6,x\n", "x"),
    ],
)
def test_bad_reference_files_are_reported(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_reference(path)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        make_rows(-1)
    with pytest.raises(ValueError):
        make_rows(1, missing_rate=1.5)
    with pytest.raises(ValueError):
        make_rows(1, reference=np.zeros((0, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="unsupported content type"):
        encode_rows(make_rows(1), "text/plain")
    with pytest.raises(ValueError, match="infinite"):
        encode_rows([[math.inf] * 7], "text/csv")


ROWS = np.array([[2, 0, 0, 7, 3, 20, 2], [np.nan, 1.5, 0.1, 1, 2, 3, np.nan]], dtype=np.float32)


def test_csv_has_one_line_per_row_and_empty_fields_for_missing() -> None:
    assert encode_rows(ROWS, "text/csv") == b"2,0,0,7,3,20,2\n,1.5,0.1,1,2,3,\n"


def test_json_uses_instances_and_null() -> None:
    body = json.loads(encode_rows(ROWS, "application/json; charset=utf-8"))
    assert body == {"instances": [[2, 0, 0, 7, 3, 20, 2], [None, 1.5, 0.1, 1, 2, 3, None]]}


def test_jsonlines_has_one_array_per_line() -> None:
    lines = encode_rows(ROWS, "application/jsonlines").decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        [2, 0, 0, 7, 3, 20, 2],
        [None, 1.5, 0.1, 1, 2, 3, None],
    ]


def test_npy_round_trips_exactly() -> None:
    decoded = np.load(io.BytesIO(encode_rows(ROWS, "application/x-npy")), allow_pickle=False)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, ROWS)


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_every_encoding_reads_back_to_the_same_float32_rows(content_type: str) -> None:
    rows = make_rows(300, seed=11)
    rows[0, :3] = [0.1, 1e-7, 15626.5]
    body = encode_rows(rows, content_type)
    if content_type in ("text/libsvm", "application/x-recordio-protobuf"):
        decoded = DECODERS[content_type](body, num_features=rows.shape[1], max_rows=len(rows))
    elif content_type == "application/x-npy":
        decoded = np.load(io.BytesIO(body), allow_pickle=False)
    elif content_type == "text/csv":
        decoded = np.genfromtxt(io.BytesIO(body), delimiter=",", dtype=np.float32)
    else:
        text = body.decode()
        parsed = (
            json.loads(text)["instances"]
            if content_type == "application/json"
            else [json.loads(line) for line in text.splitlines()]
        )
        decoded = np.array(
            [[math.nan if v is None else v for v in row] for row in parsed], np.float32
        )
    np.testing.assert_array_equal(decoded, rows)


def test_libsvm_writes_a_label_then_each_present_value_by_column() -> None:
    assert encode_rows(ROWS, "text/libsvm") == (
        b"0 0:2 1:0 2:0 3:7 4:3 5:20 6:2\n0 1:1.5 2:0.1 3:1 4:2 5:3\n"
    )


def test_recordio_is_one_dense_float32_record_a_row_as_the_sdk_writes_it() -> None:
    from serve.recordio import Record, split_records

    records = [
        Record.FromString(payload)
        for payload in split_records(
            encode_rows(ROWS, "application/x-recordio-protobuf"), max_records=2
        )
    ]
    tensors = [record.features["values"].float32_tensor for record in records]
    assert all(not tensor.keys and not tensor.shape for tensor in tensors)
    np.testing.assert_array_equal(np.array([list(t.values) for t in tensors], np.float32), ROWS)


def test_a_single_row_vector_is_one_request_row() -> None:
    assert (
        encode_rows(np.array([2, 0, 0, 7, 3, 20, 2], np.float32), "text/csv") == b"2,0,0,7,3,20,2\n"
    )
