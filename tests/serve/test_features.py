"""The feature matrix's rules the decoders share: the quick check of a parsed row (finite and
within float32), the row count, and the refusal of a value float32 cannot hold."""

from __future__ import annotations

import math

import pytest

from serve.errors import EmptyBodyError, InferenceError, InvalidValueError, TooManyRowsError
from serve.features import FLOAT32_MAX, beyond_float32, check_row_count, fits_float32


@pytest.mark.parametrize(
    ("values", "fits"),
    [
        ([], True),
        ([0.0, -1.5, 2.0], True),
        ([FLOAT32_MAX, -FLOAT32_MAX], True),
        ([1.0, math.nan], False),
        ([1.0, math.inf], False),
        ([-math.inf], False),
        ([FLOAT32_MAX * 2], False),
        ([-FLOAT32_MAX * 2, 0.0], False),
        ([1e308, 1e308], False),  # the sum overflows: the caller checks one by one
    ],
)
def test_fits_float32(values: list[float], fits: bool) -> None:
    assert fits_float32(values) is fits


@pytest.mark.parametrize(("rows", "error"), [(0, EmptyBodyError), (4, TooManyRowsError)])
def test_check_row_count_refuses_none_and_more_than_the_limit(
    rows: int, error: type[InferenceError]
) -> None:
    with pytest.raises(error) as raised:
        check_row_count(rows, max_rows=3)
    assert raised.value.message == (
        "The body holds no rows." if rows == 0 else "The body holds 4 rows; the limit is 3."
    )


@pytest.mark.parametrize("rows", [1, 3])
def test_check_row_count_takes_one_to_the_limit(rows: int) -> None:
    check_row_count(rows, max_rows=3)


def test_beyond_float32_names_the_value_and_is_invalid_value() -> None:
    error = beyond_float32("Row 2, column 3")
    assert isinstance(error, InvalidValueError) and error.code == "invalid_value"
    assert error.message == "Row 2, column 3: the value is infinite or outside the float32 range."
