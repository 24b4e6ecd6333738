"""Inference Recommender requests and answers (deploy.recommender), without any AWS call."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from aws_fakes import offline_clients
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deploy.errors import DeployError, InvalidInputError
from deploy.gateway import Gateway
from deploy.recommender.instant import fetch_instant
from deploy.recommender.job import LoadTest, job_request
from deploy.recommender.metadata import check_known
from deploy.recommender.package import PackageSpec, group_exists, package_request
from deploy.recommender.results import Recommendation, from_job, ordered
from deploy.recommender.scaling import scaling_request, suggestion_from_response

ROLE = "arn:aws:iam::123456789012:role/InferenceRecommender"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/rtb-xgboost/1"


def test_stairs_request_and_defaults() -> None:
    load = LoadTest(
        instance_types=("ml.c6i.large",), stairs=(300, 4, 2), flat_invocations="Continue"
    )
    request = job_request(
        name="rtb-stairs",
        job_type="Advanced",
        role_arn=ROLE,
        model_package_arn=PACKAGE,
        load_test=load,
    )
    assert request["InputConfig"]["TrafficPattern"] == {
        "TrafficType": "STAIRS",
        "Stairs": {"DurationInSeconds": 300, "NumberOfSteps": 4, "UsersPerStep": 2},
    }
    assert request["InputConfig"]["EndpointConfigurations"] == [{"InstanceType": "ml.c6i.large"}]
    assert request["StoppingConditions"] == {"FlatInvocations": "Continue"}
    assert "ResourceLimit" not in request["InputConfig"]


def test_default_job_refuses_a_load_test() -> None:
    with pytest.raises(InvalidInputError, match="Default takes none"):
        job_request(
            name="rtb-1", job_type="Default", role_arn=ROLE, model_package_arn=PACKAGE,
            load_test=LoadTest(instance_types=("ml.c6i.large",)),
        )  # fmt: skip


def row(
    name: str, *, cost: float | None, latency: int | None, rate: int | None, hour: float
) -> Recommendation:
    return Recommendation(
        recommendation_id=name, instance_type=name, instance_count=1, environment={},
        cost_per_hour=hour, cost_per_inference=cost, max_invocations=rate, model_latency_ms=latency,
        cpu_utilization=None, memory_utilization=None,
    )  # fmt: skip


def test_ordering_puts_missing_metrics_last_and_breaks_ties_by_cost_per_hour() -> None:
    rows = [
        row("none", cost=None, latency=None, rate=None, hour=0.01),
        row("dear", cost=2e-7, latency=3, rate=100, hour=0.5),
        row("cheap", cost=1e-7, latency=3, rate=50, hour=0.2),
    ]
    assert [r.instance_type for r in ordered(rows, objective="cost")] == ["cheap", "dear", "none"]
    assert [r.instance_type for r in ordered(rows, objective="latency")] == [
        "cheap",
        "dear",
        "none",
    ]
    assert [r.instance_type for r in ordered(rows, objective="throughput")] == [
        "dear",
        "cheap",
        "none",
    ]
    with pytest.raises(ValueError, match="objective"):
        ordered(rows, objective="speed")


def test_nan_utilisation_and_serverless_rows_are_read() -> None:
    job = {
        "InferenceRecommendations": [
            {
                "RecommendationId": "r1",
                "Metrics": {"CostPerHour": 0.1, "MemoryUtilization": math.nan},
                "EndpointConfiguration": {
                    "EndpointName": "e", "VariantName": "v",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                },
                "ModelConfiguration": {},
            }
        ]
    }  # fmt: skip
    (parsed,) = from_job(job)
    assert parsed.instance_type == "serverless-2048MB"
    assert parsed.memory_utilization is None and parsed.max_invocations is None


def test_scaling_answer_without_an_invocations_policy_is_an_error() -> None:
    customised = {
        "InferenceRecommendationsJobName": "j",
        "DynamicScalingConfiguration": {
            "ScalingPolicies": [
                {
                    "TargetTracking": {
                        "MetricSpecification": {"Customized": {"MetricName": "CPUUtilization"}},
                        "TargetValue": 50.0,
                    }
                }
            ]
        },
    }
    with pytest.raises(DeployError, match="no target-tracking policy"):
        suggestion_from_response(customised)


def test_scaling_defaults_when_sagemaker_leaves_fields_out() -> None:
    answer = {
        "InferenceRecommendationsJobName": "j",
        "RecommendationId": "r",
        "DynamicScalingConfiguration": {
            "ScalingPolicies": [
                {"TargetTracking": {
                    "MetricSpecification": {"Predefined": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
                    "TargetValue": 700.0}}
            ]
        },
    }  # fmt: skip
    suggestion = suggestion_from_response(answer)
    assert (suggestion.min_capacity, suggestion.max_capacity) == (1, 1)
    assert (suggestion.scale_in_cooldown, suggestion.scale_out_cooldown) == (300, 300)
    assert json.loads(suggestion.to_json())["target_value"] == 700.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target_cpu_per_core": 0}, "1-100"),
        ({"target_cpu_per_core": 101}, "1-100"),
        ({"min_invocations_per_minute": 10, "max_invocations_per_minute": 5}, "MIN <= MAX"),
    ],
)
def test_scaling_request_limits(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        scaling_request(job_name="j", recommendation_id="r", **options)


def test_metadata_check_with_no_benchmarked_model_says_so() -> None:
    with pytest.raises(InvalidInputError, match="lists no benchmarked model for 'PYTORCH'"):
        check_known([], framework="PYTORCH", framework_version="2.1", nearest_model_name="resnet50")


@pytest.mark.parametrize(
    ("code", "status", "message", "exists"),
    [
        ("ValidationException", 400, "ModelPackageGroup rtb-xgboost does not exist.", False),
        ("AccessDeniedException", 403, "not allowed", None),  # None: the error goes up
    ],
)
def test_a_missing_group_is_an_answer_other_errors_are_raised(
    code: str, status: int, message: str, exists: bool | None
) -> None:
    clients = offline_clients("sagemaker")
    gateway = Gateway(region=None, clients=clients)
    with Stubber(clients["sagemaker"]) as stub:
        stub.add_client_error(
            "describe_model_package_group",
            service_error_code=code,
            service_message=message,
            http_status_code=status,
        )
        if exists is None:
            with pytest.raises(ClientError, match=code):
                group_exists(gateway, "rtb-xgboost")
        else:
            assert group_exists(gateway, "rtb-xgboost") is exists


def test_a_multi_model_prefix_is_refused_for_a_model_package() -> None:
    spec = PackageSpec(
        group="rtb-xgboost",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/rtb-inference:1",
        model_data_url="s3://rtb-artifacts-test/rtb-inference/rtb-bidder/models/",
        sample_payload_url="s3://rtb-artifacts-test/payload.tar.gz",
        content_types=("text/csv",),
        response_types=("text/csv",),
        framework_version="1.7",
    )
    with pytest.raises(InvalidInputError, match="does not support multi-model endpoints"):
        package_request(spec)


def test_instant_recommendations_refuse_a_multi_model_model() -> None:
    clients = offline_clients("sagemaker")
    gateway = Gateway(region=None, clients=clients)
    with Stubber(clients["sagemaker"]) as stub:
        stub.add_response(
            "describe_model",
            {
                "ModelName": "rtb-mme",
                "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/rtb-mme",
                "CreationTime": 0,
                "PrimaryContainer": {"Mode": "MultiModel", "ModelDataUrl": "s3://b/models/"},
            },
            {"ModelName": "rtb-mme"},
        )
        with pytest.raises(InvalidInputError, match="does not support multi-model endpoints"):
            fetch_instant(gateway, "rtb-mme", attempts=3, interval_s=0, progress=print)
