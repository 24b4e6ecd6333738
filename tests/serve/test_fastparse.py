"""The C bulk parsers agree with the Python decoders on every body: the same float32 matrix bit
for bit (NaN at the same places), or the same refusal (status, code and message).

The reference is `serve.codecs`' decoder with the fast path switched off; the bodies are
generated around the grammar's edges (numbers of every length and exponent, empty fields,
whitespace, CR, junk, wrong counts, unusual JSON shapes) and then mutated byte by byte.
"""

from __future__ import annotations

import io
import struct
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from serve import fastparse
from serve.codecs import decode_csv, decode_json, decode_jsonlines, decode_npy
from serve.errors import InferenceError
from serve.libsvm import decode_libsvm
from serve.recordio import Record, decode_recordio
from serve.recordio import frame as recordio_frame

pytestmark = pytest.mark.skipif(fastparse.PARSER is None, reason="no C compiler on this machine")

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Decoder = Callable[..., Any]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@contextmanager
def reference_only() -> Iterator[None]:
    """The decoders as they are without the fast path."""
    with (
        mock.patch.object(fastparse, "PARSER", None),
        mock.patch.object(fastparse, "parse_npy", lambda body, **_: None),
    ):
        yield


def outcome(decoder: Decoder, body: bytes, num_features: int, max_rows: int) -> Any:
    try:
        with warnings.catch_warnings():  # numpy warns casting a signalling NaN; not our subject
            warnings.simplefilter("ignore", RuntimeWarning)
            return decoder(body, num_features=num_features, max_rows=max_rows)
    except InferenceError as exc:
        return (exc.status_code, exc.code, exc.message)


def assert_agree(decoder: Decoder, body: bytes, num_features: int, max_rows: int = 50) -> Any:
    fast = outcome(decoder, body, num_features, max_rows)
    with reference_only():
        reference = outcome(decoder, body, num_features, max_rows)
    if isinstance(reference, tuple) or isinstance(fast, tuple):
        assert fast == reference, body
        return fast
    assert fast.dtype == np.float32 and fast.flags.c_contiguous, body
    assert fast.shape == reference.shape, body
    missing = np.isnan(reference)
    assert np.array_equal(np.isnan(fast), missing), body
    bits, reference_bits = fast.view(np.uint32), reference.view(np.uint32)
    assert np.array_equal(bits[~missing], reference_bits[~missing]), body
    return fast


# --- generated numbers ------------------------------------------------------------------------

DIGITS = "0123456789"
decimal = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "-", "+"]),
    st.text(DIGITS, max_size=24),
    st.one_of(st.just(""), st.text(DIGITS, max_size=24).map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, sign, d: e + sign + d,
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.text(DIGITS, max_size=4),
        ),
    ),
)
EDGES = [
    "3.4028234663852886e38",  # float32 max: accepted
    "3.4028234663852889e38",  # just above it as a double: refused
    "-3.4028235e38",
    "1.401298464324817e-45",
    "7e-46",
    "1e-400",
    "-1e-400",
    "1e400",
    "0e99999",
    "9007199254740993",
    "18446744073709551616",
    "0.1",
    "-0",
    "-0.0",
    "1.",
    ".5",
    "00012",
    "1e22",
    "1e23",
    "123456789012345678901234567890",
    "0." + "0" * 30 + "1",
]
number = st.one_of(
    decimal,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda x: repr(float(x))),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(EDGES),
)
csv_field = st.one_of(
    number,
    number,
    st.just(""),
    st.sampled_from(
        [" ", "\t", "nan", "NaN", "inf", "-inf", "1_0", "0x1", "abc", " 1", "1 ", "1e"]
    ),
)


def fits_float32(text: str) -> bool:
    try:
        return abs(float(text)) <= FLOAT32_MAX and "_" not in text
    except ValueError:
        return False


def mutate(body: bytes, data: st.DataObject, alphabet: bytes) -> bytes:
    """Sometimes delete, insert or replace one byte: the error paths."""
    action = data.draw(st.sampled_from(["keep", "keep", "delete", "insert", "replace"]))
    if action == "keep" or not body:
        return body
    at = data.draw(st.integers(0, len(body) - 1))
    byte = bytes([data.draw(st.sampled_from(alphabet))])
    if action == "delete":
        return body[:at] + body[at + 1 :]
    if action == "insert":
        return body[:at] + byte + body[at:]
    return body[:at] + byte + body[at + 1 :]


