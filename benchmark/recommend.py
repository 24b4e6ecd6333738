"""`python -m benchmark recommend`: SageMaker Inference Recommender, from sample payload to report.

Modes:
- default: build the sample payload archive, upload it, register a model package version (creating
  the group if missing), start a Default or Advanced job, wait with progress, write the report;
- `--register-only`: stop after registering and print the model package ARN;
- `--from-job NAME`: fetch an existing job and write its report;
- `--stop-job NAME`: stop a running job;
- `--instant MODEL` alone: read the instant recommendation SageMaker attached to a model
  (with a job mode, it adds that section to the job's report);
- `--dry-run` with any of them: check every call against botocore's model and print it; no AWS.

Progress goes to stderr; the report (Markdown), ARNs and dry-run calls go to stdout.
Exit codes: 0 done, 1 the job or an AWS call failed, 2 bad options (nothing was created).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)

from benchmark.payloads import CONTENT_TYPES
from benchmark.recommender import validation
from benchmark.recommender.archive import SamplePayload, build_archive, upload_request
from benchmark.recommender.calls import Caller
from benchmark.recommender.errors import (
    InvalidInputError,
    JobFailedError,
    RecommenderError,
)
from benchmark.recommender.estimate import LocalEstimate, load_estimate
from benchmark.recommender.instant import InstantResult, fetch_instant
from benchmark.recommender.instant import from_response as instant_from_response
from benchmark.recommender.job import (
    TERMINAL_STATUSES,
    LoadTest,
    Step,
    describe_job,
    job_request,
    list_steps,
    wait_for_job,
)
from benchmark.recommender.metadata import benchmarked_models, check_known, metadata_request
from benchmark.recommender.registry import PackageSpec, group_exists, group_request, package_request
from benchmark.recommender.report import Report, render_instant, render_markdown, write_report
from benchmark.recommender.results import OBJECTIVES, from_job, ordered
from benchmark.recommender.scaling import AutoscaleSuggestion, fetch_suggestion, scaling_request

DEFAULT_GROUP: Final = "rtb-xgboost"
DEFAULT_FRAMEWORK_VERSION: Final = "1.7"
DEFAULT_TIMEOUT_S: Final = 4 * 3600
DRY_RUN_REGION: Final = "us-east-1"
PACKAGE_PLACEHOLDER: Final = "<ModelPackageArn returned by create_model_package>"
PAYLOAD_NAME: Final = "payload.tar.gz"


@dataclass(frozen=True, slots=True)
class Clients:
    """The two boto3 clients the command uses; tests pass clients wired to a Stubber or moto."""

    sagemaker: Any
    s3: Any


def _triple(text: str, *, what: str) -> tuple[int, int, int]:
    parts = text.split(":")
    if len(parts) != 3 or not all(part.strip().lstrip("-").isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected {what}, three integers separated by ':', got {text!r}"
        )
    first, second, third = (int(part) for part in parts)
    return first, second, third


def _phase(text: str) -> tuple[int, int, int]:
    return _triple(text, what="USERS:SPAWN_RATE:SECONDS")


def _stairs(text: str) -> tuple[int, int, int]:
    return _triple(text, what="SECONDS:STEPS:USERS_PER_STEP")


def _env_range(text: str) -> tuple[str, tuple[str, ...]]:
    name, sep, values = text.partition("=")
    if not sep or not name or not values:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,V3, got {text!r}")
    return name.strip(), tuple(value.strip() for value in values.split(","))


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _invocation_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    if not sep or not low.isdigit() or not high.isdigit():
        raise argparse.ArgumentTypeError(f"expected MIN:MAX invocations per minute, got {text!r}")
    return int(low), int(high)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark recommend",
        usage="%(prog)s [options]",
        description=__doc__.split("\n", 1)[1].strip() if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Documentation: docs/recommend.md",
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument("--from-job", metavar="NAME", help="only fetch and report this existing job")
    mode.add_argument(
        "--stop-job", metavar="NAME", help="stop a running job (its test endpoints are removed)"
    )
    mode.add_argument(
        "--register-only", action="store_true", help="register the model package and stop"
    )
    mode.add_argument(
        "--instant",
        metavar="MODEL",
        help="SageMaker model whose instant DeploymentRecommendation to read (alone: only that)",
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="check and print the calls; call nothing"
    )

    package = parser.add_argument_group("model package")
    package.add_argument(
        "--model-package-arn",
        metavar="ARN",
        help="use this registered version instead of registering one",
    )
    package.add_argument("--image", metavar="URI", help="serving image URI in ECR")
    package.add_argument("--model-data", metavar="S3_URI", help="model.tar.gz in S3")
    package.add_argument(
        "--payload-uri", metavar="S3_URI", help="where to upload the sample payload archive"
    )
    package.add_argument(
        "--model-package-group",
        metavar="NAME",
        default=DEFAULT_GROUP,
        help="created if missing (%(default)s)",
    )
    package.add_argument(
        "--content-type", default="text/csv", choices=CONTENT_TYPES, help="served request type"
    )
    package.add_argument(
        "--accept", metavar="MIME", default="text/csv", help="response MIME type (%(default)s)"
    )
    package.add_argument(
        "--framework-version",
        metavar="VERSION",
        default=DEFAULT_FRAMEWORK_VERSION,
        help="%(default)s",
    )
    package.add_argument(
        "--nearest-model-name", metavar="NAME", default="xgboost", help="%(default)s"
    )
    package.add_argument(
        "--domain", metavar="DOMAIN", default="MACHINE_LEARNING", help="%(default)s"
    )
    package.add_argument("--task", metavar="TASK", default="CLASSIFICATION", help="%(default)s")
    package.add_argument("--framework", metavar="NAME", default="XGBOOST", help="%(default)s")
    package.add_argument(
        "--supported-instance-types",
        type=_csv_list,
        default=[],
        metavar="T1,T2",
        help="optional list",
    )
    package.add_argument(
        "--payload-files",
        type=int,
        metavar="N",
        default=10,
        help="request files in the archive (%(default)s)",
    )
    package.add_argument(
        "--payload-rows", type=int, metavar="N", default=1, help="rows per request (%(default)s)"
    )
    package.add_argument(
        "--check-metadata",
        action="store_true",
        help="before registering, check framework version and nearest model with ListModelMetadata",
    )
    package.add_argument(
        "--payload-reference",
        type=Path,
        metavar="CSV",
        help="draw payload rows from this reference.csv-like file instead of synthetic ones",
    )
    package.add_argument(
        "--seed", type=int, metavar="N", default=0, help="payload row seed (%(default)s)"
    )

    job = parser.add_argument_group("job")
    job.add_argument(
        "--job-type", metavar="TYPE", default="Default", help="Default or Advanced (%(default)s)"
    )
    job.add_argument("--job-name", metavar="NAME", help="default rtb-<type>-<UTC time>")
    job.add_argument("--role", metavar="ARN", help="IAM role ARN Inference Recommender assumes")
    job.add_argument(
        "--description", metavar="TEXT", help="job description (at most 128 characters)"
    )

    load = parser.add_argument_group("Advanced job (load test)")
    load.add_argument(
        "--instance-type",
        action="append",
        type=_csv_list,
        default=[],
        metavar="T1,T2",
        help="instance types to load-test (repeat or comma-separate; 1-10)",
    )
    load.add_argument(
        "--env",
        action="append",
        type=_env_range,
        default=[],
        metavar="NAME=V1,V2,V3",
        help="environment values to try, e.g. SAGEMAKER_MODEL_SERVER_WORKERS=1,2,4",
    )
    traffic = load.add_mutually_exclusive_group()
    traffic.add_argument(
        "--phase",
        action="append",
        type=_phase,
        default=[],
        metavar="USERS:SPAWN_RATE:SECONDS",
        help="a traffic phase (repeat; default 1:2:120 then 3:2:120)",
    )
    traffic.add_argument(
        "--stairs",
        type=_stairs,
        metavar="SECONDS:STEPS:USERS_PER_STEP",
        help="a stairs traffic pattern instead of phases",
    )
    load.add_argument("--job-duration", type=int, metavar="SECONDS", help="at most 18000")
    load.add_argument(
        "--max-invocations", type=int, metavar="N", help="stop at this many invocations per minute"
    )
    load.add_argument(
        "--max-latency-ms", type=int, metavar="MS", help="stop when model latency passes this"
    )
    load.add_argument(
        "--latency-percentile", metavar="P95|P99", default="P95", help="P95 or P99 (%(default)s)"
    )
    load.add_argument(
        "--flat-invocations",
        metavar="Stop|Continue",
        help="Stop or Continue when throughput flattens",
    )
    load.add_argument("--max-tests", type=int, metavar="N", help="ResourceLimit")
    load.add_argument("--max-parallel-tests", type=int, metavar="N", help="ResourceLimit")

    wait = parser.add_argument_group("waiting")
    wait.add_argument("--no-wait", action="store_true", help="start the job and return")
    wait.add_argument(
        "--poll-interval", type=float, metavar="S", default=60.0, help="seconds (%(default)s)"
    )
    wait.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=DEFAULT_TIMEOUT_S,
        help="seconds (%(default)s)",
    )

    out = parser.add_argument_group("report")
    out.add_argument(
        "--objective", default="cost", choices=OBJECTIVES, help="ordering (%(default)s)"
    )
    out.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="default results/recommend/<job name>"
    )
    out.add_argument(
        "--capacity", type=Path, metavar="FILE", help="local capacity.json to put alongside"
    )
    out.add_argument(
        "--target-cpu-per-core",
        type=int,
        metavar="PCT",
        help="for the scaling recommendation (1-100)",
    )
    out.add_argument(
        "--expected-invocations",
        type=_invocation_range,
        metavar="MIN:MAX",
        help="expected invocations per minute, for the scaling recommendation",
    )
    out.add_argument("--instant-attempts", type=int, metavar="N", default=10, help="%(default)s")
    out.add_argument(
        "--instant-interval", type=float, metavar="S", default=30.0, help="seconds (%(default)s)"
    )

    aws = parser.add_argument_group("AWS")
    aws.add_argument("--region", metavar="REGION", help="default: the AWS configuration's region")
    aws.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="SageMaker and S3 endpoint (moto, or set AWS_ENDPOINT_URL)",
    )
    return parser


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _make_clients(args: argparse.Namespace) -> Clients:
    import boto3

    region = args.region
    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        if not args.dry_run:
            raise InvalidInputError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        region = DRY_RUN_REGION
    options: dict[str, Any] = {"region_name": region or session.region_name}
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
    return Clients(
        sagemaker=session.client("sagemaker", **options), s3=session.client("s3", **options)
    )


def _load_test_flags(args: argparse.Namespace) -> list[str]:
    """The Advanced-only options present on the command line."""
    given = {
        "--instance-type": args.instance_type,
        "--env": args.env,
        "--phase": args.phase,
        "--stairs": args.stairs,
        "--job-duration": args.job_duration,
        "--max-invocations": args.max_invocations,
        "--max-latency-ms": args.max_latency_ms,
        "--flat-invocations": args.flat_invocations,
        "--max-tests": args.max_tests,
        "--max-parallel-tests": args.max_parallel_tests,
    }
    return [flag for flag, value in given.items() if value is not None and value != []]


def _load_test(args: argparse.Namespace) -> LoadTest | None:
    flags = _load_test_flags(args)
    if args.job_type != "Advanced":
        if flags:
            raise InvalidInputError(
                f"{', '.join(flags)}: load-test options need --job-type Advanced"
            )
        return None
    instance_types = tuple(item for group in args.instance_type for item in group)
    env: dict[str, tuple[str, ...]] = {}
    for name, values in args.env:
        if name in env:
            raise InvalidInputError(f"--env: {name} is given twice")
        env[name] = values
    options: dict[str, Any] = {
        "instance_types": instance_types,
        "environment_ranges": env,
        "stairs": args.stairs,
        "job_duration_s": args.job_duration,
        "max_invocations": args.max_invocations,
        "latency_threshold_ms": args.max_latency_ms,
        "latency_percentile": args.latency_percentile,
        "flat_invocations": args.flat_invocations,
        "max_tests": args.max_tests,
        "max_parallel_tests": args.max_parallel_tests,
    }
    if args.phase:
        options["phases"] = tuple(args.phase)
    return LoadTest(**options).check()


def _package_spec(args: argparse.Namespace) -> PackageSpec:
    missing = [
        flag
        for flag, value in (
            ("--image", args.image),
            ("--model-data", args.model_data),
            ("--payload-uri", args.payload_uri),
        )
        if not value
    ]
    if missing:
        raise InvalidInputError(
            f"registering a model package needs {', '.join(missing)} (or pass --model-package-arn)"
        )
    return PackageSpec(
        group=args.model_package_group,
        image=args.image,
        model_data_url=args.model_data,
        sample_payload_url=args.payload_uri,
        content_types=(args.content_type,),
        response_types=(args.accept,),
        framework_version=args.framework_version,
        nearest_model_name=args.nearest_model_name,
        domain=args.domain,
        task=args.task,
        framework=args.framework,
        instance_types=tuple(args.supported_instance_types),
    ).check()


def _default_job_name(job_type: str) -> str:
    return f"rtb-{job_type.lower()}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def _output_dir(args: argparse.Namespace, job_name: str) -> Path:
    return args.output_dir if args.output_dir is not None else Path("results/recommend") / job_name


def _register(
    clients: Clients,
    caller: Caller,
    spec: PackageSpec,
    payload: SamplePayload,
    *,
    local_copy: Path | None,
) -> str:
    if local_copy is not None:
        local_copy.parent.mkdir(parents=True, exist_ok=True)
        local_copy.write_bytes(payload.data)
        _progress(f"sample payload kept at {local_copy}")
    _progress(
        f"sample payload: {len(payload.members)} {payload.content_type} requests of "
        f"{payload.rows_per_file} row(s), {len(payload.data)} bytes -> {spec.sample_payload_url}"
    )
    caller(clients.s3, "put_object", upload_request(payload, uri=spec.sample_payload_url))
    if caller.dry_run:
        caller.show(
            clients.sagemaker, "describe_model_package_group", {"ModelPackageGroupName": spec.group}
        )
        caller.show(
            clients.sagemaker,
            "create_model_package_group",
            group_request(spec.group),
            note="only when the describe says the group does not exist",
        )
    elif not group_exists(clients.sagemaker, spec.group):
        clients.sagemaker.create_model_package_group(**group_request(spec.group))
        _progress(f"created model package group {spec.group}")
    response = caller(
        clients.sagemaker,
        "create_model_package",
        package_request(spec),
        placeholder={"ModelPackageArn": PACKAGE_PLACEHOLDER},
    )
    arn: str = response["ModelPackageArn"]
    if not caller.dry_run:
        _progress(f"registered {arn}")
    return arn


def _check_metadata(clients: Clients, caller: Caller, spec: PackageSpec) -> None:
    if caller.dry_run:
        caller.show(
            clients.sagemaker,
            "list_model_metadata",
            metadata_request(spec.framework),
            note="checks --framework-version and --nearest-model-name",
        )
        return
    check_known(
        benchmarked_models(clients.sagemaker, framework=spec.framework),
        framework=spec.framework,
        framework_version=spec.framework_version,
        nearest_model_name=spec.nearest_model_name,
    )
    _progress(
        f"{spec.framework} {spec.framework_version} / {spec.nearest_model_name}: "
        "benchmarked by Inference Recommender"
    )


def _scaling(
    args: argparse.Namespace,
    clients: Clients,
    caller: Caller,
    job: dict[str, Any],
    best_id: str | None,
) -> tuple[AutoscaleSuggestion | None, str | None]:
    if job.get("Status") != "COMPLETED":
        return None, "No scaling recommendation: the job did not complete."
    if best_id is None:
        return None, "No scaling recommendation: no recommendation carries an id."
    low, high = args.expected_invocations or (None, None)
    request = scaling_request(
        job_name=job["JobName"],
        recommendation_id=best_id,
        target_cpu_per_core=args.target_cpu_per_core,
        min_invocations_per_minute=low,
        max_invocations_per_minute=high,
    )
    if caller.dry_run:
        caller.show(clients.sagemaker, "get_scaling_configuration_recommendation", request)
        return None, None
    try:
        return fetch_suggestion(clients.sagemaker, request), None
    except (ClientError, RecommenderError) as exc:
        _progress(f"warning: no scaling recommendation: {exc}")
        return None, f"No scaling recommendation: {exc}"


def _instant(args: argparse.Namespace, clients: Clients, caller: Caller) -> InstantResult | None:
    if not args.instant:
        return None
    if caller.dry_run:
        validation.check_model_name(args.instant)
        caller.show(
            clients.sagemaker,
            "describe_model",
            {"ModelName": args.instant},
            note=f"repeated while IN_PROGRESS, at most {args.instant_attempts} times",
        )
        return instant_from_response(args.instant, {}, attempts=0)
    return fetch_instant(
        clients.sagemaker,
        args.instant,
        attempts=args.instant_attempts,
        interval_s=args.instant_interval,
        progress=_progress,
    )


def _report_job(
    args: argparse.Namespace,
    clients: Clients,
    caller: Caller,
    job_name: str,
    *,
    job: dict[str, Any] | None,
    steps: list[Step] | None,
    estimate: LocalEstimate | None,
) -> int:
    if caller.dry_run:
        caller.show(
            clients.sagemaker, "describe_inference_recommendations_job", {"JobName": job_name}
        )
        caller.show(
            clients.sagemaker,
            "list_inference_recommendations_job_steps",
            {"JobName": job_name, "StepType": "BENCHMARK", "MaxResults": 100},
            note="followed by NextToken",
        )
        _scaling(
            args,
            clients,
            caller,
            {"JobName": job_name, "Status": "COMPLETED"},
            "<best RecommendationId>",
        )
        _instant(args, clients, caller)
        return 0
    if job is None:
        job = describe_job(clients.sagemaker, job_name)
    if steps is None:
        steps = list_steps(clients.sagemaker, job_name)
    rows = ordered(from_job(job), objective=args.objective)
    best_id = rows[0].recommendation_id if rows else None
    scaling, scaling_note = _scaling(args, clients, caller, job, best_id)
    report = Report(
        job=job,
        recommendations=rows,
        steps=steps,
        objective=args.objective,
        scaling=scaling,
        scaling_note=scaling_note,
        estimate=estimate,
        instant=_instant(args, clients, caller),
    )
    files = write_report(report, _output_dir(args, job_name))
    print(render_markdown(report), end="")
    _progress(
        "wrote "
        + ", ".join(
            str(path)
            for path in (files.markdown, files.csv, files.plot, files.scaling, files.job)
            if path is not None
        )
    )
    failed = [step for step in steps if step.status == "FAILED"]
    for step in failed:
        _progress(
            f"benchmark failed on {step.instance_type}: {step.failure_reason or 'no reason given'}"
        )
    status = job["Status"]
    if status in {"FAILED", "STOPPED", "DELETED"}:
        reason = job.get("FailureReason") or "no FailureReason given"
        raise JobFailedError(f"job {job_name} is {status}: {reason}")
    if status not in TERMINAL_STATUSES:
        _progress(f"job {job_name} is still {status}; run --from-job {job_name} again later")
    return 0


@dataclass(frozen=True, slots=True)
class Plan:
    """What one invocation will do, decided and checked before any client exists."""

    mode: str  # "job", "register", "from-job", "stop" or "instant"
    estimate: LocalEstimate | None
    spec: PackageSpec | None = None
    payload: SamplePayload | None = None
    request: dict[str, Any] | None = None


def _plan(args: argparse.Namespace) -> Plan:
    """Check every option and build every request; raise InvalidInputError on the first problem."""
    validation.check_choice(args.job_type, validation.JOB_TYPES, option="--job-type")
    if args.poll_interval < 0 or args.timeout <= 0:
        raise InvalidInputError("--poll-interval must be >= 0 and --timeout > 0")
    if args.instant_attempts < 1 or args.instant_interval < 0:
        raise InvalidInputError("--instant-attempts must be >= 1 and --instant-interval >= 0")
    estimate = load_estimate(args.capacity) if args.capacity is not None else None
    if args.instant:
        validation.check_model_name(args.instant)
    registration = bool(args.image or args.model_data or args.payload_uri)
    if args.stop_job:
        validation.check_job_name(args.stop_job)
        if registration or args.model_package_arn or args.register_only or args.from_job:
            raise InvalidInputError("--stop-job only stops a job; it takes no other mode")
        return Plan(mode="stop", estimate=estimate)
    if args.from_job:
        validation.check_job_name(args.from_job)
        if registration or args.model_package_arn or args.register_only:
            raise InvalidInputError("--from-job only reports; it takes no model package options")
        return Plan(mode="from-job", estimate=estimate)
    if args.instant and not (registration or args.model_package_arn or args.register_only):
        return Plan(mode="instant", estimate=estimate)
    if args.model_package_arn and registration:
        raise InvalidInputError(
            "--model-package-arn names a registered version; "
            "drop --image, --model-data, --payload-uri"
        )
    if args.register_only and (args.model_package_arn or args.job_type != "Default"):
        raise InvalidInputError(
            "--register-only registers a new version and starts no job; "
            "drop --model-package-arn and the job options"
        )
    if args.register_only and _load_test_flags(args):
        raise InvalidInputError("--register-only starts no job; drop the job options")
    spec: PackageSpec | None = None
    payload: SamplePayload | None = None
    if args.model_package_arn:
        validation.check_model_package_arn(args.model_package_arn)
    else:
        spec = _package_spec(args)
        payload = build_archive(
            content_type=args.content_type,
            files=args.payload_files,
            rows_per_file=args.payload_rows,
            seed=args.seed,
            reference=args.payload_reference,
        )
    if args.register_only:
        return Plan(mode="register", estimate=estimate, spec=spec, payload=payload)
    if not args.role:
        raise InvalidInputError("--role: the job needs an IAM role ARN for Inference Recommender")
    request = job_request(
        name=args.job_name or _default_job_name(args.job_type),
        job_type=args.job_type,
        role_arn=args.role,
        model_package_arn=args.model_package_arn or PACKAGE_PLACEHOLDER,
        load_test=_load_test(args),
        description=args.description,
    )
    return Plan(mode="job", estimate=estimate, spec=spec, payload=payload, request=request)


def _run(args: argparse.Namespace, clients: Clients | None) -> int:
    plan = _plan(args)
    clients = clients or _make_clients(args)
    caller = Caller(dry_run=args.dry_run)
    if plan.mode == "stop":
        caller(clients.sagemaker, "stop_inference_recommendations_job", {"JobName": args.stop_job})
        print(f"stopping: {args.stop_job}")
        _progress(f"report what it measured so far with --from-job {args.stop_job}")
        return 0
    if plan.mode == "from-job":
        return _report_job(
            args, clients, caller, args.from_job, job=None, steps=None, estimate=plan.estimate
        )
    if plan.mode == "instant":
        instant = _instant(args, clients, caller)
        if instant is not None and not caller.dry_run:
            print(render_instant(instant), end="")
        return 0
    package_arn: str = args.model_package_arn
    if plan.spec is not None and args.check_metadata:
        _check_metadata(clients, caller, plan.spec)
    if plan.spec is not None and plan.payload is not None:
        if plan.request is not None:
            local_copy: Path | None = _output_dir(args, plan.request["JobName"]) / PAYLOAD_NAME
        else:
            local_copy = args.output_dir / PAYLOAD_NAME if args.output_dir is not None else None
        package_arn = _register(clients, caller, plan.spec, plan.payload, local_copy=local_copy)
        print(f"model package: {package_arn}")
    if plan.request is None:
        return 0
    return _start_job(
        args, clients, caller, plan.request, package_arn=package_arn, estimate=plan.estimate
    )


def _start_job(
    args: argparse.Namespace,
    clients: Clients,
    caller: Caller,
    planned: dict[str, Any],
    *,
    package_arn: str,
    estimate: LocalEstimate | None,
) -> int:
    request = {
        **planned,
        "InputConfig": {**planned["InputConfig"], "ModelPackageVersionArn": package_arn},
    }
    response = caller(
        clients.sagemaker,
        "create_inference_recommendations_job",
        request,
        placeholder={"JobArn": "<JobArn returned by create_inference_recommendations_job>"},
    )
    job_name: str = request["JobName"]
    print(f"job: {job_name} {response['JobArn']}")
    if args.no_wait:
        _progress(f"not waiting; report later with --from-job {job_name}")
        return 0
    if caller.dry_run:
        return _report_job(args, clients, caller, job_name, job=None, steps=None, estimate=estimate)
    try:
        job, steps = wait_for_job(
            clients.sagemaker,
            job_name,
            poll_interval_s=args.poll_interval,
            timeout_s=args.timeout,
            progress=_progress,
        )
    except KeyboardInterrupt:
        _progress(
            f"interrupted: job {job_name} keeps running in SageMaker; "
            f"report it later with --from-job {job_name}, or stop it with --stop-job {job_name}"
        )
        return 130
    except (ClientError, BotoCoreError):
        _progress(f"the wait failed; job {job_name} may still be running: --from-job {job_name}")
        raise
    return _report_job(args, clients, caller, job_name, job=job, steps=steps, estimate=estimate)


def main(argv: Sequence[str] | None = None, *, clients: Clients | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    try:
        return _run(args, clients)
    except InvalidInputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except RecommenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ParamValidationError as exc:
        print(f"error: a request does not match botocore's model: {exc}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print("error: no AWS credentials found; configure them, or use --dry-run", file=sys.stderr)
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"error: {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}",
            file=sys.stderr,
        )
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
