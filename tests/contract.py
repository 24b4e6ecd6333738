"""Over-HTTP contract checks of a running server, as plain functions taking its base URL.

Used by tests/serve/test_http_contract.py against the server started by the harness
(`benchmark/server.py`), and by the image tests against the real image. Each function raises
AssertionError with a clear message.

    from tests.contract import check_ping, check_content_types, ...
    check_content_types("http://127.0.0.1:8080", row=SEED_ROW)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson

SEED_ROW = [2.0, 0.0, 0.0, 7.0, 3.0, 20.0, 2.0]
"""The request the AWS RTB guidance sends to the seed model; its answer is 0.00084757."""
SEED_SCORE = 0.00084757

CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines", "application/x-npy")
ACCEPTS = (None, "*/*", "text/csv", "application/json", "application/jsonlines")


def encode_rows(rows: Sequence[Sequence[float]], content_type: str) -> bytes:
    """Rows in the given request format; NaN becomes the format's missing value."""
    if content_type == "text/csv":
        return "\n".join(
            ",".join("" if math.isnan(v) else repr(v) for v in row) for row in rows
        ).encode()
    plain = [[None if math.isnan(v) else v for v in row] for row in rows]
    if content_type == "application/json":
        return orjson.dumps({"instances": plain})
    if content_type == "application/jsonlines":
        return b"".join(orjson.dumps(row) + b"\n" for row in plain)
    if content_type == "application/x-npy":
        buffer = io.BytesIO()
        np.save(buffer, np.array(rows, dtype=np.float32))
        return buffer.getvalue()
    raise ValueError(content_type)


def decode_scores(response: httpx.Response) -> list[float]:
    """The scores of a 200 answer in any response format."""
    media_type = response.headers["content-type"].split(";")[0]
    if media_type == "text/csv":
        return [float(line) for line in response.text.splitlines()]
    if media_type == "application/json":
        return [item["score"] for item in orjson.loads(response.content)["predictions"]]
    if media_type == "application/jsonlines":
        return [orjson.loads(line)["score"] for line in response.content.splitlines()]
    raise AssertionError(f"unexpected response type {media_type!r}")


def check_ping(base_url: str) -> None:
    """GET /ping is 200 with an empty body once ready."""
    response = httpx.get(f"{base_url}/ping", timeout=2.0)
    assert response.status_code == 200, f"/ping answered {response.status_code}"
    assert response.content == b"", f"/ping body {response.content!r}"


def check_content_types(
    base_url: str, *, row: Sequence[float] = SEED_ROW, expected: float | None = SEED_SCORE
) -> None:
    """Every request format x every Accept answers 200 with the same score (and the expected
    one when given), in the negotiated response type."""
    scores: dict[tuple[str, str | None], float] = {}
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for content_type in CONTENT_TYPES:
            for accept in ACCEPTS:
                headers = {"content-type": content_type}
                if accept is not None:
                    headers["accept"] = accept
                response = client.post(
                    "/invocations", content=encode_rows([row, row], content_type), headers=headers
                )
                assert response.status_code == 200, (
                    f"{content_type} -> {accept}: {response.status_code} {response.text}"
                )
                wanted = "text/csv" if accept in (None, "*/*") else accept
                assert response.headers["content-type"].split(";")[0] == wanted, (
                    f"{content_type} -> {accept}: answered {response.headers['content-type']}"
                )
                values = decode_scores(response)
                assert len(values) == 2 and values[0] == values[1], values
                scores[(content_type, accept)] = values[0]
    assert len(set(scores.values())) == 1, f"formats disagree: {scores}"
    if expected is not None:
        got = next(iter(scores.values()))
        assert abs(got - expected) <= 1e-6, f"score {got}, expected {expected}"


BAD_REQUESTS: list[tuple[str, dict[str, str], bytes, int, str]] = [
    ("no content type: read as LIBSVM", {}, b"2,0,0", 400, "malformed_payload"),
    ("empty content type", {"content-type": ""}, b"1", 415, "unsupported_media_type"),
    ("bad libsvm", {"content-type": "text/libsvm"}, b"0 1:x", 400, "malformed_payload"),
    (
        "xml accept",
        {"content-type": "text/csv", "accept": "application/xml"},
        b"1",
        406,
        "not_acceptable",
    ),
    ("bad json", {"content-type": "application/json"}, b"{", 400, "malformed_payload"),
    ("bad npy", {"content-type": "application/x-npy"}, b"\x93NUMPY", 400, "malformed_payload"),
    ("deep json", {"content-type": "application/json"}, b"[" * 100_000, 400, "malformed_payload"),
]


