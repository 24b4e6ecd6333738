"""Application Auto Scaling for an endpoint variant: a scalable target, a target-tracking policy.

The target for ``SageMakerVariantInvocationsPerInstance`` (invocations per instance per minute)
follows AWS's load-test method: find the highest requests per second one instance sustains
within the latency budget (MAX_RPS), then target = MAX_RPS x SAFETY_FACTOR x 60, starting with
a safety factor of 0.5. The high-resolution alternative tracks
``SageMakerVariantConcurrentRequestsPerModelHighResolution`` (in-flight requests, every 10 s).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from deploy import validation
from deploy.errors import DeployError, is_not_found
from deploy.gateway import Gateway
from deploy.suggestion import INVOCATIONS, METRICS, AutoscaleSuggestion, Metric, as_metric

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
DEFAULT_SAFETY_FACTOR = 0.5


def resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def policy_name(endpoint_name: str, variant_name: str) -> str:
    return f"{endpoint_name}-{variant_name}-target-tracking"


def target_from_max_rps(max_rps: float, safety_factor: float = DEFAULT_SAFETY_FACTOR) -> float:
    """Invocations per instance per minute to track: MAX_RPS x SAFETY_FACTOR x 60."""
    if not math.isfinite(max_rps) or max_rps <= 0:
        raise DeployError(f"--max-rps must be a positive number, got {max_rps}")
    if not 0 < safety_factor <= 1:
        raise DeployError(f"--safety-factor must be in (0, 1], got {safety_factor}")
    return round(max_rps * safety_factor * 60, 2)


@dataclass(frozen=True, kw_only=True)
class Policy:
    metric: Metric = INVOCATIONS
    target_value: float
    min_capacity: int = 1
    max_capacity: int = 2  # unless min_capacity is higher
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60
    disable_scale_in: bool = False
    source: str = "command line"

    def validate(self) -> Policy:
        if self.metric not in METRICS:
            raise DeployError(f"metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if not math.isfinite(self.target_value) or self.target_value <= 0:
            raise DeployError(f"target value must be a positive number, got {self.target_value}")
        validation.check_positive(self.min_capacity, what="--min-capacity")
        if self.max_capacity < self.min_capacity:
            raise DeployError(
                f"--max-capacity ({self.max_capacity}) is below --min-capacity "
                f"({self.min_capacity})"
            )
        for name, value in (
            ("scale-in", self.scale_in_cooldown),
            ("scale-out", self.scale_out_cooldown),
        ):
            if not 0 <= value <= 86400:
                raise DeployError(f"{name} cooldown must be 0-86400 seconds, got {value}")
        return self


@dataclass(frozen=True, kw_only=True)
class PolicyFlags:
    """What ``autoscale`` was told on its command line; None is "not given"."""

    metric: str | None = None
    target_value: float | None = None
    max_rps: float | None = None
    safety_factor: float | None = None
    min_capacity: int | None = None
    max_capacity: int | None = None
    scale_in_cooldown: int | None = None
    scale_out_cooldown: int | None = None
    disable_scale_in: bool = False


def build_policy(flags: PolicyFlags, *, recommendation: AutoscaleSuggestion | None) -> Policy:
    """Flags override the recommendation file; exactly one way of giving the target must be used."""
    metric, target_value, max_rps = flags.metric, flags.target_value, flags.max_rps
    safety_factor = flags.safety_factor
    base: dict[str, Any] = {}
    if recommendation is not None:
        base = {key: value for key, value in asdict(recommendation).items() if value is not None}
    if target_value is not None and max_rps is not None:
        raise DeployError("give either --target-value or --max-rps, not both")
    if max_rps is not None:
        if (metric or INVOCATIONS) != INVOCATIONS:
            raise DeployError(
                f"--max-rps derives an {INVOCATIONS} target; it does not apply to {metric}"
            )
        base["metric"] = INVOCATIONS
        base["target_value"] = target_from_max_rps(
            max_rps, DEFAULT_SAFETY_FACTOR if safety_factor is None else safety_factor
        )
        base["source"] = f"max RPS {max_rps} x safety {safety_factor or DEFAULT_SAFETY_FACTOR} x 60"
    elif safety_factor is not None:
        raise DeployError("--safety-factor only applies with --max-rps")
    if target_value is not None:
        base["target_value"] = float(target_value)
        base["source"] = "command line"
    if metric is not None:
        base["metric"] = as_metric(metric)
    if "target_value" not in base:
        raise DeployError(
            "give the target: --max-rps N (measured), --target-value N, or --from-recommendation "
            "FILE"
        )
    for key in ("min_capacity", "max_capacity", "scale_in_cooldown", "scale_out_cooldown"):
        if getattr(flags, key) is not None:
            base[key] = getattr(flags, key)
    if "max_capacity" not in base:  # never below the minimum the user asked for
        base["max_capacity"] = max(Policy.max_capacity, int(base.get("min_capacity", 1)))
    policy = Policy(**base)
    if flags.disable_scale_in:
        policy = replace(policy, disable_scale_in=True)
    return policy.validate()


def apply(
    gateway: Gateway, *, endpoint_name: str, variant_name: str, policy: Policy
) -> dict[str, Any]:
    """Register the variant and put the target-tracking policy (both are upserts)."""
    validation.check_name(endpoint_name, what="endpoint name")
    validation.check_name(variant_name, what="variant name")
    policy.validate()
    resource = resource_id(endpoint_name, variant_name)
    gateway.call(
        "application-autoscaling",
        "register_scalable_target",
        ServiceNamespace=NAMESPACE,
        ResourceId=resource,
        ScalableDimension=DIMENSION,
        MinCapacity=policy.min_capacity,
        MaxCapacity=policy.max_capacity,
    )
    response = gateway.call(
        "application-autoscaling",
        "put_scaling_policy",
        PolicyName=policy_name(endpoint_name, variant_name),
        ServiceNamespace=NAMESPACE,
        ResourceId=resource,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": policy.target_value,
            "PredefinedMetricSpecification": {"PredefinedMetricType": policy.metric},
            "ScaleInCooldown": policy.scale_in_cooldown,
            "ScaleOutCooldown": policy.scale_out_cooldown,
            "DisableScaleIn": policy.disable_scale_in,
        },
    )
    return {
        "resource_id": resource,
        "policy_name": policy_name(endpoint_name, variant_name),
        "policy_arn": response.get("PolicyARN"),
        "metric": policy.metric,
        "target_value": policy.target_value,
        "min_capacity": policy.min_capacity,
        "max_capacity": policy.max_capacity,
        "scale_in_cooldown": policy.scale_in_cooldown,
        "scale_out_cooldown": policy.scale_out_cooldown,
        "source": policy.source,
    }


def _policies(gateway: Gateway, resource: str) -> list[dict[str, Any]]:
    policies: list[dict[str, Any]] = gateway.pages(
        "application-autoscaling",
        "describe_scaling_policies",
        "ScalingPolicies",
        ServiceNamespace=NAMESPACE,
        ResourceId=resource,
        ScalableDimension=DIMENSION,
    )
    return policies


def _gone_or_done(gateway: Gateway, operation: str, resource: str, **params: Any) -> bool:
    """Make a delete call on ``resource``; False when it was already gone."""
    try:
        gateway.call(
            "application-autoscaling",
            operation,
            ServiceNamespace=NAMESPACE,
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            **params,
        )
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        return False
    return True


def remove(gateway: Gateway, *, endpoint_name: str, variant_names: list[str]) -> list[str]:
    """Delete every scaling policy on the variants, then deregister them; already gone is fine."""
    removed: list[str] = []
    for variant_name in variant_names:
        resource = resource_id(endpoint_name, variant_name)
        for policy in _policies(gateway, resource):
            name = policy["PolicyName"]
            if _gone_or_done(gateway, "delete_scaling_policy", resource, PolicyName=name):
                removed.append(f"scaling policy {name}")
        if _gone_or_done(gateway, "deregister_scalable_target", resource):
            removed.append(f"scalable target {resource}")
    return removed


@dataclass(frozen=True)
class Snapshot:
    """A variant's scalable target and policies, enough to put them back after an update."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    policies: tuple[dict[str, Any], ...]


