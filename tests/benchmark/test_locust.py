"""Short real Locust runs (a few seconds of load each) and the command's handling of bad usage."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmark import locust
from benchmark.mme import load_model
from benchmark.server import ServerProcess
from tests.benchmark.command import run_benchmark
from tests.benchmark.usage import refusal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("latency_over_time.png", "throughput_vs_users.png", "latency_histogram.png")


def run_locust(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_benchmark("locust", *args, timeout=240, env={**os.environ, **(env or {})})


def assert_sane_results(output: Path, *, steps: int, server_timing: bool) -> dict[str, object]:
    for name in (
        "latency.json",
        "timeline.jsonl",
        "latency_percentiles.csv",
        "summary.md",
        "summary.json",
        "capacity.json",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust.json",
    ):
        assert (output / name).is_file(), f"{name} is missing"
    for name in PLOTS:
        assert (output / name).read_bytes().startswith(PNG_SIGNATURE), f"{name} is not a PNG"
    summary = json.loads((output / "summary.json").read_text())
    total = summary["total"]
    latency = total["latency"]
    assert total["requests"] > 0
    assert total["failures"] == 0
    assert 0 < latency["p50_us"] <= latency["p90_us"] <= latency["p99_us"]
    assert latency["p99_us"] <= latency["p99_9_us"] <= latency["max_us"]
    assert total["requests_per_second"] > 0
    assert len(summary["steps"]) == steps
    assert all(step["requests"] > 0 for step in summary["steps"])
    if server_timing:
        server = total["server"]
        assert server["count"] == total["requests"]
        # The server's own time is part of what the client waited for.
        assert 0 < server["p50_us"] < latency["p50_us"]
    # Locust's own count agrees with the HDR histogram's (successes + failures).
    stats = json.loads((output / "locust.json").read_text())
    assert sum(entry["num_requests"] for entry in stats) == total["requests"] + total["failures"]
    capacity = json.loads((output / "capacity.json").read_text())
    for key in ("max_invocations_per_minute_per_worker", "p99_bound_ms", "workers"):
        assert key in capacity
    assert capacity["host"] and capacity["measured_at"].endswith("Z")
    return summary


@pytest.mark.slow
def test_local_run_against_the_server(serve_url: str, tmp_path: Path) -> None:
    output = tmp_path / "local"
    result = run_locust(
        "--host", serve_url, "--users", "2", "--duration", "3s", "--output", str(output),
        "--p99-bound", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = assert_sane_results(output, steps=1, server_timing=True)
    assert "| whole run |" in result.stdout
    assert "Locust finished in" in result.stderr  # progress goes to stderr
    capacity = json.loads((output / "capacity.json").read_text())
    assert capacity["within_bound"] is True
    assert capacity["max_invocations_per_minute_per_worker"] > 0
    assert summary["config"]["workers"] == 0


@pytest.fixture(scope="module")
def multi_model_url(
    default_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The server in multi-model mode, the default model loaded as model-0, model-1, model-2."""
    directory = tmp_path_factory.mktemp("multi-model")
    (directory / "no-model").mkdir()
    env = {"SAGEMAKER_MULTI_MODEL": "true", "TMPDIR": str(directory)}
    log = directory / "server.log"
    with ServerProcess(model_dir=directory / "no-model", log_path=log, env=env) as server:
        server.wait_healthy()
        for index in range(3):
            load_model(server.port, f"model-{index}", default_model[0])
        yield server.base_url


