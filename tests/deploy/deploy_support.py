"""Constants and helpers the deploy tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_MODEL = REPO.parent / "shared" / "seed-model" / "model.tar.gz"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/rtb-inference-execution"
BUCKET = "rtb-artifacts-test"
IMAGE_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rtb-inference:test"


def require_or_skip(reason: str) -> None:
    """Skip with ``reason``, or fail when CI demands the container tests run."""
    if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
        pytest.fail(f"RTB_REQUIRE_CONTAINER=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Result:
    code: int
    out: str
    err: str


def deploy_flags(*extra: str) -> list[str]:
    return [
        "--region", REGION,
        "--endpoint-name", "rtb-test",
        "--role-arn", ROLE_ARN,
        "--bucket", BUCKET,
        "--poll-interval", "0",
        "--wait-timeout", "30",
        *extra,
    ]  # fmt: skip
