"""Whatever bytes a model file holds, reading it ends in a `ModelError`, never another exception."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.errors import ModelError
from model.source import read_source
from model.ubjson import UBJSONError, decode_ubjson

PREFIXES = [
    b"",
    b"\x80\x02",
    b"\x80\x04\x95",
    b"cxgboost.core\nBooster\n",
    b"binf",
    b"CONFIG-offset:",
    b"CONFIG-offset:" + struct.pack("<q", 2**62),
    b"{",
    b"{L",
    b"{i\x07learner{",
    b'{"learner": {',
    b'{"Config": {}, "Model": ',
    b"\x1f\x8b",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_other_exceptions(prefix: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "xgboost-model"
        path.write_bytes(prefix + body)
        try:
            read_source(path)
        except ModelError as exc:
            assert str(path) in str(exc)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_ubjson_decoder_only_raises_its_own_error(data: bytes) -> None:
    try:
        decode_ubjson(data)
    except UBJSONError:
        pass