_POLICY_KEYS = (
    "PolicyName",
    "PolicyType",
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
)


def snapshot(gateway: Gateway, *, endpoint_name: str, variant_name: str) -> Snapshot | None:
    """The variant's autoscaling now, or None when it is not a scalable target."""
    resource = resource_id(endpoint_name, variant_name)
    targets = gateway.call(
        "application-autoscaling",
        "describe_scalable_targets",
        ServiceNamespace=NAMESPACE,
        ResourceIds=[resource],
        ScalableDimension=DIMENSION,
    ).get("ScalableTargets", [])
    if not targets:
        return None
    kept = tuple(
        {key: policy[key] for key in _POLICY_KEYS if key in policy}
        for policy in _policies(gateway, resource)
    )
    return Snapshot(
        resource_id=resource,
        min_capacity=int(targets[0]["MinCapacity"]),
        max_capacity=int(targets[0]["MaxCapacity"]),
        policies=kept,
    )


def restore(gateway: Gateway, state: Snapshot) -> None:
    """Register the target again and put every policy back as it was."""
    gateway.call(
        "application-autoscaling",
        "register_scalable_target",
        ServiceNamespace=NAMESPACE,
        ResourceId=state.resource_id,
        ScalableDimension=DIMENSION,
        MinCapacity=state.min_capacity,
        MaxCapacity=state.max_capacity,
    )
    for policy in state.policies:
        gateway.call(
            "application-autoscaling",
            "put_scaling_policy",
            ServiceNamespace=NAMESPACE,
            ResourceId=state.resource_id,
            ScalableDimension=DIMENSION,
            **policy,
        )
