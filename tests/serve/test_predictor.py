"""The compiled (ctypes) and GTIL predictors against xgboost, and load-time refusals."""

from __future__ import annotations

import gc
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from artifacts import NUM_FEATURES, corrupt_expected, training_data

from model.artifact import Tolerance, sha256_file
from model.errors import ArtifactError
from serve.predictor import CompiledPredictor, GtilPredictor, PredictorError, load_model
from tests.fixtures.cases import FidelityCase, fidelity_cases

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def reference(artifact: Path, features: np.ndarray) -> np.ndarray:
    import xgboost

    booster = xgboost.Booster(model_file=str(artifact.parent / f"{artifact.name}-reference.json"))
    return booster.inplace_predict(features)  # type: ignore[no-any-return]


def test_compiled_matches_xgboost_row_by_row_and_in_batches(tiny_artifact: Path) -> None:
    predictor = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    features, _ = training_data(300, seed=11)
    expected = reference(tiny_artifact, features)
    np.testing.assert_allclose(predictor.predict(features), expected, atol=1e-6)
    single = np.concatenate([predictor.predict(features[i : i + 1]) for i in range(50)])
    np.testing.assert_allclose(single, expected[:50], atol=1e-6)


def test_batches_from_batch_rows_on_run_in_tl2cgen_and_match_the_row_loop(
    tiny_artifact: Path,
) -> None:
    looping = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    batching = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    batching.load_batch_path()
    assert batching.batch_path_loaded and not looping.batch_path_loaded
    features, _ = training_data(CompiledPredictor.BATCH_ROWS * 3, seed=5)
    features[::3, 2] = np.nan  # missing values go down the default branch on both paths
    expected = reference(tiny_artifact, features)
    batched = batching.predict(features)
    assert batched.shape == (len(features),) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, expected, atol=1e-6)
    np.testing.assert_array_equal(batched, looping.predict(features))
    just_below = features[: CompiledPredictor.BATCH_ROWS - 1]
    np.testing.assert_array_equal(batching.predict(just_below), looping.predict(just_below))


def test_load_model_loads_and_verifies_the_batch_path(tiny_artifact: Path) -> None:
    predictor = load_model(tiny_artifact).predictor
    assert isinstance(predictor, CompiledPredictor) and predictor.batch_path_loaded


def test_without_tl2cgen_batches_still_work_row_by_row(
    tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tl2cgen", None)  # `import tl2cgen` raises ImportError
    with caplog.at_level(logging.WARNING, logger="serve.predictor"):
        predictor = load_model(tiny_artifact).predictor
    assert isinstance(predictor, CompiledPredictor) and not predictor.batch_path_loaded
    assert "batches are predicted row by row" in caplog.text
    features, _ = training_data(CompiledPredictor.BATCH_ROWS * 2, seed=6)
    np.testing.assert_allclose(
        predictor.predict(features), reference(tiny_artifact, features), atol=1e-6
    )


def test_compiled_treats_nan_as_missing_not_as_a_value(tiny_artifact: Path) -> None:
    predictor = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    row = np.full((1, NUM_FEATURES), np.nan, dtype=np.float32)
    np.testing.assert_allclose(predictor.predict(row), reference(tiny_artifact, row), atol=1e-6)


def test_compiled_does_not_modify_its_input(tiny_artifact: Path) -> None:
    predictor = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    features, _ = training_data(5)
    before = features.copy()
    predictor.predict(features)
    predictor.predict(features[:1])
    np.testing.assert_array_equal(features, before)


def test_compiled_returns_fresh_arrays(tiny_artifact: Path) -> None:
    predictor = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    features, _ = training_data(2)
    first = predictor.predict(features[:1])
    kept = first.copy()
    predictor.predict(features[1:2])
    np.testing.assert_array_equal(first, kept)


def mapped(library: Path) -> bool:
    with open("/proc/self/maps") as maps:
        return any(line.rstrip("\n").endswith(str(library)) for line in maps)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_a_freed_compiled_predictor_unmaps_its_library(tiny_artifact: Path, tmp_path: Path) -> None:
    """ctypes never closes a library: the predictor does, once nothing can call it any more."""
    library = tmp_path / "model.so"
    shutil.copyfile(tiny_artifact / "model.so", library)
    first = CompiledPredictor(library, num_features=NUM_FEATURES)
    first.load_batch_path()  # tl2cgen's runtime opens the library too
    second = CompiledPredictor(library, num_features=NUM_FEATURES)
    features, _ = training_data(CompiledPredictor.BATCH_ROWS, seed=4)
    expected = reference(tiny_artifact, features)
    del first
    gc.collect()
    assert mapped(library)  # `second` holds it still, and answers
    np.testing.assert_allclose(second.predict(features), expected, atol=1e-6)
    del second
    gc.collect()
    assert not mapped(library)
    with pytest.raises(PredictorError, match="features"):  # refused: closed again at once
        CompiledPredictor(library, num_features=NUM_FEATURES + 1)
    gc.collect()
    assert not mapped(library)


def test_gtil_matches_xgboost(tiny_gtil_artifact: Path) -> None:
    predictor = GtilPredictor(tiny_gtil_artifact / "model.tl", num_features=NUM_FEATURES)
    features, _ = training_data(100, seed=3)
    np.testing.assert_allclose(
        predictor.predict(features), reference(tiny_gtil_artifact, features), atol=1e-6
    )


def test_wrong_feature_count_is_refused(tiny_artifact: Path) -> None:
    with pytest.raises(PredictorError, match="features"):
        CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES + 1)


