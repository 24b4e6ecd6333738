"""Hostile input never gets a 5xx, never crashes a worker and never grows its memory for good.

In-process (the real app and the real compiled predictor, driven by raw ASGI messages) for the
wide property runs; over real HTTP against the server process for what only the HTTP layer sees:
header bytes, bodies streamed past the limit, slow clients.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.server import ServerProcess, ping
from serve.app import create_app
from serve.predictor import load_model
from serve.settings import Settings

from . import rawhttp
from .asgi import AsgiResponse, call

NUM_FEATURES = 7
ROW = b"2,0,0.0,7.0,3.0,20.0,2"
MIB = 1024 * 1024


def make_app(artifact_dir: Path, **overrides: Any) -> Any:
    predictor = load_model(artifact_dir).predictor
    return create_app(Settings(model_dir=artifact_dir, **overrides), predictor)


@pytest.fixture(scope="module")
def app(artifact_dir: Path) -> Any:
    return make_app(artifact_dir)


def assert_client_error_or_ok(response: AsgiResponse | rawhttp.RawResponse) -> None:
    """The invariant every input must keep: no 5xx, and every refusal has the documented body."""
    assert response.status < 500, (response.status, response.body[:300])
    if response.status >= 400 and response.body:
        document = orjson.loads(response.body)
        assert set(document) == {"error", "message"}, document
        assert document["error"].replace("_", "").isalpha(), document
        assert isinstance(document["message"], str) and document["message"], document


def header(value: str) -> tuple[bytes, bytes]:
    return (b"content-type", value.encode("latin-1"))


# ---------------------------------------------------------------------------------------------
# Property: random bodies and header bytes, in-process.

CONTENT_TYPES = [
    b"text/csv",
    b"application/json",
    b"application/jsonlines",
    b"application/x-npy",
    b"TEXT/CSV; charset=utf-16",
    b"text/csv;;;=",
    b"application/json; charset=latin-1",
    b"",
    b"*/*",
    b"application/octet-stream",
    b"text/csv\x00",
    b"\xff\xfe",
]
ACCEPTS = [
    b"text/csv",
    b"application/json",
    b"application/jsonlines",
    b"*/*",
    b"",
    b"text/html",
    b"application/json;q=0, text/csv;q=0",
    b"text/csv;q=abc",
    b"text/csv;q=-1, application/json;q=2",
    b",,,;;;",
    b"\xc3\x28",
]


def _json_text(value: Any) -> bytes:
    # The stdlib writes NaN and Infinity tokens, which strict JSON (and orjson) refuse.
    return json.dumps(value, allow_nan=True).encode()


def _csv(rows: list[list[float | None]]) -> bytes:
    return b"\n".join(
        b",".join(b"" if v is None else repr(v).encode() for v in row) for row in rows
    )


def _npy(rows: list[list[float | None]], dtype: str) -> bytes:
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        return b"\x93NUMPY"
    array = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
    buffer = io.BytesIO()
    with np.errstate(over="ignore", invalid="ignore"):
        np.save(buffer, array.astype(dtype), allow_pickle=False)
    return buffer.getvalue()


values = st.one_of(st.none(), st.floats(), st.integers(-(2**70), 2**70).map(float))
rows = st.lists(st.lists(values, min_size=5, max_size=9), min_size=1, max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=8)
        | st.dictionaries(st.sampled_from(["instances", "features", "x"]), inner, max_size=3)
    ),
    max_leaves=30,
)
bodies = st.one_of(
    st.binary(max_size=400),
    st.text(alphabet="0123456789.,-+eEnaNifINFty \t\r\n\"'_x;", max_size=200).map(str.encode),
    json_values.map(_json_text),
    rows.map(_csv),
    rows.map(lambda r: _json_text({"instances": r})),
    rows.map(lambda r: b"\n".join(_json_text(row) for row in r)),
    st.tuples(rows, st.sampled_from(["<f4", ">f8", "<i2", "u1", "<f2"])).map(lambda t: _npy(*t)),
    st.binary(max_size=200).map(lambda b: b"\x93NUMPY\x01\x00" + b),
)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [b"content-type", b"accept", b"content-length", b"x-amzn-sagemaker-custom-attributes"]
        )
        | st.binary(min_size=1, max_size=12),
        st.binary(max_size=60),
    ),
    max_size=3,
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    content_type=st.sampled_from(CONTENT_TYPES) | st.binary(max_size=40),
    accept=st.none() | st.sampled_from(ACCEPTS) | st.binary(max_size=40),
    body=bodies,
    split=st.lists(st.integers(0, 400), max_size=2),
    extra=extra_headers,
)
def test_random_bodies_and_headers_never_get_a_5xx(
    app: Any,
    content_type: bytes,
    accept: bytes | None,
    body: bytes,
    split: list[int],
    extra: list[tuple[bytes, bytes]],
) -> None:
    headers = [(b"content-type", content_type), *extra]
    if accept is not None:
        headers.append((b"accept", accept))
    cuts = sorted({min(cut, len(body)) for cut in split})
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    response = call(app, headers=headers, chunks=chunks)
    assert_client_error_or_ok(response)
    if response.status == 200:
        media_type = dict(response.headers)[b"content-type"]
        assert media_type in {
            b"text/csv",
            b"application/json",
            b"application/jsonlines",
            b"application/x-npy",
        }


# ---------------------------------------------------------------------------------------------
# Named hostile bodies, in-process.


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_BODIES: dict[str, tuple[bytes, bytes, set[int]]] = {
    # name: (content type, body, the statuses a correct server may answer)
    "json-nested-100k": (b"application/json", _nested(100_000), {400}),
    "json-nested-instances": (
        b"application/json",
        b'{"instances":' + _nested(5_000) + b"}",
        {400},
    ),
    "jsonlines-nested": (b"application/jsonlines", _nested(50_000), {400}),
    "csv-inf": (b"text/csv", b"2,0,inf,7.0,3.0,20.0,2", {400}),
    "csv-minus-infinity": (b"text/csv", b"2,0,-Infinity,7.0,3.0,20.0,2", {400}),
    "csv-1e400": (b"text/csv", b"2,0,1e400,7.0,3.0,20.0,2", {400}),
    "csv-float32-overflow": (b"text/csv", b"2,0,1e39,7.0,3.0,20.0,2", {400}),
    "csv-nan-is-missing": (b"text/csv", b"2,0,nan,7.0,3.0,20.0,2", {200, 400}),
    "csv-underscore-digits": (b"text/csv", b"2,0,1_000,7.0,3.0,20.0,2", {400}),
    "csv-hex-float": (b"text/csv", b"2,0,0x1p3,7.0,3.0,20.0,2", {400}),
    "json-NaN-token": (b"application/json", b"[[2,0,NaN,7.0,3.0,20.0,2]]", {400}),
    "json-Infinity-token": (b"application/json", b"[[2,0,Infinity,7.0,3.0,20.0,2]]", {400}),
    "json-1e400": (b"application/json", b"[[2,0,1e400,7.0,3.0,20.0,2]]", {400}),
    "json-huge-integer": (b"application/json", b"[[2,0," + b"9" * 500 + b",7,3,20,2]]", {400}),
    "json-bool": (b"application/json", b"[[true,0,0,7,3,20,2]]", {400}),
    "json-string-number": (b"application/json", b'[["2",0,0,7,3,20,2]]', {400}),
    "utf16-csv": (b"text/csv", "2,0,0.0,7.0,3.0,20.0,2".encode("utf-16"), {400}),
    "utf16-csv-declared": (
        b"text/csv; charset=utf-16",
        "2,0,0.0,7.0,3.0,20.0,2".encode("utf-16"),
        {400, 415},
    ),
    "utf16-json": (b"application/json", "[[2,0,0,7,3,20,2]]".encode("utf-16-le"), {400}),
    "latin1-bytes": (b"text/csv", "2,0,0.0,7.0,3.0,20.0,é".encode("latin-1"), {400}),
    "utf8-bom-csv": (b"text/csv", b"\xef\xbb\xbf" + ROW, {200, 400}),
    "utf8-bom-json": (b"application/json", b"\xef\xbb\xbf[[2,0,0,7,3,20,2]]", {200, 400}),
    "nul-bytes": (b"text/csv", b"\x00" * 1000, {400}),
    "only-newlines": (b"text/csv", b"\n" * 1000, {400}),
    "only-commas": (b"text/csv", b"," * 6, {200}),  # seven missing values is a valid row
    "npy-object-dtype": (
        b"application/x-npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1, 7), }"
        + b" " * 44
        + b"\n"
        + b"\x00" * 56,
        {400},
    ),
    "npy-shape-lies": (
        b"application/x-npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': "
        b"(100000000000, 7), }" + b" " * 33 + b"\n",
        {400, 413},
    ),
    "npy-header-expression": (
        b"application/x-npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': __import__('os').system('true'), 'shape': (1,7)}"
        + b" " * 30
        + b"\n",
        {400},
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_body_is_refused_with_a_client_error(app: Any, name: str) -> None:
    content_type, body, allowed = HOSTILE_BODIES[name]
    response = call(app, headers=[(b"content-type", content_type)], chunks=[body])
    assert_client_error_or_ok(response)
    assert response.status in allowed, (response.status, response.body[:300])


def test_a_million_rows(artifact_dir: Path) -> None:
    """10^6 rows: over the body limit by default (413), over the row limit when the body limit
    is raised (413 too_many_rows), and served row for row when both limits allow it."""
    body = (ROW + b"\n") * 1_000_000
    csv = [(b"content-type", b"text/csv")]
    chunks = [body[i : i + MIB] for i in range(0, len(body), MIB)]

    default = call(make_app(artifact_dir), headers=csv, chunks=chunks)
    assert default.status == 413 and orjson.loads(default.body)["error"] == "payload_too_large"

    rows_limited = call(
        make_app(artifact_dir, max_body_bytes=64 * MIB, max_rows=100_000),
        headers=csv,
        chunks=chunks,
    )
    assert rows_limited.status == 413
    assert orjson.loads(rows_limited.body)["error"] == "too_many_rows"

    allowed = make_app(artifact_dir, max_body_bytes=64 * MIB, max_rows=1_000_000)
    served = call(allowed, headers=csv, chunks=chunks)
    assert served.status == 200
    lines = served.body.splitlines()
    assert len(lines) == 1_000_000 and len(set(lines)) == 1
    assert math.isclose(float(lines[0]), 0.00084757, abs_tol=1e-6)


# ---------------------------------------------------------------------------------------------
# Over real HTTP: header bytes, size limits, slow clients, memory.


@pytest.fixture(scope="module")
def http_server(artifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = ServerProcess(
        model_dir=artifact_dir,
        workers=1,
        env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3", "RTB_HEADER_TIMEOUT": "3"},
        log_path=tmp_path_factory.mktemp("http-server") / "server.log",
    )
    try:
        server.start()
        server.wait_healthy(timeout=60)
        yield server
    finally:
        server.stop()


def rss(server: ServerProcess) -> int:
    rss_bytes: int = psutil.Process(server.worker_pids()[0]).memory_info().rss
    return rss_bytes


RAW_REQUESTS: dict[str, tuple[bytes, set[int]]] = {
    "cr-in-header-value": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\rX-Injected: 1\r\n"
        b"Content-Length: 22\r\n\r\n" + ROW,
        {200, 400},
    ),
    "lf-in-header-value": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\nX-Injected: 1\r\n"
        b"Content-Length: 22\r\n\r\n" + ROW,
        {200, 400},
    ),
    "nul-in-header-value": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/\x00csv\r\n"
        b"Content-Length: 22\r\n\r\n" + ROW,
        {400, 415},
    ),
    "duplicate-content-type": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Type: text/csv\r\nContent-Length: 22\r\n\r\n" + ROW,
        {200, 400, 415},
    ),
    "content-length-absurd": (
        rawhttp.request_bytes(body=ROW, content_length=10**30),
        {400, 413},
    ),
    "content-length-negative": (rawhttp.request_bytes(body=ROW, content_length=-1), {400}),
    "content-length-not-a-number": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 2e1\r\n\r\n" + ROW,
        {400},
    ),
    "content-length-twice-differing": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 22\r\nContent-Length: 5\r\n\r\n" + ROW,
        {400},
    ),
    "content-length-and-chunked": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 22\r\nTransfer-Encoding: chunked\r\n\r\n16\r\n" + ROW + b"\r\n0\r\n\r\n",
        {400},
    ),
    "header-name-with-space": (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent Type: text/csv\r\n"
        b"Content-Length: 22\r\n\r\n" + ROW,
        {400, 415},
    ),
    "custom-attributes-binary": (
        rawhttp.request_bytes(
            body=ROW,
            headers=(
                ("Content-Type", "text/csv"),
                ("X-Amzn-SageMaker-Custom-Attributes", "\x7f\xff\x01" * 400),
            ),
        ),
        {200, 400},
    ),
    "http-1.0-no-host": (
        b"POST /invocations HTTP/1.0\r\nContent-Type: text/csv\r\nContent-Length: 22\r\n\r\n" + ROW,
        {200},
    ),
    "garbage-request-line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 10, {400}),
    "absolute-uri-path": (
        rawhttp.request_bytes(body=ROW, path="http://evil.example/invocations"),
        {200, 400, 404},
    ),
    "path-traversal": (rawhttp.request_bytes(body=ROW, path="/../../etc/passwd"), {400, 404}),
    "ping-with-body": (
        b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        {200},
    ),
}


@pytest.mark.parametrize("name", sorted(RAW_REQUESTS))
def test_hostile_request_over_http(http_server: ServerProcess, name: str) -> None:
    request, allowed = RAW_REQUESTS[name]
    response = rawhttp.exchange(http_server.port, request)
    assert response.status in allowed, (response.status, response.body[:300])
    if response.status >= 400 and response.header("content-type") == "application/json":
        assert_client_error_or_ok(response)
    assert ping(http_server.port) == 200


header_bytes = st.binary(max_size=80).filter(lambda b: b"\r\n\r\n" not in b)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    content_type=st.sampled_from([c for c in CONTENT_TYPES if b"\x00" not in c]) | header_bytes,
    accept=st.sampled_from(ACCEPTS) | header_bytes,
    body=bodies,
    injected=st.lists(header_bytes, max_size=2),
)
def test_random_requests_over_http_never_get_a_5xx(
    http_server: ServerProcess,
    content_type: bytes,
    accept: bytes,
    body: bytes,
    injected: list[bytes],
) -> None:
    head = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type
    head += b"\r\nAccept: " + accept + b"".join(b"\r\nX-Fuzz: " + value for value in injected)
    request = head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    response = rawhttp.exchange(http_server.port, request)
    assert response.status < 500, (response.status, response.body[:300])


def test_fuzzing_left_the_worker_alive_and_its_memory_flat(http_server: ServerProcess) -> None:
    """After everything above, the same worker still answers, and a bounded burst of hostile
    requests does not grow its RSS for good (allocator noise allowed: 16 MiB)."""
    assert http_server.returncode() is None
    before = rss(http_server)
    for _ in range(3):
        for request, _allowed in RAW_REQUESTS.values():
            rawhttp.exchange(http_server.port, request)
        outcome = rawhttp.stream_body(http_server.port, total_bytes=64 * MIB, chunked=True)
        assert outcome.status == 413
    after = rss(http_server)
    print(f"worker RSS before {before / MIB:.1f} MiB, after {after / MIB:.1f} MiB")
    assert after - before < 16 * MIB
    assert ping(http_server.port) == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_gigabyte_body_is_refused_early_without_buffering(
    http_server: ServerProcess, chunked: bool
) -> None:
    """1 GiB streamed lazily: the server answers 413 after at most a few times its 6 MiB limit
    (socket buffers included), never after reading it all, and the worker's RSS stays put."""
    before = rss(http_server)
    outcome = rawhttp.stream_body(http_server.port, total_bytes=1024 * MIB, chunked=chunked)
    after = rss(http_server)
    print(
        f"413 after {outcome.bytes_sent / MIB:.1f} MiB sent in {outcome.seconds:.2f} s; "
        f"worker RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB"
    )
    assert outcome.status == 413
    assert outcome.bytes_sent < 64 * MIB
    assert after - before < 32 * MIB


