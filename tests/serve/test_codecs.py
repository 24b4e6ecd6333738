"""Decoders, encoders and Accept negotiation, table-driven; tests assert codes, not messages."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve.codecs import (
    CSV,
    DECODERS,
    ENCODERS,
    JSON,
    JSONLINES,
    NPY,
    decode_csv,
    decode_json,
    decode_jsonlines,
    decode_npy,
    encode_batch_lines,
    encode_csv_scores,
    encoders_for,
    negotiate_accept,
    parse_csv_row,
    parse_media_type,
    resolve_content_type,
)
from serve.errors import InferenceError, NotAcceptableError, UnsupportedMediaTypeError
from serve.libsvm import decode_libsvm
from serve.outputs import OutputSelection
from serve.recordio import decode_recordio

NAN = np.nan


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


GOOD = [
    (CSV, b"1,2,3", [[1, 2, 3]]),
    (CSV, b"1,2,3\n", [[1, 2, 3]]),
    (CSV, b"1,2,3\r\n4,5,6\r\n", [[1, 2, 3], [4, 5, 6]]),
    (CSV, b"1,,3", [[1, NAN, 3]]),
    (CSV, b",,", [[NAN, NAN, NAN]]),
    (CSV, b" 1 , 2 ,3", [[1, 2, 3]]),
    (CSV, b"1,nan,-3.5e2", [[1, NAN, -350]]),
    (CSV, b"1,2,3\n4, ,6", [[1, 2, 3], [4, NAN, 6]]),
    (JSON, b'{"instances": [[1, 2, 3], [4, null, 6]]}', [[1, 2, 3], [4, NAN, 6]]),
    (JSON, b'{"instances": [{"features": [1, 2, 3]}]}', [[1, 2, 3]]),
    (JSON, b'{"features": [1, 2, 3]}', [[1, 2, 3]]),
    (JSON, b"[[1, 2, 3], [4, 5, 6]]", [[1, 2, 3], [4, 5, 6]]),
    (JSON, b"[1, 2.5, null]", [[1, 2.5, NAN]]),
    (JSONLINES, b"[1, 2, 3]\n[4, 5, 6]\n", [[1, 2, 3], [4, 5, 6]]),
    (JSONLINES, b'{"features": [1, 2, 3]}\r\n\n[4, 5, null]', [[1, 2, 3], [4, 5, NAN]]),
    (NPY, npy(np.array([1, 2, 3], dtype=np.float64)), [[1, 2, 3]]),
    (NPY, npy(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)), [[1, 2, 3], [4, 5, 6]]),
    (NPY, npy(np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype=np.float32)), [[1, 2, 3], [4, 5, 6]]),
    (NPY, npy(np.array([[1, NAN, 3]], dtype=np.float32)), [[1, NAN, 3]]),
]


@pytest.mark.parametrize(("media_type", "body", "expected"), GOOD)
def test_decoders_accept(media_type: str, body: bytes, expected: list[list[float]]) -> None:
    matrix = DECODERS[media_type](body, num_features=3, max_rows=10)
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    np.testing.assert_array_equal(matrix, np.array(expected, dtype=np.float32))


BAD = [
    (CSV, b"", "empty_body"),
    (CSV, b"\n", "empty_body"),
    (CSV, b"1,abc,3", "malformed_payload"),
    (CSV, b"1,2,3\n4,x,6", "malformed_payload"),
    (CSV, b"1_0,2,3", "malformed_payload"),
    (CSV, b"0x10,2,3", "malformed_payload"),
    (CSV, b"1,2,3\xff", "malformed_payload"),
    (CSV, b"1,2", "feature_count_mismatch"),
    (CSV, b"1,2,3,4", "feature_count_mismatch"),
    (CSV, b"1,2,3\n1,2", "feature_count_mismatch"),
    (CSV, b"1,2,3\n\n4,5,6", "feature_count_mismatch"),
    (CSV, b"1,inf,3", "invalid_value"),
    (CSV, b"1,-Infinity,3", "invalid_value"),
    (CSV, b"1,1e400,3", "invalid_value"),
    (CSV, b"1,1e39,3", "invalid_value"),
    (CSV, b"1,2,3\n" * 11, "too_many_rows"),
    (JSON, b"", "malformed_payload"),
    (JSON, b"{", "malformed_payload"),
    (JSON, b'"text"', "malformed_payload"),
    (JSON, b"{}", "malformed_payload"),
    (JSON, b'{"instances": 3}', "malformed_payload"),
    (JSON, b'{"instances": []}', "empty_body"),
    (JSON, b"[]", "empty_body"),
    (JSON, b'{"instances": [[1, "2", 3]]}', "malformed_payload"),
    (JSON, b'{"instances": [[1, true, 3]]}', "malformed_payload"),
    (JSON, b'{"instances": [[1, [2], 3]]}', "malformed_payload"),
    (JSON, b'{"instances": [{"values": [1, 2, 3]}]}', "malformed_payload"),
    (JSON, b'{"instances": [[1, 2]]}', "feature_count_mismatch"),
    (JSON, b"[[1, 2, 3], [1, 2]]", "feature_count_mismatch"),
    (JSON, b"[1, 1e400, 3]", "invalid_value"),
    (JSON, b"[1, 1e300, 3]", "invalid_value"),
    (JSON, b"[1, NaN, 3]", "malformed_payload"),
    (JSON, b"[" * 5000 + b"]" * 5000, "malformed_payload"),
    (JSON, b"[[1, 2, 3]" + b", [1, 2, 3]" * 10 + b"]", "too_many_rows"),
    (JSONLINES, b"\n\n", "empty_body"),
    (JSONLINES, b"[1, 2, 3]\n{", "malformed_payload"),
    (JSONLINES, b"[1, 2, 3]\n3", "malformed_payload"),
    (JSONLINES, b"[1, 2, 3]\n[1, 2]", "feature_count_mismatch"),
    (NPY, b"", "malformed_payload"),
    (NPY, b"not an npy file", "malformed_payload"),
    (NPY, npy(np.array([[1, 2, 3]], dtype=object)), "malformed_payload"),
    (NPY, npy(np.array([["a", "b", "c"]])), "malformed_payload"),
    (NPY, npy(np.zeros((1, 3, 1))), "malformed_payload"),
    (NPY, npy(np.zeros((1, 2))), "feature_count_mismatch"),
    (NPY, npy(np.zeros((0, 3))), "empty_body"),
    (NPY, npy(np.zeros((11, 3))), "too_many_rows"),
    (NPY, npy(np.array([[1, np.inf, 3]])), "invalid_value"),
    (NPY, npy(np.zeros((2, 3)))[:-8], "malformed_payload"),
    (NPY, npy(np.zeros((2, 3))) + b"\0" * 8, "malformed_payload"),
]


@pytest.mark.parametrize(("media_type", "body", "code"), BAD)
def test_decoders_refuse(media_type: str, body: bytes, code: str) -> None:
    with pytest.raises(InferenceError) as caught:
        DECODERS[media_type](body, num_features=3, max_rows=10)
    assert caught.value.code == code
    assert caught.value.status_code < 500


def test_npy_header_claiming_a_huge_array_is_refused_without_allocating_it() -> None:
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**10, 3)}
    np.lib.format.write_array_header_1_0(buffer, header)
    forged = buffer.getvalue() + b"\0" * 24
    with pytest.raises(InferenceError) as caught:
        decode_npy(forged, num_features=3, max_rows=10**12)
    assert caught.value.code == "malformed_payload"


def test_errors_name_row_and_column() -> None:
    with pytest.raises(InferenceError, match="Row 2, column 3"):
        decode_csv(b"1,2,3\n4,5,x", num_features=3, max_rows=10)
    with pytest.raises(InferenceError, match="Row 1, column 2"):
        decode_json(b'[[1, "a", 3]]', num_features=3, max_rows=10)
    with pytest.raises(InferenceError, match="Row 2 has 2 values; the model expects 3"):
        decode_jsonlines(b"[1,2,3]\n[1,2]", num_features=3, max_rows=10)


def test_missing_values_become_nan_never_zero() -> None:
    matrix = decode_csv(b",1,", num_features=3, max_rows=1)
    assert np.isnan(matrix[0, 0]) and np.isnan(matrix[0, 2]) and matrix[0, 1] == 1


SCORES = np.array([0.25, 0.75], dtype=np.float32)
SOFTPROB = np.array([[0.25, 0.5, 0.25], [0.125, 0.125, 0.75]], dtype=np.float32)
LABELS = OutputSelection.for_model(
    keys=("predicted_label", "probability"), objective="binary:logistic"
)

ENCODED = [
    # The built-in's sagemaker_containers encoders: csv.writer rows, "\n"-terminated.
    (CSV, SCORES, OutputSelection(), b"0.25\n0.75\n"),
    (CSV, SOFTPROB, OutputSelection(), b"0.25,0.5,0.25\n0.125,0.125,0.75\n"),
    (JSON, SCORES, OutputSelection(), b'{"predictions":[{"score":0.25},{"score":0.75}]}'),
    (
        JSON,
        SOFTPROB,
        OutputSelection(),
        b'{"predictions":[{"score":[0.25,0.5,0.25]},{"score":[0.125,0.125,0.75]}]}',
    ),
    (JSONLINES, SCORES, OutputSelection(), b'{"score":0.25}\n{"score":0.75}\n'),
    # Selected keys: the built-in's "\n".join, no terminating newline.
    (CSV, SCORES, LABELS, b"0,0.25\n1,0.75"),
    (
        JSON,
        SCORES,
        LABELS,
        b'{"predictions":[{"predicted_label":0,"probability":0.25},'
        b'{"predicted_label":1,"probability":0.75}]}',
    ),
    (
        JSONLINES,
        SCORES,
        LABELS,
        b'{"predicted_label":0,"probability":0.25}\n{"predicted_label":1,"probability":0.75}\n',
    ),
]


@pytest.mark.parametrize(("media_type", "predictions", "selection", "expected"), ENCODED)
def test_encoders(
    media_type: str, predictions: np.ndarray, selection: OutputSelection, expected: bytes
) -> None:
    assert ENCODERS[media_type](predictions, selection) == expected


@pytest.mark.parametrize("predictions", [SCORES, SOFTPROB])
def test_npy_answer_is_the_float64_array_of_the_predictions(predictions: np.ndarray) -> None:
    """The built-in's `np.save(preds.tolist())`: float64, same shape, same values."""
    answer = np.load(io.BytesIO(ENCODERS[NPY](predictions, OutputSelection())))
    assert answer.dtype == np.float64
    np.testing.assert_array_equal(answer, predictions.astype(np.float64))


