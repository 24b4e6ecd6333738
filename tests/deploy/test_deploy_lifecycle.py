"""The endpoint commands against moto: create, update, autoscale, invoke, status, delete.

moto does not implement UpdateEndpoint (it answers 500), so that one call, and what DescribeEndpoint
says while the update runs, go to a botocore Stubber: it validates the request against the
SageMaker service model and checks the exact parameters. Everything else is moto.
"""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY
from deploy_support import (
    ACCOUNT,
    BUCKET,
    ENDPOINT,
    ENDPOINT_ARN,
    IMAGE_URI,
    REGION,
    ROLE_ARN,
    Cli,
    Router,
    assert_account_empty,
    deploy_flags,
    described,
    example_suggestion,
    planned,
    queue_answers,
    sm,
    stub_update,
)

pytestmark = pytest.mark.aws


def created(cli: Cli, seed_model: Path, *extra: str) -> dict[str, Any]:
    result = cli(
        "create",
        *deploy_flags(
            "--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket", *extra
        ),
    )
    assert result.code == 0, result.err
    outcome: dict[str, Any] = json.loads(result.out)
    return outcome


# --- create ------------------------------------------------------------------------------


def scaling_client() -> Any:
    return boto3.client("application-autoscaling", region_name=REGION)


def test_create_uploads_the_artifact_and_creates_model_config_and_endpoint(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    outcome = created(
        cli, seed_model, "--workers", "2", "--env", "RTB_LOG_LEVEL=debug",
        "--capture-s3-uri", f"s3://{BUCKET}/capture", "--capture-percent", "20",
    )  # fmt: skip

    assert outcome["status"] == "InService"
    name = outcome["model_name"]
    assert name.startswith(f"{ENDPOINT}-") and len(name) == len(ENDPOINT) + 20
    assert outcome["endpoint_config_name"] == name
    key = f"rtb-inference/{ENDPOINT}/{name.removeprefix(ENDPOINT + '-')}/model.tar.gz"
    assert outcome["model_data_url"] == f"s3://{BUCKET}/{key}"
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == seed_model.stat().st_size

    model = sm().describe_model(ModelName=name)
    assert model["ExecutionRoleArn"] == ROLE_ARN
    assert model["PrimaryContainer"]["Image"] == IMAGE_URI
    assert model["PrimaryContainer"]["ModelDataUrl"] == outcome["model_data_url"]
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "RTB_LOG_LEVEL": "debug",
    }
    config = sm().describe_endpoint_config(EndpointConfigName=name)
    (variant,) = config["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == ("AllTraffic", name)
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.large", 1)
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/capture"
    tags = sm().list_tags(ResourceArn=model["ModelArn"])["Tags"]
    assert {"Key": "rtb:endpoint", "Value": ENDPOINT} in tags
    assert sm().describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == name


def test_create_waits_and_shows_progress(aws: str, cli: Cli, seed_model: Path) -> None:
    result = cli(
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket"),
    )
    assert result.code == 0
    assert f"endpoint {ENDPOINT}: InService" in result.err


def test_dry_run_prints_every_change_and_makes_none(aws: str, cli: Cli, seed_model: Path) -> None:
    result, calls = planned(
        cli,
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket"),
    )
    assert calls == [
        "s3.create_bucket",
        "s3.put_public_access_block",
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.create_endpoint",
    ]
    create_model = next(
        line for line in result.out.splitlines() if "sagemaker.create_model" in line
    )
    assert json.loads(create_model.split(" ", 2)[2])["ExecutionRoleArn"] == ROLE_ARN
    assert "sts.get_caller_identity" in result.err  # reads are made, and shown on stderr
    assert sm().list_models()["Models"] == []
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []


def test_create_refuses_an_existing_endpoint(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    again = cli("create", *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model)))
    assert again.code == 1
    assert "already exists; use `python -m deploy update`" in again.err
    assert len(sm().list_models()["Models"]) == 1


