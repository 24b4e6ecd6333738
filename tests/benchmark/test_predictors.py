from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark import predictors


def test_every_predictor_is_timed_for_every_batch_size(
    default_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact, xgboost_json = default_model
    output = tmp_path / "predictors.json"
    code = predictors.main(
        ["--model-dir", str(artifact), "--xgboost-model", str(xgboost_json)]
        + ["--batch-sizes", "1,10", "--seconds", "0.05", "--output", str(output)]
    )
    assert code == 0
    out = capsys.readouterr().out
    names = [
        "xgboost DMatrix+predict",
        "xgboost inplace_predict",
        "tl2cgen Predictor",
        "treelite GTIL (serve fallback)",
        "serve compiled (ctypes)",
    ]
    for name in names:
        assert f"| {name} |" in out
    assert "(1.0×)" in out  # the baseline against itself
    document = json.loads(output.read_text())
    assert document["baseline"] == "xgboost DMatrix+predict"
    assert {(c["predictor"], c["batch"]) for c in document["cells"]} == {
        (name, batch) for name in names for batch in (1, 10)
    }
    for cell in document["cells"]:
        assert cell["calls"] >= 20
        assert cell["us_per_row"] == pytest.approx(
            cell["median_us_per_call"] / cell["batch"], rel=1e-2
        )
    assert max(document["max_difference"].values()) <= predictors.AGREEMENT_TOLERANCE


def test_without_an_xgboost_model_the_compiled_rows_remain(
    default_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = predictors.main(
        ["--model-dir", str(default_model[0]), "--batch-sizes", "1", "--seconds", "0.02"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "xgboost" not in captured.out
    assert "| serve compiled (ctypes) |" in captured.out
    assert "no --xgboost-model" in captured.err


def test_disagreeing_predictors_are_refused() -> None:
    rows = np.zeros((3, 7), dtype=np.float32)
    found = [
        predictors.Candidate("a", lambda x: np.zeros(len(x))),
        predictors.Candidate("b", lambda x: np.full(len(x), 0.5)),
    ]
    assert predictors.check_agreement(found, rows) == {"a": 0.0, "b": 0.5}


def test_time_cell_counts_calls_and_orders_percentiles() -> None:
    calls, median, p99 = predictors.time_cell(
        lambda x: x.sum(), [np.ones((4, 7), np.float32)], seconds=0.01, min_calls=50
    )
    assert calls >= 50
    assert 0 < median <= p99


def test_render_gives_speed_ups_over_the_baseline() -> None:
    cells = [
        predictors.Cell("slow", 1, 10, median_us=100.0, p99_us=200.0),
        predictors.Cell("fast", 1, 10, median_us=4.0, p99_us=8.0),
        predictors.Cell("slow", 10, 10, median_us=200.0, p99_us=300.0),
        predictors.Cell("fast", 10, 10, median_us=20.0, p99_us=30.0),
    ]
    table = predictors.render(cells, baseline="slow")
    assert "| fast | 4.00 (25.0×) | 2.00 (10.0×) |" in table
    assert "| slow | 100.00 (1.0×) | 20.00 (1.0×) |" in table


@pytest.mark.parametrize(
    "argv",
    [["--batch-sizes", "0"], ["--batch-sizes", "a,b"], ["--seconds", "0"], ["--seconds", "999"]],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        predictors.main(argv)
    assert exit_info.value.code == 2


def test_a_directory_without_manifest_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert predictors.main(["--model-dir", str(tmp_path)]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert predictors.main(["--threads", "0", "--model-dir", str(tmp_path)]) == 2


def test_a_tampered_artifact_is_refused(
    default_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(default_model[0], artifact)
    with (artifact / "model.tl").open("ab") as handle:
        handle.write(b"tampered")
    assert predictors.main(["--model-dir", str(artifact), "--batch-sizes", "1"]) == 1
    assert "model.tl" in capsys.readouterr().err
