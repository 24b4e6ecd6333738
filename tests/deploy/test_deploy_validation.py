"""The one validation module: each rule accepts what AWS accepts and refuses what it refuses.

The patterns and lengths are checked against the installed botocore's service model (the API
reference's shapes), so a rule cannot drift looser than AWS's own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import botocore.session
import pytest

from deploy import validation
from deploy.errors import DeployError, InvalidInputError


@pytest.mark.parametrize("name", ["a", "rtb-bidder", "RTB2", "a--b", "x" * 63])
def test_valid_sagemaker_names(name: str) -> None:
    assert validation.check_name(name, what="name") == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "a.b", "x" * 64, "a b"])
def test_invalid_sagemaker_names(name: str) -> None:
    with pytest.raises(DeployError, match="name rule"):
        validation.check_name(name, what="name")


def test_versioned_names_fit_the_limit() -> None:
    stamp = validation.timestamp(datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC))
    assert stamp == "20261125-120000-123"
    longest = "x" * validation.ENDPOINT_NAME_MAX
    assert len(validation.versioned_name(validation.check_endpoint_name(longest), stamp)) == 63
    with pytest.raises(DeployError, match="leave room"):
        validation.check_endpoint_name(longest + "x")


@pytest.mark.parametrize(
    "value", ["ml.c5.large", "ml.c7g.2xlarge", "ml.m5d.24xlarge", "ml.inf2.xlarge", "ml.g6e.xlarge"]
)
def test_instance_types(value: str) -> None:
    assert validation.check_instance_type(value) == value


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (validation.check_instance_type, "c5.large", "is not an instance type like"),
        (validation.check_instance_type, "ml.c5", "is not an instance type like"),
        (validation.check_instance_type, "ml.C5.large", "is not an instance type like"),
        (validation.check_instance_type, "ml..large", "is not an instance type like"),
        (validation.check_instance_type, "ml.zz9.large", "not a SageMaker real-time instance"),
        (validation.check_target_model, "", "is not a TargetModel"),
        (validation.check_target_model, " a.tar.gz", "not starting with a space"),
        (validation.check_target_model, "a\n.tar.gz", "printable"),
        (validation.check_target_model, "x" * 1018 + ".tar.gz", "1-1024"),
        (validation.check_target_model, "/a.tar.gz", "relative to the endpoint's S3 prefix"),
        (validation.check_target_model, "a//b.tar.gz", "relative to the endpoint's S3 prefix"),
        (validation.check_target_model, "../a.tar.gz", "relative to the endpoint's S3 prefix"),
        (validation.check_target_model, "a.zip", "ending .tar.gz"),
        (validation.check_target_model, ".tar.gz", "ending .tar.gz"),
    ],
)
def test_bad_values_are_refused_with_the_rule(
    check: Callable[[str], str], value: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check(value)


def test_load_tests_refuse_burstable_and_repeated_instance_types() -> None:
    assert validation.check_instance_type("ml.t2.medium") == "ml.t2.medium"
    with pytest.raises(InvalidInputError, match="burstable"):
        validation.check_instance_type("ml.t2.medium", load_test=True)
    with pytest.raises(InvalidInputError, match="given twice"):
        validation.check_instance_types(["ml.c6i.large"] * 2, what="--instance-type")


@pytest.mark.parametrize(
    "value", ["us-east-1", "eu-central-2", "ap-southeast-5", "us-gov-west-1", "cn-north-1"]
)
def test_regions(value: str) -> None:
    assert validation.check_region(value) == value


@pytest.mark.parametrize("value", ["us-east", "US-EAST-1", "useast1", "us-east-1a"])
def test_bad_regions(value: str) -> None:
    with pytest.raises(DeployError):
        validation.check_region(value)


def test_role_arns() -> None:
    arn = "arn:aws:iam::123456789012:role/service-role/rtb-exec"
    assert validation.check_role_arn(arn) == arn
    assert validation.role_account(arn) == "123456789012"
    for bad in (
        "arn:aws:iam::1234:role/x",
        "arn:aws:iam::123456789012:user/x",
        "rtb-exec",
        "arn:aws:iam::123456789012:rolex",  # SageMaker's pattern allows this; IAM never issues it
        "arn:aws:iam::123456789012:role/" + "x" * 65,  # role names are 1-64 characters
        "arn:aws:iam::123456789012:role/réle",  # ASCII only, as SageMaker's pattern says
    ):
        with pytest.raises(DeployError):
            validation.check_role_arn(bad)


def test_image_uris() -> None:
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rtb-inference:1"
    assert validation.check_image_uri(ecr, region="eu-west-1") == ecr
    assert validation.check_image_uri(
        "registry.example.com:5000/rtb@sha256:" + "a" * 64, region="us-east-1"
    )
    with pytest.raises(DeployError, match="endpoint's own region"):
        validation.check_image_uri(ecr, region="us-east-1")
    with pytest.raises(DeployError):
        validation.check_image_uri("has space:1", region=None)


def test_buckets_repositories_tags_and_s3_uris() -> None:
    assert validation.check_bucket("rtb-artifacts.prod") == "rtb-artifacts.prod"
    for bad in ("Rtb", "ab", "a..b", "-ab", "192.168.1.1", "xn--ab", "ab-s3alias", "a_b"):
        with pytest.raises(DeployError):
            validation.check_bucket(bad)
    assert validation.check_repository("team/rtb-inference") == "team/rtb-inference"
    with pytest.raises(DeployError):
        validation.check_repository("Team/RTB")
    assert validation.check_image_tag("v1.2.3_rc-1") == "v1.2.3_rc-1"
    for bad in (".v1", "-v1", "v:1", "x" * 129):
        with pytest.raises(DeployError):
            validation.check_image_tag(bad)
    assert validation.check_s3_uri("s3://bucket-1/a/b.tar.gz") == validation.S3Location(
        bucket="bucket-1", key="a/b.tar.gz"
    )
    with pytest.raises(DeployError):
        validation.check_s3_uri("https://bucket-1/a")
    with pytest.raises(DeployError, match="must name an object"):
        validation.check_s3_uri("s3://bucket-1/prefix/", object_key=True)
    with pytest.raises(DeployError, match="at most 1024"):
        validation.check_s3_uri("s3://bucket-1/" + "k" * 1024)


@pytest.mark.parametrize("name", ["a", "rtb-adv-1", "A1--b2", "x" * 64])
def test_valid_job_names_pass(name: str) -> None:
    assert validation.check_name(name, what="--job-name", max_length=validation.JOB_NAME_MAX)


@pytest.mark.parametrize(
    ("shape", "pattern", "low", "high"),
    [
        ("EndpointName", r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", 0, validation.NAME_MAX),
        ("VariantName", r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", 0, validation.NAME_MAX),
        ("EntityName", r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", 1, validation.NAME_MAX),
        ("RecommendationJobName", r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}", 1, validation.JOB_NAME_MAX),
        ("RoleArn", r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+", 20, 2048),
        ("ContainerImage", r"[\S]+", 0, validation.IMAGE_MAX),
        ("S3Uri", r"(https|s3)://([^/]+)/?(.*)", 0, validation.S3_URI_MAX),
        ("FrameworkVersion", r"[0-9]\.[A-Za-z0-9.]+", 3, 10),
    ],
)
def test_the_rules_are_the_api_references(shape: str, pattern: str, low: int, high: int) -> None:
    """The shapes the rules above are taken from, as the installed botocore states them."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    metadata = model.shape_for(shape).metadata
    assert (metadata.get("pattern"), metadata.get("min"), metadata.get("max")) == (
        pattern,
        low,
        high,
    )


