"""Which directory is served, and the one-time, cached import of a raw SageMaker model."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from container import model_source
from container.model_source import (
    ImportSettings,
    ModelSourceError,
    build_cached_artifact,
    cache_key,
    resolve_model_dir,
    source_digest,
)
from model.artifact import FORMAT_VERSION, Tolerance, is_artifact_dir, read_manifest
from serve.predictor import load_model
from tests.artifacts import unpack
from tests.fixtures.cases import FidelityCase, fidelity_cases
from tests.seed import SEED_TARBALL


@pytest.fixture
def raw_seed(tmp_path: Path) -> Path:
    return unpack(SEED_TARBALL, tmp_path / "opt-ml-model")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp" / "rtb-inference-artifacts"


def write_fake_artifact(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text(json.dumps({"format": "rtb-inference-artifact"}))
    return directory


def test_an_artifact_is_served_as_is(tmp_path: Path) -> None:
    artifact = write_fake_artifact(tmp_path / "artifact")
    assert resolve_model_dir(artifact, default_model_dir=None) == artifact


@pytest.mark.parametrize("make", ["missing", "empty", "hidden-only"])
def test_an_empty_model_dir_falls_back_to_the_default(tmp_path: Path, make: str) -> None:
    model_dir = tmp_path / "model"
    if make != "missing":
        model_dir.mkdir()
    if make == "hidden-only":
        (model_dir / ".keep").write_text("")
    default = write_fake_artifact(tmp_path / "default")
    assert resolve_model_dir(model_dir, default_model_dir=default) == default


def test_nothing_to_serve_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="RTB_DEFAULT_MODEL_DIR is not set"):
        resolve_model_dir(tmp_path / "absent", default_model_dir=None)
    with pytest.raises(ModelSourceError, match="default model directory"):
        resolve_model_dir(tmp_path / "absent", default_model_dir=tmp_path / "also-absent")


def test_a_raw_model_is_built_once_then_reused(
    raw_seed: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = resolve_model_dir(raw_seed, default_model_dir=None)
    assert first.parent == cache
    assert is_artifact_dir(first)
    assert read_manifest(first).model.num_features == 7
    assert list(raw_seed.iterdir()) == [raw_seed / "xgboost-model"]  # the source is untouched
    caplog.clear()
    assert resolve_model_dir(raw_seed, default_model_dir=None) == first
    assert "reusing its cached artifact" in caplog.text
    assert [p.name for p in cache.iterdir()] == [first.name]  # no staging directory left over


def test_a_damaged_cache_is_rebuilt(raw_seed: Path, cache: Path) -> None:
    first = resolve_model_dir(raw_seed, default_model_dir=None)
    (first / "model.tl").write_bytes(b"damaged")
    again = resolve_model_dir(raw_seed, default_model_dir=None)
    assert again == first
    read_manifest(again)
    assert (again / "model.tl").read_bytes() != b"damaged"


def test_a_model_dir_holding_the_tarball_is_imported(tmp_path: Path, cache: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(SEED_TARBALL, model_dir / "model.tar.gz")
    served = resolve_model_dir(model_dir, default_model_dir=None)
    assert read_manifest(served).model.num_trees == 50


def test_an_unreadable_raw_model_is_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "xgboost-model").write_bytes(b"\x80\x04 not a model")
    with pytest.raises(Exception, match="xgboost-model|XGBoost"):
        build_cached_artifact(model_dir, cache_root=tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # the failed staging directory is removed


def test_source_digest_follows_names_and_contents(tmp_path: Path) -> None:
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "xgboost-model").write_bytes(b"a")
    first = source_digest(directory)
    assert source_digest(directory) == first
    (directory / "xgboost-model").write_bytes(b"b")
    assert source_digest(directory) != first
    (directory / "xgboost-model").write_bytes(b"a")
    (directory / "xgboost-model").rename(directory / "other")
    assert source_digest(directory) != first


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_cache_is_private_and_an_entry_others_can_write_is_never_loaded(
    raw_seed: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An artifact planted where another user could have written it (a cache root or entry
    that is group/world-writable) is not reused: the model is built into a fresh private
    directory instead, with a WARNING, and the planted entry is left as it was."""
    first = resolve_model_dir(raw_seed, default_model_dir=None)
    assert (_mode(cache), cache.stat().st_uid) == (0o700, os.getuid())
    planted_file = first / "model.tl"
    planted_file.chmod(0o666)  # anyone could have replaced it
    with caplog.at_level(logging.WARNING):
        second = resolve_model_dir(raw_seed, default_model_dir=None)
    assert second.parent != cache
    assert "refusing the cached artifact" in caplog.text and "writable by others" in caplog.text
    assert _mode(second.parent) == 0o700
    assert is_artifact_dir(second) and _mode(planted_file) == 0o666

    cache.chmod(0o777)  # the root itself
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = resolve_model_dir(raw_seed, default_model_dir=None)
    assert third.parent not in (cache, second.parent)
    assert "refusing the artifact cache" in caplog.text


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_an_entry_owned_by_another_user_is_never_loaded(
    raw_seed: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = resolve_model_dir(raw_seed, default_model_dir=None)
    os.chown(first / "manifest.json", 65534, 65534)
    with caplog.at_level(logging.WARNING):
        second = resolve_model_dir(raw_seed, default_model_dir=None)
    assert second != first
    assert "owned by uid 65534" in caplog.text


def _case(name: str) -> FidelityCase:
    return next(case for case in fidelity_cases() if case.name == name)


def _scores(artifact: Path, case: FidelityCase) -> np.ndarray:
    return load_model(artifact).predictor.predict(case.features)


def _within(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool((Tolerance().excess(got, want) <= 0).all())


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ImportSettings(ensemble=True, tree_limit="auto")),
        ({"SAGEMAKER_INFERENCE_ENSEMBLE": "true"}, ImportSettings(ensemble=True)),
        # the built-in: `os.environ.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"`
        ({"SAGEMAKER_INFERENCE_ENSEMBLE": "false"}, ImportSettings(ensemble=False)),
        ({"SAGEMAKER_INFERENCE_ENSEMBLE": "True"}, ImportSettings(ensemble=False)),
        ({"SAGEMAKER_INFERENCE_ENSEMBLE": ""}, ImportSettings(ensemble=False)),
        ({"RTB_TREE_LIMIT": " AUTO "}, ImportSettings(tree_limit="auto")),
        ({"RTB_TREE_LIMIT": ""}, ImportSettings(tree_limit="auto")),
        ({"RTB_TREE_LIMIT": "all"}, ImportSettings(tree_limit="all")),
        ({"RTB_TREE_LIMIT": "3"}, ImportSettings(tree_limit=3)),
    ],
)
def test_import_settings_are_read_as_the_builtin_reads_them(
    env: dict[str, str], expected: ImportSettings
) -> None:
    assert ImportSettings.from_env(env) == expected


