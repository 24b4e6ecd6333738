"""Synthetic results directories, written the way the locustfile writes them, with known figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.latency import LatencyRecorder

START = 1_800_000_000.0


@dataclass(frozen=True)
class SyntheticStep:
    users: int
    seconds: int
    rps: int
    latency_us: int
    failures_per_second: int = 0
    server_us: int | None = None


def write_run(
    directory: Path,
    steps: Sequence[SyntheticStep],
    *,
    config: dict[str, object] | None = None,
    machine: dict[str, object] | None = None,
) -> Path:
    """Every request of a step takes `latency_us`; `rps` requests land in each of its seconds."""
    recorder = LatencyRecorder()
    timeline = []
    step_records = []
    now = START
    for index, step in enumerate(steps):
        step_records.append({"index": index, "users": step.users, "start": now, "end": None})
        for second in range(step.seconds):
            moment = now + second + 0.5
            for _ in range(step.rps):
                recorder.record_success(
                    timestamp=moment, latency_us=step.latency_us, server_us=step.server_us
                )
            for _ in range(step.failures_per_second):
                recorder.record_failure(timestamp=moment)
            timeline.append({"time": now + second, "users": step.users, "requests": 0})
        now += step.seconds
        step_records[-1]["end"] = now
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "format": "rtb-locust-latency",
        "format_version": 1,
        "unit": "us",
        "bucket_seconds": 1.0,
        "started_at": START,
        "stopped_at": now,
        "schedule": ",".join(f"{s.users}x{s.seconds}" for s in steps),
        "steps": step_records,
        "buckets": {str(i): b.to_json() for i, b in recorder.buckets().items()},
        "machine": machine or {},
        "config": {"host": "http://127.0.0.1:1", "rows_per_request": 1, **(config or {})},
    }
    (directory / "latency.json").write_text(json.dumps(document))
    (directory / "timeline.jsonl").write_text("".join(json.dumps(p) + "\n" for p in timeline))
    return directory


# Throughput grows, then p99 explodes: the knee at a 10 ms bound is the 4-user step.
CLIMB = (
    SyntheticStep(users=2, seconds=6, rps=100, latency_us=500, server_us=100),
    SyntheticStep(users=4, seconds=6, rps=180, latency_us=2_000, server_us=150),
    SyntheticStep(users=8, seconds=6, rps=200, latency_us=20_000, server_us=400),
)
