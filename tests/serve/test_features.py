"""The decoders' quick check of a parsed row: finite and within float32."""

from __future__ import annotations

import math

import pytest

from serve.features import FLOAT32_MAX, fits_float32


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