def test_float32_scores_print_shortest() -> None:
    scores = np.array([0.00084757], dtype=np.float32)
    assert ENCODERS[CSV](scores, OutputSelection()) == b"0.00084757\n"


def test_csv_floats_parse_back_to_the_builtins_float32() -> None:
    """We write the shortest text of the float32 (`0.021455305`), the built-in the double
    nearest it (`0.021455304697155952`): once parsed as float32, every value is the same."""
    rng = np.random.default_rng(7)
    scores = np.concatenate(
        [
            rng.random(20_000, dtype=np.float32),
            rng.standard_normal(5_000).astype(np.float32) * 1e6,
            np.array([0.021455305, 1e-38, 3.4e38, 0.0, 1.0], dtype=np.float32),
        ]
    )
    ours = ENCODERS[CSV](scores, OutputSelection()).decode().splitlines()
    builtin = [repr(value) for value in scores.tolist()]  # csv.writer writes str(float)
    assert ours != builtin  # the texts differ...
    np.testing.assert_array_equal(  # ...the float32 values do not
        np.array(ours, dtype=np.float32), np.array(builtin, dtype=np.float32)
    )
    assert (np.array(ours, dtype=np.float32) == scores).all()


def test_batch_lines_are_one_prediction_a_line() -> None:
    """SAGEMAKER_BATCH: the built-in's `"\\n".join(map(str, preds.tolist())) + "\\n"`."""
    assert encode_batch_lines(SCORES, OutputSelection()) == b"0.25\n0.75\n"
    assert (
        encode_batch_lines(SOFTPROB, OutputSelection())
        == ("\n".join(map(str, SOFTPROB.tolist())) + "\n").encode()
    )


