"""The knee of a step-load run and the capacity it gives, written to `capacity.json`.

The knee is the step with the highest throughput whose p99 stayed under a bound without more
errors than allowed; divided by the server's worker count it is the capacity per worker. Both
`benchmark locust` (after every run) and `benchmark capacity` write it; `plots` marks it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmark.report import Run, Window

CAPACITY_FILE: Final = "capacity.json"
DEFAULT_P99_BOUND_MS: Final = 10.0


@dataclass(frozen=True)
class Capacity:
    host: str
    measured_at: str
    p99_bound_ms: float
    max_error_rate: float
    workers: int
    rows_per_request: int
    knee: Window | None
    steps: int
    source: str

    @property
    def within_bound(self) -> bool:
        return self.knee is not None

    @property
    def invocations_per_minute(self) -> float:
        return self.knee.rps * 60.0 if self.knee else 0.0

    @property
    def per_worker(self) -> float:
        return self.invocations_per_minute / self.workers

    def as_dict(self) -> dict[str, Any]:
        knee = self.knee
        return {
            "max_invocations_per_minute_per_worker": round(self.per_worker, 1),
            "p99_bound_ms": self.p99_bound_ms,
            "workers": self.workers,
            "measured_at": self.measured_at,
            "host": self.host,
            "within_bound": self.within_bound,
            "max_invocations_per_minute": round(self.invocations_per_minute, 1),
            "rows_per_request": self.rows_per_request,
            "users": knee.users if knee else None,
            "requests_per_second": round(knee.rps, 1) if knee else None,
            "p99_us": knee.latency.p99 if knee and knee.latency else None,
            "p50_us": knee.latency.p50 if knee and knee.latency else None,
            "max_error_rate": self.max_error_rate,
            "steps_measured": self.steps,
            "source": self.source,
        }


def knee(
    steps: Sequence[Window], *, p99_bound_ms: float, max_error_rate: float = 0.0
) -> Window | None:
    """The step with the most requests per second among those within the p99 and error bounds."""
    bound_us = p99_bound_ms * 1000.0
    eligible = [
        step
        for step in steps
        if step.latency is not None
        and step.latency.p99 <= bound_us
        and step.error_rate <= max_error_rate
    ]
    return max(eligible, key=lambda step: step.rps, default=None)


def estimate(
    run: Run, *, p99_bound_ms: float, workers: int, max_error_rate: float = 0.0
) -> Capacity:
    """Capacity of `run`'s server at the bound; a run without steps counts as one step."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    steps = run.steps or (run.total,)
    started = run.started_at
    measured_at = (
        dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if started
        else "unknown"
    )
    return Capacity(
        host=run.host,
        measured_at=measured_at,
        p99_bound_ms=p99_bound_ms,
        max_error_rate=max_error_rate,
        workers=workers,
        rows_per_request=int(run.config.get("rows_per_request", 1)),
        knee=knee(steps, p99_bound_ms=p99_bound_ms, max_error_rate=max_error_rate),
        steps=len(steps),
        source=str(run.directory),
    )


def write_capacity(
    path: Path, capacity: Capacity, *, cost: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write `capacity.json` (with a `cost` section when given); returns the document."""
    document = capacity.as_dict()
    if cost is not None:
        document["cost"] = dict(cost)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return document
