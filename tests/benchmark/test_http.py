"""`python -m benchmark http --quick` runs end to end and prints a well-formed table.

No timing is asserted: the machine is shared. The figures live in docs/serve.md.
"""

from __future__ import annotations

import re
import shutil

import pytest

from benchmark import http
from benchmark.spread import SEQUENCE_LENGTH, ModelSpread
from tests.benchmark.command import run_benchmark

SPREAD = ("--models", "3", "--spread", "zipf")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("client", "spread"),
    [("python", ()), ("wrk", ()), ("python", SPREAD), ("wrk", SPREAD)],
    ids=["python", "wrk", "python-multi-model", "wrk-multi-model"],
)
def test_quick_run_prints_the_table_and_four_verdicts(client: str, spread: tuple[str, ...]) -> None:
    if client == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian package wrk)")
    result = run_benchmark(
        "http", "--quick", "--connections", "8", "--client", client, *spread, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    if spread:  # every request to /models/{name}/invoke was answered 200 (errors below)
        assert "POST /models/{name}/invoke over 3 models, zipf s=1" in out
    else:
        assert "single-row CSV POST /invocations" in out
    for label in (
        "floor (raw ASGI constant)",
        "serve, compiled (ctypes)",
        "xgboost inplace_predict",
    ):
        row = next(line for line in out.splitlines() if label in line)
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 7, row
        p50, p99, rate, rss, cold, errors = cells[1:]
        assert float(p50) > 0 and float(p99) >= float(p50) and float(rate) > 0
        assert float(rss) > 0 and float(cold) > 0
        assert errors == "0", row  # every request answered 200
    verdicts = re.findall(r"^\| (.+?) \| ([\d.]+) \| (.+?) \| (PASS|FAIL) \|$", out, re.MULTILINE)
    assert [v[0] for v in verdicts] == [
        "p50 @1 conn, compiled / floor",
        "p99 @1 conn, compiled (µs)",
        "throughput, compiled / floor",
        "throughput, compiled / xgboost",
    ]
    assert f"load: {client}" in out
    assert "started compiled" in result.stderr  # progress goes to stderr, results to stdout


def test_requests_spread_over_the_models_except_to_the_single_model_xgboost() -> None:
    spread = ModelSpread(models=4, spread="zipf", seed=2)
    expected = [f"/models/model-{i}/invoke" for i in spread.sequence(SEQUENCE_LENGTH)]
    assert http.request_paths("compiled", spread) == expected
    assert http.request_paths("floor", spread) == expected
    assert http.request_paths("xgboost", spread) == ["/invocations"]
    assert http.request_paths("compiled", None) == ["/invocations"]


@pytest.mark.slow
def test_help() -> None:
    result = run_benchmark("http", "--help", timeout=60)
    assert result.returncode == 0
    assert "--model-dir" in result.stdout and "--quick" in result.stdout
