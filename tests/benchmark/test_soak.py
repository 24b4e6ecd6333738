"""`benchmark soak` options, request bodies and report, without a server (the run is in
tests/reliability/test_soak.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark import soak
from benchmark.payloads import CSV, JSON, NPY, RECORDIO, encode_rows, make_rows


def _split(request: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return headers, body


def _body_rows(body: bytes, content_type: str) -> int:
    if content_type == CSV:
        return len(body.decode().splitlines())
    if content_type == JSON:
        return len(json.loads(body)["instances"])
    assert content_type == NPY
    return int(np.load(io.BytesIO(body)).shape[0])


def test_default_requests_are_the_single_row_csv_requests() -> None:
    requests = soak.soak_requests(1000)
    rows = make_rows(1000, seed=7)
    assert len(requests) == 1000
    for index in (0, 1, 999):
        headers, body = _split(requests[index])
        assert headers["Content-Type"] == CSV and headers["Accept"] == CSV
        assert int(headers["Content-Length"]) == len(body)
        assert body == encode_rows(rows[index : index + 1], CSV)


@pytest.mark.parametrize("content_type", [CSV, JSON, NPY])
def test_bulk_requests_carry_the_asked_rows_in_a_few_distinct_bodies(content_type: str) -> None:
    requests = soak.soak_requests(1000, rows=1000, content_type=content_type)
    assert len(requests) == soak.DISTINCT_ROWS // 1000
    bodies = []
    for request in requests:
        headers, body = _split(request)
        assert headers["Content-Type"] == content_type and headers["Accept"] == CSV
        assert int(headers["Content-Length"]) == len(body)
        assert _body_rows(body, content_type) == 1000
        bodies.append(body)
    assert len(set(bodies)) == len(bodies)


def test_rows_beyond_the_budget_still_make_one_body() -> None:
    requests = soak.soak_requests(1000, rows=soak.DISTINCT_ROWS * 2)
    assert len(requests) == 1
    assert _body_rows(_split(requests[0])[1], CSV) == soak.DISTINCT_ROWS * 2


def test_bulk_options_reach_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[soak.SoakOptions] = []

    def fake_run(options: soak.SoakOptions, **_: Any) -> soak.SoakReport:
        seen.append(options)
        return _report(rows=options.rows, growth_mib=(1.0, 2.0), bound=options.max_rss_growth_mib)

    monkeypatch.setattr(soak, "run_soak", fake_run)
    argv = ["--model-dir", str(tmp_path), "--rows", "1000", "--content-type", RECORDIO]
    assert soak.main([*argv, "--max-rss-growth-mib", "10"]) == 0
    assert seen[-1].rows == 1000 and seen[-1].content_type == RECORDIO
    assert seen[-1].max_rss_growth_mib == 10.0
    assert soak.main(["--model-dir", str(tmp_path)]) == 0
    assert seen[-1].rows == 1 and seen[-1].content_type == CSV
    assert seen[-1].max_rss_growth_mib is None


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--rows", "0"], "--rows"),
        (["--content-type", "text/plain"], "--content-type"),
        (["--max-rss-growth-mib", "-1"], "--max-rss-growth-mib"),
    ],
)
def test_bad_bulk_options_are_refused(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        soak.main(["--model-dir", ".", *argv])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def _report(*, rows: int, growth_mib: tuple[float, float], bound: float | None) -> soak.SoakReport:
    window = soak.WindowFigures(
        start_s=0.0, seconds=60.0, requests=100, errors=0, p50_us=1.0, p99_us=2.0, p999_us=3.0
    )
    return soak.SoakReport(
        workers=2,
        rows_per_request=rows,
        content_type=CSV,
        capacity_rps=200.0,
        target_rps=100.0,
        achieved_rps=100.0,
        duration_s=600.0,
        requests=60_000,
        outcomes={"200": 60_000},
        errors=0,
        send_lag_p99_ms=1.0,
        sent_late=0,
        first=window,
        last=window,
        memory=[
            soak.WorkerMemory(pid=10 + i, first_mib=500.0, last_mib=500.0 + grown)
            for i, grown in enumerate(growth_mib)
        ],
        worker_pids_changed=False,
        max_rss_growth=0.05,
        max_rss_growth_mib=bound,
    )


def test_bulk_report_counts_rows_and_judges_the_absolute_bound() -> None:
    within = _report(rows=1000, growth_mib=(0.5, 9.5), bound=10.0)
    assert within.rows == 60_000_000
    assert within.achieved_rows_per_s == 100_000.0 and within.capacity_rows_per_s == 200_000.0
    assert within.memory_within_mib is True and within.passed
    table = soak.render(within)
    assert "| achieved rate | 100 req/s (100,000 rows/s) |" in table
    assert "| rows scored | 60,000,000 |" in table
    assert "+9.5 MiB" in table
    assert "at most 10 MiB per worker met" in table
    data = within.to_json()
    assert data["achieved_rows_per_s"] == 100_000.0 and data["memory_within_mib"] is True
    assert [w["growth_mib"] for w in data["memory"]] == [0.5, 9.5]

    # 12 MiB on 500 MiB is under the 5 % bound but over the absolute one: the run fails.
    over = _report(rows=1000, growth_mib=(0.5, 12.0), bound=10.0)
    assert over.memory_stable and over.memory_within_mib is False and not over.passed
    assert "at most 10 MiB per worker not met" in soak.render(over)
    assert soak.render(over).startswith("soak:") and "FAIL" in soak.render(over)


def test_single_row_report_without_a_mib_bound_reads_as_before() -> None:
    report = _report(rows=1, growth_mib=(12.0, 12.0), bound=None)
    assert report.memory_within_mib is None and report.passed
    table = soak.render(report)
    assert "rows/s" not in table and "rows scored" not in table and "| request |" not in table
    assert "MiB per worker" not in table
    assert "| achieved rate | 100 req/s |" in table
