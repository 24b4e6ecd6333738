"""The soak's short CI variant: a real server held at a fixed rate for 20 s, every request counted.

The 10-minute run at 70 % of measured capacity is `python -m benchmark soak` (docs/reliability.md);
this one proves the harness and the zero-error claim on a small scale. Timing figures are printed,
never asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import soak

RATE = 400.0
SECONDS = 20.0


def test_short_soak_loses_nothing_and_reports_every_figure(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "soak.json"
    code = soak.main(
        [
            "--model-dir",
            str(artifact_dir),
            "--duration",
            str(SECONDS),
            "--rps",
            str(RATE),
            "--workers",
            "2",
            "--connections",
            "8",
            "--window",
            "5",
            "--json",
            str(report_path),
        ]
    )
    table = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{table}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["errors"] == 0, report["outcomes"]
    assert set(report["outcomes"]) == {"200"}
    # Paced: never more than scheduled (fewer only if the generator fell behind at the end;
    # its exact accounting is test_traffic.py's subject).
    assert 0 < report["requests"] <= RATE * SECONDS + 1
    assert report["capacity_rps"] is None and report["target_rps"] == RATE
    for window in (report["first"], report["last"]):
        assert window["requests"] > 0 and window["errors"] == 0
        assert window["p50_us"] <= window["p99_us"] <= window["p999_us"]
    assert len(report["memory"]) == 2  # one entry per worker, both alive throughout
    assert all(worker["first_mib"] > 0 for worker in report["memory"])
    assert report["worker_pids_changed"] is False
    assert code == (0 if report["passed"] else 1)
    assert ("PASS" if report["passed"] else "FAIL") in table


def test_soak_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        soak.main(["--model-dir", "/nonexistent", "--duration", "1"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        soak.main(["--model-dir", ".", "--fraction", "1.5"])
    assert exited.value.code == 2
    assert "--fraction" in capsys.readouterr().err
