"""The report: a CSV, a Markdown page, a PNG scatter and the autoscaling JSON, in one directory."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from benchmark.recommender.estimate import LocalEstimate
from deploy.recommender.instant import InstantResult
from deploy.recommender.job import Step
from deploy.recommender.results import Objective, Recommendation
from deploy.suggestion import AutoscaleSuggestion

CSV_NAME: Final = "recommendations.csv"
MARKDOWN_NAME: Final = "report.md"
PLOT_NAME: Final = "cost_vs_latency.png"
SCALING_NAME: Final = "autoscaling.json"
JOB_NAME_FILE: Final = "job.json"

CSV_COLUMNS: Final = (
    "rank",
    "recommendation_id",
    "instance_type",
    "instance_count",
    "environment",
    "cost_per_hour_usd",
    "cost_per_inference_usd",
    "max_invocations_per_minute",
    "model_latency_ms",
    "cpu_utilization_pct",
    "memory_utilization_pct",
)
OBJECTIVE_TEXT: Final = {
    "cost": "lowest cost per inference first",
    "latency": "lowest model latency first",
    "throughput": "most invocations per minute first",
}


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one report shows; `job` is the describe response (datetimes allowed)."""

    job: Mapping[str, Any]
    recommendations: Sequence[Recommendation]
    steps: Sequence[Step]
    objective: Objective
    scaling: AutoscaleSuggestion | None = None
    scaling_note: str | None = None
    estimate: LocalEstimate | None = None
    instant: InstantResult | None = None


@dataclass(frozen=True, slots=True)
class ReportFiles:
    csv: Path
    markdown: Path
    plot: Path | None
    scaling: Path | None
    job: Path


def _cell(value: object) -> str:
    if value is None:
        return "–"
    return str(value)


def _money(value: float | None, *, scale: float = 1.0, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value * scale:.{digits}f}"


def _significant(value: float | None, *, scale: float) -> str:
    return "–" if value is None else f"{value * scale:.4g}"


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return _cell(value)


def _duration(job: Mapping[str, Any]) -> str:
    start, end = job.get("CreationTime"), job.get("CompletionTime")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return "–"
    minutes, seconds = divmod(int((end - start).total_seconds()), 60)
    return f"{minutes} min {seconds:02d} s"


