"""Which model directory the workers serve, importing a raw SageMaker XGBoost output once.

`/opt/ml/model` (`RTB_MODEL_DIR`) may hold our serving artifact (a `manifest.json`), or what the
built-in SageMaker XGBoost algorithm wrote (`xgboost-model`, possibly still as `model.tar.gz`),
or nothing, in which case the image's baked model (`RTB_DEFAULT_MODEL_DIR`) is served.

A raw model is built into an artifact once, in the supervisor before any worker starts, under
the system temporary directory (SageMaker's model directory is read-only) in a directory named
by a sha256 of the source files, the import settings and the artifact format version
(`cache_key`), so a restarted container reuses it instead of compiling again, and an entry
written by older code or with other settings is never served. The cache is private: created
0700, and reused only if this user owns it and no one else can write to it (see
`build_cached_artifact`).

The import settings (`ImportSettings`, read once from the environment by `resolve_model_dir`):

- `SAGEMAKER_INFERENCE_ENSEMBLE`: read exactly as the built-in reads it, on unless the value is
  exactly `true` when set (`os.environ.get(name, "true") == "true"`): several top-level model
  files (k-fold output) are served as one ensemble; off, one file.
- `RTB_TREE_LIMIT`: `auto` (default: the tree limit of the container generation that wrote the
  model, see model.tree_limit), `all`, or N boosting rounds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from model.archive import is_tar_archive
from model.artifact import FORMAT_VERSION, is_artifact_dir, read_manifest, verify_files
from model.errors import ArtifactError
from model.tree_limit import TreeLimitOption, parse_tree_limit
from serve.ownership import why_not_private

logger = logging.getLogger(__name__)

CACHE_DIR_NAME = "rtb-inference-artifacts"
_MAX_SOURCE_BYTES = 2 * 1024**3


class ModelSourceError(Exception):
    """No servable model: nothing to serve, or the raw model cannot be imported."""


ENSEMBLE_ENV = "SAGEMAKER_INFERENCE_ENSEMBLE"
TREE_LIMIT_ENV = "RTB_TREE_LIMIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSettings:
    """How a raw SageMaker model is built at start-up (`model.build.build_artifact`'s options)."""

    ensemble: bool = True
    """Serve several top-level model files as one ensemble (`SAGEMAKER_INFERENCE_ENSEMBLE`)."""
    tree_limit: TreeLimitOption = "auto"
    """The trees compiled: `auto`, `all` or N rounds (`RTB_TREE_LIMIT`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImportSettings:
        """The settings of `env`; `ModelSourceError` naming the variable for a bad value.

        `SAGEMAKER_INFERENCE_ENSEMBLE` is on when unset and otherwise only when exactly `true`,
        as the built-in decides; an empty `RTB_TREE_LIMIT` counts as unset.
        """
        raw_limit = env.get(TREE_LIMIT_ENV, "").strip()
        try:
            tree_limit = parse_tree_limit(raw_limit) if raw_limit else "auto"
        except ValueError as exc:
            raise ModelSourceError(f"{TREE_LIMIT_ENV}={raw_limit!r} is not valid: {exc}") from None
        return cls(ensemble=env.get(ENSEMBLE_ENV, "true") == "true", tree_limit=tree_limit)


def resolve_model_dir(
    model_dir: Path,
    *,
    default_model_dir: Path | None,
    settings: ImportSettings | None = None,
) -> Path:
    """The artifact directory to serve, building it from a raw SageMaker output if needed.

    `settings` default to `ImportSettings.from_env(os.environ)`, read here, once, in the
    supervisor (workers are handed the built artifact's directory).
    """
    if settings is None:
        settings = ImportSettings.from_env(os.environ)
    source = model_dir
    if not _has_entries(model_dir):
        if default_model_dir is None:
            raise ModelSourceError(
                f"{model_dir} is empty or missing and RTB_DEFAULT_MODEL_DIR is not set; "
                "nothing to serve"
            )
        logger.info(
            "%s is empty or missing; serving the default model %s", model_dir, default_model_dir
        )
        source = default_model_dir
        if not _has_entries(source):
            raise ModelSourceError(f"the default model directory {source} is empty or missing")
    if is_artifact_dir(source):
        if settings != ImportSettings():
            logger.warning(
                "%s is a built artifact: %s and %s apply only to a raw SageMaker model "
                "(the artifact's trees and ensemble were chosen by `model build`)",
                source,
                ENSEMBLE_ENV,
                TREE_LIMIT_ENV,
            )
        return source
    return build_cached_artifact(_raw_source(source), settings=settings)


def cache_key(source: Path, settings: ImportSettings) -> str:
    """The cache entry's name: sha256 of the artifact format version, the import settings and
    `source_digest(source)`; any of them changing names another entry."""
    digest = hashlib.sha256()
    digest.update(
        f"format_version={FORMAT_VERSION}\0ensemble={settings.ensemble}\0"
        f"tree_limit={settings.tree_limit}\0".encode()
    )
    digest.update(source_digest(source).encode())
    return digest.hexdigest()


def build_model_artifact(source: Path, *, settings: ImportSettings | None = None) -> Path:
    """Multi-model mode's importer, injected into `serve`: the artifact for the raw SageMaker
    model in the directory `source` (its `xgboost-model`, or the `model.tar.gz` it holds alone),
    built once and reused from the private cache like the single model's."""
    return build_cached_artifact(_raw_source(source), settings=settings)


def build_cached_artifact(
    source: Path,
    *,
    settings: ImportSettings | None = None,
    cache_root: Path | None = None,
) -> Path:
    """Build (or reuse) the artifact for a raw model directory; returns the artifact directory.

    The cache is trusted only if this process's user owns it and no one else can write to it:
    its root is created 0700, and a root or entry that another user owns or can write (another
    local user can plant a self-consistent artifact under a shared temp dir, and the digest
    is predictable) is never loaded; the model is then built into a fresh private directory,
    with a WARNING. Entries are built in a private staging directory and renamed into place.
    """
    settings = ImportSettings() if settings is None else settings
    root = Path(tempfile.gettempdir()) / CACHE_DIR_NAME if cache_root is None else cache_root
    digest = cache_key(source, settings)
    root = _private_root(root)
    target = root / digest[:32]
    if os.path.lexists(target):
        problem = _untrusted(target)
        if problem is None:
            reused = _reuse(target)
            if reused:
                logger.info("%s holds a raw model; reusing its cached artifact %s", source, target)
                return target
        else:
            logger.warning(
                "refusing the cached artifact %s: %s; building the model into a private "
                "directory instead",
                target,
                problem,
            )
            root = _fresh_private_dir()
            target = root / digest[:32]
    logger.info(
        "%s holds a raw SageMaker model; building the serving artifact into %s", source, target
    )
    from model.build import build_artifact  # treelite and tl2cgen load only when needed

    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}.", dir=root))
    except OSError as exc:
        raise ModelSourceError(f"cannot write the artifact cache under {root}: {exc}") from exc
    try:
        build_artifact(
            source,
            output_dir=staging,
            ensemble=settings.ensemble,
            tree_limit=settings.tree_limit,
            progress=lambda line: logger.info("%s", line),
        )
        manifest = read_manifest(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        os.replace(staging, target)
    except OSError as exc:  # another process put an entry there meanwhile: serve our own build
        logger.info(
            "cannot move %s to %s (%s); serving it from where it was built", staging, target, exc
        )
        target = staging
    if manifest.compiled is None:
        logger.warning(
            "no C compiler could build %s: the model is served through treelite GTIL, "
            "correct but much slower; use an image with gcc for the compiled path",
            source,
        )
    return target


def _private_root(root: Path) -> Path:
    """`root`, created 0700 if absent; a fresh private directory if `root` is not ours alone."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelSourceError(f"cannot write the artifact cache under {root}: {exc}") from exc
    problem = why_not_private(root)
    if problem is None:
        return root
    logger.warning(
        "refusing the artifact cache %s: %s; building the model into a private directory",
        root,
        problem,
    )
    return _fresh_private_dir()


def _fresh_private_dir() -> Path:
    """A new 0700 directory with an unpredictable name under the temp dir (no reuse)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f"{CACHE_DIR_NAME}-"))
    except OSError as exc:
        raise ModelSourceError(f"cannot create a private artifact directory: {exc}") from exc


