"""LIBSVM requests: the matrix XGBoost itself builds from the same text, and every refusal."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from dmatrix import xgboost_sees
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from serve.codecs import decode_csv
from serve.errors import (
    EmptyBodyError,
    FeatureCountMismatchError,
    InferenceError,
    InvalidValueError,
    MalformedPayloadError,
    TooManyRowsError,
)
from serve.libsvm import _parse_line_exactly, _parse_plain_line, decode_libsvm
from tests.seed import SEED_REFERENCE

NAN = np.nan
NUM_FEATURES = 6


def xgboost_matrix(text: bytes, *, num_features: int, indexing_mode: int = 0) -> np.ndarray:
    """What `xgboost.DMatrix("file?format=libsvm")` holds, densified: NaN where no entry."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rows.libsvm"
        path.write_bytes(text)
        uri = f"{path}?format=libsvm&indexing_mode={indexing_mode}"
        return xgboost_sees(uri, num_features=num_features)


# Quarters with at most 7 digits: XGBoost's own text reader is not correctly rounded (it reads
# "1.241" one float32 step below the nearest), where the container and we read any decimal
# exactly; values like these it reads exactly too, so the whole matrix must agree.
float32_text = st.builds(
    lambda quarters, style: repr(quarters / 4) if style else f"{quarters * 25}e-2",
    st.integers(-99_999, 99_999),
    st.booleans(),
)
row_entries = st.dictionaries(st.integers(0, NUM_FEATURES - 1), float32_text, max_size=NUM_FEATURES)
labels = st.sampled_from(["0", "1", "-1", "0.5", "3"])
separators = st.sampled_from([" ", "  ", "\t", " \t "])


@st.composite
def libsvm_bodies(draw: st.DrawFn, *, lowest_index: int = 0) -> tuple[bytes, list[dict[int, str]]]:
    rows = draw(st.lists(row_entries, min_size=1, max_size=8))
    rows = [{index + lowest_index: value for index, value in row.items()} for row in rows]
    if not any(rows):
        rows[0] = {lowest_index: "1.5"}
    lines = []
    for row in rows:
        separator = draw(separators)
        items = list(row.items())
        draw(st.randoms()).shuffle(items)
        tokens = [draw(labels)] + [f"{index}:{value}" for index, value in items]
        lines.append(separator.join(tokens))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return (ending.join(lines) + draw(st.sampled_from(["", ending]))).encode(), rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(libsvm_bodies())
def test_matches_the_matrix_xgboost_reads_from_the_same_text(
    drawn: tuple[bytes, list[dict[int, str]]],
) -> None:
    body, rows = drawn
    got = decode_libsvm(body, num_features=NUM_FEATURES, max_rows=100)
    expected = xgboost_matrix(body, num_features=NUM_FEATURES)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (len(rows), NUM_FEATURES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(libsvm_bodies(lowest_index=1))
def test_one_based_unless_zero_matches_xgboost_one_based_when_no_index_is_zero(
    drawn: tuple[bytes, list[dict[int, str]]],
) -> None:
    body, _ = drawn
    got = decode_libsvm(
        body, num_features=NUM_FEATURES, max_rows=100, index_base="one_based_unless_zero"
    )
    np.testing.assert_array_equal(
        got, xgboost_matrix(body, num_features=NUM_FEATURES, indexing_mode=1)
    )


GOOD = [
    (b"1 0:1 2:3", [[1, NAN, 3, NAN]]),
    (b"0:1 2:3", [[1, NAN, 3, NAN]]),  # no label: every token with a colon is a feature
    (b"1 0:1 junk 2:3 #", [[1, NAN, 3, NAN]]),  # tokens without a colon are ignored
    (b"1 qid:7 3:-2.5e1", [[NAN, NAN, NAN, -25]]),
    (b"1 1:nan 3:0", [[NAN, NAN, NAN, 0]]),
    (b"\n\n1 1:2\n\n0 3:4\n\n", [[NAN, 2, NAN, NAN], [NAN, NAN, NAN, NAN], [NAN, NAN, NAN, 4]]),
    (b"1 1:2\n0", [[NAN, 2, NAN, NAN], [NAN, NAN, NAN, NAN]]),
    (b"1 0001:+2 2:.5", [[NAN, 2, 0.5, NAN]]),
    (b"1 0:3.4028234663852886e38", [[3.4028234663852886e38, NAN, NAN, NAN]]),
]


@pytest.mark.parametrize(("body", "expected"), GOOD)
def test_reads(body: bytes, expected: list[list[float]]) -> None:
    got = decode_libsvm(body, num_features=4, max_rows=10)
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))


