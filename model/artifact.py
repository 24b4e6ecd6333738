"""The serving artifact: the manifest, its files, their hashes and the verification set.

This module is what the server imports, so it uses the standard library and numpy only.
The layout (see docs/architecture.md) is a directory, or a `model.tar.gz` that unpacks into one:

    manifest.json      the only file read first; describes everything else
    model.so           the tl2cgen-compiled library (absent when `compiled` is null)
    model.tl           the treelite checkpoint: the portable, slower fallback
    verification.npz   rows and the predictions they must produce
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from model.atomic_write import atomic_write
from model.errors import (
    ArtifactError,
    IntegrityError,
    ManifestError,
    VerificationDataError,
)

__all__ = [
    "ARTIFACT_FORMAT",
    "ArtifactError",
    "CHECKPOINT_FILE",
    "FORMAT_VERSION",
    "IntegrityError",
    "LIBRARY_FILE",
    "MANIFEST_FILE",
    "SOURCE_FORMATS",
    "VERIFICATION_FILE",
    "CompiledInfo",
    "FallbackInfo",
    "Manifest",
    "ManifestError",
    "COMBINE_RULES",
    "EnsembleInfo",
    "MemberInfo",
    "ModelInfo",
    "OUTPUT_KINDS",
    "combine_members",
    "READABLE_FORMAT_VERSIONS",
    "Tolerance",
    "TreeLimitInfo",
    "VerificationDataError",
    "VerificationInfo",
    "Versions",
    "is_artifact_dir",
    "load_verification",
    "manifest_from_dict",
    "manifest_to_dict",
    "read_manifest",
    "resolve_member",
    "sha256_file",
    "verify_files",
    "write_manifest",
]

ARTIFACT_FORMAT = "rtb-inference-artifact"
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
"""Version 1 (single-output models, absolute tolerance) is still read: see `manifest_from_dict`."""
OUTPUT_KINDS = ("score", "class_index")
COMBINE_RULES = ("mean", "vote")
DEFAULT_ABSOLUTE_TOLERANCE = 1e-6
DEFAULT_RELATIVE_TOLERANCE = 1e-6
MANIFEST_FILE = "manifest.json"
LIBRARY_FILE = "model.so"
CHECKPOINT_FILE = "model.tl"
VERIFICATION_FILE = "verification.npz"
SOURCE_FORMATS = ("sagemaker-pickle", "legacy-binary", "json", "ubjson", "trained")

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a prediction may be from the expected value: `|got - expected| <= absolute +
    relative * |expected|`, elementwise. The one definition used by the build, the server's
    start-up check and the tests: float32 predictions of 10 to 25 are 1 to 2e-6 apart from
    one ULP to the next, so a purely absolute 1e-6 refuses correct regression models."""

    absolute: float = DEFAULT_ABSOLUTE_TOLERANCE
    relative: float = DEFAULT_RELATIVE_TOLERANCE

    def excess(
        self, actual: npt.NDArray[np.float64], expected: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """`|actual - expected| - allowed` per element: > 0 where the tolerance is broken.
        NaN where either is NaN (a NaN is never within tolerance: test with `~(excess <= 0)`)."""
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        allowed = self.absolute + self.relative * np.abs(expected)
        return np.asarray(np.abs(actual - expected) - allowed, dtype=np.float64)

    def describe(self) -> str:
        return f"absolute {self.absolute:g} + relative {self.relative:g}"


@dataclass(frozen=True, slots=True)
class TreeLimitInfo:
    """Which trees of the source are compiled (see model.tree_limit)."""

    trees_used: int
    trees_in_source: int
    rule: str


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One model of an ensemble: its source, trees and files."""

    source_file: str
    source_sha256: str
    num_trees: int
    tree_limit: TreeLimitInfo
    library: str | None
    """Null when the artifact is not compiled."""
    checkpoint: str


@dataclass(frozen=True, slots=True)
class EnsembleInfo:
    """Several model files served together, as SageMaker's built-in container does with
    `SAGEMAKER_INFERENCE_ENSEMBLE` (the default): `mean` of the members' predictions, or
    `vote` (per-row mode, the smallest value on a tie) for multi:softmax and binary:hinge.
    `members[0]` is also described by `model`, `compiled` and `fallback`."""

    combine: str
    members: tuple[MemberInfo, ...]


def combine_members(predictions: list[npt.NDArray[Any]], combine: str) -> npt.NDArray[np.float32]:
    """The built-in's combination of its members' float32 predictions (see `EnsembleInfo`)."""
    stacked = np.stack([np.asarray(p, dtype=np.float32) for p in predictions])
    if combine == "mean":
        return np.asarray(np.mean(stacked, axis=0), dtype=np.float32)
    # scipy.stats.mode over the members: the most frequent value, the smallest on a tie
    counts = (stacked[:, None] == stacked[None, :]).sum(axis=1)
    most = counts == counts.max(axis=0, keepdims=True)
    return np.asarray(np.where(most, stacked, np.inf).min(axis=0), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the model computes, and where it came from."""

    source_format: str
    """One of `SOURCE_FORMATS`."""
    source_file: str
    """File name of the source model (no directory), e.g. `xgboost-model`."""
    source_sha256: str
    objective: str
    """XGBoost objective, e.g. `binary:logistic`."""
    output_transform: str
    """Treelite postprocessor applied to the summed margin: `sigmoid`, `identity`, ..."""
    base_score: float | None
    """XGBoost's base score as the user gave it (a probability for `binary:logistic`); null
    when the model has one per class (XGBoost 3 multi-class)."""
    num_trees: int
    """Trees compiled (after the tree limit)."""
    num_features: int
    feature_names: tuple[str, ...]
    bid_threshold: float | None
    """Bid when the served prediction is >= this; null for models that do not score a bid."""
    num_class: int = 0
    """XGBoost's `num_class` as the built-in's config reports it: 0 unless `multi:*`."""
    num_outputs: int = 1
    """Values per row the predictor returns: `num_class` for `multi:softprob`, else 1."""
    output_kind: str = "score"
    """`score`: the library's output as is; `class_index`: the index of the largest margin
    (`multi:softmax`), as a float, as XGBoost returns it."""
    tree_limit: TreeLimitInfo | None = None
    """Null only in format-1 artifacts (built before tree limits were applied)."""


@dataclass(frozen=True, slots=True)
class CompiledInfo:
    """The compiled library (see docs/model.md for its exported symbols)."""

    library: str
    platform: str
    """`sys.platform` + `-` + `platform.machine()` of the build machine, e.g. `linux-x86_64`."""
    toolchain: str


@dataclass(frozen=True, slots=True)
class FallbackInfo:
    """The treelite checkpoint, predicted with treelite GTIL when `compiled` cannot be used."""

    checkpoint: str


@dataclass(frozen=True, slots=True)
class VerificationInfo:
    """Rows and the predictions they must produce, within `tolerance`."""

    file: str
    rows: int
    tolerance: Tolerance


@dataclass(frozen=True, slots=True)
class Versions:
    """Versions of the software that built the artifact.

    `xgboost` is the version that wrote the source model when the source records it
    (JSON models and pickles do; bare legacy binaries do not), else null.
    """

    python: str
    numpy: str
    treelite: str
    tl2cgen: str | None
    xgboost: str | None


@dataclass(frozen=True, slots=True)
class Manifest:
    """The contents of `manifest.json`, format version 2."""

    created_at: str
    model: ModelInfo
    compiled: CompiledInfo | None
    fallback: FallbackInfo
    verification: VerificationInfo
    versions: Versions
    files: Mapping[str, str] = field(default_factory=dict)
    """File name (relative to the artifact directory) to lowercase hex sha256."""
    ensemble: EnsembleInfo | None = None
    """Null for one model file."""
    format: str = ARTIFACT_FORMAT
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------------------------
# Reading and writing the manifest


def read_manifest(model_dir: Path | str) -> Manifest:
    """Read and validate `model_dir/manifest.json`.

    Raises `ManifestError` (naming the file and what is wrong) when the file is missing,
    is not JSON, is not an artifact of this format, or is of another format version.
    """
    path = Path(model_dir) / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: no manifest; this directory is not a serving artifact "
            "(build one with `python -m model build SOURCE --output DIR`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{path}: not valid JSON ({exc}); rebuild the artifact with `python -m model build`"
        ) from exc
    return manifest_from_dict(data, origin=str(path))


