"""Creating and updating a real-time endpoint: artifact in S3, model, endpoint config, endpoint.

Every model and endpoint config gets the name ``<endpoint>-<YYYYmmdd-HHMMSS-mmm>`` and the tags
``rtb:endpoint=<endpoint>`` and ``rtb:managed-by=rtb-deploy``; ``deploy.teardown`` uses both to
find everything a deployment ever made, including the configs blue/green updates leave behind.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TextIO, get_args

from botocore.exceptions import ClientError

from deploy import multi_model, scaling, validation
from deploy.artifact import check_artifact
from deploy.errors import DeployError, error_code, is_not_found
from deploy.gateway import Gateway
from deploy.progress import wait_for_endpoint
from deploy.settings import DeploymentSettings, EndpointSettings, missing_hints

TAG_ENDPOINT = "rtb:endpoint"
TAG_MANAGED_BY = "rtb:managed-by"
MANAGED_BY = "rtb-deploy"

TrafficRouting = Literal["all-at-once", "canary", "linear"]
TRAFFIC_ROUTINGS: tuple[TrafficRouting, ...] = get_args(TrafficRouting)


@dataclass(frozen=True, kw_only=True)
class DataCapture:
    destination_s3_uri: str
    sampling_percent: int = 100


@dataclass(frozen=True, kw_only=True)
class BlueGreen:
    """UpdateEndpoint's DeploymentConfig: how traffic shifts, and which alarms roll it back."""

    routing: TrafficRouting = "all-at-once"
    step_percent: int = 10
    wait_interval: int = 300
    termination_wait: int = 0
    max_execution_timeout: int | None = None
    rollback_alarms: Sequence[str] = ()

    def to_api(self) -> dict[str, Any]:
        routing: dict[str, Any] = {
            "Type": self.routing.upper().replace("-", "_"),
            "WaitIntervalInSeconds": self.wait_interval,
        }
        step = {"Type": "CAPACITY_PERCENT", "Value": self.step_percent}
        if self.routing == "canary":
            routing["CanarySize"] = step
        elif self.routing == "linear":
            routing["LinearStepSize"] = step
        policy: dict[str, Any] = {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": self.termination_wait,
        }
        if self.max_execution_timeout is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = self.max_execution_timeout
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if self.rollback_alarms:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": name} for name in self.rollback_alarms]
            }
        return config

    def validate(self) -> None:
        if not 0 <= self.wait_interval <= 3600:
            raise DeployError(f"--wait-interval must be 0-3600 seconds, got {self.wait_interval}")
        if not 0 <= self.termination_wait <= 3600:
            raise DeployError(
                f"--termination-wait must be 0-3600 seconds, got {self.termination_wait}"
            )
        if (
            self.max_execution_timeout is not None
            and not 600 <= self.max_execution_timeout <= 28800
        ):
            raise DeployError(
                "--max-execution-timeout must be 600-28800 seconds, got "
                f"{self.max_execution_timeout}"
            )
        if self.routing != "all-at-once" and not 1 <= self.step_percent <= 99:
            raise DeployError(
                f"--step-percent must be 1-99 for {self.routing} routing, got {self.step_percent}"
            )
        if len(self.rollback_alarms) > 10:
            raise DeployError("at most 10 rollback alarms")


