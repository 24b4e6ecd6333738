"""Constants and helpers shared by the tests of `model` (tests/ has no packages: import by name)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SEED_DIR = Path(__file__).resolve().parents[3] / "shared" / "seed-model"
SEED_TARBALL = SEED_DIR / "model.tar.gz"
SEED_REFERENCE = SEED_DIR / "reference.csv"
SEED_FEATURES = (
    "dow",
    "hour",
    "IndexAdvertiserID",
    "IndexDomain",
    "IndexRegionID",
    "IndexCityID",
    "device_type_id",
)

requires_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