def test_missing_bucket_is_an_error_unless_asked_to_create_it(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    result = cli("create", *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model)))
    assert result.code == 1
    assert f"S3 bucket {BUCKET} does not exist" in result.err and "--create-bucket" in result.err
    assert sm().list_models()["Models"] == []


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--endpoint-name", "rtb_test", "breaks SageMaker's name rule"),
        ("--endpoint-name", "x" * 44, "leave room for the '-YYYYmmdd-HHMMSS-mmm' suffix"),
        ("--instance-type", "c5.large", "instance type: 'c5.large' is not an instance type like"),
        ("--role-arn", "rtb-role", "is not an IAM role ARN"),
        ("--region", "us-east", "is not an AWS region name"),
        (
            "--image-uri",
            f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/rtb:1",
            "SageMaker pulls ECR images from the endpoint's own region",
        ),
        ("--instance-count", "0", "instance count must be at least 1"),
    ],
)
def test_bad_settings_fail_before_anything_is_created(
    aws: str, cli: Cli, seed_model: Path, flag: str, value: str, message: str
) -> None:
    args = deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket")
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    result = cli("create", *args)
    assert result.code == 1
    assert message in result.err
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []
    assert sm().list_models()["Models"] == []


def test_missing_settings_are_named_with_where_to_give_them(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    result = cli("create", "--region", REGION, "--model", str(seed_model))
    assert result.code == 1
    assert "missing setting(s): endpoint_name: --endpoint-name or $RTB_ENDPOINT_NAME" in result.err
    assert "role_arn" in result.err and "image_uri" in result.err


def test_no_credentials_is_a_clear_error(
    aws: str, cli: Cli, seed_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = cli(
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket"),
    )
    assert result.code == 1
    assert "no AWS credentials found" in result.err


def test_quota_error_explains_and_removes_what_was_created(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    router.routes.add("create_endpoint")
    router.stubber.add_client_error(
        "create_endpoint",
        service_error_code="ResourceLimitExceeded",
        service_message="The account-level service limit 'ml.c5.large for endpoint usage' is 0",
        http_status_code=400,
    )
    result = cli(
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket"),
    )
    assert result.code == 1
    assert "account quota reached" in result.err and "Service Quotas" in result.err
    assert sm().list_models()["Models"] == []
    assert sm().list_endpoint_configs()["EndpointConfigs"] == []


def test_a_failed_endpoint_is_reported_with_its_failure_reason(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    reason = "The primary container for production variant AllTraffic did not pass the ping check."

    def failing(
        params: dict[str, Any],
    ) -> None:  # what SageMaker says once CreateEndpoint is accepted
        router.routes.add("describe_endpoint")
        config = params["EndpointConfigName"]
        router.stubber.add_response("describe_endpoint", described(ENDPOINT, config, "Creating"))
        router.stubber.add_response(
            "describe_endpoint", described(ENDPOINT, config, "Failed", FailureReason=reason)
        )

    router.hooks["create_endpoint"] = failing
    result = cli(
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket"),
    )
    assert result.code == 1
    assert f"endpoint {ENDPOINT} is Failed: {reason}" in result.err
    assert f"/aws/sagemaker/Endpoints/{ENDPOINT}" in result.err  # where to look next


def test_create_rejects_an_artifact_sagemaker_would_unpack_wrongly(
    aws: str, cli: Cli, tmp_path: Path
) -> None:
    nested = tmp_path / "nested.tar.gz"
    inner = tmp_path / "model"
    inner.mkdir()
    (inner / "manifest.json").write_text("{}")
    with tarfile.open(nested, "w:gz") as archive:
        archive.add(inner, arcname="model")
    result = cli(
        "create", *deploy_flags("--image-uri", IMAGE_URI, "--model", str(nested), "--create-bucket")
    )
    assert result.code == 1
    assert "neither manifest.json nor xgboost-model at its top level" in result.err
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball")
    result = cli(
        "create",
        *deploy_flags("--image-uri", IMAGE_URI, "--model", str(garbage), "--create-bucket"),
    )
    assert result.code == 1 and "is not a readable .tar.gz" in result.err


# --- update (UpdateEndpoint through Stubber) -------------------------------------------------


def test_update_is_blue_green_with_a_new_model_and_config(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    seen = stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": ANY,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 120,
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    },
                    "TerminationWaitInSeconds": 60,
                    "MaximumExecutionTimeoutInSeconds": 1800,
                },
                "AutoRollbackConfiguration": {
                    "Alarms": [{"AlarmName": "rtb-5xx"}, {"AlarmName": "rtb-p99"}]
                },
            },
        },
    )
    result = cli(
        "update",
        *deploy_flags(
            "--instance-type", "ml.c5.xlarge", "--traffic", "canary", "--wait-interval", "120",
            "--termination-wait", "60", "--max-execution-timeout", "1800",
            "--rollback-alarm", "rtb-5xx", "--rollback-alarm", "rtb-p99",
        ),
    )  # fmt: skip

    assert result.code == 0, result.err
    outcome = json.loads(result.out)
    assert outcome["endpoint_config_name"] == seen["config"] != first["endpoint_config_name"]
    assert outcome["image_uri"] == IMAGE_URI  # kept from the running model
    assert outcome["model_data_url"] == first["model_data_url"]  # no new artifact given: kept
    config = sm().describe_endpoint_config(EndpointConfigName=outcome["endpoint_config_name"])
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["ModelName"]) == (
        "ml.c5.xlarge",
        outcome["model_name"],
    )
    assert (
        sm().describe_model(ModelName=outcome["model_name"])["PrimaryContainer"]["Image"]
        == IMAGE_URI
    )
    assert (
        f"endpoint {ENDPOINT}: Updating" in result.err
        and f"endpoint {ENDPOINT}: InService" in result.err
    )


