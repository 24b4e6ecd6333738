"""``python -m deploy SUBCOMMAND``: push, create, update, autoscale, invoke, models, status, delete,
config.

Results (URIs, JSON summaries, predictions, status tables) go to stdout; progress, the dry-run
trace of reads and errors go to stderr. Exit status: 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from deploy import (
    endpoint,
    image,
    invocation,
    monitoring,
    multi_model,
    registry,
    scaling,
    teardown,
    validation,
)
from deploy.errors import DeployError, explain
from deploy.gateway import Gateway
from deploy.settings import (
    ENVIRONMENT,
    DeploymentSettings,
    EndpointSettings,
    Resolved,
    deployment_settings,
    endpoint_settings,
    load_settings,
    missing_hints,
)
from deploy.suggestion import INVOCATIONS, METRICS, AutoscaleSuggestion

_SETTING_HELP = {
    "region": "AWS region (else AWS_REGION / AWS_DEFAULT_REGION, then deploy.toml)",
    "endpoint_name": "endpoint name; models and endpoint configs are named <endpoint>-<timestamp>",
    "role_arn": "SageMaker execution role ARN (see infra/prerequisites.yaml)",
    "image_uri": "image SageMaker runs, e.g. the URI `push` printed",
    "bucket": "S3 bucket for model artifacts",
    "prefix": "S3 key prefix for model artifacts (default rtb-inference)",
    "repository": "ECR repository to push to (default rtb-inference)",
    "instance_type": "instance type (default ml.c5.large)",
    "instance_count": "initial instance count (default 1)",
    "variant_name": "production variant name (default AllTraffic)",
    "workers": "SAGEMAKER_MODEL_SERVER_WORKERS for the container (default: one per vCPU)",
    "poll_interval": "seconds between status polls while waiting (default 15)",
    "wait_timeout": "seconds to wait for InService before giving up waiting (default 3600)",
}


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _key_values(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    parser.add_argument(
        flag, type=_key_value, action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def _switch(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    parser.add_argument(flag, action="store_true", help=help_text)


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (flags > environment > deploy.toml)")
    group.add_argument(
        "--config", type=Path, help="settings file (default $RTB_DEPLOY_CONFIG or ./deploy.toml)"
    )
    for name, help_text in _SETTING_HELP.items():
        kind: Any = {
            "instance_count": int,
            "workers": int,
            "poll_interval": float,
            "wait_timeout": float,
        }.get(name, str)
        env = ", ".join(ENVIRONMENT[name])
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=kind,
            default=None,
            help=f"{help_text} [{env}]",
        )
    _switch(
        common, "--dry-run", "print every AWS call that would change something instead of making it"
    )
    _switch(common, "--trace", "print every AWS call made to stderr")
    return common


def _release_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="local model.tar.gz to upload (python -m model build/train writes one); with "
        "--multi-model repeatable, and a directory stands for its *.tar.gz",
    )
    parser.add_argument(
        "--model-data-url",
        help="an artifact already in S3 (s3://bucket/key/model.tar.gz); with --multi-model the "
        "S3 prefix of the models (s3://bucket/prefix/)",
    )
    _switch(
        parser,
        "--multi-model",
        "a multi-model endpoint: Mode MultiModel, ModelDataUrl the S3 prefix the models are under",
    )
    parser.add_argument(
        "--model-cache",
        choices=validation.MODEL_CACHE_SETTINGS,
        help="with --multi-model: MultiModelConfig ModelCacheSetting (default Enabled)",
    )
    _switch(parser, "--create-bucket", "create the S3 bucket if it does not exist")
    _key_values(parser, "--env", "container environment variable (repeatable)")
    parser.add_argument(
        "--capture-s3-uri", help="enable data capture (requests and responses) to this S3 prefix"
    )
    parser.add_argument(
        "--capture-percent",
        type=int,
        default=100,
        help="data capture sampling percentage (default 100)",
    )
    _switch(
        parser, "--no-wait", "return once the request is accepted, without waiting for InService"
    )


def _push_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    push = commands.add_parser(
        "push", parents=[common], help="build the image and push it to ECR (or --registry)"
    )
    push.add_argument("--image", help="push this local image instead of building one")
    push.add_argument("--dockerfile", type=Path, default=Path("Dockerfile"))
    push.add_argument("--context", type=Path, default=Path("."))
    push.add_argument(
        "--platform",
        default="linux/amd64",
        choices=image.PLATFORMS,
        help="linux/arm64 for Graviton instances",
    )
    _key_values(push, "--build-arg", "BASE_IMAGE defaults to $RTB_BASE_IMAGE")
    push.add_argument(
        "--tag", help="image tag (default: git describe --always --dirty, else a timestamp)"
    )
    push.add_argument("--registry", help="push to this registry host[:port] instead of ECR")
    push.add_argument("--username", help="registry user for --registry [RTB_REGISTRY_USERNAME]")
    _switch(
        push,
        "--password-stdin",
        "read the --registry password from stdin [else RTB_REGISTRY_PASSWORD]",
    )
    push.add_argument(
        "--engine",
        choices=image.ENGINES,
        help="container engine (default: detected) [RTB_CONTAINER_ENGINE]",
    )
    _switch(push, "--immutable-tags", "create the ECR repository with immutable tags")


def _update_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    update = commands.add_parser(
        "update",
        parents=[common],
        help="blue/green redeploy with a new model, image or instance config",
    )
    _release_options(update)
    update.add_argument(
        "--traffic",
        choices=endpoint.TRAFFIC_ROUTINGS,
        default="all-at-once",
        help="how traffic shifts to the new fleet",
    )
    for flag, default, text in (
        ("--step-percent", 10, "canary size or linear step, percent of capacity"),
        ("--wait-interval", 300, "seconds between traffic shifts / baking"),
        ("--termination-wait", 0, "seconds to keep the old fleet after the switch"),
    ):
        update.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
    update.add_argument(
        "--max-execution-timeout", type=int, help="overall blue/green time limit, 600-28800 s"
    )
    update.add_argument(
        "--rollback-alarm",
        action="append",
        default=[],
        metavar="ALARM",
        help="CloudWatch alarm that rolls the update back (repeatable)",
    )
    _switch(
        update,
        "--suspend-autoscaling",
        "to change an autoscaled variant's instance type: remove policies, update, restore",
    )


def _autoscale_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    autoscale = commands.add_parser(
        "autoscale", parents=[common], help="register the variant and put a target-tracking policy"
    )
    autoscale.add_argument(
        "--from-recommendation", type=Path, help="JSON file from `python -m benchmark recommend`"
    )
    autoscale.add_argument(
        "--metric",
        choices=METRICS,
        metavar="METRIC",
        help=f"{' or '.join(METRICS)} (default {INVOCATIONS})",
    )
    autoscale.add_argument("--target-value", type=float, help="target for the metric, as is")
    autoscale.add_argument(
        "--max-rps",
        type=float,
        help="measured max requests/s of one instance: target = max_rps x safety x 60",
    )
    autoscale.add_argument("--safety-factor", type=float, help="with --max-rps (default 0.5)")
    for flag, text in (
        ("--min-capacity", "fewest instances (default 1)"),
        ("--max-capacity", "most instances (default 2, or the minimum)"),
        ("--scale-in-cooldown", "seconds (default 300)"),
        ("--scale-out-cooldown", "seconds (default 60)"),
    ):
        autoscale.add_argument(flag, type=int, help=text)
    _switch(autoscale, "--disable-scale-in", "never scale in (scale-in is on by default)")


def _endpoint_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """invoke, status, delete and config: the commands on an endpoint that exists."""
    invoke = commands.add_parser(
        "invoke", parents=[common], help="send rows and print the predictions"
    )
    invoke.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="V1,V2,...",
        help="one feature row (repeatable); empty = missing",
    )
    invoke.add_argument("--file", type=Path, help="CSV file of rows (no header)")
    invoke.add_argument("--content-type", choices=invocation.CONTENT_TYPES, default=invocation.CSV)
    invoke.add_argument("--accept", help="response type (default: the content type)")
    invoke.add_argument("--target-variant", help="send to this variant")
    invoke.add_argument(
        "--target-model",
        metavar="NAME.tar.gz",
        help="a multi-model endpoint's model: its path under the S3 prefix (see `models list`)",
    )
    _switch(invoke, "--raw", "print the response body as it came")

    models = commands.add_parser(
        "models", help="list, add or remove the models of a multi-model endpoint (S3 only)"
    )
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="the models under the endpoint's prefix")
    add = actions.add_parser(
        "add", parents=[common], help="upload model artifacts under the endpoint's prefix"
    )
    add.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="NAME.tar.gz or a directory of them"
    )
    _switch(
        add,
        "--replace",
        "overwrite a model of the same name (instances that have it loaded keep the old copy)",
    )
    remove = actions.add_parser(
        "remove", parents=[common], help="delete models from the endpoint's prefix"
    )
    remove.add_argument("names", nargs="+", metavar="NAME.tar.gz")

    status = commands.add_parser(
        "status", parents=[common], help="endpoint state, variants and recent CloudWatch metrics"
    )
    status.add_argument("--minutes", type=int, default=60, help="metrics window (default 60)")
    _switch(status, "--json", "print JSON instead of a table")

    delete = commands.add_parser(
        "delete", parents=[common], help="delete autoscaling, endpoint, configs and models"
    )
    _switch(delete, "--purge", "also delete the S3 artifacts and the ECR images the models used")
    commands.add_parser(
        "config", parents=[common], help="print the resolved settings and where each came from"
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _push_parser(commands, common)
    create = commands.add_parser(
        "create",
        parents=[common],
        help="upload the artifact and create model, endpoint config, endpoint",
    )
    _release_options(create)
    _update_parser(commands, common)
    _autoscale_parser(commands, common)
    _endpoint_parsers(commands, common)
    return parser


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _default_tag(context: Path) -> str:
    """The commit of the build context (``-dirty`` with local changes), else a timestamp."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=context if context.is_dir() else None,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is not None and result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    return validation.timestamp()