def _untrusted(entry: Path) -> str | None:
    """Why a cache entry (or anything in it) must not be loaded, or None."""
    problem = why_not_private(entry)
    if problem is not None:
        return problem
    for path in sorted(entry.rglob("*")):
        problem = why_not_private(path)
        if problem is not None:
            return problem
    return None


def _reuse(target: Path) -> bool:
    """True if the (trusted) entry is a complete artifact; removes it if it is not."""
    if is_artifact_dir(target):
        try:
            manifest = read_manifest(target)
            verify_files(target, manifest)
        except ArtifactError as exc:
            logger.warning("cached artifact %s is unusable (%s); rebuilding it", target, exc)
        else:
            if manifest.format_version == FORMAT_VERSION:
                return True
            logger.warning(
                "cached artifact %s has format version %d, not %d; rebuilding it",
                target,
                manifest.format_version,
                FORMAT_VERSION,
            )
    shutil.rmtree(target, ignore_errors=True)
    return False


def source_digest(source: Path) -> str:
    """sha256 over the names and contents of `source` (a file, or every regular file under a
    directory, in name order)."""
    digest = hashlib.sha256()
    total = 0
    files = [source] if source.is_file() else sorted(source.rglob("*"))
    for path in (p for p in files if p.is_file() and not p.is_symlink()):
        total += path.stat().st_size
        if total > _MAX_SOURCE_BYTES:
            raise ModelSourceError(f"{source} holds more than {_MAX_SOURCE_BYTES} bytes of files")
        name = path.name if path == source else path.relative_to(source).as_posix()
        digest.update(name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _raw_source(path: Path) -> Path:
    """The model file, directory or tarball to import: a directory holding nothing but a
    `model.tar.gz` (the artifact as uploaded, not yet unpacked) means that tarball."""
    if path.is_dir():
        entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_file() and is_tar_archive(entries[0]):
            return entries[0]
    return path


def _has_entries(path: Path) -> bool:
    if path.is_file():
        return True
    try:
        return any(not entry.name.startswith(".") for entry in path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False
