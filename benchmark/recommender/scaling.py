"""The autoscaling suggestion from `get_scaling_configuration_recommendation`, as `deploy` reads it.

`python -m deploy autoscale --from-recommendation FILE` takes:
`{"metric": "SageMakerVariantInvocationsPerInstance", "target_value": 1234.0, "min_capacity": 1,
"max_capacity": 4, "scale_in_cooldown": 300, "scale_out_cooldown": 60, "source": "..."}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from benchmark.recommender import validation
from benchmark.recommender.errors import InvalidInputError, RecommenderError

METRIC: Final = "SageMakerVariantInvocationsPerInstance"
# Application Auto Scaling's defaults for SageMaker variants, used when the answer leaves them out.
DEFAULT_COOLDOWN_S: Final = 300


@dataclass(frozen=True, slots=True)
class AutoscaleSuggestion:
    metric: str
    target_value: float
    min_capacity: int
    max_capacity: int
    scale_in_cooldown: int
    scale_out_cooldown: int
    source: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def scaling_request(
    *,
    job_name: str,
    recommendation_id: str,
    target_cpu_per_core: int | None = None,
    min_invocations_per_minute: int | None = None,
    max_invocations_per_minute: int | None = None,
) -> dict[str, Any]:
    validation.check_job_name(job_name)
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
        if predefined.get("PredefinedMetricType") == METRIC and "TargetValue" in tracking:
            target = float(tracking["TargetValue"])
            break
    if target is None:
        raise RecommenderError(
            "the scaling recommendation has no target-tracking policy on "
            f"{METRIC}; nothing for deploy autoscale to use"
        )
    min_capacity = int(config.get("MinCapacity", 1))
    max_capacity = int(config.get("MaxCapacity", max(min_capacity, 1)))
    job = response.get("InferenceRecommendationsJobName", "?")
    if response.get("RecommendationId"):
        source = f"inference recommender job {job}, recommendation {response['RecommendationId']}"
    else:
        source = f"inference recommender job {job}, endpoint {response.get('EndpointName', '?')}"
    return AutoscaleSuggestion(
        metric=METRIC,
        target_value=target,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        scale_in_cooldown=int(config.get("ScaleInCooldown", DEFAULT_COOLDOWN_S)),
        scale_out_cooldown=int(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_S)),
        source=source,
    )


def fetch_suggestion(sagemaker: Any, request: Mapping[str, Any]) -> AutoscaleSuggestion:
    return suggestion_from_response(sagemaker.get_scaling_configuration_recommendation(**request))