# --- one typed command per subcommand, built from argv here and nowhere else ------------------


@dataclass(frozen=True, kw_only=True)
class Push:
    tag: str
    source: image.Source
    engine: str | None
    registry: str | None
    repository: str
    region: str | None
    username: str | None
    password: str | None
    immutable_tags: bool


@dataclass(frozen=True, kw_only=True)
class Create:
    settings: DeploymentSettings
    release: endpoint.Release
    wait: bool


@dataclass(frozen=True, kw_only=True)
class Update:
    settings: DeploymentSettings
    release: endpoint.Release
    blue_green: endpoint.BlueGreen
    wait: bool
    explicit: frozenset[str]
    suspend_autoscaling: bool


@dataclass(frozen=True, kw_only=True)
class Autoscale:
    settings: EndpointSettings
    from_recommendation: Path | None
    flags: scaling.PolicyFlags


@dataclass(frozen=True, kw_only=True)
class Invoke:
    settings: EndpointSettings
    rows: tuple[str, ...]
    file: Path | None
    content_type: invocation.RowFormat
    accept: str | None
    target_variant: str | None
    target_model: str | None
    raw: bool


ModelsAction = Literal["list", "add", "remove"]


@dataclass(frozen=True, kw_only=True)
class Models:
    """``models list|add|remove``: the artifacts under a multi-model endpoint's S3 prefix."""

    settings: EndpointSettings
    action: ModelsAction
    paths: tuple[Path, ...] = ()
    names: tuple[str, ...] = ()
    replace: bool = False


