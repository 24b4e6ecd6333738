"""The results of one Locust run, read back from its directory and summarised.

`load_run(directory)` reads what the locustfile wrote (`latency.json`: per-second HDR histograms of
client latency and server time, the load steps as they really ran; `timeline.jsonl`: users and
counts once a second) and computes the whole-run figures, per-step figures (each step's first
seconds, while users ramp up, left out) and a per-second timeline. `write_summary` renders
`summary.md` and `summary.json`; every latency is in microseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from benchmark import latency
from benchmark.latency import Bucket, Percentiles

LATENCY_FILE: Final = "latency.json"
TIMELINE_FILE: Final = "timeline.jsonl"
SUMMARY_MD: Final = "summary.md"
SUMMARY_JSON: Final = "summary.json"
PERCENTILES_CSV: Final = "latency_percentiles.csv"


class ResultsError(Exception):
    """A results directory is missing files or holds something this version cannot read."""


@dataclass(frozen=True)
class Window:
    """Figures over a span of time: a whole run, one load step, or one second."""

    start: float
    seconds: float
    users: int
    requests: int
    failures: int
    latency: Percentiles | None
    server: Percentiles | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        total = self.requests + self.failures
        return self.failures / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "seconds": round(self.seconds, 3),
            "users": self.users,
            "requests": self.requests,
            "failures": self.failures,
            "requests_per_second": round(self.rps, 1),
            "latency": self.latency.as_dict() if self.latency else None,
            "server": self.server.as_dict() if self.server else None,
        }


@dataclass(frozen=True)
class Run:
    directory: Path
    config: dict[str, Any]
    total: Window
    steps: tuple[Window, ...]
    seconds: tuple[Window, ...]
    histogram: HdrHistogram
    started_at: float | None
    machine: dict[str, Any]

    @property
    def host(self) -> str:
        return str(self.config.get("endpoint_name") or self.config.get("host") or "unknown")


def load_run(directory: str | Path, *, settle_seconds: float = 1.0) -> Run:
    """Read a results directory; `settle_seconds` at the start of each step are left out of it."""
    path = Path(directory)
    document = _read_latency(path / LATENCY_FILE)
    width = float(document["bucket_seconds"])
    buckets: dict[int, Bucket] = {}
    for index, data in document["buckets"].items():
        bucket = Bucket()
        bucket.add_json(data)
        buckets[int(index)] = bucket
    timeline = _read_timeline(path / TIMELINE_FILE)
    steps = [s for s in document.get("steps", []) if s.get("end") is not None]
    step_windows = tuple(
        _window(
            buckets,
            width,
            start=float(s["start"]) + settle_seconds,
            end=float(s["end"]),
            users=int(s["users"]),
        )
        for s in steps
    )
    unfinished = [s for s in document.get("steps", []) if s.get("end") is None]
    if steps:
        start, end = float(steps[0]["start"]), float(steps[-1]["end"])
        if unfinished and document.get("stopped_at"):  # interrupted: count up to the stop
            end = max(end, float(document["stopped_at"]))
    elif buckets:
        start, end = min(buckets) * width, (max(buckets) + 1) * width
    else:
        start = end = 0.0
    whole = _window(buckets, width, start=start, end=end, users=_max_users(steps), whole=True)
    histogram = latency.merged(b.latency for b in buckets.values())
    per_second = tuple(
        _window(
            {index: bucket},
            width,
            start=index * width,
            end=(index + 1) * width,
            users=_users_at(timeline, (index + 0.5) * width),
            whole=True,
        )
        for index, bucket in sorted(buckets.items())
    )
    return Run(
        directory=path,
        config=dict(document.get("config", {})),
        total=whole,
        steps=step_windows,
        seconds=per_second,
        histogram=histogram,
        started_at=document.get("started_at"),
        machine=dict(document.get("machine") or {}),
    )


def _read_latency(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(
            f"{path} is missing: is this a `benchmark locust` results directory?"
        ) from None
    except ValueError as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    if document.get("format") != "rtb-locust-latency" or document.get("format_version") != 1:
        raise ResultsError(f"{path} is not a version 1 rtb-locust-latency file")
    return document


def _read_timeline(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            points.append(json.loads(line))
        except ValueError:
            continue  # a line cut short when the run was killed
    return points


def _users_at(timeline: list[dict[str, Any]], when: float) -> int:
    users = 0
    for point in timeline:
        if float(point["time"]) > when:
            break
        users = int(point["users"])
    return users


def _max_users(steps: list[dict[str, Any]]) -> int:
    return max((int(s["users"]) for s in steps), default=0)


def _window(
    buckets: dict[int, Bucket],
    width: float,
    *,
    start: float,
    end: float,
    users: int,
    whole: bool = False,
) -> Window:
    """Merge the buckets whose midpoint lies within [start, end) (every bucket when `whole`).

    A bucket straddling a step boundary counts in the step holding most of it.
    """
    if whole:
        chosen = list(buckets.values())
        seconds = end - start
    else:
        first = math.ceil(start / width - 0.5)
        last = math.ceil(end / width - 0.5)  # buckets first..last-1
        chosen = [buckets[i] for i in range(first, last) if i in buckets]
        seconds = max(last - first, 0) * width
    histogram = latency.merged(b.latency for b in chosen)
    server = latency.merged(b.server for b in chosen)
    return Window(
        start=start,
        seconds=seconds,
        users=users,
        requests=sum(b.requests for b in chosen),
        failures=sum(b.failures for b in chosen),
        latency=Percentiles.of(histogram),
        server=Percentiles.of(server),
    )


def write_summary(run: Run, *, extra: dict[str, Any] | None = None) -> Path:
    """Write summary.md, summary.json and latency_percentiles.csv into the run's directory."""
    summary = {
        "host": run.host,
        "config": run.config,
        "machine": run.machine,
        "total": run.total.as_dict(),
        "steps": [step.as_dict() for step in run.steps],
        **(extra or {}),
    }
    (run.directory / SUMMARY_JSON).write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    (run.directory / PERCENTILES_CSV).write_text(percentile_csv(run.histogram), encoding="utf-8")
    path = run.directory / SUMMARY_MD
    path.write_text(markdown(run, extra=extra), encoding="utf-8")
    return path