@dataclass(frozen=True, kw_only=True)
class Release:
    """What one create or update deploys besides the settings: artifact, environment, capture."""

    artifact: Path | None = None
    model_data_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    data_capture: DataCapture | None = None
    create_bucket: bool = False
    multi_model: multi_model.MultiModel | None = None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    model_data_url: str
    image_uri: str
    status: str
    mode: str = multi_model.SINGLE_MODEL
    models: tuple[str, ...] = ()
    """A multi-model endpoint's models under its prefix (what ``--target-model`` names)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def tags_for(endpoint_name: str) -> list[dict[str, str]]:
    return [
        {"Key": TAG_ENDPOINT, "Value": endpoint_name},
        {"Key": TAG_MANAGED_BY, "Value": MANAGED_BY},
    ]


def check_environment(environment: Mapping[str, str]) -> None:
    if len(environment) > 100:
        raise DeployError(f"at most 100 container environment variables, got {len(environment)}")
    for key, value in environment.items():
        if not key or len(key) > 1024 or len(value) > 1024:
            raise DeployError(
                f"environment variable {key[:40]!r}: keys and values are 1-1024 characters"
            )


def check_release(release: Release, settings: DeploymentSettings) -> None:
    """The local half of the checks: artifact file, S3 URIs, environment, data capture."""
    if release.multi_model is not None:
        if release.artifact is not None:
            raise DeployError("a multi-model release takes its artifacts in multi_model.artifacts")
        if release.model_data_url is not None:
            validation.check_model_prefix(release.model_data_url)
        multi_model.named_artifacts(release.multi_model.artifacts)
        validation.check_multi_model_instance_type(settings.instance_type)
    elif release.artifact is not None:
        check_artifact(release.artifact)
    elif release.model_data_url is not None:
        validation.check_s3_uri(release.model_data_url, what="--model-data-url")
    model_environment(settings, release.environment)
    if release.data_capture is not None:
        validation.check_s3_uri(release.data_capture.destination_s3_uri, what="--capture-s3-uri")
        if not 1 <= release.data_capture.sampling_percent <= 100:
            raise DeployError(
                f"--capture-percent must be 1-100, got {release.data_capture.sampling_percent}"
            )


def check_settings(settings: DeploymentSettings) -> None:
    """The rules each given setting must follow (no AWS call)."""
    validation.check_region(settings.region)
    validation.check_endpoint_name(settings.endpoint_name)
    validation.check_name(settings.variant_name, what="variant name")
    validation.check_instance_type(settings.instance_type)
    validation.check_positive(settings.instance_count, what="instance count")
    if settings.role_arn is not None:
        validation.check_role_arn(settings.role_arn)
    if settings.image_uri is not None:
        validation.check_image_uri(settings.image_uri, region=settings.region)
    if settings.bucket is not None:
        validation.check_bucket(settings.bucket)


@dataclass(frozen=True, kw_only=True)
class Container:
    """The image SageMaker runs and the role it runs as."""

    image_uri: str
    role_arn: str


def container_of(settings: DeploymentSettings) -> Container:
    """The container ``create`` deploys: both must be given."""
    missing = [name for name in ("role_arn", "image_uri") if getattr(settings, name) is None]
    if missing or settings.image_uri is None or settings.role_arn is None:
        raise DeployError(f"missing setting(s): {missing_hints(missing)}")
    return Container(image_uri=settings.image_uri, role_arn=settings.role_arn)


def preflight(
    gateway: Gateway, settings: DeploymentSettings, container: Container, *, err: TextIO
) -> str:
    """Check names and credentials before anything is created; return the caller's account id."""
    check_settings(settings)
    validation.check_role_arn(container.role_arn)
    validation.check_image_uri(container.image_uri, region=settings.region)
    if validation.ecr_host(container.image_uri.split("/", 1)[0]) is None:
        print(
            f"warning: {container.image_uri} is not in ECR; SageMaker pulls other registries only "
            "through a VPC (ImageConfig RepositoryAccessMode=Vpc, plus VpcConfig), which this tool "
            "does not set up",
            file=err,
        )
    identity = gateway.call("sts", "get_caller_identity")
    account = str(identity.get("Account", ""))
    if account and validation.role_account(container.role_arn) != account:
        print(
            f"warning: role {container.role_arn} belongs to another account than the caller "
            f"({account}); it must trust sagemaker.amazonaws.com and allow this account",
            file=err,
        )
    return account


def model_environment(settings: DeploymentSettings, extra: Mapping[str, str]) -> dict[str, str]:
    """The container environment: ``extra`` (``--env``), with ``--workers`` winning over it."""
    environment = dict(extra)
    if settings.workers is not None:
        environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(
            validation.check_positive(settings.workers, what="workers")
        )
    check_environment(environment)
    return environment


