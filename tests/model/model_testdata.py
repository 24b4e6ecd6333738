"""Constants and helpers shared by the tests of `model` (tests/ has no packages: import by name)."""

from __future__ import annotations

import shutil

import pytest

from model.training import FEATURE_NAMES

SEED_FEATURES = FEATURE_NAMES  # the default model is trained on the seed's features

requires_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
