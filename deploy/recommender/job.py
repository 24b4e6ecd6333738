"""An Inference Recommender job: its request, submission, the wait, and its benchmark steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from deploy import validation
from deploy.errors import InvalidInputError, JobTimeoutError
from deploy.gateway import Gateway

JobType = Literal["Default", "Advanced"]
LatencyPercentile = Literal["P95", "P99"]
FlatInvocations = Literal["Continue", "Stop"]
# (initial users, spawn rate per minute, seconds): a gentle start, then three users.
DEFAULT_PHASES: Final = ((1, 2, 120), (3, 2, 120))
TERMINAL_STATUSES: Final = frozenset({"COMPLETED", "FAILED", "STOPPED", "DELETED"})
# list_inference_recommendations_job_steps pages of 100 steps, bounded so a bad token cannot loop.
MAX_STEP_PAGES: Final = 50


@dataclass(frozen=True, slots=True)
class LoadTest:
    """The Advanced job's knobs: where, with which environments, under what traffic, until when."""

    instance_types: tuple[str, ...]
    environment_ranges: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    phases: tuple[tuple[int, int, int], ...] = DEFAULT_PHASES
    stairs: tuple[int, int, int] | None = None
    job_duration_s: int | None = None
    max_invocations: int | None = None
    latency_threshold_ms: int | None = None
    latency_percentile: LatencyPercentile = "P95"
    flat_invocations: FlatInvocations | None = None
    max_tests: int | None = None
    max_parallel_tests: int | None = None

    def check(self) -> LoadTest:
        if not self.instance_types:
            raise InvalidInputError(
                "--instance-type: an Advanced job needs at least one instance type"
            )
        if len(self.instance_types) > validation.MAX_ENDPOINT_CONFIGURATIONS:
            raise InvalidInputError(
                f"--instance-type: at most {validation.MAX_ENDPOINT_CONFIGURATIONS} instance types "
                f"per job, got {len(self.instance_types)}"
            )
        validation.check_instance_types(self.instance_types, what="--instance-type", load_test=True)
        validation.check_environment_ranges(self.environment_ranges)
        if self.job_duration_s is not None:
            validation.check_job_duration(self.job_duration_s)
        if self.stairs is not None:
            validation.check_stairs(self.stairs, job_duration_s=self.job_duration_s)
        else:
            validation.check_phases(self.phases, job_duration_s=self.job_duration_s)
        if self.max_invocations is not None:
            validation.check_positive(self.max_invocations, what="--max-invocations")
        if self.latency_threshold_ms is not None:
            validation.check_positive(self.latency_threshold_ms, what="--max-latency-ms")
        validation.check_choice(
            self.latency_percentile, validation.LATENCY_PERCENTILES, what="--latency-percentile"
        )
        if self.flat_invocations is not None:
            validation.check_choice(
                self.flat_invocations, validation.FLAT_INVOCATIONS, what="--flat-invocations"
            )
        for value, option in (
            (self.max_tests, "--max-tests"),
            (self.max_parallel_tests, "--max-parallel-tests"),
        ):
            if value is not None:
                validation.check_positive(value, what=option)
        if self.max_tests and self.max_parallel_tests and self.max_parallel_tests > self.max_tests:
            raise InvalidInputError("--max-parallel-tests: cannot exceed --max-tests")
        return self


