"""The model registry side: a model package group, and one versioned model package per run.

Inference Recommender reads the container, the framework, the sample payload and the supported
content types from the model package version, so everything it needs is registered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from deploy import validation
from deploy.errors import InvalidInputError, is_not_found
from deploy.gateway import Gateway


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """What gets registered; `check()` applies the rules botocore does not."""

    group: str
    image: str
    model_data_url: str
    sample_payload_url: str
    content_types: tuple[str, ...]
    response_types: tuple[str, ...]
    framework_version: str
    nearest_model_name: str = "xgboost"
    domain: str = "MACHINE_LEARNING"
    task: str = "CLASSIFICATION"
    framework: str = "XGBOOST"
    instance_types: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    description: str = "RTB bid/no-bid XGBoost model served by the low-latency container"
    approval_status: str = "Approved"

    def check(self) -> PackageSpec:
        validation.check_name(self.group, what="--model-package-group")
        validation.check_image_uri(self.image, what="--image")
        if self.model_data_url.endswith("/"):
            raise InvalidInputError(
                f"--model-data: {self.model_data_url!r} is an S3 prefix, as a multi-model "
                "endpoint uses; Inference Recommender benchmarks one model per package and does "
                "not support multi-model endpoints: give one model.tar.gz"
            )
        validation.check_s3_uri(self.model_data_url, what="--model-data", object_key=True)
        validation.check_s3_uri(self.sample_payload_url, what="--payload-uri", object_key=True)
        validation.check_mime_types(self.content_types, what="--content-type")
        validation.check_mime_types(self.response_types, what="--accept")
        validation.check_framework_version(self.framework_version)
        validation.check_nearest_model_name(self.nearest_model_name)
        validation.check_choice(self.domain, validation.DOMAINS, what="--domain")
        validation.check_choice(self.task, validation.TASKS, what="--task")
        validation.check_choice(self.framework, validation.FRAMEWORKS, what="--framework")
        validation.check_choice(
            self.approval_status, validation.APPROVAL_STATUSES, what="approval status"
        )
        validation.check_instance_types(self.instance_types, what="--supported-instance-types")
        return self


def group_request(name: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": validation.check_name(name, what="--model-package-group"),
        "ModelPackageGroupDescription": "RTB XGBoost models benchmarked by Inference Recommender",
    }


def package_request(spec: PackageSpec) -> dict[str, Any]:
    """The `create_model_package` parameters for one version in `spec.group`."""
    spec.check()
    container: dict[str, Any] = {
        "Image": spec.image,
        "ModelDataUrl": spec.model_data_url,
        "Framework": spec.framework,
        "FrameworkVersion": spec.framework_version,
        "NearestModelName": spec.nearest_model_name,
    }
    if spec.environment:
        container["Environment"] = dict(spec.environment)
    inference: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": list(spec.content_types),
        "SupportedResponseMIMETypes": list(spec.response_types),
    }
    if spec.instance_types:
        inference["SupportedRealtimeInferenceInstanceTypes"] = list(spec.instance_types)
    return {
        "ModelPackageGroupName": spec.group,
        "ModelPackageDescription": spec.description,
        "Domain": spec.domain,
        "Task": spec.task,
        "SamplePayloadUrl": spec.sample_payload_url,
        "ModelApprovalStatus": spec.approval_status,
        "InferenceSpecification": inference,
    }


def group_exists(gateway: Gateway, name: str) -> bool:
    """True when the group exists; SageMaker answers a missing group with a ValidationException."""
    try:
        gateway.call("sagemaker", "describe_model_package_group", ModelPackageGroupName=name)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True
