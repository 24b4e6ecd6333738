"""The report on any answer SageMaker may give: missing metrics, NaN, serverless rows, no rows."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.recommender.report import (
    CSV_COLUMNS,
    Report,
    render_csv,
    render_markdown,
    render_plot,
    write_report,
)
from deploy.recommender.job import Step
from deploy.recommender.results import OBJECTIVES, Recommendation, from_job, ordered

optional_float = st.one_of(st.none(), st.just(math.nan), st.floats(0, 1e4, allow_nan=False))
optional_int = st.one_of(st.none(), st.integers(0, 10_000_000))
instance = st.sampled_from(["ml.c6i.large", "ml.c7i.large", "ml.m5.xlarge", "ml.c6i.2xlarge"])


@st.composite
def recommendations(draw: st.DrawFn) -> dict[str, Any]:
    metrics = {
        key: value
        for key, value in {
            "CostPerHour": draw(optional_float),
            "CostPerInference": draw(optional_float),
            "MaxInvocations": draw(optional_int),
            "ModelLatency": draw(optional_int),
            "CpuUtilization": draw(optional_float),
            "MemoryUtilization": draw(optional_float),
        }.items()
        if value is not None
    }
    endpoint: dict[str, Any] = {"EndpointName": "e", "VariantName": "v"}
    if draw(st.booleans()):
        endpoint["InstanceType"] = draw(instance)
        endpoint["InitialInstanceCount"] = draw(st.integers(1, 4))
    else:
        endpoint["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 10}
    workers = draw(st.sampled_from([None, "1", "2", "4", "auto"]))
    model: dict[str, Any] = {}
    if workers is not None:
        model["EnvironmentParameters"] = [
            {"Key": "SAGEMAKER_MODEL_SERVER_WORKERS", "ValueType": "String", "Value": workers}
        ]
    return {
        "RecommendationId": draw(st.text("abcdef0123456789/", min_size=1, max_size=12)),
        "Metrics": metrics,
        "EndpointConfiguration": endpoint,
        "ModelConfiguration": model,
    }


def deciding(row: Recommendation, objective: str) -> float | None:
    if objective == "cost":
        return row.cost_per_inference
    if objective == "latency":
        return None if row.model_latency_ms is None else float(row.model_latency_ms)
    return None if row.max_invocations is None else -float(row.max_invocations)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(recommendations(), max_size=10), objective=st.sampled_from(OBJECTIVES))
def test_any_answer_orders_and_renders(items: list[dict[str, Any]], objective: str) -> None:
    rows = ordered(from_job({"InferenceRecommendations": items}), objective=objective)
    values = [deciding(row, objective) for row in rows]
    present = [value for value in values if value is not None]
    assert present == sorted(present)
    assert values[: len(present)] == present  # rows without the metric come last
    for row in rows:  # NaN never survives parsing
        for value in (row.cost_per_hour, row.cost_per_inference, row.cpu_utilization):
            assert value is None or not math.isnan(value)

    table = list(csv.reader(io.StringIO(render_csv(rows))))
    assert table[0] == list(CSV_COLUMNS) and len(table) == len(rows) + 1
    job = {
        "JobName": "j",
        "JobType": "Default",
        "Status": "COMPLETED",
        "InferenceRecommendations": items,
    }
    report = Report(job=job, recommendations=rows, steps=(), objective=objective)
    markdown = render_markdown(report)
    assert sum(
        line.startswith("| ") and line[2].isdigit() for line in markdown.splitlines()
    ) == len(rows)


def row(cost: float | None, latency: int | None) -> Recommendation:
    return Recommendation(
        recommendation_id="r",
        instance_type="ml.c6i.large",
        instance_count=1,
        environment={},
        cost_per_hour=0.1,
        cost_per_inference=cost,
        max_invocations=1000,
        model_latency_ms=latency,
        cpu_utilization=None,
        memory_utilization=None,
    )


def test_no_plot_without_cost_and_latency(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    assert not render_plot([row(None, 3), row(1e-7, None)], path, title="t")
    assert not path.exists()


def test_a_single_free_point_still_plots(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    assert render_plot([row(0.0, 0)], path, title="t")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_rerun_removes_stale_plot_and_scaling_files(tmp_path: Path) -> None:
    (tmp_path / "cost_vs_latency.png").write_bytes(b"old")
    (tmp_path / "autoscaling.json").write_text("{}")
    failed = Step(
        status="FAILED",
        instance_type="ml.c6i.large",
        instance_count=1,
        environment={},
        failure_reason="x",
        metrics={},
    )
    job = {"JobName": "j", "Status": "FAILED"}
    files = write_report(
        Report(job=job, recommendations=(), steps=(failed,), objective="cost"), tmp_path
    )
    assert files.plot is None and files.scaling is None
    assert not (tmp_path / "cost_vs_latency.png").exists()
    assert not (tmp_path / "autoscaling.json").exists()


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_heading_names_the_objective(objective: str) -> None:
    report = Report(job={"JobName": "j"}, recommendations=(), steps=(), objective=objective)
    heading = next(
        line for line in render_markdown(report).splitlines() if line.startswith("## Rec")
    )
    assert {"cost": "cost", "latency": "latency", "throughput": "invocations"}[objective] in heading
