"""Turn any supported source model into the serving artifact, checking it before writing it.

    source (file | directory | SageMaker model.tar.gz)
      -> read and recognise the model bytes        (model.source, model.unpickler, model.archive)
      -> parse with treelite                        (model.source.load_treelite)
      -> verification rows, expected by GTIL        (model.verification)
      -> model.tl; model.so compiled by tl2cgen      (model.compiler)
      -> model.so and model.tl re-checked on those rows
      -> verification.npz, then manifest.json last  (model.artifact)

Works with treelite + tl2cgen + a C compiler only: xgboost is never imported here, because the
serving image calls `build_artifact` at start-up for raw SageMaker outputs.
"""

from __future__ import annotations

import datetime as dt
import platform
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from model.archive import extract_archive, is_tar_archive, write_archive
from model.artifact import (
    CHECKPOINT_FILE,
    LIBRARY_FILE,
    MANIFEST_FILE,
    SOURCE_FORMATS,
    VERIFICATION_FILE,
    CompiledInfo,
    EnsembleInfo,
    FallbackInfo,
    Manifest,
    MemberInfo,
    ModelInfo,
    Tolerance,
    TreeLimitInfo,
    VerificationInfo,
    Versions,
    combine_members,
    is_artifact_dir,
    read_manifest,
    sha256_file,
    verify_files,
    write_manifest,
)
from model.compiler import (
    DEFAULT_OPT_LEVEL,
    DEFAULT_TOOLCHAIN,
    compile_library,
    default_units,
    toolchain_available,
)
from model.errors import BuildError, CompileError, SourceError, UnsupportedModelError
from model.source import SourceModel, find_model_files, load_treelite, read_source
from model.tree_limit import TreeLimitOption, apply_tree_limit, container_tree_limit
from model.verification import (
    DEFAULT_ROWS,
    DEFAULT_TOLERANCE,
    check_parity,
    predict_compiled,
    predict_gtil,
    read_reference_csv,
    sample_features,
    split_thresholds,
)

if TYPE_CHECKING:
    import treelite

__all__ = [
    "ARTIFACT_FILES",
    "Progress",
    "build_artifact",
    "OpenedSource",
    "default_bid_threshold",
    "open_source",
    "package_artifact",
    "resolve_source",
    "resolve_sources",
    "sole_archive",
]

Progress = Callable[[str], None]
"""Receives one human-readable line per step (e.g. `print` to stderr, or `logger.info`)."""

ARTIFACT_FILES = (MANIFEST_FILE, LIBRARY_FILE, CHECKPOINT_FILE, VERIFICATION_FILE)
"""The files of a serving artifact of one model, in packaging order."""
_MEMBER_FILE = re.compile(r"model-[0-9]+\.(so|tl)")
"""The library and checkpoint of ensemble member N >= 1."""

_MULTI_TARGET_HELP = (
    "multi-target models are not served by SageMaker's built-in XGBoost containers either"
)


