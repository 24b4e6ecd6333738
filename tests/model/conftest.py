"""Shared fixtures: the seed artifact is built once per session, the trained model once too."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from model_testdata import SEED_FEATURES

from model.artifact import Manifest
from model.build import build_artifact
from model.verification import read_reference_csv
from tests.seed import SEED_REFERENCE, SEED_TARBALL


@pytest.fixture(scope="session")
def seed_tarball() -> Path:
    return SEED_TARBALL


@pytest.fixture(scope="session")
def seed_reference() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    return read_reference_csv(SEED_REFERENCE, num_features=7)


@pytest.fixture(scope="session")
def seed_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed's `xgboost-model` (the pickled Booster) as a bare file."""
    target = tmp_path_factory.mktemp("seed-raw")
    with tarfile.open(SEED_TARBALL) as tar:
        member = tar.getmember("xgboost-model")
        source = tar.extractfile(member)
        assert source is not None
        (target / "xgboost-model").write_bytes(source.read())
    return target / "xgboost-model"


@pytest.fixture(scope="session")
def seed_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """The seed built once (compiled, without reference rows): (artifact dir, manifest)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    output = tmp_path_factory.mktemp("seed-artifact") / "artifact"
    manifest = build_artifact(SEED_TARBALL, output_dir=output, feature_names=SEED_FEATURES)
    return output, manifest