def test_update_with_a_new_artifact_and_image(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    seen = stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    new_image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rtb-inference:v2"
    result = cli("update", *deploy_flags("--image-uri", new_image, "--model", str(seed_model)))
    assert result.code == 0, result.err
    outcome = json.loads(result.out)
    assert outcome["model_data_url"] != first["model_data_url"]
    assert outcome["endpoint_config_name"] == seen["config"]
    assert (
        sm().describe_model(ModelName=outcome["model_name"])["PrimaryContainer"]["Image"]
        == new_image
    )


def test_update_keeps_the_container_environment_and_changes_what_is_given(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(
        cli, seed_model, "--workers", "2", "--env", "RTB_LOG_LEVEL=debug", "--env", "A=1"
    )
    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    result = cli("update", *deploy_flags("--workers", "4", "--env", "A=2"))
    assert result.code == 0, result.err
    model = sm().describe_model(ModelName=json.loads(result.out)["model_name"])
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "4",
        "RTB_LOG_LEVEL": "debug",
        "A": "2",
    }


def test_update_dry_run_reads_the_running_release_and_changes_nothing(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    first = created(cli, seed_model)
    result, calls = planned(cli, "update", *deploy_flags("--instance-type", "ml.m5.large"))
    assert calls == [
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.update_endpoint",
    ]
    assert first["model_data_url"] in result.out  # the running artifact is reused
    assert [model["ModelName"] for model in sm().list_models()["Models"]] == [first["model_name"]]


def test_update_keeps_instance_settings_and_data_capture_unless_given(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    capture = f"s3://{BUCKET}/rtb-inference-capture"
    first = created(
        cli, seed_model, "--instance-type", "ml.m5.xlarge", "--instance-count", "2",
        "--capture-s3-uri", capture, "--capture-percent", "5",
    )  # fmt: skip
    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    result = cli("update", *deploy_flags("--model", str(seed_model)))
    assert result.code == 0, result.err
    config = sm().describe_endpoint_config(
        EndpointConfigName=json.loads(result.out)["endpoint_config_name"]
    )
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == capture
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 5


def test_an_autoscaled_variant_keeps_its_instance_count_through_a_model_update(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    assert cli("autoscale", *deploy_flags("--target-value", "100", "--max-capacity", "5")).code == 0
    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": ANY,
            "DeploymentConfig": ANY,
            "RetainAllVariantProperties": True,
        },
    )
    result = cli("update", *deploy_flags("--model", str(seed_model)))
    assert result.code == 0, result.err


def test_changing_an_autoscaled_instance_type_needs_suspend_autoscaling(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    created(cli, seed_model)
    assert cli("autoscale", *deploy_flags("--target-value", "100")).code == 0
    result = cli("update", *deploy_flags("--instance-type", "ml.c5.xlarge"))
    assert result.code == 1
    assert "refuses to change its instance type (ml.c5.large to ml.c5.xlarge)" in result.err
    assert "--suspend-autoscaling" in result.err
    assert len(sm().list_models()["Models"]) == 1  # nothing was created


def test_suspend_autoscaling_removes_the_policies_for_the_update_and_restores_them(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    assert (
        cli(
            "autoscale",
            *deploy_flags("--target-value", "321", "--min-capacity", "2", "--max-capacity", "7"),
        ).code
        == 0
    )
    seen = stub_update(router, previous=first["endpoint_config_name"])
    accepted = router.hooks["update_endpoint"]
    during: list[Any] = []

    def check_suspended(params: dict[str, Any]) -> None:
        during.append(
            scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")[
                "ScalableTargets"
            ]
        )
        accepted(params)

    router.hooks["update_endpoint"] = check_suspended
    router.stubber.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": ANY, "DeploymentConfig": ANY},
    )
    result = cli(
        "update", *deploy_flags("--instance-type", "ml.c5.xlarge", "--suspend-autoscaling")
    )
    assert result.code == 0, result.err
    assert during == [[]]  # no scalable target while UpdateEndpoint ran
    assert json.loads(result.out)["endpoint_config_name"] == seen["config"]
    (target,) = scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 7)
    (policy,) = scaling_client().describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 321
    assert "autoscaling of AllTraffic restored" in result.err


def test_a_rolled_back_update_is_a_failure_with_the_reason(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    stub_update(
        router, previous=first["endpoint_config_name"], rolled_back="Alarm rtb-5xx went into ALARM"
    )
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    result = cli("update", *deploy_flags("--rollback-alarm", "rtb-5xx"))
    assert result.code == 1
    assert "was rolled back" in result.err and "Alarm rtb-5xx went into ALARM" in result.err
    assert first["endpoint_config_name"] in result.err


def test_update_of_a_missing_endpoint_says_create_first(aws: str, cli: Cli) -> None:
    result = cli("update", *deploy_flags("--image-uri", IMAGE_URI))
    assert result.code == 1
    assert "does not exist; create it first" in result.err


def test_update_rejects_bad_blue_green_settings_before_any_call(aws: str, cli: Cli) -> None:
    result = cli("update", *deploy_flags("--max-execution-timeout", "10"))
    assert result.code == 1 and "600-28800" in result.err
    result = cli("update", *deploy_flags("--traffic", "linear", "--step-percent", "100"))
    assert result.code == 1 and "--step-percent must be 1-99" in result.err


# --- autoscale -------------------------------------------------------------------------------


RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"


def test_autoscale_from_a_measured_max_rps(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    result = cli(
        "autoscale", *deploy_flags("--max-rps", "850", "--min-capacity", "2", "--max-capacity", "6")
    )
    assert result.code == 0, result.err
    (target,) = scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (RESOURCE, 2, 6)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    (policy,) = scaling_client().describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 850 * 0.5 * 60  # AWS's load-test rule, safety factor 0.5
    assert (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (300, 60)
    assert json.loads(result.out)["target_value"] == 25500.0


def test_autoscale_from_a_recommendation_file_with_flag_overrides(
    aws: str, cli: Cli, seed_model: Path, tmp_path: Path
) -> None:
    created(cli, seed_model)
    recommendation = tmp_path / "recommendation.json"
    recommendation.write_text(
        json.dumps(
            {
                "metric": "SageMakerVariantConcurrentRequestsPerModelHighResolution",
                "target_value": 12.0,
                "min_capacity": 1,
                "max_capacity": 4,
                "scale_in_cooldown": 600,
                "scale_out_cooldown": 30,
                "source": "benchmark capacity run",
            }
        )
    )
    result = cli(
        "autoscale",
        *deploy_flags("--from-recommendation", str(recommendation), "--max-capacity", "8"),
    )
    assert result.code == 0, result.err
    (target,) = scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 8)
    (policy,) = scaling_client().describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 12.0
    metric = config["PredefinedMetricSpecification"]["PredefinedMetricType"]
    assert metric == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (600, 30)
    assert json.loads(result.out)["source"] == "benchmark capacity run"


def test_autoscale_twice_updates_in_place(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    assert cli("autoscale", *deploy_flags("--target-value", "100")).code == 0
    assert cli("autoscale", *deploy_flags("--target-value", "200", "--max-capacity", "3")).code == 0
    (policy,) = scaling_client().describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give the target"),
        (("--max-rps", "100", "--target-value", "5"), "not both"),
        (("--max-rps", "-1"), "--max-rps must be a positive number"),
        (("--max-rps", "100", "--safety-factor", "1.5"), "--safety-factor must be in (0, 1]"),
        (
            ("--target-value", "5", "--min-capacity", "3", "--max-capacity", "2"),
            "is below --min-capacity",
        ),
        (("--target-value", "5", "--min-capacity", "0"), "--min-capacity must be at least 1"),
    ],
)
def test_autoscale_rejects_bad_policies_without_calling_aws(
    aws: str, cli: Cli, args: tuple[str, ...], message: str
) -> None:
    result = cli("autoscale", *deploy_flags(*args))
    assert result.code == 1
    assert message in result.err
    assert (
        scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        == []
    )


# --- invoke ----------------------------------------------------------------------------------


def test_invoke_sends_csv_rows_and_prints_one_prediction_per_row(
    aws: str, cli: Cli, seed_model: Path, tmp_path: Path
) -> None:
    created(cli, seed_model)
    queue_answers(aws, ("0.00084757\n0.25\n0.5\n", "text/csv"))
    rows = tmp_path / "rows.csv"
    rows.write_text("1,2,0.0,7.0,3.0,20.0,2\n\n3,4,,1,1,1,1\n")
    result = cli("invoke", *deploy_flags("--row", "2,0,0.0,7.0,3.0,20.0,2", "--file", str(rows)))
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["0.00084757", "0.25", "0.5"]
    assert "answered by variant AllTraffic" in result.err


def test_invoke_json(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    queue_answers(
        aws, (json.dumps({"predictions": [{"score": 0.125}, {"score": 0.75}]}), "application/json")
    )
    result = cli(
        "invoke",
        *deploy_flags("--content-type", "application/json", "--row", "1,2,3", "--row", "4,,6"),
    )
    assert result.code == 0, result.err
    assert [json.loads(line) for line in result.out.splitlines()] == [
        {"score": 0.125},
        {"score": 0.75},
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((), "no rows to send"),
        (("1,abc,3",), "--row 1, column 2: 'abc' is not a number"),
        (("1,nan,3",), "is not a finite number"),
        (("1,2,3", "1,2"), "rows have different numbers of columns"),
    ],
)
def test_invoke_rejects_bad_rows_locally(
    aws: str, cli: Cli, rows: tuple[str, ...], message: str
) -> None:
    args = [item for row in rows for item in ("--row", row)]
    result = cli("invoke", *deploy_flags(*args))
    assert result.code == 1
    assert message in result.err


# --- status ----------------------------------------------------------------------------------


def test_status_shows_state_scaling_and_cloudwatch_figures(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    created(cli, seed_model)
    assert cli("autoscale", *deploy_flags("--target-value", "500", "--max-capacity", "4")).code == 0
    dimensions = [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    when = datetime.now(UTC) - timedelta(minutes=5)
    data = [
        ("Invocations", 1200.0, "None"),
        ("Invocations", 800.0, "None"),
        ("Invocation4XXErrors", 3.0, "None"),
        ("Invocation5XXErrors", 1.0, "None"),
        ("ModelLatency", 1500.0, "Microseconds"),
        ("ModelLatency", 2500.0, "Microseconds"),
        ("OverheadLatency", 4000.0, "Microseconds"),
    ]
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": when,
                "Value": value,
                "Unit": unit,
            }
            for name, value, unit in data
        ],
    )
    result = cli("status", *deploy_flags("--json", "--minutes", "30"))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["status"] == "InService"
    (variant,) = report["variants"]
    assert variant["autoscaling"] == {
        "min_capacity": 1,
        "max_capacity": 4,
        "policies": [
            {
                "name": f"{ENDPOINT}-AllTraffic-target-tracking",
                "type": "TargetTrackingScaling",
                "metric": "SageMakerVariantInvocationsPerInstance",
                "target_value": 500.0,
            }
        ],
    }
    assert variant["current_instance_count"] == 1
    figures = variant["metrics"]
    assert figures["invocations"] == 2000
    assert (figures["errors_4xx"], figures["errors_5xx"]) == (3, 1)
    assert figures["model_latency_avg_ms"] == pytest.approx(2.0)
    assert figures["model_latency_max_ms"] == pytest.approx(2.5)
    assert figures["overhead_latency_avg_ms"] == pytest.approx(4.0)

    table = cli("status", *deploy_flags())
    assert table.code == 0
    assert "2,000 invocations, 3 4XX, 1 5XX" in table.out
    assert "autoscaling 1-4, SageMakerVariantInvocationsPerInstance target 500" in table.out


def test_status_without_traffic_shows_no_latency(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    result = cli("status", *deploy_flags("--json"))
    (variant,) = json.loads(result.out)["variants"]
    assert variant["metrics"]["invocations"] == 0
    assert variant["metrics"]["model_latency_avg_ms"] is None


def test_status_of_a_missing_endpoint(aws: str, cli: Cli) -> None:
    result = cli("status", *deploy_flags())
    assert result.code == 1 and "does not exist" in result.err


# --- delete ----------------------------------------------------------------------------------


def test_delete_purge_removes_everything_and_is_idempotent(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName="rtb-inference")
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    ecr.put_image(repositoryName="rtb-inference", imageManifest=manifest, imageTag="test")
    other = sm().create_model(  # someone else's model with a similar name: must survive
        ModelName=f"{ENDPOINT}-other",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": IMAGE_URI},
    )
    first = created(cli, seed_model)
    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    assert cli("update", *deploy_flags("--model", str(seed_model))).code == 0
    router.routes.discard("describe_endpoint")  # back to moto, which never saw the update
    assert cli("autoscale", *deploy_flags("--max-rps", "100")).code == 0
    orphan = f"rtb-inference/{ENDPOINT}/orphan/model.tar.gz"  # an upload whose create failed
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=orphan, Body=b"x")

    result = cli("delete", *deploy_flags("--purge"))
    assert result.code == 0, result.err
    deleted = json.loads(result.out)["deleted"]
    assert sum(line.startswith("model ") for line in deleted) == 2
    assert sum(line.startswith("endpoint config ") for line in deleted) == 2
    assert f"endpoint {ENDPOINT}" in deleted
    assert f"s3://{BUCKET}/{orphan}" in deleted
    assert f"ecr image {IMAGE_URI}" in deleted
    sm().delete_model(ModelName=f"{ENDPOINT}-other")
    assert other["ModelArn"].endswith(f"{ENDPOINT}-other")
    assert_account_empty()

    again = cli("delete", *deploy_flags("--purge"))
    assert again.code == 0, again.err
    assert json.loads(again.out)["deleted"] == []
    assert "nothing left to delete" in again.err


def test_delete_dry_run_lists_the_plan_and_deletes_nothing(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    created(cli, seed_model)
    assert cli("autoscale", *deploy_flags("--max-rps", "100")).code == 0
    _, calls = planned(cli, "delete", *deploy_flags("--purge"))
    assert calls == [
        "application-autoscaling.delete_scaling_policy",
        "application-autoscaling.deregister_scalable_target",
        "sagemaker.delete_endpoint",
        "sagemaker.delete_endpoint_config",
        "sagemaker.delete_model",
        "s3.delete_objects",
    ]
    assert len(sm().list_models()["Models"]) == 1
    assert sm().list_endpoints()["Endpoints"] != []


# --- config and trace --------------------------------------------------------------------------


def test_config_shows_each_value_and_where_it_came_from(
    aws: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deploy.toml").write_text('bucket = "from-file"\ninstance_type = "ml.c5.xlarge"\n')
    monkeypatch.setenv("RTB_INSTANCE_TYPE", "ml.m5.large")
    result = cli("config", "--region", "eu-west-1")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["region"] == {"value": "eu-west-1", "from": "flag"}
    assert shown["instance_type"] == {"value": "ml.m5.large", "from": "env RTB_INSTANCE_TYPE"}
    assert shown["bucket"]["value"] == "from-file" and shown["bucket"]["from"].startswith("file ")
    assert shown["variant_name"] == {"value": "AllTraffic", "from": "default"}


def test_trace_shows_every_call_on_stderr(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    result = cli("status", "--trace", *deploy_flags())
    assert result.code == 0, result.err
    assert f'aws: sagemaker.describe_endpoint {{"EndpointName": "{ENDPOINT}"}}' in result.err
    assert "aws: cloudwatch.get_metric_data" in result.err


def test_autoscale_reads_the_file_benchmark_recommend_writes(
    aws: str, cli: Cli, seed_model: Path, tmp_path: Path
) -> None:
    """The contract between the two packages, checked with the writer's own class."""
    created(cli, seed_model)
    suggestion = example_suggestion()
    path = tmp_path / "autoscale.json"
    path.write_text(suggestion.to_json())
    result = cli("autoscale", *deploy_flags("--from-recommendation", str(path)))
    assert result.code == 0, result.err
    (policy,) = scaling_client().describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"
    ]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (config["TargetValue"], config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (
        1234.0,
        300,
        60,
    )
    (target,) = scaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert json.loads(result.out)["source"] == suggestion.source


def test_delete_finds_leftovers_of_a_create_that_never_made_its_endpoint(
    aws: str, cli: Cli
) -> None:
    tags = [
        {"Key": "rtb:endpoint", "Value": ENDPOINT},
        {"Key": "rtb:managed-by", "Value": "rtb-deploy"},
    ]
    name = f"{ENDPOINT}-20261125-120000-000"
    sm().create_model(
        ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": IMAGE_URI}, Tags=tags
    )
    sm().create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.large",
                "InitialInstanceCount": 1,
            }
        ],
        Tags=tags,
    )
    result = cli("delete", *deploy_flags())
    assert result.code == 0, result.err
    assert json.loads(result.out)["deleted"] == [f"endpoint config {name}", f"model {name}"]
    assert_account_empty()


def test_local_problems_are_found_before_any_aws_call(
    aws: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL", "http://127.0.0.1:9"
    )  # any AWS call would fail to connect
    missing = cli(
        "create", *deploy_flags("--image-uri", IMAGE_URI, "--model", str(tmp_path / "none.tar.gz"))
    )
    assert missing.code == 1 and "does not exist or is not a file" in missing.err
    capture = cli(
        "create",
        *deploy_flags(
            "--image-uri",
            IMAGE_URI,
            "--model-data-url",
            f"s3://{BUCKET}/m.tar.gz",
            "--capture-s3-uri",
            "s3://x",
        ),
    )
    assert capture.code == 1 and "S3 bucket name 'x' breaks S3's rules" in capture.err
    percent = cli(
        "update",
        *deploy_flags("--capture-s3-uri", f"s3://{BUCKET}/capture", "--capture-percent", "0"),
    )
    assert percent.code == 1 and "--capture-percent must be 1-100" in percent.err
    for result in (missing, capture, percent):
        assert "cannot reach AWS" not in result.err


def test_update_needs_only_the_endpoint_and_region(
    aws: str, cli: Cli, seed_model: Path, router: Router
) -> None:
    first = created(cli, seed_model)
    stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
    result = cli(
        "update",
        "--region",
        REGION,
        "--endpoint-name",
        ENDPOINT,
        "--poll-interval",
        "0",
        "--instance-count",
        "3",
    )
    assert result.code == 0, result.err
    model = sm().describe_model(ModelName=json.loads(result.out)["model_name"])
    assert model["ExecutionRoleArn"] == ROLE_ARN and model["PrimaryContainer"]["Image"] == IMAGE_URI
    (variant,) = sm().describe_endpoint_config(
        EndpointConfigName=json.loads(result.out)["endpoint_config_name"]
    )["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 3


def test_create_no_wait_returns_once_accepted(aws: str, cli: Cli, seed_model: Path) -> None:
    result = cli(
        "create",
        *deploy_flags(
            "--image-uri", IMAGE_URI, "--model", str(seed_model), "--create-bucket", "--no-wait"
        ),
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "Creating"
    assert f"endpoint {ENDPOINT}:" not in result.err  # no waiting line
    assert sm().describe_endpoint(EndpointName=ENDPOINT)["EndpointName"] == ENDPOINT


def test_invoke_raw_prints_the_body_as_it_came(aws: str, cli: Cli, seed_model: Path) -> None:
    created(cli, seed_model)
    body = json.dumps({"predictions": [{"score": 0.5}]}, indent=1)
    queue_answers(aws, (body, "application/json"))
    result = cli("invoke", *deploy_flags("--row", "1,2,3", "--accept", "application/json", "--raw"))
    assert result.code == 0, result.err
    assert result.out == body