def build_artifact(
    source: Path | str,
    *,
    output_dir: Path | str,
    feature_names: Sequence[str] | None = None,
    bid_threshold: float | Literal["auto"] | None = "auto",
    compile: bool | None = None,
    toolchain: str = DEFAULT_TOOLCHAIN,
    units: int | None = None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    reference: Path | str | None = None,
    verification_rows: int = DEFAULT_ROWS,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    tree_limit: TreeLimitOption = "auto",
    ensemble: bool = True,
    seed: int = 0,
    source_format: str | None = None,
    created_at: dt.datetime | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Build the serving artifact for `source` into `output_dir` and return its manifest.

    `source` is a model file (pickled Booster, legacy binary, JSON, UBJSON), a directory holding
    one (`xgboost-model` preferred), or a tar archive such as SageMaker's `model.tar.gz`.
    `output_dir` must not exist, be empty, or hold a previous artifact (which is replaced).

    Options:
    - `feature_names`: names to record (default: those stored in the model, else f0, f1, ...).
    - `bid_threshold`: recorded for the server; "auto" gives 0.5 for probabilities, 0.0 for
      `binary:logitraw` margins and None for regression.
    - `compile`: True requires a C toolchain, False writes only the treelite fallback, None
      (default) compiles when `toolchain` works and falls back (saying so) otherwise. A
      compiled library that disagrees with GTIL always fails the build.
    - `units`: translation units for tl2cgen's `parallel_comp` (default: one per CPU, more for
      models with thousands of trees).
    - `opt_level`: the compiler's `-O` level (default 1: see docs/model.md for why).
    - `reference`: a CSV of feature rows followed by the prediction the producer of the model
      gave (e.g. XGBoost itself); those rows are checked and kept in the verification set.
    - `verification_rows`, `tolerance`, `seed`: the generated verification sample.
    - `tree_limit`: "auto" cuts the trees where the SageMaker container that wrote the model
      does (`best_ntree_limit`, see model.tree_limit), "all" keeps every tree, N keeps the
      first N boosting rounds. The trees are cut before compiling.
    - `ensemble`: SageMaker's `SAGEMAKER_INFERENCE_ENSEMBLE` (default on): a directory of
      several model files is served as their mean (or vote), as the built-in container does;
      off, only one file is built (see `model.source.find_model_files`).
    - `source_format`: record this instead of the detected format (training passes "trained").
    - `created_at`: the build time to record (default now); with it fixed, the same source and
      options give byte-identical files.
    - `progress`: called with a line per step, timings included.

    Raises a `model.errors.ModelError` subclass naming the file at fault.
    """
    if opt_level not in (0, 1, 2, 3):
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, not {opt_level!r}")
    if verification_rows < 1:
        raise ValueError(f"verification_rows must be at least 1, not {verification_rows}")
    if not (0 < tolerance.absolute < 1 and 0 <= tolerance.relative < 1):
        raise ValueError(f"tolerance must be between 0 and 1, not {tolerance}")
    if source_format is not None and source_format not in SOURCE_FORMATS:
        raise ValueError(f"source_format must be one of {', '.join(SOURCE_FORMATS)}")
    say = progress or _quiet
    started = time.perf_counter()
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise BuildError(f"{output_dir}: exists and is not a directory")
    with resolve_sources(source, ensemble=ensemble) as model_files:
        members: list[_Member] = []
        for model_file in model_files:
            with _step(say, f"read {model_file.name}"):
                src = read_source(model_file)
            say(
                f"  source: {src.format} (model bytes: {src.payload_format}), "
                f"objective {src.objective}, {model_file.stat().st_size:,} bytes"
            )
            limit = container_tree_limit(src, tree_limit)
            say(f"  tree limit: {limit.trees_used} of {limit.trees_in_source} trees ({limit.rule})")
            members.append(
                _Member(
                    source=apply_tree_limit(src, limit),
                    tree_limit=TreeLimitInfo(
                        trees_used=limit.trees_used,
                        trees_in_source=limit.trees_in_source,
                        rule=limit.rule,
                    ),
                )
            )
        manifest = _build_from_sources(
            members,
            output_dir=output_dir,
            feature_names=feature_names,
            bid_threshold=bid_threshold,
            compile=compile,
            toolchain=toolchain,
            units=units,
            opt_level=opt_level,
            reference=Path(reference) if reference is not None else None,
            verification_rows=verification_rows,
            tolerance=tolerance,
            seed=seed,
            source_format=source_format,
            created_at=created_at,
            say=say,
        )
    say(f"artifact built in {time.perf_counter() - started:.2f} s")
    return manifest


@contextmanager
def resolve_source(source: Path | str) -> Iterator[Path]:
    """The one model file behind `source` (see `resolve_sources` with `ensemble=False`)."""
    with resolve_sources(source, ensemble=False) as files:
        yield files[0]


@dataclass(frozen=True, slots=True)
class OpenedSource:
    """What a path given as a source holds, once a tar archive is extracted."""

    path: Path
    """The path named (for a directory holding only a tar archive: that archive)."""
    directory: Path | None
    """The directory of its files (the extracted archive's); None for a single file."""
    is_artifact: bool
    """The directory is a serving artifact (it has a manifest)."""
    archived: bool
    """`path` is a tar archive, extracted into `directory`."""


@contextmanager
def open_source(source: Path | str) -> Iterator[OpenedSource]:
    """A file, a directory, or a tar archive extracted (checked) into a temp dir; a directory
    that holds only a tar archive (SageMaker's `model.tar.gz`, not unpacked) stands for that
    archive."""
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        is_artifact = is_artifact_dir(path)
        archive = None if is_artifact else sole_archive(path)
        if archive is None:
            yield OpenedSource(path=path, directory=path, is_artifact=is_artifact, archived=False)
            return
        path = archive
    if is_tar_archive(path):
        with tempfile.TemporaryDirectory(prefix="rtb-extract-") as tmp:
            extract_archive(path, tmp)
            yield OpenedSource(
                path=path, directory=Path(tmp), is_artifact=is_artifact_dir(tmp), archived=True
            )
        return
    yield OpenedSource(path=path, directory=None, is_artifact=False, archived=False)


@contextmanager
def resolve_sources(source: Path | str, *, ensemble: bool = True) -> Iterator[list[Path]]:
    """The model files behind `source` (`open_source`; `model.source.find_model_files`:
    several only for a directory of several top-level model files with `ensemble`)."""
    with open_source(source) as opened:
        if opened.is_artifact:
            advice = "unpack it and serve it" if opened.archived else "serve it as it is"
            raise SourceError(
                f"{opened.path}: is already a serving artifact (it has {MANIFEST_FILE}); "
                f"{advice}, or build from the original XGBoost model"
            )
        if opened.directory is None:
            yield [opened.path]
        else:
            yield find_model_files(opened.directory, ensemble=ensemble)


def sole_archive(directory: Path) -> Path | None:
    """The tar archive a directory holds when it holds nothing else (an upload not unpacked)."""
    entries = [entry for entry in directory.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_file() and is_tar_archive(entries[0]):
        return entries[0]
    return None


def package_artifact(artifact_dir: Path | str, *, output: Path | str) -> Path:
    """Check `artifact_dir` against its manifest and write it as a top-level `model.tar.gz`."""
    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    verify_files(artifact_dir, manifest)
    names = [MANIFEST_FILE, *sorted(manifest.files)]
    return write_archive(artifact_dir, names, output=output)


def default_bid_threshold(objective: str, output_transform: str) -> float | None:
    """0.5 for probabilities, 0.0 for margins of a binary objective, None for regression."""
    if output_transform == "sigmoid" or objective in ("binary:hinge",):
        return 0.5
    if objective.startswith("binary:"):
        return 0.0
    return None


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Member:
    source: SourceModel
    tree_limit: TreeLimitInfo


def _member_files(index: int) -> tuple[str, str]:
    """(library, checkpoint) names of ensemble member `index` (member 0: the usual names)."""
    if index == 0:
        return LIBRARY_FILE, CHECKPOINT_FILE
    return f"model-{index}.so", f"model-{index}.tl"


def _build_from_sources(
    members: list[_Member],
    *,
    output_dir: Path,
    feature_names: Sequence[str] | None,
    bid_threshold: float | Literal["auto"] | None,
    compile: bool | None,
    toolchain: str,
    units: int | None,
    opt_level: int,
    reference: Path | None,
    verification_rows: int,
    tolerance: Tolerance,
    seed: int,
    source_format: str | None,
    created_at: dt.datetime | None,
    say: Progress,
) -> Manifest:
    import treelite

    first = members[0].source
    with _step(say, "parse with treelite"):
        models = [load_treelite(member.source) for member in members]
    header = models[0].get_header_accessor()
    output_transform = str(header.get_field("postprocessor"))
    num_target = int(np.asarray(header.get_field("num_target")).ravel()[0])
    classes = int(np.asarray(header.get_field("num_class")).ravel().max())
    output_kind, num_outputs = _outputs(first, num_target=num_target, classes=classes)
    num_features = int(models[0].num_feature)
    for member, model in zip(members, models, strict=True):
        if int(model.num_tree) != member.tree_limit.trees_used:
            raise BuildError(
                f"{member.source.path}: treelite parsed {model.num_tree} trees, the tree limit "
                f"kept {member.tree_limit.trees_used}; refusing to build a model of unknown trees"
            )
        if (member.source.objective, member.source.num_class, int(model.num_feature)) != (
            first.objective,
            first.num_class,
            num_features,
        ):
            raise UnsupportedModelError(
                f"{member.source.path}: objective {member.source.objective}, "
                f"{model.num_feature} features; {first.path.name} has {first.objective}, "
                f"{num_features} features: an ensemble's models must agree"
            )
    combine = "vote" if first.objective in ("multi:softmax", "binary:hinge") else "mean"
    if len(members) > 1:
        say(f"  ensemble of {len(members)} models, combined by {combine}")
    names = _feature_names(first, feature_names, num_features)
    threshold: float | None
    if bid_threshold == "auto":
        threshold = default_bid_threshold(first.objective, output_transform)
    elif bid_threshold is None or isinstance(bid_threshold, int | float):
        threshold = None if bid_threshold is None else float(bid_threshold)
    else:
        raise ValueError(f"bid_threshold must be a number, None or 'auto', not {bid_threshold!r}")

    def expected_of(features: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float64]]:
        return [predict_gtil(model, features, output_kind=output_kind) for model in models]

    def combined(each: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
        if len(each) == 1:
            return each[0]
        return combine_members(each, combine).astype(np.float64)

    with _step(say, f"verification sample of {verification_rows} rows, expected by GTIL"):
        thresholds = [split_thresholds(model) for model in models]
        merged = [np.unique(np.concatenate(found)) for found in zip(*thresholds, strict=True)]
        features = sample_features(merged, rows=verification_rows, seed=seed)
        per_member = expected_of(features)
    if reference is not None:
        if num_outputs != 1:
            raise BuildError(
                f"{reference}: reference rows hold one prediction each; this model has "
                f"{num_outputs} outputs per row"
            )
        ref_features, ref_expected = read_reference_csv(reference, num_features=num_features)
        with _step(say, f"reference rows: {len(ref_expected)} from {reference.name}"):
            ref_members = expected_of(ref_features)
            report = check_parity(
                combined(ref_members),
                ref_expected,
                tolerance=tolerance,
                what=f"treelite GTIL against {reference}",
            )
        say(f"  GTIL vs reference: max |diff| {report.max_abs_diff:.3g}")
        expected = np.concatenate([ref_expected, combined(per_member)])  # the producer's values
        features = np.ascontiguousarray(np.concatenate([ref_features, features]))
        per_member = [
            np.concatenate([ref, own]) for ref, own in zip(ref_members, per_member, strict=True)
        ]
    else:
        expected = combined(per_member)

    # Only now, with the sources known to be good, is the output directory touched.
    _prepare_output_dir(output_dir)
    for index, model in enumerate(models):
        checkpoint = output_dir / _member_files(index)[1]
        with _step(say, f"write {checkpoint.name}"):
            model.serialize(str(checkpoint))
            reloaded = treelite.Model.deserialize(str(checkpoint))
            check_parity(
                predict_gtil(reloaded, features, output_kind=output_kind),
                per_member[index],
                tolerance=tolerance,
                what=f"{checkpoint} (treelite GTIL)",
            )

    compiled: CompiledInfo | None = None
    should_compile = toolchain_available(toolchain) if compile is None else compile
    if compile is None and not should_compile:
        say(
            f"  no {toolchain} on PATH: writing the treelite fallback only "
            "(the server predicts with GTIL, several times slower)"
        )
    if should_compile:
        libraries = [output_dir / _member_files(index)[0] for index in range(len(models))]
        try:
            for library, model in zip(libraries, models, strict=True):
                parts = units or default_units(model.num_tree)
                with _step(
                    say, f"compile {library.name} ({toolchain} -O{opt_level}, {parts} units)"
                ):
                    compile_library(
                        model,
                        libpath=library,
                        toolchain=toolchain,
                        units=parts,
                        opt_level=opt_level,
                    )
        except CompileError as exc:
            if compile is not None:
                raise
            for library in libraries:
                library.unlink(missing_ok=True)
            say(f"  compiling failed, writing the treelite fallback only: {exc}")
        else:
            for library, own in zip(libraries, per_member, strict=True):
                with _step(say, f"check {library.name} on {len(own)} rows"):
                    report = check_parity(
                        predict_compiled(library, features, output_kind=output_kind),
                        own,
                        tolerance=tolerance,
                        what=f"{library} (compiled)",
                    )
                say(f"  compiled vs GTIL: max |diff| {report.max_abs_diff:.3g}")
            compiled = CompiledInfo(
                library=LIBRARY_FILE,
                platform=f"{sys.platform}-{platform.machine()}",
                toolchain=toolchain,
            )

    verification = output_dir / VERIFICATION_FILE
    _write_npz(verification, features=features, expected=expected)
    written = [VERIFICATION_FILE]
    for index in range(len(models)):
        library_name, checkpoint_name = _member_files(index)
        written.append(checkpoint_name)
        if compiled is not None:
            written.append(library_name)
    files = {name: sha256_file(output_dir / name) for name in written}
    ensemble_info = (
        None
        if len(members) == 1
        else EnsembleInfo(
            combine=combine,
            members=tuple(
                MemberInfo(
                    source_file=member.source.path.name,
                    source_sha256=member.source.sha256,
                    num_trees=int(model.num_tree),
                    tree_limit=member.tree_limit,
                    library=_member_files(index)[0] if compiled is not None else None,
                    checkpoint=_member_files(index)[1],
                )
                for index, (member, model) in enumerate(zip(members, models, strict=True))
            ),
        )
    )
    manifest = Manifest(
        created_at=(created_at or dt.datetime.now(dt.UTC))
        .astimezone(dt.UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=ModelInfo(
            source_format=source_format or first.format,
            source_file=first.path.name,
            source_sha256=first.sha256,
            objective=first.objective,
            output_transform=output_transform,
            base_score=_base_score(first, models[0]),
            num_trees=int(models[0].num_tree),
            num_features=num_features,
            feature_names=names,
            bid_threshold=threshold,
            num_class=first.num_class if first.objective.startswith("multi:") else 0,
            num_outputs=num_outputs,
            output_kind=output_kind,
            tree_limit=members[0].tree_limit,
        ),
        compiled=compiled,
        fallback=FallbackInfo(checkpoint=CHECKPOINT_FILE),
        verification=VerificationInfo(
            file=VERIFICATION_FILE, rows=int(len(expected)), tolerance=tolerance
        ),
        versions=Versions(
            python=platform.python_version(),
            numpy=np.__version__,
            treelite=treelite.__version__,
            tl2cgen=_installed_version("tl2cgen"),
            xgboost=first.xgboost_version,
        ),
        files=files,
        ensemble=ensemble_info,
    )
    write_manifest(output_dir, manifest)
    return manifest


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez` with fixed zip timestamps, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _base_score(src: SourceModel, model: treelite.Model) -> float | None:
    if src.base_score is not None:
        return src.base_score
    # Treelite stores the margin; report it only when the source does not record the score.
    margin = np.asarray(model.get_header_accessor().get_field("base_scores"), dtype=np.float64)
    if margin.size > 1:
        return None  # one per class
    return float(margin.ravel()[0]) if margin.size else 0.0


def _outputs(src: SourceModel, *, num_target: int, classes: int) -> tuple[str, int]:
    """(`output_kind`, outputs per row) of what XGBoost's `predict` returns for this model."""
    if num_target != 1:
        raise UnsupportedModelError(
            f"{src.path}: the model has {num_target} targets (objective {src.objective}); "
            f"{_MULTI_TARGET_HELP}"
        )
    if src.objective == "multi:softmax":
        return "class_index", 1
    if classes > 1 and src.objective != "multi:softprob":
        raise UnsupportedModelError(
            f"{src.path}: the model has {classes} classes but objective {src.objective}; "
            "only multi:softprob and multi:softmax models have several classes"
        )
    return "score", classes


def _feature_names(
    src: SourceModel, explicit: Sequence[str] | None, num_features: int
) -> tuple[str, ...]:
    if explicit is not None:
        names = tuple(explicit)
        where = "the feature names given"
    elif src.feature_names is not None:
        names = src.feature_names
        where = f"the feature names stored in {src.path}"
    else:
        return tuple(f"f{index}" for index in range(num_features))
    if len(names) != num_features:
        raise SourceError(
            f"{src.path}: the model has {num_features} features but {where} are {len(names)}: "
            f"{', '.join(names)}"
        )
    if len(set(names)) != len(names) or not all(name.strip() for name in names):
        raise SourceError(f"{src.path}: {where} must be distinct and non-empty")
    return names


def _prepare_output_dir(output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    entries = {entry.name for entry in output_dir.iterdir()}
    if not entries:
        return
    members = {name for name in entries if _MEMBER_FILE.fullmatch(name)}
    if not entries - members <= set(ARTIFACT_FILES):
        foreign = ", ".join(sorted(entries - members - set(ARTIFACT_FILES)))
        raise BuildError(
            f"{output_dir}: is not empty and not a previous artifact (it holds {foreign}); "
            "choose a new directory"
        )
    # Replace a previous (or half-written) artifact: the manifest goes first, so a crash
    # never leaves a manifest describing files that are no longer there.
    for name in (*ARTIFACT_FILES, *sorted(members)):
        (output_dir / name).unlink(missing_ok=True)


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _quiet(_: str) -> None:
    return None


@contextmanager
def _step(say: Progress, what: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    say(f"{what}: {time.perf_counter() - started:.2f} s")
