"""`python -m benchmark bulk`: the baseline server is a faithful xgboost server, the report and
the verdicts follow the measurements, and `--quick` runs end to end with both charts.

No timing is asserted: the machine is shared. The figures live in docs/benchmark.md.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmark import bulk
from benchmark.bulk import (
    ACCEPT,
    BULK_ROWS,
    Endpoint,
    Results,
    agreement,
    baseline_decode,
    baseline_encode,
    make_request,
    median_run,
    read_scores,
    render,
    verdicts,
    xgboost_app,
)
from benchmark.http import Measurement
from benchmark.payloads import CONTENT_TYPES, CSV, JSON, LIBSVM, NPY, RECORDIO, make_rows
from tests.benchmark.command import run_benchmark


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_the_baseline_decodes_every_body_to_the_rows(content_type: str) -> None:
    rows = make_rows(5, seed=3, missing_rate=0.0)
    body = make_request(content_type, 5, seed=3).body
    np.testing.assert_array_equal(baseline_decode(content_type, body), rows)


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_our_reader_reads_what_the_baseline_writes(content_type: str) -> None:
    scores = np.array([0.25, 0.125, 1e-7], dtype=np.float32)
    body, media_type = baseline_encode(ACCEPT[content_type], scores)
    assert media_type == ACCEPT[content_type]
    np.testing.assert_allclose(read_scores(media_type, body), scores, rtol=1e-7)


@pytest.mark.parametrize("content_type", [LIBSVM, RECORDIO])
def test_a_single_libsvm_or_recordio_row_is_the_single_csv_row(content_type: str) -> None:
    """The 1-row figures compare like with like: the same row in each format."""
    single = make_request(content_type, 1)
    assert single.accept == CSV
    np.testing.assert_array_equal(
        baseline_decode(content_type, single.body), baseline_decode(CSV, make_request(CSV, 1).body)
    )


def test_the_baseline_server_predicts_what_xgboost_predicts(
    default_model: tuple[Path, Path],
) -> None:
    import xgboost

    _, model_file = default_model
    request = make_request(JSON, 20)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=xgboost_app(model_file))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"content-type": JSON, "accept": JSON}
            return await client.post("/invocations", content=request.body, headers=headers)

    response = asyncio.run(post())
    assert response.status_code == 200
    booster = xgboost.Booster(model_file=str(model_file))
    features = make_rows(20, missing_rate=0.0)
    expected = booster.predict(xgboost.DMatrix(features, feature_names=booster.feature_names))
    np.testing.assert_allclose(read_scores(JSON, response.content), expected, rtol=1e-6)


def test_servers_that_disagree_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {1: b"0.25\n0.5", 2: b"0.25\n0.5000001", 3: b"0.25\n0.6"}
    monkeypatch.setattr(bulk, "post", lambda endpoint, request: (200, answers[endpoint.port]))
    request = make_request(CSV, 2)
    endpoints = [Endpoint(name, port, 0) for name, port in (("a", 1), ("b", 2), ("c", 3))]
    assert agreement(endpoints[:2], [request]) == pytest.approx(1e-7, rel=1e-3)
    with pytest.raises(RuntimeError, match="differ by 1.00e-01"):
        agreement([endpoints[0], endpoints[2]], [request])


def measurement(rate: float) -> Measurement:
    return Measurement(requests=int(rate), seconds=1.0, p50_us=100.0, p99_us=200.0, errors=0)


def results_with(serve_rate: float, xgboost_rate: float) -> Results:
    results = Results(rows=(100, BULK_ROWS), content_types=(CSV, NPY), connections=8, seconds=1.0)
    for content_type in results.content_types:
        for rows in results.rows:
            results.sweep[(content_type, rows, "serve")] = measurement(serve_rate)
            results.sweep[(content_type, rows, "xgboost")] = measurement(xgboost_rate)
        results.stages[content_type] = (50.0, 200.0, 30.0)
    return results


def test_verdicts_follow_the_measurements() -> None:
    # 2,500 requests/s of 1,000 rows: 0.4 µs a row; 5x xgboost.
    passing = verdicts(results_with(2_500, 500))
    assert passing and all(passed for *_, passed in passing)
    assert {what for what, *_ in passing} >= {
        "csv: µs a row at 1,000 rows, serve",
        "npy: rows/s at 100 rows, serve / xgboost",
        "csv: encode / predict at 1,000 rows",
    }
    failing = {what: passed for what, _, _, passed in verdicts(results_with(1_500, 500))}
    assert not failing["csv: µs a row at 1,000 rows, serve"]  # 0.67 µs a row
    assert not failing["csv: rows/s at 1,000 rows, serve / xgboost"]  # 3x
    assert failing["csv: rows/s at 100 rows, serve / xgboost"]  # 3x is enough at 100 rows


def test_libsvm_and_recordio_are_held_to_a_csv_rows_cost() -> None:
    results = Results(
        rows=(1, BULK_ROWS), content_types=(CSV, LIBSVM, RECORDIO), connections=8, seconds=1.0
    )
    rates = {CSV: (18_000, 2_800), LIBSVM: (15_000, 140), RECORDIO: (12_000, 1_800)}
    for content_type, (single, bulk_rate) in rates.items():
        results.sweep[(content_type, 1, "serve")] = measurement(single)
        results.sweep[(content_type, BULK_ROWS, "serve")] = measurement(bulk_rate)
        for rows in results.rows:
            results.sweep[(content_type, rows, "xgboost")] = measurement(100)
    found = {what: (value, passed) for what, value, _, passed in verdicts(results)}
    assert found["libsvm: cost a row / CSV's at 1 rows, serve"] == (1.2, True)
    assert found["recordio: cost a row / CSV's at 1 rows, serve"] == (1.5, True)
    assert found["libsvm: cost a row / CSV's at 1,000 rows, serve"] == (20.0, False)
    assert not found["recordio: cost a row / CSV's at 1,000 rows, serve"][1]  # 1.56x
    assert not any(what.startswith(("libsvm: rows/s", "libsvm: µs")) for what in found)
    assert "csv: µs a row at 1,000 rows, serve" in found


def test_each_cell_is_the_run_of_median_rate() -> None:
    runs = [measurement(rate) for rate in (300, 100, 200)]
    assert median_run(runs) is runs[2]
    assert median_run(runs[:2]).rate == 100  # the lower of an even count


def test_render_prints_every_cell() -> None:
    out = render(results_with(2_500, 500))
    row = next(line for line in out.splitlines() if line.startswith("| text/csv | 1,000 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2:5] == ["2,500,000", "500,000", "5.00"]
    assert cells[-1] == "0.40"


@pytest.mark.slow
def test_quick_run_prints_the_tables_verdicts_and_charts(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian package wrk)")
    charts = ("--charts", str(tmp_path))
    result = run_benchmark(
        "bulk", "--quick", "--types", "csv,npy", *charts, "--workers", "2", timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for content_type in ("text/csv", "application/x-npy"):
        for rows in ("1", "1,000"):
            row = next(
                line for line in out.splitlines() if line.startswith(f"| {content_type} | {rows} |")
            )
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            assert float(cells[2].replace(",", "")) > 0 and float(cells[3].replace(",", "")) > 0
    verdict_rows = re.findall(r"^\| (.+?) \| [\d.]+ \| .+? \| (PASS|FAIL) \|$", out, re.MULTILINE)
    assert len(verdict_rows) == 2 * 3  # per type: µs a row, ratio at 1,000, encode share
    assert "| serve | 2 |" in out and "| floor | 2 |" in out
    assert "errors (non-2xx or socket) over all runs: 0" in out
    assert "scores agree" in out
    assert (tmp_path / "bulk-sweep.png").stat().st_size > 0
    assert (tmp_path / "bulk-single-row-latency.png").stat().st_size > 0


def test_help() -> None:
    result = run_benchmark("bulk", "--help", timeout=60)
    assert result.returncode == 0
    assert "--rows" in result.stdout and "--quick" in result.stdout
