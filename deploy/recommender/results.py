"""Recommendations as rows: read from a describe response, ordered by the user's objective."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

Objective = Literal["cost", "latency", "throughput"]
OBJECTIVES: Final[tuple[Objective, ...]] = get_args(Objective)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One endpoint configuration and what Inference Recommender measured on it.

    `max_invocations` is requests per minute at the plateau; `model_latency_ms` is the model
    latency there (milliseconds); utilisations are percentages (CPU summed over vCPUs).
    """

    recommendation_id: str | None
    instance_type: str
    instance_count: int | None
    environment: Mapping[str, str]
    cost_per_hour: float | None
    cost_per_inference: float | None
    max_invocations: int | None
    model_latency_ms: int | None
    cpu_utilization: float | None
    memory_utilization: float | None

    @property
    def environment_text(self) -> str:
        return " ".join(f"{key}={value}" for key, value in sorted(self.environment.items()))

    @property
    def workers(self) -> int | None:
        value = self.environment.get("SAGEMAKER_MODEL_SERVER_WORKERS")
        return int(value) if value is not None and value.isdigit() else None


def _number(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _integer(metrics: Mapping[str, Any], key: str) -> int | None:
    value = metrics.get(key)
    return None if value is None else int(value)


def from_job(job: Mapping[str, Any]) -> list[Recommendation]:
    """The job's `InferenceRecommendations`, in the order SageMaker returned them."""
    rows: list[Recommendation] = []
    for item in job.get("InferenceRecommendations", []):
        metrics: Mapping[str, Any] = item.get("Metrics", {})
        endpoint: Mapping[str, Any] = item.get("EndpointConfiguration", {})
        model: Mapping[str, Any] = item.get("ModelConfiguration", {})
        instance_type = endpoint.get("InstanceType")
        serverless = endpoint.get("ServerlessConfig")
        if instance_type is None:
            memory = serverless.get("MemorySizeInMB") if serverless else None
            instance_type = f"serverless-{memory}MB" if memory else "unknown"
        rows.append(
            Recommendation(
                recommendation_id=item.get("RecommendationId"),
                instance_type=instance_type,
                instance_count=endpoint.get("InitialInstanceCount"),
                environment={p["Key"]: p["Value"] for p in model.get("EnvironmentParameters", [])},
                cost_per_hour=_number(metrics, "CostPerHour"),
                cost_per_inference=_number(metrics, "CostPerInference"),
                max_invocations=_integer(metrics, "MaxInvocations"),
                model_latency_ms=_integer(metrics, "ModelLatency"),
                cpu_utilization=_number(metrics, "CpuUtilization"),
                memory_utilization=_number(metrics, "MemoryUtilization"),
            )
        )
    return rows


def ordered(rows: Sequence[Recommendation], *, objective: Objective) -> list[Recommendation]:
    """Best first: cheapest per inference, lowest latency, or most invocations per minute.

    Rows missing the deciding metric go last; ties fall back to cost per hour.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")

    def key(row: Recommendation) -> tuple[bool, float, float]:
        if objective == "cost":
            deciding = row.cost_per_inference
        elif objective == "latency":
            deciding = None if row.model_latency_ms is None else float(row.model_latency_ms)
        else:
            deciding = None if row.max_invocations is None else -float(row.max_invocations)
        tie = row.cost_per_hour if row.cost_per_hour is not None else math.inf
        return (deciding is None, deciding if deciding is not None else 0.0, tie)

    return sorted(rows, key=key)
