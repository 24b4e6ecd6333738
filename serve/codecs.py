"""Request decoders and response encoders, keyed by media type, and content negotiation.

Decoders turn a body into a C-contiguous float32 matrix (rows, num_features) with NaN for a
missing value; they are strict: anything that is not a number, a missing value or a
well-formed row is a 400 naming the row and column (1-based). Encoders turn the
probabilities into bytes in the shape the SageMaker XGBoost container answers with.
LIBSVM lives in serve/libsvm.py and RecordIO-protobuf in serve/recordio.py; `resolve_content_type`
maps a Content-Type header (or its absence) to a decoder as that container does.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from serve import fastparse
from serve.errors import (
    EmptyBodyError,
    FeatureCountMismatchError,
    InvalidValueError,
    MalformedPayloadError,
    NotAcceptableError,
    TooManyRowsError,
    UnsupportedMediaTypeError,
)
from serve.features import (
    FLOAT32_MAX,
    FeatureMatrix,
    beyond_float32,
    check_row_count,
    fits_float32,
)
from serve.libsvm import decode_libsvm
from serve.outputs import OutputSelection, Predictions
from serve.recordio import decode_recordio, encode_recordio

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"
LIBSVM = "text/libsvm"
X_LIBSVM = "text/x-libsvm"
RECORDIO = "application/x-recordio-protobuf"

Decoder = Callable[..., FeatureMatrix]
Encoder = Callable[[Predictions, OutputSelection], bytes]

_NUMBER_TYPES = frozenset({int, float, type(None)})
_JSON_KINDS = {str: "a string", bool: "true or false", list: "a list", dict: "an object"}
_ORJSON_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_ORJSON_NUMPY_LINE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
_CSV_LINES = bytes.maketrans(b",", b"\n")


def parse_media_type(value: str) -> str:
    """`"Text/CSV; charset=utf-8"` -> `"text/csv"` (parameters are ignored)."""
    return value.split(";", 1)[0].strip().lower()


# --- decoders -------------------------------------------------------------------------------


def parse_csv_row(body: bytes, *, num_features: int) -> list[float] | None:
    """The hot path: `body` as exactly one CSV row of finite numbers that fit in float32.

    Returns None for anything else (several rows, a missing value, NaN, inf, junk); the caller
    then uses `decode_csv`, which is exact and explains every refusal. Python's `float()` on
    the comma-split fields beats numpy's parser on a handful of fields.
    """
    if b"\n" in body:  # before splitting: a bulk body is not split twice
        return None
    tokens = body.split(b",")
    if len(tokens) != num_features or b"_" in body:
        return None
    try:
        values = list(map(float, tokens))
    except ValueError:
        return None
    return values if fits_float32(values) else None


def decode_csv(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix:
    """Rows separated by LF or CRLF, values by commas, no header; an empty field is missing."""
    values = parse_csv_row(body, num_features=num_features)
    if values is not None:
        return np.array((values,), dtype=np.float32)
    matrix = fastparse.parse_csv(body, num_features=num_features, max_rows=max_rows)
    if matrix is not None:
        return matrix
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    if body.endswith(b"\n"):
        body = body[:-1]
    rows = body.count(b"\n") + 1 if body else 0
    check_row_count(rows, max_rows=max_rows)
    if b"_" in body:  # float() accepts "1_000"; a CSV number does not
        _raise_bad_csv_token(body.split(b"\n"))
    if rows == 1:
        tokens = body.split(b",")
        if len(tokens) != num_features:
            raise _csv_count_error(1, len(tokens), num_features)
    else:
        lines = body.split(b"\n")
        expected_commas = num_features - 1
        for index, line in enumerate(lines):
            if line.count(b",") != expected_commas:
                raise _csv_count_error(index + 1, line.count(b",") + 1, num_features)
        tokens = b",".join(lines).split(b",")
    try:
        flat = np.array(tokens, dtype=np.float64)
    except ValueError:
        # Empty (or blank) fields are missing values; anything else unparsable is an error.
        tokens = [token if token.strip() else b"nan" for token in tokens]
        try:
            flat = np.array(tokens, dtype=np.float64)
        except ValueError:
            _raise_bad_csv_token(body.split(b"\n"))
    return _to_float32(flat.reshape(rows, num_features))


def _csv_count_error(row: int, got: int, expected: int) -> FeatureCountMismatchError:
    return FeatureCountMismatchError(f"Row {row} has {got} values; the model expects {expected}.")


def _raise_bad_csv_token(lines: list[bytes]) -> None:
    for row, line in enumerate(lines, start=1):
        for column, token in enumerate(line.split(b","), start=1):
            if not token.strip():
                continue
            try:
                if b"_" in token:
                    raise ValueError(token)
                float(token)
            except ValueError:
                shown = token[:40].decode("utf-8", "backslashreplace")
                raise MalformedPayloadError(
                    f"Row {row}, column {column}: {shown!r} is not a number."
                ) from None
    raise MalformedPayloadError("The body is not valid CSV.")  # pragma: no cover - defensive


def decode_json(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix:
    """`{"instances": [[...], ...]}`, `{"instances": [{"features": [...]}, ...]}`,
    `{"features": [...]}`, a bare list of rows, or one flat row. `null` is a missing value."""
    matrix = fastparse.parse_json(body, num_features=num_features, max_rows=max_rows)
    if matrix is not None:
        return matrix
    document = _load_json(body, where="The body")
    rows: Any
    if isinstance(document, dict):
        if "instances" in document:
            rows = document["instances"]
            if not isinstance(rows, list):
                raise MalformedPayloadError('"instances" must be a list of rows.')
            rows = [_unwrap_features(row, index) for index, row in enumerate(rows, start=1)]
        elif "features" in document:
            rows = [_unwrap_features(document, 1)]
        else:
            raise MalformedPayloadError(
                'Expected {"instances": [[...], ...]}, {"features": [...]} or a list of rows.'
            )
    elif isinstance(document, list):
        if document and not isinstance(document[0], list | dict):
            rows = [document]  # one flat row
        else:
            rows = [_unwrap_features(row, index) for index, row in enumerate(document, start=1)]
    else:
        raise MalformedPayloadError("Expected a JSON object or a list of rows.")
    return _rows_to_matrix(rows, num_features=num_features, max_rows=max_rows)


def decode_jsonlines(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix:
    """One row per line: a list of values or `{"features": [...]}`; blank lines are skipped."""
    matrix = fastparse.parse_jsonlines(body, num_features=num_features, max_rows=max_rows)
    if matrix is not None:
        return matrix
    lines = [line for line in body.split(b"\n") if line.strip()]
    check_row_count(len(lines), max_rows=max_rows)
    rows = [
        _unwrap_features(_load_json(line, where=f"Line {index}"), index)
        for index, line in enumerate(lines, start=1)
    ]
    return _rows_to_matrix(rows, num_features=num_features, max_rows=max_rows)


def decode_npy(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix:
    """A NumPy `.npy` file of a 1-D (one row) or 2-D numeric array; never unpickles."""
    matrix = fastparse.parse_npy(body, num_features=num_features, max_rows=max_rows)
    if matrix is not None:
        return matrix
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in {(2, 0), (3, 0)}:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise MalformedPayloadError(f"The body is not a valid .npy file: {exc}") from None
    if dtype.kind not in "fiu" or dtype.hasobject or dtype.fields is not None:
        raise MalformedPayloadError(f"The .npy array must be numeric, not {dtype}.")
    if len(shape) not in (1, 2):
        raise MalformedPayloadError(f"The .npy array must be 1-D or 2-D, not {len(shape)}-D.")
    rows, columns = (1, shape[0]) if len(shape) == 1 else shape
    if rows > max_rows:
        raise TooManyRowsError(f"The array holds {rows} rows; the limit is {max_rows}.")
    if rows == 0:
        raise EmptyBodyError("The array holds no rows.")
    if columns != num_features:
        raise FeatureCountMismatchError(
            f"The array has {columns} columns; the model expects {num_features}."
        )
    offset = stream.tell()
    if len(body) - offset != rows * columns * dtype.itemsize:
        raise MalformedPayloadError(
            f"The .npy data holds {len(body) - offset} bytes; its header describes "
            f"{rows * columns * dtype.itemsize}."
        )
    flat = np.frombuffer(body, dtype=dtype, count=rows * columns, offset=offset)
    matrix = flat.reshape((rows, columns), order="F" if fortran_order else "C")
    return _to_float32(matrix.astype(np.float64))


def _load_json(text: bytes, *, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):
            raise InvalidValueError(f"{where} holds a number too large for float: {exc}") from None
        raise MalformedPayloadError(f"{where} is not valid JSON: {exc}") from None


def _unwrap_features(row: Any, index: int) -> Any:
    features = row.get("features") if isinstance(row, dict) else row
    if not isinstance(features, list):
        raise MalformedPayloadError(f'Row {index}: expected a list or {{"features": [...]}}.')
    return features


def _rows_to_matrix(rows: list[Any], *, num_features: int, max_rows: int) -> FeatureMatrix:
    check_row_count(len(rows), max_rows=max_rows)
    for index, row in enumerate(rows, start=1):
        if len(row) != num_features:
            raise _csv_count_error(index, len(row), num_features)
        for column, value in enumerate(row, start=1):
            if value.__class__ not in _NUMBER_TYPES:
                raise MalformedPayloadError(
                    f"Row {index}, column {column}: {_JSON_KINDS.get(type(value), 'a value')} "
                    "is not a number or null."
                )
    try:
        return _to_float32(np.array(rows, dtype=np.float64))
    except OverflowError:  # an integer beyond float64
        raise InvalidValueError("A value is outside the float32 range.") from None


def _to_float32(matrix: npt.NDArray[np.float64]) -> FeatureMatrix:
    """Refuse infinities and values float32 cannot hold (NaN is a missing value), then cast."""
    outside = np.abs(matrix) > FLOAT32_MAX
    if outside.any():
        row, column = (int(i) + 1 for i in np.argwhere(outside)[0])
        raise beyond_float32(f"Row {row}, column {column}")
    return np.ascontiguousarray(matrix, dtype=np.float32)


DECODERS: Mapping[str, Decoder] = {
    CSV: decode_csv,
    JSON: decode_json,
    JSONLINES: decode_jsonlines,
    NPY: decode_npy,
    LIBSVM: decode_libsvm,
    X_LIBSVM: decode_libsvm,
    RECORDIO: decode_recordio,
}

# The bare names the SageMaker XGBoost container also takes as a Content-Type.
_CONTENT_TYPE_ALIASES = {"csv": CSV, "libsvm": LIBSVM, "recordio-protobuf": RECORDIO}


def resolve_content_type(header: str | None) -> Decoder:
    """The decoder for a request's Content-Type header value, as the SageMaker XGBoost
    container resolves it: no header at all means LIBSVM; the media type is case-insensitive
    and may be a bare `csv`, `libsvm` or `recordio-protobuf`; parameters are ignored, except
    that a CSV `label_size` must be 1. Raises UnsupportedMediaTypeError for anything else
    (an empty header value included)."""
    if header is None:
        return decode_libsvm
    media_type = parse_media_type(header)
    media_type = _CONTENT_TYPE_ALIASES.get(media_type, media_type)
    decoder = DECODERS.get(media_type)
    if decoder is None:
        raise UnsupportedMediaTypeError(
            f"Content-Type {header[:100]!r} is not supported; send one of {', '.join(DECODERS)}."
        )
    if media_type == CSV:
        for parameter in header.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "label_size" and value.strip().strip('"') != "1":
                raise UnsupportedMediaTypeError(
                    f"Content-Type {header[:100]!r}: label_size must be 1 (or left out); "
                    "send the features only."
                )
    return decoder


# --- encoders -------------------------------------------------------------------------------
#
# As the SageMaker XGBoost container answers (sagemaker_containers' encoders and the container's
# serve_utils): CSV one line per row (a `multi:softprob` row is its k values joined by commas),
# `\n`-terminated; JSON `{"predictions": [{"score": p}, ...]}` (p a list for softprob); NPY the
# float64 array of the predictions. Floats are written as the shortest text that parses back to
# the same float32 (the built-in prints the float32 as a double: the same float32 once
# parsed). With `SAGEMAKER_INFERENCE_OUTPUT`, CSV lines are not terminated (as the built-in's
# `"\n".join`) and NaN (a key that does not apply) is `nan` in CSV and `null` in JSON.


def encode_csv(predictions: Predictions, selection: OutputSelection) -> bytes:
    """One line per row: the score (k values for softprob), or the selected keys' values."""
    if selection.is_default:
        if predictions.ndim == 1:
            return encode_csv_scores(predictions, selection)
        text = orjson.dumps(predictions, option=_ORJSON_NUMPY)
        return text[2:-2].replace(b"],[", b"\n") + b"\n"
    return "\n".join(selection.csv_lines(predictions)).encode()