# --- CSV ------------------------------------------------------------------------------------


@st.composite
def csv_bodies(draw: st.DrawFn, num_features: int) -> bytes:
    rows = draw(st.integers(1, 6))
    count = st.sampled_from([num_features] * 8 + [num_features - 1, num_features + 1])
    counts = [draw(count) for _ in range(rows)]
    lines = [",".join(draw(st.lists(csv_field, min_size=n, max_size=n))) for n in counts]
    ends = [draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])) for _ in lines]
    body = "".join(line + end for line, end in zip(lines, ends, strict=True))
    body = body[: -len(ends[-1])] + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))
    return body.encode()


@PROPERTY
@given(
    rows=st.lists(
        st.lists(st.one_of(number.filter(fits_float32), st.just("")), min_size=3, max_size=3),
        min_size=1,
        max_size=8,
    ),
    end=st.sampled_from(["\n", "\r\n"]),
    last=st.sampled_from(["", "\n", "\r\n"]),
)
def test_well_formed_csv_takes_the_fast_path(rows: list[list[str]], end: str, last: str) -> None:
    body = (end.join("1," + ",".join(row) for row in rows) + last).encode()
    assert fastparse.parse_csv(body, num_features=4, max_rows=8) is not None, body
    assert_agree(decode_csv, body, 4)


@PROPERTY
@given(st.binary(max_size=64), st.integers(1, 4))
def test_csv_agrees_on_any_bytes(body: bytes, num_features: int) -> None:
    assert_agree(decode_csv, body, num_features)


# --- JSON and JSON Lines --------------------------------------------------------------------

json_number = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)),
)
json_value = st.one_of(
    json_number,
    json_number,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.just("null"),
    st.sampled_from(
        [e for e in EDGES if not e.startswith(("+", ".", "00")) and not e.endswith(".")]
    ),
    st.sampled_from(['"1"', "true", "[1]", "{}", "01", "1.", ".5", "NaN", "Infinity", "-"]),
)
space = st.sampled_from(["", "", " ", "\n", "\t", "\r\n"])


@st.composite
def json_rows(draw: st.DrawFn, num_features: int, *, wrapped: bool) -> list[str]:
    count = st.sampled_from([num_features] * 8 + [num_features - 1, num_features + 1])
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        size = draw(count)
        values = draw(st.lists(json_value, min_size=size, max_size=size))
        row = "[" + ",".join(draw(space) + v + draw(space) for v in values) + "]"
        if wrapped and draw(st.booleans()):
            row = '{"features":' + draw(space) + row + "}"
        rows.append(row)
    return rows


@st.composite
def json_bodies(draw: st.DrawFn, num_features: int) -> bytes:
    rows = draw(json_rows(num_features, wrapped=True))
    listed = "[" + ",".join(draw(space) + row + draw(space) for row in rows) + "]"
    shape = draw(st.sampled_from(["instances", "bare", "flat", "features", "extra"]))
    if shape == "instances":
        body = '{"instances":' + draw(space) + listed + "}"
    elif shape == "bare":
        body = listed
    elif shape == "flat":
        body = rows[0] if rows and rows[0].startswith("[") else "[]"
    elif shape == "features":
        body = '{"features": ' + (rows[0] if rows and rows[0].startswith("[") else "[]") + "}"
    else:
        body = '{"instances": ' + listed + ', "extra": 1}'
    return (draw(space) + body + draw(space)).encode()


@st.composite
def jsonlines_bodies(draw: st.DrawFn, num_features: int) -> bytes:
    rows = draw(json_rows(num_features, wrapped=True))
    lines = [row if draw(st.integers(0, 9)) else draw(space) for row in rows]
    ends = [draw(st.sampled_from(["\n", "\r\n", "\n\n"])) for _ in lines]
    return "".join(line + end for line, end in zip(lines, ends, strict=True)).encode()


