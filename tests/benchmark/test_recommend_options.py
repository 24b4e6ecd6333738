"""What the recommend command checks itself, because botocore's client and Stubber do not.

Every bad option must exit 2 before the first AWS call: the clients here sit behind Stubbers with
nothing queued, so any call would fail the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from benchmark import recommend
from tests.deploy.aws_fakes import offline_clients

ROLE = "arn:aws:iam::123456789012:role/InferenceRecommender"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/rtb-xgboost/1"


@pytest.fixture
def clients() -> Iterator[dict[str, Any]]:
    """Clients whose every call fails: their Stubbers have nothing queued."""
    clients = offline_clients("sagemaker", "s3")
    with Stubber(clients["sagemaker"]), Stubber(clients["s3"]):
        yield clients


BASE = ["--model-package-arn", PACKAGE, "--role", ROLE, "--no-wait"]
ADVANCED = [*BASE, "--job-type", "Advanced", "--instance-type", "ml.c6i.large"]


def register(
    *,
    role: str | None = ROLE,
    image: str = "i",
    model_data: str = "s3://ok-bucket/m",
    payload_uri: str = "s3://ok-bucket/p",
) -> list[str]:
    """The options that register a new model package version, with one of them changed."""
    argv = [] if role is None else ["--role", role]
    return [*argv, "--image", image, "--model-data", model_data, "--payload-uri", payload_uri]


REGISTER = register()


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
        (register(payload_uri="s3://ok-bucket/prefix/"), "must name an object"),
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
        ([*ADVANCED, "--max-invocations", "0"], "--max-invocations must be at least 1"),
        ([*ADVANCED, "--flat-invocations", "stop"], "Continue, Stop"),
        ([*ADVANCED, "--max-tests", "2", "--max-parallel-tests", "3"], "cannot exceed --max-tests"),
        ([*BASE, "--description", "x" * 129], "at most 128 characters"),
        (["--role", ROLE, "--image", "img"], "needs --model-data, --payload-uri"),
        (register(model_data="s3://Bad_Bucket/m"), "--model-data"),
        (register(image="a b"), "--image"),
        ([*REGISTER, "--domain", "ML"], "--domain: 'ML'"),
        ([*REGISTER, "--task", "BINARY"], "--task: 'BINARY'"),
        ([*REGISTER, "--framework", "xgboost"], "--framework: 'xgboost'"),
        ([*REGISTER, "--framework-version", "17"], "--framework-version"),
        ([*REGISTER, "--model-package-group", "rtb_group"], "--model-package-group"),
        ([*REGISTER, "--accept", "csv"], "--accept"),
        (register(role=None), "--role"),
        (["--from-job", "rtb_1"], "--from-job: 'rtb_1'"),
        (["--from-job", "rtb-1", "--image", "i"], "--from-job only reports"),
        (["--instant", "bad_model"], "--instant: 'bad_model'"),
        (["--register-only", "--model-package-arn", PACKAGE], "drop --model-package-arn"),
        ([*BASE, "--poll-interval", "-1"], "--poll-interval"),
        ([*BASE, "--capacity", "/nonexistent/c.json"], "cannot read /nonexistent/c.json"),
    ],
)
def test_bad_options_exit_2_before_any_call(
    clients: dict[str, Any], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
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


def test_a_bad_reference_file_exits_2(
    clients: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "reference.csv"
    bad.write_text("a,b\n1,2\n")
    argv = [*REGISTER, "--payload-reference", str(bad), "--no-wait"]
    assert recommend.main(argv, clients=clients) == 2
    assert "--payload-reference:" in capsys.readouterr().err
