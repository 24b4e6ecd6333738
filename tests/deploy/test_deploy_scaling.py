"""Autoscaling arithmetic and policy building, without AWS."""

from __future__ import annotations

import pytest

from deploy import scaling, suggestion
from deploy.errors import DeployError


def test_target_from_max_rps_follows_aws_load_test_rule() -> None:
    assert scaling.target_from_max_rps(100) == 3000.0  # 100 x 0.5 x 60
    assert scaling.target_from_max_rps(100, 0.25) == 1500.0
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(DeployError):
            scaling.target_from_max_rps(bad)


def policy_from(**flags: object) -> scaling.Policy:
    return scaling.build_policy(scaling.PolicyFlags(**flags), recommendation=None)  # type: ignore[arg-type]


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