def write_manifest(model_dir: Path | str, manifest: Manifest) -> Path:
    """Write `model_dir/manifest.json` atomically (a reader never sees half a manifest)."""
    path = Path(model_dir) / MANIFEST_FILE
    text = json.dumps(manifest_to_dict(manifest), indent=2) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The manifest as the JSON object of docs/architecture.md, keys in the documented order."""
    model = manifest.model
    versions = manifest.versions
    compiled = manifest.compiled
    return {
        "format": manifest.format,
        "format_version": manifest.format_version,
        "created_at": manifest.created_at,
        "model": {
            "source_format": model.source_format,
            "source_file": model.source_file,
            "source_sha256": model.source_sha256,
            "objective": model.objective,
            "output_transform": model.output_transform,
            "base_score": model.base_score,
            "num_class": model.num_class,
            "num_outputs": model.num_outputs,
            "output_kind": model.output_kind,
            "num_trees": model.num_trees,
            "tree_limit": None if model.tree_limit is None else _tree_limit_dict(model.tree_limit),
            "num_features": model.num_features,
            "feature_names": list(model.feature_names),
            "bid_threshold": model.bid_threshold,
        },
        "compiled": None
        if compiled is None
        else {
            "library": compiled.library,
            "platform": compiled.platform,
            "toolchain": compiled.toolchain,
        },
        "fallback": {"checkpoint": manifest.fallback.checkpoint},
        "ensemble": None
        if manifest.ensemble is None
        else {
            "combine": manifest.ensemble.combine,
            "members": [
                {
                    "source_file": member.source_file,
                    "source_sha256": member.source_sha256,
                    "num_trees": member.num_trees,
                    "tree_limit": _tree_limit_dict(member.tree_limit),
                    "library": member.library,
                    "checkpoint": member.checkpoint,
                }
                for member in manifest.ensemble.members
            ],
        },
        "verification": {
            "file": manifest.verification.file,
            "rows": manifest.verification.rows,
            "tolerance": {
                "absolute": manifest.verification.tolerance.absolute,
                "relative": manifest.verification.tolerance.relative,
            },
        },
        "versions": {
            "python": versions.python,
            "numpy": versions.numpy,
            "treelite": versions.treelite,
            "tl2cgen": versions.tl2cgen,
            "xgboost": versions.xgboost,
        },
        "files": dict(sorted(manifest.files.items())),
    }


def _tree_limit_dict(limit: TreeLimitInfo) -> dict[str, Any]:
    return {
        "trees_used": limit.trees_used,
        "trees_in_source": limit.trees_in_source,
        "rule": limit.rule,
    }


def _read_tree_limit(reader: _Reader, raw: object, *, prefix: str) -> TreeLimitInfo:
    limit = reader.mapping(raw, prefix)
    return TreeLimitInfo(
        trees_used=reader.integer(limit, "trees_used", prefix=prefix, minimum=1),
        trees_in_source=reader.integer(limit, "trees_in_source", prefix=prefix, minimum=1),
        rule=reader.string(limit, "rule", prefix=prefix),
    )


def _read_ensemble(reader: _Reader, raw: object, *, compiled: bool) -> EnsembleInfo | None:
    if raw is None:
        return None
    section = reader.mapping(raw, "ensemble")
    combine = reader.string(section, "combine", prefix="ensemble")
    if combine not in COMBINE_RULES:
        raise ManifestError(
            f"{reader.origin}: ensemble.combine is {combine!r}, expected one of "
            f"{', '.join(COMBINE_RULES)}"
        )
    raw_members = reader.require(section, "members", prefix="ensemble")
    if not isinstance(raw_members, list) or len(raw_members) < 2:
        raise ManifestError(f"{reader.origin}: ensemble.members must list at least 2 models")
    members = []
    for index, item in enumerate(raw_members):
        prefix = f"ensemble.members[{index}]"
        member = reader.mapping(item, prefix)
        library = reader.optional_string(member, "library", prefix=prefix)
        if (library is None) == compiled:
            raise ManifestError(
                f"{reader.origin}: {prefix}.library must be "
                + ("a file name (the artifact is compiled)" if compiled else "null")
            )
        if library is not None:
            _check_member_name(library, origin=reader.origin)
        members.append(
            MemberInfo(
                source_file=reader.string(member, "source_file", prefix=prefix),
                source_sha256=reader.string(member, "source_sha256", prefix=prefix),
                num_trees=reader.integer(member, "num_trees", prefix=prefix, minimum=1),
                tree_limit=_read_tree_limit(
                    reader,
                    reader.require(member, "tree_limit", prefix=prefix),
                    prefix=f"{prefix}.tree_limit",
                ),
                library=library,
                checkpoint=reader.filename(member, "checkpoint", prefix=prefix),
            )
        )
    return EnsembleInfo(combine=combine, members=tuple(members))


def manifest_from_dict(data: object, *, origin: str = MANIFEST_FILE) -> Manifest:
    """Validate a decoded manifest. `origin` names the file in error messages."""
    reader = _Reader(origin)
    top = reader.mapping(data, "")
    fmt = reader.string(top, "format")
    if fmt != ARTIFACT_FORMAT:
        raise ManifestError(
            f"{origin}: format is {fmt!r}, expected {ARTIFACT_FORMAT!r}; "
            "this is not a manifest written by `python -m model`"
        )
    version = reader.integer(top, "format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise ManifestError(
            f"{origin}: format_version is {version}, this version of the server reads "
            f"{' and '.join(map(str, READABLE_FORMAT_VERSIONS))}; rebuild the artifact with "
            "this version's `python -m model build`"
        )
    model = reader.mapping(top.get("model"), "model")
    source_format = reader.string(model, "source_format", prefix="model")
    if source_format not in SOURCE_FORMATS:
        raise ManifestError(
            f"{origin}: model.source_format is {source_format!r}, expected one of "
            f"{', '.join(SOURCE_FORMATS)}"
        )
    num_features = reader.integer(model, "num_features", prefix="model", minimum=1)
    names = reader.strings(model, "feature_names", prefix="model")
    if len(names) != num_features:
        raise ManifestError(
            f"{origin}: model.feature_names has {len(names)} names but model.num_features "
            f"is {num_features}"
        )
    num_trees = reader.integer(model, "num_trees", prefix="model", minimum=1)
    if version == 1:
        # Format 1: single-output models, every tree, absolute tolerance.
        base_score: float | None = reader.number(model, "base_score", prefix="model")
        num_class, num_outputs, output_kind = 0, 1, "score"
        tree_limit: TreeLimitInfo | None = None
    else:
        base_score = reader.optional_number(model, "base_score", prefix="model")
        num_class = reader.integer(model, "num_class", prefix="model")
        num_outputs = reader.integer(model, "num_outputs", prefix="model", minimum=1)
        output_kind = reader.string(model, "output_kind", prefix="model")
        if output_kind not in OUTPUT_KINDS:
            raise ManifestError(
                f"{origin}: model.output_kind is {output_kind!r}, expected one of "
                f"{', '.join(OUTPUT_KINDS)}"
            )
        tree_limit = _read_tree_limit(
            reader, reader.require(model, "tree_limit", prefix="model"), prefix="model.tree_limit"
        )
        if tree_limit.trees_used != num_trees:
            raise ManifestError(
                f"{origin}: model.tree_limit.trees_used is {tree_limit.trees_used} but "
                f"model.num_trees is {num_trees}"
            )
    model_info = ModelInfo(
        source_format=source_format,
        source_file=reader.string(model, "source_file", prefix="model"),
        source_sha256=reader.string(model, "source_sha256", prefix="model"),
        objective=reader.string(model, "objective", prefix="model"),
        output_transform=reader.string(model, "output_transform", prefix="model"),
        base_score=base_score,
        num_trees=num_trees,
        num_features=num_features,
        feature_names=names,
        bid_threshold=reader.optional_number(model, "bid_threshold", prefix="model"),
        num_class=num_class,
        num_outputs=num_outputs,
        output_kind=output_kind,
        tree_limit=tree_limit,
    )
    compiled_raw = reader.require(top, "compiled")
    compiled: CompiledInfo | None = None
    if compiled_raw is not None:
        section = reader.mapping(compiled_raw, "compiled")
        compiled = CompiledInfo(
            library=reader.filename(section, "library", prefix="compiled"),
            platform=reader.string(section, "platform", prefix="compiled"),
            toolchain=reader.string(section, "toolchain", prefix="compiled"),
        )
    fallback = reader.mapping(top.get("fallback"), "fallback")
    verification = reader.mapping(top.get("verification"), "verification")
    versions = reader.mapping(top.get("versions"), "versions")
    files_raw = reader.mapping(top.get("files"), "files")
    files: dict[str, str] = {}
    for name, digest in files_raw.items():
        _check_member_name(name, origin=origin)
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise ManifestError(f"{origin}: files[{name!r}] is not a sha256 hex digest")
        files[name] = digest.lower()
    manifest = Manifest(
        format=fmt,
        format_version=version,
        created_at=reader.string(top, "created_at"),
        model=model_info,
        compiled=compiled,
        fallback=FallbackInfo(
            checkpoint=reader.filename(fallback, "checkpoint", prefix="fallback"),
        ),
        verification=VerificationInfo(
            file=reader.filename(verification, "file", prefix="verification"),
            rows=reader.integer(verification, "rows", prefix="verification", minimum=1),
            tolerance=_tolerance(reader, verification, version=version),
        ),
        versions=Versions(
            python=reader.string(versions, "python", prefix="versions"),
            numpy=reader.string(versions, "numpy", prefix="versions"),
            treelite=reader.string(versions, "treelite", prefix="versions"),
            tl2cgen=reader.optional_string(versions, "tl2cgen", prefix="versions"),
            xgboost=reader.optional_string(versions, "xgboost", prefix="versions"),
        ),
        files=files,
        ensemble=None
        if version == 1
        else _read_ensemble(reader, reader.require(top, "ensemble"), compiled=compiled is not None),
    )
    referenced = [manifest.fallback.checkpoint, manifest.verification.file]
    if manifest.compiled is not None:
        referenced.append(manifest.compiled.library)
    for member in manifest.ensemble.members if manifest.ensemble is not None else ():
        referenced.append(member.checkpoint)
        if member.library is not None:
            referenced.append(member.library)
    for name in referenced:
        if name not in files:
            raise ManifestError(
                f"{origin}: {name!r} is referenced but has no sha256 in `files`; "
                "rebuild the artifact with `python -m model build`"
            )
    return manifest


def _tolerance(reader: _Reader, section: Mapping[str, Any], *, version: int) -> Tolerance:
    if version == 1:
        return Tolerance(
            absolute=reader.number(section, "tolerance", prefix="verification"), relative=0.0
        )
    raw = reader.mapping(reader.require(section, "tolerance", prefix="verification"), "tolerance")
    tolerance = Tolerance(
        absolute=reader.number(raw, "absolute", prefix="verification.tolerance"),
        relative=reader.number(raw, "relative", prefix="verification.tolerance"),
    )
    if not (0 <= tolerance.absolute < 1 and 0 <= tolerance.relative < 1):
        raise ManifestError(f"{reader.origin}: verification.tolerance is out of range [0, 1)")
    return tolerance


# --------------------------------------------------------------------------------------------
# Files


def is_artifact_dir(path: Path | str) -> bool:
    """True when `path` is a directory holding a `manifest.json` (valid or not)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def sha256_file(path: Path | str) -> str:
    """Lowercase hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_member(model_dir: Path | str, name: str) -> Path:
    """`model_dir / name`; refuses names that are absolute, hold `..` or resolve outside."""
    _check_member_name(name, origin=str(Path(model_dir) / MANIFEST_FILE), error=IntegrityError)
    root = Path(model_dir).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise IntegrityError(
            f"{Path(model_dir) / name}: resolves to {path}, outside the artifact directory {root}"
        )
    return path


def verify_files(model_dir: Path | str, manifest: Manifest) -> None:
    """Check the sha256 of every file the manifest lists.

    Raises `IntegrityError` naming the file when one is missing, escapes `model_dir`
    (absolute path, `..`, a symlink pointing out) or has another hash.
    """
    for name, expected in sorted(manifest.files.items()):
        path = resolve_member(model_dir, name)
        if not path.is_file():
            raise IntegrityError(
                f"{Path(model_dir) / name}: listed in the manifest but missing; "
                "the artifact is incomplete, unpack or rebuild it"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise IntegrityError(
                f"{Path(model_dir) / name}: sha256 is {actual}, the manifest says {expected}; "
                "the file was changed or corrupted after the build, rebuild the artifact"
            )


def load_verification(
    model_dir: Path | str, manifest: Manifest
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Load the verification set as (features, expected).

    `features` is float32, C-contiguous, (rows, num_features); `expected` is float64, (rows,)
    or (rows, num_outputs) when the model has several outputs per row.

    NaN in `features` is a missing value. Raises `VerificationDataError` on any mismatch
    with the manifest. Never unpickles (`allow_pickle=False`).
    """
    path = resolve_member(model_dir, manifest.verification.file)
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"features", "expected"} <= names:
                raise VerificationDataError(
                    f"{path}: holds arrays {sorted(names)}, expected `features` and `expected`"
                )
            features = archive["features"]
            expected = archive["expected"]
    except VerificationDataError:
        raise
    except FileNotFoundError:
        raise VerificationDataError(f"{path}: missing; unpack or rebuild the artifact") from None
    except (OSError, ValueError) as exc:
        raise VerificationDataError(f"{path}: not a readable numpy .npz file: {exc}") from exc
    rows = manifest.verification.rows
    num_features = manifest.model.num_features
    if features.dtype != np.float32 or features.shape != (rows, num_features):
        raise VerificationDataError(
            f"{path}: `features` is {features.dtype} {features.shape}, "
            f"expected float32 ({rows}, {num_features})"
        )
    outputs = manifest.model.num_outputs
    shape = (rows,) if outputs == 1 else (rows, outputs)
    if expected.dtype != np.float64 or expected.shape != shape:
        raise VerificationDataError(
            f"{path}: `expected` is {expected.dtype} {expected.shape}, expected float64 {shape}"
        )
    if not np.isfinite(expected).all():
        raise VerificationDataError(f"{path}: `expected` holds NaN or infinite values")
    return np.ascontiguousarray(features), np.ascontiguousarray(expected)


