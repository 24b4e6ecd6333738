"""Which directory is served, and the one-time, cached import of a raw SageMaker model."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from container.model_source import (
    ModelSourceError,
    build_cached_artifact,
    resolve_model_dir,
    source_digest,
)
from model.artifact import is_artifact_dir, read_manifest
from tests.artifacts import unpack
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
