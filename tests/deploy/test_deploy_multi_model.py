"""Multi-model endpoints against moto: create --multi-model, models add/list/remove, invoke
--target-model, status, update, autoscale and delete --purge.

moto keeps a model's PrimaryContainer as sent (Mode, ModelDataUrl, MultiModelConfig read back
as given) but checks none of the multi-model rules and ignores InvokeEndpoint's TargetModel, so
the exact CreateModel/CreateEndpointConfig/CreateEndpoint and InvokeEndpoint requests, and
SageMaker's answers to a missing or unexpected TargetModel, go to botocore's Stubber (which
validates each request against the service model). UpdateEndpoint is the Stubber's, as in the
single-model tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import deploy_support as support
import pytest
from botocore.stub import ANY
from deploy_support import Cli, Router, deploy_flags, planned, sm

pytestmark = pytest.mark.aws

PREFIX = f"s3://{support.BUCKET}/rtb-inference/{support.ENDPOINT}/models/"


def s3() -> Any:
    return boto3.client("s3", region_name=support.REGION)


@pytest.fixture
def models(seed_model: Path, tmp_path: Path) -> Path:
    """A directory of two artifacts (the seed model under two names) and one stray file."""
    directory = tmp_path / "models"
    directory.mkdir()
    for name in ("exchange-a.tar.gz", "exchange-b.tar.gz"):
        shutil.copyfile(seed_model, directory / name)
    (directory / "notes.txt").write_text("not a model")
    return directory


def create_mme(cli: Cli, *extra: str) -> dict[str, Any]:
    result = cli(
        "create",
        *deploy_flags("--image-uri", support.IMAGE_URI, "--multi-model", "--create-bucket", *extra),
    )
    assert result.code == 0, result.err
    outcome: dict[str, Any] = json.loads(result.out)
    return outcome


def keys(bucket: str = support.BUCKET) -> list[str]:
    return [item["Key"] for item in s3().list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- create --------------------------------------------------------------------------------


def test_create_uploads_each_model_under_the_prefix_and_makes_a_multi_model_model(
    aws: str, cli: Cli, models: Path
) -> None:
    outcome = create_mme(cli, "--model", str(models), "--instance-type", "ml.c5.xlarge")

    assert outcome["status"] == "InService"
    assert outcome["mode"] == "MultiModel"
    assert outcome["model_data_url"] == PREFIX
    assert outcome["models"] == ["exchange-a.tar.gz", "exchange-b.tar.gz"]
    prefix_key = PREFIX.removeprefix(f"s3://{support.BUCKET}/")
    assert keys() == [prefix_key + "exchange-a.tar.gz", prefix_key + "exchange-b.tar.gz"]
    container = sm().describe_model(ModelName=outcome["model_name"])["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == PREFIX
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
    assert container["Environment"] == {"SAGEMAKER_MULTI_MODEL": "true"}
    config = sm().describe_endpoint_config(EndpointConfigName=outcome["endpoint_config_name"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"


def test_create_request_shapes(aws: str, cli: Cli, models: Path, router: Router) -> None:
    """The exact CreateModel, CreateEndpointConfig and CreateEndpoint, checked by the Stubber."""
    router.routes.update({"create_model", "create_endpoint_config", "create_endpoint"})
    container = {
        "Image": support.IMAGE_URI,
        "ModelDataUrl": f"s3://{support.BUCKET}/shared/mme/",
        "Mode": "MultiModel",
        "MultiModelConfig": {"ModelCacheSetting": "Disabled"},
        "Environment": {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
    }
    router.stubber.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{support.REGION}:123456789012:model/m"},
        {
            "ModelName": ANY,
            "ExecutionRoleArn": support.ROLE_ARN,
            "PrimaryContainer": container,
            "Tags": ANY,
        },
    )
    router.stubber.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{support.REGION}:123456789012:endpoint-config/c"},
        {"EndpointConfigName": ANY, "ProductionVariants": ANY, "Tags": ANY},
    )
    router.stubber.add_response(
        "create_endpoint",
        {"EndpointArn": support.ENDPOINT_ARN},
        {"EndpointName": support.ENDPOINT, "EndpointConfigName": ANY, "Tags": ANY},
    )
    outcome = create_mme(
        cli, "--model", str(models / "exchange-a.tar.gz"), "--model-cache", "Disabled",
        "--model-data-url", f"s3://{support.BUCKET}/shared/mme/", "--workers", "2", "--no-wait",
    )  # fmt: skip
    assert outcome["models"] == ["exchange-a.tar.gz"]
    assert keys() == ["shared/mme/exchange-a.tar.gz"]


def test_create_dry_run_plans_the_uploads_and_creates_nothing(
    aws: str, cli: Cli, models: Path
) -> None:
    result, calls = planned(
        cli,
        "create",
        *deploy_flags(
            "--image-uri",
            support.IMAGE_URI,
            "--multi-model",
            "--create-bucket",
            "--model",
            str(models),
        ),
    )
    assert calls == [
        "s3.create_bucket",
        "s3.put_public_access_block",
        "s3.upload_file",
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.create_endpoint",
    ]
    assert f'"ModelDataUrl": "{PREFIX}"' in result.out and '"Mode": "MultiModel"' in result.out
    assert s3().list_buckets()["Buckets"] == [] and sm().list_models()["Models"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--instance-type", "ml.g5.xlarge"), "only with NVIDIA Triton Inference Server"),
        (("--instance-type", "ml.inf2.xlarge"), "choose a CPU type"),
        (
            ("--model-data-url", f"s3://{support.BUCKET}/models"),
            "must be an S3 prefix ending with '/'",
        ),
        (("--model-data-url", f"s3://{support.BUCKET}/"), "is a whole bucket"),
    ],
)
def test_multi_model_rules_are_checked_before_anything_is_created(
    aws: str, cli: Cli, models: Path, extra: tuple[str, ...], message: str
) -> None:
    result = cli(
        "create",
        *deploy_flags(
            "--image-uri", support.IMAGE_URI, "--multi-model", "--create-bucket",
            "--model", str(models), *extra,
        ),
    )  # fmt: skip
    assert result.code == 1
    assert message in result.err
    assert s3().list_buckets()["Buckets"] == [] and sm().list_models()["Models"] == []


def test_artifact_names_are_checked_before_anything_is_created(
    aws: str, cli: Cli, models: Path, seed_model: Path, tmp_path: Path
) -> None:
    zipped = tmp_path / "model.zip"
    shutil.copyfile(seed_model, zipped)
    twin = tmp_path / "exchange-a.tar.gz"
    shutil.copyfile(seed_model, twin)
    for extra, message in (
        (("--model", str(zipped)), "must name a model artifact under the endpoint's S3 prefix"),
        (("--model", str(models), "--model", str(twin)), "would both be exchange-a.tar.gz"),
        (("--model", str(tmp_path / "empty")), "does not exist"),
    ):
        result = cli(
            "create", *deploy_flags("--image-uri", support.IMAGE_URI, "--multi-model", *extra)
        )
        assert result.code == 1 and message in result.err, result.err
    assert sm().list_models()["Models"] == []


def test_single_model_options_stay_single(aws: str, cli: Cli, models: Path) -> None:
    for extra, message in (
        (("--model", str(models / "exchange-a.tar.gz")) * 2, "several with --multi-model"),
        (("--model-cache", "Disabled"), "add --multi-model"),
        (
            ("--model-data-url", f"s3://{support.BUCKET}/models/"),
            "must name an object, not a bucket",
        ),
    ):
        result = cli(
            "create", *deploy_flags("--image-uri", support.IMAGE_URI, "--create-bucket", *extra)
        )
        assert result.code == 1 and message in result.err, result.err
    assert sm().list_models()["Models"] == []


def test_a_multi_model_endpoint_needs_a_model(aws: str, cli: Cli) -> None:
    result = cli(
        "create",
        *deploy_flags("--image-uri", support.IMAGE_URI, "--multi-model", "--create-bucket"),
    )
    assert result.code == 1
    assert f"no model under {PREFIX}: give --model PATH.tar.gz" in result.err
    assert sm().list_models()["Models"] == []


def test_an_existing_prefix_serves_without_uploading(aws: str, cli: Cli, models: Path) -> None:
    s3().create_bucket(Bucket=support.BUCKET)
    s3().upload_file(str(models / "exchange-b.tar.gz"), support.BUCKET, "shared/exchange-b.tar.gz")
    outcome = create_mme(cli, "--model-data-url", f"s3://{support.BUCKET}/shared/")
    assert outcome["models"] == ["exchange-b.tar.gz"]
    assert keys() == ["shared/exchange-b.tar.gz"]


# --- models add / list / remove --------------------------------------------------------------


def models_json(cli: Cli, *argv: str) -> dict[str, Any]:
    result = cli("models", *argv)
    assert result.code == 0, result.err
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_models_add_list_remove(aws: str, cli: Cli, models: Path) -> None:
    create_mme(cli, "--model", str(models / "exchange-a.tar.gz"))
    listed = models_json(cli, "list", *deploy_flags())
    assert listed["model_data_url"] == PREFIX
    assert [model["target_model"] for model in listed["models"]] == ["exchange-a.tar.gz"]
    assert listed["models"][0]["size_bytes"] == (models / "exchange-a.tar.gz").stat().st_size

    added = models_json(cli, "add", str(models / "exchange-b.tar.gz"), *deploy_flags())
    assert added["added"] == ["exchange-b.tar.gz"]
    again = cli("models", "add", str(models / "exchange-a.tar.gz"), *deploy_flags())
    assert again.code == 1
    assert "exchange-a.tar.gz already under" in again.err and "new name" in again.err
    replaced = models_json(cli, "add", "--replace", str(models), *deploy_flags())
    assert replaced["added"] == ["exchange-a.tar.gz", "exchange-b.tar.gz"]

    typo = cli("models", "remove", "exchange-a.tar.gz", "exchange-c.tar.gz", *deploy_flags())
    assert typo.code == 1 and "no model exchange-c.tar.gz under" in typo.err
    assert len(models_json(cli, "list", *deploy_flags())["models"]) == 2  # nothing deleted
    removed = models_json(cli, "remove", "exchange-a.tar.gz", *deploy_flags())
    assert removed["removed"] == ["exchange-a.tar.gz"]
    remaining = models_json(cli, "list", *deploy_flags())["models"]
    assert [model["target_model"] for model in remaining] == ["exchange-b.tar.gz"]


def test_models_of_a_single_model_endpoint_is_a_clear_error(
    aws: str, cli: Cli, seed_model: Path
) -> None:
    result = cli(
        "create",
        *deploy_flags(
            "--image-uri", support.IMAGE_URI, "--model", str(seed_model), "--create-bucket"
        ),
    )
    assert result.code == 0, result.err
    listed = cli("models", "list", *deploy_flags())
    assert listed.code == 1
    assert f"endpoint {support.ENDPOINT} serves a single model (Mode SingleModel)" in listed.err


def test_models_add_dry_run_uploads_nothing(aws: str, cli: Cli, models: Path) -> None:
    create_mme(cli, "--model", str(models / "exchange-a.tar.gz"))
    _, calls = planned(cli, "models", "add", str(models / "exchange-b.tar.gz"), *deploy_flags())
    assert calls == ["s3.upload_file"]
    assert len(keys()) == 1


# --- invoke ----------------------------------------------------------------------------------


def test_invoke_sends_the_target_model(aws: str, cli: Cli, router: Router) -> None:
    router.runtime_routes.add("invoke_endpoint")
    router.runtime_stubber.add_response(
        "invoke_endpoint",
        {"Body": _body(b"0.25\n"), "ContentType": "text/csv", "InvokedProductionVariant": "A"},
        {
            "EndpointName": support.ENDPOINT,
            "Body": b"1,2,3\n",
            "ContentType": "text/csv",
            "Accept": "text/csv",
            "TargetModel": "exchange-a.tar.gz",
        },
    )
    result = cli("invoke", "--row", "1,2,3", "--target-model", "exchange-a.tar.gz", *deploy_flags())
    assert result.code == 0, result.err
    assert result.out == "0.25\n"


@pytest.mark.parametrize(
    ("target", "said", "advice"),
    [
        (
            None,
            "Request 186633a1 is missing a target model header",
            "is a multi-model endpoint: name the model with --target-model",
        ),
        (
            "exchange-a.tar.gz",
            f"Endpoint {support.ENDPOINT} is not a multi-model endpoint and does not support "
            "target model header.",
            "serves a single model: drop --target-model",
        ),
    ],
)
def test_invoke_explains_a_missing_or_unexpected_target_model(
    aws: str, cli: Cli, router: Router, target: str | None, said: str, advice: str
) -> None:
    """SageMaker's own ValidationError messages for these two mistakes (as users reported them)."""
    router.runtime_routes.add("invoke_endpoint")
    router.runtime_stubber.add_client_error(
        "invoke_endpoint", service_error_code="ValidationError", service_message=said
    )
    target_flags = () if target is None else ("--target-model", target)
    result = cli("invoke", "--row", "1,2,3", *target_flags, *deploy_flags())
    assert result.code == 1
    assert advice in result.err and said in result.err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("exchange-a", "ending .tar.gz"),
        ("/exchange-a.tar.gz", "relative to the endpoint's S3 prefix"),
        ("a/../b.tar.gz", "relative to the endpoint's S3 prefix"),
        (" a.tar.gz", "not starting with a space"),
    ],
)
def test_invoke_checks_the_target_model_locally(
    aws: str, cli: Cli, target: str, message: str
) -> None:
    result = cli("invoke", "--row", "1,2,3", "--target-model", target, *deploy_flags())
    assert result.code == 1 and message in result.err