def check_bad_inputs(base_url: str, *, num_features: int = len(SEED_ROW)) -> None:
    """Bad requests get the documented 4xx and `{"error", "message"}` JSON body, never a 5xx."""
    short = ",".join(["1"] * (num_features - 1)).encode()
    long = ",".join(["1"] * (num_features + 1)).encode()
    infinite = ",".join(["inf"] + ["1"] * (num_features - 1)).encode()
    huge = ",".join(["1e400"] + ["1"] * (num_features - 1)).encode()
    text = ",".join(["abc"] + ["1"] * (num_features - 1)).encode()
    csv_type = {"content-type": "text/csv"}
    cases = BAD_REQUESTS + [
        ("one feature short", csv_type, short, 400, "feature_count_mismatch"),
        ("one feature over", csv_type, long, 400, "feature_count_mismatch"),
        ("inf", csv_type, infinite, 400, "invalid_value"),
        ("1e400", csv_type, huge, 400, "invalid_value"),
        ("not a number", csv_type, text, 400, "malformed_payload"),
    ]
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for name, headers, body, status, code in cases:
            response = client.post("/invocations", content=body, headers=headers)
            assert response.status_code == status, (
                f"{name}: {response.status_code} {response.text}, expected {status}"
            )
            document = orjson.loads(response.content)
            assert document["error"] == code, f"{name}: {document}"
            assert document["message"], name
    check_ping(base_url)


def check_payload_limit(base_url: str, *, limit_bytes: int = 6 * 1024 * 1024) -> None:
    """A body over the limit is 413 whether announced by Content-Length or streamed chunked."""
    row = b"1,2,3,4,5,6,7\n"
    body = row * (limit_bytes // len(row) + 10)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        announced = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    assert announced.status_code == 413, announced.status_code

    def chunks() -> object:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        try:
            streamed = client.post(
                "/invocations",
                content=chunks(),
                headers={"content-type": "text/csv"},  # type: ignore[arg-type]
            )
        except httpx.TransportError:  # the server may close before the client finishes sending
            pass
        else:
            assert streamed.status_code == 413, streamed.status_code
    check_ping(base_url)


def check_custom_attributes(base_url: str) -> None:
    """X-Amzn-SageMaker-Custom-Attributes is echoed; unknown SageMaker headers are ignored."""
    response = httpx.post(
        f"{base_url}/invocations",
        content=encode_rows([SEED_ROW], "text/csv"),
        headers={
            "content-type": "text/csv",
            "X-Amzn-SageMaker-Custom-Attributes": "trace_id=42",
            "X-Amzn-SageMaker-Inference-Id": "abc",
            "X-Amzn-SageMaker-Target-Model": "m.tar.gz",
        },
        timeout=5.0,
    )
    assert response.status_code == 200, response.text
    assert response.headers.get("x-amzn-sagemaker-custom-attributes") == "trace_id=42"


def read_reference(path: Path) -> tuple[list[list[float]], list[float]]:
    """reference.csv: a header, then the features (empty = missing) and `probability`."""
    rows: list[list[float]] = []
    expected: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        assert header[-1] == "probability", header
        for record in reader:
            rows.append([float(v) if v != "" else math.nan for v in record[:-1]])
            expected.append(float(record[-1]))
    return rows, expected


def check_seed_reference(
    base_url: str, reference_csv: Path, *, tolerance: float = 1e-6, batch: int = 1000
) -> float:
    """Every row of the seed model's reference.csv, sent as CSV in batches (and the first 300
    one row per request, as a bidder sends them, CSV and JSON in turn), within `tolerance`.
    Returns the max error."""
    rows, expected = read_reference(reference_csv)
    got: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for start in range(0, len(rows), batch):
            response = client.post(
                "/invocations",
                content=encode_rows(rows[start : start + batch], "text/csv"),
                headers={"content-type": "text/csv"},
            )
            assert response.status_code == 200, response.text
            got.extend(decode_scores(response))
        for index in range(min(300, len(rows))):
            content_type = ("text/csv", "application/json")[index % 2]
            response = client.post(
                "/invocations",
                content=encode_rows([rows[index]], content_type),
                headers={"content-type": content_type, "accept": "application/json"},
            )
            assert response.status_code == 200, response.text
            (single,) = decode_scores(response)
            assert abs(single - expected[index]) <= tolerance, (index, single, expected[index])
    assert len(got) == len(expected), (len(got), len(expected))
    errors = np.abs(np.array(got) - np.array(expected))
    worst = int(np.argmax(errors))
    assert errors[worst] <= tolerance, (
        f"row {worst}: got {got[worst]}, reference {expected[worst]} (|diff| {errors[worst]:.3g})"
    )
    return float(errors[worst])


def host_and_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def check_all(base_url: str, *, reference_csv: Path | None = None) -> None:
    """The whole contract against a server that serves the seed model (e.g. the image with the
    unpacked seed `model.tar.gz` mounted at /opt/ml/model). For another model, call the checks
    one by one with `check_content_types(base_url, row=..., expected=None)`."""
    check_ping(base_url)
    check_content_types(base_url)
    check_bad_inputs(base_url)
    check_custom_attributes(base_url)
    check_payload_limit(base_url)
    if reference_csv is not None:
        check_seed_reference(base_url, reference_csv)
