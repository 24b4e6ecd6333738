"""The RecordIO-protobuf format (`application/x-recordio-protobuf`): requests and responses.

A body is a sequence of RecordIO frames: the magic number 0xced7230a and a 32-bit word (both
little endian) whose low 29 bits are the payload length and whose top 3 bits say whether the
payload is whole (0) or the begin (1), a middle (2) or the end (3) of a record split over
several frames; then the payload, zero-padded to a multiple of 4 bytes. Each record's payload
is a protobuf `aialgs.data.Record` (serve/record.proto), one row per record.

A request row is `features["values"]`, a float32, float64 or int32 tensor, as the SageMaker
XGBoost container reads it: dense (values only: the row, one value per column) or sparse
(`keys` give the column of each value, `shape` = [columns]; an absent column is missing, as
XGBoost treats a sparse matrix, and a shape without keys or values is a row of missing values,
as mlio, the container's RecordIO reader, reads it). Labels, `uid`, `metadata` and other
features are ignored. The row must have the model's feature count: the built-in also scores a
row one column short (its last feature missing), which this server refuses for every format,
since a short row is usually a shifted one (docs/compatibility.md). A response is one record per
prediction, the prediction in `label` as a float32 tensor per key: `score`, or the keys
chosen by SAGEMAKER_INFERENCE_OUTPUT.

Every length is checked against the bytes that are actually there before anything is sliced
or allocated; protobuf itself (upb) refuses malformed messages.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from serve import fastparse
from serve.errors import (
    EmptyBodyError,
    FeatureCountMismatchError,
    MalformedPayloadError,
    TooManyRowsError,
)
from serve.features import FLOAT32_MAX, beyond_float32, fits_float32
from serve.outputs import OutputSelection, Predictions

if TYPE_CHECKING:
    from serve.features import FeatureMatrix

MAGIC = 0xCED7230A
PROTO_PATH = Path(__file__).with_name("record.proto")

_HEADER = struct.Struct("<II")
_LENGTH_MASK = (1 << 29) - 1
_COMPLETE, _BEGIN, _MIDDLE, _END = 0, 1, 2, 3
_KIND_NAMES = {_MIDDLE: "continues", _END: "ends"}
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_NAN = float("nan")


# --- the schema, from serve/record.proto ------------------------------------------------------

_Field = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "double": _Field.TYPE_DOUBLE,
    "float": _Field.TYPE_FLOAT,
    "int32": _Field.TYPE_INT32,
    "int64": _Field.TYPE_INT64,
    "uint32": _Field.TYPE_UINT32,
    "uint64": _Field.TYPE_UINT64,
    "bool": _Field.TYPE_BOOL,
    "string": _Field.TYPE_STRING,
    "bytes": _Field.TYPE_BYTES,
}
_LABELS = {"optional": _Field.LABEL_OPTIONAL, "repeated": _Field.LABEL_REPEATED}
_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"[^"\n]*"|[A-Za-z_][\w.]*|\d+|[{}\[\]<>=;,()]', re.S)


class ProtoSyntaxError(ValueError):
    """serve/record.proto uses something this reader does not know (a bug in that file)."""


def parse_proto(text: str, *, name: str) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor protoc would build from `text`, for the proto2 subset record.proto uses:
    package, file options, messages of optional and repeated scalar or message fields (with
    `[packed = true]`), `map<string, Message>` fields and `oneof` groups. Anything else raises
    ProtoSyntaxError."""
    tokens = _tokenize(text)
    file = descriptor_pb2.FileDescriptorProto(name=name)
    messages: list[tuple[descriptor_pb2.DescriptorProto, list[tuple[Any, str]]]] = []
    position = 0

    def take(expected: str | None = None) -> str:
        nonlocal position
        if position >= len(tokens):
            raise ProtoSyntaxError("unexpected end of file")
        token = tokens[position]
        position += 1
        if expected is not None and token != expected:
            raise ProtoSyntaxError(f"expected {expected!r}, found {token!r}")
        return token

    while position < len(tokens):
        keyword = take()
        if keyword == "syntax":
            take("=")
            if take() != '"proto2"':
                raise ProtoSyntaxError("only proto2 is supported")
            take(";")
        elif keyword == "package":
            file.package = take()
            take(";")
        elif keyword == "option":
            option, value = take(), (take("="), take())[1]
            take(";")
            if option not in ("java_package", "java_outer_classname"):
                raise ProtoSyntaxError(f"unsupported file option {option}")
            setattr(file.options, option, value.strip('"'))
        elif keyword == "message":
            message = file.message_type.add(name=take())
            take("{")
            pending: list[tuple[Any, str]] = []
            while tokens[position] != "}":
                position = _parse_member(tokens, position, message, pending, file.package)
            take("}")
            messages.append((message, pending))
        else:
            raise ProtoSyntaxError(f"unexpected {keyword!r}")
    known = {message.name for message, _ in messages}
    for message, pending in messages:
        for field, type_name in pending:
            if type_name in _SCALAR_TYPES:
                field.type = _SCALAR_TYPES[type_name]
            elif type_name in known:
                field.type = _Field.TYPE_MESSAGE
                field.type_name = f".{file.package}.{type_name}"
            else:
                raise ProtoSyntaxError(f"{message.name}: unknown type {type_name}")
    return file


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ProtoSyntaxError(f"unexpected character {text[position]!r}")
        token = match.group()
        if not (token.isspace() or token.startswith(("//", "/*"))):
            tokens.append(token)
        position = match.end()
    return tokens


