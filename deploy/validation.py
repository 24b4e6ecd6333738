"""The rules AWS enforces on names, identifiers and options, checked before any call is made.

botocore's client checks types, required members and minimum lengths, but not patterns, enums or
maximum lengths, so a typo would otherwise fail after a half-created deployment or a 45-minute
job. There is one rule per thing here, each the strictest correct one from the API reference
(the pattern and length of the shape named in the comment, which
``tests/deploy/test_deploy_validation.py`` checks against the installed botocore model).
Every ``check_*`` returns the value (or what it parsed) or raises ``InvalidInputError``, whose
message starts with ``what`` (an option or a setting name) and says the rule.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from deploy.errors import InvalidInputError

# --- names -----------------------------------------------------------------------------------
# EndpointName, ModelName, VariantName, EndpointConfigName, EntityName (model package group):
# pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; RecommendationJobName: the same up to 64.
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
NAME_MAX: Final = 63
JOB_NAME_MAX: Final = 64
# "-YYYYmmdd-HHMMSS-mmm" (UTC, milliseconds) appended to model and endpoint-config names.
STAMP_LENGTH: Final = 20
ENDPOINT_NAME_MAX: Final = NAME_MAX - STAMP_LENGTH

# --- identifiers -----------------------------------------------------------------------------
# RoleArn (20-2048): arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+, narrowed to what IAM
# issues: "role/", an optional path of segments, and a role name of 1-64 characters.
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.A)
ROLE_ARN_LENGTH: Final = (20, 2048)
# ModelPackageArn of a version (1-2048).
_MODEL_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]{9,16}:[0-9]{12}:model-package/\S{1,2048}"
)
# ProductionVariantInstanceType is an enum; this shape only picks the message.
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+(-[a-z0-9]+)?\.[a-z0-9]+")
_BURSTABLE = re.compile(r"ml\.t\d[a-z]*\.")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
# ContainerImage: [\S]+, at most 255.
IMAGE_MAX: Final = 255
_ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
# ECR repositoryName (2-256) and the OCI distribution spec's tag.
_ECR_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# S3 general purpose bucket naming rules; S3Uri is at most 1024 characters.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
S3_URI_MAX: Final = 1024
# FrameworkVersion (3-10): [0-9]\.[A-Za-z0-9.]+
_FRAMEWORK_VERSION = re.compile(r"[0-9]\.[A-Za-z0-9.]+")
_MIME_TYPE = re.compile(r"[-\w]+/[-\w.+]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# --- Inference Recommender enums and limits (API_RecommendationJobInputConfig, API_Phase,
# API_Stairs, API_ModelLatencyThreshold, API_CreateModelPackage) ---------------------------------
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
FLAT_INVOCATIONS: Final = ("Continue", "Stop")
LATENCY_PERCENTILES: Final = ("P95", "P99")
MAX_ENDPOINT_CONFIGURATIONS: Final = 10
MAX_ENVIRONMENT_PARAMETERS: Final = 5
MAX_ENVIRONMENT_VALUES: Final = 3
MAX_JOB_DURATION_S: Final = 18_000
PHASE_DURATION_S: Final = (120, 3600)
PHASE_INITIAL_USERS: Final = (1, 3)
STAIRS_USERS_PER_STEP: Final = (1, 3)


@dataclass(frozen=True, slots=True)
class Rule:
    """A pattern and a length range from the API reference, and what to say when broken."""

    pattern: re.Pattern[str]
    length: tuple[int, int]
    says: str

    def check(self, value: str, *, what: str) -> str:
        low, high = self.length
        if not low <= len(value) <= high or not self.pattern.fullmatch(value):
            raise InvalidInputError(f"{what}: {value!r} {self.says}")
        return value


ROLE_ARN = Rule(
    pattern=_ROLE_ARN,
    length=ROLE_ARN_LENGTH,
    says="is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/NAME)",
)
MODEL_PACKAGE_ARN = Rule(
    pattern=_MODEL_PACKAGE_ARN,
    length=(1, 2048),
    says="is not a versioned model package ARN "
    "(arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)",
)
REPOSITORY = Rule(
    pattern=_ECR_REPOSITORY,
    length=(2, 256),
    says="breaks ECR's rules: 2-256 lower-case letters, digits, and . _ - / separators",
)
IMAGE_TAG = Rule(
    pattern=_IMAGE_TAG,
    length=(1, 128),
    says="is not a valid tag: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
)
FRAMEWORK_VERSION = Rule(
    pattern=_FRAMEWORK_VERSION,
    length=(3, 10),
    says="must be 3-10 characters like '1.7' (a digit, a dot, then letters, digits or dots)",
)


def check_choice(value: str, choices: Sequence[str], *, what: str) -> str:
    if value not in choices:
        raise InvalidInputError(f"{what}: {value!r} is not one of {', '.join(choices)}")
    return value


def check_positive(value: int, *, what: str) -> int:
    if value < 1:
        raise InvalidInputError(f"{what} must be at least 1, got {value}")
    return value


def check_name(value: str, *, what: str, max_length: int = NAME_MAX) -> str:
    """A SageMaker resource name: letters, digits and single or repeated inner hyphens."""
    if not 1 <= len(value) <= max_length or not _NAME.fullmatch(value):
        raise InvalidInputError(
            f"{what}: {value!r} breaks SageMaker's name rule: must be 1-{max_length} letters, "
            "digits or hyphens, starting and ending with a letter or digit"
        )
    return value


def check_endpoint_name(value: str) -> str:
    """An endpoint name short enough for ``<name>-<timestamp>`` model and config names."""
    check_name(value, what="endpoint name")
    if len(value) > ENDPOINT_NAME_MAX:
        raise InvalidInputError(
            f"endpoint name: {value!r} is {len(value)} characters; at most {ENDPOINT_NAME_MAX} "
            "leave room for the '-YYYYmmdd-HHMMSS-mmm' suffix of its model and endpoint-config "
            f"names ({NAME_MAX} in all)"
        )
    return value


def timestamp(now: datetime | None = None) -> str:
    """The suffix that makes model and config names unique: ``YYYYmmdd-HHMMSS-mmm``, UTC."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def versioned_name(endpoint_name: str, stamp: str) -> str:
    return check_name(f"{endpoint_name}-{stamp}", what="model/endpoint-config name")


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Real-time instance types in the installed botocore's ``ProductionVariantInstanceType``."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def check_instance_type(value: str, *, what: str = "instance type", load_test: bool = False) -> str:
    """A real-time hosting instance type; load tests also refuse burstable t2/t3 types."""
    if not _INSTANCE_TYPE.fullmatch(value):
        raise InvalidInputError(f"{what}: {value!r} is not an instance type like 'ml.c6i.large'")
    if value not in known_instance_types():
        raise InvalidInputError(
            f"{what}: {value!r} is not a SageMaker real-time instance type known to this "
            "botocore (upgrade boto3 if the type is new)"
        )
    if load_test and _BURSTABLE.match(value):
        raise InvalidInputError(
            f"{what}: {value!r} is a burstable instance; Inference Recommender load tests "
            "reject them"
        )
    return value