def test_instance_types_are_the_api_enum() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    enum = model.shape_for("ProductionVariantInstanceType").enum
    assert validation.known_instance_types() == frozenset(enum)
    assert all(validation.check_instance_type(value) == value for value in enum)


def test_multi_model_rules_are_the_api_references() -> None:
    """TargetModel's length and pattern, and the Mode and ModelCacheSetting enums."""
    session = botocore.session.get_session()
    target = session.get_service_model("sagemaker-runtime").shape_for("TargetModelHeader")
    assert (target.metadata["min"], target.metadata["max"]) == (1, validation.TARGET_MODEL_MAX)
    assert target.metadata["pattern"] == r"\A\S[\p{Print}]*\z"
    model = session.get_service_model("sagemaker")
    assert model.shape_for("MultiModelConfig").members["ModelCacheSetting"].enum == list(
        validation.MODEL_CACHE_SETTINGS
    )
    assert model.shape_for("ContainerMode").enum == ["SingleModel", "MultiModel"]


@pytest.mark.parametrize("value", ["a.tar.gz", "exchange-a.tar.gz", "2026/11/bidder v2.tar.gz"])
def test_target_models(value: str) -> None:
    assert validation.check_target_model(value) == value


def test_multi_model_prefixes_and_instance_types() -> None:
    where = validation.check_model_prefix("s3://rtb-artifacts/rtb-inference/bidder/models/")
    assert (where.bucket, where.key) == ("rtb-artifacts", "rtb-inference/bidder/models/")
    for value, message in (
        ("s3://rtb-artifacts/models", "ending with '/'"),
        ("s3://rtb-artifacts/", "is a whole bucket"),
        ("rtb-artifacts/models/", "is not an S3 URI"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            validation.check_model_prefix(value)
    for cpu in ("ml.c5.large", "ml.c7g.xlarge", "ml.m5.large", "ml.r6i.large", "ml.t2.medium"):
        assert validation.check_multi_model_instance_type(cpu) == cpu
    for accelerated in ("ml.g5.xlarge", "ml.p3.2xlarge", "ml.inf2.xlarge", "ml.trn1.2xlarge"):
        with pytest.raises(InvalidInputError, match="NVIDIA Triton"):
            validation.check_multi_model_instance_type(accelerated)
