"""The issue's "done when": one session builds the image, pushes it to the local registry, then
creates, updates, autoscales, invokes and deletes an endpoint against moto, leaving nothing behind.

UpdateEndpoint (which moto does not implement) and DescribeEndpoint while it runs go to a botocore
Stubber; the push goes to the real registry (Debian's docker-registry with basic auth).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from deploy_support import (
    ENDPOINT_ARN,
    REGION,
    PushedImage,
    Result,
    Router,
    assert_account_empty,
    deploy_flags,
    queue_answers,
    sm,
    stub_update,
)

pytestmark = [pytest.mark.container, pytest.mark.aws, pytest.mark.slow]


def test_build_push_create_update_autoscale_invoke_status_delete(
    aws: str,
    cli: Callable[..., Result],
    pushed_image: PushedImage,
    seed_model: Path,
    router: Router,
) -> None:
    image = pushed_image.image_uri_by_digest  # what SageMaker would pull, pinned by digest
    assert pushed_image.media_type == "application/vnd.docker.distribution.manifest.v2+json"

    created = cli(
        "create",
        *deploy_flags(
            "--image-uri", image, "--model", str(seed_model), "--create-bucket", "--workers", "2"
        ),
    )
    assert created.code == 0, created.err
    assert "is not in ECR; SageMaker pulls other registries only through a VPC" in created.err
    first = json.loads(created.out)
    assert first["status"] == "InService"
    model = sm().describe_model(ModelName=first["model_name"])
    assert model["PrimaryContainer"]["Image"] == image

    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    updated = cli("update", *deploy_flags("--model", str(seed_model), "--instance-count", "2"))
    assert updated.code == 0, updated.err
    second = json.loads(updated.out)
    assert second["image_uri"] == image and second["model_data_url"] != first["model_data_url"]
    router.routes.discard("describe_endpoint")

    scaled = cli("autoscale", *deploy_flags("--max-rps", "400", "--max-capacity", "4"))
    assert scaled.code == 0, scaled.err
    assert json.loads(scaled.out)["target_value"] == 12000.0

    queue_answers(aws, ("0.00084757\n", "text/csv"))
    invoked = cli("invoke", *deploy_flags("--row", "2,0,0.0,7.0,3.0,20.0,2"))
    assert invoked.code == 0, invoked.err
    assert invoked.out == "0.00084757\n"

    status = cli("status", *deploy_flags("--json"))
    assert status.code == 0, status.err
    (variant,) = json.loads(status.out)["variants"]
    assert (variant["autoscaling"]["min_capacity"], variant["autoscaling"]["max_capacity"]) == (
        1,
        4,
    )
    assert variant["autoscaling"]["policies"][0]["target_value"] == 12000.0

    deleted = cli("delete", *deploy_flags("--purge"))
    assert deleted.code == 0, deleted.err
    # The bucket is a prerequisite (infra/), not part of a deployment; this test made it.
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in s3.list_buckets()["Buckets"]:
        s3.delete_bucket(Bucket=bucket["Name"])
    assert_account_empty()
    assert s3.list_buckets()["Buckets"] == []
