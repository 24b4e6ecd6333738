"""Waiting for an endpoint: status line, stale answers after an update, failures, timeouts."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aws_fakes import client_error
from botocore.exceptions import ClientError

from deploy import progress
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
