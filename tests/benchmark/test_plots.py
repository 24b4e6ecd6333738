from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.plots import write_plots
from benchmark.report import load_run
from tests.benchmark.runs import CLIMB, SyntheticStep, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 450)
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")


def test_three_plots_are_valid_pngs(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, CLIMB))
    paths = write_plots(run, p99_bound_ms=10)
    assert [p.name for p in paths] == [
        "latency_over_time.png",
        "throughput_vs_users.png",
        "latency_histogram.png",
    ]
    for path in paths:
        assert_png(path)


@pytest.mark.parametrize(
    "steps",
    [
        [SyntheticStep(users=1, seconds=2, rps=1, latency_us=1)],
        [SyntheticStep(users=1, seconds=2, rps=0, latency_us=1, failures_per_second=3)],
    ],
)
def test_tiny_or_failed_runs_still_plot(tmp_path: Path, steps: list[SyntheticStep]) -> None:
    run = load_run(write_run(tmp_path, steps))
    for path in write_plots(run):
        assert_png(path)
