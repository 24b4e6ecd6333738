"""Instant recommendations: the `DeploymentRecommendation` SageMaker attaches to a model.

SageMaker computes up to three instance suggestions when a model is created; the field reads
IN_PROGRESS for a while, then COMPLETED, FAILED or NOT_APPLICABLE. We retry a bounded number of
times while it is IN_PROGRESS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy import validation
from deploy.errors import InvalidInputError
from deploy.gateway import Gateway
from deploy.multi_model import MULTI_MODEL


@dataclass(frozen=True, slots=True)
class InstantRecommendation:
    recommendation_id: str
    instance_type: str
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstantResult:
    model_name: str
    status: str
    recommendations: tuple[InstantRecommendation, ...]
    attempts: int


def from_response(model_name: str, response: Mapping[str, Any], *, attempts: int) -> InstantResult:
    deployment: Mapping[str, Any] = response.get("DeploymentRecommendation") or {}
    items = tuple(
        InstantRecommendation(
            recommendation_id=item["RecommendationId"],
            instance_type=item["InstanceType"],
            environment=dict(item.get("Environment", {})),
        )
        for item in deployment.get("RealTimeInferenceRecommendations", [])
    )
    return InstantResult(
        model_name=model_name,
        status=deployment.get("RecommendationStatus", "NOT_APPLICABLE"),
        recommendations=items,
        attempts=attempts,
    )


def fetch_instant(
    gateway: Gateway,
    model_name: str,
    *,
    attempts: int,
    interval_s: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> InstantResult:
    """describe_model until the recommendation leaves IN_PROGRESS, at most `attempts` times."""
    validation.check_name(model_name, what="--instant")
    validation.check_positive(attempts, what="--instant-attempts")
    result = InstantResult(
        model_name=model_name, status="IN_PROGRESS", recommendations=(), attempts=0
    )
    for attempt in range(1, attempts + 1):
        response = gateway.call(
            "sagemaker",
            "describe_model",
            note=f"repeated while IN_PROGRESS, at most {attempts} times",
            ModelName=model_name,
        )
        container = response.get("PrimaryContainer") or {}
        if container.get("Mode") == MULTI_MODEL:
            raise InvalidInputError(
                f"--instant: model {model_name} is a multi-model model (Mode MultiModel); "
                "SageMaker Inference Recommender does not support multi-model endpoints"
            )
        result = from_response(model_name, response, attempts=attempt)
        if gateway.mode == "offline":  # printed, not called: nothing to wait for
            return result
        progress(
            f"instant recommendation for {model_name}: {result.status} "
            f"(attempt {attempt}/{attempts})"
        )
        if result.status != "IN_PROGRESS":
            break
        if attempt < attempts:
            sleep(interval_s)
    return result
