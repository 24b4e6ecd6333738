"""The pieces without AWS: waiting, autoscaling arithmetic, tokens, row encoding, error messages."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aws_fakes import client_error
from botocore.exceptions import ClientError

from deploy import endpoint, image, invocation, progress, registry, scaling, suggestion
from deploy.errors import DeployError
from deploy.gateway import Gateway


class FakeEndpoint(Gateway):
    """DescribeEndpoint answers from a script; every other call is a bug in these tests."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__(region="us-east-1")
        self.answers = answers
        self.calls = 0

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        assert (service, operation) == ("sagemaker", "describe_endpoint")
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def wait(
    answers: list[Any], *, timeout: float = 600, expect_config: str | None = None
) -> tuple[dict[str, Any], str, Clock]:
    clock, err = Clock(), io.StringIO()
    final = progress.wait_for_endpoint(
        FakeEndpoint(answers),
        "ep",
        poll_interval=30,
        timeout=timeout,
        expect_config=expect_config,
        err=err,
        clock=clock.time,
        sleep=clock.sleep,
    )
    return final, err.getvalue(), clock


def test_after_an_update_a_lagging_in_service_answer_is_not_taken_as_done() -> None:
    old = {"EndpointStatus": "InService", "EndpointConfigName": "ep-old"}
    answers = [old, {"EndpointStatus": "Updating", "EndpointConfigName": "ep-old"},
               {"EndpointStatus": "InService", "EndpointConfigName": "ep-new"}]  # fmt: skip
    final, _, clock = wait(answers, expect_config="ep-new")
    assert final["EndpointConfigName"] == "ep-new"
    assert clock.slept == [30, 30]


def test_an_update_that_never_starts_ends_after_the_grace_period() -> None:
    old = {"EndpointStatus": "InService", "EndpointConfigName": "ep-old"}
    final, _, clock = wait([old] * 10, expect_config="ep-new")
    assert final["EndpointConfigName"] == "ep-old"  # update() then reports it as not applied
    assert sum(clock.slept) == progress.STALE_GRACE


def test_a_rollback_with_a_reason_is_final_at_once() -> None:
    rolled = {
        "EndpointStatus": "InService",
        "EndpointConfigName": "ep-old",
        "FailureReason": "alarm",
    }
    final, _, clock = wait([rolled], expect_config="ep-new")
    assert final["FailureReason"] == "alarm" and clock.slept == []


def test_waiting_polls_until_in_service_and_shows_status_and_elapsed() -> None:
    final, shown, clock = wait(
        [{"EndpointStatus": "Creating"}] * 3 + [{"EndpointStatus": "InService"}]
    )
    assert final["EndpointStatus"] == "InService"
    assert clock.slept == [30, 30, 30]
    # A line per change of state, and one a minute while it stays the same (for CI logs).
    assert shown.splitlines() == [
        "endpoint ep: Creating (0s)",
        "endpoint ep: Creating (1m00s)",
        "endpoint ep: InService (1m30s)",
    ]


def test_a_failed_endpoint_raises_with_the_failure_reason() -> None:
    with pytest.raises(
        DeployError, match="is Failed: The primary container did not pass the ping health check"
    ):
        wait(
            [
                {"EndpointStatus": "Creating"},
                {
                    "EndpointStatus": "Failed",
                    "FailureReason": "The primary container did not pass the ping health check",
                },
            ]
        )


def test_waiting_gives_up_at_the_timeout_and_says_the_endpoint_goes_on() -> None:
    with pytest.raises(DeployError, match=r"still Creating after 1m00s; it keeps going in AWS"):
        wait([{"EndpointStatus": "Creating"}] * 10, timeout=60)


def test_target_from_max_rps_follows_aws_load_test_rule() -> None:
    assert scaling.target_from_max_rps(100) == 3000.0  # 100 x 0.5 x 60
    assert scaling.target_from_max_rps(100, 0.25) == 1500.0
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(DeployError):
            scaling.target_from_max_rps(bad)


def test_ecr_tokens_decode_to_user_and_password() -> None:
    token = base64.b64encode(b"AWS:secret:with:colons").decode()
    assert registry.decode_token(token) == registry.Credentials("AWS", "secret:with:colons")
    for bad in (
        "not base64!",
        base64.b64encode(b"no-colon").decode(),
        base64.b64encode(b":x").decode(),
    ):
        with pytest.raises(DeployError, match="not base64 'user:password'"):
            registry.decode_token(bad)


def test_credentials_never_show_the_password() -> None:
    assert "hunter2" not in repr(registry.Credentials("AWS", "hunter2"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True), ("localhost", True),
     ("registry.example.com", False), ("10.0.0.1:5000", False),
     ("123456789012.dkr.ecr.us-east-1.amazonaws.com", False)],
)  # fmt: skip
def test_only_loopback_registries_are_plain_http(host: str, loopback: bool) -> None:
    assert registry.is_loopback(host) is loopback


def test_rows_encode_as_csv_and_json_with_missing_values() -> None:
    rows = invocation.read_rows(rows=["2,0,0.0,7.5,,20,2"], file=None)
    assert invocation.encode(rows, invocation.CSV) == b"2,0,0,7.5,,20,2\n"
    assert json.loads(invocation.encode(rows, invocation.JSON)) == {
        "instances": [[2, 0, 0, 7.5, None, 20, 2]]
    }


def test_the_six_mebibyte_limit_is_checked_before_sending() -> None:
    rows = [[1.0] * 100] * 40000
    with pytest.raises(DeployError, match="real-time limit"):
        invocation.encode(rows, invocation.CSV)