def ensure_bucket(gateway: Gateway, bucket: str, *, region: str, create: bool) -> bool:
    """True when the bucket exists; else create it (if asked) and return False."""
    try:
        gateway.call("s3", "head_bucket", Bucket=bucket)
        return True
    except ClientError as exc:
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            if error_code(exc) in {"403", "Forbidden"}:
                raise DeployError(
                    f"S3 bucket {bucket} exists but this caller may not use it (403)"
                ) from None
            raise
    if not create:
        raise DeployError(
            f"S3 bucket {bucket} does not exist; create it (infra/ template) or pass "
            "--create-bucket"
        )
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    gateway.call("s3", "create_bucket", **params)
    gateway.call(
        "s3",
        "put_public_access_block",
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return False


def artifact_key(settings: DeploymentSettings, stamp: str) -> str:
    prefix = settings.prefix.strip("/")
    return (
        f"{prefix}/{settings.endpoint_name}/{stamp}/model.tar.gz"
        if prefix
        else f"{settings.endpoint_name}/{stamp}/model.tar.gz"
    )


def stage_artifact(
    gateway: Gateway, settings: DeploymentSettings, release: Release, *, stamp: str, err: TextIO
) -> str:
    """The ModelDataUrl: the given S3 URI, or the local artifact uploaded under the prefix."""
    if release.model_data_url is not None:
        validation.check_s3_uri(release.model_data_url, what="--model-data-url", object_key=True)
        return release.model_data_url
    if release.artifact is None:
        raise DeployError(
            "give the model artifact: --model PATH/model.tar.gz or --model-data-url s3://..."
        )
    check_artifact(release.artifact)
    bucket = settings.bucket
    if bucket is None:
        raise DeployError(f"missing setting(s): {missing_hints(['bucket'])}")
    ensure_bucket(gateway, bucket, region=settings.region, create=release.create_bucket)
    key = artifact_key(settings, stamp)
    verb = "would upload" if gateway.dry_run else "uploading"
    print(f"{verb} {release.artifact} to s3://{bucket}/{key}", file=err, flush=True)
    gateway.call("s3", "upload_file", Filename=str(release.artifact), Bucket=bucket, Key=key)
    return f"s3://{bucket}/{key}"


def stage_models(
    gateway: Gateway,
    settings: DeploymentSettings,
    release: Release,
    models: multi_model.MultiModel,
    *,
    replace: bool,
    err: TextIO,
) -> tuple[str, tuple[str, ...]]:
    """A multi-model ModelDataUrl (the given prefix, else the default one) and its models.

    The artifacts given are uploaded under the prefix first; there must be at least one model.
    """
    artifacts = multi_model.named_artifacts(models.artifacts)
    if release.model_data_url is not None:
        prefix = release.model_data_url
    elif settings.bucket is not None:
        prefix = multi_model.default_prefix(
            bucket=settings.bucket, prefix=settings.prefix, endpoint_name=settings.endpoint_name
        )
    else:
        raise DeployError(
            f"missing setting(s): {missing_hints(['bucket'])} (or give --model-data-url "
            "s3://BUCKET/PREFIX/)"
        )
    bucket = validation.check_model_prefix(prefix).bucket
    existed = ensure_bucket(gateway, bucket, region=settings.region, create=release.create_bucket)
    listable = existed or not gateway.dry_run  # a dry run does not really create the bucket
    multi_model.upload(gateway, prefix, artifacts, replace=replace or not listable, err=err)
    hosted = (
        {model.target_model for model in multi_model.list_models(gateway, prefix)}
        if listable
        else set()
    )
    names = tuple(sorted(hosted | set(artifacts)))
    if not names:
        raise DeployError(
            f"no model under {prefix}: give --model PATH.tar.gz (repeatable) or a directory of "
            "them, or a --model-data-url prefix that already holds *.tar.gz artifacts"
        )
    return prefix, names


def _create_model(
    gateway: Gateway,
    settings: DeploymentSettings,
    image: Container,
    *,
    name: str,
    model_data_url: str,
    environment: Mapping[str, str],
    models: multi_model.MultiModel | None,
) -> None:
    container: dict[str, Any] = {
        "Image": image.image_uri,
        "ModelDataUrl": model_data_url,
        "Mode": multi_model.SINGLE_MODEL,
    }
    if models is not None:
        container.update(models.container_fields())
    if environment:
        container["Environment"] = dict(environment)
    gateway.call(
        "sagemaker",
        "create_model",
        ModelName=name,
        ExecutionRoleArn=image.role_arn,
        PrimaryContainer=container,
        Tags=tags_for(settings.endpoint_name),
    )


def _create_endpoint_config(
    gateway: Gateway,
    settings: DeploymentSettings,
    *,
    name: str,
    model_name: str,
    capture: DataCapture | None,
) -> None:
    params: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": settings.variant_name,
                "ModelName": model_name,
                "InstanceType": settings.instance_type,
                "InitialInstanceCount": settings.instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": tags_for(settings.endpoint_name),
    }
    if capture is not None:
        validation.check_s3_uri(capture.destination_s3_uri, what="--capture-s3-uri")
        if not 1 <= capture.sampling_percent <= 100:
            raise DeployError(f"--capture-percent must be 1-100, got {capture.sampling_percent}")
        params["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture.sampling_percent,
            "DestinationS3Uri": capture.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        }
    gateway.call("sagemaker", "create_endpoint_config", **params)


