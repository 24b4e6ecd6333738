"""What the recommend command checks itself, because botocore's client and Stubber do not.

Every bad option must exit 2 before the first AWS call: the clients here sit behind Stubbers with
nothing queued, so any call would fail the test.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.stub import Stubber

from benchmark import recommend
from benchmark.recommender import archive, validation
from benchmark.recommender.archive import build_archive, upload_request
from benchmark.recommender.calls import Caller
from benchmark.recommender.errors import InvalidInputError, RecommenderError
from benchmark.recommender.estimate import load_estimate
from benchmark.recommender.job import LoadTest, job_request
from benchmark.recommender.metadata import check_known
from benchmark.recommender.registry import group_exists
from benchmark.recommender.results import Recommendation, from_job, ordered
from benchmark.recommender.scaling import scaling_request, suggestion_from_response

ROLE = "arn:aws:iam::123456789012:role/InferenceRecommender"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/rtb-xgboost/1"


@pytest.fixture(scope="module")
def unstubbed() -> recommend.Clients:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return recommend.Clients(sagemaker=session.client("sagemaker"), s3=session.client("s3"))


@pytest.fixture
def clients(unstubbed: recommend.Clients) -> Iterator[recommend.Clients]:
    """Clients whose every call fails: their Stubbers have nothing queued."""
    with Stubber(unstubbed.sagemaker), Stubber(unstubbed.s3):
        yield unstubbed


BASE = ["--model-package-arn", PACKAGE, "--role", ROLE, "--no-wait"]
ADVANCED = [*BASE, "--job-type", "Advanced", "--instance-type", "ml.c6i.large"]
REGISTER = [
    "--role", ROLE, "--image", "i", "--model-data", "s3://ok-bucket/m", "--payload-uri", "s3://ok-bucket/p"
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*BASE, "--job-name", "rtb_job"], "--job-name: 'rtb_job'"),
        ([*BASE, "--job-name", "a" * 65], "must be 1-64"),
        ([*BASE, "--job-name=-rtb"], "--job-name"),
        ([*BASE, "--job-name", "rtb-"], "--job-name"),
        ([*BASE, "--job-type", "Bogus"], "--job-type: 'Bogus' is not one of Default, Advanced"),
        ([*BASE, "--role", "arn:aws:iam::12345:role/x"], "--role"),
        (
            [
                "--role",
                ROLE,
                "--model-package-arn",
                "arn:aws:sagemaker:us-east-1:1:model-package/x/1",
            ],
            "--model-package-arn",
        ),
        ([*BASE, "--instance-type", "ml.c6i.large"], "--instance-type: load-test options need"),
        ([*BASE, "--max-invocations", "0"], "--max-invocations: load-test options need"),
        ([*BASE, "--image", "i"], "drop --image, --model-data, --payload-uri"),
        (
            ["--role", ROLE, "--image", "i", "--model-data", "s3://ok-bucket/m"]
            + ["--payload-uri", "s3://ok-bucket/prefix/"],
            "must name an object",
        ),
        ([*REGISTER, "--register-only", "--job-type", "Advanced"], "starts no job"),
        ([*BASE, "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=1,2"], "--env: load-test options need"),
        ([*BASE, "--job-type", "Advanced"], "at least one instance type"),
        ([*ADVANCED, "--instance-type", "c5.large"], "'c5.large' is not an instance type"),
        ([*ADVANCED, "--instance-type", "ml.zz9.large"], "not a SageMaker real-time instance type"),
        ([*ADVANCED, "--instance-type", "ml.t2.medium"], "burstable"),
        ([*ADVANCED, "--instance-type", "ml.c6i.large"], "given twice"),
        (
            [
                *ADVANCED,
                "--instance-type",
                ",".join(
                    f"ml.c6i.{s}"
                    for s in (
                        "xlarge",
                        "2xlarge",
                        "4xlarge",
                        "8xlarge",
                        "12xlarge",
                        "16xlarge",
                        "24xlarge",
                        "32xlarge",
                    )
                ),
                "--instance-type",
                "ml.c7i.large,ml.c7i.xlarge",
            ],
            "at most 10 instance types",
        ),
        ([*ADVANCED, "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=1,2,4,8"], "give 1-3 values"),
        ([*ADVANCED, "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=0,2"], "positive integers"),
        ([*ADVANCED, "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=2,2"], "values repeat"),
        ([*ADVANCED, "--env", "A=1", "--env", "A=2"], "--env: A is given twice"),
        ([*ADVANCED, "--env", "1BAD=1"], "not an environment variable name"),
        ([*ADVANCED, *[f"--env=V{i}=1" for i in range(6)]], "at most 5 variables"),
        ([*ADVANCED, "--phase", "5:1:120"], "initial users must be 1-3"),
        ([*ADVANCED, "--phase", "1:1:60"], "duration must be 120-3600 s"),
        ([*ADVANCED, "--phase", "1:-1:120"], "spawn rate must be >= 0"),
        (
            [*ADVANCED, "--phase", "1:1:3600", "--job-duration", "1800"],
            "longer than --job-duration",
        ),
        ([*ADVANCED, "--stairs", "60:5:4"], "users per step must be 1-3"),
        (
            [*ADVANCED, "--stairs", "600:10:1", "--job-duration", "3600"],
            "longer than --job-duration",
        ),
        ([*ADVANCED, "--job-duration", "20000"], "--job-duration: must be 1-18000"),
        ([*ADVANCED, "--max-latency-ms", "20", "--latency-percentile", "P90"], "P95, P99"),
        ([*ADVANCED, "--max-invocations", "0"], "--max-invocations: must be >= 1"),
        ([*ADVANCED, "--flat-invocations", "stop"], "Continue, Stop"),
        ([*ADVANCED, "--max-tests", "2", "--max-parallel-tests", "3"], "cannot exceed --max-tests"),
        ([*BASE, "--description", "x" * 129], "at most 128 characters"),
        (["--role", ROLE, "--image", "img"], "needs --model-data, --payload-uri"),
        (
            [
                "--role",
                ROLE,
                "--image",
                "i",
                "--model-data",
                "s3://Bad_Bucket/m",
                "--payload-uri",
                "s3://ok-bucket/p",
            ],
            "--model-data",
        ),
        (
            [
                "--role",
                ROLE,
                "--image",
                "a b",
                "--model-data",
                "s3://ok-bucket/m",
                "--payload-uri",
                "s3://ok-bucket/p",
            ],
            "--image",
        ),
        ([*REGISTER, "--domain", "ML"], "--domain: 'ML'"),
        ([*REGISTER, "--task", "BINARY"], "--task: 'BINARY'"),
        ([*REGISTER, "--framework", "xgboost"], "--framework: 'xgboost'"),
        ([*REGISTER, "--framework-version", "17"], "--framework-version"),
        ([*REGISTER, "--model-package-group", "rtb_group"], "--model-package-group"),
        ([*REGISTER, "--accept", "csv"], "--accept"),
        (
            [
                "--image",
                "i",
                "--model-data",
                "s3://ok-bucket/m",
                "--payload-uri",
                "s3://ok-bucket/p",
            ],
            "--role",
        ),
        (["--from-job", "rtb_1"], "--job-name: 'rtb_1'"),
        (["--from-job", "rtb-1", "--image", "i"], "--from-job only reports"),
        (["--instant", "bad_model"], "--instant: 'bad_model'"),
        (["--register-only", "--model-package-arn", PACKAGE], "drop --model-package-arn"),
        ([*BASE, "--poll-interval", "-1"], "--poll-interval"),
        ([*BASE, "--capacity", "/nonexistent/c.json"], "cannot read /nonexistent/c.json"),
    ],
)
def test_bad_options_exit_2_before_any_call(
    clients: recommend.Clients, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert recommend.main(argv, clients=clients) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--phase", "1:2"],
        ["--stairs", "a:b:c"],
        ["--env", "NOVALUE"],
        ["--expected-invocations", "5"],
    ],
)
def test_malformed_option_values_are_argparse_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        recommend.main([*ADVANCED, *argv])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("name", ["a", "rtb-adv-1", "A1--b2", "x" * 64])
def test_valid_job_names_pass(name: str) -> None:
    assert validation.check_job_name(name) == name


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


def test_archive_is_reproducible_and_seeded() -> None:
    first = build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=3)
    assert (
        first.data == build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=3).data
    )
    assert (
        first.data != build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=4).data
    )
    assert first.members == tuple(f"request-{i:03d}.csv" for i in range(5))


def test_npy_archive_members_load_as_float32_rows() -> None:
    payload = build_archive(content_type="application/x-npy", files=2, rows_per_file=4, seed=0)
    with tarfile.open(fileobj=io.BytesIO(payload.data), mode="r:gz") as tar:
        member = tar.extractfile("request-000.npy")
        assert member is not None
        array = np.load(io.BytesIO(member.read()), allow_pickle=False)
    assert array.shape == (4, 7) and array.dtype == np.float32


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"content_type": "text/plain", "files": 1, "rows_per_file": 1}, "not served"),
        ({"content_type": "text/csv", "files": 0, "rows_per_file": 1}, "--payload-files"),
        ({"content_type": "text/csv", "files": 1, "rows_per_file": 0}, "--payload-rows"),
    ],
)
def test_archive_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build_archive(seed=0, **options)


def test_a_request_body_above_the_invocation_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The row cap keeps real bodies far below 6 MiB; lower the limit to see the check bite.
    assert archive.MAX_BODY_BYTES == 6 * 1024 * 1024
    monkeypatch.setattr(archive, "MAX_BODY_BYTES", 100)
    build_archive(content_type="text/csv", files=1, rows_per_file=1, seed=0)
    with pytest.raises(InvalidInputError, match="above SageMaker's 100-byte limit"):
        build_archive(content_type="text/csv", files=1, rows_per_file=50, seed=0)


def test_archive_rows_can_come_from_a_reference_file(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text(
        "dow,hour,IndexAdvertiserID,IndexDomain,IndexRegionID,IndexCityID,device_type_id,probability\n"
        "2,0,0,7,3,20,2,0.00084757\n"
        "5,13,1,,9,101,1,0.5\n"
    )
    payload = build_archive(
        content_type="text/csv", files=6, rows_per_file=2, seed=1, reference=reference
    )
    with tarfile.open(fileobj=io.BytesIO(payload.data), mode="r:gz") as tar:
        lines = {
            line
            for name in tar.getnames()
            for line in tar.extractfile(name).read().decode().splitlines()  # type: ignore[union-attr]
        }
    assert lines == {"2,0,0,7,3,20,2", "5,13,1,,9,101,1"}


def test_a_bad_reference_file_exits_2(
    clients: recommend.Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "reference.csv"
    bad.write_text("a,b\n1,2\n")
    argv = [*REGISTER, "--payload-reference", str(bad), "--no-wait"]
    assert recommend.main(argv, clients=clients) == 2
    assert "--payload-reference:" in capsys.readouterr().err


def test_upload_needs_an_object_key() -> None:
    payload = build_archive(content_type="text/csv", files=1, rows_per_file=1, seed=0)
    with pytest.raises(InvalidInputError, match="must name an object"):
        upload_request(payload, uri="s3://rtb-bench/prefix/")
    assert upload_request(payload, uri="s3://rtb-bench/a/p.tar.gz")["Key"] == "a/p.tar.gz"


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
    with pytest.raises(RecommenderError, match="no target-tracking policy"):
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"workers": 2, "p99_bound_ms": 5}',
            "'max_invocations_per_minute_per_worker' must be a number",
        ),
        (
            '{"workers": 0, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 1}',
            "'workers'",
        ),
        (
            '{"workers": true, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 1}',
            "'workers'",
        ),
        (
            '{"workers": 2, "p99_bound_ms": -5, "max_invocations_per_minute_per_worker": 1}',
            "must be positive",
        ),
        (
            '{"workers": 1, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 0,'
            ' "within_bound": false}',
            "no load step within its p99 bound",
        ),
    ],
)
def test_capacity_file_errors_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "capacity.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        load_estimate(path)


def test_group_lookup_reraises_errors_other_than_missing() -> None:
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "describe_model_package_group",
            service_error_code="AccessDeniedException",
            http_status_code=403,
        )
        with pytest.raises(ClientError, match="AccessDenied"):
            group_exists(sagemaker, "rtb-xgboost")


def test_dry_run_caller_checks_requests_against_the_service_model(
    clients: recommend.Clients,
) -> None:
    out = io.StringIO()
    caller = Caller(dry_run=True, stream=out)
    with pytest.raises(ParamValidationError, match="JobType"):
        caller(clients.sagemaker, "create_inference_recommendations_job", {"JobName": "x"})
    reply = caller(
        clients.sagemaker, "describe_model", {"ModelName": "m"}, placeholder={"ModelArn": "<arn>"}
    )
    assert reply == {"ModelArn": "<arn>"}
    assert out.getvalue().startswith("sagemaker.describe_model\n")


def test_metadata_check_with_no_benchmarked_model_says_so() -> None:
    with pytest.raises(InvalidInputError, match="lists no benchmarked model for 'PYTORCH'"):
        check_known([], framework="PYTORCH", framework_version="2.1", nearest_model_name="resnet50")