def test_encoders_for_the_default_answer_and_batch() -> None:
    scores = encoders_for(OutputSelection(), batch=False)
    assert scores == {**ENCODERS, CSV: encode_csv_scores}  # the hot path, chosen at start-up
    assert scores[CSV](SCORES, OutputSelection()) == ENCODERS[CSV](SCORES, OutputSelection())
    assert encoders_for(OutputSelection(), batch=False, num_outputs=3) == dict(ENCODERS)
    batch = encoders_for(OutputSelection(), batch=True)
    assert set(batch) == set(ENCODERS)
    assert set(batch.values()) == {encode_batch_lines}


def test_encoders_for_selected_keys_leave_out_npy_and_terminate_batch_csv() -> None:
    online = encoders_for(LABELS, batch=False)
    assert NPY not in online and CSV in online and JSON in online
    batch = encoders_for(LABELS, batch=True)
    assert batch[CSV](SCORES, LABELS) == online[CSV](SCORES, LABELS) + b"\n"
    assert batch[JSON] is online[JSON]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, CSV),
        ("", CSV),
        ("*/*", CSV),
        ("text/csv", CSV),
        ("application/json", JSON),
        ("Application/JSON; charset=utf-8", JSON),
        ("application/jsonlines", JSONLINES),
        ("application/json;q=0.5, text/csv;q=0.9", CSV),
        ("text/csv;q=0.1, application/json", JSON),
        ("image/png, application/json;q=0.2", JSON),
        ("application/*", JSON),
        ("text/*", CSV),
        ("text/html, */*;q=0.1", CSV),
        ("application/json;q=0, text/csv", CSV),
        ("application/json;q=bad, text/csv;q=0.1", CSV),
    ],
)
def test_negotiate_accept(header: str | None, expected: str) -> None:
    assert negotiate_accept(header, default=CSV) == expected


