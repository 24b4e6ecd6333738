"""Endpoint status: state, variants, autoscaling range, and recent CloudWatch figures.

SageMaker publishes per-minute metrics in ``AWS/SageMaker`` with dimensions EndpointName and
VariantName; ModelLatency and OverheadLatency are in microseconds (shown here in milliseconds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from deploy import multi_model, scaling, validation
from deploy.endpoint import describe_endpoint, release_of
from deploy.errors import DeployError, is_not_found
from deploy.gateway import Gateway

NAMESPACE = "AWS/SageMaker"
SHOWN_MODELS = 10  # a multi-model endpoint's first models in the table (--json lists them all)
# (metric, statistic, label, scale): latencies are microseconds in CloudWatch.
QUERIES = (
    ("Invocations", "Sum", "invocations", 1.0),
    ("Invocation4XXErrors", "Sum", "errors_4xx", 1.0),
    ("Invocation5XXErrors", "Sum", "errors_5xx", 1.0),
    ("ModelLatency", "Average", "model_latency_avg_ms", 1e-3),
    ("ModelLatency", "Maximum", "model_latency_max_ms", 1e-3),
    ("OverheadLatency", "Average", "overhead_latency_avg_ms", 1e-3),
)


def metrics(
    gateway: Gateway,
    *,
    endpoint_name: str,
    variant_name: str,
    minutes: int,
    now: datetime | None = None,
) -> dict[str, float | None]:
    """Totals (Sum) or whole-window statistics (Average, Maximum) over the last ``minutes``."""
    if not 1 <= minutes <= 24 * 60 * 14:
        raise DeployError(f"--minutes must be 1-20160 (14 days), got {minutes}")
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": variant_name},
    ]
    queries = [
        {
            "Id": f"m{index}",
            "Label": label,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                "Period": minutes * 60,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for index, (metric, stat, label, _) in enumerate(QUERIES)
    ]
    response = gateway.call(
        "cloudwatch", "get_metric_data", MetricDataQueries=queries, StartTime=start, EndTime=end
    )
    results = {item["Id"]: item for item in response.get("MetricDataResults", [])}
    figures: dict[str, float | None] = {}
    for index, (_, stat, label, scale) in enumerate(QUERIES):
        values = [float(value) for value in results.get(f"m{index}", {}).get("Values", [])]
        if not values:
            figures[label] = 0.0 if stat == "Sum" else None
        elif stat == "Sum":
            figures[label] = sum(values) * scale
        elif stat == "Maximum":
            figures[label] = max(values) * scale
        else:
            figures[label] = sum(values) / len(values) * scale
    return figures


def status(gateway: Gateway, *, endpoint_name: str, minutes: int) -> dict[str, Any]:
    validation.check_name(endpoint_name, what="endpoint name")
    description = describe_endpoint(gateway, endpoint_name)
    if description is None:
        raise DeployError(f"endpoint {endpoint_name} does not exist")
    report: dict[str, Any] = {
        "endpoint_name": endpoint_name,
        "status": description.get("EndpointStatus"),
        "endpoint_config_name": description.get("EndpointConfigName"),
        "last_modified": str(description.get("LastModifiedTime", "")),
        "failure_reason": description.get("FailureReason"),
        "window_minutes": minutes,
        "mode": None,
        "variants": [],
    }
    variants = description.get("ProductionVariants") or []
    running = _running(gateway, description, variants)
    if running is not None:
        report["mode"] = running.get("Mode") or multi_model.SINGLE_MODEL
        report["model_data_url"] = running.get("ModelDataUrl")
        if report["mode"] == multi_model.MULTI_MODEL:
            hosted = multi_model.list_models(gateway, str(running["ModelDataUrl"]))
            report["models"] = [model.target_model for model in hosted]
    for variant in description.get("ProductionVariants", []):
        name = str(variant["VariantName"])
        entry: dict[str, Any] = {
            "variant_name": name,
            "current_instance_count": variant.get("CurrentInstanceCount"),
            "desired_instance_count": variant.get("DesiredInstanceCount"),
            "current_weight": variant.get("CurrentWeight"),
            "autoscaling": None,
        }
        state = scaling.snapshot(gateway, endpoint_name=endpoint_name, variant_name=name)
        if state is not None:
            entry["autoscaling"] = {
                "min_capacity": state.min_capacity,
                "max_capacity": state.max_capacity,
                "policies": [_policy_summary(policy) for policy in state.policies],
            }
        entry["metrics"] = metrics(
            gateway, endpoint_name=endpoint_name, variant_name=name, minutes=minutes
        )
        report["variants"].append(entry)
    return report


def _running(
    gateway: Gateway, description: dict[str, Any], variants: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The first variant's container, or None when its config or model is already gone."""
    if not variants:
        return None
    try:
        return release_of(gateway, description, str(variants[0]["VariantName"]))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def _policy_summary(policy: dict[str, Any]) -> dict[str, Any]:
    tracking = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    metric = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
    return {
        "name": policy.get("PolicyName"),
        "type": policy.get("PolicyType"),
        "metric": metric or ("custom" if tracking else None),
        "target_value": tracking.get("TargetValue"),
    }


def _figure(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.3f}"
    return str(value)


def render(report: dict[str, Any]) -> str:
    """A short human-readable report (``--json`` prints the dictionary instead)."""
    lines = [
        f"endpoint  {report['endpoint_name']}  {report['status']}",
        f"config    {report['endpoint_config_name']}  (modified {report['last_modified']})",
    ]
    if report.get("failure_reason"):
        lines.append(f"failure   {report['failure_reason']}")
    if report.get("mode") == multi_model.MULTI_MODEL:
        models = report.get("models") or []
        shown = ", ".join(models[:SHOWN_MODELS]) + (", ..." if len(models) > SHOWN_MODELS else "")
        lines.append(f"models    multi-model, {len(models)} under {report['model_data_url']}")
        if models:
            lines.append(f"          {shown}")
    elif report.get("mode"):
        lines.append(f"model     {report['mode']}  {report.get('model_data_url') or ''}".rstrip())
    for variant in report["variants"]:
        scaling_text = "no autoscaling"
        if variant["autoscaling"]:
            bounds = variant["autoscaling"]
            scaling_text = f"autoscaling {bounds['min_capacity']}-{bounds['max_capacity']}"
            for policy in bounds["policies"]:
                if policy["target_value"] is not None:
                    scaling_text += f", {policy['metric']} target {_figure(policy['target_value'])}"
        lines.append(
            f"variant   {variant['variant_name']}: {_figure(variant['current_instance_count'])} of "
            f"{_figure(variant['desired_instance_count'])} instances, {scaling_text}"
        )
        figures = variant["metrics"]
        lines.append(
            f"  last {report['window_minutes']} min: {_figure(figures['invocations'])} "
            "invocations, "
            f"{_figure(figures['errors_4xx'])} 4XX, {_figure(figures['errors_5xx'])} 5XX"
        )
        lines.append(
            f"  model latency avg {_figure(figures['model_latency_avg_ms'])} ms, max "
            f"{_figure(figures['model_latency_max_ms'])} ms; "
            f"overhead avg {_figure(figures['overhead_latency_avg_ms'])} ms"
        )
    return "\n".join(lines)
