"""A Batch Transform job against the running image, as SageMaker drives it: `SAGEMAKER_BATCH`
set, the payload limit read from /execution-parameters, a 210,000-row file split on lines into
MultiRecord mini-batches (`benchmark.minibatches`), the answers joined in order. The job runs
with `SAGEMAKER_MAX_PAYLOAD_IN_MB=1` (a transform job's MaxPayloadInMB=1), so its 7 MB file
makes several mini-batches."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmark.minibatches import MIB, split_lines
from tests.contract import encode_rows, read_reference

from .conftest import RunServer

pytestmark = pytest.mark.container

ROWS = 210_000


def test_a_transform_job_of_210k_rows_equals_row_by_row_predictions(
    run_server: RunServer, seed_raw_dir: Path, reference_csv: Path
) -> None:
    reference_rows, reference = read_reference(reference_csv)
    order = np.random.default_rng(11).integers(0, len(reference_rows), size=ROWS)
    data = encode_rows([reference_rows[i] for i in order], "text/csv")
    data = data if data.endswith(b"\n") else data + b"\n"
    csv = {"content-type": "text/csv"}
    environment = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}
    with (
        run_server(model_dir=seed_raw_dir, environment=environment) as server,
        httpx.Client(base_url=server.base_url, timeout=60.0) as client,
    ):
        parameters = client.get("/execution-parameters").json()
        assert parameters["BatchStrategy"] == "MULTI_RECORD"
        assert parameters["MaxPayloadInMB"] == 1
        limit = parameters["MaxPayloadInMB"] * MIB
        bodies = list(split_lines(data, max_payload_bytes=limit))
        answers = []
        for body in bodies:
            response = client.post("/invocations", content=body, headers=csv)
            assert response.status_code == 200, response.text[:300]
            answers.append(response.content)
        # Row by row: each distinct row alone, as a bidder sends it.
        single = []
        for row in reference_rows:
            response = client.post(
                "/invocations", content=encode_rows([row], "text/csv"), headers=csv
            )
            assert response.status_code == 200, response.text
            single.append(response.content)
    assert len(bodies) >= 5 and all(len(body) <= limit for body in bodies)
    joined = b"".join(answers)
    assert joined.count(b"\n") == ROWS and joined.endswith(b"\n")  # one line a record
    lines = joined.split(b"\n")[:-1]
    assert lines == [single[i].rstrip(b"\n") for i in order]  # byte for byte
    scores = np.array(lines, dtype=np.float32)
    assert np.abs(scores - np.array(reference, dtype=np.float32)[order]).max() <= 1e-6


def test_a_full_mini_batch_of_short_rows_and_an_empty_one(
    run_server: RunServer, seed_raw_dir: Path
) -> None:
    """6 MiB of `0,0,0,0,0,0,0` lines (449,389 rows) is served, not refused for its row count;
    SAGEMAKER_BATCH answers lines even to a JSON Accept; an empty body is 204 with no content,
    as the built-in answers them."""
    row = b"0,0,0,0,0,0,0\n"
    with (
        run_server(model_dir=seed_raw_dir, environment={"SAGEMAKER_BATCH": "true"}) as server,
        httpx.Client(base_url=server.base_url, timeout=60.0) as client,
    ):
        limit = client.get("/execution-parameters").json()["MaxPayloadInMB"] * MIB
        body = row * (limit // len(row))
        full = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
        empty = client.post("/invocations", content=b"", headers={"content-type": "text/csv"})
        json_accept = client.post(
            "/invocations",
            content=row * 2,
            headers={"content-type": "text/csv", "accept": "application/json"},
        )
    assert full.status_code == 200, full.text[:300]
    assert full.content.count(b"\n") == limit // len(row)
    assert len(set(full.content.split(b"\n")[:-1])) == 1
    first_line = full.content.split(b"\n", 1)[0] + b"\n"
    assert json_accept.content == first_line * 2  # batch lines, not {"predictions": ...}
    assert empty.status_code == 204 and empty.content == b""
    assert "content-length" not in empty.headers and "content-type" not in empty.headers
