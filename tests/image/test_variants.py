"""The `RUNTIME_COMPILER=none` build: no compiler in the image, raw models served through GTIL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import RunServer, matches_reference, seed_answers, served
from .test_image import run_to_completion

pytestmark = pytest.mark.container


def test_no_compiler_image_is_smaller_and_has_no_compiler(
    engine: Any, image: str, image_without_compiler: str
) -> None:
    full = engine.images.get(image).attrs["Size"]
    slim = engine.images.get(image_without_compiler).attrs["Size"]
    assert slim < full
    status, output = run_to_completion(
        engine,
        image_without_compiler,
        ["-c", "import shutil; print(shutil.which('gcc'), shutil.which('cc'), shutil.which('as'))"],
        entrypoint=["python"],
    )
    assert status == 0, output
    assert output.strip().splitlines()[-1] == "None None None"


def test_no_compiler_image_serves_a_raw_model_through_gtil_matching_reference(
    run_server: RunServer, image_without_compiler: str, seed_raw_dir: Path, reference_csv: Path
) -> None:
    log = served(
        run_server,
        matches_reference(reference_csv),
        seed_answers,
        image=image_without_compiler,
        model_dir=seed_raw_dir,
    )
    assert "no C compiler could build" in log
    assert "gtil predictor" in log


def test_no_compiler_image_serves_a_compiled_artifact_compiled(
    run_server: RunServer, image_without_compiler: str, seed_artifact_dir: Path
) -> None:
    log = served(
        run_server, seed_answers, image=image_without_compiler, model_dir=seed_artifact_dir
    )
    assert "compiled predictor" in log
