"""The boto3 `invoke_endpoint` user against moto in server mode (no AWS account, no network).

moto's sagemaker-runtime answers each distinct request with the next result queued through
`/moto-api/static/sagemaker/endpoint-results` (then always the same one for that request), and
with a canned `b"body"` once the queue is empty.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmark.server import free_port
from tests.benchmark.command import run_benchmark

pytestmark = [pytest.mark.aws, pytest.mark.slow]

REGION = "us-east-1"
PAYLOADS = 8


@pytest.fixture
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per call
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends live in this process: forget the answers memoised by an earlier test.
    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=10):
        pass
    try:
        yield url
    finally:
        server.stop()


def queue_results(url: str, count: int) -> None:
    results = [
        {"Body": "0.125\n", "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}
        for _ in range(count)
    ]
    request = urllib.request.Request(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps({"region": REGION, "results": results}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 201)


def run_against(url: str, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    env.pop("AWS_PROFILE", None)
    args = ["--endpoint-name", "rtb-bidder", "--region", REGION, "--endpoint-url", url]
    args += ["--users", "1", "--duration", "2s", "--payloads", str(PAYLOADS)]
    return run_benchmark("locust", *args, *extra, "--output", str(output), timeout=240, env=env)


def test_invoke_endpoint_user_times_and_checks_every_call(moto_url: str, tmp_path: Path) -> None:
    queue_results(moto_url, PAYLOADS)  # one valid answer per distinct request body
    output = tmp_path / "sagemaker"
    result = run_against(moto_url, output)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output / "summary.json").read_text())
    total = summary["total"]
    assert total["requests"] > 0 and total["failures"] == 0
    assert (
        0 < total["latency"]["p50_us"] <= total["latency"]["p99_us"] <= total["latency"]["max_us"]
    )
    assert total["server"] is None  # SageMaker passes no Server-Timing through
    assert summary["config"]["endpoint_name"] == "rtb-bidder"
    assert json.loads((output / "capacity.json").read_text())["host"] == "rtb-bidder"
    stats = json.loads((output / "locust.json").read_text())
    assert [entry["method"] for entry in stats] == ["invoke_endpoint"]


def test_invalid_endpoint_answers_are_failures(moto_url: str, tmp_path: Path) -> None:
    queue_results(moto_url, PAYLOADS // 2)  # the other bodies get moto's canned b"body"
    output = tmp_path / "sagemaker"
    result = run_against(moto_url, output)
    assert result.returncode == 1
    total = json.loads((output / "summary.json").read_text())["total"]
    assert total["requests"] > 0 and total["failures"] > 0
    assert "unexpected response content type" in (output / "locust_failures.csv").read_text()


def target_models_moto_saw() -> set[str | None]:
    """The TargetModel of every distinct request moto's (in-process) backend answered."""
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    backend = sagemakerruntime_backends["123456789012"][REGION]
    seen = set()
    for (
        answered
    ) in backend.results.values():  # by endpoint (moto's server mode files it under None)
        for key in answered:
            request = json.loads(base64.b64decode(key))
            headers = {name.lower(): value for name, value in request.items()}
            seen.add(headers.get("x-amzn-sagemaker-target-model"))
    return seen


def test_a_multi_model_endpoint_gets_the_target_model_of_each_call(
    moto_url: str, tmp_path: Path
) -> None:
    queue_results(moto_url, PAYLOADS * 3)  # one valid answer per distinct (body, model)
    output = tmp_path / "sagemaker-mme"
    result = run_against(moto_url, output, "--models", "3", "--model-names", "bidder-{}.tar.gz")
    assert result.returncode == 0, result.stderr[-3000:]
    total = json.loads((output / "summary.json").read_text())["total"]
    assert total["requests"] > 0 and total["failures"] == 0
    assert target_models_moto_saw() == {"bidder-0.tar.gz", "bidder-1.tar.gz", "bidder-2.tar.gz"}
