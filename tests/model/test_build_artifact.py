"""The seed SageMaker artifact builds into a serving artifact that reproduces XGBoost exactly."""

from __future__ import annotations

import ctypes
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from model_testdata import SEED_FEATURES, requires_gcc

from model import build as build_module
from model.artifact import (
    LIBRARY_FILE,
    MANIFEST_FILE,
    Manifest,
    load_verification,
    read_manifest,
    verify_files,
)
from model.build import OpenedSource, build_artifact, open_source, package_artifact
from model.errors import BuildError, ParityError, SourceError
from model.verification import predict_compiled, predict_gtil
from tests.seed import SEED_REFERENCE

Reference = tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]


class _Entry(ctypes.Union):
    """`union Entry` of the generated header: documented in docs/model.md."""

    _fields_ = [("missing", ctypes.c_int), ("fvalue", ctypes.c_float), ("qvalue", ctypes.c_int)]


def predict_with_ctypes(
    library: Path, features: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """Call the exported `predict` row by row, exactly as docs/model.md tells the server to."""
    lib = ctypes.CDLL(str(library))
    lib.predict.argtypes = [ctypes.POINTER(_Entry), ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.predict.restype = None
    lib.get_num_feature.restype = ctypes.c_int32
    num_features = lib.get_num_feature()
    assert num_features == features.shape[1]
    # A missing value is the int -1 in `missing`; that bit pattern is itself a NaN float.
    entries = np.ascontiguousarray(features, dtype=np.float32).view(np.int32).copy()
    entries[np.isnan(features)] = -1
    row_bytes = num_features * ctypes.sizeof(_Entry)
    base = entries.ctypes.data
    out = np.empty(features.shape[0], dtype=np.float64)
    result = ctypes.c_float()
    for row in range(features.shape[0]):
        result.value = 0.0  # predict adds into result
        lib.predict(ctypes.cast(base + row * row_bytes, ctypes.POINTER(_Entry)), 0, result)
        out[row] = result.value
    return out


Features = npt.NDArray[np.float32]
Predicted = npt.NDArray[np.float64]
Predict = Callable[[Path, Manifest, Features], Predicted]


def _compiled(directory: Path, manifest: Manifest, features: Features) -> Predicted:
    assert manifest.compiled is not None
    return predict_compiled(directory / manifest.compiled.library, features)


def _exported_symbol(directory: Path, _: Manifest, features: Features) -> Predicted:
    return predict_with_ctypes(directory / LIBRARY_FILE, features)


def _fallback(directory: Path, manifest: Manifest, features: Features) -> Predicted:
    import treelite

    model = treelite.Model.deserialize(str(directory / manifest.fallback.checkpoint))
    return predict_gtil(model, features)


@pytest.mark.parametrize(
    "predict",
    [
        pytest.param(_compiled, marks=requires_gcc, id="compiled"),
        pytest.param(_exported_symbol, marks=requires_gcc, id="exported-predict-symbol"),
        pytest.param(_fallback, id="fallback-checkpoint"),
    ],
)
def test_seed_artifact_matches_reference_on_every_row(
    seed_artifact: tuple[Path, Manifest], seed_reference: Reference, predict: Predict
) -> None:
    directory, manifest = seed_artifact
    features, expected = seed_reference
    assert features.shape == (5000, 7)
    assert np.isnan(features).any(), "the reference must exercise missing values"
    np.testing.assert_allclose(predict(directory, manifest, features), expected, rtol=0, atol=1e-6)


def test_seed_manifest_describes_the_model(seed_artifact: tuple[Path, Manifest]) -> None:
    directory, manifest = seed_artifact
    assert read_manifest(directory) == manifest
    verify_files(directory, manifest)
    model = manifest.model
    assert model.source_format == "sagemaker-pickle"
    assert model.source_file == "xgboost-model"
    assert model.objective == "binary:logistic"
    assert model.output_transform == "sigmoid"
    assert model.base_score == 0.5
    assert (model.num_trees, model.num_features) == (50, 7)
    assert model.feature_names == SEED_FEATURES
    assert model.bid_threshold == 0.5
    assert manifest.versions.xgboost == "1.2.0"
    assert set(manifest.files) == {"model.so", "model.tl", "verification.npz"}


def test_seed_verification_set_probes_missing_values_and_thresholds(
    seed_artifact: tuple[Path, Manifest],
) -> None:
    import treelite

    from model.verification import split_thresholds

    directory, manifest = seed_artifact
    features, expected = load_verification(directory, manifest)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert features.shape == (manifest.verification.rows, 7)
    assert np.isnan(features).mean() > 0.05
    assert ((expected > 0) & (expected < 1)).all()
    model = treelite.Model.deserialize(str(directory / manifest.fallback.checkpoint))
    thresholds = split_thresholds(model)
    hour_thresholds = thresholds[SEED_FEATURES.index("hour")]
    hits = np.isin(features[:, 1], hour_thresholds)
    assert hits.sum() > 50, "values exactly on split thresholds must be part of the sample"
    assert thresholds[SEED_FEATURES.index("dow")].size == 0  # never split on, per the README


@requires_gcc
def test_reference_rows_are_checked_and_kept(
    seed_tarball: Path, seed_reference: Reference, tmp_path: Path
) -> None:
    manifest = build_artifact(
        seed_tarball, output_dir=tmp_path / "a", reference=SEED_REFERENCE, verification_rows=10
    )
    features, expected = load_verification(tmp_path / "a", manifest)
    assert manifest.verification.rows == 5010
    np.testing.assert_array_equal(expected[:5000], seed_reference[1])
    np.testing.assert_array_equal(features[:5000], seed_reference[0])


def test_reference_that_disagrees_fails_the_build(seed_tarball: Path, tmp_path: Path) -> None:
    lines = SEED_REFERENCE.read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = str(float(fields[-1]) + 1e-3)
    lines[1] = ",".join(fields)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(ParityError, match="row 0"):
        build_artifact(seed_tarball, output_dir=tmp_path / "a", reference=wrong, compile=False)
    assert not (tmp_path / "a" / MANIFEST_FILE).exists()


@requires_gcc
def test_compiled_mismatch_fails_loudly_and_writes_no_manifest(
    seed_tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = build_module.predict_compiled

    def off_by_a_little(
        library: Path, features: npt.NDArray[np.float32], *, output_kind: str = "score"
    ) -> npt.NDArray[np.float64]:
        result = real(library, features, output_kind=output_kind)
        result[3] += 1e-5
        return result

    monkeypatch.setattr(build_module, "predict_compiled", off_by_a_little)
    with pytest.raises(ParityError, match=r"model\.so \(compiled\): 1 of 1000 rows"):
        build_artifact(seed_tarball, output_dir=tmp_path / "a")
    assert not (tmp_path / "a" / MANIFEST_FILE).exists()


def test_no_compile_writes_the_fallback_only(
    seed_tarball: Path, seed_reference: Reference, tmp_path: Path
) -> None:
    import treelite

    manifest = build_artifact(seed_tarball, output_dir=tmp_path / "a", compile=False)
    assert manifest.compiled is None
    assert set(manifest.files) == {"model.tl", "verification.npz"}
    assert not (tmp_path / "a" / LIBRARY_FILE).exists()
    assert read_manifest(tmp_path / "a").compiled is None
    model = treelite.Model.deserialize(str(tmp_path / "a" / "model.tl"))
    features, expected = seed_reference
    np.testing.assert_allclose(predict_gtil(model, features), expected, rtol=0, atol=1e-6)


def test_auto_compile_falls_back_without_a_toolchain(seed_tarball: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    manifest = build_artifact(
        seed_tarball, output_dir=tmp_path / "a", toolchain="no-such-cc", progress=lines.append
    )
    assert manifest.compiled is None
    assert any("no no-such-cc on PATH" in line for line in lines)


def test_required_compile_without_a_toolchain_fails(seed_tarball: Path, tmp_path: Path) -> None:
    from model.errors import CompileError

    with pytest.raises(CompileError, match="no-such-cc.*--no-compile"):
        build_artifact(
            seed_tarball, output_dir=tmp_path / "a", toolchain="no-such-cc", compile=True
        )


@requires_gcc
def test_builds_from_directory_and_bare_file_and_replaces_a_previous_artifact(
    seed_model_file: Path, tmp_path: Path
) -> None:
    first = build_artifact(seed_model_file.parent, output_dir=tmp_path / "a", compile=False)
    second = build_artifact(seed_model_file, output_dir=tmp_path / "a", units=1)
    assert first.model.source_sha256 == second.model.source_sha256
    assert second.compiled is not None
    verify_files(tmp_path / "a", read_manifest(tmp_path / "a"))
    assert first.model.feature_names == tuple(f"f{i}" for i in range(7))


def test_output_dir_with_foreign_files_is_refused(seed_tarball: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty"):
        build_artifact(seed_tarball, output_dir=tmp_path / "a", compile=False)
    assert (tmp_path / "a" / "notes.txt").read_text() == "mine"


def test_wrong_number_of_feature_names_is_refused(seed_tarball: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="7 features but the feature names given are 2"):
        build_artifact(seed_tarball, output_dir=tmp_path / "a", feature_names=["a", "b"])


def test_an_artifact_is_not_a_source(seed_artifact: tuple[Path, Manifest], tmp_path: Path) -> None:
    directory, _ = seed_artifact
    with pytest.raises(SourceError, match="already a serving artifact"):
        build_artifact(directory, output_dir=tmp_path / "a")


def test_open_source_reads_a_file_a_directory_an_archive_and_a_directory_of_one_archive(
    seed_model_file: Path, seed_tarball: Path, tmp_path: Path
) -> None:
    holder = tmp_path / "upload"
    holder.mkdir()
    shutil.copy(seed_tarball, holder / "model.tar.gz")
    with open_source(seed_model_file) as opened:
        assert opened == OpenedSource(
            path=seed_model_file, directory=None, is_artifact=False, archived=False
        )
    with open_source(seed_model_file.parent) as opened:
        assert (opened.directory, opened.is_artifact, opened.archived) == (
            seed_model_file.parent,
            False,
            False,
        )
    for source, named in ((seed_tarball, seed_tarball), (holder, holder / "model.tar.gz")):
        with open_source(source) as opened:
            assert (opened.path, opened.is_artifact, opened.archived) == (named, False, True)
            assert opened.directory is not None
            assert (opened.directory / "xgboost-model").read_bytes() == (
                seed_model_file.read_bytes()
            )
        assert not opened.directory.exists()  # the extraction is removed


def test_a_packaged_artifact_is_not_a_source_either(
    seed_artifact: tuple[Path, Manifest], tmp_path: Path
) -> None:
    directory, _ = seed_artifact
    packaged = package_artifact(directory, output=tmp_path / "model.tar.gz")
    with open_source(packaged) as opened:
        assert (opened.is_artifact, opened.archived) == (True, True)
    with pytest.raises(SourceError, match="already a serving artifact.*unpack it and serve it"):
        build_artifact(packaged, output_dir=tmp_path / "a")


def test_package_has_regular_top_level_members_in_fixed_order(
    seed_artifact: tuple[Path, Manifest], tmp_path: Path
) -> None:
    directory, manifest = seed_artifact
    first = package_artifact(directory, output=tmp_path / "one" / "model.tar.gz")
    second = package_artifact(directory, output=tmp_path / "two" / "model.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "manifest.json",
        "model.so",
        "model.tl",
        "verification.npz",
    ]
    assert all(m.isfile() and m.mode == 0o644 and m.uid == 0 and m.mtime == 0 for m in members)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(first) as tar:
        for member in members:
            source = tar.extractfile(member)
            assert source is not None
            (unpacked / member.name).write_bytes(source.read())
    assert read_manifest(unpacked) == manifest
    verify_files(unpacked, manifest)


def test_package_refuses_a_tampered_artifact(
    seed_artifact: tuple[Path, Manifest], tmp_path: Path
) -> None:
    from model.errors import IntegrityError

    directory, _ = seed_artifact
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    with open(copy / "model.tl", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IntegrityError, match="model.tl: sha256"):
        package_artifact(copy, output=tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


def _broken_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "brokencc"
    script.write_text(
        '#!/bin/sh\ncase "$1" in --version) echo brokencc 1.0; exit 0;; esac\n'
        "echo 'brokencc: internal compiler error' >&2\nexit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return "brokencc"


def test_a_failing_compiler_falls_back_in_auto_mode(
    seed_tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toolchain = _broken_compiler(tmp_path, monkeypatch)
    lines: list[str] = []
    manifest = build_artifact(
        seed_tarball, output_dir=tmp_path / "a", toolchain=toolchain, progress=lines.append
    )
    assert manifest.compiled is None
    assert not (tmp_path / "a" / LIBRARY_FILE).exists()
    assert any("compiling failed, writing the treelite fallback only" in line for line in lines)


def test_a_failing_compiler_fails_when_compiling_is_required(
    seed_tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.errors import CompileError

    toolchain = _broken_compiler(tmp_path, monkeypatch)
    with pytest.raises(CompileError, match="compiling with brokencc failed"):
        build_artifact(seed_tarball, output_dir=tmp_path / "a", toolchain=toolchain, compile=True)
    assert not (tmp_path / "a" / MANIFEST_FILE).exists()


def test_a_half_written_output_dir_is_reused(seed_tarball: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.tl").write_bytes(b"left over from a crash")
    manifest = build_artifact(seed_tarball, output_dir=tmp_path / "a", compile=False)
    verify_files(tmp_path / "a", manifest)


def test_toolchain_names_cannot_inject_shell_commands(seed_tarball: Path, tmp_path: Path) -> None:
    from model.errors import CompileError

    marker = tmp_path / "pwned"
    with pytest.raises(CompileError, match="not a plain program name"):
        build_artifact(
            seed_tarball, output_dir=tmp_path / "a", toolchain=f"gcc; touch {marker}", compile=True
        )
    assert not marker.exists()


def test_a_bad_source_leaves_a_previous_artifact_alone(seed_tarball: Path, tmp_path: Path) -> None:
    from model.errors import UnsupportedFormatError

    manifest = build_artifact(seed_tarball, output_dir=tmp_path / "a", compile=False)
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    with pytest.raises(UnsupportedFormatError):
        build_artifact(tmp_path / "junk.bin", output_dir=tmp_path / "a", compile=False)
    assert read_manifest(tmp_path / "a") == manifest
    verify_files(tmp_path / "a", manifest)


@requires_gcc
def test_rebuild_is_checked_even_while_the_old_library_is_loaded(
    seed_tarball: Path, tmp_path: Path
) -> None:
    """The loader hands back an open library for the same path; the check must not be fooled."""
    import tl2cgen

    xgboost = pytest.importorskip("xgboost")
    build_artifact(seed_tarball, output_dir=tmp_path / "a")
    held = tl2cgen.Predictor(tmp_path / "a" / "model.so", nthread=1)
    rng = np.random.default_rng(0)
    features = rng.integers(0, 30, size=(500, 7)).astype(np.float32)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(features, label=features[:, 1] > 12),
        num_boost_round=5,
    )
    booster.save_model(str(tmp_path / "other.json"))
    manifest = build_artifact(tmp_path / "other.json", output_dir=tmp_path / "a")
    assert manifest.model.num_trees == 5
    expected = booster.predict(xgboost.DMatrix(features)).astype(np.float64)
    np.testing.assert_allclose(
        predict_compiled(tmp_path / "a" / "model.so", features), expected, rtol=0, atol=1e-6
    )
    del held


@requires_gcc
@pytest.mark.parametrize("level", [1, 3])
def test_opt_level_reaches_the_compiler_last(
    seed_tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: int
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    wrapper = bin_dir / "loggcc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    manifest = build_artifact(
        seed_tarball, output_dir=tmp_path / "a", toolchain="loggcc", opt_level=level
    )
    assert manifest.compiled is not None and manifest.compiled.toolchain == "loggcc"
    compiles = [line.split() for line in log.read_text().splitlines() if "-c" in line.split()]
    assert compiles, "the wrapper saw no compile command"
    for args in compiles:
        assert [a for a in args if a.startswith("-O")][-1] == f"-O{level}"


def test_build_works_without_xgboost(seed_tarball: Path, tmp_path: Path) -> None:
    """The serving image has no xgboost: building and inspecting must never import it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['xgboost'] = None\n"  # any `import xgboost` now fails
        "from model.build import OpenedSource, build_artifact, open_source, package_artifact\n"
        "from model.inspection import describe\n"
        f"build_artifact({str(seed_tarball)!r}, output_dir={str(tmp_path / 'a')!r})\n"
        f"package_artifact({str(tmp_path / 'a')!r}, output={str(tmp_path / 'a.tar.gz')!r})\n"
        f"print(describe({str(tmp_path / 'a.tar.gz')!r}).kind)\n"
        f"print(describe({str(seed_tarball)!r}).kind)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["artifact", "source"]


def test_a_directory_holding_only_the_uploaded_tarball_is_that_tarball(
    seed_tarball: Path, tmp_path: Path
) -> None:
    from model.inspection import describe

    upload = tmp_path / "opt-ml-model"
    upload.mkdir()
    shutil.copy(seed_tarball, upload / "model.tar.gz")
    manifest = build_artifact(upload, output_dir=tmp_path / "a", compile=False)
    assert manifest.model.source_file == "xgboost-model"
    assert describe(upload).details["source_format"] == "sagemaker-pickle"