def _parse_member(
    tokens: list[str],
    position: int,
    message: descriptor_pb2.DescriptorProto,
    pending: list[tuple[Any, str]],
    package: str,
) -> int:
    """One field, map field or oneof of `message`; returns the position after it."""
    keyword = tokens[position]
    if keyword == "oneof":
        index = len(message.oneof_decl)
        message.oneof_decl.add(name=tokens[position + 1])
        if tokens[position + 2] != "{":
            raise ProtoSyntaxError(f"{message.name}: expected '{{' after oneof")
        position += 3
        while tokens[position] != "}":
            type_name, name, equals, number, end = tokens[position : position + 5]
            if (equals, end) != ("=", ";"):
                raise ProtoSyntaxError(f"{message.name}.{name}: malformed oneof field")
            field = message.field.add(
                name=name, number=int(number), label=_Field.LABEL_OPTIONAL, oneof_index=index
            )
            pending.append((field, type_name))
            position += 5
        return position + 1
    if keyword == "map":
        opener, key_type, comma, value_type, closer, name, equals, number, end = tokens[
            position + 1 : position + 10
        ]
        if (opener, comma, closer, equals, end) != ("<", ",", ">", "=", ";"):
            raise ProtoSyntaxError(f"{message.name}: malformed map field")
        entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        key = entry.field.add(name="key", number=1, label=_Field.LABEL_OPTIONAL)
        value = entry.field.add(name="value", number=2, label=_Field.LABEL_OPTIONAL)
        pending.extend(((key, key_type), (value, value_type)))
        field = message.field.add(
            name=name, number=int(number), label=_Field.LABEL_REPEATED, type=_Field.TYPE_MESSAGE
        )
        field.type_name = f".{package}.{message.name}.{entry_name}"
        return position + 10
    if keyword not in _LABELS:
        raise ProtoSyntaxError(f"{message.name}: expected a field label, found {keyword!r}")
    type_name, name, equals, number = tokens[position + 1 : position + 5]
    if equals != "=":
        raise ProtoSyntaxError(f"{message.name}.{name}: malformed field")
    field = message.field.add(name=name, number=int(number), label=_LABELS[keyword])
    pending.append((field, type_name))
    position += 5
    if tokens[position] == "[":
        option, equals, value, closer = tokens[position + 1 : position + 5]
        if (option, equals, value, closer) != ("packed", "=", "true", "]"):
            raise ProtoSyntaxError(f"{message.name}.{name}: unsupported field option")
        field.options.packed = True
        position += 5
    if tokens[position] != ";":
        raise ProtoSyntaxError(f"{message.name}.{name}: expected ';'")
    return position + 1


