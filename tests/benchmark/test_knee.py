from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.knee import estimate, knee
from benchmark.report import load_run
from tests.benchmark.runs import CLIMB, SyntheticStep, write_run


def test_knee_is_the_fastest_step_within_the_bound(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB))
    assert knee(run.steps, p99_bound_ms=10) == run.steps[1]
    assert knee(run.steps, p99_bound_ms=50) == run.steps[2]
    assert knee(run.steps, p99_bound_ms=0.1) is None


def test_steps_with_errors_are_not_the_knee(tmp_path: Path) -> None:
    steps = [
        SyntheticStep(users=1, seconds=4, rps=50, latency_us=300),
        SyntheticStep(users=2, seconds=4, rps=90, latency_us=300, failures_per_second=1),
    ]
    run = load_run(write_run(tmp_path, steps))
    assert knee(run.steps, p99_bound_ms=10) == run.steps[0]
    assert knee(run.steps, p99_bound_ms=10, max_error_rate=0.05) == run.steps[1]


def test_estimate_divides_by_server_workers(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB))
    document = estimate(run, p99_bound_ms=10, workers=2).as_dict()
    assert document["max_invocations_per_minute"] == pytest.approx(180 * 60)
    assert document["max_invocations_per_minute_per_worker"] == pytest.approx(90 * 60)
    assert document["workers"] == 2
    assert document["users"] == 4
    assert document["within_bound"] is True
    assert document["measured_at"] == "2027-01-15T08:00:00Z"
    assert document["host"] == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        estimate(run, p99_bound_ms=10, workers=0)