def check_instance_types(
    values: Iterable[str], *, what: str, load_test: bool = False
) -> tuple[str, ...]:
    seen: list[str] = []
    for value in values:
        check_instance_type(value, what=what, load_test=load_test)
        if value in seen:
            raise InvalidInputError(f"{what}: {value!r} is given twice")
        seen.append(value)
    return tuple(seen)


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise InvalidInputError(
            f"region: {value!r} is not an AWS region name (expected e.g. us-east-1, eu-west-1)"
        )
    return value


def check_role_arn(value: str, *, what: str = "execution role") -> str:
    return ROLE_ARN.check(value, what=what)


def role_account(value: str) -> str:
    """The account id in a role ARN that ``check_role_arn`` accepts."""
    match = _ROLE_ARN.fullmatch(check_role_arn(value))
    return "" if match is None else match.group(1)


def check_model_package_arn(value: str) -> str:
    return MODEL_PACKAGE_ARN.check(value, what="--model-package-arn")


def check_bucket(value: str, *, what: str = "bucket") -> str:
    """S3's general purpose bucket naming rules."""
    try:
        ipaddress.IPv4Address(value)
        looks_like_ip = True
    except ValueError:
        looks_like_ip = False
    if (
        not _BUCKET.fullmatch(value)
        or ".." in value
        or looks_like_ip
        or value.startswith(_BUCKET_PREFIXES)
        or value.endswith(_BUCKET_SUFFIXES)
    ):
        raise InvalidInputError(
            f"{what}: S3 bucket name {value!r} breaks S3's rules: 3-63 lower-case letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit, no '..', not an IP "
            "address"
        )
    return value


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def check_s3_uri(value: str, *, what: str = "S3 URI", object_key: bool = False) -> S3Location:
    """``s3://BUCKET/KEY``; with ``object_key`` the key must name an object, not a prefix."""
    if not value.startswith("s3://") or len(value) > S3_URI_MAX:
        raise InvalidInputError(
            f"{what}: {value!r} is not an S3 URI (s3://BUCKET/KEY, at most {S3_URI_MAX} characters)"
        )
    bucket, _, key = value.removeprefix("s3://").partition("/")
    check_bucket(bucket, what=what)
    if object_key and (not key or key.endswith("/")):
        raise InvalidInputError(f"{what}: {value!r} must name an object, not a bucket or prefix")
    return S3Location(bucket=bucket, key=key)


