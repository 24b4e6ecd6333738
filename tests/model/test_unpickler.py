"""Pickled Boosters are read without running the pickle; anything else in a pickle is refused."""

from __future__ import annotations

import os
import pickle
import struct
import sys
import tarfile
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from model.build import build_artifact
from model.errors import UnsafePickleError, UnsupportedFormatError
from model.source import load_treelite, read_source
from model.unpickler import read_booster_pickle
from model.verification import predict_gtil

Reference = tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]


class _Booster:
    """Pickles like `xgboost.core.Booster` (same module and name, state {"handle": ...})."""

    def __init__(self, handle: bytes, feature_names: list[str] | None = None) -> None:
        self.handle = bytearray(handle)
        self.feature_names = feature_names

    def __getstate__(self) -> dict[str, object]:
        return {"handle": self.handle, "feature_names": self.feature_names, "booster": "gbtree"}


@pytest.fixture
def fake_xgboost_core(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Booster]]:
    """Make `pickle` find `_Booster` as `xgboost.core.Booster` while writing test pickles."""
    package = types.ModuleType("xgboost")
    module = types.ModuleType("xgboost.core")
    booster = type("Booster", (_Booster,), {"__module__": "xgboost.core"})
    booster.__qualname__ = "Booster"
    module.Booster = booster  # type: ignore[attr-defined]
    package.core = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xgboost", package)
    monkeypatch.setitem(sys.modules, "xgboost.core", module)
    yield booster


def _snapshot(seed_model_file: Path) -> bytes:
    return read_booster_pickle(seed_model_file).handle


def _legacy_binary(snapshot: bytes) -> bytes:
    (size,) = struct.unpack_from("<q", snapshot, len(b"CONFIG-offset:"))
    return snapshot[22 : 22 + size]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "xgboost-model"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(UnsafePickleError) as caught:
        read_source(evil)
    message = str(caught.value)
    assert str(evil) in message
    assert f"{os.system.__module__}.system" in message
    assert not marker.exists()


def test_malicious_pickle_inside_a_sagemaker_tarball_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "xgboost-model"
    evil.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(evil, arcname="xgboost-model")
    with pytest.raises(UnsafePickleError, match="xgboost-model: the pickle refers to"):
        build_artifact(tarball, output_dir=tmp_path / "out", compile=False)
    assert not marker.exists()
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_code_hidden_inside_the_booster_state_is_refused(
    tmp_path: Path, fake_xgboost_core: type[_Booster]
) -> None:
    marker = tmp_path / "pwned"
    booster = fake_xgboost_core(b"")
    booster.handle = _Evil(marker)  # type: ignore[assignment]
    path = tmp_path / "xgboost-model"
    path.write_bytes(pickle.dumps(booster))
    with pytest.raises(UnsafePickleError, match="system"):
        read_source(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "forbidden"),
    [
        (b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x85R.", "builtins.eval"),
        (b"\x80\x02csubprocess\nPopen\n)R.", "subprocess.Popen"),
        (b"\x80\x02cbuiltins\ngetattr\n)R.", "builtins.getattr"),
    ],
)
def test_forbidden_globals_are_named(tmp_path: Path, payload: bytes, forbidden: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=forbidden.replace(".", r"\.")):
        read_source(path)


def test_bytearray_of_a_huge_size_is_refused(tmp_path: Path) -> None:
    # bytearray(10**9) would allocate a gigabyte: the stand-in accepts byte strings only.
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x02cbuiltins\nbytearray\nJ\x00\xca\x9a;\x85R.")
    with pytest.raises(UnsafePickleError, match="bytearray"):
        read_source(path)


def test_a_pickle_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"handle": b"binf"}))
    with pytest.raises(UnsafePickleError, match="holds a dict, not an xgboost.core.Booster"):
        read_source(path)


def test_a_truncated_pickle_is_a_format_error(seed_model_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "xgboost-model"
    path.write_bytes(seed_model_file.read_bytes()[:5000])
    with pytest.raises(UnsupportedFormatError, match="cannot be read as one"):
        read_source(path)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("wrapped", [True, False], ids=["snapshot", "bare-legacy"])
def test_every_pickle_protocol_and_handle_form_loads(
    seed_model_file: Path,
    seed_reference: Reference,
    tmp_path: Path,
    fake_xgboost_core: type[_Booster],
    protocol: int,
    wrapped: bool,
) -> None:
    """XGBoost 1.x pickles a CONFIG-offset snapshot; 0.90 pickled the bare legacy binary."""
    snapshot = _snapshot(seed_model_file)
    handle = snapshot if wrapped else _legacy_binary(snapshot)
    path = tmp_path / "xgboost-model"
    path.write_bytes(pickle.dumps(fake_xgboost_core(handle), protocol=protocol))
    source = read_source(path)
    assert source.format == "sagemaker-pickle"
    assert source.payload_format == "legacy-binary"
    assert source.objective == "binary:logistic"
    assert source.base_score == 0.5
    assert source.xgboost_version == "1.2.0"  # a legacy header records major.minor
    features, expected = seed_reference
    predicted = predict_gtil(load_treelite(source), features[:500])
    np.testing.assert_allclose(predicted, expected[:500], rtol=0, atol=1e-6)


def test_feature_names_stored_in_the_pickle_are_used(
    seed_model_file: Path, tmp_path: Path, fake_xgboost_core: type[_Booster]
) -> None:
    names = ["a", "b", "c", "d", "e", "f", "g"]
    path = tmp_path / "xgboost-model"
    path.write_bytes(pickle.dumps(fake_xgboost_core(_snapshot(seed_model_file), names)))
    manifest = build_artifact(path, output_dir=tmp_path / "out", compile=False)
    assert manifest.model.feature_names == tuple(names)


def test_a_modern_xgboost_pickle_loads(tmp_path: Path) -> None:
    """XGBoost >= 2 pickles a UBJSON snapshot {"Config": ..., "Model": ...} in `handle`."""
    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(3)
    features = rng.normal(size=(2000, 5)).astype(np.float32)
    features[rng.random(features.shape) < 0.1] = np.nan
    labels = (np.nan_to_num(features[:, 0]) > 0.2).astype(np.float32)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "seed": 0},
        xgboost.DMatrix(features, label=labels),
        num_boost_round=10,
    )
    path = tmp_path / "xgboost-model"
    path.write_bytes(pickle.dumps(booster))
    source = read_source(path)
    assert (source.format, source.payload_format) == ("sagemaker-pickle", "ubjson")
    assert source.xgboost_version == xgboost.__version__
    predicted = predict_gtil(load_treelite(source), features)
    np.testing.assert_allclose(
        predicted, booster.predict(xgboost.DMatrix(features)), rtol=0, atol=1e-6
    )