def encode_csv_scores(predictions: Predictions, selection: OutputSelection) -> bytes:
    """The hot path, one score a row (a 1-D array, the default answer): `[a,b]\n` -> `a\nb\n`
    in one pass over orjson's text."""
    return orjson.dumps(predictions, option=_ORJSON_NUMPY_LINE).translate(_CSV_LINES, b"[]")


def encode_json(predictions: Predictions, selection: OutputSelection) -> bytes:
    """`{"predictions": [{"score": p}, ...]}` (or the selected keys), as the built-in answers."""
    if selection.is_default and _is_plain_float32(predictions):
        # The array in one orjson call, then each comma becomes the next record's opening:
        # the same bytes as the records, without a dict per row.
        values = orjson.dumps(predictions, option=_ORJSON_NUMPY)[1:-1]
        return b'{"predictions":[{"score":' + values.replace(b",", b'},{"score":') + b"}]}"
    return orjson.dumps({"predictions": selection.records(predictions)}, option=_ORJSON_NUMPY)


def encode_jsonlines(predictions: Predictions, selection: OutputSelection) -> bytes:
    """One JSON object per line, each ending in a newline."""
    if selection.is_default and _is_plain_float32(predictions):
        values = orjson.dumps(predictions, option=_ORJSON_NUMPY)[1:-1]
        return b'{"score":' + values.replace(b",", b'}\n{"score":') + b"}\n"
    records = selection.records(predictions)
    return b"".join(orjson.dumps(record, option=_ORJSON_NUMPY) + b"\n" for record in records)