@pytest.mark.slow
def test_a_run_spread_over_the_models_of_a_multi_model_endpoint(
    multi_model_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "mme"
    result = run_locust(
        "--host", multi_model_url, "--users", "2", "--duration", "3s", "--output", str(output),
        "--models", "4", "--spread", "zipf",  # model-3 is not loaded: 404 model_not_found
    )  # fmt: skip
    assert result.returncode == 1
    summary = json.loads((output / "summary.json").read_text())
    assert summary["config"]["models"] == 4
    assert summary["config"]["spread"] == "4 models, zipf s=1"
    total = summary["total"]
    assert total["requests"] > 0 and total["failures"] > 0
    assert total["requests"] > total["failures"]  # model-3 is the least requested of the four
    failures = list(csv.DictReader((output / "locust_failures.csv").read_text().splitlines()))
    assert [row["Name"] for row in failures] == ["/models/{name}/invoke"]
    assert "HTTP 404" in failures[0]["Error"] and "model-3" in failures[0]["Error"]
    stats = json.loads((output / "locust.json").read_text())
    assert [entry["name"] for entry in stats] == ["/models/{name}/invoke"]


@pytest.mark.slow
def test_distributed_step_run_merges_the_workers_histograms(serve_url: str, tmp_path: Path) -> None:
    output = tmp_path / "distributed"
    result = run_locust(
        "--host", serve_url, "--users", "4", "--step-users", "2", "--step-duration", "3s",
        "--workers", "2", "--output", str(output), "--batch-size", "5",
        "--content-type", "application/json", "--accept", "application/json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = assert_sane_results(output, steps=2, server_timing=True)
    assert [step["users"] for step in summary["steps"]] == [2, 4]
    assert summary["config"]["workers"] == 2
    assert summary["config"]["rows_per_request"] == 5
    assert (output / "locust-worker-1.log").exists() and (output / "locust-worker-2.log").exists()


@pytest.mark.slow
def test_npy_batches_from_reference_rows(serve_url: str, tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text("dow,hour,a,b,c,d,e,probability\n2,0,0,7,3,20,2,0.1\n,1,1,1,1,1,1,0.2\n")
    output = tmp_path / "npy"
    result = run_locust(
        "--host", serve_url, "--users", "1", "--duration", "2s", "--output", str(output),
        "--content-type", "application/x-npy", "--batch-size", "3", "--p99-bound", "1000",
        "--reference", str(reference),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert_sane_results(output, steps=1, server_timing=True)


@pytest.mark.slow
def test_invalid_answers_are_counted_as_failures(
    scoring_server: Callable[..., str], tmp_path: Path
) -> None:
    url = scoring_server("1.5")  # every score outside [0, 1]
    output = tmp_path / "bad"
    result = run_locust("--host", url, "--users", "1", "--duration", "2s", "--output", str(output))
    assert result.returncode == 1
    summary = json.loads((output / "summary.json").read_text())
    assert summary["total"]["failures"] > 0
    assert summary["total"]["requests"] == 0
    assert "outside [0, 1]" in (output / "locust_failures.csv").read_text()
    assert "request(s) failed" in result.stderr


@pytest.mark.slow
def test_open_loop_counts_real_requests_not_corrected_samples(
    scoring_server: Callable[..., str], tmp_path: Path
) -> None:
    output = tmp_path / "open"
    result = run_locust(
        "--host", scoring_server(), "--users", "2", "--duration", "2s", "--rate-per-user", "20",
        "--output", str(output), "--p99-bound", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = assert_sane_results(output, steps=1, server_timing=True)
    assert summary["config"]["rate_per_user"] == 20
    assert summary["total"]["latency"]["count"] >= summary["total"]["requests"]


@pytest.mark.slow
def test_unreachable_server_fails_cleanly(tmp_path: Path) -> None:
    from benchmark.server import free_port

    output = tmp_path / "down"
    url = f"http://127.0.0.1:{free_port()}"
    result = run_locust("--host", url, "--users", "1", "--duration", "2s", "--output", str(output))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert json.loads((output / "summary.json").read_text())["total"]["failures"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exactly one of --host"),
        (["--host", "127.0.0.1:8080"], "http:// or https://"),
        (["--host", "http://x", "--endpoint-name", "e"], "exactly one of --host"),
        (["--host", "http://x", "--users", "0"], "must be >= 1"),
        (["--host", "http://x", "--duration", "soon"], "invalid duration"),
        (["--host", "http://x", "--step-users", "9", "--users", "4"], "exceeds --users"),
        (["--host", "http://x", "--step-duration", "5s"], "needs --step-users"),
        (
            [
                "--host",
                "http://x",
                "--step-users",
                "1",
                "--duration",
                "4s",
                "--step-duration",
                "2s",
            ],
            "not both",
        ),
        (["--host", "http://x", "--content-type", "text/plain"], "invalid choice"),
        (["--host", "http://x", "--duration", "2s", "--settle", "5"], "shorter than a step"),
        (["--host", "http://x", "--workers", "-1"], "must be >= 0"),
        (["--host", "http://x", "--reference", "/nonexistent.csv"], "--reference"),
        (["--host", "http://x", "--batch-size", "10000", "--payloads", "1000"], "up front"),
        (["--endpoint-name", "e"], "needs --region"),
        (["--host", "http://x", "--spread", "zipf"], "--spread needs --models N"),
        (["--host", "http://x", "--models", "3", "--zipf-exponent", "2"], "needs --spread zipf"),
        (["--host", "http://x", "--models", "3", "--model-names", "m"], "the same name"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    assert message in refusal(locust.main, argv, capsys)


def test_a_used_output_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.txt").write_text("previous results")
    with pytest.raises(SystemExit):
        locust.main(["--host", "http://x", "--output", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_capacity_runs_its_own_step_load(
    scoring_server: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark import capacity

    output = tmp_path / "capacity-run"
    code = capacity.main(
        ["--host", scoring_server(), "--users", "2", "--step-users", "1", "--step-duration", "2s"]
        + ["--output", str(output), "--p99-bound", "1000", "--price-per-hour", "0.5"]
    )
    assert code == 0
    document = json.loads((output / "capacity.json").read_text())
    assert document["within_bound"] is True
    assert document["steps_measured"] == 2
    assert document["max_invocations_per_minute_per_worker"] > 0
    assert document["cost"]["price_per_hour"] == 0.5
    assert document["cost"]["cost_per_million_invocations"] > 0
    assert "per million inferences" in capsys.readouterr().out