@pytest.mark.parametrize("value", ["0", "-1", "best", "1.5"])
def test_a_bad_tree_limit_names_the_variable_and_what_to_write(value: str) -> None:
    with pytest.raises(ModelSourceError, match=r"RTB_TREE_LIMIT=.*expected auto, all or a number"):
        ImportSettings.from_env({"RTB_TREE_LIMIT": value})


def test_a_k_fold_directory_is_served_as_the_environment_says(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up import reads SAGEMAKER_INFERENCE_ENSEMBLE: the built-in's mean of the three
    folds by default, the first file alone with `false`; each setting has its own cache entry."""
    case = _case("kfold-logistic-1.7")
    monkeypatch.delenv("SAGEMAKER_INFERENCE_ENSEMBLE", raising=False)
    monkeypatch.delenv("RTB_TREE_LIMIT", raising=False)
    ensemble = resolve_model_dir(case.model_dir, default_model_dir=None)
    manifest = read_manifest(ensemble)
    assert manifest.ensemble is not None and len(manifest.ensemble.members) == 3
    assert _within(_scores(ensemble, case), case.expected)

    monkeypatch.setenv("SAGEMAKER_INFERENCE_ENSEMBLE", "false")
    first = resolve_model_dir(case.model_dir, default_model_dir=None)
    manifest = read_manifest(first)
    assert manifest.ensemble is None and manifest.model.source_file == case.files[0]
    assert _within(_scores(first, case), case.expected_first_member)
    assert not _within(_scores(first, case), case.expected)
    assert first != ensemble and {first.parent, ensemble.parent} == {cache}


def test_the_tree_limit_setting_reaches_the_build_and_the_cache_key(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An early-stopped 1.7 model: `auto` serves the best round as the 1.7-1 container does;
    RTB_TREE_LIMIT=all serves every tree (other scores), built into another entry."""
    case = _case("es-binary-1.7")
    auto = resolve_model_dir(
        case.model_dir, default_model_dir=None, settings=ImportSettings(tree_limit="auto")
    )
    assert read_manifest(auto).model.num_trees == 1
    assert _within(_scores(auto, case), case.expected)
    monkeypatch.setenv("RTB_TREE_LIMIT", "all")
    every = resolve_model_dir(case.model_dir, default_model_dir=None)
    assert every != auto and read_manifest(every).model.num_trees == 6
    assert not _within(_scores(every, case), case.expected)
    rounds = resolve_model_dir(
        case.model_dir, default_model_dir=None, settings=ImportSettings(tree_limit=2)
    )
    assert read_manifest(rounds).model.num_trees == 2
    assert len({auto, every, rounds}) == 3


def test_the_cache_key_covers_the_settings_and_the_format_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "xgboost-model").write_bytes(b"a")
    keys = {
        cache_key(source, settings)
        for settings in (
            ImportSettings(),
            ImportSettings(ensemble=False),
            ImportSettings(tree_limit="all"),
            ImportSettings(tree_limit=1),
            ImportSettings(tree_limit=2),
        )
    }
    assert len(keys) == 5
    assert cache_key(source, ImportSettings()) == cache_key(source, ImportSettings())
    assert source_digest(source)[:32] not in {key[:32] for key in keys}  # older code's names
    default = cache_key(source, ImportSettings())
    monkeypatch.setattr(model_source, "FORMAT_VERSION", FORMAT_VERSION + 1)
    assert cache_key(source, ImportSettings()) != default