@dataclass(frozen=True)
class TextFormat:
    fast: Callable[..., Any]
    """The C parser the decoder tries first."""
    decoder: Decoder
    bodies: Callable[[int], st.SearchStrategy[bytes]]
    """Bodies of about `num_features` columns, around the grammar's edges."""
    alphabet: bytes
    """The bytes a mutation inserts or writes over."""


TEXT_FORMATS = {
    "csv": TextFormat(fastparse.parse_csv, decode_csv, csv_bodies, b"0123456789.,-+eE \r\n_nx"),
    "json": TextFormat(
        fastparse.parse_json, decode_json, json_bodies, b'0123456789.,-eE []{}:"nul\n'
    ),
    "jsonlines": TextFormat(
        fastparse.parse_jsonlines, decode_jsonlines, jsonlines_bodies, b'0123456789.,-e []{}"\n\x0b'
    ),
}


@pytest.mark.parametrize(
    ("name", "body", "num_features"),
    [
        ("csv", b"1,2.5,\n-0,1e-3,7\r\n", 3),
        ("json", b'{"instances": [[1, null, -0], {"features": [2.5e-3, 0.1, 7]}]}', 3),
        ("jsonlines", b'[1, null]\n\n{"features": [0.5, -2]}\r\n', 2),
    ],
)
def test_the_fast_path_takes_a_plain_body(name: str, body: bytes, num_features: int) -> None:
    text_format = TEXT_FORMATS[name]
    assert text_format.fast(body, num_features=num_features, max_rows=50) is not None
    assert_agree(text_format.decoder, body, num_features)


@pytest.mark.parametrize("name", TEXT_FORMATS)
@PROPERTY
@given(num_features=st.integers(1, 4), data=st.data())
def test_agrees(name: str, num_features: int, data: st.DataObject) -> None:
    text_format = TEXT_FORMATS[name]
    body = mutate(data.draw(text_format.bodies(num_features)), data, text_format.alphabet)
    assert_agree(text_format.decoder, body, num_features, max_rows=data.draw(st.integers(1, 8)))


@PROPERTY
@given(
    rows=st.lists(
        st.lists(
            st.one_of(json_number.filter(fits_float32), st.just("null")), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=8,
    ),
    wrapped=st.booleans(),
    gap=space,
)
def test_well_formed_json_takes_the_fast_path(
    rows: list[list[str]], wrapped: bool, gap: str
) -> None:
    lists = ["[" + f",{gap}".join(row) + "]" for row in rows]
    if wrapped:
        lists = ['{"features":' + gap + row + "}" for row in lists]
    body = ('{"instances": [' + f",{gap}".join(lists) + "]}").encode()
    lines = "\n".join(row.replace("\n", " ") for row in lists).encode()
    assert fastparse.parse_json(body, num_features=3, max_rows=8) is not None, body
    assert fastparse.parse_jsonlines(lines, num_features=3, max_rows=8) is not None, lines
    assert_agree(decode_json, body, 3)
    assert_agree(decode_jsonlines, lines, 3)


@PROPERTY
@given(st.binary(max_size=64), st.integers(1, 3))
def test_json_agrees_on_any_bytes(body: bytes, num_features: int) -> None:
    assert_agree(decode_json, body, num_features)
    assert_agree(decode_jsonlines, body, num_features)


# --- npy ------------------------------------------------------------------------------------


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@PROPERTY
@given(
    dtype=st.sampled_from(["<f4", "<f8", ">f4", ">f8", "<f2", "<i4", "<u8", "<i2"]),
    rows=st.integers(0, 6),
    columns=st.integers(1, 4),
    fortran=st.booleans(),
    flat=st.booleans(),
    data=st.data(),
)
def test_npy_agrees(
    dtype: str, rows: int, columns: int, fortran: bool, flat: bool, data: st.DataObject
) -> None:
    raw = data.draw(st.binary(min_size=rows * columns * 8, max_size=rows * columns * 8))
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("=")).astype(dtype)
    array = array[: rows * columns].reshape(rows, columns)
    if fortran:
        array = np.asfortranarray(array)
    body = npy(array[0] if flat and rows else array)
    body = data.draw(st.sampled_from([body, body[:-1], body + b"\0"]))
    assert_agree(decode_npy, body, columns, max_rows=data.draw(st.integers(1, 8)))