def render_csv(rows: Sequence[Recommendation]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, row in enumerate(rows, start=1):
        writer.writerow(
            [
                rank,
                row.recommendation_id or "",
                row.instance_type,
                "" if row.instance_count is None else row.instance_count,
                row.environment_text,
                "" if row.cost_per_hour is None else repr(row.cost_per_hour),
                "" if row.cost_per_inference is None else repr(row.cost_per_inference),
                "" if row.max_invocations is None else row.max_invocations,
                "" if row.model_latency_ms is None else row.model_latency_ms,
                "" if row.cpu_utilization is None else repr(row.cpu_utilization),
                "" if row.memory_utilization is None else repr(row.memory_utilization),
            ]
        )
    return buffer.getvalue()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report, *, banner: str | None = None) -> str:
    job = report.job
    lines = [f"# Inference Recommender: {job.get('JobName', '?')}", ""]
    if banner:
        lines += [f"> {banner}", ""]
    lines += [
        f"- Job: {job.get('JobType', '?')}, **{job.get('Status', '?')}**, "
        f"created {_when(job.get('CreationTime'))}, ran {_duration(job)}",
        f"- Model package: `{job.get('InputConfig', {}).get('ModelPackageVersionArn', '–')}`",
    ]
    if job.get("FailureReason"):
        lines.append(f"- Failure reason: {job['FailureReason']}")
    lines += ["", f"## Recommendations ({OBJECTIVE_TEXT[report.objective]})", ""]
    if report.recommendations:
        lines += _table(
            (
                "#",
                "instance",
                "count",
                "environment",
                "$ / hour",
                "$ / 1M inferences",
                "max invocations / min",
                "model latency ms",
                "CPU %",
                "memory %",
            ),
            [
                (
                    str(rank),
                    f"`{row.instance_type}`",
                    _cell(row.instance_count),
                    row.environment_text or "–",
                    _money(row.cost_per_hour),
                    _significant(row.cost_per_inference, scale=1e6),
                    _count(row.max_invocations),
                    _cell(row.model_latency_ms),
                    _percent(row.cpu_utilization),
                    _percent(row.memory_utilization),
                )
                for rank, row in enumerate(report.recommendations, start=1)
            ],
        )
        lines += [
            "",
            "Max invocations is the per-minute rate where throughput stopped growing; model "
            "latency is measured at that rate; CPU % is summed over the instance's vCPUs.",
        ]
    else:
        lines.append("No recommendations: the job returned none.")
    failed = [step for step in report.steps if step.status != "COMPLETED"]
    if failed:
        lines += [
            "",
            f"## Benchmarks that did not complete ({len(failed)} of {len(report.steps)})",
            "",
        ]
        lines += _table(
            ("instance", "environment", "status", "reason"),
            [
                (
                    f"`{step.instance_type or '?'}`",
                    " ".join(f"{k}={v}" for k, v in sorted(step.environment.items())) or "–",
                    step.status,
                    step.failure_reason or "–",
                )
                for step in failed
            ],
        )
    lines += ["", "## Suggested autoscaling", ""]
    if report.scaling is not None:
        s = report.scaling
        lines += [
            f"Target {s.target_value:g} `{s.metric}` (invocations per instance per minute), "
            f"{s.min_capacity}–{s.max_capacity} instances, "
            f"scale-in cooldown {s.scale_in_cooldown} s, "
            f"scale-out cooldown {s.scale_out_cooldown} s (from `{s.source}`).",
            "",
            f"Apply it with `python -m deploy autoscale --from-recommendation {SCALING_NAME}`.",
        ]
    else:
        lines.append(report.scaling_note or "No scaling recommendation was fetched.")
    if report.estimate is not None:
        lines += ["", *_side_by_side(report.estimate, report.recommendations)]
    if report.instant is not None:
        lines += ["", *_instant_section(report.instant)]
    return "\n".join(lines) + "\n"


def _side_by_side(estimate: LocalEstimate, rows: Sequence[Recommendation]) -> list[str]:
    local = estimate.max_invocations_per_minute_per_worker
    lines = [
        "## Local capacity estimate next to Inference Recommender",
        "",
        f"Locust against `{estimate.host}` ({estimate.measured_at}): {local:,.0f} invocations "
        f"per minute per worker with p99 ≤ {estimate.p99_bound_ms:g} ms, "
        f"{estimate.max_invocations_per_minute:,.0f} per minute with {estimate.workers} workers "
        f"(`{estimate.path}`)"
        + (
            f", {estimate.rows_per_request} rows per request."
            if estimate.rows_per_request not in (None, 1)
            else "."
        ),
        "",
        "Different hardware and a different latency bound: read the ratio as a sanity check, not a "
        "prediction.",
        "",
    ]
    table_rows = []
    for row in rows:
        workers = row.workers or estimate.workers
        if row.max_invocations is None:
            continue
        per_worker = row.max_invocations / workers
        table_rows.append(
            (
                f"`{row.instance_type}`",
                str(workers) + ("" if row.workers else " (local)"),
                f"{row.max_invocations:,}",
                f"{per_worker:,.0f}",
                f"{local:,.0f}",
                f"{per_worker / local:.2f}",
                _cell(row.model_latency_ms),
            )
        )
    if table_rows:
        lines += _table(
            (
                "instance",
                "workers",
                "IR max invocations / min",
                "IR per worker",
                "local per worker",
                "IR / local",
                "IR model latency ms",
            ),
            table_rows,
        )
    else:
        lines.append("No recommendation reported MaxInvocations to compare with.")
    return lines


def render_instant(instant: InstantResult) -> str:
    """The instant-recommendation section on its own, for `--instant MODEL` without a job."""
    return "\n".join(_instant_section(instant)) + "\n"


