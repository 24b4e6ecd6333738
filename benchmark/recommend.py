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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from botocore.exceptions import BotoCoreError, ClientError

from benchmark.payloads import CONTENT_TYPES
from benchmark.recommender.archive import SamplePayload, build_archive, upload_request
from benchmark.recommender.estimate import LocalEstimate, load_estimate
from benchmark.recommender.report import Report, render_instant, render_markdown, write_report
from deploy import validation
from deploy.errors import DeployError, InvalidInputError, JobFailedError, explain
from deploy.gateway import Gateway
from deploy.recommender.instant import InstantResult, fetch_instant
from deploy.recommender.job import (
    DEFAULT_PHASES,
    TERMINAL_STATUSES,
    FlatInvocations,
    JobState,
    JobType,
    LatencyPercentile,
    LoadTest,
    describe_job,
    job_request,
    list_steps,
    wait_for_job,
)
from deploy.recommender.metadata import benchmarked_models, check_known
from deploy.recommender.package import PackageSpec, group_exists, group_request, package_request
from deploy.recommender.results import OBJECTIVES, Objective, from_job, ordered
from deploy.recommender.scaling import fetch_suggestion, scaling_request
from deploy.suggestion import AutoscaleSuggestion
from deploy.validation import JOB_NAME_MAX

DEFAULT_GROUP: Final = "rtb-xgboost"
DEFAULT_FRAMEWORK_VERSION: Final = "1.7"
DEFAULT_TIMEOUT_S: Final = 4 * 3600
PACKAGE_PLACEHOLDER: Final = "<ModelPackageArn returned by create_model_package>"
BEST_PLACEHOLDER: Final = "<best RecommendationId>"
PAYLOAD_NAME: Final = "payload.tar.gz"


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


def _texts(group: Any, *specs: tuple[str, str, str | None, str]) -> None:
    """Plain string options, one (flag, metavar, default, help) each."""
    for flag, metavar, default, help_text in specs:
        group.add_argument(flag, metavar=metavar, default=default, help=help_text)


def _repeated(group: Any, flag: str, kind: Any, metavar: str, help_text: str) -> None:
    group.add_argument(
        flag, action="append", type=kind, default=[], metavar=metavar, help=help_text
    )