@dataclass(frozen=True, slots=True)
class EcrHost:
    account: str
    region: str


def ecr_host(host: str) -> EcrHost | None:
    """The account and region of an ECR registry host, or None for any other registry."""
    match = _ECR_HOST.fullmatch(host)
    return None if match is None else EcrHost(account=match.group(1), region=match.group(2))


def check_image_uri(value: str, *, what: str = "image", region: str | None = None) -> str:
    """An image reference SageMaker can pull; an ECR image must be in the endpoint's region."""
    if not 1 <= len(value) <= IMAGE_MAX or any(ch.isspace() for ch in value):
        raise InvalidInputError(
            f"{what}: {value!r} is not an image reference (1-{IMAGE_MAX} characters without "
            "spaces, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)"
        )
    ecr = ecr_host(value.split("/", 1)[0]) if "/" in value else None
    if ecr is not None and region is not None and ecr.region != region:
        raise InvalidInputError(
            f"{what}: {value!r} is in ECR region {ecr.region}, but the endpoint is in {region}: "
            "SageMaker pulls ECR images from the endpoint's own region only; push the image there"
        )
    return value


# --- multi-model endpoints --------------------------------------------------------------------
# ContainerDefinition.Mode and MultiModelConfig.ModelCacheSetting enums; InvokeEndpoint's
# TargetModel: 1-1024 characters, \A\S[\p{Print}]*\z, the artifact's path relative to the
# model's ModelDataUrl prefix (SageMaker joins the two and downloads that .tar.gz).
MODEL_CACHE_SETTINGS: Final = ("Enabled", "Disabled")
TARGET_MODEL_MAX: Final = 1024
ARTIFACT_SUFFIX: Final = ".tar.gz"
# SageMaker hosts multi-model endpoints on every CPU instance type; on GPU ones only with NVIDIA
# Triton Inference Server containers, and on none of the Inferentia or Trainium types.
_ACCELERATED = re.compile(r"ml\.(p\d|g\d|inf\d|trn\d|dl\d)")


def check_model_prefix(value: str, *, what: str = "--model-data-url") -> S3Location:
    """A multi-model ModelDataUrl: the S3 prefix the models are under, ending with '/'."""
    where = check_s3_uri(value, what=what)
    if not value.endswith("/"):
        raise InvalidInputError(
            f"{what}: {value!r} must be an S3 prefix ending with '/' (e.g. "
            f"{value.rstrip('/')}/): a multi-model endpoint's ModelDataUrl is the prefix its "
            "models are under, and SageMaker appends each request's TargetModel to it"
        )
    if not where.key.strip("/"):
        raise InvalidInputError(
            f"{what}: {value!r} is a whole bucket; give a prefix below it (e.g. "
            f"s3://{where.bucket}/models/), which the endpoint's models alone live under"
        )
    return where