def test_an_endless_header_is_refused_without_buffering(http_server: ServerProcess) -> None:
    """A header value that never ends must not be buffered without bound: the server answers
    431/400 or closes after a bounded size (a head deadline alone is not a bound: a fast client
    sends hundreds of MiB before it fires), and the worker's RSS never grows by what was sent."""
    before = peak = rss(http_server)
    sent = 0
    closed = False
    with rawhttp.connect(http_server.port, timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Long: ")
        piece = b"a" * MIB
        try:
            while sent < 64 * MIB:
                sock.sendall(piece)
                sent += len(piece)
                peak = max(peak, rss(http_server))
        except OSError:
            closed = True
    print(f"sent {sent / MIB:.0f} MiB of one header; RSS {before / MIB:.1f}, peak {peak / MIB:.1f}")
    assert closed, "the server took 64 MiB of a single header without refusing it"
    assert peak - before < 16 * MIB, "the worker buffered the header as it arrived"
    assert ping(http_server.port) == 200


def test_a_body_that_never_arrives_times_out(http_server: ServerProcess) -> None:
    """Headers announce 22 bytes and none follow: the server must not wait forever
    (SAGEMAKER_MODEL_SERVER_TIMEOUT=3 here): 408 or a close, well before 15 s."""
    with rawhttp.connect(http_server.port, timeout=15) as sock:
        sock.sendall(rawhttp.request_bytes(body=ROW)[: -len(ROW)])
        try:
            response = rawhttp.read_response(sock, timeout=15)
        except rawhttp.NoResponse as exc:
            assert "closed" in str(exc), exc
        else:
            assert response.status == 408


def test_slow_loris_is_cut_off_and_other_clients_are_served(
    http_server: ServerProcess,
) -> None:
    """A client trickling its headers one byte every 0.5 s is disconnected by the head deadline
    (RTB_HEADER_TIMEOUT=3 here), and while it trickles other clients get their predictions."""
    import threading

    held: list[float | None] = []
    thread = threading.Thread(
        target=lambda: held.append(rawhttp.slowloris(http_server.port, interval=0.5, limit_s=10)),
        daemon=True,
    )
    thread.start()
    try:
        for _ in range(20):
            response = rawhttp.exchange(http_server.port, rawhttp.request_bytes(body=ROW))
            assert response.status == 200
    finally:
        thread.join(timeout=30)
    assert held and held[0] is not None, "the server kept a slow-loris connection for 10 s"