def _message_classes(file: descriptor_pb2.FileDescriptorProto) -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()  # private: never clashes with another aialgs copy
    pool.Add(file)
    return {
        message.name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{file.package}.{message.name}")
        )
        for message in file.message_type
    }


def load_schema(path: Path = PROTO_PATH) -> descriptor_pb2.FileDescriptorProto:
    """record.proto as a resolved FileDescriptorProto (what protoc would embed)."""
    return parse_proto(path.read_text(encoding="utf-8"), name=path.name)


_CLASSES = _message_classes(load_schema())
Record: Any = _CLASSES["Record"]
"""The `aialgs.data.Record` message class."""


# --- framing ------------------------------------------------------------------------------------


def frame(payloads: Sequence[bytes]) -> bytes:
    """RecordIO frames around whole payloads: magic, length, payload, zero padding."""
    parts: list[bytes] = []
    for payload in payloads:
        length = len(payload)
        if length > _LENGTH_MASK:
            raise ValueError(f"a RecordIO payload holds at most {_LENGTH_MASK} bytes")
        parts.append(_HEADER.pack(MAGIC, length))
        parts.append(payload)
        parts.append(_PADDING[length & 3])
    return b"".join(parts)


def split_records(body: bytes, *, max_records: int) -> list[bytes]:
    """The record payloads of a RecordIO body, split records joined; refuses a body that is
    not exactly a sequence of well-formed frames, or that holds more than `max_records`."""
    end = len(body)
    if end >= _HEADER.size and max_records >= 1:  # the common case: one whole record
        magic, word = _HEADER.unpack_from(body)
        if magic == MAGIC and _HEADER.size + ((word + 3) & ~3) == end and word <= _LENGTH_MASK:
            return [body[_HEADER.size : _HEADER.size + word]]
    records: list[bytes] = []
    pieces: list[bytes] = []  # the parts of a split record read so far
    offset = 0
    while offset < end:
        number = len(records) + 1
        if end - offset < _HEADER.size:
            raise MalformedPayloadError(
                f"Record {number}: the body ends {end - offset} bytes into its 8-byte RecordIO "
                f"header (at byte {offset})."
            )
        magic, word = _HEADER.unpack_from(body, offset)
        if magic != MAGIC:
            raise MalformedPayloadError(
                f"Record {number}: expected the RecordIO magic number 0xced7230a at byte "
                f"{offset}, found 0x{magic:08x}."
            )
        kind, length = word >> 29, word & _LENGTH_MASK
        start = offset + _HEADER.size
        padded = (length + 3) & ~3
        if padded > end - start:
            raise MalformedPayloadError(
                f"Record {number}: its header (at byte {offset}) declares {length} bytes "
                f"(padded to {padded}) but {end - start} follow."
            )
        if kind > _END or (kind in (_MIDDLE, _END)) != bool(pieces):
            raise _bad_split(number, offset, kind)
        payload = body[start : start + length]
        offset = start + padded
        if kind == _COMPLETE:
            record = payload
        elif kind == _END:
            pieces.append(payload)
            record = b"".join(pieces)
            pieces = []
        else:
            pieces.append(payload)
            continue
        if len(records) == max_records:
            raise TooManyRowsError(
                f"The body holds more than {max_records} records; the limit is {max_records}."
            )
        records.append(record)
    if pieces:
        raise MalformedPayloadError(
            f"Record {len(records) + 1}: a split record has no end frame (the body ends)."
        )
    if not records:
        raise EmptyBodyError("The body holds no records.")
    return records


def _bad_split(number: int, offset: int, kind: int) -> MalformedPayloadError:
    if kind > _END:
        problem = f"has the unknown record kind {kind} (the top 3 bits of its length word)"
    elif kind in (_MIDDLE, _END):
        problem = f"{_KIND_NAMES[kind]} a split record that never began"
    else:
        problem = "starts a record while a split record still waits for its end frame"
    return MalformedPayloadError(f"Record {number}: the frame at byte {offset} {problem}.")


# --- requests -----------------------------------------------------------------------------------


