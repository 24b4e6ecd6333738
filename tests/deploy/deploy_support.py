"""Constants and helpers the deploy tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber

from deploy.suggestion import INVOCATIONS, AutoscaleSuggestion
from tests.seed import SEED_TARBALL

REPO = Path(__file__).resolve().parents[2]
SEED_MODEL = SEED_TARBALL
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/rtb-inference-execution"
BUCKET = "rtb-artifacts-test"
IMAGE_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rtb-inference:test"


def require_or_skip(reason: str) -> None:
    """Skip with ``reason``, or fail when CI demands the container tests run."""
    if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
        pytest.fail(f"RTB_REQUIRE_CONTAINER=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., "Result"]
"""The ``cli`` fixture: ``python -m deploy ARGS`` run in-process."""


def deploy_flags(*extra: str) -> list[str]:
    return [
        "--region", REGION,
        "--endpoint-name", "rtb-test",
        "--role-arn", ROLE_ARN,
        "--bucket", BUCKET,
        "--poll-interval", "0",
        "--wait-timeout", "30",
        *extra,
    ]  # fmt: skip


ENDPOINT = "rtb-test"


def planned_calls(out: str) -> list[str]:
    """``service.operation`` of every ``dry-run:`` line a plan-mode command printed."""
    return [line.split(" ", 2)[1] for line in out.splitlines() if line.startswith("dry-run:")]


def planned(cli: Callable[..., Result], *argv: str) -> tuple[Result, list[str]]:
    """Run ``ARGV --dry-run``, check it succeeded, and return its planned calls."""
    result = cli(*argv, "--dry-run")
    assert result.code == 0, result.err
    return result, planned_calls(result.out)


def example_suggestion(**changes: object) -> AutoscaleSuggestion:
    """What ``benchmark recommend`` writes for a finished job, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "metric": INVOCATIONS,
        "target_value": 1234.0,
        "min_capacity": 1,
        "max_capacity": 4,
        "scale_in_cooldown": 300,
        "scale_out_cooldown": 60,
        "source": "inference recommender job rtb-adv-1, recommendation r",
        **changes,
    }
    return AutoscaleSuggestion(**fields)


ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"


def sm() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def assert_account_empty() -> None:
    """Nothing of the deployment is left in the moto account."""
    client = sm()
    assert client.list_endpoints()["Endpoints"] == []
    assert client.list_endpoint_configs()["EndpointConfigs"] == []
    assert client.list_models()["Models"] == []
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in s3.list_buckets()["Buckets"]:
        assert s3.list_objects_v2(Bucket=bucket["Name"]).get("KeyCount", 0) == 0, bucket["Name"]
    ecr = boto3.client("ecr", region_name=REGION)
    for repository in ecr.describe_repositories()["repositories"]:
        assert ecr.list_images(repositoryName=repository["repositoryName"])["imageIds"] == []


class Router:
    """Sends the SageMaker operations in ``routes`` to a Stubber; everything else goes to moto.

    ``hooks[operation](params)`` runs before that operation, e.g. to queue what DescribeEndpoint
    answers once an (unimplemented in moto) UpdateEndpoint was accepted.
    """

    def __init__(self) -> None:
        self.client = boto3.client("sagemaker", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.routes: set[str] = set()
        self.hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        # sagemaker-runtime operations in runtime_routes go to this Stubber (InvokeEndpoint).
        self.runtime_client = boto3.client("sagemaker-runtime", region_name=REGION)
        self.runtime_stubber = Stubber(self.runtime_client)
        self.runtime_routes: set[str] = set()


def described(name: str, config: str, status: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
        **extra,
    }


def stub_update(router: Router, *, previous: str, rolled_back: str | None = None) -> dict[str, str]:
    """UpdateEndpoint accepted; then DescribeEndpoint says Updating, then InService (new or old)."""
    seen: dict[str, str] = {}

    def accepted(params: dict[str, Any]) -> None:
        seen["config"] = params["EndpointConfigName"]
        router.routes.add("describe_endpoint")
        router.stubber.add_response("describe_endpoint", described(ENDPOINT, previous, "Updating"))
        final = params["EndpointConfigName"] if rolled_back is None else previous
        extra = {} if rolled_back is None else {"FailureReason": rolled_back}
        router.stubber.add_response(
            "describe_endpoint", described(ENDPOINT, final, "InService", **extra)
        )

    router.routes.add("update_endpoint")
    router.hooks["update_endpoint"] = accepted
    return seen


def queue_answers(moto_url: str, *answers: tuple[str, str]) -> None:
    """moto answers InvokeEndpoint with canned bodies; these are the next ones it gives."""
    results = [
        {
            "Body": body,
            "ContentType": content_type,
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": "",
        }
        for body, content_type in answers
    ]
    response = requests.post(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        json={"results": results},
        timeout=10,
    )
    response.raise_for_status()


@dataclass(frozen=True)
class Registry:
    host: str
    username: str
    password: str


@dataclass(frozen=True)
class PushedImage:
    image_uri: str
    image_uri_by_digest: str
    digest: str
    media_type: str
    engine: str
