"""The rules SageMaker enforces that botocore's client and Stubber do not: enums, patterns, lengths.

botocore validates types, required members and minimum lengths, but not enum values, regex
patterns or maximum lengths. Each `check_*` function here raises `InvalidInputError` with a
message naming the option and the rule, so a mistake costs nothing instead of a failed
45-minute job. Limits come from the botocore service model and the SageMaker API reference
(API_Phase, API_ModelLatencyThreshold, API_RecommendationJobInputConfig).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from benchmark.recommender.errors import InvalidInputError

JOB_TYPES: Final = ("Default", "Advanced")
DOMAINS: Final = ("COMPUTER_VISION", "NATURAL_LANGUAGE_PROCESSING", "MACHINE_LEARNING")
TASKS: Final = (
    "IMAGE_CLASSIFICATION",
    "OBJECT_DETECTION",
    "TEXT_GENERATION",
    "IMAGE_SEGMENTATION",
    "FILL_MASK",
    "CLASSIFICATION",
    "REGRESSION",
    "OTHER",
)
FRAMEWORKS: Final = ("TENSORFLOW", "PYTORCH", "XGBOOST", "SAGEMAKER-SCIKIT-LEARN")
APPROVAL_STATUSES: Final = ("Approved", "Rejected", "PendingManualApproval")
TRAFFIC_TYPES: Final = ("PHASES", "STAIRS")
FLAT_INVOCATIONS: Final = ("Continue", "Stop")
# API_ModelLatencyThreshold: "Acceptable values are P95 and P99."
LATENCY_PERCENTILES: Final = ("P95", "P99")

JOB_NAME_MAX: Final = 64
ENTITY_NAME_MAX: Final = 63
MAX_ENDPOINT_CONFIGURATIONS: Final = 10
MAX_ENVIRONMENT_PARAMETERS: Final = 5
MAX_ENVIRONMENT_VALUES: Final = 3
MAX_JOB_DURATION_S: Final = 18_000
PHASE_DURATION_S: Final = (120, 3600)
PHASE_INITIAL_USERS: Final = (1, 3)
STAIRS_USERS_PER_STEP: Final = (1, 3)
IMAGE_MAX: Final = 255
S3_URI_MAX: Final = 1024

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}")
_ENTITY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MODEL_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_MODEL_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/[\S]{1,2048}"
)
_FRAMEWORK_VERSION = re.compile(r"[0-9]\.[A-Za-z0-9.-]+")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?")
_MIME_TYPE = re.compile(r"[-\w]+/[-\w.+]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BURSTABLE = re.compile(r"ml\.t\d[a-z]*\.")


def check_choice(value: str, choices: Sequence[str], *, option: str) -> str:
    if value not in choices:
        raise InvalidInputError(f"{option}: {value!r} is not one of {', '.join(choices)}")
    return value


def check_job_name(name: str) -> str:
    if not 1 <= len(name) <= JOB_NAME_MAX or not _JOB_NAME.fullmatch(name):
        raise InvalidInputError(
            f"--job-name: {name!r} must be 1-{JOB_NAME_MAX} letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def check_entity_name(name: str, *, option: str) -> str:
    """A model package group (or other entity) name: 1-63 chars, `[a-zA-Z0-9](-*[a-zA-Z0-9])*`."""
    if not 1 <= len(name) <= ENTITY_NAME_MAX or not _ENTITY_NAME.fullmatch(name):
        raise InvalidInputError(
            f"{option}: {name!r} must be 1-{ENTITY_NAME_MAX} letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def check_model_name(name: str) -> str:
    if not 1 <= len(name) <= ENTITY_NAME_MAX or not _MODEL_NAME.fullmatch(name):
        raise InvalidInputError(
            f"--instant: {name!r} is not a SageMaker model name (1-{ENTITY_NAME_MAX} letters, "
            "digits or hyphens, starting and ending with a letter or digit)"
        )
    return name


def check_role_arn(arn: str) -> str:
    if not 20 <= len(arn) <= 2048 or not _ROLE_ARN.fullmatch(arn):
        raise InvalidInputError(
            f"--role: {arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        )
    return arn


def check_model_package_arn(arn: str) -> str:
    if not _MODEL_PACKAGE_ARN.fullmatch(arn):
        raise InvalidInputError(
            f"--model-package-arn: {arn!r} is not a versioned model package ARN "
            "(arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)"
        )
    return arn


def check_framework_version(version: str) -> str:
    if not 3 <= len(version) <= 10 or not _FRAMEWORK_VERSION.fullmatch(version):
        raise InvalidInputError(
            f"--framework-version: {version!r} must be 3-10 characters like '1.7' "
            "(a digit, a dot, then letters, digits, dots or hyphens)"
        )
    return version


def check_nearest_model_name(name: str) -> str:
    if not name.strip() or any(ch.isspace() for ch in name):
        raise InvalidInputError(
            f"--nearest-model-name: {name!r} must be a model name from ListModelMetadata, "
            "such as 'xgboost'"
        )
    return name


def check_image(uri: str) -> str:
    if not 1 <= len(uri) <= IMAGE_MAX or any(ch.isspace() for ch in uri):
        raise InvalidInputError(
            f"--image: {uri!r} must be 1-{IMAGE_MAX} characters without spaces "
            "(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)"
        )
    return uri


def check_s3_uri(uri: str, *, option: str, object_key: bool = False) -> str:
    """An `s3://BUCKET/KEY` URI; with `object_key`, the key must name an object, not a prefix."""
    if len(uri) > S3_URI_MAX or not _S3_URI.fullmatch(uri) or ".." in uri.split("/", 3)[2]:
        raise InvalidInputError(
            f"{option}: {uri!r} is not an S3 URI (s3://BUCKET/KEY, bucket 3-63 lower-case "
            f"letters, digits, dots or hyphens; at most {S3_URI_MAX} characters)"
        )
    if object_key:
        key = uri.removeprefix("s3://").partition("/")[2]
        if not key or key.endswith("/"):
            raise InvalidInputError(
                f"{option}: {uri!r} must name an object, not a bucket or prefix"
            )
    return uri


def check_mime_types(types: Sequence[str], *, option: str) -> tuple[str, ...]:
    if not types:
        raise InvalidInputError(f"{option}: give at least one MIME type")
    for value in types:
        if not _MIME_TYPE.fullmatch(value):
            raise InvalidInputError(f"{option}: {value!r} is not a MIME type like 'text/csv'")
    return tuple(types)


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Real-time instance types in the installed botocore's `ProductionVariantInstanceType` enum."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def check_instance_types(
    types: Iterable[str], *, option: str, load_test: bool = False
) -> tuple[str, ...]:
    """Format, membership in botocore's enum, no repeats; load tests also refuse burstable t2/t3."""
    seen: list[str] = []
    known = known_instance_types()
    for value in types:
        if not _INSTANCE_TYPE.fullmatch(value):
            raise InvalidInputError(
                f"{option}: {value!r} is not an instance type like 'ml.c6i.large'"
            )
        if value not in known:
            raise InvalidInputError(
                f"{option}: {value!r} is not a SageMaker real-time instance type known to this "
                "botocore (upgrade boto3 if the type is new)"
            )
        if load_test and _BURSTABLE.match(value):
            raise InvalidInputError(
                f"{option}: {value!r} is a burstable instance; "
                "Inference Recommender load tests reject them"
            )
        if value in seen:
            raise InvalidInputError(f"{option}: {value!r} is given twice")
        seen.append(value)
    return tuple(seen)