def _body(data: bytes) -> Any:
    from io import BytesIO

    from botocore.response import StreamingBody

    return StreamingBody(BytesIO(data), len(data))


# --- status, autoscale, update, delete -------------------------------------------------------


def test_status_shows_the_mode_and_the_models(aws: str, cli: Cli, models: Path) -> None:
    create_mme(cli, "--model", str(models))
    report = json.loads(cli("status", "--json", *deploy_flags()).out)
    assert report["mode"] == "MultiModel"
    assert report["model_data_url"] == PREFIX
    assert report["models"] == ["exchange-a.tar.gz", "exchange-b.tar.gz"]
    table = cli("status", *deploy_flags())
    assert table.code == 0, table.err
    assert f"models    multi-model, 2 under {PREFIX}" in table.out
    assert "exchange-a.tar.gz, exchange-b.tar.gz" in table.out


def test_autoscale_works_on_a_multi_model_endpoint(aws: str, cli: Cli, models: Path) -> None:
    create_mme(cli, "--model", str(models))
    result = cli("autoscale", *deploy_flags("--max-rps", "400", "--max-capacity", "3"))
    assert result.code == 0, result.err
    scaling = boto3.client("application-autoscaling", region_name=support.REGION)
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{support.ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)


def test_update_keeps_the_multi_model_mode_and_prefix(
    aws: str, cli: Cli, models: Path, router: Router
) -> None:
    first = create_mme(cli, "--model", str(models), "--model-cache", "Disabled")
    refused = cli("update", *deploy_flags("--model", str(models / "exchange-a.tar.gz")))
    assert refused.code == 1 and "models add PATH.tar.gz" in refused.err
    gpu = cli("update", *deploy_flags("--instance-type", "ml.g5.xlarge"))
    assert gpu.code == 1 and "NVIDIA Triton" in gpu.err

    support.stub_update(router, previous=first["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": support.ENDPOINT_ARN})
    result = cli("update", *deploy_flags("--instance-type", "ml.m5.large"))
    assert result.code == 0, result.err
    outcome = json.loads(result.out)
    assert (outcome["mode"], outcome["model_data_url"]) == ("MultiModel", PREFIX)
    container = sm().describe_model(ModelName=outcome["model_name"])["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == PREFIX
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}


