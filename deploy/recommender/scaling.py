"""The scaling recommendation for a finished job, as the `AutoscaleSuggestion` deploy reads.

`get_scaling_configuration_recommendation` answers with target-tracking policies; the first one on
`SageMakerVariantInvocationsPerInstance` becomes `autoscaling.json` (see `deploy.suggestion`),
which `python -m deploy autoscale --from-recommendation FILE` applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from deploy import validation
from deploy.errors import DeployError, InvalidInputError
from deploy.gateway import Gateway
from deploy.suggestion import INVOCATIONS, AutoscaleSuggestion

# Application Auto Scaling's default for SageMaker variants, used when the answer leaves it out.
DEFAULT_COOLDOWN_S: Final = 300


def scaling_request(
    *,
    job_name: str,
    recommendation_id: str,
    target_cpu_per_core: int | None = None,
    min_invocations_per_minute: int | None = None,
    max_invocations_per_minute: int | None = None,
) -> dict[str, Any]:
    validation.check_name(job_name, what="--job-name", max_length=validation.JOB_NAME_MAX)
    request: dict[str, Any] = {
        "InferenceRecommendationsJobName": job_name,
        "RecommendationId": recommendation_id,
    }
    if target_cpu_per_core is not None:
        if not 1 <= target_cpu_per_core <= 100:
            raise InvalidInputError(
                f"--target-cpu-per-core: must be 1-100 %, got {target_cpu_per_core}"
            )
        request["TargetCpuUtilizationPerCore"] = target_cpu_per_core
    objective = {
        key: value
        for key, value in (
            ("MinInvocationsPerMinute", min_invocations_per_minute),
            ("MaxInvocationsPerMinute", max_invocations_per_minute),
        )
        if value is not None
    }
    if objective:
        low = objective.get("MinInvocationsPerMinute", 0)
        high = objective.get("MaxInvocationsPerMinute", low)
        if low < 0 or high < low:
            raise InvalidInputError(
                "--expected-invocations: give MIN:MAX invocations per minute with 0 <= MIN <= MAX"
            )
        request["ScalingPolicyObjective"] = objective
    return request


def suggestion_from_response(response: Mapping[str, Any]) -> AutoscaleSuggestion:
    """Take the first target-tracking policy on a predefined InvocationsPerInstance metric."""
    config: Mapping[str, Any] = response.get("DynamicScalingConfiguration", {})
    target: float | None = None
    for policy in config.get("ScalingPolicies", []):
        tracking = policy.get("TargetTracking", {})
        predefined = tracking.get("MetricSpecification", {}).get("Predefined", {})
        if predefined.get("PredefinedMetricType") == INVOCATIONS and "TargetValue" in tracking:
            target = float(tracking["TargetValue"])
            break
    if target is None:
        raise DeployError(
            "the scaling recommendation has no target-tracking policy on "
            f"{INVOCATIONS}; nothing for deploy autoscale to use"
        )
    min_capacity = int(config.get("MinCapacity", 1))
    max_capacity = int(config.get("MaxCapacity", max(min_capacity, 1)))
    job = response.get("InferenceRecommendationsJobName", "?")
    if response.get("RecommendationId"):
        source = f"inference recommender job {job}, recommendation {response['RecommendationId']}"
    else:
        source = f"inference recommender job {job}, endpoint {response.get('EndpointName', '?')}"
    return AutoscaleSuggestion(
        metric=INVOCATIONS,
        target_value=target,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        scale_in_cooldown=int(config.get("ScaleInCooldown", DEFAULT_COOLDOWN_S)),
        scale_out_cooldown=int(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_S)),
        source=source,
    )


def fetch_suggestion(gateway: Gateway, request: Mapping[str, Any]) -> AutoscaleSuggestion:
    response = gateway.call("sagemaker", "get_scaling_configuration_recommendation", **request)
    return suggestion_from_response(response)
