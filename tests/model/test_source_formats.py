"""Every XGBoost save format is recognised by content and served with XGBoost's own predictions."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from model_testdata import requires_gcc

from model.artifact import load_verification
from model.build import build_artifact
from model.errors import UnsupportedFormatError, UnsupportedModelError
from model.source import detect_format, find_model_file, load_treelite, read_source
from model.unpickler import read_booster_pickle
from model.verification import check_parity, predict_compiled, predict_gtil

Reference = tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]


def _data(rows: int, *, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5)).astype(np.float32)
    features[:, 3] = rng.integers(0, 20, size=rows)  # integer-valued, ties with thresholds
    features[rng.random(features.shape) < 0.1] = np.nan
    signal = np.nan_to_num(features[:, 0]) + 0.1 * np.nan_to_num(features[:, 3])
    return features, signal.astype(np.float32)


def _train(objective: str, *, rounds: int = 12, **extra: Any) -> Any:
    xgboost = pytest.importorskip("xgboost")
    features, signal = _data(3000, seed=1)
    labels: npt.NDArray[np.float32]
    if objective.startswith(("binary:", "reg:logistic")):
        labels = (signal > 0.8).astype(np.float32)
    elif objective == "count:poisson":
        labels = np.round(np.exp(0.3 * signal)).astype(np.float32)
    elif objective.startswith("multi:"):
        labels = np.digitize(signal, [0.5, 1.5]).astype(np.float32)
    else:
        labels = signal
    params = {"objective": objective, "nthread": 1, "seed": 0, **extra}
    if extra.get("booster") != "gblinear":
        params["max_depth"] = 4
    return xgboost.train(params, xgboost.DMatrix(features, label=labels), num_boost_round=rounds)


def _xgboost_predict(booster: Any, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import xgboost

    return np.asarray(booster.predict(xgboost.DMatrix(features)), dtype=np.float64)


@requires_gcc
@pytest.mark.parametrize(
    ("objective", "transform", "threshold"),
    [
        ("binary:logistic", "sigmoid", 0.5),
        ("binary:logitraw", "identity", 0.0),
        ("reg:logistic", "sigmoid", 0.5),
        ("reg:squarederror", "identity", None),
        ("count:poisson", "exponential", None),
    ],
)
def test_objectives_match_xgboost_compiled(
    tmp_path: Path, objective: str, transform: str, threshold: float | None
) -> None:
    booster = _train(objective)
    source = tmp_path / "model.json"
    booster.save_model(str(source))
    manifest = build_artifact(source, output_dir=tmp_path / "a", verification_rows=200)
    assert manifest.model.objective == objective
    assert manifest.model.output_transform == transform
    assert manifest.model.bid_threshold == threshold
    features, _ = _data(4000, seed=2)
    compiled = predict_compiled(tmp_path / "a" / "model.so", features)
    np.testing.assert_allclose(compiled, _xgboost_predict(booster, features), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("suffix", [".json", ".ubj", ""])
def test_json_and_ubjson_are_detected_by_content_not_name(tmp_path: Path, suffix: str) -> None:
    booster = _train("binary:logistic", base_score=0.3)
    saved = tmp_path / f"saved{suffix or '.ubj'}"
    booster.save_model(str(saved))
    misnamed = tmp_path / ("xgboost-model" if suffix == "" else f"model{suffix[::-1]}")
    misnamed.write_bytes(saved.read_bytes())
    source = read_source(misnamed)
    assert source.format == ("json" if suffix == ".json" else "ubjson")
    assert source.objective == "binary:logistic"
    assert source.base_score == pytest.approx(0.3)
    features, _ = _data(2000, seed=3)
    np.testing.assert_allclose(
        predict_gtil(load_treelite(source), features),
        _xgboost_predict(booster, features),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("objective", ["multi:softprob", "multi:softmax"])
def test_multi_class_models_predict_what_xgboost_predicts(tmp_path: Path, objective: str) -> None:
    """softprob: (rows, num_class) probabilities; softmax: the class index, as XGBoost gives."""
    import treelite
    import xgboost

    booster = _train(objective, num_class=3, rounds=3)
    source = tmp_path / "model.json"
    booster.save_model(str(source))
    manifest = build_artifact(source, output_dir=tmp_path / "a", compile=False)
    assert manifest.model.num_class == 3
    assert manifest.model.num_outputs == (3 if objective == "multi:softprob" else 1)
    features, _ = load_verification(tmp_path / "a", manifest)
    expected = booster.predict(xgboost.DMatrix(features)).astype(np.float64)
    model = treelite.Model.deserialize(str(tmp_path / "a" / "model.tl"))
    got = predict_gtil(model, features, output_kind=manifest.model.output_kind)
    assert got.shape == expected.shape
    check_parity(got, expected, what=objective)


@pytest.mark.parametrize("with_magic", [True, False], ids=["binf", "no-binf"])
def test_legacy_binary_files_load(
    seed_model_file: Path, seed_reference: Reference, tmp_path: Path, with_magic: bool
) -> None:
    snapshot = read_booster_pickle(seed_model_file).handle
    (size,) = struct.unpack_from("<q", snapshot, 14)
    legacy = snapshot[22 : 22 + size]
    assert legacy.startswith(b"binf")
    path = tmp_path / "model.bin"
    path.write_bytes(legacy if with_magic else legacy[4:])
    source = read_source(path)
    assert (source.format, source.objective, source.base_score) == (
        "legacy-binary",
        "binary:logistic",
        0.5,
    )
    features, expected = seed_reference
    np.testing.assert_allclose(
        predict_gtil(load_treelite(source), features), expected, rtol=0, atol=1e-6
    )


def test_a_raw_snapshot_file_keeps_its_config(seed_model_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.raw"
    path.write_bytes(read_booster_pickle(seed_model_file).handle)
    source = read_source(path)
    assert (source.format, source.xgboost_version) == ("legacy-binary", "1.2.0")


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"", "the file is empty"),
        (gzip.compress(b"not a tar"), "gzip-compressed"),
        (b"bs64AAAA", "base64 legacy model"),
        (b"hello, world\n", "starts with b'hello, world"),
        (b"{not json", "not an XGBoost model"),
        (b'{"learner": ', "starts like JSON but is not"),
        (b'{"something": 1}', "without a `learner` object"),
        (b"binf" + b"\0" * 10, "header is damaged"),
    ],
)
def test_unknown_files_get_a_clear_error(tmp_path: Path, content: bytes, hint: str) -> None:
    path = tmp_path / "xgboost-model"
    path.write_bytes(content)
    with pytest.raises(UnsupportedFormatError) as caught:
        read_source(path)
    assert str(path) in str(caught.value)
    assert hint in str(caught.value)


def test_detect_format_by_leading_bytes() -> None:
    assert detect_format(b"\x80\x04\x95") == "sagemaker-pickle"
    assert detect_format(b"cxgboost.core\nBooster\n") == "sagemaker-pickle"
    assert detect_format(b'  {"learner": {}}') == "json"
    assert detect_format(b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner") == "ubjson"
    assert detect_format(b"{i\x07learner") == "ubjson"
    assert detect_format(b"CONFIG-offset:") == "legacy-binary"
    assert detect_format(b"binf") == "legacy-binary"
    assert detect_format(b"PK\x03\x04") is None


def test_find_model_file_in_directories(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a readme")
    (tmp_path / "model.json").write_text('{"learner": {}}')
    assert find_model_file(tmp_path) == tmp_path / "model.json"
    (tmp_path / "other.json").write_text('{"learner": {}}')
    with pytest.raises(UnsupportedFormatError, match="several model files"):
        find_model_file(tmp_path)
    (tmp_path / "xgboost-model").write_bytes(b"\x80\x04")
    assert find_model_file(tmp_path) == tmp_path / "xgboost-model"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnsupportedFormatError, match="holds no XGBoost model file"):
        find_model_file(empty)


def test_linear_boosters_are_refused_clearly(tmp_path: Path) -> None:
    booster = _train("reg:squarederror", booster="gblinear", rounds=3)
    source = tmp_path / "model.json"
    booster.save_model(str(source))
    with pytest.raises(UnsupportedModelError, match=r"gblinear model .* has no trees"):
        build_artifact(source, output_dir=tmp_path / "a", compile=False)


def test_dart_models_match_xgboost(tmp_path: Path) -> None:
    booster = _train("binary:logistic", booster="dart", rate_drop=0.2, rounds=10)
    source = tmp_path / "model.ubj"
    booster.save_model(str(source))
    features, _ = _data(2000, seed=5)
    np.testing.assert_allclose(
        predict_gtil(load_treelite(read_source(source)), features),
        _xgboost_predict(booster, features),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("trees", "claims 2147483647 trees"),
        ("nodes", "tree 0 claims 2147483647 nodes"),
        ("truncate", r"tree \d+ claims \d+ nodes"),
    ],
)
def test_hostile_legacy_sizes_are_refused_before_treelite_allocates(
    seed_model_file: Path, tmp_path: Path, patch: str, message: str
) -> None:
    snapshot = read_booster_pickle(seed_model_file).handle
    (size,) = struct.unpack_from("<q", snapshot, 14)
    legacy = bytearray(snapshot[22 : 22 + size])
    trees_at = 4 + 136 + 8 + len("binary:logistic") + 8 + len("gbtree")
    first_tree = trees_at + 160
    if patch == "trees":
        struct.pack_into("<i", legacy, trees_at, 2**31 - 1)
    elif patch == "nodes":
        struct.pack_into("<i", legacy, first_tree + 4, 2**31 - 1)
    else:
        legacy = legacy[: first_tree + 50 * 148 + 100]  # enough for the tree count check
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(legacy))
    with pytest.raises(UnsupportedFormatError, match=message):
        read_source(path)


def test_treelite_rejections_explain_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    booster = _train("binary:logistic", rounds=2)
    document = json.loads(booster.save_raw("json"))
    document["learner"]["gradient_booster"]["model"]["trees"][0]["tree_param"]["num_nodes"] = (
        "2000000000"
    )
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UnsupportedFormatError) as caught:
        load_treelite(read_source(path))
    assert "Field left_children has an incorrect dimension" in str(caught.value)
    assert capsys.readouterr().out == "", "treelite's log must not leak onto stdout"


def test_absurd_feature_counts_are_refused(tmp_path: Path) -> None:
    import json

    booster = _train("binary:logistic", rounds=2)
    document = json.loads(booster.save_raw("json"))
    document["learner"]["learner_model_param"]["num_feature"] = "2000000000"
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UnsupportedModelError, match="2000000000 features; serving is limited"):
        load_treelite(read_source(path))