def describe_endpoint(gateway: Gateway, endpoint_name: str) -> dict[str, Any] | None:
    try:
        return gateway.call("sagemaker", "describe_endpoint", EndpointName=endpoint_name)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


@dataclass(frozen=True)
class Created:
    """A model or endpoint config this run made, to remove if a later step fails."""

    kind: Literal["model", "config"]
    name: str


@dataclass(frozen=True)
class Staged:
    """The model and endpoint config one create or update made, and the artifact they use."""

    name: str  # the model and the endpoint config share it
    model_data_url: str
    created: tuple[Created, ...]
    models: tuple[str, ...] = ()


def _undo(gateway: Gateway, created: Sequence[Created], *, err: TextIO) -> None:
    """Best-effort removal of what a failed create/update made, newest first."""
    for item in reversed(created):
        try:
            if item.kind == "model":
                gateway.call("sagemaker", "delete_model", ModelName=item.name)
            else:
                gateway.call("sagemaker", "delete_endpoint_config", EndpointConfigName=item.name)
            print(f"removed {item.kind} {item.name} after the failure", file=err)
        except ClientError as exc:
            print(f"could not remove {item.kind} {item.name}: {exc}", file=err)


def _stage(
    gateway: Gateway,
    settings: DeploymentSettings,
    container: Container,
    release: Release,
    *,
    err: TextIO,
    replace_models: bool = False,
) -> Staged:
    """Stage the artifact(s) and create model + endpoint config; undo them on failure."""
    stamp = validation.timestamp()
    name = validation.versioned_name(settings.endpoint_name, stamp)
    environment = model_environment(settings, release.environment)
    models: tuple[str, ...] = ()
    if release.multi_model is None:
        model_data_url = stage_artifact(gateway, settings, release, stamp=stamp, err=err)
    else:
        environment = {multi_model.CONTAINER_SWITCH: "true", **environment}
        model_data_url, models = stage_models(
            gateway, settings, release, release.multi_model, replace=replace_models, err=err
        )
    created: list[Created] = []
    try:
        _create_model(
            gateway,
            settings,
            container,
            name=name,
            model_data_url=model_data_url,
            environment=environment,
            models=release.multi_model,
        )
        created.append(Created("model", name))
        _create_endpoint_config(
            gateway, settings, name=name, model_name=name, capture=release.data_capture
        )
        created.append(Created("config", name))
    except BaseException:
        if not gateway.dry_run:
            _undo(gateway, created, err=err)
        raise
    return Staged(name=name, model_data_url=model_data_url, created=tuple(created), models=models)


def _outcome(
    settings: DeploymentSettings, container: Container, staged: Staged, status: str
) -> Outcome:
    return Outcome(
        endpoint_name=settings.endpoint_name,
        endpoint_config_name=staged.name,
        model_name=staged.name,
        model_data_url=staged.model_data_url,
        image_uri=container.image_uri,
        status=status,
        mode=multi_model.SINGLE_MODEL if not staged.models else multi_model.MULTI_MODEL,
        models=staged.models,
    )


def _point_endpoint(
    gateway: Gateway, operation: str, request: Mapping[str, Any], staged: Staged, *, err: TextIO
) -> None:
    """CreateEndpoint or UpdateEndpoint onto the staged config; if refused, undo the staging."""
    try:
        gateway.call("sagemaker", operation, **request)
    except BaseException:
        _undo(gateway, staged.created, err=err)
        raise


def _wait(
    gateway: Gateway, settings: EndpointSettings, *, expect_config: str | None, err: TextIO
) -> dict[str, Any]:
    return wait_for_endpoint(
        gateway,
        settings.endpoint_name,
        poll_interval=settings.poll_interval,
        timeout=settings.wait_timeout,
        expect_config=expect_config,
        err=err,
    )