def percentile_csv(histogram: HdrHistogram) -> str:
    """The full percentile distribution (HdrHistogram's iterator, 5 ticks per half distance)."""
    lines = ["percentile,latency_us,count"]
    if histogram.get_total_count():
        for item in histogram.get_percentile_iterator(5):
            lines.append(
                f"{item.percentile_level_iterated_to:.5f},{item.value_iterated_to},"
                f"{item.total_count_to_this_value}"
            )
    return "\n".join(lines) + "\n"


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def latency_row(label: str, window: Window) -> str:
    p = window.latency
    cells = [p.p50, p.p90, p.p99, p.p999, p.max] if p else [None] * 5
    return (
        "| "
        + " | ".join(
            [label, f"{window.rps:,.0f}", *(_us(c) for c in cells), f"{window.failures:,}"]
        )
        + " |"
    )


def _machine_notes(machine: dict[str, Any]) -> list[str]:
    notes = []
    if machine.get("cpus"):
        start = machine.get("load_average_at_start") or ["?"]
        end = machine.get("load_average_at_end") or ["?"]
        notes += [
            "",
            f"Machine: {machine['cpus']} CPU(s), 1-minute load average {start[0]} at the start "
            f"and {end[0]} at the end (load generator and server share them).",
        ]
    if machine.get("load_generator_cpu_above_90_percent"):
        notes += [
            "",
            "**Warning:** a Locust process ran above 90 % CPU: the load generator, not the",
            "server, may be the limit, and its own queueing inflates these latencies. Add Locust",
            "worker processes (`--workers`) or another machine.",
        ]
    return notes


def markdown(run: Run, *, extra: dict[str, Any] | None = None) -> str:
    config = run.config
    total = run.total
    lines = [
        f"# Locust run against `{run.host}`",
        "",
        f"{config.get('rows_per_request', 1)} row(s) per request, `{config.get('content_type')}`, "
        f"{total.users} user(s) at most, {total.seconds:.0f} s, "
        f"{config.get('workers') or 'no'} Locust worker process(es); "
        f"{total.requests:,} successful requests, {total.failures:,} failed "
        f"({total.error_rate:.2%}).",
        "",
        "Latency is measured by the load generator in µs (HDR histogram, 3 significant digits),",
        "from sending the request to reading the whole response; it includes the client's own",
        "overhead (a few hundred µs for Locust's FastHttpUser, more for boto3).",
        "",
        "| window | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | failures |",
        "|---|---|---|---|---|---|---|---|",
        latency_row("whole run", total),
    ]
    lines += [
        latency_row(f"step {i + 1}: {s.users} user{'' if s.users == 1 else 's'}", s)
        for i, s in enumerate(run.steps)
    ]
    lines += _machine_notes(run.machine)
    if total.server is not None:
        server = total.server
        lines += [
            "",
            "Server-side time (from the `Server-Timing` header), and what the rest of the path",
            "(network, HTTP, client) adds at the median:",
            "",
            "| count | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | client p50 − server p50 |",
            "|---|---|---|---|---|---|---|",
            f"| {server.count:,} | {_us(server.p50)} | {_us(server.p90)} | {_us(server.p99)} | "
            f"{_us(server.p999)} | {_us(server.max)} | "
            f"{_us(total.latency.p50 - server.p50) if total.latency else '–'} |",
        ]
    else:
        lines += ["", "The server reported no `Server-Timing` header: no server-side time."]
    capacity = (extra or {}).get("capacity")
    if capacity:
        lines += [
            "",
            "## Capacity",
            "",
            f"Best step with p99 ≤ {capacity['p99_bound_ms']:g} ms: "
            + (
                f"{capacity['requests_per_second']:,.0f} req/s at {capacity['users']} users, "
                f"{capacity['max_invocations_per_minute_per_worker']:,.0f} invocations per minute "
                f"per server worker ({capacity['workers']} worker(s))."
                if capacity.get("within_bound")
                else "none; no step kept p99 under the bound."
            ),
        ]
    lines += [
        "",
        "Files: `latency.json` (per-second HDR histograms, mergeable),",
        "`latency_percentiles.csv`, `timeline.jsonl`, Locust's own `locust_*.csv` and",
        "`locust.json`, `capacity.json`, and the plots `*.png`.",
        "",
    ]
    return "\n".join(lines)
