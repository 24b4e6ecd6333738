from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.report import ResultsError, load_run, write_summary
from tests.benchmark.runs import CLIMB, SyntheticStep, write_run


def test_steps_leave_out_the_settle_time_and_count_requests_per_second(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB), settle_seconds=2.0)
    assert [step.users for step in run.steps] == [2, 4, 8]
    first = run.steps[0]
    assert first.seconds == 4.0  # 6 s minus 2 s settling
    assert first.requests == 400
    assert first.rps == pytest.approx(100.0)
    assert first.latency is not None and first.latency.p99 == pytest.approx(500, rel=1e-3)
    assert first.server is not None and first.server.p50 == pytest.approx(100, rel=1e-3)
    assert run.steps[2].latency is not None
    assert run.steps[2].latency.p99 == pytest.approx(20_000, rel=1e-3)


def test_whole_run_and_per_second_figures(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB))
    assert run.total.requests == 6 * (100 + 180 + 200)  # 2,880
    assert run.total.seconds == 18.0
    assert run.total.users == 8
    assert run.total.latency is not None
    assert run.total.latency.p50 == pytest.approx(2_000, rel=1e-3)
    assert run.total.latency.max == pytest.approx(20_000, rel=1e-3)
    assert len(run.seconds) == 18
    assert [s.users for s in run.seconds[:7]] == [2] * 6 + [4]
    assert run.host == "http://127.0.0.1:1"


def test_failures_are_counted_per_step(tmp_path: Path) -> None:
    steps = [SyntheticStep(users=1, seconds=4, rps=10, latency_us=300, failures_per_second=1)]
    run = load_run(write_run(tmp_path, steps), settle_seconds=1.0)
    assert run.total.failures == 4
    assert run.steps[0].failures == 3
    assert run.steps[0].error_rate == pytest.approx(3 / 33)


def test_summary_files_hold_the_figures(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB))
    summary_md = write_summary(run, extra={"capacity": None})
    text = summary_md.read_text()
    assert "| whole run | 160 | 2,000 |" in text  # 2,880 requests in 18 s
    assert "step 3: 8 users" in text
    assert "Server-side time" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["total"]["requests"] == 2880
    assert summary["total"]["latency"]["p99_us"] == pytest.approx(20_000, rel=1e-3)
    percentiles = (tmp_path / "latency_percentiles.csv").read_text().splitlines()
    assert percentiles[0] == "percentile,latency_us,count"
    assert percentiles[-1].endswith(",2880")


def test_a_run_without_server_timing_says_so(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, [SyntheticStep(users=1, seconds=3, rps=5, latency_us=1)]))
    assert run.total.server is None
    assert "no `Server-Timing` header" in write_summary(run).read_text()


def test_missing_or_foreign_results_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="missing"):
        load_run(tmp_path)
    (tmp_path / "latency.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "latency.json").write_text('{"format": "other"}')
    with pytest.raises(ResultsError, match="version 1"):
        load_run(tmp_path)


def test_a_saturated_load_generator_is_flagged(tmp_path: Path) -> None:
    machine = {
        "cpus": 2,
        "load_average_at_start": [0.5, 0.4, 0.3],
        "load_average_at_end": [1.9, 1.0, 0.5],
        "load_generator_cpu_above_90_percent": True,
    }
    steps = [SyntheticStep(users=1, seconds=3, rps=5, latency_us=100)]
    text = write_summary(load_run(write_run(tmp_path, steps, machine=machine))).read_text()
    assert "2 CPU(s), 1-minute load average 0.5 at the start and 1.9 at the end" in text
    assert "**Warning:** a Locust process ran above 90 % CPU" in text
    calm = write_run(
        tmp_path / "calm", steps, machine={**machine, "load_generator_cpu_above_90_percent": False}
    )
    assert "Warning" not in write_summary(load_run(calm)).read_text()


def test_an_interrupted_step_is_left_out_but_its_requests_count(tmp_path: Path) -> None:
    write_run(tmp_path, CLIMB)
    document = json.loads((tmp_path / "latency.json").read_text())
    document["steps"][-1]["end"] = None  # stopped during the last step
    (tmp_path / "latency.json").write_text(json.dumps(document))
    run = load_run(tmp_path)
    assert [step.users for step in run.steps] == [2, 4]
    assert run.total.requests == 2880
    assert run.total.seconds == 18.0  # up to stopped_at