def _is_plain_float32(predictions: Predictions) -> bool:
    """A non-empty C-contiguous 1-D float32 array: what orjson serializes as one list."""
    return (
        predictions.dtype == np.float32
        and predictions.ndim == 1
        and predictions.flags.c_contiguous
        and predictions.shape[0] > 0
    )


def encode_npy(predictions: Predictions, selection: OutputSelection) -> bytes:
    """The predictions as a float64 `.npy` array, (rows,) or (rows, k): the built-in's
    `np.save(preds.tolist())`. Only for the default answer (`SCORE_ONLY_TYPES`)."""
    stream = io.BytesIO()
    np.save(stream, predictions.astype(np.float64), allow_pickle=False)
    return stream.getvalue()


def encode_batch_lines(predictions: Predictions, selection: OutputSelection) -> bytes:
    """Batch Transform (`SAGEMAKER_BATCH`), default answer: one prediction per line whatever
    the Accept, as the built-in's `"\n".join(map(str, preds.tolist())) + "\n"`: a softprob
    row is written as a list, `[a, b, c]`."""
    if predictions.ndim == 1:
        return encode_csv_scores(predictions, selection)
    rows = orjson.dumps(predictions, option=_ORJSON_NUMPY)[1:-1].replace(b"],[", b"]\n[")
    return rows.replace(b",", b", ") + b"\n"


