from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import capacity, knee
from benchmark.report import load_run
from tests.benchmark.runs import CLIMB, write_run


def test_cost_per_million(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB, config={"rows_per_request": 10}))
    estimate = knee.estimate(run, p99_bound_ms=10, workers=1)
    cost = capacity.Cost(price_per_hour=0.36, workers_per_instance=2, instance_type=None)
    # 180 req/s per worker, 2 workers: 1,296,000 invocations per hour for $0.36.
    assert cost.invocations_per_hour(estimate) == pytest.approx(1_296_000)
    assert cost.per_million_invocations(estimate) == pytest.approx(0.36 / 1.296)
    assert cost.per_million_rows(estimate) == pytest.approx(0.36 / 12.96)


def test_cli_reads_a_results_directory_and_writes_capacity_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_run(tmp_path / "run", CLIMB)
    code = capacity.main(
        ["--results", str(results), "--p99-bound", "10", "--instance-type", "ml.c5.xlarge"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "knee: 4 user(s), 180 req/s" in out
    assert "per million inferences" in out
    document = json.loads((results / "capacity.json").read_text())
    assert document["max_invocations_per_minute_per_worker"] == pytest.approx(10_800)
    assert document["p99_bound_ms"] == 10
    assert document["cost"]["instance_type"] == "ml.c5.xlarge"
    assert document["cost"]["workers_per_instance"] == 4  # its vCPUs
    assert "check https://aws.amazon.com/sagemaker/pricing/" in document["cost"]["price_source"]


def test_cli_reports_no_capacity_when_nothing_meets_the_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_run(tmp_path / "run", CLIMB)
    output = tmp_path / "cap.json"
    code = capacity.main(
        ["--results", str(results), "--p99-bound", "0.1", "--capacity-file", str(output)]
    )
    assert code == 1
    assert "no capacity at this bound" in capsys.readouterr().out
    assert json.loads(output.read_text())["within_bound"] is False


def test_cli_lists_the_example_instances(capsys: pytest.CaptureFixture[str]) -> None:
    assert capacity.main(["--list-instances"]) == 0
    out = capsys.readouterr().out
    assert "ml.c5.large" in out and capacity.PRICES_AS_OF in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--results", "x", "--p99-bound", "-1"],
        ["--results", "x", "--p99-bound", "nan"],
        ["--results", "x", "--server-workers", "0"],
        ["--results", "x", "--instance-type", "ml.z9.huge"],
        ["--results", "x", "--price-per-hour", "1", "--instance-type", "ml.c5.large"],
        ["--results", "x", "--max-error-rate", "2"],
        ["--results", "x", "--users", "3"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        capacity.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_missing_results_directory_is_an_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert capacity.main(["--results", str(tmp_path / "nowhere")]) == 1
    assert "is missing" in capsys.readouterr().err


def test_benchmark_recommend_reads_the_capacity_file(tmp_path: Path) -> None:
    from benchmark.recommender.estimate import load_estimate

    results = write_run(tmp_path / "run", CLIMB)
    assert capacity.main(["--results", str(results), "--server-workers", "2"]) == 0
    estimate = load_estimate(results / "capacity.json")
    assert estimate.max_invocations_per_minute_per_worker == pytest.approx(5_400)
    assert estimate.max_invocations_per_minute == pytest.approx(10_800)
    assert estimate.workers == 2


def test_locust_options_pass_through_untouched() -> None:
    args, rest = capacity.build_parser().parse_known_args(
        ["--host", "http://x", "--workers", "2", "--p99-bound", "5", "--users", "8"]
    )
    assert rest == ["--host", "http://x", "--workers", "2", "--users", "8"]
    assert args.p99_bound == 5 and args.workers_per_instance is None
