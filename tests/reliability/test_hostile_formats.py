"""Hostile LIBSVM and RecordIO-protobuf bodies: a clear 4xx, never a 5xx, never memory taken on
a length's word.

The decoders are fuzzed directly (thousands of bodies, cheap) and through the real app with the
real compiled seed model (fewer, end to end, in-process).
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve.app import create_app
from serve.errors import InferenceError
from serve.libsvm import decode_libsvm
from serve.predictor import load_model
from serve.recordio import MAGIC, Record, decode_recordio, frame, split_records
from serve.settings import Settings

from .asgi import call

NUM_FEATURES = 7
LIBSVM = b"text/libsvm"
RECORDIO = b"application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def app(artifact_dir: Path) -> Any:
    predictor = load_model(artifact_dir).predictor
    return create_app(Settings(model_dir=artifact_dir, max_rows=50), predictor)


def header(length: int, kind: int = 0, magic: int = MAGIC) -> bytes:
    return struct.pack("<II", magic, kind << 29 | length)


def record(
    values: list[float], *, keys: list[int] | None = None, shape: int | None = None
) -> bytes:
    message = Record()
    tensor = message.features["values"].float32_tensor
    tensor.values.extend(values)
    if keys is not None:
        tensor.keys.extend(keys)
    if shape is not None:
        tensor.shape.append(shape)
    return bytes(message.SerializeToString())


ROW = [2.0, 0.0, 0.0, 7.0, 3.0, 20.0, 2.0]
GOOD_RECORDIO = frame([record(ROW), record([2, 7], keys=[0, 3], shape=7)])


# --- bodies -----------------------------------------------------------------------------------


@st.composite
def mutated_recordio(draw: st.DrawFn) -> bytes:
    """A well-formed body with a few bytes flipped, cut, inserted or a length word replaced."""
    rows = draw(
        st.lists(st.lists(st.floats(width=32), min_size=6, max_size=8), min_size=1, max_size=4)
    )
    body = bytearray(frame([record(row) for row in rows]))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        position = draw(st.integers(0, max(len(body) - 1, 0)))
        if how == "flip" and body:
            body[position] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del body[position:]
        elif how == "insert":
            body[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif len(body) >= 8:
            body[4:8] = struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
    return bytes(body)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# Protobuf-shaped garbage: tags with any field number and wire type, lengths that lie.
wire_fields = st.lists(
    st.tuples(
        st.integers(0, 20), st.integers(0, 7), st.integers(0, 2**64 - 1), st.binary(max_size=12)
    ),
    max_size=8,
).map(
    lambda fields: b"".join(
        varint(number << 3 | wire) + varint(value) + (tail if wire == 2 else b"")
        for number, wire, value, tail in fields
    )
)
nested_garbage = st.recursive(
    wire_fields,
    lambda inner: (
        inner.map(lambda payload: b"\x0a" + varint(len(payload)) + payload)
        | st.tuples(inner, inner).map(b"".join)
    ),
    max_leaves=12,
)
recordio_bodies = st.one_of(
    st.binary(max_size=200),
    mutated_recordio(),
    st.lists(nested_garbage, min_size=1, max_size=4).map(frame),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=64)).map(
        lambda t: struct.pack("<II", *t[:2]) + t[2]
    ),
)
libsvm_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet="0123456789:.-+eEnaifqd_x \t\r\n#", max_size=120).map(str.encode),
    st.lists(
        st.tuples(st.integers(-3, 12), st.floats(width=32) | st.text(max_size=4)), max_size=10
    ).map(lambda pairs: ("1 " + " ".join(f"{i}:{v}" for i, v in pairs)).encode("utf-8", "replace")),
)


# --- the decoders, directly ---------------------------------------------------------------------


def assert_matrix_or_client_error(decode: Any, body: bytes) -> None:
    try:
        matrix = decode(body, num_features=NUM_FEATURES, max_rows=50)
    except InferenceError as error:
        assert 400 <= error.status_code < 500 and error.message
        return
    assert matrix.dtype == np.float32 and matrix.shape[1] == NUM_FEATURES
    assert 1 <= matrix.shape[0] <= 50 and not np.isinf(matrix).any()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordio_bodies)
def test_recordio_decoder_answers_a_matrix_or_a_client_error(body: bytes) -> None:
    assert_matrix_or_client_error(decode_recordio, body)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(libsvm_bodies)
def test_libsvm_decoder_answers_a_matrix_or_a_client_error(body: bytes) -> None:
    assert_matrix_or_client_error(decode_libsvm, body)


# --- the real app -------------------------------------------------------------------------------


def assert_answered(response: Any, *, rows: int | None = None) -> None:
    assert response.status < 500, (response.status, response.body[:300])
    if response.status >= 400:
        document = orjson.loads(response.body)
        assert set(document) == {"error", "message"} and document["message"], document
    elif rows is not None:
        assert len(response.body.splitlines()) == rows


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    content_type=st.sampled_from(
        [LIBSVM, b"text/x-libsvm", RECORDIO, b"libsvm", b"recordio-protobuf"]
    ),
    body=libsvm_bodies | recordio_bodies,
)
def test_random_bodies_in_the_new_formats_never_get_a_5xx(
    app: Any, content_type: bytes, body: bytes
) -> None:
    assert_answered(call(app, headers=[(b"content-type", content_type)], chunks=[body]))


HOSTILE: dict[str, tuple[bytes, bytes, int, str]] = {
    # name: (content type, body, status, error code)
    "recordio-bad-magic": (
        RECORDIO,
        header(4, magic=0x0A23D7CE) + b"abcd",
        400,
        "malformed_payload",
    ),
    "recordio-truncated-header": (
        RECORDIO,
        GOOD_RECORDIO[:-3] + b"\x0a\x23\xd7",
        400,
        "malformed_payload",
    ),
    "recordio-truncated-payload": (RECORDIO, GOOD_RECORDIO[:-5], 400, "malformed_payload"),
    "recordio-length-2^29-1": (
        RECORDIO,
        header((1 << 29) - 1) + b"\x00" * 64,
        400,
        "malformed_payload",
    ),
    "recordio-length-word-all-ones": (
        RECORDIO,
        struct.pack("<II", MAGIC, 2**32 - 1) + b"\x00" * 8,
        400,
        "malformed_payload",
    ),
    "recordio-record-larger-than-body": (
        RECORDIO,
        header(1000) + record(ROW),
        400,
        "malformed_payload",
    ),
    "recordio-split-never-ends": (RECORDIO, header(4, kind=1) + b"abcd", 400, "malformed_payload"),
    "recordio-varint-11-bytes": (
        RECORDIO,
        frame([b"\x08" + b"\xff" * 10 + b"\x01"]),
        400,
        "malformed_payload",
    ),
    "recordio-submessage-length-lies": (
        RECORDIO,
        frame([b"\x0a\xff\xff\xff\xff\x07" + b"\x00" * 8]),
        400,
        "malformed_payload",
    ),
    "recordio-packed-floats-length-lies": (
        RECORDIO,
        frame([b"\x0a\x13\x0a\x06values\x12\x09\x12\x07\x0a\xff\xff\xff\xff\x0f\x00"]),
        400,
        "malformed_payload",
    ),
    "recordio-nested-groups": (
        RECORDIO,
        frame([b"\x0b" * 5000 + b"\x0c" * 5000]),
        400,
        "malformed_payload",
    ),
    "recordio-no-values-feature": (
        RECORDIO,
        frame([Record().SerializeToString()]),
        400,
        "malformed_payload",
    ),
    "recordio-too-many-records": (RECORDIO, frame([record(ROW)] * 51), 413, "too_many_rows"),
    "recordio-absurd-shape": (
        RECORDIO,
        frame([record([1], keys=[0], shape=2**60)]),
        400,
        "feature_count_mismatch",
    ),
    "recordio-absurd-key": (
        RECORDIO,
        frame([record([1], keys=[2**63], shape=7)]),
        400,
        "malformed_payload",
    ),
    "recordio-duplicate-key": (
        RECORDIO,
        frame([record([1, 2], keys=[3, 3], shape=7)]),
        400,
        "malformed_payload",
    ),
    "recordio-inf": (RECORDIO, frame([record([*ROW[:6], float("inf")])]), 400, "invalid_value"),
    "recordio-nan-is-missing": (RECORDIO, frame([record([*ROW[:6], float("nan")])]), 200, ""),
    "recordio-one-short": (RECORDIO, frame([record(ROW[:6])]), 400, "feature_count_mismatch"),
    "recordio-one-over": (RECORDIO, frame([record([*ROW, 1.0])]), 400, "feature_count_mismatch"),
    "libsvm-duplicate-index": (LIBSVM, b"1 0:2 3:7 3:7", 400, "malformed_payload"),
    "libsvm-negative-index": (LIBSVM, b"1 -1:2", 400, "malformed_payload"),
    "libsvm-absurd-index": (LIBSVM, b"1 99999999999999999999999:2", 400, "feature_count_mismatch"),
    "libsvm-index-4300-digits": (
        LIBSVM,
        b"1 " + b"7" * 4300 + b":2",
        400,
        "feature_count_mismatch",
    ),
    "libsvm-index-beyond": (LIBSVM, b"1 0:2 7:1", 400, "feature_count_mismatch"),
    "libsvm-inf": (LIBSVM, b"1 0:inf", 400, "invalid_value"),
    "libsvm-1e400": (LIBSVM, b"1 0:1e400", 400, "invalid_value"),
    "libsvm-nan-is-missing": (LIBSVM, b"1 0:nan 3:7", 200, ""),
    "libsvm-junk-value": (LIBSVM, b"1 0:abc", 400, "malformed_payload"),
    "libsvm-nul-bytes": (LIBSVM, b"\x00" * 1000, 400, "malformed_payload"),
    "libsvm-only-labels": (LIBSVM, b"1\n0\n1", 400, "malformed_payload"),
    "libsvm-only-newlines": (LIBSVM, b"\n" * 1000, 400, "empty_body"),
    "libsvm-too-many-rows": (LIBSVM, b"1 0:1\n" * 51, 413, "too_many_rows"),
    "libsvm-utf16": (LIBSVM, "1 0:2 3:7".encode("utf-16"), 400, "malformed_payload"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_body_gets_its_client_error(app: Any, name: str) -> None:
    content_type, body, status, code = HOSTILE[name]
    response = call(app, headers=[(b"content-type", content_type)], chunks=[body])
    assert response.status == status, (response.status, response.body[:300])
    assert_answered(response, rows=1)
    if code:
        assert orjson.loads(response.body)["error"] == code


def test_the_new_formats_score_a_row_as_csv_does(app: Any) -> None:
    csv = call(app, headers=[(b"content-type", b"text/csv")], chunks=[b"2,0,0.0,7.0,3.0,20.0,2"])
    libsvm = call(
        app, headers=[(b"content-type", LIBSVM)], chunks=[b"0 0:2 1:0 2:0 3:7 4:3 5:20 6:2"]
    )
    recordio = call(app, headers=[(b"content-type", RECORDIO)], chunks=[frame([record(ROW)])])
    assert csv.status == libsvm.status == recordio.status == 200
    assert csv.body == libsvm.body == recordio.body
    answered = call(
        app,
        headers=[(b"content-type", b"text/csv"), (b"accept", RECORDIO)],
        chunks=[b"2,0,0.0,7.0,3.0,20.0,2"],
    )
    assert answered.status == 200 and dict(answered.headers)[b"content-type"] == RECORDIO
    (payload,) = split_records(answered.body, max_records=1)
    label = Record.FromString(payload).label["score"].float32_tensor.values
    assert abs(label[0] - float(csv.body)) < 1e-6


@pytest.mark.parametrize(
    "body",
    [
        header((1 << 29) - 1) + b"\x00" * 64,
        struct.pack("<II", MAGIC, 2**32 - 1),
        frame([b"\x0a\xff\xff\xff\xff\x07"]),
        header(4, kind=1) + b"abcd" + header((1 << 29) - 1, kind=3),
    ],
)
def test_a_declared_length_takes_no_memory_before_it_is_checked(body: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InferenceError):
            decode_recordio(body, num_features=NUM_FEATURES, max_rows=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak
