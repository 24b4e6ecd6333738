"""``python -m deploy SUBCOMMAND``: push, create, update, autoscale, invoke, status, delete, config.

Results (URIs, JSON summaries, predictions, status tables) go to stdout; progress, the dry-run
trace of reads and errors go to stderr. Exit status: 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from deploy import endpoint, image, invocation, monitoring, registry, scaling, teardown, validation
from deploy.errors import DeployError, explain
from deploy.gateway import Gateway
from deploy.settings import ENVIRONMENT, Settings, load_settings, require

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
    common.add_argument(
        "--dry-run",
        action="store_true",
        help="print every AWS call that would change something instead of making it",
    )
    common.add_argument("--trace", action="store_true", help="print every AWS call made to stderr")
    return common


def _release_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        help="local model.tar.gz to upload (python -m model build/train writes one)",
    )
    parser.add_argument(
        "--model-data-url", help="an artifact already in S3 (s3://bucket/key/model.tar.gz)"
    )
    parser.add_argument(
        "--create-bucket", action="store_true", help="create the S3 bucket if it does not exist"
    )
    parser.add_argument(
        "--env",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="container environment variable (repeatable)",
    )
    parser.add_argument(
        "--capture-s3-uri", help="enable data capture (requests and responses) to this S3 prefix"
    )
    parser.add_argument(
        "--capture-percent",
        type=int,
        default=100,
        help="data capture sampling percentage (default 100)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the request is accepted, without waiting for InService",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    push.add_argument(
        "--build-arg",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="BASE_IMAGE defaults to $RTB_BASE_IMAGE",
    )
    push.add_argument(
        "--tag", help="image tag (default: git describe --always --dirty, else a timestamp)"
    )
    push.add_argument("--registry", help="push to this registry host[:port] instead of ECR")
    push.add_argument("--username", help="registry user for --registry [RTB_REGISTRY_USERNAME]")
    push.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the --registry password from stdin [else RTB_REGISTRY_PASSWORD]",
    )
    push.add_argument(
        "--engine",
        choices=image.ENGINES,
        help="container engine (default: detected) [RTB_CONTAINER_ENGINE]",
    )
    push.add_argument(
        "--immutable-tags",
        action="store_true",
        help="create the ECR repository with immutable tags",
    )

    create = commands.add_parser(
        "create",
        parents=[common],
        help="upload the artifact and create model, endpoint config, endpoint",
    )
    _release_options(create)

    update = commands.add_parser(
        "update",
        parents=[common],
        help="blue/green redeploy with a new model, image or instance config",
    )
    _release_options(update)
    update.add_argument(
        "--traffic",
        choices=("all-at-once", "canary", "linear"),
        default="all-at-once",
        help="how traffic shifts to the new fleet",
    )
    update.add_argument(
        "--step-percent",
        type=int,
        default=10,
        help="canary size or linear step, percent of capacity (default 10)",
    )
    update.add_argument(
        "--wait-interval",
        type=int,
        default=300,
        help="seconds between traffic shifts / baking (default 300)",
    )
    update.add_argument(
        "--termination-wait",
        type=int,
        default=0,
        help="seconds to keep the old fleet after the switch (default 0)",
    )
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
    update.add_argument(
        "--suspend-autoscaling",
        action="store_true",
        help="to change an autoscaled variant's instance type: remove policies, update, restore",
    )

    autoscale = commands.add_parser(
        "autoscale", parents=[common], help="register the variant and put a target-tracking policy"
    )
    autoscale.add_argument(
        "--from-recommendation", type=Path, help="JSON file from `python -m benchmark recommend`"
    )
    autoscale.add_argument(
        "--metric",
        choices=scaling.METRICS,
        metavar="METRIC",
        help=f"{' or '.join(scaling.METRICS)} (default {scaling.INVOCATIONS})",
    )
    autoscale.add_argument("--target-value", type=float, help="target for the metric, as is")
    autoscale.add_argument(
        "--max-rps",
        type=float,
        help="measured max requests/s of one instance: target = max_rps x safety x 60",
    )
    autoscale.add_argument("--safety-factor", type=float, help="with --max-rps (default 0.5)")
    autoscale.add_argument("--min-capacity", type=int, help="fewest instances (default 1)")
    autoscale.add_argument(
        "--max-capacity", type=int, help="most instances (default 2, or the minimum)"
    )
    autoscale.add_argument("--scale-in-cooldown", type=int, help="seconds (default 300)")
    autoscale.add_argument("--scale-out-cooldown", type=int, help="seconds (default 60)")
    autoscale.add_argument("--disable-scale-in", action="store_true")

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
    invoke.add_argument("--raw", action="store_true", help="print the response body as it came")

    status = commands.add_parser(
        "status", parents=[common], help="endpoint state, variants and recent CloudWatch metrics"
    )
    status.add_argument("--minutes", type=int, default=60, help="metrics window (default 60)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    delete = commands.add_parser(
        "delete", parents=[common], help="delete autoscaling, endpoint, configs and models"
    )
    delete.add_argument(
        "--purge",
        action="store_true",
        help="also delete the S3 artifacts and the ECR images the models used",
    )

    commands.add_parser(
        "config", parents=[common], help="print the resolved settings and where each came from"
    )
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


def _run_push(args: argparse.Namespace, settings: Settings, gateway: Gateway) -> int:
    tag = validation.check_image_tag(args.tag or _default_tag(args.context))
    runner = image.Runner(image.detect_engine(args.engine), dry_run=args.dry_run)
    source = image.Source(
        image=args.image,
        context=args.context,
        dockerfile=args.dockerfile,
        platform=args.platform,
        build_args=image.default_build_args(dict(args.build_arg), os.environ),
    )
    if source.image is None and not source.dockerfile.is_file():
        raise DeployError(f"Dockerfile {source.dockerfile} does not exist (or pass --image)")
    if args.registry is not None:
        host = registry.check_registry_host(args.registry)
        validation.check_repository(settings.repository)
        username = args.username or os.environ.get("RTB_REGISTRY_USERNAME")
        password = (
            sys.stdin.readline().rstrip("\n")
            if args.password_stdin
            else os.environ.get("RTB_REGISTRY_PASSWORD")
        )
        if bool(username) != bool(password):
            raise DeployError(
                "give both a registry user and a password, or neither (anonymous push)"
            )
        credentials = registry.Credentials(username, password) if username and password else None
        target = registry.Target(
            reference=registry.Reference(host=host, repository=settings.repository, tag=tag),
            credentials=credentials,
        )
    else:
        require(settings, "region")
        target = registry.ecr_target(
            gateway, repository=settings.repository, tag=tag, immutable=args.immutable_tags
        )
    _print_json(image.push(runner, gateway, source=source, target=target))
    return 0


def _release(args: argparse.Namespace) -> endpoint.Release:
    capture = None
    if args.capture_s3_uri:
        capture = endpoint.DataCapture(
            destination_s3_uri=args.capture_s3_uri, sampling_percent=args.capture_percent
        )
    if args.model is not None and args.model_data_url is not None:
        raise DeployError("give either --model or --model-data-url, not both")
    return endpoint.Release(
        artifact=args.model,
        model_data_url=args.model_data_url,
        environment=dict(args.env),
        data_capture=capture,
        create_bucket=args.create_bucket,
    )


def _run(args: argparse.Namespace) -> int:
    flags = {name: getattr(args, name) for name in _SETTING_HELP}
    resolved = load_settings(flags=flags, config_file=args.config)
    settings = resolved.settings
    if settings.region is not None:
        validation.check_region(settings.region)
    if args.command == "config":
        _print_json(
            {
                name: {"value": getattr(settings, name), "from": resolved.origins[name]}
                for name in _SETTING_HELP
            }
        )
        return 0
    gateway = Gateway(region=settings.region, dry_run=args.dry_run, trace=args.trace)
    if args.command == "push":
        return _run_push(args, settings, gateway)
    if args.command == "create":
        outcome = endpoint.create(gateway, settings, _release(args), wait=not args.no_wait)
        _print_json(outcome.to_json())
        return 0
    if args.command == "update":
        deployment = endpoint.BlueGreen(
            routing=args.traffic,
            step_percent=args.step_percent,
            wait_interval=args.wait_interval,
            termination_wait=args.termination_wait,
            max_execution_timeout=args.max_execution_timeout,
            rollback_alarms=tuple(args.rollback_alarm),
        )
        explicit = frozenset(
            name for name, origin in resolved.origins.items() if origin != "default"
        )
        outcome = endpoint.update(
            gateway,
            settings,
            _release(args),
            deployment,
            wait=not args.no_wait,
            explicit=explicit,
            suspend_autoscaling=args.suspend_autoscaling,
        )
        _print_json(outcome.to_json())
        return 0
    require(settings, "region", "endpoint_name")
    assert settings.endpoint_name
    if args.command == "autoscale":
        policy = scaling.build_policy(
            recommendation=scaling.read_recommendation(args.from_recommendation)
            if args.from_recommendation
            else None,
            metric=args.metric,
            target_value=args.target_value,
            max_rps=args.max_rps,
            safety_factor=args.safety_factor,
            min_capacity=args.min_capacity,
            max_capacity=args.max_capacity,
            scale_in_cooldown=args.scale_in_cooldown,
            scale_out_cooldown=args.scale_out_cooldown,
            disable_scale_in=args.disable_scale_in,
        )
        _print_json(
            scaling.apply(
                gateway,
                endpoint_name=settings.endpoint_name,
                variant_name=settings.variant_name,
                policy=policy,
            )
        )
        return 0
    if args.command == "invoke":
        rows = invocation.read_rows(rows=args.row, file=args.file)
        answer = invocation.invoke(
            gateway,
            endpoint_name=settings.endpoint_name,
            rows=rows,
            content_type=args.content_type,
            accept=args.accept,
            variant=args.target_variant,
        )
        if answer.variant:
            print(f"answered by variant {answer.variant}", file=sys.stderr)
        if args.raw:
            sys.stdout.write(answer.body.decode("utf-8", errors="replace"))
        else:
            for prediction in answer.predictions():
                print(prediction if isinstance(prediction, str) else json.dumps(prediction))
        return 0
    if args.command == "status":
        report = monitoring.status(
            gateway, endpoint_name=settings.endpoint_name, minutes=args.minutes
        )
        if args.json:
            _print_json(report)
        else:
            print(monitoring.render(report))
        return 0
    if args.command == "delete":
        _print_json(teardown.delete(gateway, settings, purge=args.purge))
        return 0
    raise AssertionError(
        f"unhandled command {args.command}"
    )  # pragma: no cover - argparse restricts choices


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
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
