"""Rules AWS enforces on names and identifiers, checked locally before anything is created.

Each ``check_*`` function returns the value unchanged or raises ``DeployError`` naming the
rule that was broken, so a typo fails in a second instead of after a half-created deployment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from deploy.errors import DeployError

# SageMaker Model, EndpointConfig and Endpoint names (API reference: pattern and length).
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SAGEMAKER_NAME_MAX = 63
# "-YYYYmmdd-HHMMSS-mmm" (UTC, milliseconds) appended to model and endpoint-config names.
STAMP_LENGTH = 20
ENDPOINT_NAME_MAX = SAGEMAKER_NAME_MAX - STAMP_LENGTH
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+(-[a-z0-9]+)?\.[a-z0-9]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ECR_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_VARIANT = _SAGEMAKER_NAME


def check_sagemaker_name(value: str, *, what: str) -> str:
    if not _SAGEMAKER_NAME.fullmatch(value):
        raise DeployError(
            f"{what} {value!r} breaks SageMaker's name rule: 1-63 characters, letters, digits and "
            "hyphens only, starting and ending with a letter or digit (pattern "
            "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$)"
        )
    return value


def check_endpoint_name(value: str) -> str:
    """An endpoint name short enough for ``<name>-<timestamp>`` model and config names."""
    check_sagemaker_name(value, what="endpoint name")
    if len(value) > ENDPOINT_NAME_MAX:
        raise DeployError(
            f"endpoint name {value!r} is {len(value)} characters; at most {ENDPOINT_NAME_MAX} "
            "leave room "
            "for the '-YYYYmmdd-HHMMSS-mmm' suffix of its model and endpoint-config names (63 in "
            "all)"
        )
    return value


def check_variant_name(value: str) -> str:
    if not _VARIANT.fullmatch(value):
        raise DeployError(
            f"variant name {value!r} breaks SageMaker's name rule (letters, digits, hyphens; 1-63)"
        )
    return value


def check_instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.fullmatch(value):
        raise DeployError(
            f"instance type {value!r} is not a SageMaker hosting instance type (expected e.g. "
            "ml.c5.xlarge, ml.c7g.large)"
        )
    return value


def check_instance_count(value: int, *, what: str = "instance count") -> int:
    if value < 1:
        raise DeployError(f"{what} must be at least 1, got {value}")
    return value


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise DeployError(
            f"region {value!r} is not an AWS region name (expected e.g. us-east-1, eu-west-1)"
        )
    return value


def check_role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise DeployError(
            f"execution role {value!r} is not an IAM role ARN (expected arn:aws:iam::<12-digit "
            "account>:role/<name>)"
        )
    return value


def role_account(value: str) -> str:
    match = _ROLE_ARN.fullmatch(value)
    if match is None:
        raise DeployError(f"execution role {value!r} is not an IAM role ARN")
    return match.group(1)


def check_bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value or value.startswith("xn--"):
        raise DeployError(
            f"S3 bucket name {value!r} breaks S3's rules: 3-63 characters, lower-case letters, "
            "digits, dots and hyphens"
        )
    return value


def check_repository(value: str) -> str:
    if not 2 <= len(value) <= 256 or not _ECR_REPOSITORY.fullmatch(value):
        raise DeployError(
            f"ECR repository name {value!r} breaks ECR's rules: 2-256 lower-case letters, digits, "
            "and . _ - / separators"
        )
    return value


def check_image_tag(value: str) -> str:
    if not _IMAGE_TAG.fullmatch(value):
        raise DeployError(
            f"image tag {value!r} is not a valid tag: up to 128 of [A-Za-z0-9_.-], not starting "
            "with '.' or '-'"
        )
    return value


def check_image_uri(value: str, *, region: str | None) -> str:
    """An image reference SageMaker can pull; an ECR image must be in the endpoint's region."""
    if not value or len(value) > 255 or any(ch.isspace() for ch in value):
        raise DeployError(
            f"image {value!r} is not an image reference (1-255 characters, no spaces)"
        )
    host = value.split("/", 1)[0] if "/" in value else ""
    ecr = _ECR_HOST.fullmatch(host)
    if ecr is not None and region is not None and ecr.group(2) != region:
        raise DeployError(
            f"image {value!r} is in ECR region {ecr.group(2)}, but the endpoint is in {region}: "
            "SageMaker pulls ECR images from the endpoint's own region only; push the image there"
        )
    return value


def ecr_host_parts(host: str) -> tuple[str, str] | None:
    """(account, region) when ``host`` is an ECR registry host, else None."""
    match = _ECR_HOST.fullmatch(host)
    return None if match is None else (match.group(1), match.group(2))


def check_s3_uri(value: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key)."""
    if not value.startswith("s3://"):
        raise DeployError(f"{value!r} is not an S3 URI (expected s3://bucket/key)")
    bucket, _, key = value[len("s3://") :].partition("/")
    check_bucket(bucket)
    return bucket, key


def timestamp(now: datetime | None = None) -> str:
    """The suffix that makes model and config names unique: ``YYYYmmdd-HHMMSS-mmm``, UTC."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def versioned_name(endpoint_name: str, stamp: str) -> str:
    name = f"{endpoint_name}-{stamp}"
    return check_sagemaker_name(name, what="model/endpoint-config name")
