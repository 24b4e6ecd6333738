"""Waiting for an endpoint to settle, with a status line that shows the state and the time spent."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from botocore.exceptions import ClientError

from deploy.errors import DeployError, is_not_found
from deploy.gateway import Gateway

# States an endpoint passes through on its way to InService (create, update, rollback).
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
FAILED = frozenset({"Failed", "OutOfService", "UpdateRollbackFailed"})
# How long an InService answer naming the old config may be DescribeEndpoint lagging an update.
STALE_GRACE = 60.0


def elapsed_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def wait_for_endpoint(
    gateway: Gateway,
    endpoint_name: str,
    *,
    poll_interval: float,
    timeout: float,
    err: TextIO | None = None,
    expect_config: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll DescribeEndpoint until it leaves the transitional states; return the last description.

    Raises DeployError with SageMaker's FailureReason when the endpoint ends Failed, and when
    ``timeout`` seconds pass first (the endpoint keeps going in AWS; the message says so).

    With ``expect_config`` (after UpdateEndpoint), an InService answer that still names the old
    config, without a FailureReason and before any transitional state was seen, is taken as not
    yet updated (DescribeEndpoint can lag the update) for up to ``STALE_GRACE`` seconds.
    """
    err = err or sys.stderr
    interactive = err.isatty()
    start = clock()
    last_status = ""
    last_line = start
    moved = False  # seen a transitional state since the request
    while True:
        elapsed = clock() - start
        try:
            description = gateway.call("sagemaker", "describe_endpoint", EndpointName=endpoint_name)
        except ClientError as exc:
            # Right after CreateEndpoint, DescribeEndpoint may not know the endpoint yet.
            if not is_not_found(exc) or elapsed >= STALE_GRACE:
                raise
            sleep(min(poll_interval, STALE_GRACE - elapsed) or 1.0)
            continue
        status = str(description.get("EndpointStatus", "Unknown"))
        line = f"endpoint {endpoint_name}: {status} ({elapsed_text(elapsed)})"
        if interactive:
            print(
                f"\r{line}\033[K", end="" if status in TRANSITIONAL else "\n", file=err, flush=True
            )
        elif status != last_status or clock() - last_line >= 60:
            print(line, file=err, flush=True)
            last_line = clock()
        last_status = status
        moved = moved or status in TRANSITIONAL
        if status == "InService":
            stale = (
                expect_config is not None
                and description.get("EndpointConfigName") != expect_config
                and not description.get("FailureReason")
                and not moved
                and elapsed < STALE_GRACE
            )
            if not stale:
                return description
            sleep(min(poll_interval, STALE_GRACE - elapsed))
            continue
        if status in FAILED:
            reason = description.get("FailureReason") or "SageMaker gave no FailureReason"
            raise DeployError(
                f"endpoint {endpoint_name} is {status}: {reason}\n"
                "  (the container's CloudWatch logs are in /aws/sagemaker/Endpoints/"
                + endpoint_name
                + ")"
            )
        if status not in TRANSITIONAL:
            raise DeployError(f"endpoint {endpoint_name} is in unexpected state {status!r}")
        if elapsed >= timeout:
            raise DeployError(
                f"endpoint {endpoint_name} still {status} after {elapsed_text(elapsed)}; it keeps "
                "going in AWS. "
                f"Check later with `python -m deploy status --endpoint-name {endpoint_name}`"
            )
        sleep(min(poll_interval, max(timeout - elapsed, 0.0)))
