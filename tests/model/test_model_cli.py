"""`python -m model`: train, build, inspect; exit codes 0 / 1 / 2; results on stdout."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from model_testdata import SEED_FEATURES, requires_gcc

from model.artifact import read_manifest
from model.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [[], ["train"], ["build"], ["inspect"]])
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    assert "usage: python -m model" in capsys.readouterr().out


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["build", "x", "--output", "y", "--units", "0"])
    assert caught.value.code == 2
    assert "not a positive integer" in capsys.readouterr().err


@requires_gcc
def test_build_then_inspect_the_seed(
    seed_tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "model.tar.gz"
    code = main(
        [
            "build",
            str(seed_tarball),
            "--output",
            str(output),
            "--feature-names",
            ",".join(SEED_FEATURES),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {output}" in captured.out
    assert "compile model.so" in captured.err and "artifact built in" in captured.err
    with tarfile.open(output) as tar:
        assert tar.getnames() == ["manifest.json", "model.so", "model.tl", "verification.npz"]

    assert main(["inspect", str(output)]) == 0
    text = capsys.readouterr().out
    assert "serving artifact" in text and "binary:logistic" in text
    assert "dow, hour, IndexAdvertiserID" in text and "  ok" in text

    assert main(["inspect", str(output), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["kind"] == "artifact" and described["files_verified"] is True
    assert described["manifest"]["model"]["num_trees"] == 50


def test_build_to_a_directory_without_compiling(
    seed_tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["build", str(seed_tarball), "--output", str(tmp_path / "dir"), "--no-compile", "--quiet"]
    )
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert read_manifest(tmp_path / "dir").compiled is None
    assert "no: the server predicts with treelite GTIL" in captured.out


def test_inspect_a_raw_sagemaker_artifact(
    seed_tarball: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(seed_tarball)]) == 0
    text = capsys.readouterr().out
    assert "raw XGBoost model (xgboost-model inside)" in text
    assert "pickled xgboost Booster" in text and "python -m model build" in text
    assert main(["inspect", str(seed_tarball), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["kind"] == "source" and described["source_format"] == "sagemaker-pickle"
    assert described["num_trees"] == 50 and described["xgboost_version"] == "1.2.0"


def test_failures_exit_1_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "xgboost-model"
    evil.write_bytes(pickle.dumps(Evil()))
    assert main(["build", str(evil), "--output", str(tmp_path / "o.tar.gz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "system" in err and str(evil) in err
    assert not marker.exists() and not (tmp_path / "o.tar.gz").exists()
    assert main(["inspect", str(tmp_path / "missing")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


@requires_gcc
def test_train_as_the_makefile_runs_it(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    output = tmp_path / "build" / "default-model.tar.gz"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "model",
            "train",
            "--output",
            str(output),
            "--rows",
            "20000",
            "--parity-rows",
            "10000",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert output.is_file()
    assert (tmp_path / "build" / "default-model.xgboost.json").is_file()
    assert "held-out rows: 10,000" in run.stdout
    assert "train 50 rounds" in run.stderr


def test_inspect_refuses_a_tampered_artifact(
    seed_tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "artifact"
    assert (
        main(["build", str(seed_tarball), "--output", str(directory), "--no-compile", "--quiet"])
        == 0
    )
    with open(directory / "verification.npz", "ab") as handle:
        handle.write(b"\0")
    capsys.readouterr()
    assert main(["inspect", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "verification.npz: sha256 is" in err and "rebuild the artifact" in err


@requires_gcc
def test_builds_are_reproducible_with_source_date_epoch(
    seed_tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764072000")
    first, second = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    assert main(["build", str(seed_tarball), "--output", str(first), "--quiet"]) == 0
    assert main(["build", str(seed_tarball), "--output", str(second), "--quiet"]) == 0
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        assert json.loads(manifest_file.read())["created_at"] == "2025-11-25T12:00:00Z"


def test_a_bad_source_date_epoch_is_reported(
    seed_tarball: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert main(["build", str(seed_tarball), "--output", str(tmp_path / "o"), "--no-compile"]) == 1
    assert "SOURCE_DATE_EPOCH='yesterday'" in capsys.readouterr().err