def _switch(group: Any, flag: str, help_text: str) -> None:
    group.add_argument(flag, action="store_true", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark recommend",
        usage="%(prog)s [options]",
        description=__doc__.split("\n", 1)[1].strip() if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Documentation: docs/recommend.md",
    )
    mode = parser.add_argument_group("mode")
    _texts(
        mode,
        ("--from-job", "NAME", None, "only fetch and report this existing job"),
        ("--stop-job", "NAME", None, "stop a running job (its test endpoints are removed)"),
        (
            "--instant",
            "MODEL",
            None,
            "SageMaker model whose instant DeploymentRecommendation to read (alone: only that)",
        ),
    )
    _switch(mode, "--register-only", "register the model package and stop")
    _switch(mode, "--dry-run", "check and print the calls; call nothing")

    package = parser.add_argument_group("model package")
    _texts(
        package,
        (
            "--model-package-arn",
            "ARN",
            None,
            "use this registered version instead of registering one",
        ),
        ("--image", "URI", None, "serving image URI in ECR"),
        ("--model-data", "S3_URI", None, "model.tar.gz in S3"),
        ("--payload-uri", "S3_URI", None, "where to upload the sample payload archive"),
        ("--model-package-group", "NAME", DEFAULT_GROUP, "created if missing (%(default)s)"),
        ("--accept", "MIME", "text/csv", "response MIME type (%(default)s)"),
        ("--framework-version", "VERSION", DEFAULT_FRAMEWORK_VERSION, "%(default)s"),
        ("--nearest-model-name", "NAME", "xgboost", "%(default)s"),
        ("--domain", "DOMAIN", "MACHINE_LEARNING", "%(default)s"),
        ("--task", "TASK", "CLASSIFICATION", "%(default)s"),
        ("--framework", "NAME", "XGBOOST", "%(default)s"),
    )
    package.add_argument(
        "--content-type", default="text/csv", choices=CONTENT_TYPES, help="served request type"
    )
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
    _switch(
        package,
        "--check-metadata",
        "before registering, check framework version and nearest model with ListModelMetadata",
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
    _texts(
        job,
        ("--job-type", "TYPE", "Default", "Default or Advanced (%(default)s)"),
        ("--job-name", "NAME", None, "default rtb-<type>-<UTC time>"),
        ("--role", "ARN", None, "IAM role ARN Inference Recommender assumes"),
        ("--description", "TEXT", None, "job description (at most 128 characters)"),
    )

    load = parser.add_argument_group("Advanced job (load test)")
    _repeated(
        load,
        "--instance-type",
        _csv_list,
        "T1,T2",
        "instance types to load-test (repeat or comma-separate; 1-10)",
    )
    _repeated(
        load,
        "--env",
        _env_range,
        "NAME=V1,V2,V3",
        "environment values to try, e.g. SAGEMAKER_MODEL_SERVER_WORKERS=1,2,4",
    )
    traffic = load.add_mutually_exclusive_group()
    _repeated(
        traffic,
        "--phase",
        _phase,
        "USERS:SPAWN_RATE:SECONDS",
        "a traffic phase (repeat; default 1:2:120 then 3:2:120)",
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
    _switch(wait, "--no-wait", "start the job and return")
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


Mode = Literal["job", "register", "from-job", "stop", "instant"]


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every option of one invocation, typed; built from argv once, read by everything below."""

    from_job: str | None
    stop_job: str | None
    register_only: bool
    instant: str | None
    dry_run: bool
    model_package_arn: str | None
    image: str | None
    model_data: str | None
    payload_uri: str | None
    model_package_group: str
    content_type: str
    accept: str
    framework_version: str
    nearest_model_name: str
    domain: str
    task: str
    framework: str
    supported_instance_types: tuple[str, ...]
    payload_files: int
    payload_rows: int
    check_metadata: bool
    payload_reference: Path | None
    seed: int
    job_type: str
    job_name: str | None
    role: str | None
    description: str | None
    instance_type: tuple[str, ...]
    env: tuple[tuple[str, tuple[str, ...]], ...]
    phase: tuple[tuple[int, int, int], ...]
    stairs: tuple[int, int, int] | None
    job_duration: int | None
    max_invocations: int | None
    max_latency_ms: int | None
    latency_percentile: str
    flat_invocations: str | None
    max_tests: int | None
    max_parallel_tests: int | None
    no_wait: bool
    poll_interval: float
    timeout: float
    objective: Objective
    output_dir: Path | None
    capacity: Path | None
    target_cpu_per_core: int | None
    expected_invocations: tuple[int, int] | None
    instant_attempts: int
    instant_interval: float
    region: str | None
    endpoint_url: str | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        given = vars(args)
        return cls(
            **{
                **given,
                "supported_instance_types": tuple(given["supported_instance_types"]),
                "instance_type": tuple(item for group in given["instance_type"] for item in group),
                "env": tuple(given["env"]),
                "phase": tuple(given["phase"]),
            }
        )

    @property
    def registration(self) -> bool:
        return bool(self.image or self.model_data or self.payload_uri)

    def output_dir_for(self, job_name: str) -> Path:
        return self.output_dir or Path("results/recommend") / job_name

    def load_test_flags(self) -> list[str]:
        """The Advanced-only options present on the command line."""
        given = {
            "--instance-type": self.instance_type,
            "--env": self.env,
            "--phase": self.phase,
            "--stairs": self.stairs,
            "--job-duration": self.job_duration,
            "--max-invocations": self.max_invocations,
            "--max-latency-ms": self.max_latency_ms,
            "--flat-invocations": self.flat_invocations,
            "--max-tests": self.max_tests,
            "--max-parallel-tests": self.max_parallel_tests,
        }
        return [flag for flag, value in given.items() if value is not None and value != ()]


def _gateway(options: Options, clients: Mapping[str, Any] | None) -> Gateway:
    gateway = Gateway(
        region=options.region,
        mode="offline" if options.dry_run else "live",
        endpoint_url=options.endpoint_url,
        clients=clients,
    )
    if clients is None and gateway.region is None and not options.dry_run:
        raise InvalidInputError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    return gateway


def _job_type(options: Options) -> JobType:
    validation.check_choice(options.job_type, validation.JOB_TYPES, what="--job-type")
    return cast(JobType, options.job_type)


def _load_test(options: Options) -> LoadTest | None:
    flags = options.load_test_flags()
    if options.job_type != "Advanced":
        if flags:
            raise InvalidInputError(
                f"{', '.join(flags)}: load-test options need --job-type Advanced"
            )
        return None
    env: dict[str, tuple[str, ...]] = {}
    for name, values in options.env:
        if name in env:
            raise InvalidInputError(f"--env: {name} is given twice")
        env[name] = values
    percentile = validation.check_choice(
        options.latency_percentile, validation.LATENCY_PERCENTILES, what="--latency-percentile"
    )
    flat = options.flat_invocations
    if flat is not None:
        validation.check_choice(flat, validation.FLAT_INVOCATIONS, what="--flat-invocations")
    return LoadTest(
        instance_types=options.instance_type,
        environment_ranges=env,
        phases=options.phase or DEFAULT_PHASES,
        stairs=options.stairs,
        job_duration_s=options.job_duration,
        max_invocations=options.max_invocations,
        latency_threshold_ms=options.max_latency_ms,
        latency_percentile=cast(LatencyPercentile, percentile),
        flat_invocations=cast(FlatInvocations | None, flat),
        max_tests=options.max_tests,
        max_parallel_tests=options.max_parallel_tests,
    ).check()


def _package_spec(options: Options) -> PackageSpec:
    missing = [
        flag
        for flag, value in (
            ("--image", options.image),
            ("--model-data", options.model_data),
            ("--payload-uri", options.payload_uri),
        )
        if not value
    ]
    if missing or not (options.image and options.model_data and options.payload_uri):
        raise InvalidInputError(
            f"registering a model package needs {', '.join(missing)} (or pass --model-package-arn)"
        )
    return PackageSpec(
        group=options.model_package_group,
        image=options.image,
        model_data_url=options.model_data,
        sample_payload_url=options.payload_uri,
        content_types=(options.content_type,),
        response_types=(options.accept,),
        framework_version=options.framework_version,
        nearest_model_name=options.nearest_model_name,
        domain=options.domain,
        task=options.task,
        framework=options.framework,
        instance_types=options.supported_instance_types,
    ).check()


def _default_job_name(job_type: str) -> str:
    return f"rtb-{job_type.lower()}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def _register(
    gateway: Gateway, spec: PackageSpec, payload: SamplePayload, *, local_copy: Path | None
) -> str:
    if local_copy is not None:
        local_copy.parent.mkdir(parents=True, exist_ok=True)
        local_copy.write_bytes(payload.data)
        _progress(f"sample payload kept at {local_copy}")
    _progress(
        f"sample payload: {len(payload.members)} {payload.content_type} requests of "
        f"{payload.rows_per_file} row(s), {len(payload.data)} bytes -> {spec.sample_payload_url}"
    )
    gateway.call("s3", "put_object", **upload_request(payload, uri=spec.sample_payload_url))
    if not group_exists(gateway, spec.group) or gateway.dry_run:
        gateway.call(
            "sagemaker",
            "create_model_package_group",
            note="only when the describe says the group does not exist",
            **group_request(spec.group),
        )
        if not gateway.dry_run:
            _progress(f"created model package group {spec.group}")
    response = gateway.call(
        "sagemaker",
        "create_model_package",
        placeholder={"ModelPackageArn": PACKAGE_PLACEHOLDER},
        **package_request(spec),
    )
    arn: str = response["ModelPackageArn"]
    if not gateway.dry_run:
        _progress(f"registered {arn}")
    return arn


def _check_metadata(gateway: Gateway, spec: PackageSpec) -> None:
    known = benchmarked_models(gateway, framework=spec.framework)
    if gateway.dry_run:
        return
    check_known(
        known,
        framework=spec.framework,
        framework_version=spec.framework_version,
        nearest_model_name=spec.nearest_model_name,
    )
    _progress(
        f"{spec.framework} {spec.framework_version} / {spec.nearest_model_name}: "
        "benchmarked by Inference Recommender"
    )


@dataclass(frozen=True, slots=True)
class Scaling:
    """The scaling recommendation fetched for the best row, or why there is none."""

    suggestion: AutoscaleSuggestion | None = None
    note: str | None = None


def _scaling(
    options: Options, gateway: Gateway, job: Mapping[str, Any], best_id: str | None
) -> Scaling:
    if job.get("Status") != "COMPLETED":
        return Scaling(note="No scaling recommendation: the job did not complete.")
    if best_id is None:
        return Scaling(note="No scaling recommendation: no recommendation carries an id.")
    low, high = options.expected_invocations or (None, None)
    request = scaling_request(
        job_name=job["JobName"],
        recommendation_id=best_id,
        target_cpu_per_core=options.target_cpu_per_core,
        min_invocations_per_minute=low,
        max_invocations_per_minute=high,
    )
    if gateway.dry_run:
        gateway.call("sagemaker", "get_scaling_configuration_recommendation", **request)
        return Scaling()
    try:
        return Scaling(suggestion=fetch_suggestion(gateway, request))
    except (ClientError, DeployError) as exc:
        _progress(f"warning: no scaling recommendation: {exc}")
        return Scaling(note=f"No scaling recommendation: {exc}")


def _instant(options: Options, gateway: Gateway) -> InstantResult | None:
    if not options.instant:
        return None
    return fetch_instant(
        gateway,
        options.instant,
        attempts=options.instant_attempts,
        interval_s=options.instant_interval,
        progress=_progress,
    )


def _report_job(
    options: Options,
    gateway: Gateway,
    job_name: str,
    *,
    state: JobState | None,
    estimate: LocalEstimate | None,
) -> int:
    if gateway.dry_run:
        describe_job(gateway, job_name)
        list_steps(gateway, job_name)
        _scaling(options, gateway, {"JobName": job_name, "Status": "COMPLETED"}, BEST_PLACEHOLDER)
        _instant(options, gateway)
        return 0
    if state is None:
        state = JobState(job=describe_job(gateway, job_name), steps=list_steps(gateway, job_name))
    job, steps = state.job, state.steps
    rows = ordered(from_job(job), objective=options.objective)
    best_id = rows[0].recommendation_id if rows else None
    scaling = _scaling(options, gateway, job, best_id)
    report = Report(
        job=job,
        recommendations=rows,
        steps=steps,
        objective=options.objective,
        scaling=scaling.suggestion,
        scaling_note=scaling.note,
        estimate=estimate,
        instant=_instant(options, gateway),
    )
    files = write_report(report, options.output_dir_for(job_name))
    print(render_markdown(report), end="")
    _progress(
        "wrote "
        + ", ".join(
            str(path)
            for path in (files.markdown, files.csv, files.plot, files.scaling, files.job)
            if path is not None
        )
    )
    for step in steps:
        if step.status == "FAILED":
            _progress(
                f"benchmark failed on {step.instance_type}: "
                f"{step.failure_reason or 'no reason given'}"
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

    mode: Mode
    estimate: LocalEstimate | None
    spec: PackageSpec | None = None
    payload: SamplePayload | None = None
    request: dict[str, Any] | None = None


def _plan(options: Options) -> Plan:
    """Check every option and build every request; raise InvalidInputError on the first problem."""
    job_type = _job_type(options)
    if options.poll_interval < 0 or options.timeout <= 0:
        raise InvalidInputError("--poll-interval must be >= 0 and --timeout > 0")
    if options.instant_attempts < 1 or options.instant_interval < 0:
        raise InvalidInputError("--instant-attempts must be >= 1 and --instant-interval >= 0")
    estimate = load_estimate(options.capacity) if options.capacity is not None else None
    if options.instant:
        validation.check_name(options.instant, what="--instant")
    registration = options.registration
    if options.stop_job:
        validation.check_name(options.stop_job, what="--stop-job", max_length=JOB_NAME_MAX)
        if registration or options.model_package_arn or options.register_only or options.from_job:
            raise InvalidInputError("--stop-job only stops a job; it takes no other mode")
        return Plan(mode="stop", estimate=estimate)
    if options.from_job:
        validation.check_name(options.from_job, what="--from-job", max_length=JOB_NAME_MAX)
        if registration or options.model_package_arn or options.register_only:
            raise InvalidInputError("--from-job only reports; it takes no model package options")
        return Plan(mode="from-job", estimate=estimate)
    if options.instant and not (registration or options.model_package_arn or options.register_only):
        return Plan(mode="instant", estimate=estimate)
    if options.model_package_arn and registration:
        raise InvalidInputError(
            "--model-package-arn names a registered version; "
            "drop --image, --model-data, --payload-uri"
        )
    if options.register_only and (options.model_package_arn or job_type != "Default"):
        raise InvalidInputError(
            "--register-only registers a new version and starts no job; "
            "drop --model-package-arn and the job options"
        )
    if options.register_only and options.load_test_flags():
        raise InvalidInputError("--register-only starts no job; drop the job options")
    spec: PackageSpec | None = None
    payload: SamplePayload | None = None
    if options.model_package_arn:
        validation.check_model_package_arn(options.model_package_arn)
    else:
        spec = _package_spec(options)
        payload = build_archive(
            content_type=options.content_type,
            files=options.payload_files,
            rows_per_file=options.payload_rows,
            seed=options.seed,
            reference=options.payload_reference,
        )
    if options.register_only:
        return Plan(mode="register", estimate=estimate, spec=spec, payload=payload)
    if not options.role:
        raise InvalidInputError("--role: the job needs an IAM role ARN for Inference Recommender")
    request = job_request(
        name=options.job_name or _default_job_name(job_type),
        job_type=job_type,
        role_arn=options.role,
        model_package_arn=options.model_package_arn or PACKAGE_PLACEHOLDER,
        load_test=_load_test(options),
        description=options.description,
    )
    return Plan(mode="job", estimate=estimate, spec=spec, payload=payload, request=request)


def _run(options: Options, clients: Mapping[str, Any] | None) -> int:
    plan = _plan(options)
    gateway = _gateway(options, clients)
    if plan.mode == "stop":
        gateway.call("sagemaker", "stop_inference_recommendations_job", JobName=options.stop_job)
        print(f"stopping: {options.stop_job}")
        _progress(f"report what it measured so far with --from-job {options.stop_job}")
        return 0
    if plan.mode == "from-job" and options.from_job:
        return _report_job(options, gateway, options.from_job, state=None, estimate=plan.estimate)
    if plan.mode == "instant":
        instant = _instant(options, gateway)
        if instant is not None and not gateway.dry_run:
            print(render_instant(instant), end="")
        return 0
    package_arn = options.model_package_arn or PACKAGE_PLACEHOLDER
    if plan.spec is not None and options.check_metadata:
        _check_metadata(gateway, plan.spec)
    if plan.spec is not None and plan.payload is not None:
        if plan.request is not None:
            local_copy: Path | None = options.output_dir_for(plan.request["JobName"]) / PAYLOAD_NAME
        else:
            local_copy = options.output_dir / PAYLOAD_NAME if options.output_dir else None
        package_arn = _register(gateway, plan.spec, plan.payload, local_copy=local_copy)
        print(f"model package: {package_arn}")
    if plan.request is None:
        return 0
    return _start_job(
        options, gateway, plan.request, package_arn=package_arn, estimate=plan.estimate
    )


def _start_job(
    options: Options,
    gateway: Gateway,
    planned: dict[str, Any],
    *,
    package_arn: str,
    estimate: LocalEstimate | None,
) -> int:
    request = {
        **planned,
        "InputConfig": {**planned["InputConfig"], "ModelPackageVersionArn": package_arn},
    }
    response = gateway.call(
        "sagemaker",
        "create_inference_recommendations_job",
        placeholder={"JobArn": "<JobArn returned by create_inference_recommendations_job>"},
        **request,
    )
    job_name: str = request["JobName"]
    print(f"job: {job_name} {response['JobArn']}")
    if options.no_wait:
        _progress(f"not waiting; report later with --from-job {job_name}")
        return 0
    if gateway.dry_run:
        return _report_job(options, gateway, job_name, state=None, estimate=estimate)
    try:
        state = wait_for_job(
            gateway,
            job_name,
            poll_interval_s=options.poll_interval,
            timeout_s=options.timeout,
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
    return _report_job(options, gateway, job_name, state=state, estimate=estimate)


def main(argv: Sequence[str] | None = None, *, clients: Mapping[str, Any] | None = None) -> int:
    """Run the command; ``clients`` (service name -> boto3 client) replaces the ones it builds."""
    parser = build_parser()
    options = Options.from_args(parser.parse_args(argv))
    try:
        return _run(options, clients)
    except InvalidInputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except (DeployError, BotoCoreError, ClientError) as exc:
        print(f"error: {explain(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