@dataclass(frozen=True, kw_only=True)
class Status:
    settings: EndpointSettings
    minutes: int
    json: bool


@dataclass(frozen=True, kw_only=True)
class Delete:
    settings: EndpointSettings
    purge: bool


@dataclass(frozen=True, kw_only=True)
class Config:
    resolved: Resolved


Command = Push | Create | Update | Autoscale | Invoke | Models | Status | Delete | Config
_C = TypeVar("_C", scaling.PolicyFlags, Invoke, Status, Delete)


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """One parsed command line: the command, and how its AWS calls are made."""

    command: Command
    dry_run: bool
    trace: bool
    region: str | None


def _release(args: argparse.Namespace) -> endpoint.Release:
    capture = None
    if args.capture_s3_uri:
        capture = endpoint.DataCapture(
            destination_s3_uri=args.capture_s3_uri, sampling_percent=args.capture_percent
        )
    models: list[Path] = args.model
    options = {
        "model_data_url": args.model_data_url,
        "environment": dict(args.env),
        "data_capture": capture,
        "create_bucket": args.create_bucket,
    }
    if args.multi_model:
        return endpoint.Release(
            multi_model=multi_model.MultiModel(
                artifacts=tuple(models), model_cache=args.model_cache or "Enabled"
            ),
            **options,
        )
    if args.model_cache is not None:
        raise DeployError("--model-cache is a multi-model setting: add --multi-model")
    if len(models) > 1:
        raise DeployError(
            "--model is given once for a single-model endpoint (several with --multi-model)"
        )
    if models and args.model_data_url is not None:
        raise DeployError("give either --model or --model-data-url, not both")
    return endpoint.Release(artifact=models[0] if models else None, **options)