ENCODERS: Mapping[str, Encoder] = {
    CSV: encode_csv,
    JSON: encode_json,
    JSONLINES: encode_jsonlines,
    RECORDIO: encode_recordio,
    NPY: encode_npy,
}

SCORE_ONLY_TYPES = frozenset({NPY})
"""Response types that cannot carry `SAGEMAKER_INFERENCE_OUTPUT` records."""


def encoders_for(
    selection: OutputSelection, *, batch: bool, num_outputs: int = 1
) -> dict[str, Encoder]:
    """The response types this server answers with, and how, decided once at start-up for the
    model's output selection, its number of outputs a row and `SAGEMAKER_BATCH`."""
    if selection.is_default:
        if batch:
            return dict.fromkeys(ENCODERS, encode_batch_lines)
        if num_outputs == 1:
            return {**ENCODERS, CSV: encode_csv_scores}
        return dict(ENCODERS)
    available = {key: value for key, value in ENCODERS.items() if key not in SCORE_ONLY_TYPES}
    if batch:
        available[CSV] = _encode_csv_batch
    return available


def _encode_csv_batch(predictions: Predictions, selection: OutputSelection) -> bytes:
    """Selected keys in Batch Transform: CSV lines, each terminated (the built-in adds `\n`)."""
    return encode_csv(predictions, selection) + b"\n"


def negotiate_accept(
    header: str | None, *, default: str, available: Mapping[str, Encoder] = ENCODERS
) -> str:
    """Pick the response type from an Accept header, honouring q-values and wildcards.

    A missing or empty header, or `*/*`, means `default`. Raises NotAcceptableError when
    nothing listed is in `available`.
    """
    if header is None or not header.strip():
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        media_type, _, parameters = part.partition(";")
        media_type = media_type.strip().lower()
        if not media_type:
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        if quality > 0.0:
            ranked.append((-quality, position, media_type))
    for _, _, media_type in sorted(ranked):
        if media_type == "*/*":
            return default
        if media_type in available:
            return media_type
        if media_type.endswith("/*"):
            prefix = media_type[:-1]
            if default.startswith(prefix):
                return default
            for candidate in available:
                if candidate.startswith(prefix):
                    return candidate
    raise NotAcceptableError(
        f"Cannot answer with {header[:200]!r}; supported: {', '.join(available)}."
    )