@pytest.mark.parametrize(
    "header", ["image/png", "application/xml", "text/csv;q=0", "application/json;q=2", ",,"]
)
def test_negotiate_accept_refuses(header: str) -> None:
    with pytest.raises(NotAcceptableError):
        negotiate_accept(header, default=CSV)


def test_wildcard_prefers_the_default() -> None:
    assert negotiate_accept("*/*", default=JSON) == JSON
    assert negotiate_accept("application/*", default=JSONLINES) == JSONLINES


def test_parse_media_type_ignores_parameters_and_case() -> None:
    assert parse_media_type(" Text/CSV ; charset=utf-8") == CSV


@pytest.mark.parametrize(
    "body",
    [
        b"[[" + b"[" * 300 + b"]" * 300 + b", 1, 2]]",  # deeper than orjson can serialize
        b'[["\xc3\xa9' + "é".encode() * 30 + b'", 1, 2]]',  # multi-byte text in the message
        b'[[{"\\ud86f\\ude00": 1}, 1, 2]]',
    ],
)
def test_json_error_messages_never_fail(body: bytes) -> None:
    with pytest.raises(InferenceError) as caught:
        decode_json(body, num_features=3, max_rows=10)
    assert caught.value.code == "malformed_payload"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"1,2,3", [1.0, 2.0, 3.0]),
        (b" 1,-2.5e3 ,3\r", [1.0, -2500.0, 3.0]),
        (b"1,,3", None),
        (b"1,nan,3", None),
        (b"nan,1,3", None),
        (b"1,inf,3", None),
        (b"1,3e38,3e38", [1.0, 3e38, 3e38]),
        (b"1,1e39,3", None),
        (b"1,2,3\n", None),
        (b"1,2", None),
        (b"1,x,3", None),
        (b"1_0,2,3", None),
    ],
)
def test_parse_csv_row_takes_only_complete_finite_rows(
    body: bytes, expected: list[float] | None
) -> None:
    assert parse_csv_row(body, num_features=3) == expected


@pytest.mark.parametrize(
    ("header", "decoder"),
    [
        (None, decode_libsvm),  # no Content-Type at all: LIBSVM, as the built-in container reads it
        ("text/libsvm", decode_libsvm),
        ("Text/X-LIBSVM; charset=utf-8", decode_libsvm),
        ("libsvm", decode_libsvm),
        ("application/x-recordio-protobuf", decode_recordio),
        (" recordio-protobuf ", decode_recordio),
        ("csv", decode_csv),
        ("text/csv; label_size=1", decode_csv),
        ('text/csv;charset=utf-8;LABEL_SIZE="1"', decode_csv),
        ("application/json", decode_json),
        ("application/x-npy", decode_npy),
    ],
)
def test_resolve_content_type(header: str | None, decoder: object) -> None:
    assert resolve_content_type(header) is decoder


@pytest.mark.parametrize(
    "header",
    [
        "",
        " ",
        "text/plain",
        "parquet",
        "application/x-parquet",
        "text/csv; label_size=2",
        "csv;label_size=0",
    ],
)
def test_resolve_content_type_refuses(header: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        resolve_content_type(header)


def test_new_formats_are_registered() -> None:
    assert DECODERS["text/libsvm"] is DECODERS["text/x-libsvm"] is decode_libsvm
    assert DECODERS["application/x-recordio-protobuf"] is decode_recordio
    assert negotiate_accept("application/x-recordio-protobuf", default=CSV) in ENCODERS
    assert negotiate_accept("application/*", default=CSV) == JSON


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(width=32), min_size=0, max_size=40).map(
        lambda values: np.array(values, dtype=np.float32)
    )
)
def test_default_json_encoders_write_the_records_bytes(scores: np.ndarray) -> None:
    """The default-key JSON encoders skip the per-row records; their bytes are the records'."""
    records = OutputSelection().records(scores)
    option = orjson.OPT_SERIALIZE_NUMPY
    assert ENCODERS[JSON](scores, OutputSelection()) == orjson.dumps(
        {"predictions": records}, option=option
    )
    assert ENCODERS[JSONLINES](scores, OutputSelection()) == b"".join(
        orjson.dumps(record, option=option) + b"\n" for record in records
    )


def test_negotiate_accept_offers_only_the_available_types() -> None:
    available = encoders_for(LABELS, batch=False)
    with pytest.raises(NotAcceptableError):
        negotiate_accept(NPY, default=CSV, available=available)
    assert negotiate_accept(f"{NPY}, {JSON};q=0.5", default=CSV, available=available) == JSON
    assert negotiate_accept(NPY, default=CSV) == NPY
