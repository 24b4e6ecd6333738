"""Multi-model endpoints: one SageMaker model whose ModelDataUrl is an S3 prefix of artifacts.

SageMaker creates the model with ``PrimaryContainer.Mode = "MultiModel"``; each request names
its model with ``TargetModel``, the artifact's path relative to the prefix (``exchange-a.tar.gz``
for ``s3://bucket/rtb-inference/rtb-bidder/models/exchange-a.tar.gz``). SageMaker downloads an
artifact on its first request to an instance and keeps it loaded (unless ``ModelCacheSetting``
is ``Disabled``) until memory runs short; adding a model is an S3 upload, with no endpoint
update. A loaded model is not reloaded when its object is overwritten, which is why ``upload``
refuses to replace a model unless told to.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from deploy import validation
from deploy.artifact import check_artifact
from deploy.errors import DeployError
from deploy.gateway import Gateway

ModelCache = Literal["Enabled", "Disabled"]
MULTI_MODEL: Final = "MultiModel"
SINGLE_MODEL: Final = "SingleModel"
# The container serves the multi-model API only when told so (see docs/multi-model.md);
# SageMaker sets it in a multi-model endpoint's container too, the model states it anyway.
CONTAINER_SWITCH: Final = "SAGEMAKER_MULTI_MODEL"


@dataclass(frozen=True, kw_only=True)
class MultiModel:
    """What makes a create (or update) multi-model: artifacts to upload first, and caching."""

    artifacts: tuple[Path, ...] = ()
    model_cache: ModelCache = "Enabled"

    def container_fields(self) -> dict[str, Any]:
        """The ContainerDefinition members that make the model a multi-model one."""
        validation.check_choice(
            self.model_cache, validation.MODEL_CACHE_SETTINGS, what="--model-cache"
        )
        return {"Mode": MULTI_MODEL, "MultiModelConfig": {"ModelCacheSetting": self.model_cache}}


@dataclass(frozen=True, kw_only=True)
class HostedModel:
    """One artifact under the prefix: what ``invoke --target-model`` names."""

    target_model: str
    size_bytes: int
    last_modified: str


def named_artifacts(paths: Sequence[Path]) -> dict[str, Path]:
    """Each artifact by its name under the prefix (its file name); a directory: its *.tar.gz."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DeployError(f"model artifact {path} does not exist")
        if path.is_dir():
            found = sorted(path.glob(f"*{validation.ARTIFACT_SUFFIX}"))
            if not found:
                raise DeployError(f"{path} holds no *{validation.ARTIFACT_SUFFIX} model artifacts")
            files += found
        else:
            files.append(path)
    named: dict[str, Path] = {}
    for file in files:
        name = validation.check_target_model(file.name, what=f"model {file}")
        if name in named:
            raise DeployError(
                f"{named[name]} and {file} would both be {name} under the prefix; rename one"
            )
        check_artifact(file)
        named[name] = file
    return named


def default_prefix(*, bucket: str, prefix: str, endpoint_name: str) -> str:
    """``s3://<bucket>/<prefix>/<endpoint>/models/``: below what ``delete --purge`` removes."""
    path = "/".join(part for part in (prefix.strip("/"), endpoint_name, "models") if part)
    return f"s3://{bucket}/{path}/"


def list_models(gateway: Gateway, prefix_uri: str) -> list[HostedModel]:
    """The ``*.tar.gz`` objects under the prefix, by name (subfolders included)."""
    where = validation.check_model_prefix(prefix_uri, what="model prefix")
    objects = gateway.pages(
        "s3", "list_objects_v2", "Contents", Bucket=where.bucket, Prefix=where.key
    )
    return sorted(
        (
            HostedModel(
                target_model=str(item["Key"])[len(where.key) :],
                size_bytes=int(item.get("Size", 0)),
                last_modified=str(item.get("LastModified", "")),
            )
            for item in objects
            if str(item["Key"]).endswith(validation.ARTIFACT_SUFFIX)
        ),
        key=lambda model: model.target_model,
    )


def upload(
    gateway: Gateway,
    prefix_uri: str,
    artifacts: Mapping[str, Path],
    *,
    replace: bool,
    err: TextIO | None = None,
) -> list[str]:
    """Upload each artifact as ``<prefix><name>``; refuse names already there unless ``replace``."""
    err = err or sys.stderr
    where = validation.check_model_prefix(prefix_uri, what="model prefix")
    if not replace:
        present = {model.target_model for model in list_models(gateway, prefix_uri)}
        clash = sorted(set(artifacts) & present)
        if clash:
            raise DeployError(
                f"{', '.join(clash)} already under {prefix_uri}: an instance that has a model "
                "loaded keeps serving that copy after its object is overwritten, so add the new "
                "version under a new name (e.g. exchange-a-v2.tar.gz) and invoke that, or pass "
                "--replace if no instance can have it loaded"
            )
    verb = "would upload" if gateway.dry_run else "uploading"
    for name, path in artifacts.items():
        print(f"{verb} {path} to {prefix_uri}{name}", file=err, flush=True)
        gateway.call(
            "s3", "upload_file", Filename=str(path), Bucket=where.bucket, Key=where.key + name
        )
    return list(artifacts)


def remove(gateway: Gateway, prefix_uri: str, names: Sequence[str]) -> list[str]:
    """Delete the named models' objects; every name must be there (a typo deletes nothing)."""
    where = validation.check_model_prefix(prefix_uri, what="model prefix")
    for name in names:
        validation.check_target_model(name, what="model")
    present = {model.target_model for model in list_models(gateway, prefix_uri)}
    missing = sorted(set(names) - present)
    if missing:
        raise DeployError(
            f"no model {', '.join(missing)} under {prefix_uri}; `python -m deploy models list` "
            "shows what is there"
        )
    if names:
        gateway.call(
            "s3",
            "delete_objects",
            Bucket=where.bucket,
            Delete={"Objects": [{"Key": where.key + name} for name in names], "Quiet": True},
        )
    return list(names)
