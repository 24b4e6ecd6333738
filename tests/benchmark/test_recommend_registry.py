"""Model package registration against moto in server mode, through the real command line.

The command builds its own boto3 clients here (no injection): `--endpoint-url` points them at a
ThreadedMotoServer on a free loopback port.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Any

import boto3
import pytest

from benchmark import recommend
from benchmark.recommender.archive import build_archive
from deploy.gateway import Gateway
from deploy.recommender.package import group_exists
from tests.deploy import aws_fakes

pytestmark = pytest.mark.aws

REGION = "us-east-1"
BUCKET = "rtb-recommend-test"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/rtb-inference:0.1.0"


moto_url = aws_fakes.moto_url  # the one moto server fixture


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    options: dict[str, Any] = {"region_name": REGION, "endpoint_url": moto_url}
    s3 = boto3.client("s3", **options)
    if BUCKET not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return {"s3": s3, "sagemaker": boto3.client("sagemaker", **options), "endpoint": moto_url}


def register(aws: dict[str, Any], group: str, *extra: str) -> int:
    return recommend.main(
        [
            "--register-only",
            "--region", REGION,
            "--endpoint-url", aws["endpoint"],
            "--model-package-group", group,
            "--image", IMAGE,
            "--model-data", f"s3://{BUCKET}/model/model.tar.gz",
            "--payload-uri", f"s3://{BUCKET}/{group}/payload.tar.gz",
            *extra,
        ]
    )  # fmt: skip


def test_register_creates_the_group_and_a_complete_version(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker = aws["sagemaker"]
    gateway = Gateway(region=REGION, clients=aws)
    assert not group_exists(gateway, "rtb-reg-a")
    argv = ["--supported-instance-types", "ml.c6i.large,ml.c7i.large", "--framework-version", "1.7"]
    assert register(aws, "rtb-reg-a", *argv) == 0

    assert group_exists(gateway, "rtb-reg-a")
    arn = capsys.readouterr().out.strip().removeprefix("model package: ")
    assert arn.endswith(":model-package/rtb-reg-a/1")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["Domain"] == "MACHINE_LEARNING"
    assert package["Task"] == "CLASSIFICATION"
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["SamplePayloadUrl"] == f"s3://{BUCKET}/rtb-reg-a/payload.tar.gz"
    spec = package["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/model/model.tar.gz"
    assert (container["Framework"], container["FrameworkVersion"]) == ("XGBOOST", "1.7")
    assert container["NearestModelName"] == "xgboost"
    assert spec["SupportedContentTypes"] == ["text/csv"]
    assert spec["SupportedResponseMIMETypes"] == ["text/csv"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.c6i.large", "ml.c7i.large"]


def test_the_uploaded_payload_is_the_seeded_archive(aws: dict[str, Any]) -> None:
    assert register(aws, "rtb-reg-b", "--content-type", "application/json", "--seed", "7") == 0
    stored = aws["s3"].get_object(Bucket=BUCKET, Key="rtb-reg-b/payload.tar.gz")["Body"].read()
    expected = build_archive(content_type="application/json", files=10, rows_per_file=1, seed=7)
    assert stored == expected.data
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(stored))) as tar:
        names = tar.getnames()
    assert names == [f"request-{index:03d}.json" for index in range(10)]


def test_registering_again_reuses_the_group_and_adds_a_version(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert register(aws, "rtb-reg-c") == 0
    assert register(aws, "rtb-reg-c") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit("/", 1)[1] for line in lines] == ["1", "2"]
    versions = aws["sagemaker"].list_model_packages(ModelPackageGroupName="rtb-reg-c")
    assert len(versions["ModelPackageSummaryList"]) == 2


def test_a_missing_bucket_is_an_aws_error_not_a_crash(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = recommend.main(
        [
            "--register-only", "--region", REGION, "--endpoint-url", aws["endpoint"],
            "--image", IMAGE,
            "--model-data", f"s3://{BUCKET}/model/model.tar.gz",
            "--payload-uri", "s3://no-such-bucket-here/payload.tar.gz",
        ]
    )  # fmt: skip
    assert code == 1
    assert "PutObject: NoSuchBucket" in capsys.readouterr().err


def test_aws_endpoint_url_routes_the_command_without_a_flag(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["endpoint"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code = recommend.main(
        [
            "--register-only",
            "--model-package-group", "rtb-reg-env",
            "--image", IMAGE,
            "--model-data", f"s3://{BUCKET}/model/model.tar.gz",
            "--payload-uri", f"s3://{BUCKET}/rtb-reg-env/payload.tar.gz",
        ]
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.strip().endswith(":model-package/rtb-reg-env/1")
    assert group_exists(Gateway(region=REGION, clients=aws), "rtb-reg-env")
