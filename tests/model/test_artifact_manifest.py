"""The manifest contract of docs/architecture.md: round trip, strict reading, file integrity."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import (
    Tolerance,
    combine_members,
    load_verification,
    manifest_to_dict,
    read_manifest,
    verify_files,
)
from model.errors import IntegrityError, ManifestError, VerificationDataError
from tests.artifacts import placeholder_artifact as _artifact

ROWS = 3


def _rewrite(directory: Path, change: Any) -> None:
    data = json.loads((directory / "manifest.json").read_text())
    change(data)
    (directory / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("compiled", [True, False])
def test_round_trip_and_documented_keys(tmp_path: Path, compiled: bool) -> None:
    manifest = _artifact(tmp_path, compiled=compiled)
    assert read_manifest(tmp_path) == manifest
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert list(data) == [
        "format",
        "format_version",
        "created_at",
        "model",
        "compiled",
        "fallback",
        "ensemble",
        "verification",
        "versions",
        "files",
    ]
    assert data["format"] == "rtb-inference-artifact" and data["format_version"] == 2
    assert (data["compiled"] is None) is not compiled
    assert data == manifest_to_dict(manifest)
    verify_files(tmp_path, manifest)
    features, expected = load_verification(tmp_path, manifest)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert features.shape == (ROWS, 2) and np.isnan(features[0, 1])
    assert expected.dtype == np.float64 and expected.shape == (ROWS,)


def test_format_1_manifests_are_still_read(tmp_path: Path) -> None:
    """Artifacts built before format 2 (single-output, every tree, absolute tolerance)."""
    _artifact(tmp_path)

    def to_version_1(data: dict[str, Any]) -> None:
        data["format_version"] = 1
        for key in ("num_class", "num_outputs", "output_kind", "tree_limit"):
            data["model"].pop(key)
        data["verification"]["tolerance"] = 2e-6

    _rewrite(tmp_path, to_version_1)
    manifest = read_manifest(tmp_path)
    assert manifest.format_version == 1 and manifest.model.tree_limit is None
    assert (manifest.model.num_class, manifest.model.num_outputs) == (0, 1)
    assert manifest.verification.tolerance == Tolerance(absolute=2e-6, relative=0.0)


def test_tolerance_is_absolute_plus_relative() -> None:
    tolerance = Tolerance(absolute=1e-6, relative=1e-6)
    expected = np.array([0.5, 24.0, 24.0, 0.0])
    actual = np.array([0.5 + 1.6e-6, 24.0 + 1.9e-6, 24.0 + 2.6e-5, np.nan])
    assert list(tolerance.excess(actual, expected) <= 0) == [False, True, False, False]


def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"manifest\.json: no manifest.*python -m model build"):
        read_manifest(tmp_path)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match=rf"{tmp_path}/manifest\.json: not valid JSON"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="something-else"), "format is 'something-else'"),
        (lambda d: d.update(format_version=3), "format_version is 3.*reads 1 and 2"),
        (lambda d: d["model"].update(output_kind="x"), "model.output_kind is 'x'"),
        (
            lambda d: d.update(ensemble={"combine": "median", "members": []}),
            "ensemble.combine is 'median'",
        ),
        (
            lambda d: d.update(ensemble={"combine": "mean", "members": []}),
            "ensemble.members must list at least 2 models",
        ),
        (lambda d: d["model"].pop("tree_limit"), "missing key 'model.tree_limit'"),
        (
            lambda d: d["model"]["tree_limit"].update(trees_used=2),
            "trees_used is 2 but model.num_trees is 3",
        ),
        (
            lambda d: d["verification"].update(tolerance=1e-6),
            "tolerance must be a JSON object",
        ),
        (lambda d: d.pop("compiled"), "missing key 'compiled'"),
        (lambda d: d["model"].pop("objective"), "missing key 'model.objective'"),
        (lambda d: d["model"].update(num_features="2"), "model.num_features must be an integer"),
        (lambda d: d["model"].update(feature_names=["x"]), "1 names but model.num_features is 2"),
        (lambda d: d["model"].update(base_score=True), "model.base_score must be a finite"),
        (lambda d: d["model"].update(source_format="onnx"), "source_format is 'onnx'"),
        (lambda d: d["files"].update({"model.so": "abc"}), "not a sha256 hex digest"),
        (lambda d: d["files"].pop("model.tl"), "'model.tl' is referenced but has no sha256"),
        (lambda d: d["fallback"].update(checkpoint="../x.tl"), "not a plain relative path"),
        (lambda d: d["files"].update({"/etc/passwd": "0" * 64}), "not a plain relative path"),
        (lambda d: d.update(model=[]), "model must be a JSON object"),
    ],
)
def test_malformed_manifests_are_refused_with_the_key(
    tmp_path: Path, change: Any, message: str
) -> None:
    _artifact(tmp_path)
    _rewrite(tmp_path, change)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(ManifestError, match="the top level must be a JSON object"):
        read_manifest(tmp_path)


def test_changed_file_is_detected(tmp_path: Path) -> None:
    manifest = _artifact(tmp_path)
    (tmp_path / "model.so").write_bytes(b"libraryX")
    with pytest.raises(IntegrityError, match=r"model\.so: sha256 is .* the manifest says"):
        verify_files(tmp_path, manifest)


def test_missing_file_is_detected(tmp_path: Path) -> None:
    manifest = _artifact(tmp_path)
    (tmp_path / "model.tl").unlink()
    with pytest.raises(IntegrityError, match=r"model\.tl: listed in the manifest but missing"):
        verify_files(tmp_path, manifest)


def test_symlink_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"checkpoint")
    artifact = tmp_path / "artifact"
    manifest = _artifact(artifact)
    (artifact / "model.tl").unlink()
    os.symlink(outside, artifact / "model.tl")
    with pytest.raises(IntegrityError, match="outside the artifact directory"):
        verify_files(artifact, manifest)


def test_escaping_names_are_refused_even_when_constructed_in_code(tmp_path: Path) -> None:
    manifest = _artifact(tmp_path / "a")
    hostile = dataclasses.replace(
        manifest, files={**manifest.files, "../a/model.tl": manifest.files["model.tl"]}
    )
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        verify_files(tmp_path / "a", hostile)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"features": np.zeros((ROWS, 2), np.float64), "expected": np.zeros(ROWS)}, "float32"),
        ({"features": np.zeros((ROWS, 3), np.float32), "expected": np.zeros(ROWS)}, r"\(3, 2\)"),
        ({"features": np.zeros((ROWS, 2), np.float32)}, "expected `features` and `expected`"),
        (
            {"features": np.zeros((ROWS, 2), np.float32), "expected": np.full(ROWS, np.nan)},
            "NaN or infinite",
        ),
        (
            {"features": np.zeros((ROWS, 2), np.float32), "expected": np.zeros(ROWS, np.float32)},
            "expected float64",
        ),
    ],
)
def test_bad_verification_sets_are_refused(
    tmp_path: Path, arrays: dict[str, Any], message: str
) -> None:
    manifest = _artifact(tmp_path)
    np.savez(tmp_path / "verification.npz", **arrays)
    with pytest.raises(VerificationDataError, match=message):
        load_verification(tmp_path, manifest)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    manifest = _artifact(tmp_path)
    objects = np.array([{"a": 1}] * ROWS, dtype=object)
    np.savez(tmp_path / "verification.npz", features=objects, expected=np.zeros(ROWS))
    with pytest.raises(VerificationDataError, match="not a readable numpy .npz"):
        load_verification(tmp_path, manifest)


def test_write_manifest_leaves_no_temporary_files(tmp_path: Path) -> None:
    _artifact(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        "model.so",
        "model.tl",
        "verification.npz",
    ]


def test_the_server_side_imports_stay_light() -> None:
    """`serve` imports `model.artifact`: it must not pull in treelite, tl2cgen or xgboost."""
    import subprocess
    import sys

    code = (
        "import sys, model, model.artifact, model.errors; "
        "from model import read_manifest; "
        "heavy = sorted({'treelite', 'tl2cgen', 'xgboost'} & set(sys.modules)); "
        "print(','.join(heavy))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert run.stdout.strip() == ""


def test_ensembles_combine_by_mean_or_by_the_smallest_most_frequent_value() -> None:
    """The built-in's `np.mean(..., axis=0)` and `scipy.stats.mode(...).mode[0]` (scipy < 1.11,
    the 1.x containers: per row, the smallest value on a tie)."""
    members = [
        np.array([2.0, 1.0, 0.0, 1.0], dtype=np.float32),
        np.array([0.0, 1.0, 2.0, 1.0], dtype=np.float32),
        np.array([1.0, 0.0, 2.0, 2.0], dtype=np.float32),
    ]
    assert combine_members(members, "vote").tolist() == [0.0, 1.0, 2.0, 1.0]
    mean = combine_members(members, "mean")
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean, np.mean(np.stack(members), axis=0))
    probabilities = [np.full((2, 3), 0.2, np.float32), np.full((2, 3), 0.4, np.float32)]
    assert combine_members(probabilities, "mean").shape == (2, 3)
