"""Import, train, compile, verify and package XGBoost models for the RTB inference server.

Importing `model` is cheap: the functions below are loaded on first use, so the server can
import `model.artifact` (stdlib + numpy) without pulling in treelite, tl2cgen or xgboost.

    from model import build_artifact, train_model, describe
    build_artifact("model.tar.gz", output_dir="artifact/")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.artifact import load_verification, read_manifest, verify_files
    from model.build import build_artifact, package_artifact
    from model.errors import ArtifactError, ModelError, SourceError
    from model.inspection import describe
    from model.training import synthesize_bids, train_artifact, train_model

__all__ = [
    "ArtifactError",
    "ModelError",
    "SourceError",
    "build_artifact",
    "describe",
    "load_verification",
    "package_artifact",
    "read_manifest",
    "synthesize_bids",
    "train_artifact",
    "train_model",
    "verify_files",
]

_HOMES = {
    "ArtifactError": "model.errors",
    "ModelError": "model.errors",
    "SourceError": "model.errors",
    "build_artifact": "model.build",
    "package_artifact": "model.build",
    "describe": "model.inspection",
    "load_verification": "model.artifact",
    "read_manifest": "model.artifact",
    "verify_files": "model.artifact",
    "synthesize_bids": "model.training",
    "train_artifact": "model.training",
    "train_model": "model.training",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(__all__)