def _push(args: argparse.Namespace, resolved: Resolved) -> Push:
    password = None
    if args.registry is not None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if args.password_stdin
            else os.environ.get("RTB_REGISTRY_PASSWORD")
        )
    return Push(
        tag=validation.check_image_tag(args.tag or _default_tag(args.context)),
        source=image.Source(
            image=args.image,
            context=args.context,
            dockerfile=args.dockerfile,
            platform=args.platform,
            build_args=image.default_build_args(dict(args.build_arg), os.environ),
        ),
        engine=args.engine,
        registry=args.registry,
        repository=resolved.settings.repository,
        region=resolved.settings.region,
        username=args.username or os.environ.get("RTB_REGISTRY_USERNAME"),
        password=password,
        immutable_tags=args.immutable_tags,
    )


def _update(args: argparse.Namespace, resolved: Resolved) -> Update:
    return Update(
        settings=deployment_settings(resolved.settings, required=()),
        release=_release(args),
        blue_green=endpoint.BlueGreen(
            routing=args.traffic,
            step_percent=args.step_percent,
            wait_interval=args.wait_interval,
            termination_wait=args.termination_wait,
            max_execution_timeout=args.max_execution_timeout,
            rollback_alarms=tuple(args.rollback_alarm),
        ),
        wait=not args.no_wait,
        explicit=frozenset(
            name for name, origin in resolved.origins.items() if origin != "default"
        ),
        suspend_autoscaling=args.suspend_autoscaling,
    )


def _from_args(kind: type[_C], args: argparse.Namespace, **given: Any) -> _C:
    """A command: the ``given`` fields, and each other field from the option of the same name."""
    names = {field.name for field in dataclasses.fields(kind)} - set(given)
    return kind(**given, **{name: getattr(args, name) for name in names})


def _command(args: argparse.Namespace, resolved: Resolved) -> Command:
    name: str = args.command
    if name == "push":
        return _push(args, resolved)
    if name == "create":
        return Create(
            settings=deployment_settings(resolved.settings, required=("role_arn", "image_uri")),
            release=_release(args),
            wait=not args.no_wait,
        )
    if name == "update":
        return _update(args, resolved)
    if name == "config":
        return Config(resolved=resolved)
    settings = endpoint_settings(resolved.settings)
    if name == "autoscale":
        return Autoscale(
            settings=settings,
            from_recommendation=args.from_recommendation,
            flags=_from_args(scaling.PolicyFlags, args),
        )
    if name == "invoke":
        return _from_args(Invoke, args, settings=settings, rows=tuple(args.row))
    if name == "models":
        return Models(
            settings=settings,
            action=args.models_action,
            paths=tuple(getattr(args, "paths", ())),
            names=tuple(getattr(args, "names", ())),
            replace=getattr(args, "replace", False),
        )
    if name == "status":
        return _from_args(Status, args, settings=settings)
    return _from_args(Delete, args, settings=settings)


def parse(argv: Sequence[str] | None = None) -> Parsed:
    """argv -> one typed command; settings resolved (flags > environment > deploy.toml)."""
    args = build_parser().parse_args(argv)
    flags: Mapping[str, object | None] = {name: getattr(args, name) for name in _SETTING_HELP}
    resolved = load_settings(flags=flags, config_file=args.config)
    if resolved.settings.region is not None:
        validation.check_region(resolved.settings.region)
    return Parsed(
        command=_command(args, resolved),
        dry_run=args.dry_run,
        trace=args.trace,
        region=resolved.settings.region,
    )


# --- running them ----------------------------------------------------------------------------