def test_npy_fast_path_takes_what_numpy_writes() -> None:
    array = np.array([[1.5, np.nan, -0.0], [3e38, 1e-45, 7]], dtype=np.float32)
    for body in (npy(array), npy(array.astype(np.float64)), npy(np.asfortranarray(array))):
        assert fastparse.parse_npy(body, num_features=3, max_rows=5) is not None
        assert_agree(decode_npy, body, 3)


# --- LIBSVM ---------------------------------------------------------------------------------

libsvm_space = st.sampled_from([" ", " ", "\t", "  ", " \r", "\x0b", "\x0c"])
libsvm_label = st.sampled_from(["", "", "1", "0", "-1", "2.5", "abc", "1e3", "\xe9"])
libsvm_bad_token = st.sampled_from(
    ["qid:3", "1:nan", "1:inf", "1:-inf", "1:2:3", ":5", "a:1", "-1:2", "1:", "1:1_0", "x"]
)


@st.composite
def libsvm_line(draw: st.DrawFn, num_features: int, *, well_formed: bool) -> str:
    columns = draw(st.lists(st.integers(0, num_features - 1), unique=True, max_size=num_features))
    value = number.filter(fits_float32) if well_formed else number
    tokens = [f"{column}:{draw(value)}" for column in columns]
    if not well_formed and draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, num_features + 1))
        tokens.insert(draw(st.integers(0, len(tokens))), f"{index}:{draw(number)}")
    if not well_formed and draw(st.integers(0, 3)) == 0:
        tokens.insert(draw(st.integers(0, len(tokens))), draw(libsvm_bad_token))
    label = draw(libsvm_label)
    if label:
        tokens.insert(0, label)
    return (
        draw(libsvm_space).join(tokens)
        if len(tokens) < 2
        else "".join(
            token + (draw(libsvm_space) if k + 1 < len(tokens) else "")
            for k, token in enumerate(tokens)
        )
    )


@st.composite
def libsvm_bodies(draw: st.DrawFn, num_features: int, *, well_formed: bool = False) -> bytes:
    lines = draw(
        st.lists(libsvm_line(num_features, well_formed=well_formed), min_size=1, max_size=6)
    )
    if well_formed and not any(":" in line for line in lines):
        lines.append(f"1 0:{draw(number.filter(fits_float32))}")  # a body needs some pair
    ends = [draw(st.sampled_from(["\n", "\n", "\r\n", " \n"])) for _ in lines]
    body = "".join(line + end for line, end in zip(lines, ends, strict=True))
    before, after = (
        draw(st.sampled_from(["", " ", "\n", "\t\n"])),
        draw(st.sampled_from(["", "\n", " \r\n"])),
    )
    return (before + body + after).encode()


@PROPERTY
@given(num_features=st.integers(1, 4), data=st.data())
@example(num_features=3, data=None)
def test_libsvm_agrees(num_features: int, data: st.DataObject | None) -> None:
    if data is None:
        body = b"1 0:1.5 2:-0\n\n0 1:2.5e-3\r\n-1\t2:7 0:.5\n"
        assert fastparse.parse_libsvm(body, num_features=3, max_rows=50) is not None
        assert_agree(decode_libsvm, body, 3)
        return
    body = mutate(data.draw(libsvm_bodies(num_features)), data, b"0123456789.:-+eE \t\r\nqidnx_")
    assert_agree(decode_libsvm, body, num_features, max_rows=data.draw(st.integers(1, 8)))


@PROPERTY
@given(num_features=st.integers(1, 6), data=st.data())
def test_well_formed_libsvm_takes_the_fast_path(num_features: int, data: st.DataObject) -> None:
    body = data.draw(libsvm_bodies(num_features, well_formed=True))
    assert fastparse.parse_libsvm(body, num_features=num_features, max_rows=20) is not None, body
    assert_agree(decode_libsvm, body, num_features, max_rows=20)


@PROPERTY
@given(
    st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(lambda b: b"1 0:1\n" + b)),
    st.integers(1, 4),
)
def test_libsvm_agrees_on_any_bytes(body: bytes, num_features: int) -> None:
    assert_agree(decode_libsvm, body, num_features)