def check_environment_ranges(ranges: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """At most 5 variables, each 1-3 distinct values; worker counts must be positive integers."""
    if len(ranges) > MAX_ENVIRONMENT_PARAMETERS:
        raise InvalidInputError(
            f"--env: at most {MAX_ENVIRONMENT_PARAMETERS} variables per load test, "
            f"got {len(ranges)}"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for name, values in ranges.items():
        if not _ENV_NAME.fullmatch(name) or len(name) > 64:
            raise InvalidInputError(f"--env: {name!r} is not an environment variable name")
        if not 1 <= len(values) <= MAX_ENVIRONMENT_VALUES:
            raise InvalidInputError(
                f"--env {name}: give 1-{MAX_ENVIRONMENT_VALUES} values, got {len(values)}"
            )
        if len(set(values)) != len(values):
            raise InvalidInputError(f"--env {name}: values repeat: {', '.join(values)}")
        for value in values:
            if not value or len(value) > 128:
                raise InvalidInputError(f"--env {name}: values must be 1-128 characters")
        if name == "SAGEMAKER_MODEL_SERVER_WORKERS" and not all(
            v.isdigit() and int(v) > 0 for v in values
        ):
            raise InvalidInputError(
                f"--env {name}: worker counts must be positive integers, got {', '.join(values)}"
            )
        checked[name] = tuple(values)
    return checked


def check_phases(
    phases: Sequence[tuple[int, int, int]], *, job_duration_s: int | None
) -> tuple[tuple[int, int, int], ...]:
    """(initial users, spawn rate per minute, seconds) per phase; API_Phase rules for load tests."""
    if not phases:
        raise InvalidInputError("--phase: give at least one phase USERS:SPAWN_RATE:SECONDS")
    low_users, high_users = PHASE_INITIAL_USERS
    low_s, high_s = PHASE_DURATION_S
    for index, (users, spawn_rate, duration_s) in enumerate(phases, start=1):
        if not low_users <= users <= high_users:
            raise InvalidInputError(
                f"--phase {index}: initial users must be {low_users}-{high_users}, got {users}"
            )
        if spawn_rate < 0:
            raise InvalidInputError(f"--phase {index}: spawn rate must be >= 0, got {spawn_rate}")
        if not low_s <= duration_s <= high_s:
            raise InvalidInputError(
                f"--phase {index}: duration must be {low_s}-{high_s} s, got {duration_s}"
            )
    total = sum(duration for _, _, duration in phases)
    if job_duration_s is not None and total > job_duration_s:
        raise InvalidInputError(
            f"--phase: the phases last {total} s, longer than --job-duration {job_duration_s} s"
        )
    return tuple(phases)


def check_stairs(
    stairs: tuple[int, int, int], *, job_duration_s: int | None
) -> tuple[int, int, int]:
    """(step duration s, number of steps, users per step)."""
    duration_s, steps, users_per_step = stairs
    if duration_s < 1 or steps < 1:
        raise InvalidInputError("--stairs: step duration and number of steps must be >= 1")
    low, high = STAIRS_USERS_PER_STEP
    if not low <= users_per_step <= high:
        raise InvalidInputError(
            f"--stairs: users per step must be {low}-{high}, got {users_per_step}"
        )
    total = duration_s * steps
    if job_duration_s is not None and total > job_duration_s:
        raise InvalidInputError(
            f"--stairs: the steps last {total} s, longer than --job-duration {job_duration_s} s"
        )
    return stairs


def check_job_duration(seconds: int) -> int:
    if not 1 <= seconds <= MAX_JOB_DURATION_S:
        raise InvalidInputError(f"--job-duration: must be 1-{MAX_JOB_DURATION_S} s, got {seconds}")
    return seconds


def check_positive(value: int, *, option: str) -> int:
    if value < 1:
        raise InvalidInputError(f"{option}: must be >= 1, got {value}")
    return value
