"""The bounded UBJSON reader used for XGBoost UBJSON configs."""

from __future__ import annotations

import numpy as np
import pytest

from model.ubjson import UBJSONError, decode_ubjson, member_span


def _key(text: str) -> bytes:
    return b"i" + bytes([len(text)]) + text.encode()


def test_scalars_strings_and_containers() -> None:
    document = (
        b"{"
        + _key("a")
        + b"i\xff"
        + _key("b")
        + b"Si\x02hi"
        + _key("c")
        + b"[TFZ]"
        + _key("d")
        + b"D?\xf0\x00\x00\x00\x00\x00\x00"
        + _key("e")
        + b"Hi\x0212"
        + b"}"
    )
    assert decode_ubjson(document) == {
        "a": -1,
        "b": "hi",
        "c": [True, False, None],
        "d": 1.0,
        "e": 12,
    }


def test_typed_arrays_become_numpy_big_endian() -> None:
    document = b"[$d#i\x02" + np.array([1.5, -2.0], dtype=">f4").tobytes()
    decoded = decode_ubjson(document)
    np.testing.assert_array_equal(decoded, np.array([1.5, -2.0], dtype=np.float32))


def test_counted_object_and_member_span() -> None:
    document = b"{#i\x02" + _key("Config") + b"{}" + _key("Model") + b"{" + _key("x") + b"U\x07}"
    assert decode_ubjson(document) == {"Config": {}, "Model": {"x": 7}}
    span = member_span(document, "Model")
    assert span is not None
    assert decode_ubjson(document[span[0] : span[1]]) == {"x": 7}
    assert member_span(document, "Missing") is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff", "exceeds the remaining bytes"),
        (b"Si\x05ab", "truncated"),
        (b"{" + b"i\x01a" + b"Q", "unknown type marker"),
        (b"[" * 100, "nested deeper"),
        (b"i\x01i\x02", "trailing bytes"),
        (b"Si\xff", "negative length"),
    ],
)
def test_malformed_documents_raise(document: bytes, message: str) -> None:
    with pytest.raises(UBJSONError, match=message):
        decode_ubjson(document)
