"""Serving artifacts written field by field for tests, without `model.build`: the tests pin the
artifact contract of docs/architecture.md, not one producer of it."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model import artifact

CREATED_AT = "2026-11-25T12:00:00Z"


def unpack(archive: Path, directory: Path) -> Path:
    """A `model.tar.gz` unpacked into `directory` (created), as SageMaker fills /opt/ml/model."""
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory


def build_artifact(source: Path, root: Path) -> Path:
    """`python -m model build SOURCE` into `root/model.tar.gz`; the unpacked artifact directory."""
    archive = root / "model.tar.gz"
    built = subprocess.run(
        [sys.executable, "-m", "model", "build", str(source), "--output", str(archive)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, f"python -m model build failed:\n{built.stderr}"
    return unpack(archive, root / "model")


def write_test_manifest(
    directory: Path,
    *,
    compiled: bool,
    source_format: str,
    num_trees: int,
    feature_names: Sequence[str],
    rows: int,
    versions: artifact.Versions,
    tree_limit: artifact.TreeLimitInfo | None = None,
) -> artifact.Manifest:
    """Hash the files of the artifact in `directory` (`model.so` too when `compiled`) and write
    its manifest, for a binary:logistic model with `rows` verification rows."""
    names = ["model.tl", "verification.npz"] + (["model.so"] if compiled else [])
    manifest = artifact.Manifest(
        created_at=CREATED_AT,
        model=artifact.ModelInfo(
            source_format=source_format,
            source_file="model.json",
            source_sha256="0" * 64,
            objective="binary:logistic",
            output_transform="sigmoid",
            base_score=0.5,
            num_trees=num_trees,
            num_features=len(feature_names),
            feature_names=tuple(feature_names),
            bid_threshold=0.5,
            tree_limit=tree_limit
            or artifact.TreeLimitInfo(
                trees_used=num_trees, trees_in_source=num_trees, rule="all trees"
            ),
        ),
        compiled=artifact.CompiledInfo(library="model.so", platform="linux-x86_64", toolchain="gcc")
        if compiled
        else None,
        fallback=artifact.FallbackInfo(checkpoint="model.tl"),
        verification=artifact.VerificationInfo(
            file="verification.npz", rows=rows, tolerance=artifact.Tolerance()
        ),
        versions=versions,
        files={name: artifact.sha256_file(directory / name) for name in names},
    )
    artifact.write_manifest(directory, manifest)
    return manifest


def placeholder_artifact(
    directory: Path, *, compiled: bool = True, rows: int = 3
) -> artifact.Manifest:
    """An artifact whose model files are placeholder bytes: enough to read, hash and verify the
    manifest and its verification set, not to load a model."""
    directory.mkdir(parents=True, exist_ok=True)
    features = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    features[0, 1] = np.nan
    np.savez(directory / "verification.npz", features=features, expected=np.full(rows, 0.25))
    (directory / "model.tl").write_bytes(b"checkpoint")
    if compiled:
        (directory / "model.so").write_bytes(b"library")
    return write_test_manifest(
        directory,
        compiled=compiled,
        source_format="json",
        num_trees=3,
        feature_names=("hour", "domain"),
        rows=rows,
        versions=artifact.Versions(
            python="3.11.7", numpy="2.4.6", treelite="4.8.1", tl2cgen="1.0.0", xgboost=None
        ),
    )