def job_request(
    *,
    name: str,
    job_type: JobType,
    role_arn: str,
    model_package_arn: str,
    load_test: LoadTest | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The `create_inference_recommendations_job` parameters, after the checks botocore skips."""
    validation.check_name(name, what="--job-name", max_length=validation.JOB_NAME_MAX)
    validation.check_choice(job_type, validation.JOB_TYPES, what="--job-type")
    validation.check_role_arn(role_arn, what="--role")
    if not model_package_arn.startswith("<"):  # a dry run's placeholder for the ARN to come
        validation.check_model_package_arn(model_package_arn)
    if (job_type == "Advanced") != (load_test is not None):
        raise InvalidInputError(
            "--job-type: Advanced needs load-test options (--instance-type ...); Default takes none"
        )
    input_config: dict[str, Any] = {"ModelPackageVersionArn": model_package_arn}
    request: dict[str, Any] = {
        "JobName": name,
        "JobType": job_type,
        "RoleArn": role_arn,
        "InputConfig": input_config,
    }
    if description:
        if len(description) > 128:
            raise InvalidInputError("--description: at most 128 characters")
        request["JobDescription"] = description
    if load_test is None:
        return request
    load_test.check()
    if load_test.job_duration_s is not None:
        input_config["JobDurationInSeconds"] = load_test.job_duration_s
    if load_test.stairs is not None:
        duration_s, steps, users = load_test.stairs
        input_config["TrafficPattern"] = {
            "TrafficType": "STAIRS",
            "Stairs": {
                "DurationInSeconds": duration_s,
                "NumberOfSteps": steps,
                "UsersPerStep": users,
            },
        }
    else:
        input_config["TrafficPattern"] = {
            "TrafficType": "PHASES",
            "Phases": [
                {"InitialNumberOfUsers": users, "SpawnRate": rate, "DurationInSeconds": seconds}
                for users, rate, seconds in load_test.phases
            ],
        }
    limit = {
        key: value
        for key, value in (
            ("MaxNumberOfTests", load_test.max_tests),
            ("MaxParallelOfTests", load_test.max_parallel_tests),
        )
        if value is not None
    }
    if limit:
        input_config["ResourceLimit"] = limit
    configurations: list[dict[str, Any]] = []
    for instance_type in load_test.instance_types:
        configuration: dict[str, Any] = {"InstanceType": instance_type}
        if load_test.environment_ranges:
            configuration["EnvironmentParameterRanges"] = {
                "CategoricalParameterRanges": [
                    {"Name": name_, "Value": list(values)}
                    for name_, values in load_test.environment_ranges.items()
                ]
            }
        configurations.append(configuration)
    input_config["EndpointConfigurations"] = configurations
    stopping: dict[str, Any] = {}
    if load_test.max_invocations is not None:
        stopping["MaxInvocations"] = load_test.max_invocations
    if load_test.latency_threshold_ms is not None:
        stopping["ModelLatencyThresholds"] = [
            {
                "Percentile": load_test.latency_percentile,
                "ValueInMilliseconds": load_test.latency_threshold_ms,
            }
        ]
    if load_test.flat_invocations is not None:
        stopping["FlatInvocations"] = load_test.flat_invocations
    if stopping:
        request["StoppingConditions"] = stopping
    return request


@dataclass(frozen=True, slots=True)
class Step:
    """One benchmark of the job: instance type and environment, its status, what it measured."""

    status: str
    instance_type: str | None
    instance_count: int | None
    environment: Mapping[str, str]
    failure_reason: str | None
    metrics: Mapping[str, Any]

    @classmethod
    def from_response(cls, step: Mapping[str, Any]) -> Step:
        benchmark: Mapping[str, Any] = step.get("InferenceBenchmark", {})
        endpoint: Mapping[str, Any] = benchmark.get("EndpointConfiguration", {})
        model: Mapping[str, Any] = benchmark.get("ModelConfiguration", {})
        instance_type = endpoint.get("InstanceType")
        serverless = endpoint.get("ServerlessConfig")
        if instance_type is None and serverless:
            instance_type = f"serverless-{serverless.get('MemorySizeInMB')}MB"
        return cls(
            status=step["Status"],
            instance_type=instance_type,
            instance_count=endpoint.get("InitialInstanceCount"),
            environment={p["Key"]: p["Value"] for p in model.get("EnvironmentParameters", [])},
            failure_reason=benchmark.get("FailureReason"),
            metrics=dict(benchmark.get("Metrics", {})),
        )


@dataclass(frozen=True, slots=True)
class JobState:
    """A job's describe response and its benchmark steps at one moment."""

    job: dict[str, Any]
    steps: list[Step]


def list_steps(gateway: Gateway, job_name: str) -> list[Step]:
    """Every benchmark step of the job, following NextToken for at most MAX_STEP_PAGES pages."""
    steps: list[Step] = []
    token: str | None = None
    for _ in range(MAX_STEP_PAGES):
        params: dict[str, Any] = {"JobName": job_name, "StepType": "BENCHMARK", "MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = gateway.call(
            "sagemaker",
            "list_inference_recommendations_job_steps",
            note="followed by NextToken",
            **params,
        )
        steps.extend(Step.from_response(step) for step in page.get("Steps", []))
        token = page.get("NextToken")
        if not token:
            break
    return steps


def describe_job(gateway: Gateway, job_name: str) -> dict[str, Any]:
    return gateway.call("sagemaker", "describe_inference_recommendations_job", JobName=job_name)


def progress_line(job: Mapping[str, Any], steps: list[Step], *, elapsed_s: float) -> str:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    parts = ", ".join(f"{count} {status.lower()}" for status, count in sorted(counts.items()))
    minutes, seconds = divmod(int(elapsed_s), 60)
    benchmarks = f"; benchmarks: {parts}" if parts else ""
    return f"[{minutes:3d}m{seconds:02d}s] {job['JobName']}: {job['Status']}{benchmarks}"


def wait_for_job(
    gateway: Gateway,
    job_name: str,
    *,
    poll_interval_s: float,
    timeout_s: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobState:
    """Poll until the job ends, reporting status and benchmark counts; return its final state.

    Raises JobTimeoutError when the job is still running after `timeout_s`.
    """
    start = clock()
    while True:
        state = JobState(job=describe_job(gateway, job_name), steps=list_steps(gateway, job_name))
        elapsed = clock() - start
        progress(progress_line(state.job, state.steps, elapsed_s=elapsed))
        if state.job["Status"] in TERMINAL_STATUSES:
            return state
        if elapsed + poll_interval_s > timeout_s:
            raise JobTimeoutError(
                f"job {job_name} is still {state.job['Status']} after {elapsed:.0f} s; "
                f"fetch it later with --from-job {job_name}"
            )
        sleep(poll_interval_s)