def decode_recordio(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix:
    """One row per record, from `features["values"]`; NaN where a sparse row has no value."""
    fast = fastparse.parse_recordio(body, num_features=num_features, max_rows=max_rows)
    if fast is not None:  # the common records in one C call; anything else is read here
        return fast
    payloads = split_records(body, max_records=max_rows)
    rows = [
        _read_row(payload, number, num_features=num_features)
        for number, payload in enumerate(payloads, start=1)
    ]
    return np.array(rows, dtype=np.float32)


def _read_row(payload: bytes, number: int, *, num_features: int) -> list[float]:
    record = Record()
    try:
        record.ParseFromString(payload)
    except DecodeError as exc:
        raise MalformedPayloadError(
            f"Record {number} is not a valid protobuf Record message: {exc}"
        ) from None
    value = record.features.get("values")
    if value is None:
        raise MalformedPayloadError(
            f'Record {number} has no "values" feature; the row must be features["values"].'
        )
    kind = value.WhichOneof("value")
    if kind is None or kind == "bytes":
        raise MalformedPayloadError(
            f'Record {number}: features["values"] must be a float32, float64 or int32 tensor, '
            f"not {'empty' if kind is None else 'bytes'}."
        )
    tensor = getattr(value, kind)
    values: list[float] = tensor.values[:]
    keys: list[int] = tensor.keys[:]
    shape: list[int] = tensor.shape[:]
    if len(shape) > 1:
        raise MalformedPayloadError(
            f"Record {number}: the tensor has shape {shape}; a row's shape is [columns]."
        )
    if not keys and (values or not shape):  # dense: the row itself
        width = len(values)
        if shape and shape[0] != width:
            raise MalformedPayloadError(
                f"Record {number}: the dense tensor has {width} values but shape [{shape[0]}]."
            )
        _check_width(number, width, num_features, what="it has")
        _check_values(number, values, range(width))
        if width < num_features:
            values.append(_NAN)
        return values
    # Sparse, as the SDK writes it and mlio reads it: a shape, and keys unless the row is empty.
    if not shape:
        raise MalformedPayloadError(
            f"Record {number}: a sparse tensor (one with keys) needs its shape [columns]."
        )
    width = shape[0]
    _check_width(number, width, num_features, what="its shape says it has")
    if len(keys) != len(values):
        raise MalformedPayloadError(
            f"Record {number}: the sparse tensor has {len(keys)} keys but {len(values)} values."
        )
    row = [_NAN] * num_features
    if keys:
        if max(keys) >= width:
            key = next(key for key in keys if key >= width)
            raise MalformedPayloadError(
                f"Record {number}: the key {key} is outside the shape [{width}]."
            )
        if len(set(keys)) != len(keys):
            repeated = next(key for k, key in enumerate(keys) if key in keys[:k])
            raise MalformedPayloadError(
                f"Record {number}: the key {repeated} appears more than once; "
                "each column takes one value."
            )
        _check_values(number, values, keys)
        for key, cell in zip(keys, values, strict=True):
            row[key] = cell
    return row


def _check_width(number: int, width: int, num_features: int, *, what: str) -> None:
    if width != num_features:
        raise FeatureCountMismatchError(
            f"Record {number}: {what} {width} columns; the model expects {num_features}."
        )


def _check_values(number: int, values: list[float], columns: Sequence[int]) -> None:
    """Refuse infinities and values float32 cannot hold; NaN is a missing value."""
    if fits_float32(values):
        return  # all finite and in range (the common case)
    for column, cell in zip(columns, values, strict=True):
        if abs(cell) > FLOAT32_MAX:
            raise beyond_float32(f"Record {number}, column {column + 1}")


# --- responses ----------------------------------------------------------------------------------


def encode_recordio(predictions: Predictions, selection: OutputSelection) -> bytes:
    """One record per prediction: `label[key]` a float32 tensor for `score` or each selected
    key (a list such as `probabilities`, or the k probabilities of a `multi:softprob` score, as
    its values, a scalar as one value)."""
    payloads: list[bytes] = []
    record = Record()
    for row in selection.records(predictions):
        record.Clear()
        label = record.label
        for key, value in row.items():
            values = value if isinstance(value, list | np.ndarray) else (value,)
            label[key].float32_tensor.values.extend([float(v) for v in values])
        payloads.append(record.SerializeToString())
    return frame(payloads)