def test_a_libsvm_body_over_the_row_limit_is_refused_before_parsing() -> None:
    recording = RecordingParser()
    with mock.patch.object(fastparse, "PARSER", recording):
        assert outcome(decode_libsvm, b"1 0:1\n" * 11, 2, 10)[1] == "too_many_rows"
        assert outcome(decode_libsvm, b"\n\n1 0:1\n" * 5 + b"\n\n", 2, 10)[1] == "too_many_rows"
    assert recording.calls == 0


def test_libsvm_indices_one_based_unless_zero_are_read_by_the_decoder() -> None:
    recording = RecordingParser()
    with mock.patch.object(fastparse, "PARSER", recording):
        matrix = decode_libsvm(
            b"1 1:5 2:6", num_features=2, max_rows=5, index_base="one_based_unless_zero"
        )
    assert recording.calls == 0
    assert matrix.tolist() == [[5.0, 6.0]]


# --- RecordIO-protobuf ------------------------------------------------------------------------


def varint(value: int, *, padding: int = 0) -> bytes:
    """The protobuf varint of `value` (as uint64), with `padding` redundant 0x80 bytes."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    if padding:
        out[-1] |= 0x80
        out.extend(b"\x80" * (padding - 1) + b"\x00")
    return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    """A field: its tag, and for wire type 2 the payload's length first."""
    tag = varint(number << 3 | wire)
    return tag + (varint(len(payload)) if wire == 2 else b"") + payload


TENSOR_KINDS = {"float32": (2, "<f"), "float64": (3, "<d"), "int32": (7, None)}
record_value: dict[str, st.SearchStrategy[Any]] = {
    "float32": st.floats(width=32),
    "float64": st.one_of(st.floats(), st.floats(width=32).map(float)),
    "int32": st.integers(-(2**31), 2**31 - 1),
}


@st.composite
def tensor_wire(draw: st.DrawFn, kind: str, num_features: int) -> bytes:
    """A tensor message: dense or sparse (keys increasing or not), sometimes with a wrong
    width, an unpacked or repeated field, an overlong varint or stray bytes."""
    _, fmt = TENSOR_KINDS[kind]
    width = draw(st.sampled_from([num_features] * 6 + [num_features - 1, num_features + 1, 0]))
    sparse = draw(st.booleans())
    if sparse:
        keys = draw(st.lists(st.integers(0, max(width, 1)), unique=True, max_size=width))
        if draw(st.integers(0, 3)):
            keys.sort()
    values = (
        draw(st.lists(record_value[kind], min_size=len(keys), max_size=len(keys)))
        if sparse
        else draw(st.lists(record_value[kind], min_size=width, max_size=width))
    )
    pad = st.sampled_from([0] * 8 + [1, 3])
    if fmt is None:
        packed = b"".join(varint(v, padding=draw(pad)) for v in values)
    else:
        packed = b"".join(struct.pack(fmt, v) for v in values)
    present: bool = bool(values) or draw(st.booleans())
    fields = [field(1, 2, packed)] if present else []
    if sparse:
        fields.append(field(2, 2, b"".join(varint(k, padding=draw(pad)) for k in keys)))
    if sparse or draw(st.booleans()):
        shape = draw(st.sampled_from([[width]] * 6 + [[], [width, 1], [2**64 - 1]]))
        fields.append(field(3, 2, b"".join(varint(d, padding=draw(pad)) for d in shape)))
    extra = draw(st.integers(0, 9))
    if extra == 0 and values:  # the same values again, unpacked
        fields.append(field(1, 0 if fmt is None else (5 if kind == "float32" else 1), packed[:8]))
    elif extra == 1 and fields:
        fields.append(fields[0])  # a repeated packed field: protobuf concatenates
    elif extra == 2:
        fields.append(field(9, 0, varint(draw(st.integers(0, 300)))))  # an unknown field
    order = draw(st.permutations(fields)) if draw(st.integers(0, 4)) == 0 else fields
    return b"".join(order)


