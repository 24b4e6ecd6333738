"""`python -m benchmark coldstart` against the image under test: it measures every case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.coldstart import CASE_TITLES, main

pytestmark = pytest.mark.container


def test_coldstart_benchmark_reports_size_and_every_case(
    image: str, seed_tarball: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["--image", image, "--seed-model", str(seed_tarball), "--repeat", "1", "--workers", "1"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.search(rf"^image {re.escape(image)}: \d+\.\d MB", out, re.MULTILINE), out
    assert "workers: 1" in out
    for title in CASE_TITLES.values():
        row = re.search(
            rf"^{title}\s+1\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+\d+\.\d$",
            out,
            re.MULTILINE,
        )
        assert row is not None, out
        engine_s, median_s, worst_s = (float(value) for value in row.groups())
        assert 0 < engine_s <= median_s == worst_s, out


def test_coldstart_refuses_a_missing_seed_model_and_bad_counts(tmp_path: Path) -> None:
    assert main(["--seed-model", str(tmp_path / "absent.tar.gz")]) == 2
    assert main(["--repeat", "0", "--cases", "baked"]) == 2
    assert main(["--workers", "0", "--cases", "baked"]) == 2
