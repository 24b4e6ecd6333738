from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from artifacts import build_tiny_artifact


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled 4-feature artifact (skips without gcc)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    return build_tiny_artifact(tmp_path_factory.mktemp("tiny") / "artifact")


@pytest.fixture(scope="session")
def tiny_gtil_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model without a compiled library (`compiled: null`)."""
    return build_tiny_artifact(tmp_path_factory.mktemp("tiny-gtil") / "artifact", compiled=False)