@st.composite
def record_wire(draw: st.DrawFn, num_features: int) -> bytes:
    """One Record message as the SDK writes it, or something near it."""
    kind = draw(st.sampled_from(list(TENSOR_KINDS)))
    number, _ = TENSOR_KINDS[kind]
    tensor = draw(tensor_wire(kind, num_features))
    value = field(number, 2, tensor)
    shape = draw(st.integers(0, 12))
    if shape == 0:
        value = b""  # an empty Value
    elif shape == 1:
        value += field(2, 2, tensor)  # a second tensor: the last one wins
    elif shape == 2:
        value = field(9, 2, field(1, 2, b"abc"))  # bytes
    key = draw(st.sampled_from([b"values"] * 10 + [b"value", b"", b"\xff\xfe"]))
    entry = [field(1, 2, key), field(2, 2, value)]
    if draw(st.integers(0, 9)) == 0:
        entry.reverse()
    record = [field(1, 2, b"".join(entry))]
    more = draw(st.integers(0, 12))
    if more == 0:
        record.append(field(2, 2, field(1, 2, b"values") + field(2, 2, field(2, 2, b""))))
    elif more == 1:
        record.append(field(3, 2, b"uid-1"))
    elif more == 2:
        record.insert(0, field(1, 2, field(1, 2, b"other") + field(2, 2, b"")))
    elif more == 3:
        record.append(record[0])  # the same key twice: the last entry wins
    return b"".join(record)


def frames(payloads: list[bytes], data: st.DataObject) -> bytes:
    body = recordio_frame(payloads)
    if data.draw(st.integers(0, 5)) == 0 and payloads:  # a record split over two frames
        first = payloads[0]
        half = len(first) // 2
        head = struct.pack("<II", 0xCED7230A, 1 << 29 | half) + first[:half] + b"\0" * (-half % 4)
        rest = len(first) - half
        tail = struct.pack("<II", 0xCED7230A, 3 << 29 | rest) + first[half:] + b"\0" * (-rest % 4)
        body = head + tail + recordio_frame(payloads[1:])
    return body


@PROPERTY
@given(num_features=st.integers(1, 4), data=st.data())
def test_recordio_agrees(num_features: int, data: st.DataObject) -> None:
    payloads = data.draw(st.lists(record_wire(num_features), min_size=0, max_size=5))
    body = mutate(frames(payloads, data), data, bytes(range(256)))
    assert_agree(decode_recordio, body, num_features, max_rows=data.draw(st.integers(1, 8)))


@st.composite
def sdk_records(draw: st.DrawFn, num_features: int) -> bytes:
    """A Record holding only features["values"], written with the protobuf classes: a dense
    row, or a sparse one with increasing keys, of any of the three tensor types."""
    kind = draw(st.sampled_from(list(TENSOR_KINDS)))
    finite = {
        "float32": st.floats(width=32, allow_infinity=False),
        "float64": st.floats(-FLOAT32_MAX, FLOAT32_MAX),
        "int32": st.integers(-(2**31), 2**31 - 1),
    }[kind]
    record = Record()
    tensor = getattr(record.features["values"], f"{kind}_tensor")
    if draw(st.booleans()):
        tensor.values.extend(draw(st.lists(finite, min_size=num_features, max_size=num_features)))
        if draw(st.booleans()):
            tensor.shape.append(num_features)
    else:
        keys = sorted(draw(st.sets(st.integers(0, num_features - 1))))
        tensor.keys.extend(keys)
        tensor.values.extend(draw(st.lists(finite, min_size=len(keys), max_size=len(keys))))
        tensor.shape.append(num_features)
    payload: bytes = record.SerializeToString()
    return payload


@PROPERTY
@given(num_features=st.integers(1, 6), data=st.data())
def test_records_as_the_sdk_writes_them_take_the_fast_path(
    num_features: int, data: st.DataObject
) -> None:
    payloads = data.draw(st.lists(sdk_records(num_features), min_size=1, max_size=6))
    body = recordio_frame(payloads)
    assert fastparse.parse_recordio(body, num_features=num_features, max_rows=6) is not None
    assert_agree(decode_recordio, body, num_features, max_rows=6)


@PROPERTY
@given(
    st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=64).map(lambda b: recordio_frame([b])),
        st.binary(max_size=48).map(lambda b: struct.pack("<II", 0xCED7230A, len(b) + 4) + b),
    ),
    st.integers(1, 3),
)
def test_recordio_agrees_on_any_bytes(body: bytes, num_features: int) -> None:
    assert_agree(decode_recordio, body, num_features)


