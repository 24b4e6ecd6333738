"""The LIBSVM text format (`text/libsvm`, `text/x-libsvm`), read as the SageMaker XGBoost
container's serving code reads it.

One row per line (the body is stripped of surrounding whitespace first, so leading and trailing
blank lines are not rows; a blank line between rows is a row with every feature missing).
Tokens are separated by whitespace; `index:value` is a feature, every token without a colon is
ignored (the label, usually), and `qid:N` is ignored as XGBoost's own reader ignores it. A
feature absent from a line is missing (NaN), as XGBoost treats a sparse matrix; `nan` is
missing too. Indices are column numbers as written (`1:0.5` is the second column), as every
released version of that container reads them; `index_base="one_based_unless_zero"` reads them
as its unreleased successor does (shifted down by one unless some index in the body is 0).

Where that container silently does something no client can mean, this reader differs: a
repeated index in a row is refused (it sums the values), so is `a:b:c` (it drops `:c`); a last
line without any feature is kept as a row of missing values (it drops the row, so the answer
has fewer lines than the request). Like it, a body without any feature at all is refused. It
also takes tabs and CRLF line ends, which it refuses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np

from serve import fastparse
from serve.errors import FeatureCountMismatchError, MalformedPayloadError
from serve.features import FLOAT32_MAX, beyond_float32, check_row_count, fits_float32

if TYPE_CHECKING:
    from serve.features import FeatureMatrix

IndexBase = Literal["as_written", "one_based_unless_zero"]

_NAN = math.nan
_COLON = ord(":")
_NOT_SEPARATORS = bytes(byte for byte in range(256) if byte not in b": ")
_MAX_INDEX_DIGITS = 18  # any longer index is beyond every model: refused before int()


def decode_libsvm(
    body: bytes,
    *,
    num_features: int,
    max_rows: int,
    index_base: IndexBase = "as_written",
) -> FeatureMatrix:
    """A float32 (rows, num_features) matrix, NaN where a row has no value for a column."""
    if index_base == "as_written":  # plain lines in one C call; anything else is read here
        fast = fastparse.parse_libsvm(body, num_features=num_features, max_rows=max_rows)
        if fast is not None:
            return fast
    text = body.strip()
    lines = text.split(b"\n") if text else []
    check_row_count(len(lines), max_rows=max_rows)
    rows = [
        _parse_plain_line(line) or _parse_line_exactly(line, number, num_features=num_features)
        for number, line in enumerate(lines, start=1)
    ]
    if not any(indices for indices, _ in rows):
        raise MalformedPayloadError(
            "The body holds no index:value pair; a LIBSVM row is `label index:value ...`."
        )
    shift = 0
    if index_base == "one_based_unless_zero":
        shift = 1 if min(min(indices) for indices, _ in rows if indices) >= 1 else 0
    limit = num_features + shift
    matrix: list[list[float]] = []
    for number, (indices, values) in enumerate(rows, start=1):
        dense = [_NAN] * num_features
        if indices:
            if len(set(indices)) != len(indices):
                repeated = next(i for k, i in enumerate(indices) if i in indices[:k])
                raise MalformedPayloadError(
                    f"Row {number}: index {repeated} appears more than once; give each index once."
                )
            if max(indices) >= limit:
                beyond = next(index for index in indices if index >= limit)
                raise _beyond(number, _shown(str(beyond).encode())[1:-1], num_features, shift)
            for index, value in zip(indices, values, strict=True):
                dense[index - shift] = value  # `limit` kept every column below num_features
        matrix.append(dense)
    return np.array(matrix, dtype=np.float32)


def _parse_plain_line(line: bytes) -> tuple[list[int], list[float]] | None:
    """`[label] index:value ...` with digit indices and finite float32 values, read in a few
    C-level passes; None for anything else, left to `_parse_line_exactly` (which also
    explains every refusal)."""
    tokens = line.split()
    if tokens and b":" not in tokens[0]:
        del tokens[0]  # the label
    if not tokens or b"_" in line:
        return None
    pairs = b" ".join(tokens)
    if pairs.translate(None, _NOT_SEPARATORS) != b": " * (len(tokens) - 1) + b":":
        return None  # some token without a colon, or with several
    if pairs[0] == _COLON or b" :" in pairs:
        return None  # an empty index
    texts = pairs.replace(b":", b" ").split(b" ")
    index_texts = texts[0::2]
    if not b"".join(index_texts).isdigit():
        return None
    try:  # int() refuses more than 4,300 digits: such an index is left to the exact path
        values = list(map(float, texts[1::2]))
        indices = list(map(int, index_texts))
    except ValueError:
        return None
    if not fits_float32(values):
        return None  # NaN, inf or beyond float32 somewhere: checked one by one
    return indices, values


def _parse_line_exactly(
    line: bytes, number: int, *, num_features: int
) -> tuple[list[int], list[float]]:
    indices: list[int] = []
    values: list[float] = []
    for token in line.split():
        index_text, colon, value_text = token.partition(b":")
        if not colon:
            continue  # the label (or any token without a colon): ignored, as the container does
        if index_text == b"qid" and value_text.isdigit():
            continue
        if not index_text.isdigit():  # ASCII digits only: no sign, space or underscore
            raise MalformedPayloadError(
                f"Row {number}: {_shown(token)} is not index:value with a non-negative "
                "integer index."
            )
        if len(index_text) > _MAX_INDEX_DIGITS:  # never hand int() an unbounded string
            raise _beyond(number, _shown(index_text)[1:-1], num_features, 0)
        index = int(index_text)
        try:
            if b":" in value_text or b"_" in value_text:
                raise ValueError(value_text)
            value = float(value_text)
        except ValueError:
            raise MalformedPayloadError(
                f"Row {number}, index {index}: {_shown(value_text)} is not a number."
            ) from None
        if abs(value) > FLOAT32_MAX:  # inf, or beyond float32 (NaN compares False: missing)
            raise beyond_float32(f"Row {number}, index {index}")
        indices.append(index)
        values.append(value)
    return indices, values


def _beyond(number: int, index: str, num_features: int, shift: int) -> FeatureCountMismatchError:
    return FeatureCountMismatchError(
        f"Row {number}: index {index} is beyond the model's {num_features} features "
        f"(indices {shift} to {num_features - 1 + shift})."
    )


def _shown(token: bytes) -> str:
    return repr(token[:40].decode("utf-8", "backslashreplace"))