def test_delete_purge_removes_the_prefix_and_everything_else(
    aws: str, cli: Cli, models: Path
) -> None:
    create_mme(cli, "--model", str(models / "exchange-a.tar.gz"))
    models_json(cli, "add", str(models / "exchange-b.tar.gz"), *deploy_flags())
    assert cli("autoscale", *deploy_flags("--max-rps", "100")).code == 0
    result = cli("delete", *deploy_flags("--purge"))
    assert result.code == 0, result.err
    deleted = json.loads(result.out)["deleted"]
    assert f"{PREFIX}exchange-b.tar.gz" in deleted  # added after create, found under the prefix
    support.assert_account_empty()


def test_delete_purge_empties_a_prefix_outside_the_endpoints_folder(
    aws: str, cli: Cli, models: Path
) -> None:
    create_mme(
        cli, "--model", str(models), "--model-data-url", f"s3://{support.BUCKET}/shared/mme/"
    )
    s3().put_object(Bucket=support.BUCKET, Key="shared/other-endpoint.tar.gz", Body=b"x")
    assert cli("delete", *deploy_flags("--purge")).code == 0
    assert keys() == ["shared/other-endpoint.tar.gz"]  # beside the prefix, not under it


def test_update_multi_model_turns_a_single_model_endpoint_into_one(
    aws: str, cli: Cli, models: Path, seed_model: Path, router: Router
) -> None:
    result = cli(
        "create",
        *deploy_flags(
            "--image-uri", support.IMAGE_URI, "--model", str(seed_model), "--create-bucket"
        ),
    )
    assert result.code == 0, result.err
    support.stub_update(router, previous=json.loads(result.out)["endpoint_config_name"])
    router.stubber.add_response("update_endpoint", {"EndpointArn": support.ENDPOINT_ARN})
    updated = cli("update", *deploy_flags("--multi-model", "--model", str(models)))
    assert updated.code == 0, updated.err
    outcome = json.loads(updated.out)
    assert (outcome["mode"], outcome["model_data_url"]) == ("MultiModel", PREFIX)
    container = sm().describe_model(ModelName=outcome["model_name"])["PrimaryContainer"]
    assert (container["Mode"], container["ModelDataUrl"]) == ("MultiModel", PREFIX)
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"


def test_status_without_the_model_shows_no_mode(aws: str, cli: Cli, models: Path) -> None:
    outcome = create_mme(cli, "--model", str(models))
    sm().delete_model(ModelName=outcome["model_name"])
    result = cli("status", "--json", *deploy_flags())
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["status"] == "InService" and report["mode"] is None
