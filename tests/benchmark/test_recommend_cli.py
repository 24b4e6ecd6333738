"""`python -m benchmark recommend` end to end against botocore's Stubber.

moto implements no Inference Recommender call, so these runs queue hand-written responses that
botocore's Stubber checks against the real SageMaker service model (shapes, required members,
types), and `expected_params` pins what the command sends. All metric values below are invented
for the tests; none is a measurement.

`PYTHONPATH=. python tests/benchmark/test_recommend_cli.py` prints the example report that
docs/recommend.md embeds (the docs test below keeps the two identical).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from benchmark import __main__ as dispatcher
from benchmark import recommend
from benchmark.recommender.estimate import LocalEstimate
from benchmark.recommender.report import Report, render_markdown
from deploy.recommender.job import Step
from deploy.recommender.results import from_job, ordered
from deploy.recommender.scaling import suggestion_from_response
from deploy.suggestion import AutoscaleSuggestion

pytestmark = pytest.mark.aws

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/InferenceRecommender"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rtb-inference:0.1.0"
MODEL_DATA = "s3://rtb-bench/model/model.tar.gz"
PAYLOAD_URI = "s3://rtb-bench/recommend/payload.tar.gz"
GROUP = "rtb-xgboost"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/3"
GROUP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{GROUP}"
CREATED = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)

REGISTER_ARGS = [
    "--image", IMAGE,
    "--model-data", MODEL_DATA,
    "--payload-uri", PAYLOAD_URI,
    "--role", ROLE,
]  # fmt: skip


StepRow = tuple[str, str, str, str | None]  # status, instance type, workers, failure reason


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def job_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-recommendations-job/{name}"


# (instance, workers, $/hour, max invocations/min, model latency ms, CPU %, memory %)
ADVANCED_RESULTS = [
    ("ml.c6i.large", "2", 0.102, 52_000, 2, 182.0, 6.1),
    ("ml.c7i.large", "2", 0.107, 61_000, 2, 176.5, 5.8),
    ("ml.c6i.xlarge", "4", 0.204, 98_000, 3, 351.0, 4.2),
    ("ml.c6i.large", "1", 0.102, 29_000, 1, 99.0, 4.0),
]


def endpoint_and_model(suffix: str, instance: str, workers: str) -> dict[str, Any]:
    """The endpoint and worker count a recommendation or a benchmark step was measured on."""
    return {
        "EndpointConfiguration": {
            "EndpointName": f"sm-epc-{suffix}",
            "VariantName": f"sm-vc-{suffix}",
            "InstanceType": instance,
            "InitialInstanceCount": 1,
        },
        "ModelConfiguration": {
            "EnvironmentParameters": [
                {"Key": "SAGEMAKER_MODEL_SERVER_WORKERS", "ValueType": "String", "Value": workers}
            ]
        },
    }


def recommendation(
    index: int, instance: str, workers: str, per_hour: float, per_minute: int, latency: int,
    cpu: float, memory: float,
) -> dict[str, Any]:  # fmt: skip
    return {
        "RecommendationId": f"rtb-adv-1/{index:08x}",
        "Metrics": {
            "CostPerHour": per_hour,
            "CostPerInference": per_hour / (per_minute * 60),
            "MaxInvocations": per_minute,
            "ModelLatency": latency,
            "CpuUtilization": cpu,
            "MemoryUtilization": memory,
        },
        **endpoint_and_model(str(index), instance, workers),
        "InvocationStartTime": CREATED + timedelta(minutes=10),
        "InvocationEndTime": CREATED + timedelta(minutes=30),
    }


def describe(
    name: str, status: str, *, job_type: str = "Advanced", results: list[Any] | None = None,
    failure: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    response: dict[str, Any] = {
        "JobName": name,
        "JobType": job_type,
        "JobArn": job_arn(name),
        "RoleArn": ROLE,
        "Status": status,
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED + timedelta(minutes=5),
        "InputConfig": {"ModelPackageVersionArn": PACKAGE_ARN},
    }
    if status in {"COMPLETED", "FAILED", "STOPPED"}:
        response["CompletionTime"] = CREATED + timedelta(minutes=47, seconds=12)
    if results:
        response["InferenceRecommendations"] = [
            recommendation(index, *row) for index, row in enumerate(results, start=1)
        ]
    if failure:
        response["FailureReason"] = failure
    return response


def step(
    name: str, status: str, instance: str, workers: str, *, reason: str | None = None
) -> dict[str, Any]:
    benchmark: dict[str, Any] = endpoint_and_model("x", instance, workers)
    if reason:
        benchmark["FailureReason"] = reason
    return {
        "StepType": "BENCHMARK",
        "JobName": name,
        "Status": status,
        "InferenceBenchmark": benchmark,
    }


def steps_response(name: str, statuses: Sequence[StepRow]) -> dict[str, Any]:
    return {"Steps": [step(name, s, i, w, reason=r) for s, i, w, r in statuses]}


def scaling_response(name: str, recommendation_id: str, target: float) -> dict[str, Any]:
    return {
        "InferenceRecommendationsJobName": name,
        "RecommendationId": recommendation_id,
        "Metric": {"InvocationsPerInstance": int(target), "ModelLatency": 2},
        "DynamicScalingConfiguration": {
            "MinCapacity": 1,
            "MaxCapacity": 4,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
            "ScalingPolicies": [
                {
                    "TargetTracking": {
                        "MetricSpecification": {
                            "Predefined": {
                                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                            }
                        },
                        "TargetValue": target,
                    }
                }
            ],
        },
    }


@dataclass
class Stubs:
    clients: dict[str, Any]
    sagemaker: Stubber
    s3: Stubber

    def steps(self, name: str, statuses: Sequence[StepRow]) -> None:
        self.sagemaker.add_response(
            "list_inference_recommendations_job_steps",
            steps_response(name, statuses),
            {"JobName": name, "StepType": "BENCHMARK", "MaxResults": 100},
        )

    def completed(self, name: str) -> None:
        """The Advanced job is COMPLETED, without steps, and its best row scales at 1/min."""
        self.describe(describe(name, "COMPLETED", results=ADVANCED_RESULTS))
        self.steps(name, [])
        self.sagemaker.add_response(
            "get_scaling_configuration_recommendation",
            scaling_response(name, "rtb-adv-1/00000002", 1.0),
            None,
        )

    def created(self, name: str, expected_params: dict[str, Any] | None = None) -> None:
        """CreateInferenceRecommendationsJob answers with the job's ARN."""
        self.sagemaker.add_response(
            "create_inference_recommendations_job", {"JobArn": job_arn(name)}, expected_params
        )

    def describe(self, response: dict[str, Any]) -> None:
        self.sagemaker.add_response(
            "describe_inference_recommendations_job", response, {"JobName": response["JobName"]}
        )

    def registration(self, *, group_exists: bool) -> None:
        self.s3.add_response(
            "put_object",
            {"ETag": '"0123"'},
            {
                "Bucket": "rtb-bench",
                "Key": "recommend/payload.tar.gz",
                "Body": ANY,
                "ContentType": "application/gzip",
            },
        )
        if group_exists:
            self.sagemaker.add_response(
                "describe_model_package_group",
                {
                    "ModelPackageGroupName": GROUP,
                    "ModelPackageGroupArn": GROUP_ARN,
                    "CreationTime": CREATED,
                    "CreatedBy": {},
                    "ModelPackageGroupStatus": "Completed",
                },
                {"ModelPackageGroupName": GROUP},
            )
        else:
            self.sagemaker.add_client_error(
                "describe_model_package_group",
                service_error_code="ValidationException",
                service_message=f"ModelPackageGroup {GROUP} does not exist.",
                http_status_code=400,
                expected_params={"ModelPackageGroupName": GROUP},
            )
            self.sagemaker.add_response(
                "create_model_package_group",
                {"ModelPackageGroupArn": GROUP_ARN},
                {"ModelPackageGroupName": GROUP, "ModelPackageGroupDescription": ANY},
            )
        self.sagemaker.add_response(
            "create_model_package",
            {"ModelPackageArn": PACKAGE_ARN},
            {
                "ModelPackageGroupName": GROUP,
                "ModelPackageDescription": ANY,
                "Domain": "MACHINE_LEARNING",
                "Task": "CLASSIFICATION",
                "SamplePayloadUrl": PAYLOAD_URI,
                "ModelApprovalStatus": "Approved",
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image": IMAGE,
                            "ModelDataUrl": MODEL_DATA,
                            "Framework": "XGBOOST",
                            "FrameworkVersion": "1.7",
                            "NearestModelName": "xgboost",
                        }
                    ],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            },
        )


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    sagemaker, s3 = session.client("sagemaker"), session.client("s3")
    with Stubber(sagemaker) as sm_stub, Stubber(s3) as s3_stub:
        yield Stubs({"sagemaker": sagemaker, "s3": s3}, sm_stub, s3_stub)
        sm_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()


