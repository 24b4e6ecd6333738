"""Deleting a deployment completely: what AWS's own cleanup steps say people forget.

Order: scaling policies and scalable targets (they block nothing but outlive the endpoint),
the endpoint, every endpoint config and model of this deployment (the current ones and the ones
earlier blue/green updates left behind, found by name prefix and the ``rtb:endpoint`` tag), and
with ``purge`` the S3 artifacts under ``<prefix>/<endpoint>/`` plus those the models referenced,
and the ECR images the models ran. Everything already gone counts as done, so a second run (or
a run after a half-failed one) finishes the job.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import ClientError

from deploy import scaling, validation
from deploy.endpoint import TAG_ENDPOINT, describe_endpoint
from deploy.errors import DeployError, is_not_found
from deploy.gateway import Gateway
from deploy.settings import EndpointSettings


@dataclass
class Inventory:
    """What belongs to one deployment, gathered before anything is deleted."""

    endpoint: bool = False
    variants: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    model_data_urls: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


def _tagged(gateway: Gateway, arn: str, endpoint_name: str) -> bool:
    tags = gateway.pages("sagemaker", "list_tags", "Tags", ResourceArn=arn)
    return any(tag.get("Key") == TAG_ENDPOINT and tag.get("Value") == endpoint_name for tag in tags)


def _owned(
    gateway: Gateway,
    items: list[dict[str, Any]],
    *,
    name_key: str,
    arn_key: str,
    endpoint_name: str,
) -> list[str]:
    prefix = f"{endpoint_name}-"
    names = []
    for item in items:
        name = str(item[name_key])
        if name.startswith(prefix) and _tagged(gateway, str(item[arn_key]), endpoint_name):
            names.append(name)
    return names


def _add(values: list[str], value: str | None) -> None:
    if value and value not in values:
        values.append(value)


def inventory(gateway: Gateway, endpoint_name: str) -> Inventory:
    found = Inventory()
    description = describe_endpoint(gateway, endpoint_name)
    if description is not None:
        found.endpoint = True
        for variant in description.get("ProductionVariants", []):
            _add(found.variants, variant.get("VariantName"))
        _add(found.endpoint_configs, description.get("EndpointConfigName"))
        pending = description.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
        _add(found.endpoint_configs, pending)
    configs = gateway.pages(
        "sagemaker", "list_endpoint_configs", "EndpointConfigs", NameContains=endpoint_name
    )
    for name in _owned(
        gateway,
        configs,
        name_key="EndpointConfigName",
        arn_key="EndpointConfigArn",
        endpoint_name=endpoint_name,
    ):
        _add(found.endpoint_configs, name)
    for config_name in found.endpoint_configs:
        try:
            config = gateway.call(
                "sagemaker", "describe_endpoint_config", EndpointConfigName=config_name
            )
        except ClientError as exc:
            if is_not_found(exc):
                continue
            raise
        for variant in config.get("ProductionVariants", []):
            _add(found.models, variant.get("ModelName"))
            _add(found.variants, variant.get("VariantName"))
    models = gateway.pages("sagemaker", "list_models", "Models", NameContains=endpoint_name)
    for name in _owned(
        gateway, models, name_key="ModelName", arn_key="ModelArn", endpoint_name=endpoint_name
    ):
        _add(found.models, name)
    for model_name in found.models:
        try:
            model = gateway.call("sagemaker", "describe_model", ModelName=model_name)
        except ClientError as exc:
            if is_not_found(exc):
                continue
            raise
        containers = (
            [model["PrimaryContainer"]]
            if model.get("PrimaryContainer")
            else model.get("Containers", [])
        )
        for container in containers:
            _add(found.model_data_urls, container.get("ModelDataUrl"))
            _add(found.images, container.get("Image"))
    return found


def _delete(gateway: Gateway, operation: str, **params: Any) -> bool:
    try:
        gateway.call("sagemaker", operation, **params)
        return True
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise


def _wait_deleted(
    gateway: Gateway, endpoint_name: str, *, timeout: float, poll_interval: float
) -> None:
    """Wait for the endpoint to be gone: AWS keeps its config in use while it is Deleting."""
    deadline = time.monotonic() + timeout
    while describe_endpoint(gateway, endpoint_name) is not None:
        if time.monotonic() >= deadline:
            raise DeployError(
                f"endpoint {endpoint_name} is still deleting after {timeout:.0f}s; run delete "
                "again later"
            )
        time.sleep(poll_interval)


def _keys_under(gateway: Gateway, bucket: str, prefix: str) -> set[str]:
    """Every object key below ``prefix`` (none when the bucket is gone)."""
    try:
        objects = gateway.pages("s3", "list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        return set()
    return {str(item["Key"]) for item in objects}


def _purge_s3(
    gateway: Gateway, settings: EndpointSettings, found: Inventory, endpoint_name: str
) -> list[str]:
    """The models' artifacts (a multi-model prefix: all below it) and ``<prefix>/<endpoint>/``."""
    removed: list[str] = []
    targets: dict[str, set[str]] = {}
    for url in found.model_data_urls:
        if url.startswith("s3://"):
            where = validation.check_s3_uri(url, what="model data URL")
            keys = targets.setdefault(where.bucket, set())
            if where.key.endswith("/"):
                keys.update(_keys_under(gateway, where.bucket, where.key))
            else:
                keys.add(where.key)
    if settings.bucket is not None:
        prefix = f"{settings.prefix.strip('/')}/{endpoint_name}/".lstrip("/")
        targets.setdefault(settings.bucket, set()).update(
            _keys_under(gateway, settings.bucket, prefix)
        )
    for bucket, keys in sorted(targets.items()):
        ordered = sorted(keys)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            try:
                gateway.call(
                    "s3",
                    "delete_objects",
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
                )
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                continue
            removed.extend(f"s3://{bucket}/{key}" for key in chunk)
    return removed