def test_a_recordio_body_over_the_row_limit_is_refused_before_any_record_is_read() -> None:
    good = Record()
    good.features["values"].float32_tensor.values.extend([1.0, 2.0])
    body = recordio_frame([good.SerializeToString()] * 10 + [b"\xff"])  # the last: not a Record
    assert outcome(decode_recordio, body, 2, 10)[1] == "too_many_rows"
    with reference_only():
        assert outcome(decode_recordio, body, 2, 10)[1] == "too_many_rows"
    assert outcome(decode_recordio, body[:-12], 2, 10).shape == (10, 2)


# --- limits and loading ---------------------------------------------------------------------


class RecordingParser:
    def __init__(self) -> None:
        self.calls = 0

    def parse(self, name: str, body: bytes, *, num_features: int, capacity: int) -> None:
        self.calls += 1


def test_a_csv_body_over_the_row_limit_is_refused_before_parsing() -> None:
    recording = RecordingParser()
    body = b"1,2\n" * 11
    with mock.patch.object(fastparse, "PARSER", recording):
        assert outcome(decode_csv, body, 2, 10)[1] == "too_many_rows"
    assert recording.calls == 0


@pytest.mark.parametrize(
    ("decoder", "body"),
    [
        (decode_csv, b"1,2\n" * 11),
        (decode_json, b'{"instances": [' + b",".join([b"[1, 2]"] * 11) + b"]}"),
        (decode_jsonlines, b"[1, 2]\n" * 11),
    ],
)
def test_no_matrix_is_larger_than_the_row_limit(decoder: Decoder, body: bytes) -> None:
    capacities: list[int] = []
    real = fastparse.PARSER
    assert real is not None

    def parse(name: str, body: bytes, *, num_features: int, capacity: int) -> Any:
        capacities.append(capacity)
        return real.parse(name, body, num_features=num_features, capacity=capacity)

    with mock.patch.object(fastparse, "PARSER", mock.Mock(parse=parse)):
        assert outcome(decoder, body, 2, 10)[1] == "too_many_rows"
        assert all(capacity <= 10 for capacity in capacities)
        assert outcome(decoder, body, 2, 11).shape == (11, 2)
    assert capacities[-1] == 11


def test_build_compiles_in_the_source_digest(tmp_path: Path) -> None:
    library = tmp_path / "fast.so"
    fastparse.build(library)
    assert fastparse._open(library, fastparse.source_digest()) is not None
    assert fastparse._open(library, "0" * 64) is None  # a stale build is never used


def test_a_stale_prebuilt_library_is_rebuilt(tmp_path: Path) -> None:
    stale = tmp_path / "_fastparse.so"
    fastparse.build(stale)
    with mock.patch.object(fastparse, "source_digest", lambda: "f" * 64):
        with (
            mock.patch.object(fastparse, "PREBUILT", stale),
            mock.patch.object(
                fastparse, "build", side_effect=subprocess.CalledProcessError(1, "cc")
            ),
        ):
            assert fastparse.load() is None  # not the stale one, and the compile failed


def test_the_prebuilt_library_is_used_when_current(tmp_path: Path) -> None:
    prebuilt = tmp_path / "_fastparse.so"
    fastparse.build(prebuilt)
    with (
        mock.patch.object(fastparse, "PREBUILT", prebuilt),
        mock.patch.object(fastparse, "build", side_effect=AssertionError("compiled again")),
    ):
        parser = fastparse.load()
    assert parser is not None and parser.path == prebuilt


def test_without_a_temporary_directory_the_decoders_run_alone(tmp_path: Path) -> None:
    with (
        mock.patch.object(fastparse, "PREBUILT", tmp_path / "absent.so"),
        mock.patch("tempfile.mkdtemp", side_effect=OSError("read-only file system")),
    ):
        assert fastparse.load() is None


def test_without_a_compiler_the_decoders_run_alone(tmp_path: Path) -> None:
    with (
        mock.patch.object(fastparse, "PREBUILT", tmp_path / "absent.so"),
        mock.patch("shutil.which", return_value=None),
    ):
        assert fastparse.load() is None
    with reference_only():
        assert decode_csv(b"1,2\n3,4", num_features=2, max_rows=5).shape == (2, 2)