def run(stubs: Stubs, argv: list[str]) -> int:
    return recommend.main(argv, clients=stubs.clients)


def test_default_job_registers_waits_and_reports(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rtb-default-1"
    results = [
        ("ml.c6i.large", "2", 0.102, 52_000, 2, 182.0, 6.1),
        ("ml.m5.large", "2", 0.115, 40_000, 2, 170.0, 7.0),
    ]
    stubs.registration(group_exists=False)
    stubs.sagemaker.add_response(
        "create_inference_recommendations_job",
        {"JobArn": job_arn(name)},
        {
            "JobName": name,
            "JobType": "Default",
            "RoleArn": ROLE,
            "InputConfig": {"ModelPackageVersionArn": PACKAGE_ARN},
        },
    )
    stubs.describe(describe(name, "PENDING", job_type="Default"))
    stubs.steps(name, [])
    stubs.describe(describe(name, "IN_PROGRESS", job_type="Default"))
    stubs.steps(
        name, [("IN_PROGRESS", "ml.c6i.large", "2", None), ("COMPLETED", "ml.m5.large", "2", None)]
    )
    stubs.describe(describe(name, "COMPLETED", job_type="Default", results=results))
    stubs.steps(
        name, [("COMPLETED", "ml.c6i.large", "2", None), ("COMPLETED", "ml.m5.large", "2", None)]
    )
    stubs.sagemaker.add_response(
        "get_scaling_configuration_recommendation",
        scaling_response(name, "rtb-adv-1/00000001", 26_000.0),
        {"InferenceRecommendationsJobName": name, "RecommendationId": "rtb-adv-1/00000001"},
    )

    out = tmp_path / "report"
    argv = [*REGISTER_ARGS, "--job-name", name, "--poll-interval", "0", "--output-dir", str(out)]
    assert run(stubs, argv) == 0

    captured = capsys.readouterr()
    assert f"model package: {PACKAGE_ARN}" in captured.out
    assert f"job: {name} {job_arn(name)}" in captured.out
    # Progress: one line per poll on stderr, with benchmark counts once there are steps.
    progress = [line for line in captured.err.splitlines() if f"{name}:" in line]
    assert [line.split(": ", 1)[1].split(";")[0] for line in progress] == [
        "PENDING",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert "benchmarks: 1 completed, 1 in_progress" in progress[1]
    assert "created model package group rtb-xgboost" in captured.err
    assert (out / "recommendations.csv").is_file()
    assert json.loads((out / "autoscaling.json").read_text())["target_value"] == 26_000.0


def test_default_job_reuses_an_existing_group(stubs: Stubs, tmp_path: Path) -> None:
    name = "rtb-default-2"
    stubs.registration(group_exists=True)
    stubs.created(name)
    argv = [*REGISTER_ARGS, "--job-name", name, "--no-wait", "--output-dir", str(tmp_path)]
    assert run(stubs, argv) == 0


def test_sample_payload_archive_is_what_gets_uploaded(stubs: Stubs, tmp_path: Path) -> None:
    uploaded: dict[str, Any] = {}
    stubs.registration(group_exists=True)
    stubs.created("rtb-x")

    def capture(params: dict[str, Any], **_: Any) -> None:
        if "Body" in params:
            uploaded["body"] = params["Body"]

    stubs.clients["s3"].meta.events.register("before-parameter-build.s3.PutObject", capture)
    argv = [
        *REGISTER_ARGS,
        "--job-name",
        "rtb-x",
        "--no-wait",
        "--payload-files",
        "4",
        "--payload-rows",
        "3",
        "--output-dir",
        str(tmp_path),
    ]
    assert run(stubs, argv) == 0
    assert (tmp_path / "payload.tar.gz").read_bytes() == uploaded["body"]  # kept for inspection
    with tarfile.open(fileobj=io.BytesIO(uploaded["body"]), mode="r:gz") as tar:
        members = tar.getmembers()
        bodies = [tar.extractfile(member).read() for member in members]  # type: ignore[union-attr]
    assert [m.name for m in members] == [f"request-{i:03d}.csv" for i in range(4)]
    for body in bodies:
        lines = body.decode().splitlines()
        assert len(lines) == 3 and all(len(line.split(",")) == 7 for line in lines)


def advanced_argv(name: str, out: Path) -> list[str]:
    return [
        "--model-package-arn", PACKAGE_ARN,
        "--role", ROLE,
        "--job-name", name,
        "--job-type", "Advanced",
        "--instance-type", "ml.c6i.large,ml.c7i.large",
        "--instance-type", "ml.c6i.xlarge",
        "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=1,2,4",
        "--phase", "1:2:120", "--phase", "3:3:300",
        "--job-duration", "3600",
        "--max-invocations", "120000",
        "--max-latency-ms", "20", "--latency-percentile", "P99",
        "--max-tests", "9", "--max-parallel-tests", "3",
        "--poll-interval", "0",
        "--output-dir", str(out),
    ]  # fmt: skip


ADVANCED_REQUEST = {
    "JobName": "rtb-adv-1",
    "JobType": "Advanced",
    "RoleArn": ROLE,
    "InputConfig": {
        "ModelPackageVersionArn": PACKAGE_ARN,
        "JobDurationInSeconds": 3600,
        "TrafficPattern": {
            "TrafficType": "PHASES",
            "Phases": [
                {"InitialNumberOfUsers": 1, "SpawnRate": 2, "DurationInSeconds": 120},
                {"InitialNumberOfUsers": 3, "SpawnRate": 3, "DurationInSeconds": 300},
            ],
        },
        "ResourceLimit": {"MaxNumberOfTests": 9, "MaxParallelOfTests": 3},
        "EndpointConfigurations": [
            {
                "InstanceType": instance,
                "EnvironmentParameterRanges": {
                    "CategoricalParameterRanges": [
                        {"Name": "SAGEMAKER_MODEL_SERVER_WORKERS", "Value": ["1", "2", "4"]}
                    ]
                },
            }
            for instance in ("ml.c6i.large", "ml.c7i.large", "ml.c6i.xlarge")
        ],
    },
    "StoppingConditions": {
        "MaxInvocations": 120000,
        "ModelLatencyThresholds": [{"Percentile": "P99", "ValueInMilliseconds": 20}],
    },
}


def queue_advanced(stubs: Stubs, *, failed_step: bool = False) -> None:
    name = "rtb-adv-1"
    stubs.created(name, ADVANCED_REQUEST)
    finished: list[StepRow] = [
        ("COMPLETED", instance, workers, None) for instance, workers, *_ in ADVANCED_RESULTS
    ]
    if failed_step:
        finished.append(
            (
                "FAILED",
                "ml.c7i.large",
                "4",
                "ModelError: the container did not answer /ping within 2 s",
            )
        )
    stubs.describe(describe(name, "IN_PROGRESS"))
    stubs.steps(name, finished[:2])
    stubs.describe(describe(name, "COMPLETED", results=ADVANCED_RESULTS))
    stubs.steps(name, finished)
    # The cheapest per inference is ml.c7i.large with 2 workers, the second recommendation.
    stubs.sagemaker.add_response(
        "get_scaling_configuration_recommendation",
        scaling_response(name, "rtb-adv-1/00000002", 30_500.0),
        {"InferenceRecommendationsJobName": name, "RecommendationId": "rtb-adv-1/00000002"},
    )


def test_advanced_job_sends_the_load_test_and_writes_every_report_file(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_advanced(stubs)
    assert run(stubs, advanced_argv("rtb-adv-1", tmp_path)) == 0

    rows = read_csv(tmp_path / "recommendations.csv")
    expected = sorted(ADVANCED_RESULTS, key=lambda r: r[2] / (r[3] * 60))
    assert [(r["instance_type"], r["environment"]) for r in rows] == [
        (instance, f"SAGEMAKER_MODEL_SERVER_WORKERS={workers}")
        for instance, workers, *_ in expected
    ]
    for row, (_, _, per_hour, per_minute, latency, cpu, memory) in zip(rows, expected, strict=True):
        assert float(row["cost_per_hour_usd"]) == per_hour
        assert float(row["cost_per_inference_usd"]) == per_hour / (per_minute * 60)
        assert int(row["max_invocations_per_minute"]) == per_minute
        assert int(row["model_latency_ms"]) == latency
        assert float(row["cpu_utilization_pct"]) == cpu
        assert float(row["memory_utilization_pct"]) == memory

    markdown = (tmp_path / "report.md").read_text()
    assert capsys.readouterr().out.endswith(markdown)  # the same report on stdout
    table = [line for line in markdown.splitlines() if line.startswith("| 1 ")]
    # $ per 1M inferences for ml.c7i.large: 0.107 / (61000 * 60) * 1e6 = 0.029235...
    assert table == [
        "| 1 | `ml.c7i.large` | 1 | SAGEMAKER_MODEL_SERVER_WORKERS=2 | 0.1070 | 0.02923 | 61,000 "
        "| 2 | 176.5 | 5.8 |"
    ]
    assert "ran 47 min 12 s" in markdown
    assert "Benchmarks that did not complete" not in markdown
    assert (tmp_path / "cost_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "autoscaling.json").read_text()) == {
        "metric": "SageMakerVariantInvocationsPerInstance",
        "target_value": 30500.0,
        "min_capacity": 1,
        "max_capacity": 4,
        "scale_in_cooldown": 300,
        "scale_out_cooldown": 60,
        "source": "inference recommender job rtb-adv-1, recommendation rtb-adv-1/00000002",
    }
    job = json.loads((tmp_path / "job.json").read_text())
    assert job["Status"] == "COMPLETED" and job["CreationTime"] == CREATED.isoformat()


@pytest.mark.parametrize(
    ("objective", "first"),
    [("cost", "ml.c7i.large"), ("latency", "ml.c6i.large"), ("throughput", "ml.c6i.xlarge")],
)
def test_objective_orders_the_table(
    stubs: Stubs, tmp_path: Path, objective: str, first: str
) -> None:
    name = "rtb-adv-1"
    stubs.describe(describe(name, "COMPLETED", results=ADVANCED_RESULTS))
    stubs.steps(name, [])
    best = {"cost": 2, "latency": 4, "throughput": 3}[objective]
    stubs.sagemaker.add_response(
        "get_scaling_configuration_recommendation",
        scaling_response(name, f"rtb-adv-1/{best:08x}", 1000.0),
        {"InferenceRecommendationsJobName": name, "RecommendationId": f"rtb-adv-1/{best:08x}"},
    )
    argv = ["--from-job", name, "--objective", objective, "--output-dir", str(tmp_path)]
    assert run(stubs, argv) == 0
    rows = read_csv(tmp_path / "recommendations.csv")
    assert rows[0]["instance_type"] == first


def test_the_scaling_file_is_what_deploy_autoscale_reads(stubs: Stubs, tmp_path: Path) -> None:
    queue_advanced(stubs)
    assert run(stubs, advanced_argv("rtb-adv-1", tmp_path)) == 0
    read = AutoscaleSuggestion.read(tmp_path / "autoscaling.json")
    assert read.metric == "SageMakerVariantInvocationsPerInstance"
    assert read.target_value == 30500.0
    assert (read.min_capacity, read.max_capacity) == (1, 4)
    assert (read.scale_in_cooldown, read.scale_out_cooldown) == (300, 60)


def test_failed_steps_are_reported_and_the_job_still_answers(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_advanced(stubs, failed_step=True)
    assert run(stubs, advanced_argv("rtb-adv-1", tmp_path)) == 0
    captured = capsys.readouterr()
    assert (
        "benchmark failed on ml.c7i.large: ModelError: the container did not answer /ping"
        in captured.err
    )
    markdown = (tmp_path / "report.md").read_text()
    assert "## Benchmarks that did not complete (1 of 5)" in markdown
    assert (
        "| `ml.c7i.large` | SAGEMAKER_MODEL_SERVER_WORKERS=4 | FAILED | "
        "ModelError: the container did not answer /ping within 2 s |"
    ) in markdown


def test_failed_job_exits_1_with_its_reason_and_failed_steps(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rtb-adv-1"
    reason = "PayloadError: s3://rtb-bench/recommend/payload.tar.gz is not a gzip tar archive"
    stubs.created(name)
    stubs.describe(describe(name, "FAILED", failure=reason))
    failed: list[StepRow] = [
        ("FAILED", "ml.c6i.large", "2", "PayloadError: no sample payload could be read")
    ]
    stubs.steps(name, failed)
    # No scaling call is queued: a failed job must not ask for one (the Stubber would refuse it).
    assert run(stubs, advanced_argv(name, tmp_path)) == 1
    captured = capsys.readouterr()
    assert f"error: job {name} is FAILED: {reason}" in captured.err
    assert (
        "benchmark failed on ml.c6i.large: PayloadError: no sample payload could be read"
        in captured.err
    )
    markdown = (tmp_path / "report.md").read_text()
    assert f"- Failure reason: {reason}" in markdown
    assert "No recommendations: the job returned none." in markdown
    assert "No scaling recommendation: the job did not complete." in markdown
    assert not (tmp_path / "cost_vs_latency.png").exists()
    assert not (tmp_path / "autoscaling.json").exists()


def test_aws_errors_exit_1_with_the_code(stubs: Stubs, capsys: pytest.CaptureFixture[str]) -> None:
    stubs.sagemaker.add_client_error(
        "create_inference_recommendations_job",
        service_error_code="ResourceLimitExceeded",
        service_message="You have reached the limit of concurrent Inference Recommender jobs.",
        http_status_code=400,
    )
    argv = ["--model-package-arn", PACKAGE_ARN, "--role", ROLE, "--job-name", "rtb-x", "--no-wait"]
    assert run(stubs, argv) == 1
    err = capsys.readouterr().err
    assert (
        "CreateInferenceRecommendationsJob: ResourceLimitExceeded: You have reached the limit"
        in err
    )


def test_wait_gives_up_at_the_timeout_and_says_how_to_resume(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rtb-slow"
    stubs.created(name)
    stubs.describe(describe(name, "IN_PROGRESS", job_type="Default"))
    stubs.steps(name, [])
    argv = ["--model-package-arn", PACKAGE_ARN, "--role", ROLE, "--job-name", name,
            "--poll-interval", "30", "--timeout", "10"]  # fmt: skip
    assert run(stubs, argv) == 1
    assert f"fetch it later with --from-job {name}" in capsys.readouterr().err


def test_interrupting_the_wait_leaves_the_job_running_and_says_how_to_resume(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(recommend, "wait_for_job", interrupted)
    stubs.created("rtb-int")
    argv = ["--model-package-arn", PACKAGE_ARN, "--role", ROLE, "--job-name", "rtb-int"]
    assert run(stubs, argv) == 130
    assert "report it later with --from-job rtb-int" in capsys.readouterr().err


def test_steps_follow_next_token(stubs: Stubs, tmp_path: Path) -> None:
    name = "rtb-adv-1"
    stubs.describe(describe(name, "IN_PROGRESS"))
    first = steps_response(name, [("COMPLETED", "ml.c6i.large", "1", None)])
    first["NextToken"] = "page-2"
    stubs.sagemaker.add_response(
        "list_inference_recommendations_job_steps", first,
        {"JobName": name, "StepType": "BENCHMARK", "MaxResults": 100},
    )  # fmt: skip
    stubs.sagemaker.add_response(
        "list_inference_recommendations_job_steps",
        steps_response(name, [("FAILED", "ml.c6i.large", "4", "out of memory")]),
        {"JobName": name, "StepType": "BENCHMARK", "MaxResults": 100, "NextToken": "page-2"},
    )
    assert run(stubs, ["--from-job", name, "--output-dir", str(tmp_path)]) == 0
    assert (
        "| `ml.c6i.large` | SAGEMAKER_MODEL_SERVER_WORKERS=4 | FAILED | out of memory |"
        in (tmp_path / "report.md").read_text()
    )


def describe_model(
    status: str, recommendations: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    deployment: dict[str, Any] = {"RecommendationStatus": status}
    if recommendations is not None:
        deployment["RealTimeInferenceRecommendations"] = [
            {
                "RecommendationId": rid,
                "InstanceType": instance,
                "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
            }
            for rid, instance in recommendations
        ]
    return {
        "ModelName": "rtb-model",
        "CreationTime": CREATED,
        "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/rtb-model",
        "DeploymentRecommendation": deployment,
    }


def test_instant_recommendation_retries_while_in_progress(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    stubs.sagemaker.add_response(
        "describe_model", describe_model("IN_PROGRESS"), {"ModelName": "rtb-model"}
    )
    stubs.sagemaker.add_response(
        "describe_model", describe_model("IN_PROGRESS"), {"ModelName": "rtb-model"}
    )
    stubs.sagemaker.add_response(
        "describe_model",
        describe_model("COMPLETED", [("rec-1", "ml.c6i.large"), ("rec-2", "ml.c7i.large")]),
        {"ModelName": "rtb-model"},
    )
    assert run(stubs, ["--instant", "rtb-model", "--instant-interval", "0"]) == 0
    captured = capsys.readouterr()
    assert "## Instant recommendations for model `rtb-model`: COMPLETED" in captured.out
    assert "| rec-2 | `ml.c7i.large` | SAGEMAKER_MODEL_SERVER_WORKERS=2 |" in captured.out
    assert "(attempt 3/10)" in captured.err


def test_instant_recommendation_stops_after_the_attempt_budget(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        stubs.sagemaker.add_response(
            "describe_model", describe_model("IN_PROGRESS"), {"ModelName": "rtb-model"}
        )
    argv = ["--instant", "rtb-model", "--instant-interval", "0", "--instant-attempts", "2"]
    assert run(stubs, argv) == 0
    assert "Still IN_PROGRESS after 2 attempts" in capsys.readouterr().out


def test_dry_run_prints_every_call_and_makes_none(
    stubs: Stubs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Nothing is queued: any real call would raise inside the Stubber.
    argv = [*REGISTER_ARGS, "--job-name", "rtb-dry", "--instant", "rtb-model", "--dry-run"]
    argv += ["--check-metadata"]
    argv += ["--output-dir", str(tmp_path)]
    assert run(stubs, argv) == 0
    out = capsys.readouterr().out
    operations = re.findall(r"^(\w+\.\w+)", out, flags=re.MULTILINE)
    assert operations == [
        "sagemaker.list_model_metadata",
        "s3.put_object",
        "sagemaker.describe_model_package_group",
        "sagemaker.create_model_package_group",
        "sagemaker.create_model_package",
        "sagemaker.create_inference_recommendations_job",
        "sagemaker.describe_inference_recommendations_job",
        "sagemaker.list_inference_recommendations_job_steps",
        "sagemaker.get_scaling_configuration_recommendation",
        "sagemaker.describe_model",
    ]


def test_dry_run_needs_no_credentials_or_region(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for variable in (
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # Through the `python -m benchmark` dispatcher, with clients the command builds itself.
    assert dispatcher.main(["recommend", "--from-job", "rtb-adv-1", "--dry-run"]) == 0
    assert "sagemaker.describe_inference_recommendations_job" in capsys.readouterr().out


def test_capacity_file_puts_the_local_estimate_alongside(stubs: Stubs, tmp_path: Path) -> None:
    capacity = tmp_path / "capacity.json"
    capacity.write_text(json.dumps({
        "max_invocations_per_minute_per_worker": 20_000.0, "p99_bound_ms": 5.0, "workers": 2,
        "measured_at": "2026-11-25T10:00:00Z", "host": "ci-runner", "extra": "kept",
    }))  # fmt: skip
    name = "rtb-adv-1"
    stubs.completed(name)
    argv = ["--from-job", name, "--capacity", str(capacity), "--output-dir", str(tmp_path / "out")]
    assert run(stubs, argv) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert (
        "Locust against `ci-runner` (2026-11-25T10:00:00Z): 20,000 invocations per minute"
        in markdown
    )
    # ml.c6i.xlarge with 4 workers: 98000 / 4 = 24500 per worker, 1.23 x the local 20000.
    assert "| `ml.c6i.xlarge` | 4 | 98,000 | 24,500 | 20,000 | 1.23 | 3 |" in markdown


def test_a_refused_scaling_recommendation_still_writes_the_report(
    stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rtb-adv-1"
    stubs.describe(describe(name, "COMPLETED", results=ADVANCED_RESULTS))
    stubs.steps(name, [])
    stubs.sagemaker.add_client_error(
        "get_scaling_configuration_recommendation",
        service_error_code="ValidationException",
        service_message="Recommendation rtb-adv-1/00000002 cannot be scaled.",
        http_status_code=400,
    )
    assert run(stubs, ["--from-job", name, "--output-dir", str(tmp_path)]) == 0
    assert "warning: no scaling recommendation" in capsys.readouterr().err
    assert "cannot be scaled" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "autoscaling.json").exists()
    assert (tmp_path / "recommendations.csv").is_file()


def test_a_failing_poll_says_how_to_resume(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rtb-poll"
    stubs.created(name)
    stubs.sagemaker.add_client_error(
        "describe_inference_recommendations_job",
        service_error_code="ThrottlingException",
        http_status_code=400,
    )
    argv = ["--model-package-arn", PACKAGE_ARN, "--role", ROLE, "--job-name", name]
    assert run(stubs, argv) == 1
    err = capsys.readouterr().err
    assert f"may still be running: --from-job {name}" in err
    assert "DescribeInferenceRecommendationsJob: ThrottlingException" in err


def test_from_job_with_instant_puts_both_in_one_report(stubs: Stubs, tmp_path: Path) -> None:
    name = "rtb-adv-1"
    stubs.completed(name)
    stubs.sagemaker.add_response(
        "describe_model",
        describe_model("COMPLETED", [("rec-1", "ml.c6i.large")]),
        {"ModelName": "rtb-model"},
    )
    argv = ["--from-job", name, "--instant", "rtb-model", "--output-dir", str(tmp_path)]
    assert run(stubs, argv) == 0
    markdown = (tmp_path / "report.md").read_text()
    assert "## Recommendations (lowest cost per inference first)" in markdown
    assert "## Instant recommendations for model `rtb-model`: COMPLETED" in markdown
    assert "| rec-1 | `ml.c6i.large` | SAGEMAKER_MODEL_SERVER_WORKERS=2 |" in markdown


def metadata_page(entries: list[tuple[str, str]], token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "ModelMetadataSummaries": [
            {
                "Domain": "MACHINE_LEARNING",
                "Framework": "XGBOOST",
                "Task": "CLASSIFICATION",
                "Model": model,
                "FrameworkVersion": version,
            }
            for version, model in entries
        ]
    }
    if token:
        page["NextToken"] = token
    return page


METADATA_REQUEST = {
    "SearchExpression": {"Filters": [{"Name": "Framework", "Value": "XGBOOST"}]},
    "MaxResults": 100,
}


def test_check_metadata_accepts_a_benchmarked_version_then_registers(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    stubs.sagemaker.add_response(
        "list_model_metadata", metadata_page([("1.5", "xgboost")], token="next"), METADATA_REQUEST
    )
    stubs.sagemaker.add_response(
        "list_model_metadata",
        metadata_page([("1.7", "xgboost")]),
        {**METADATA_REQUEST, "NextToken": "next"},
    )
    stubs.registration(group_exists=True)
    argv = [*REGISTER_ARGS, "--register-only", "--check-metadata"]
    argv.remove("--role")
    argv.remove(ROLE)
    assert run(stubs, argv) == 0
    assert "XGBOOST 1.7 / xgboost: benchmarked by Inference Recommender" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--framework-version", "1.2"],
            "'1.2' is not one Inference Recommender knows for XGBOOST; choose one of 1.5, 1.7",
        ),
        (
            ["--nearest-model-name", "xgb"],
            "'xgb' is not benchmarked for XGBOOST 1.7; choose one of xgboost",
        ),
    ],
)
def test_check_metadata_refuses_an_unknown_pair_before_uploading(
    stubs: Stubs, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    stubs.sagemaker.add_response(
        "list_model_metadata",
        metadata_page([("1.5", "xgboost"), ("1.7", "xgboost")]),
        METADATA_REQUEST,
    )
    # Nothing else is queued: an upload or registration would fail inside the Stubber.
    argv = [*REGISTER_ARGS, "--job-name", "rtb-meta", "--check-metadata", *extra]
    assert run(stubs, argv) == 2
    err = capsys.readouterr().err
    assert message in err


def test_stop_job_stops_and_points_at_the_report(
    stubs: Stubs, capsys: pytest.CaptureFixture[str]
) -> None:
    stubs.sagemaker.add_response("stop_inference_recommendations_job", {}, {"JobName": "rtb-adv-1"})
    assert run(stubs, ["--stop-job", "rtb-adv-1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "stopping: rtb-adv-1\n"
    assert "--from-job rtb-adv-1" in captured.err


def test_stop_job_takes_no_other_mode(stubs: Stubs, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stubs, ["--stop-job", "rtb-adv-1", "--from-job", "rtb-adv-1"]) == 2
    assert "--stop-job only stops a job" in capsys.readouterr().err


# ---- the example in docs/recommend.md -------------------------------------------------------

EXAMPLE_BANNER = (
    "**Example, not a measurement**: rendered from the stubbed Advanced job in "
    "`tests/benchmark/test_recommend_cli.py`; every number is invented."
)
EXAMPLE_START = "<!-- example-report:start -->"
EXAMPLE_END = "<!-- example-report:end -->"


def example_report() -> str:
    job = describe("rtb-adv-1", "COMPLETED", results=ADVANCED_RESULTS)
    steps = steps_response(
        "rtb-adv-1", [("COMPLETED", i, w, None) for i, w, *_ in ADVANCED_RESULTS]
    )
    parsed = [Step.from_response(s) for s in copy.deepcopy(steps["Steps"])]
    parsed.append(
        Step.from_response(
            step("rtb-adv-1", "FAILED", "ml.c7i.large", "4", reason="ModelError: /ping timed out")
        )
    )
    report = Report(
        job=job,
        recommendations=ordered(from_job(job), objective="cost"),
        steps=parsed,
        objective="cost",
        scaling=suggestion_from_response(
            scaling_response("rtb-adv-1", "rtb-adv-1/00000002", 30_500.0)
        ),
        estimate=LocalEstimate(
            max_invocations_per_minute_per_worker=20_000.0,
            p99_bound_ms=5.0,
            workers=2,
            measured_at="2026-11-25T10:00:00Z",
            host="http://127.0.0.1:8080",
            path="results/capacity/capacity.json",
        ),
    )
    return render_markdown(report, banner=EXAMPLE_BANNER)


def test_docs_show_the_example_report_as_rendered() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "recommend.md"
    text = docs.read_text(encoding="utf-8")
    embedded = text.split(EXAMPLE_START, 1)[1].split(EXAMPLE_END, 1)[0]
    rendered = example_report().replace("# Inference Recommender", "### Inference Recommender", 1)
    rendered = rendered.replace("\n## ", "\n#### ")
    assert embedded.strip() == rendered.strip(), (
        "docs/recommend.md is stale: paste in what this module prints when run as a script"
    )


if __name__ == "__main__":
    print(
        example_report()
        .replace("# Inference Recommender", "### Inference Recommender", 1)
        .replace("\n## ", "\n#### ")
    )
