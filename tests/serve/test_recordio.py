"""RecordIO-protobuf: the schema, the framing, requests as SageMaker's producers write them,
every refusal, and responses a SageMaker client reads."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from dmatrix import xgboost_sees
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from serve.codecs import decode_csv
from serve.errors import (
    EmptyBodyError,
    FeatureCountMismatchError,
    InferenceError,
    InvalidValueError,
    MalformedPayloadError,
    TooManyRowsError,
)
from serve.outputs import OutputSelection
from serve.recordio import (
    MAGIC,
    ProtoSyntaxError,
    Record,
    decode_recordio,
    encode_recordio,
    frame,
    load_schema,
    parse_proto,
    split_records,
)
from tests.seed import SEED_REFERENCE

NAN = np.nan
DATA = Path(__file__).resolve().parents[1] / "data" / "recordio"

# The FileDescriptorProto that protoc compiled from SageMaker's record.proto, as the SageMaker
# Python SDK ships it (src/sagemaker/amazon/record_pb2.py, the AddSerializedFile argument).
SDK_DESCRIPTOR = bytes.fromhex(
    "0a0c7265636f72642e70726f746f120b6169616c67732e6461746122480a0d466c6f617433325465"
    "6e736f7212120a0676616c7565731801200328024202100112100a046b6579731802200328044202"
    "100112110a0573686170651803200328044202100122480a0d466c6f6174363454656e736f721212"
    "0a0676616c7565731801200328014202100112100a046b6579731802200328044202100112110a05"
    "73686170651803200328044202100122460a0b496e74333254656e736f7212120a0676616c756573"
    "1801200328054202100112100a046b6579731802200328044202100112110a057368617065180320"
    "03280442021001222c0a054279746573120d0a0576616c756518012003280c12140a0c636f6e7465"
    "6e745f7479706518022001280922d3010a0556616c756512340a0e666c6f617433325f74656e736f"
    "7218022001280b321a2e6169616c67732e646174612e466c6f6174333254656e736f72480012340a"
    "0e666c6f617436345f74656e736f7218032001280b321a2e6169616c67732e646174612e466c6f61"
    "74363454656e736f72480012300a0c696e7433325f74656e736f7218072001280b32182e6169616c"
    "67732e646174612e496e74333254656e736f72480012230a05627974657318092001280b32122e61"
    "69616c67732e646174612e4279746573480042070a0576616c756522a9020a065265636f72641233"
    "0a08666561747572657318012003280b32212e6169616c67732e646174612e5265636f72642e4665"
    "617475726573456e747279122d0a056c6162656c18022003280b321e2e6169616c67732e64617461"
    "2e5265636f72642e4c6162656c456e747279120b0a0375696418032001280912100a086d65746164"
    "61746118042001280912150a0d636f6e66696775726174696f6e1805200128091a430a0d46656174"
    "75726573456e747279120b0a036b657918012001280912210a0576616c756518022001280b32122e"
    "6169616c67732e646174612e56616c75653a0238011a400a0a4c6162656c456e747279120b0a036b"
    "657918012001280912210a0576616c756518022001280b32122e6169616c67732e646174612e5661"
    "6c75653a02380142300a20636f6d2e616d617a6f6e6177732e6169616c676f726974686d732e7072"
    "6f746f420c5265636f726450726f746f73"
)


def test_the_schema_is_what_protoc_compiled_for_the_sagemaker_sdk() -> None:
    assert load_schema().SerializeToString() == SDK_DESCRIPTOR


@pytest.mark.parametrize(
    "text",
    [
        'syntax = "proto3"; message M { optional int32 a = 1; }',
        "message M { required int32 a = 1; }",
        "message M { optional Unknown a = 1; }",
        "message M { repeated float a = 1 [deprecated = true]; }",
        "enum E { A = 0; }",
        "message M { optional int32 a = 1 }",
    ],
)
def test_the_proto_reader_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(ProtoSyntaxError):
        parse_proto(text, name="x.proto")


# --- framing: test vectors written from the format's definition ---------------------------------


def header(length: int, kind: int = 0) -> bytes:
    return struct.pack("<II", MAGIC, kind << 29 | length)


def test_frames_are_magic_length_payload_and_zero_padding() -> None:
    assert header(3) == bytes.fromhex("0a23d7ce03000000")
    body = frame([b"abc", b"abcd", b""])
    assert body == (
        bytes.fromhex("0a23d7ce03000000") + b"abc\x00"
        + bytes.fromhex("0a23d7ce04000000") + b"abcd"
        + bytes.fromhex("0a23d7ce00000000")
    )  # fmt: skip
    assert split_records(body, max_records=10) == [b"abc", b"abcd", b""]


def test_a_split_record_is_joined_from_its_begin_middle_and_end_frames() -> None:
    body = (
        header(1, kind=1) + b"a\x00\x00\x00"
        + header(4, kind=2) + b"bcde"
        + header(2, kind=3) + b"fg\x00\x00"
        + header(1) + b"h\x00\x00\x00"
    )  # fmt: skip
    assert split_records(body, max_records=10) == [b"abcdefg", b"h"]


BAD_FRAMES = [
    (b"", EmptyBodyError),
    (header(3) + b"abc", MalformedPayloadError),  # no padding after the last payload
    (header(4) + b"abcd" + b"\x0a\x23\xd7", MalformedPayloadError),  # 3 stray bytes
    (struct.pack("<II", 0xCED7230B, 0), MalformedPayloadError),
    (header(8) + b"abcd", MalformedPayloadError),
    (header((1 << 29) - 1) + b"abcd", MalformedPayloadError),
    (header(0, kind=4), MalformedPayloadError),
    (header(0, kind=7), MalformedPayloadError),
    (header(0, kind=2), MalformedPayloadError),  # a middle without a begin
    (header(0, kind=3), MalformedPayloadError),  # an end without a begin
    (header(0, kind=1) + header(0, kind=1), MalformedPayloadError),
    (header(0, kind=1) + header(0), MalformedPayloadError),
    (header(0, kind=1), MalformedPayloadError),  # a begin and then the body ends
    (frame([b""] * 4), TooManyRowsError),
]


@pytest.mark.parametrize(("body", "error"), BAD_FRAMES)
def test_refuses_frames(body: bytes, error: type[InferenceError]) -> None:
    with pytest.raises(error):
        split_records(body, max_records=3)


# --- requests, written the way the SageMaker SDK's RecordSerializer writes them -----------------


def dense_body(matrix: np.ndarray, kind: str) -> bytes:
    """write_numpy_to_dense_tensor: one Record per row, the row as features["values"]."""
    payloads = []
    for row in matrix:
        record = Record()
        getattr(record.features["values"], kind).values.extend(row.tolist())
        payloads.append(record.SerializeToString())
    return frame(payloads)


def sparse_body(matrix: scipy.sparse.csr_matrix, kind: str = "float32_tensor") -> bytes:
    """write_spmatrix_to_sparse_tensor: per row its stored values, their columns as keys, and
    the column count as the shape."""
    payloads = []
    for index in range(matrix.shape[0]):
        row = matrix.getrow(index)
        record = Record()
        tensor = getattr(record.features["values"], kind)
        tensor.values.extend(row.data.tolist())
        tensor.keys.extend(row.indices.astype(np.uint64).tolist())
        tensor.shape.append(matrix.shape[1])
        payloads.append(record.SerializeToString())
    return frame(payloads)


finite32 = st.floats(width=32, allow_infinity=False, allow_nan=True)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=finite32)
)
def test_dense_float32_rows_are_read_as_written(matrix: np.ndarray) -> None:
    got = decode_recordio(
        dense_body(matrix, "float32_tensor"), num_features=matrix.shape[1], max_rows=10
    )
    np.testing.assert_array_equal(got, matrix)
    assert got.dtype == np.float32 and got.flags.c_contiguous


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, (3, 5), elements=st.floats(-3e38, 3e38)),
    hnp.arrays(np.int64, (3, 5), elements=st.integers(-(2**31), 2**31 - 1)),
)
def test_float64_and_int32_rows_become_float32_as_xgboost_makes_them(
    floats: np.ndarray, integers: np.ndarray
) -> None:
    got = decode_recordio(dense_body(floats, "float64_tensor"), num_features=5, max_rows=10)
    np.testing.assert_array_equal(got, xgboost_sees(floats, num_features=5))
    got = decode_recordio(dense_body(integers, "int32_tensor"), num_features=5, max_rows=10)
    np.testing.assert_array_equal(got, xgboost_sees(integers.astype(np.int32), num_features=5))


@st.composite
def sparse_matrices(draw: st.DrawFn) -> scipy.sparse.csr_matrix:
    rows, columns = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    dense = draw(hnp.arrays(np.float32, (rows, columns), elements=st.floats(-1e6, 1e6, width=32)))
    dense[draw(hnp.arrays(np.bool_, (rows, columns)))] = 0.0
    return scipy.sparse.csr_matrix(dense)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_matrices())
def test_sparse_rows_read_as_the_dmatrix_the_container_builds_from_them(
    matrix: scipy.sparse.csr_matrix,
) -> None:
    columns = matrix.shape[1]
    got = decode_recordio(sparse_body(matrix), num_features=columns, max_rows=10)
    np.testing.assert_array_equal(got, xgboost_sees(matrix, num_features=columns))


@pytest.mark.parametrize("path", sorted(DATA.glob("*.pb*")), ids=lambda path: path.name)
def test_reads_what_sagemakers_producers_wrote(path: Path) -> None:
    """Each file's rows, rebuilt with protobuf and scipy as the container's mlio reader sees
    them (sparse when there are keys, or a shape and no values), through xgboost.DMatrix."""
    payloads = split_records(path.read_bytes(), max_records=100)
    tensors = []
    for payload in payloads:
        value = Record.FromString(payload).features["values"]
        tensors.append(getattr(value, value.WhichOneof("value")))
    sparse = any(tensor.keys or (tensor.shape and not tensor.values) for tensor in tensors)
    if sparse:
        width = tensors[0].shape[0]
        rows = [
            scipy.sparse.csr_matrix(
                (list(t.values), list(t.keys), [0, len(t.keys)]), shape=(1, width)
            )
            for t in tensors
        ]
        source: Any = scipy.sparse.vstack(rows).tocsr()
    else:
        source = np.array([list(t.values) for t in tensors])
        width = source.shape[1]
    got = decode_recordio(path.read_bytes(), num_features=width, max_rows=100)
    np.testing.assert_array_equal(got, xgboost_sees(source, num_features=width))
    if path.name == "diagonal.pbr":
        np.testing.assert_array_equal(got, np.where(np.eye(3), 1.0, NAN))


def test_a_row_one_column_short_is_refused_as_in_every_format() -> None:
    with pytest.raises(FeatureCountMismatchError, match="2 columns; the model expects 3"):
        decode_recordio(
            dense_body(np.array([[1.0, 2.0]]), "float64_tensor"), num_features=3, max_rows=1
        )


def test_labels_uid_and_other_features_are_ignored() -> None:
    record = Record(uid="row-1", metadata="{}", configuration="{}")
    record.features["values"].float32_tensor.values.extend([1, 2])
    record.features["other"].float32_tensor.values.extend([9, 9, 9])
    record.label["values"].float32_tensor.values.append(1)
    got = decode_recordio(frame([record.SerializeToString()]), num_features=2, max_rows=1)
    np.testing.assert_array_equal(got, np.array([[1, 2]], dtype=np.float32))


def record_body(build: Any) -> bytes:
    record = Record()
    build(record)
    return frame([record.SerializeToString()])


def values(record: Any) -> Any:
    return record.features["values"]


BAD_RECORDS = [
    (frame([b"\xff\xff\xff"]), MalformedPayloadError),
    (
        record_body(lambda r: r.features["x"].float32_tensor.values.extend([1, 2, 3])),
        MalformedPayloadError,
    ),
    (record_body(lambda r: values(r).bytes.value.append(b"123")), MalformedPayloadError),
    (record_body(lambda r: values(r).SetInParent()), MalformedPayloadError),
    (record_body(lambda r: values(r).float32_tensor.shape.extend([1, 3])), MalformedPayloadError),
    (record_body(lambda r: values(r).float32_tensor.keys.append(1)), MalformedPayloadError),
    (
        record_body(
            lambda r: (
                values(r).float32_tensor.keys.extend([0, 1]),
                values(r).float32_tensor.values.append(1),
                values(r).float32_tensor.shape.append(3),
            )
        ),
        MalformedPayloadError,
    ),
    (
        record_body(
            lambda r: (
                values(r).float32_tensor.keys.append(3),
                values(r).float32_tensor.values.append(1),
                values(r).float32_tensor.shape.append(3),
            )
        ),
        MalformedPayloadError,
    ),
    (
        record_body(
            lambda r: (
                values(r).float32_tensor.keys.extend([1, 1]),
                values(r).float32_tensor.values.extend([1, 2]),
                values(r).float32_tensor.shape.append(3),
            )
        ),
        MalformedPayloadError,
    ),
    (
        record_body(
            lambda r: (
                values(r).float32_tensor.values.extend([1, 2, 3]),
                values(r).float32_tensor.shape.append(2),
            )
        ),
        MalformedPayloadError,
    ),
    (record_body(lambda r: values(r).float32_tensor.values.append(1)), FeatureCountMismatchError),
    (
        record_body(lambda r: values(r).float32_tensor.values.extend([1, 2, 3, 4])),
        FeatureCountMismatchError,
    ),
    (record_body(lambda r: values(r).float32_tensor.shape.append(4)), FeatureCountMismatchError),
    (
        record_body(lambda r: values(r).float32_tensor.shape.append(2**64 - 1)),
        FeatureCountMismatchError,
    ),
    (
        record_body(lambda r: values(r).float32_tensor.values.extend([1, float("inf"), 3])),
        InvalidValueError,
    ),
    (
        record_body(lambda r: values(r).float64_tensor.values.extend([1, 2, -1e39])),
        InvalidValueError,
    ),
]


@pytest.mark.parametrize(("body", "error"), BAD_RECORDS)
def test_refuses_records(body: bytes, error: type[InferenceError]) -> None:
    with pytest.raises(error) as raised:
        decode_recordio(body, num_features=3, max_rows=5)
    assert raised.value.message.startswith("Record 1"), raised.value.message


def test_a_refusal_names_the_record() -> None:
    good = record_body(lambda r: values(r).float32_tensor.values.extend([1, 2, 3]))
    bad = record_body(lambda r: values(r).float32_tensor.values.extend([1, NAN, float("inf")]))
    with pytest.raises(InvalidValueError, match=r"^Record 3, column 3: "):
        decode_recordio(good + good + bad, num_features=3, max_rows=5)


def test_nan_is_a_missing_value() -> None:
    body = record_body(lambda r: values(r).float32_tensor.values.extend([1, NAN, 3]))
    np.testing.assert_array_equal(
        decode_recordio(body, num_features=3, max_rows=1), np.array([[1, NAN, 3]], dtype=np.float32)
    )


# --- responses ------------------------------------------------------------------------------------


def labels_of(body: bytes) -> list[dict[str, list[float]]]:
    rows = []
    for payload in split_records(body, max_records=100):
        record = Record.FromString(payload)
        assert not record.features
        rows.append({key: list(value.float32_tensor.values) for key, value in record.label.items()})
    return rows


def test_answers_one_record_per_row_with_the_score_as_the_label() -> None:
    scores = np.array([0.25, 0.00084757, 1.0], dtype=np.float32)
    body = encode_recordio(scores, OutputSelection())
    assert labels_of(body) == [{"score": [float(score)]} for score in scores]
    record = Record()
    record.label["score"].float32_tensor.values.append(0.25)
    assert split_records(body, max_records=3)[0] == record.SerializeToString()


def test_a_softprob_score_is_its_k_probabilities() -> None:
    scores = np.array([[0.25, 0.5, 0.25], [0.1, 0.2, 0.7]], dtype=np.float32)
    body = encode_recordio(scores, OutputSelection())
    assert labels_of(body) == [{"score": [float(p) for p in row]} for row in scores]


def test_answers_the_selected_keys_as_float32_tensors() -> None:
    scores = np.array([0.75, 0.25], dtype=np.float32)
    selection = OutputSelection.for_model(
        keys=("predicted_label", "probabilities", "labels"), objective="binary:logistic"
    )
    expected = [
        {
            key: [float(v) for v in (value if isinstance(value, list) else [value])]
            for key, value in row.items()
        }
        for row in selection.records(scores)
    ]
    body = encode_recordio(scores, selection)
    assert labels_of(body) == expected
    # each frame holds its own record once (the built-in's frame i holds records 1 to i)
    for payload in split_records(body, max_records=2):
        assert Record.FromString(payload).ByteSize() == len(payload)
    assert expected[0] == {
        "predicted_label": [1.0],
        "probabilities": [0.25, 0.75],
        "labels": [0.0, 1.0],
    }


def test_the_seed_reference_rows_as_recordio_reach_the_model_as_their_csv_does() -> None:
    """The 5,000 reference rows, written dense (float64, NaN for a missing value) and sparse
    (missing values left out), decode to exactly the matrix their CSV decodes to."""
    lines = SEED_REFERENCE.read_text().splitlines()[1:]
    csv = "\n".join(line.rsplit(",", 1)[0] for line in lines).encode()
    expected = decode_csv(csv, num_features=7, max_rows=len(lines))
    assert np.isnan(expected).any()
    dense = decode_recordio(
        dense_body(expected.astype(np.float64), "float64_tensor"), num_features=7, max_rows=5000
    )
    np.testing.assert_array_equal(dense, expected)
    present = ~np.isnan(expected)
    stored = scipy.sparse.csr_matrix((expected[present], np.nonzero(present)), shape=expected.shape)
    sparse = decode_recordio(sparse_body(stored), num_features=7, max_rows=5000)
    np.testing.assert_array_equal(sparse, expected)