def create(
    gateway: Gateway,
    settings: DeploymentSettings,
    release: Release,
    *,
    wait: bool,
    err: TextIO | None = None,
) -> Outcome:
    """Deploy a new endpoint; fail before creating anything if it already exists."""
    err = err or sys.stderr
    check_release(release, settings)
    container = container_of(settings)
    preflight(gateway, settings, container, err=err)
    if describe_endpoint(gateway, settings.endpoint_name) is not None:
        raise DeployError(
            f"endpoint {settings.endpoint_name} already exists; use `python -m deploy update` to "
            "change it"
        )
    staged = _stage(gateway, settings, container, release, err=err, replace_models=True)
    request = {
        "EndpointName": settings.endpoint_name,
        "EndpointConfigName": staged.name,
        "Tags": tags_for(settings.endpoint_name),
    }
    _point_endpoint(gateway, "create_endpoint", request, staged, err=err)
    status = "DryRun" if gateway.dry_run else "Creating"
    if wait and not gateway.dry_run:
        status = str(_wait(gateway, settings, expect_config=None, err=err)["EndpointStatus"])
    return _outcome(settings, container, staged, status)


def current_release(gateway: Gateway, endpoint_name: str, variant_name: str) -> dict[str, Any]:
    """The primary container (Image, ModelDataUrl, Mode, Environment) of the variant now."""
    description = describe_endpoint(gateway, endpoint_name)
    if description is None:
        raise DeployError(
            f"endpoint {endpoint_name} does not exist; create it first with `python -m deploy "
            "create`"
        )
    return release_of(gateway, description, variant_name)


def release_of(
    gateway: Gateway, description: Mapping[str, Any], variant_name: str
) -> dict[str, Any]:
    """``current_release`` of an endpoint already described."""
    endpoint_name = description["EndpointName"]
    config = gateway.call(
        "sagemaker",
        "describe_endpoint_config",
        EndpointConfigName=description["EndpointConfigName"],
    )
    variants = {variant["VariantName"]: variant for variant in config.get("ProductionVariants", [])}
    if variant_name not in variants:
        raise DeployError(
            f"endpoint {endpoint_name} has no variant {variant_name!r} (it has: "
            f"{', '.join(variants)})"
        )
    model = gateway.call(
        "sagemaker", "describe_model", ModelName=variants[variant_name]["ModelName"]
    )
    container: dict[str, Any] = (
        model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    )
    variant = variants[variant_name]
    return {
        **container,
        "status": description.get("EndpointStatus"),
        "role_arn": model.get("ExecutionRoleArn"),
        "instance_type": variant.get("InstanceType"),
        "instance_count": variant.get("InitialInstanceCount"),
        "data_capture": config.get("DataCaptureConfig") or {},
    }


def multi_model_prefix(gateway: Gateway, endpoint_name: str, variant_name: str) -> str:
    """The S3 prefix a multi-model endpoint's variant serves its models from."""
    running = current_release(gateway, endpoint_name, variant_name)
    if running.get("Mode") != multi_model.MULTI_MODEL or not running.get("ModelDataUrl"):
        raise DeployError(
            f"endpoint {endpoint_name} serves a single model (Mode "
            f"{running.get('Mode') or multi_model.SINGLE_MODEL}); models are added, listed and "
            "removed on multi-model endpoints (`python -m deploy create --multi-model`)"
        )
    return str(running["ModelDataUrl"])