def test_a_cached_entry_of_another_format_version_is_rebuilt(
    raw_seed: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = resolve_model_dir(raw_seed, default_model_dir=None, settings=ImportSettings())
    manifest_path = first / "manifest.json"
    document = json.loads(manifest_path.read_text())
    document["format_version"] = 1  # as the previous format writes it: a readable manifest
    document["verification"]["tolerance"] = document["verification"]["tolerance"]["absolute"]
    manifest_path.write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING):
        again = resolve_model_dir(raw_seed, default_model_dir=None, settings=ImportSettings())
    assert again == first and f"format version 1, not {FORMAT_VERSION}" in caplog.text
    assert read_manifest(again).format_version == FORMAT_VERSION


def test_import_settings_with_a_built_artifact_are_reported_as_unused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = write_fake_artifact(tmp_path / "artifact")
    with caplog.at_level(logging.WARNING):
        served = resolve_model_dir(
            artifact, default_model_dir=None, settings=ImportSettings(tree_limit="all")
        )
    assert served == artifact and "apply only to a raw SageMaker model" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        resolve_model_dir(artifact, default_model_dir=None, settings=ImportSettings())
    assert caplog.text == ""


def test_a_bad_tree_limit_stops_the_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = write_fake_artifact(tmp_path / "artifact")
    monkeypatch.setenv("RTB_TREE_LIMIT", "none")
    with pytest.raises(ModelSourceError, match="RTB_TREE_LIMIT='none'"):
        resolve_model_dir(artifact, default_model_dir=None)
