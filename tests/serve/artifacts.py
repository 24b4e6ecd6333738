"""Tiny serving artifacts for tests, built directly with xgboost + treelite + tl2cgen.

Independent of `model.build` on purpose: the server's tests pin the artifact contract of
docs/architecture.md, not one producer of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from model.artifact import (
    CompiledInfo,
    FallbackInfo,
    Manifest,
    ModelInfo,
    Tolerance,
    TreeLimitInfo,
    VerificationInfo,
    Versions,
    sha256_file,
    write_manifest,
)

NUM_FEATURES = 4


def training_data(rows: int = 400, *, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, NUM_FEATURES)).astype(np.float32)
    features[rng.random(features.shape) < 0.1] = np.nan
    labels = (np.nan_to_num(features[:, 0]) + np.nan_to_num(features[:, 1]) > 0).astype(int)
    return features, labels


def build_tiny_artifact(output_dir: Path, *, compiled: bool = True) -> Path:
    """Train a 10-tree binary:logistic model, compile it, write the artifact into `output_dir`."""
    import tl2cgen
    import treelite
    import xgboost

    output_dir.mkdir(parents=True, exist_ok=True)
    features, labels = training_data()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(features, label=labels),
        num_boost_round=10,
    )
    model = treelite.frontend.from_xgboost(booster)
    model.serialize(str(output_dir / "model.tl"))
    if compiled:
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(output_dir / "model.so"), params={})
    check = np.ascontiguousarray(features[:64])
    expected = booster.inplace_predict(check).astype(np.float64)
    np.savez(output_dir / "verification.npz", features=check, expected=expected)
    names = ["model.tl", "verification.npz"] + (["model.so"] if compiled else [])
    manifest = Manifest(
        created_at="2026-11-25T12:00:00Z",
        model=ModelInfo(
            source_format="trained",
            source_file="model.json",
            source_sha256="0" * 64,
            objective="binary:logistic",
            output_transform="sigmoid",
            base_score=0.5,
            num_trees=10,
            num_features=NUM_FEATURES,
            feature_names=tuple(f"f{i}" for i in range(NUM_FEATURES)),
            bid_threshold=0.5,
            tree_limit=TreeLimitInfo(trees_used=10, trees_in_source=10, rule="all trees"),
        ),
        compiled=CompiledInfo(library="model.so", platform="linux-x86_64", toolchain="gcc")
        if compiled
        else None,
        fallback=FallbackInfo(checkpoint="model.tl"),
        verification=VerificationInfo(
            file="verification.npz", rows=len(check), tolerance=Tolerance()
        ),
        versions=Versions(
            python="3", numpy=np.__version__, treelite="4", tl2cgen="1", xgboost=None
        ),
        files={name: sha256_file(output_dir / name) for name in names},
    )
    write_manifest(output_dir, manifest)
    booster.save_model(str(output_dir.parent / f"{output_dir.name}-reference.json"))
    return output_dir


def corrupt_expected(artifact: Path, output_dir: Path) -> Path:
    """A copy whose verification set expects other values, with hashes updated to match."""
    shutil.copytree(artifact, output_dir)
    with np.load(output_dir / "verification.npz") as archive:
        features, expected = archive["features"], archive["expected"]
    np.savez(output_dir / "verification.npz", features=features, expected=expected + 0.01)
    manifest_path = output_dir / "manifest.json"
    document = json.loads(manifest_path.read_text())
    document["files"]["verification.npz"] = sha256_file(output_dir / "verification.npz")
    manifest_path.write_text(json.dumps(document))
    return output_dir