def test_load_model_uses_the_compiled_library(tiny_artifact: Path) -> None:
    loaded = load_model(tiny_artifact)
    assert loaded.predictor.kind == "compiled"
    assert loaded.max_error <= 1e-6


def test_load_model_without_compiled_falls_back_to_gtil_with_a_warning(
    tiny_gtil_artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        loaded = load_model(tiny_gtil_artifact)
    assert loaded.predictor.kind == "gtil"
    assert "GTIL" in caplog.text


@pytest.mark.parametrize(
    ("damage", "messages"),
    [
        pytest.param(
            lambda content: b"not a shared library",
            ("cannot load the compiled model",),
            id="not-elf",
        ),
        # dlopen of a truncated ELF dies of SIGBUS; the structural check must refuse it first
        # (this case would kill the test process without it).
        pytest.param(
            lambda content: content[: len(content) // 3],
            ("model.so", "not a loadable shared library"),
            id="truncated-without-dlopen",
        ),
    ],
)
def test_an_unloadable_library_whose_hash_matches_falls_back_to_gtil(
    tiny_artifact: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
    messages: tuple[str, ...],
) -> None:
    copy = Path(shutil.copytree(tiny_artifact, tmp_path / "artifact"))
    library = copy / "model.so"
    library.write_bytes(damage(library.read_bytes()))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["model.so"] = sha256_file(library)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        loaded = load_model(copy)
    assert loaded.predictor.kind == "gtil"
    for message in messages:
        assert message in caplog.text


def test_a_changed_file_is_refused(tiny_artifact: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_artifact, tmp_path / "artifact"))
    with (copy / "model.so").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        load_model(copy)


def test_a_verification_mismatch_is_refused(tiny_artifact: Path, tmp_path: Path) -> None:
    copy = corrupt_expected(tiny_artifact, tmp_path / "artifact")
    with pytest.raises(PredictorError, match="fails verification"):
        load_model(copy)


def test_predict_row_matches_predict_with_and_without_missing_values(tiny_artifact: Path) -> None:
    predictor = CompiledPredictor(tiny_artifact / "model.so", num_features=NUM_FEATURES)
    features, _ = training_data(60, seed=5)
    expected = predictor.predict(features)
    got = [float(predictor.predict_row(row.tolist())[0]) for row in features]
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), expected)
    assert np.isnan(features).any()  # both paths were exercised


def test_gtil_predict_row(tiny_gtil_artifact: Path) -> None:
    predictor = GtilPredictor(tiny_gtil_artifact / "model.tl", num_features=NUM_FEATURES)
    features, _ = training_data(5, seed=5)
    np.testing.assert_array_equal(
        predictor.predict_row(features[0].tolist()), predictor.predict(features[:1])
    )


# --------------------------------------------------------------------------------------------
# Fidelity fixtures (models written by real XGBoost; see tests/data/fixtures/README.md)


def _fixture(name: str) -> FidelityCase:
    return next(case for case in fidelity_cases() if case.name == name)


@pytest.mark.parametrize("allow_compiled", [True, False], ids=["compiled", "gtil"])
@pytest.mark.parametrize("name", ["multi-softprob-1.7", "multi-softmax-1.7"])
def test_multiclass_predictions_have_xgboosts_shape(
    name: str, allow_compiled: bool, tmp_path: Path
) -> None:
    """softprob: (rows, num_class) probabilities; softmax: (rows,) class indices; one row:
    (1, num_class) / (1,)."""
    from model.build import build_artifact

    if allow_compiled and shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    case = _fixture(name)
    build_artifact(case.model_dir, output_dir=tmp_path / "a", compile=allow_compiled)
    loaded = load_model(tmp_path / "a", allow_compiled=allow_compiled)
    predictor = loaded.predictor
    assert predictor.kind == ("compiled" if allow_compiled else "gtil")
    assert loaded.manifest.model.num_class == 3
    got = predictor.predict(case.features)
    assert got.dtype == np.float32 and got.shape == case.expected.shape
    assert (Tolerance().excess(got, case.expected) <= 0).all()
    row = predictor.predict_row([float(v) for v in case.features[5]])
    assert row.shape == (1, *case.expected.shape[1:])
    np.testing.assert_array_equal(row, got[5:6])
    batch = predictor.predict(np.repeat(case.features, 2, axis=0))  # the tl2cgen batch path
    np.testing.assert_array_equal(batch[::2], got)
    if name == "multi-softmax-1.7":
        assert set(np.unique(got)) <= {0.0, 1.0, 2.0} and predictor.num_outputs == 1
    else:
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
        assert predictor.num_outputs == 3


def test_regression_around_20_passes_the_start_up_check(tmp_path: Path) -> None:
    """Scores of 10 to 25: compiled and GTIL agree to float32 precision (1.9e-6 apart at 24),
    which the relative part of the tolerance accepts; an absolute 1e-6 refused it."""
    from model.build import build_artifact

    case = _fixture("reg-squarederror-3.x")
    assert 10 < float(np.median(case.expected)) < 25
    build_artifact(case.model_dir, output_dir=tmp_path / "a")
    loaded = load_model(tmp_path / "a")
    got = loaded.predictor.predict(case.features)
    assert np.abs(got.astype(np.float64) - case.expected).max() > 1e-6  # float32 rounding
    assert (Tolerance().excess(got, case.expected) <= 0).all()