def test_answers_become_one_prediction_per_row() -> None:
    assert invocation.Answer(b"0.1\n0.2\n", "text/csv", "v").predictions() == ["0.1", "0.2"]
    document = json.dumps({"predictions": [{"score": 0.5}]}).encode()
    assert invocation.Answer(document, "application/json; charset=utf-8", "v").predictions() == [
        {"score": 0.5}
    ]
    with pytest.raises(DeployError, match="invalid JSON"):
        invocation.Answer(b"{", "application/json", "v").predictions()


def test_blue_green_deployment_config_shapes() -> None:
    linear = endpoint.BlueGreen(routing="linear", step_percent=25, wait_interval=60).to_api()
    routing = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 60,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert "AutoRollbackConfiguration" not in linear
    at_once = endpoint.BlueGreen().to_api()["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert at_once == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeployError, match="is not one of docker, podman"):
        image.detect_engine("containerd")
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(DeployError, match="no container engine"):
        image.detect_engine(environ={})
    with pytest.raises(DeployError, match="podman is not installed"):
        image.detect_engine(environ={"RTB_CONTAINER_ENGINE": "podman"})


def test_build_commands_give_sagemaker_a_docker_v2_single_platform_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    podman = image.Runner("podman", dry_run=True)
    image.build(
        podman, tag="t:1", context=tmp_path, dockerfile=dockerfile, build_args={"BASE_IMAGE": "b"}
    )
    assert capsys.readouterr().out.strip() == (
        "dry-run: podman build --format docker --platform linux/amd64 --tag t:1 "
        f"--file {dockerfile} "
        f"--build-arg BASE_IMAGE=b {tmp_path}"
    )
    docker = image.Runner("docker", dry_run=True)
    docker.has_buildx = lambda: True  # type: ignore[method-assign]
    image.build(docker, tag="t:1", context=tmp_path, dockerfile=dockerfile, platform="linux/arm64")
    line = capsys.readouterr().out
    assert (
        "docker buildx build --provenance=false --sbom=false --output type=docker "
        "--platform linux/arm64" in line
    )
    with pytest.raises(DeployError, match="is not one of linux/amd64, linux/arm64"):
        image.build(
            docker, tag="t:1", context=tmp_path, dockerfile=dockerfile, platform="linux/s390x"
        )


def test_base_image_build_arg_comes_from_the_environment_unless_given() -> None:
    assert image.default_build_args({}, {"RTB_BASE_IMAGE": "localhost/base"}) == {
        "BASE_IMAGE": "localhost/base"
    }
    assert image.default_build_args({"BASE_IMAGE": "x"}, {"RTB_BASE_IMAGE": "y"}) == {
        "BASE_IMAGE": "x"
    }
    assert image.default_build_args({}, {}) == {}


def policy_from(**flags: object) -> scaling.Policy:
    arguments: dict[str, object] = {
        "recommendation": None, "metric": None, "target_value": None, "max_rps": None,
        "safety_factor": None, "min_capacity": None, "max_capacity": None,
        "scale_in_cooldown": None, "scale_out_cooldown": None, "disable_scale_in": False,
    }  # fmt: skip
    arguments.update(flags)
    return scaling.build_policy(**arguments)  # type: ignore[arg-type]


def test_the_default_maximum_is_never_below_the_minimum() -> None:
    assert (
        policy_from(target_value=5.0).min_capacity,
        policy_from(target_value=5.0).max_capacity,
    ) == (1, 2)
    assert policy_from(target_value=5.0, min_capacity=3).max_capacity == 3
    with pytest.raises(DeployError, match="is below --min-capacity"):
        policy_from(target_value=5.0, min_capacity=3, max_capacity=2)


def test_max_rps_applies_only_to_invocations_per_instance() -> None:
    with pytest.raises(DeployError, match="does not apply"):
        policy_from(max_rps=100.0, metric=suggestion.CONCURRENCY)
    with pytest.raises(DeployError, match="only applies with --max-rps"):
        policy_from(target_value=5.0, safety_factor=0.5)


def test_engine_commands_that_hang_are_ended(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "podman"
    fake.write_text("#!/bin/sh\necho started\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(image, "COMMAND_TIMEOUT", 0.5)
    err = io.StringIO()
    with pytest.raises(DeployError, match="took longer than"):
        image.Runner("podman", err=err).run(["push", "x"])
    assert "started" in err.getvalue()


def test_engine_failures_carry_the_end_of_the_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "podman"
    fake.write_text(
        "#!/bin/sh\necho 'Error: unauthorized: authentication required' >&2\nexit 125\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(DeployError, match="failed with status 125: Error: unauthorized"):
        image.Runner("podman", err=io.StringIO()).run(["push", "x"])


def test_an_endpoint_not_yet_visible_after_create_is_waited_for() -> None:
    missing = client_error("ValidationException", "Could not find endpoint", "DescribeEndpoint")
    final, shown, clock = wait(
        [missing, {"EndpointStatus": "Creating"}, {"EndpointStatus": "InService"}]
    )
    assert final["EndpointStatus"] == "InService"
    assert clock.slept == [30, 30]


def test_an_endpoint_that_never_appears_is_an_error_after_the_grace_period() -> None:
    missing = client_error("ValidationException", "Could not find endpoint", "DescribeEndpoint")
    with pytest.raises(ClientError):
        wait([missing] * 10)
