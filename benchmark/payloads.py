"""Realistic RTB request rows for the default model, and their encodings as request bodies.

Rows have the seven features of the reference SageMaker model, in order (`FEATURE_NAMES`).
Synthetic rows follow the distributions seen in the seed model's `reference.csv`: label-indexed
codes within the ranges the model was trained on, with about 1.4 % of fields missing (NaN).
Rows can also be drawn from any `reference.csv`-like file (a header, the features first,
an empty field = missing).

`encode_rows` turns rows into the body of one `/invocations` request for each supported
content type; NaN becomes an empty CSV field, a JSON `null`, an absent LIBSVM feature or a NaN
in a RecordIO row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from model.training import FEATURE_NAMES

NUM_FEATURES: Final = len(FEATURE_NAMES)

CSV: Final = "text/csv"
JSON: Final = "application/json"
JSONLINES: Final = "application/jsonlines"
NPY: Final = "application/x-npy"
LIBSVM: Final = "text/libsvm"
RECORDIO: Final = "application/x-recordio-protobuf"
CONTENT_TYPES: Final = (CSV, JSON, JSONLINES, NPY, LIBSVM, RECORDIO)

GUIDANCE_ROW: Final = b"2,0,0.0,7.0,3.0,20.0,2"
"""The single-row CSV request the AWS RTB guidance sends (7 features)."""

# Fraction of missing fields per column in the seed model's reference.csv (1.3-1.7 %).
MISSING_RATE: Final = 0.014

# Exclusive upper bound of each label-indexed code, from the seed model's reference data.
_CODE_LIMITS: Final = (7, 24, 10, 2000, 36, 370, 6)
# Relative traffic by hour of day: a night trough and an evening peak, as bid-request streams show.
_HOUR_WEIGHTS: Final = np.array(
    [5, 4, 3, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 9, 10, 10, 9, 8, 6], dtype=np.float64
)
# Domains and cities are long-tailed: popular ones carry a few per cent of traffic each.
_ZIPF_EXPONENT: Final = 0.6

Rows = npt.NDArray[np.float32]


def make_rows(
    n: int,
    *,
    seed: int = 0,
    missing_rate: float = MISSING_RATE,
    reference: Rows | None = None,
) -> Rows:
    """Return `n` rows, float32 of shape (n, 7), NaN for missing; the same seed, the same rows.

    With `reference` (rows from `load_reference`), rows are drawn from it with replacement.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= missing_rate <= 1.0:
        raise ValueError(f"missing_rate must be within [0, 1], got {missing_rate}")
    rng = np.random.default_rng(seed)
    if reference is not None:
        if reference.ndim != 2 or reference.shape[1] != NUM_FEATURES or len(reference) == 0:
            raise ValueError(
                f"reference must be a non-empty (rows, {NUM_FEATURES}) array, got {reference.shape}"
            )
        picked: Rows = reference[rng.integers(0, len(reference), size=n)].astype(
            np.float32, copy=True
        )
        return picked
    columns = [
        rng.integers(0, _CODE_LIMITS[0], size=n),
        rng.choice(_CODE_LIMITS[1], size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()),
        rng.integers(0, _CODE_LIMITS[2], size=n),
        _zipf_codes(rng, n, _CODE_LIMITS[3]),
        rng.integers(0, _CODE_LIMITS[4], size=n),
        _zipf_codes(rng, n, _CODE_LIMITS[5]),
        rng.integers(0, _CODE_LIMITS[6], size=n),
    ]
    rows: Rows = np.stack(columns, axis=1).astype(np.float32)
    if missing_rate > 0.0:
        rows[rng.random(rows.shape) < missing_rate] = np.nan
    return rows


def _zipf_codes(rng: np.random.Generator, n: int, limit: int) -> npt.NDArray[np.int64]:
    """Codes in [0, limit) with Zipf-like popularity, popular codes scattered over the range."""
    ranks = np.arange(1, limit + 1, dtype=np.float64)
    weights = ranks**-_ZIPF_EXPONENT
    # A fixed permutation, so code 0 is not always the most popular one.
    codes = np.random.default_rng(limit).permutation(limit)
    drawn: npt.NDArray[np.int64] = codes[rng.choice(limit, size=n, p=weights / weights.sum())]
    return drawn


def load_reference(path: str | Path) -> Rows:
    """Read the features of a `reference.csv`-like file: a header row, then the 7 features first.

    Extra columns (e.g. the expected `probability`) are ignored; an empty field is missing.
    """
    rows: list[list[float]] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        for number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) < NUM_FEATURES:
                raise ValueError(
                    f"{path}:{number}: expected at least {NUM_FEATURES} fields, got {len(record)}"
                )
            try:
                rows.append(
                    [float(field) if field.strip() else math.nan for field in record[:NUM_FEATURES]]
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return np.asarray(rows, dtype=np.float32)


def encode_rows(rows: Rows | Sequence[Sequence[float]], content_type: str) -> bytes:
    """Encode rows (shape (n, features), NaN = missing) as one request body of `content_type`.

    - `text/csv`: one line per row, no header, missing as an empty field.
    - `application/json`: `{"instances": [[...], ...]}`, missing as `null`.
    - `application/jsonlines`: one JSON array per line, missing as `null`.
    - `application/x-npy`: `numpy.save` of the float32 array, NaN kept.
    - `text/libsvm`: one line per row, a label `0` then `column:value` for each value present
      (zeros included, so a row means what its CSV line means), the column as written
      (0-based, as the released SageMaker containers read it).
    - `application/x-recordio-protobuf`: one RecordIO-framed `Record` per row, the row as the
      dense float32 tensor `features["values"]`, NaN kept: what the SageMaker SDK's
      `write_numpy_to_dense_tensor` writes, framed and serialised by `serve.recordio`.

    Numbers are written in the shortest form that reads back to the same float32.
    """
    array = np.asarray(rows, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise ValueError(f"rows must be 2-dimensional, got shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError("rows contain an infinite value, which no text content type can carry")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == NPY:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    if media_type == CSV:
        lines = (",".join(_number(value, missing="") for value in row) for row in array.tolist())
        return ("\n".join(lines) + "\n").encode("ascii")
    if media_type == LIBSVM:
        lines = (
            " ".join(
                ["0"]
                + [f"{column}:{_number(value, missing='')}" for column, value in enumerate(row)
                   if not math.isnan(value)]
            )
            for row in array.tolist()
        )  # fmt: skip
        return ("\n".join(lines) + "\n").encode("ascii")
    if media_type == RECORDIO:
        return _recordio(array)
    arrays = [
        "[" + ",".join(_number(value, missing="null") for value in row) + "]"
        for row in array.tolist()
    ]
    if media_type == JSON:
        return ('{"instances":[' + ",".join(arrays) + "]}").encode("ascii")
    if media_type == JSONLINES:
        return ("\n".join(arrays) + "\n").encode("ascii")
    raise ValueError(
        f"unsupported content type {content_type!r}; choose one of {', '.join(CONTENT_TYPES)}"
    )


def _recordio(array: Rows) -> bytes:
    from serve.recordio import Record, frame

    payloads = []
    record = Record()
    for row in array.tolist():
        record.Clear()
        record.features["values"].float32_tensor.values.extend(row)
        payloads.append(record.SerializeToString())
    return frame(payloads)


def _number(value: float, *, missing: str) -> str:
    if math.isnan(value):
        return missing
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return np.format_float_positional(np.float32(value), unique=True, trim="-")