def _purge_images(gateway: Gateway, images: list[str]) -> list[str]:
    removed: list[str] = []
    for image in images:
        host, _, rest = image.partition("/")
        if validation.ecr_host(host) is None or not rest:
            continue
        if "@" in rest:
            repository, _, digest = rest.partition("@")
            image_id = {"imageDigest": digest}
        else:
            repository, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
            image_id = {"imageTag": tag}
        try:
            gateway.call("ecr", "describe_images", repositoryName=repository, imageIds=[image_id])
            response = gateway.call(
                "ecr", "batch_delete_image", repositoryName=repository, imageIds=[image_id]
            )
        except ClientError as exc:
            if is_not_found(exc):
                continue
            raise
        if response.get("imageIds") or gateway.dry_run:
            removed.append(f"ecr image {image}")
    return removed


def delete(
    gateway: Gateway, settings: EndpointSettings, *, purge: bool, err: TextIO | None = None
) -> dict[str, Any]:
    err = err or sys.stderr
    endpoint_name = validation.check_name(settings.endpoint_name, what="endpoint name")
    found = inventory(gateway, endpoint_name)
    removed: list[str] = []
    removed += scaling.remove(
        gateway,
        endpoint_name=endpoint_name,
        variant_names=found.variants or [settings.variant_name],
    )
    if found.endpoint and _delete(gateway, "delete_endpoint", EndpointName=endpoint_name):
        removed.append(f"endpoint {endpoint_name}")
        if not gateway.dry_run:
            print(f"waiting for endpoint {endpoint_name} to be gone", file=err, flush=True)
            _wait_deleted(
                gateway,
                endpoint_name,
                timeout=settings.wait_timeout,
                poll_interval=settings.poll_interval,
            )
    for name in found.endpoint_configs:
        if _delete(gateway, "delete_endpoint_config", EndpointConfigName=name):
            removed.append(f"endpoint config {name}")
    for name in found.models:
        if _delete(gateway, "delete_model", ModelName=name):
            removed.append(f"model {name}")
    if purge:
        removed += _purge_s3(gateway, settings, found, endpoint_name)
        removed += _purge_images(gateway, found.images)
    for line in removed:
        print(f"{'would delete' if gateway.dry_run else 'deleted'} {line}", file=err)
    if not removed:
        print(f"nothing left to delete for {endpoint_name}", file=err)
    return {"endpoint_name": endpoint_name, "deleted": removed, "dry_run": gateway.dry_run}