def test_one_based_unless_zero_keeps_indices_when_some_index_is_zero() -> None:
    body = b"1 1:5\n0 0:2"
    as_written = decode_libsvm(body, num_features=3, max_rows=10)
    shifted = decode_libsvm(body, num_features=3, max_rows=10, index_base="one_based_unless_zero")
    np.testing.assert_array_equal(shifted, as_written)
    one_based = decode_libsvm(
        b"1 1:5 3:6", num_features=3, max_rows=10, index_base="one_based_unless_zero"
    )
    np.testing.assert_array_equal(one_based, np.array([[5, NAN, 6]], dtype=np.float32))


BAD = [
    (b"", EmptyBodyError, None),
    (b" \r\n\t ", EmptyBodyError, None),
    (b"1\n0", MalformedPayloadError, None),  # no feature at all
    (b"1 1:2 1:3", MalformedPayloadError, 1),
    (b"1 1:2\n1 1:nan 1:3", MalformedPayloadError, 2),
    (b"1 -1:2", MalformedPayloadError, 1),
    (b"1 +1:2", MalformedPayloadError, 1),
    (b"1 1_0:2", MalformedPayloadError, 1),
    (b"1 :2", MalformedPayloadError, 1),
    (b"1 1:", MalformedPayloadError, 1),
    (b"1 1:2:3", MalformedPayloadError, 1),
    (b"1 1:x", MalformedPayloadError, 1),
    (b"1 1:1_0", MalformedPayloadError, 1),
    (b"1 1:\xff", MalformedPayloadError, 1),
    (b"1 qid:x 1:2", MalformedPayloadError, 1),
    (b"1 0:1\n1 4:2", FeatureCountMismatchError, 2),
    (b"1 " + b"9" * 5000 + b":1", FeatureCountMismatchError, 1),
    (b"1 1:inf", InvalidValueError, 1),
    (b"1 1:-1e39", InvalidValueError, 1),
    (b"1 1:2\n" * 11, TooManyRowsError, None),
]


@pytest.mark.parametrize(("body", "error", "row"), BAD)
def test_refuses(body: bytes, error: type[InferenceError], row: int | None) -> None:
    with pytest.raises(error) as raised:
        decode_libsvm(body, num_features=4, max_rows=10)
    if row is not None:
        assert raised.value.message.startswith(f"Row {row}"), raised.value.message


lines = st.text(alphabet="0123456789:.-+eEnaifqd_ x\t", max_size=40).map(str.encode)


@settings(max_examples=500, deadline=None)
@given(lines)
@example(b"1 1:2:3 4")
@example(b"1:2:3 4:5")
@example(b"1 :2 3:")
def test_the_quick_reading_agrees_with_the_exact_one(line: bytes) -> None:
    quick = _parse_plain_line(line)
    if quick is not None:
        assert quick == _parse_line_exactly(line, 1, num_features=NUM_FEATURES)


def test_the_seed_reference_rows_as_libsvm_reach_the_model_as_their_csv_does() -> None:
    """The 5,000 reference rows (a fifth of them with missing values), each written as LIBSVM
    with its empty fields left out, decode to exactly the matrix their CSV decodes to."""
    lines = SEED_REFERENCE.read_text().splitlines()[1:]
    fields = [line.split(",")[:-1] for line in lines]
    csv = "\n".join(",".join(row) for row in fields).encode()
    libsvm = "\n".join(
        "0 " + " ".join(f"{index}:{value}" for index, value in enumerate(row) if value)
        for row in fields
    ).encode()
    expected = decode_csv(csv, num_features=7, max_rows=len(lines))
    assert np.isnan(expected).any()
    got = decode_libsvm(libsvm, num_features=7, max_rows=len(lines))
    np.testing.assert_array_equal(got, expected)