def _instant_section(instant: InstantResult) -> list[str]:
    lines = [
        f"## Instant recommendations for model `{instant.model_name}`: {instant.status}",
        "",
    ]
    if instant.recommendations:
        lines += _table(
            ("recommendation", "instance", "environment"),
            [
                (
                    item.recommendation_id,
                    f"`{item.instance_type}`",
                    " ".join(f"{k}={v}" for k, v in sorted(item.environment.items())) or "–",
                )
                for item in instant.recommendations
            ],
        )
    elif instant.status == "IN_PROGRESS":
        lines.append(f"Still IN_PROGRESS after {instant.attempts} attempts; ask again later.")
    else:
        lines.append("SageMaker gave no instant recommendation for this model.")
    return lines


def render_plot(rows: Sequence[Recommendation], path: Path, *, title: str) -> bool:
    """Scatter of cost per 1M inferences vs model latency, throughput as size and colour.

    Points are labelled with their rank in `rows` (best first). Returns False, writing nothing,
    when no row has both cost and latency.
    """
    ranked = [
        (rank, row)
        for rank, row in enumerate(rows, start=1)
        if row.cost_per_inference is not None and row.model_latency_ms is not None
    ]
    if not ranked:
        return False
    from matplotlib.figure import Figure  # heavy; imported only when a plot is drawn
    from matplotlib.ticker import MaxNLocator

    costs = [(row.cost_per_inference or 0.0) * 1e6 for _, row in ranked]
    latencies = [float(row.model_latency_ms or 0) for _, row in ranked]
    throughput = [float(row.max_invocations or 0) for _, row in ranked]
    biggest = max(throughput) or 1.0
    sizes = [60.0 + 540.0 * value / biggest for value in throughput]
    figure = Figure(figsize=(8, 5.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    scatter = axes.scatter(
        costs, latencies, s=sizes, c=throughput, cmap="viridis", alpha=0.8, edgecolors="black"
    )
    for index, ((rank, row), x, y) in enumerate(zip(ranked, costs, latencies, strict=True)):
        label = f"#{rank} {row.instance_type.removeprefix('ml.')}"
        if row.workers is not None:
            label += f" w{row.workers}"
        # Alternate above and below so neighbours with equal latency do not overprint.
        offset = (10, 10) if index % 2 == 0 else (10, -16)
        axes.annotate(label, (x, y), textcoords="offset points", xytext=offset, fontsize=8)
    colorbar = figure.colorbar(scatter, ax=axes, pad=0.01)
    colorbar.set_label("max invocations / min (also marker size)")
    axes.set_xlabel("cost per 1M inferences (USD)")
    axes.set_ylabel("model latency (ms)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.margins(x=0.15, y=0.2)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if len(ranked) > 1 and max(costs) / max(min(costs), 1e-12) > 20:
        axes.set_xscale("log")
    figure.savefig(path, format="png")
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_report(report: Report, directory: Path) -> ReportFiles:
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / CSV_NAME
    csv_path.write_text(render_csv(report.recommendations), encoding="utf-8")
    markdown_path = directory / MARKDOWN_NAME
    markdown_path.write_text(render_markdown(report), encoding="utf-8")
    plot_path = directory / PLOT_NAME
    title = f"{report.job.get('JobName', '')}: cost vs latency (ranked by {report.objective})"
    plotted = render_plot(report.recommendations, plot_path, title=title)
    if not plotted:
        plot_path.unlink(missing_ok=True)  # never leave a stale plot from an earlier run
    scaling_path = directory / SCALING_NAME
    if report.scaling is not None:
        scaling_path.write_text(report.scaling.to_json(), encoding="utf-8")
    else:
        scaling_path.unlink(missing_ok=True)
    job_path = directory / JOB_NAME_FILE
    job_path.write_text(json.dumps(_jsonable(report.job), indent=2) + "\n", encoding="utf-8")
    return ReportFiles(
        csv=csv_path,
        markdown=markdown_path,
        plot=plot_path if plotted else None,
        scaling=scaling_path if report.scaling is not None else None,
        job=job_path,
    )