def _run_push(command: Push, gateway: Gateway) -> None:
    runner = image.Runner(image.detect_engine(command.engine), dry_run=gateway.dry_run)
    source = command.source
    if source.image is None and not source.dockerfile.is_file():
        raise DeployError(f"Dockerfile {source.dockerfile} does not exist (or pass --image)")
    if command.registry is not None:
        host = registry.check_registry_host(command.registry)
        validation.check_repository(command.repository)
        if bool(command.username) != bool(command.password):
            raise DeployError(
                "give both a registry user and a password, or neither (anonymous push)"
            )
        credentials = (
            registry.Credentials(command.username, command.password)
            if command.username and command.password
            else None
        )
        target = registry.Target(
            reference=registry.Reference(host=host, repository=command.repository, tag=command.tag),
            credentials=credentials,
        )
    else:
        if command.region is None:
            raise DeployError(f"missing setting(s): {missing_hints(['region'])}")
        target = registry.ecr_target(
            gateway,
            repository=command.repository,
            tag=command.tag,
            immutable=command.immutable_tags,
        )
    _print_json(image.push(runner, gateway, source=source, target=target))


def _run_autoscale(command: Autoscale, gateway: Gateway) -> None:
    recommendation = None
    if command.from_recommendation is not None:
        recommendation = AutoscaleSuggestion.read(command.from_recommendation)
    policy = scaling.build_policy(command.flags, recommendation=recommendation)
    _print_json(
        scaling.apply(
            gateway,
            endpoint_name=command.settings.endpoint_name,
            variant_name=command.settings.variant_name,
            policy=policy,
        )
    )


def _run_invoke(command: Invoke, gateway: Gateway) -> None:
    answer = invocation.invoke(
        gateway,
        endpoint_name=command.settings.endpoint_name,
        rows=invocation.read_rows(rows=command.rows, file=command.file),
        content_type=command.content_type,
        accept=command.accept,
        variant=command.target_variant,
        target_model=command.target_model,
    )
    if answer.variant:
        print(f"answered by variant {answer.variant}", file=sys.stderr)
    if command.raw:
        sys.stdout.write(answer.body.decode("utf-8", errors="replace"))
        return
    for prediction in answer.predictions():
        print(prediction if isinstance(prediction, str) else json.dumps(prediction))


def _run_models(command: Models, gateway: Gateway) -> None:
    settings = command.settings
    validation.check_name(settings.endpoint_name, what="endpoint name")
    prefix = endpoint.multi_model_prefix(gateway, settings.endpoint_name, settings.variant_name)
    if command.action == "add":
        artifacts = multi_model.named_artifacts(command.paths)
        added = multi_model.upload(gateway, prefix, artifacts, replace=command.replace)
        _print_json({"model_data_url": prefix, "added": added, "dry_run": gateway.dry_run})
    elif command.action == "remove":
        removed = multi_model.remove(gateway, prefix, command.names)
        _print_json({"model_data_url": prefix, "removed": removed, "dry_run": gateway.dry_run})
    else:
        hosted = multi_model.list_models(gateway, prefix)
        _print_json(
            {
                "model_data_url": prefix,
                "models": [dataclasses.asdict(model) for model in hosted],
            }
        )


def run(parsed: Parsed) -> int:
    command = parsed.command
    if isinstance(command, Config):
        settings = command.resolved.settings
        _print_json(
            {
                name: {"value": getattr(settings, name), "from": command.resolved.origins[name]}
                for name in _SETTING_HELP
            }
        )
        return 0
    gateway = Gateway(
        region=parsed.region,
        mode="plan" if parsed.dry_run else "live",
        trace=parsed.trace,
    )
    if isinstance(command, Push):
        _run_push(command, gateway)
    elif isinstance(command, Create):
        _print_json(
            endpoint.create(gateway, command.settings, command.release, wait=command.wait).to_json()
        )
    elif isinstance(command, Update):
        outcome = endpoint.update(
            gateway,
            command.settings,
            command.release,
            command.blue_green,
            wait=command.wait,
            explicit=command.explicit,
            suspend_autoscaling=command.suspend_autoscaling,
        )
        _print_json(outcome.to_json())
    elif isinstance(command, Autoscale):
        _run_autoscale(command, gateway)
    elif isinstance(command, Invoke):
        _run_invoke(command, gateway)
    elif isinstance(command, Models):
        _run_models(command, gateway)
    elif isinstance(command, Status):
        report = monitoring.status(
            gateway, endpoint_name=command.settings.endpoint_name, minutes=command.minutes
        )
        if command.json:
            _print_json(report)
        else:
            print(monitoring.render(report))
    else:
        _print_json(teardown.delete(gateway, command.settings, purge=command.purge))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse(argv))
    except (DeployError, ClientError, BotoCoreError) as exc:
        print(f"error: {explain(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; anything AWS had already accepted goes on there "
            "(see `python -m deploy status`)",
            file=sys.stderr,
        )
        return 130