def check_target_model(value: str, *, what: str = "--target-model") -> str:
    """A multi-model endpoint's model: a relative path ending .tar.gz, as TargetModel allows."""
    printable = all(ch.isprintable() for ch in value)
    if not 1 <= len(value) <= TARGET_MODEL_MAX or not printable or value[:1].isspace():
        raise InvalidInputError(
            f"{what}: {value!r} is not a TargetModel: 1-{TARGET_MODEL_MAX} printable characters, "
            "not starting with a space"
        )
    parts = value.split("/")
    if value.startswith("/") or any(part in {"", ".", ".."} for part in parts):
        raise InvalidInputError(
            f"{what}: {value!r} must be a path relative to the endpoint's S3 prefix, without "
            "empty, '.' or '..' segments (e.g. exchange-a.tar.gz)"
        )
    if not value.endswith(ARTIFACT_SUFFIX) or value == ARTIFACT_SUFFIX:
        raise InvalidInputError(
            f"{what}: {value!r} must name a model artifact under the endpoint's S3 prefix, "
            f"ending {ARTIFACT_SUFFIX} (e.g. exchange-a.tar.gz; `python -m deploy models list` "
            "shows them)"
        )
    return value


def check_multi_model_instance_type(value: str) -> str:
    """An instance type this (CPU) container can host a multi-model endpoint on."""
    check_instance_type(value)
    if _ACCELERATED.match(value):
        raise InvalidInputError(
            f"instance type: {value!r} is a GPU or accelerator instance; SageMaker runs "
            "multi-model endpoints on those only with NVIDIA Triton Inference Server containers, "
            "and this container serves on CPU: choose a CPU type (all of them support "
            "multi-model endpoints), e.g. ml.c6i.xlarge"
        )
    return value


def check_repository(value: str) -> str:
    return REPOSITORY.check(value, what="repository")


def check_image_tag(value: str) -> str:
    return IMAGE_TAG.check(value, what="image tag")


def check_framework_version(value: str) -> str:
    return FRAMEWORK_VERSION.check(value, what="--framework-version")


def check_nearest_model_name(value: str) -> str:
    if not value.strip() or any(ch.isspace() for ch in value):
        raise InvalidInputError(
            f"--nearest-model-name: {value!r} must be a model name from ListModelMetadata, "
            "such as 'xgboost'"
        )
    return value


def check_mime_types(values: Sequence[str], *, what: str) -> tuple[str, ...]:
    if not values:
        raise InvalidInputError(f"{what}: give at least one MIME type")
    for value in values:
        if not _MIME_TYPE.fullmatch(value):
            raise InvalidInputError(f"{what}: {value!r} is not a MIME type like 'text/csv'")
    return tuple(values)


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
        if any(not value or len(value) > 128 for value in values):
            raise InvalidInputError(f"--env {name}: values must be 1-128 characters")
        if name == "SAGEMAKER_MODEL_SERVER_WORKERS" and not all(
            value.isdigit() and int(value) > 0 for value in values
        ):
            raise InvalidInputError(
                f"--env {name}: worker counts must be positive integers, got {', '.join(values)}"
            )
        checked[name] = tuple(values)
    return checked


def check_job_duration(seconds: int) -> int:
    if not 1 <= seconds <= MAX_JOB_DURATION_S:
        raise InvalidInputError(f"--job-duration: must be 1-{MAX_JOB_DURATION_S} s, got {seconds}")
    return seconds


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
    _fits_the_job(total, "--phase: the phases", job_duration_s=job_duration_s)
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
    _fits_the_job(duration_s * steps, "--stairs: the steps", job_duration_s=job_duration_s)
    return stairs


def _fits_the_job(total_s: int, what: str, *, job_duration_s: int | None) -> None:
    if job_duration_s is not None and total_s > job_duration_s:
        raise InvalidInputError(
            f"{what} last {total_s} s, longer than --job-duration {job_duration_s} s"
        )
