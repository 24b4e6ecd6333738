"""The C bulk parsers agree with the Python decoders on every body: the same float32 matrix bit
for bit (NaN at the same places), or the same refusal (status, code and message).

The reference is `serve.codecs`' decoder with the fast path switched off; the bodies are
generated around the grammar's edges (numbers of every length and exponent, empty fields,
whitespace, CR, junk, wrong counts, unusual JSON shapes) and then mutated byte by byte.
"""

from __future__ import annotations

import io
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve import fastparse
from serve.codecs import decode_csv, decode_json, decode_jsonlines, decode_npy
from serve.errors import InferenceError

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
