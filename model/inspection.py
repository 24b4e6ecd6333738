"""Describe what a path holds: a serving artifact, or a raw model and what `build` would do.

Used by `python -m model inspect`; importable for notebooks (`describe(path).text`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.artifact import (
    Manifest,
    manifest_to_dict,
    read_manifest,
    verify_files,
)
from model.build import open_source
from model.errors import IntegrityError
from model.source import SourceModel, find_model_file, read_source
from model.tree_limit import container_tree_limit

__all__ = ["Description", "describe", "format_manifest"]


@dataclass(frozen=True, slots=True)
class Description:
    """What `describe` found: `text` for people, `as_dict()` for machines."""

    kind: str
    """`artifact` (ours) or `source` (a raw XGBoost model that `build` accepts)."""
    path: Path
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), **self.details}


def describe(path: Path | str) -> Description:
    """Describe a serving artifact (directory or tar.gz) or a raw SageMaker/XGBoost model.

    An artifact's file hashes are checked: a mismatch raises `IntegrityError`.
    """
    with open_source(path) as opened:
        if opened.directory is None:
            return _describe_source(opened.path, opened.path)
        if opened.is_artifact:
            return _describe_artifact(opened.path, opened.directory)
        return _describe_source(opened.path, find_model_file(opened.directory))


def format_manifest(manifest: Manifest, *, files_checked: bool = False) -> str:
    """A few aligned lines a person can read: what the model is, how it is served, provenance."""
    model = manifest.model
    versions = manifest.versions
    base = "per class" if model.base_score is None else f"{model.base_score:g}"
    classes = f", {model.num_class} classes" if model.num_class else ""
    limit = model.tree_limit
    rows = [
        (
            "model",
            f"{model.objective}, {model.output_transform} output{classes}, "
            f"base score {base}, {model.num_trees} trees",
        ),
        (
            "predicts",
            f"{model.num_outputs} value{'s' if model.num_outputs > 1 else ''} per row"
            + (" (class index)" if model.output_kind == "class_index" else ""),
        ),
        (
            "tree limit",
            "not recorded (format 1 artifact: every tree)"
            if limit is None
            else f"{limit.trees_used} of {limit.trees_in_source} trees: {limit.rule}",
        ),
        ("features", f"{model.num_features}: {', '.join(model.feature_names)}"),
        *(
            []
            if manifest.ensemble is None
            else [
                (
                    "ensemble",
                    f"{len(manifest.ensemble.members)} models combined by "
                    f"{manifest.ensemble.combine}: "
                    + ", ".join(
                        f"{m.source_file} ({m.num_trees} trees)" for m in manifest.ensemble.members
                    ),
                )
            ]
        ),
        (
            "bid when",
            "no bid threshold (regression)"
            if model.bid_threshold is None
            else f"score >= {model.bid_threshold:g}",
        ),
        (
            "source",
            f"{model.source_file} ({model.source_format}, sha256 {model.source_sha256[:12]}…)"
            + (f", written by XGBoost {versions.xgboost}" if versions.xgboost else ""),
        ),
        (
            "compiled",
            f"{manifest.compiled.library} for {manifest.compiled.platform} "
            f"({manifest.compiled.toolchain})"
            if manifest.compiled is not None
            else "no: the server predicts with treelite GTIL from the checkpoint (slower)",
        ),
        ("fallback", f"{manifest.fallback.checkpoint} (treelite checkpoint)"),
        (
            "verification",
            f"{manifest.verification.rows:,} rows in {manifest.verification.file}, "
            f"tolerance {manifest.verification.tolerance.describe()}",
        ),
        (
            "built",
            f"{manifest.created_at} with Python {versions.python}, numpy {versions.numpy}, "
            f"treelite {versions.treelite}, tl2cgen {versions.tl2cgen or '-'}",
        ),
    ]
    for name, digest in sorted(manifest.files.items()):
        status = "  ok" if files_checked else ""
        rows.append(("file", f"{name:<18} sha256 {digest[:16]}…{status}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _describe_artifact(shown: Path, directory: Path) -> Description:
    manifest = read_manifest(directory)
    try:
        verify_files(directory, manifest)
    except IntegrityError as exc:
        raise IntegrityError(f"{shown}: {exc}") from exc
    text = (
        f"{shown}: serving artifact, format {manifest.format} v{manifest.format_version}\n"
        + format_manifest(manifest, files_checked=True)
    )
    return Description(
        kind="artifact",
        path=shown,
        text=text,
        details={"files_verified": True, "manifest": manifest_to_dict(manifest)},
    )


def _describe_source(shown: Path, model_file: Path) -> Description:
    source = read_source(model_file)
    inside = "" if model_file == shown else f" ({model_file.name} inside)"
    details: dict[str, Any] = {
        "source_format": source.format,
        "model_file": model_file.name,
        "payload_format": source.payload_format,
        "sha256": source.sha256,
        "objective": source.objective,
        "base_score": source.base_score,
        "feature_names": list(source.feature_names) if source.feature_names else None,
        "xgboost_version": source.xgboost_version,
    }
    limit = container_tree_limit(source)
    details["tree_limit"] = {
        "trees_used": limit.trees_used,
        "trees_in_source": limit.trees_in_source,
        "rule": limit.rule,
    }
    details.update(_treelite_summary(source))
    lines = [
        f"{shown}: raw XGBoost model{inside}, not a serving artifact",
        f"  format      {_format_text(source)}",
        f"  objective   {source.objective}, base score "
        + ("unknown" if source.base_score is None else f"{source.base_score:g}"),
    ]
    if "num_trees" in details:
        lines.append(
            f"  trees       {details['num_trees']}, {details['num_features']} features, "
            f"{details['output_transform']} output"
        )
    lines.append(f"  tree limit  {limit.trees_used} of {limit.trees_in_source} trees: {limit.rule}")
    if source.feature_names:
        lines.append(f"  features    {', '.join(source.feature_names)}")
    if source.xgboost_version:
        lines.append(f"  written by  XGBoost {source.xgboost_version}")
    lines.append(f"  sha256      {source.sha256}")
    from model.compiler import DEFAULT_TOOLCHAIN, toolchain_available

    compiles = (
        f"compile it with {DEFAULT_TOOLCHAIN} to model.so, keep model.tl as the fallback"
        if toolchain_available(DEFAULT_TOOLCHAIN)
        else f"write model.tl only (no {DEFAULT_TOOLCHAIN} on PATH here: add --no-compile)"
    )
    lines.append(
        f"  build       `python -m model build {shown} --output model.tar.gz` would parse it "
        f"with treelite, {compiles}, and check them on ~1000 verification rows"
    )
    return Description(kind="source", path=shown, text="\n".join(lines), details=details)


def _format_text(source: SourceModel) -> str:
    if source.format == "sagemaker-pickle":
        inner = {
            "legacy-binary": "legacy binary model (raw memory snapshot or bare)",
            "json": "JSON model",
            "ubjson": "UBJSON model",
        }[source.payload_format]
        return (
            "pickled xgboost Booster, as SageMaker's built-in XGBoost container saves it; "
            f"holds a {inner} (read without executing the pickle)"
        )
    return {
        "legacy-binary": "XGBoost legacy binary",
        "json": "XGBoost JSON",
        "ubjson": "XGBoost UBJSON",
    }[source.format]


def _treelite_summary(source: SourceModel) -> dict[str, Any]:
    try:
        import treelite
    except ImportError:  # pragma: no cover - treelite is a runtime dependency
        return {}
    from model.source import load_treelite

    model = load_treelite(source)
    header = model.get_header_accessor()
    return {
        "num_trees": int(model.num_tree),
        "num_features": int(model.num_feature),
        "output_transform": str(header.get_field("postprocessor")),
        "treelite": treelite.__version__,
    }
