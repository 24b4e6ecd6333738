"""Constants and helpers shared by the tests of `model` (tests/ has no packages: import by name)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model.training import FEATURE_NAMES

SEED_DIR = Path(__file__).resolve().parents[3] / "shared" / "seed-model"
SEED_TARBALL = SEED_DIR / "model.tar.gz"
SEED_REFERENCE = SEED_DIR / "reference.csv"
SEED_FEATURES = FEATURE_NAMES  # the default model is trained on the seed's features

requires_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