def update(
    gateway: Gateway,
    settings: DeploymentSettings,
    release: Release,
    deployment: BlueGreen,
    *,
    wait: bool,
    explicit: frozenset[str] = frozenset(),
    suspend_autoscaling: bool = False,
    err: TextIO | None = None,
) -> Outcome:
    """Blue/green redeploy: new model + endpoint config, then UpdateEndpoint; keeps the rest.

    Whatever is not given is what runs now: the image, the role, the artifact (when neither
    ``--model`` nor ``--model-data-url`` is given, e.g. a new instance type only), the container
    environment (``--env`` and ``--workers`` change single variables), the instance type and
    count, and the data capture settings (``explicit`` names the settings given by flag,
    environment or file rather than by default).

    An autoscaled variant keeps the instance count autoscaling chose (RetainAllVariantProperties).
    SageMaker refuses to change the instance type of an autoscaled variant; with
    ``suspend_autoscaling`` its policies are removed for the update and put back afterwards, as
    AWS's documented procedure does.
    """
    err = err or sys.stderr
    deployment.validate()
    check_release(release, settings)
    check_settings(settings)
    running = current_release(gateway, settings.endpoint_name, settings.variant_name)
    running_multi = running.get("Mode") == multi_model.MULTI_MODEL
    if running_multi and release.multi_model is None:
        if release.artifact is not None:
            raise DeployError(
                f"endpoint {settings.endpoint_name} is a multi-model endpoint: add a model with "
                "`python -m deploy models add PATH.tar.gz` (an S3 upload, no update), or update "
                "with --multi-model --model PATH.tar.gz"
            )
        cache = (running.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
        release = replace(release, multi_model=multi_model.MultiModel(model_cache=cache))
    if running["status"] not in {"InService"} and not gateway.dry_run:
        raise DeployError(
            f"endpoint {settings.endpoint_name} is {running['status']}; UpdateEndpoint needs it "
            "InService"
        )
    container = container_of(
        replace(
            settings,
            image_uri=settings.image_uri or running.get("Image") or None,
            role_arn=settings.role_arn or running.get("role_arn") or None,
        )
    )
    if "instance_type" not in explicit and running.get("instance_type"):
        settings = replace(settings, instance_type=str(running["instance_type"]))
    if "instance_count" not in explicit and running.get("instance_count"):
        settings = replace(settings, instance_count=int(running["instance_count"]))
    if release.multi_model is not None:
        validation.check_multi_model_instance_type(settings.instance_type)
    capture = running["data_capture"]
    if release.data_capture is None and capture.get("EnableCapture"):
        release = replace(
            release,
            data_capture=DataCapture(
                destination_s3_uri=str(capture["DestinationS3Uri"]),
                sampling_percent=int(capture.get("InitialSamplingPercentage", 100)),
            ),
        )
    autoscaled = scaling.snapshot(
        gateway, endpoint_name=settings.endpoint_name, variant_name=settings.variant_name
    )
    retype = autoscaled is not None and settings.instance_type != running.get("instance_type")
    if retype and not suspend_autoscaling:
        raise DeployError(
            f"variant {settings.variant_name} is autoscaled, and SageMaker refuses to change "
            f"its instance type ({running.get('instance_type')} to {settings.instance_type}) "
            "while it is; pass --suspend-autoscaling to remove the policies for the update "
            "and put them back after"
        )
    if retype and not wait and not gateway.dry_run:
        raise DeployError(
            "--suspend-autoscaling waits for the update to put autoscaling back; drop --no-wait"
        )
    if autoscaled is not None and not retype and "instance_count" in explicit:
        print(
            f"note: variant {settings.variant_name} is autoscaled: its instance count stays what "
            "autoscaling set (RetainAllVariantProperties)",
            file=err,
        )
    # The running artifact (or prefix) carries over unless the mode changes: a single model
    # becoming a multi-model one gets the default prefix.
    same_mode = (release.multi_model is not None) == running_multi
    if release.artifact is None and release.model_data_url is None and same_mode:
        if not running.get("ModelDataUrl"):
            raise DeployError(
                "the running model has no ModelDataUrl to keep; give --model or --model-data-url"
            )
        release = replace(release, model_data_url=str(running["ModelDataUrl"]))
    # The running container environment carries over; --env and --workers change single keys.
    release = replace(
        release, environment={**running.get("Environment", {}), **release.environment}
    )
    preflight(gateway, settings, container, err=err)
    staged = _stage(gateway, settings, container, release, err=err)
    config_name = staged.name
    request: dict[str, Any] = {
        "EndpointName": settings.endpoint_name,
        "EndpointConfigName": config_name,
        "DeploymentConfig": deployment.to_api(),
    }
    if autoscaled is not None and not retype:
        request["RetainAllVariantProperties"] = True
    if retype:
        print(f"suspending autoscaling of {settings.variant_name} for the update", file=err)
        scaling.remove(
            gateway, endpoint_name=settings.endpoint_name, variant_names=[settings.variant_name]
        )
    try:
        _point_endpoint(gateway, "update_endpoint", request, staged, err=err)
        status = "DryRun" if gateway.dry_run else "Updating"
        if wait and not gateway.dry_run:
            final = _wait(gateway, settings, expect_config=config_name, err=err)
            if final.get("EndpointConfigName") != config_name:
                serving = final.get("EndpointConfigName")
                if final.get("FailureReason"):
                    raise DeployError(
                        f"update of {settings.endpoint_name} was rolled back; it still serves "
                        f"{serving}: {final['FailureReason']}"
                    )
                raise DeployError(
                    f"update of {settings.endpoint_name} did not take effect: it still serves "
                    f"{serving} and SageMaker gives no FailureReason"
                )
            status = str(final["EndpointStatus"])
    finally:
        if retype and autoscaled is not None:
            scaling.restore(gateway, autoscaled)
            print(f"autoscaling of {settings.variant_name} restored", file=err)
    return _outcome(settings, container, staged, status)
