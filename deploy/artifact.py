"""A model artifact on disk: the ``.tar.gz`` SageMaker unpacks as-is into the container."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from deploy.errors import DeployError

ARTIFACT_MARKERS = ("manifest.json", "xgboost-model")


def check_artifact(path: Path) -> None:
    """A gzip tarball with its files at the top level (SageMaker unpacks it into /opt/ml/model)."""
    if not path.is_file():
        raise DeployError(f"model artifact {path} does not exist or is not a file")
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            names = [member.name.removeprefix("./") for member in archive.getmembers()]
    except (tarfile.TarError, gzip.BadGzipFile, OSError, EOFError) as exc:
        raise DeployError(f"model artifact {path} is not a readable .tar.gz: {exc}") from None
    if not any(name in ARTIFACT_MARKERS for name in names):
        raise DeployError(
            f"model artifact {path} has neither manifest.json nor xgboost-model at its top level "
            f"(members: {', '.join(names[:5]) or 'none'}); SageMaker unpacks it as-is into "
            "/opt/ml/model"
        )