# --------------------------------------------------------------------------------------------
# Validation helpers


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)


def _check_member_name(
    name: str, *, origin: str, error: type[ArtifactError] = ManifestError
) -> None:
    """A file name inside the artifact: relative, no `..`, no backslashes, not empty."""
    pure = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or pure.is_absolute()
        or any(part in ("..", "") for part in name.split("/"))
        or name.startswith("./")
    ):
        raise error(
            f"{origin}: file name {name!r} is not a plain relative path inside the artifact"
        )


class _Reader:
    """Typed access to a decoded JSON object, raising `ManifestError` with the key path."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def _where(self, prefix: str, key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    def _wrong(self, prefix: str, key: str, expected: str, value: object) -> ManifestError:
        return ManifestError(
            f"{self.origin}: {self._where(prefix, key)} must be {expected}, found {value!r}"
        )

    def mapping(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            what = where or "the top level"
            raise ManifestError(
                f"{self.origin}: {what} must be a JSON object, found {type(value).__name__}"
            )
        return value

    def require(self, section: Mapping[str, Any], key: str, *, prefix: str = "") -> Any:
        if key not in section:
            raise ManifestError(
                f"{self.origin}: missing key {self._where(prefix, key)!r}; "
                "rebuild the artifact with `python -m model build`"
            )
        return section[key]

    def string(self, section: Mapping[str, Any], key: str, *, prefix: str = "") -> str:
        value = self.require(section, key, prefix=prefix)
        if not isinstance(value, str):
            raise self._wrong(prefix, key, "a string", value)
        return value

    def optional_string(
        self, section: Mapping[str, Any], key: str, *, prefix: str = ""
    ) -> str | None:
        value = self.require(section, key, prefix=prefix)
        if value is not None and not isinstance(value, str):
            raise self._wrong(prefix, key, "a string or null", value)
        return value

    def filename(self, section: Mapping[str, Any], key: str, *, prefix: str = "") -> str:
        value = self.string(section, key, prefix=prefix)
        _check_member_name(value, origin=self.origin)
        return value

    def integer(
        self, section: Mapping[str, Any], key: str, *, prefix: str = "", minimum: int = 0
    ) -> int:
        value = self.require(section, key, prefix=prefix)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._wrong(prefix, key, f"an integer >= {minimum}", value)
        return value

    def number(self, section: Mapping[str, Any], key: str, *, prefix: str = "") -> float:
        value = self.require(section, key, prefix=prefix)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._wrong(prefix, key, "a finite number", value)
        return float(value)

    def optional_number(
        self, section: Mapping[str, Any], key: str, *, prefix: str = ""
    ) -> float | None:
        if self.require(section, key, prefix=prefix) is None:
            return None
        return self.number(section, key, prefix=prefix)

    def strings(self, section: Mapping[str, Any], key: str, *, prefix: str = "") -> tuple[str, ...]:
        value = self.require(section, key, prefix=prefix)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ManifestError(
                f"{self.origin}: {self._where(prefix, key)} must be a list of strings"
            )
        return tuple(value)
