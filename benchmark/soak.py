"""`python -m benchmark soak`: hold a fraction of measured capacity for a long time.

Starts the server on the model, measures its capacity with a short closed-loop run
(unless `--rps` is given), then sends paced requests at `--fraction` of it for `--duration`
seconds from a separate process, sampling every worker's RSS once a second. Requests are
single-row CSV by default; `--rows N` and `--content-type` make it a bulk soak (N-row bodies,
rates in requests and rows per second).

It reports every request's outcome (so "zero errors" is a count, not a sample), p50/p99/p99.9
of the first and the last window (p99 drift), how late the generator sent (so a run that could
not hold its rate says so), and each worker's RSS growth from the first window to the last.

    python -m benchmark soak --model-dir build/default-model --duration 600 --fraction 0.7
    python -m benchmark soak --rows 1000 --fraction 0.5 --max-rss-growth-mib 10

Exit 0 when every request succeeded, the rate was held, and every worker grew by less than
`--max-rss-growth` (5 %) and, when given, by at most `--max-rss-growth-mib`; 1 otherwise.
The table goes to stdout, progress to stderr, and the whole report as JSON to `--json` when given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.payloads import CONTENT_TYPES, CSV, encode_rows, make_rows
from benchmark.server import RssSampler, ServerProcess
from benchmark.traffic import TrafficPlan, TrafficResult, encode_request, run_traffic, start_traffic

DEFAULT_MODEL_DIR = Path("build/default-model")
DISTINCT_ROWS = 8_000
"""Bulk bodies rotate among as many distinct bodies as fit in this many rows (at least one)."""


@dataclass(frozen=True, kw_only=True)
class SoakOptions:
    model_dir: Path
    duration_s: float = 600.0
    fraction: float = 0.7
    rps: float | None = None
    workers: int = 2
    connections: int = 32
    capacity_s: float = 10.0
    window_s: float = 60.0
    max_rss_growth: float = 0.05
    max_rss_growth_mib: float | None = None
    distinct_requests: int = 1000
    rows: int = 1
    """Rows per request."""
    content_type: str = CSV


@dataclass(frozen=True, kw_only=True)
class WindowFigures:
    start_s: float
    """Seconds after the soak began."""
    seconds: float
    requests: int
    errors: int
    p50_us: float | None
    p99_us: float | None
    p999_us: float | None


@dataclass(frozen=True, kw_only=True)
class WorkerMemory:
    pid: int
    first_mib: float
    last_mib: float

    @property
    def growth(self) -> float:
        return (self.last_mib - self.first_mib) / self.first_mib

    @property
    def growth_mib(self) -> float:
        return self.last_mib - self.first_mib


@dataclass(frozen=True, kw_only=True)
class SoakReport:
    workers: int
    rows_per_request: int
    content_type: str
    capacity_rps: float | None
    """Measured closed-loop capacity, or None when `--rps` was given."""
    target_rps: float
    achieved_rps: float
    duration_s: float
    requests: int
    outcomes: dict[str, int]
    errors: int
    send_lag_p99_ms: float
    sent_late: int
    """Requests that left more than a second after they were due (the generator fell behind)."""
    first: WindowFigures
    last: WindowFigures
    memory: list[WorkerMemory]
    worker_pids_changed: bool
    max_rss_growth: float
    max_rss_growth_mib: float | None
    """Absolute bound per worker, MiB; None when not asked for."""

    @property
    def rows(self) -> int:
        """Rows in successful requests."""
        return self.outcomes.get("200", 0) * self.rows_per_request

    @property
    def capacity_rows_per_s(self) -> float | None:
        return None if self.capacity_rps is None else self.capacity_rps * self.rows_per_request

    @property
    def target_rows_per_s(self) -> float:
        return self.target_rps * self.rows_per_request

    @property
    def achieved_rows_per_s(self) -> float:
        return self.achieved_rps * self.rows_per_request

    @property
    def p99_drift(self) -> float | None:
        if self.first.p99_us is None or self.last.p99_us is None:
            return None
        return self.last.p99_us / self.first.p99_us

    @property
    def rate_held(self) -> bool:
        return self.achieved_rps >= 0.95 * self.target_rps

    @property
    def memory_stable(self) -> bool:
        return bool(self.memory) and all(w.growth < self.max_rss_growth for w in self.memory)

    @property
    def memory_within_mib(self) -> bool | None:
        """Every worker grew by at most `max_rss_growth_mib` (None when no bound was given)."""
        if self.max_rss_growth_mib is None:
            return None
        limit = self.max_rss_growth_mib
        return bool(self.memory) and all(w.growth_mib <= limit for w in self.memory)

    @property
    def passed(self) -> bool:
        return (
            self.errors == 0
            and self.rate_held
            and self.memory_stable
            and self.memory_within_mib is not False
            and not self.worker_pids_changed
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["memory"] = [
            {**asdict(w), "growth": w.growth, "growth_mib": w.growth_mib} for w in self.memory
        ]
        data.update(
            rows=self.rows,
            capacity_rows_per_s=self.capacity_rows_per_s,
            target_rows_per_s=self.target_rows_per_s,
            achieved_rows_per_s=self.achieved_rows_per_s,
            p99_drift=self.p99_drift,
            rate_held=self.rate_held,
            memory_stable=self.memory_stable,
            memory_within_mib=self.memory_within_mib,
            passed=self.passed,
        )
        return data


def soak_requests(count: int, *, rows: int = 1, content_type: str = CSV) -> tuple[bytes, ...]:
    """Distinct realistic `rows`-row requests (seeded), as raw HTTP, answered in CSV.

    `count` of them, or fewer for bulk bodies: as many as fit in `DISTINCT_ROWS` rows, at
    least one, built once and sent in turn.
    """
    bodies = max(1, min(count, DISTINCT_ROWS // rows))
    table = make_rows(bodies * rows, seed=7)
    return tuple(
        encode_request(
            body=encode_rows(table[i * rows : (i + 1) * rows], content_type),
            headers=(("Content-Type", content_type), ("Accept", CSV)),
        )
        for i in range(bodies)
    )


def _window(result: TrafficResult, *, start: float, end: float, origin: float) -> WindowFigures:
    part = result.window(start, end)
    quantiles = part.percentiles_us((50, 99, 99.9))
    return WindowFigures(
        start_s=start - origin,
        seconds=end - start,
        requests=part.total,
        errors=part.total - int(part.ok().sum()),
        p50_us=quantiles.get("p50"),
        p99_us=quantiles.get("p99"),
        p999_us=quantiles.get("p99.9"),
    )


def measure_capacity(
    *, port: int, requests: tuple[bytes, ...], connections: int, seconds: float
) -> float:
    """Successful requests per second of a closed-loop run (the last 80 %, after warm-up)."""
    result = run_traffic(
        TrafficPlan(port=port, requests=requests, connections=connections, duration_s=seconds)
    )
    warm = result.started + 0.2 * (result.finished - result.started)
    return result.window(warm, result.finished).throughput()


def run_soak(options: SoakOptions, *, log_dir: Path, progress: Any = None) -> SoakReport:
    """Start the server, (measure capacity,) hold the target rate, and report."""
    say = progress or (lambda message: None)
    requests = soak_requests(
        options.distinct_requests, rows=options.rows, content_type=options.content_type
    )
    with ServerProcess(
        model_dir=options.model_dir, workers=options.workers, log_path=log_dir / "server.log"
    ) as server:
        server.wait_healthy(timeout=120)
        capacity: float | None = None
        if options.rps is None:
            say(f"measuring capacity for {options.capacity_s:g} s ...")
            capacity = measure_capacity(
                port=server.port,
                requests=requests,
                connections=options.connections,
                seconds=options.capacity_s,
            )
            target = capacity * options.fraction
            say(
                f"capacity {capacity:,.0f} req/s ({capacity * options.rows:,.0f} rows/s); "
                f"holding {target:,.0f} req/s ({target * options.rows:,.0f} rows/s)"
            )
        else:
            target = options.rps
            say(f"holding {target:,.0f} req/s ({target * options.rows:,.0f} rows/s)")
        pids_before = server.worker_pids()
        plan = TrafficPlan(
            port=server.port,
            requests=requests,
            connections=options.connections,
            duration_s=options.duration_s,
            rate=target,
            timeout_s=10.0,
        )
        with RssSampler(server, interval=1.0) as sampler, start_traffic(plan) as traffic:
            began = time.monotonic()
            result = traffic.result()
        pids_after = server.worker_pids()
    window = min(options.window_s, options.duration_s / 4)
    origin = result.started
    growth = sampler.growth(settle_until=began + min(5.0, window), window_s=window)
    return SoakReport(
        workers=options.workers,
        rows_per_request=options.rows,
        content_type=options.content_type,
        capacity_rps=capacity,
        target_rps=target,
        achieved_rps=result.throughput(),
        duration_s=result.finished - result.started,
        requests=result.total,
        outcomes=result.counts(),
        errors=result.total - int(result.ok().sum()),
        send_lag_p99_ms=result.lag_p99_ms(),
        sent_late=int(((result.sent - result.due) > 1.0).sum()),
        first=_window(result, start=origin, end=origin + window, origin=origin),
        last=_window(result, start=result.finished - window, end=result.finished, origin=origin),
        memory=[
            WorkerMemory(pid=pid, first_mib=first / 2**20, last_mib=last / 2**20)
            for pid, (first, last) in sorted(growth.items())
        ],
        worker_pids_changed=pids_before != pids_after,
        max_rss_growth=options.max_rss_growth,
        max_rss_growth_mib=options.max_rss_growth_mib,
    )


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _rate(report: SoakReport, rps: float) -> str:
    if report.rows_per_request == 1:
        return f"{rps:,.0f} req/s"
    return f"{rps:,.0f} req/s ({rps * report.rows_per_request:,.0f} rows/s)"


def render(report: SoakReport) -> str:
    lines = [
        f"soak: {report.workers} worker(s), {report.duration_s:,.0f} s",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    if report.rows_per_request != 1 or report.content_type != CSV:
        lines.append(f"| request | {report.rows_per_request:,} rows, {report.content_type} |")
    if report.capacity_rps is not None:
        lines.append(f"| measured capacity | {_rate(report, report.capacity_rps)} |")
    lines += [
        f"| target rate | {_rate(report, report.target_rps)} |",
        f"| achieved rate | {_rate(report, report.achieved_rps)} |",
        f"| send lag p99 | {report.send_lag_p99_ms:,.1f} ms |",
        f"| sent over 1 s late | {report.sent_late:,} |",
        f"| requests | {report.requests:,} |",
        *([f"| rows scored | {report.rows:,} |"] if report.rows_per_request != 1 else []),
        f"| outcomes | {', '.join(f'{k}: {v:,}' for k, v in sorted(report.outcomes.items()))} |",
        f"| errors | {report.errors:,} |",
    ]
    for name, window in (("first", report.first), ("last", report.last)):
        lines.append(
            f"| {name} {window.seconds:,.0f} s: p50 / p99 / p99.9 µs | "
            f"{_us(window.p50_us)} / {_us(window.p99_us)} / {_us(window.p999_us)} |"
        )
    drift = report.p99_drift
    lines.append(f"| p99 last / first | {'-' if drift is None else f'{drift:.2f}x'} |")
    for worker in report.memory:
        lines.append(
            f"| worker {worker.pid} RSS | {worker.first_mib:.1f} -> {worker.last_mib:.1f} MiB "
            f"({worker.growth_mib:+.1f} MiB, {worker.growth:+.1%}) |"
        )
    within_mib = report.memory_within_mib
    absolute = (
        ""
        if within_mib is None
        else f", RSS growth at most {report.max_rss_growth_mib:g} MiB per worker "
        f"{'met' if within_mib else 'not met'}"
    )
    lines += [
        f"| workers replaced | {'yes' if report.worker_pids_changed else 'no'} |",
        "",
        f"{'PASS' if report.passed else 'FAIL'}: errors {report.errors}, rate held "
        f"{'yes' if report.rate_held else 'no'}, RSS growth under "
        f"{report.max_rss_growth:.0%} {'yes' if report.memory_stable else 'no'}{absolute}",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark soak",
        description="Hold a fraction of measured capacity: errors, p99 drift, RSS growth.",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help=f"artifact or raw SageMaker model directory (default {DEFAULT_MODEL_DIR}, "
        "built by `make model`)",
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument(
        "--fraction", type=float, default=0.7, help="of measured capacity (default 0.7)"
    )
    parser.add_argument("--rps", type=float, help="hold this rate instead of measuring capacity")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument(
        "--capacity-seconds", type=float, default=10.0, help="capacity run length (default 10)"
    )
    parser.add_argument(
        "--window", type=float, default=60.0, help="first/last window seconds (default 60)"
    )
    parser.add_argument(
        "--max-rss-growth", type=float, default=0.05, help="per worker (default 0.05 = 5 %%)"
    )
    parser.add_argument(
        "--max-rss-growth-mib",
        type=float,
        help="also require every worker to grow by at most this many MiB (default: no bound)",
    )
    parser.add_argument(
        "--rows", type=int, default=1, help="rows per request (default 1; 1000 = a bulk soak)"
    )
    parser.add_argument(
        "--content-type",
        choices=CONTENT_TYPES,
        default=CSV,
        help=f"request body type (default {CSV}); answers are CSV",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.model_dir / "manifest.json").is_file() and not args.model_dir.is_dir():
        parser.error(f"{args.model_dir} is not a model directory (run `make model` first)")
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    for name in ("duration", "capacity_seconds", "window"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.rps is not None and args.rps <= 0:
        parser.error("--rps must be positive")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.max_rss_growth_mib is not None and args.max_rss_growth_mib < 0:
        parser.error("--max-rss-growth-mib must not be negative")
    options = SoakOptions(
        model_dir=args.model_dir,
        duration_s=args.duration,
        fraction=args.fraction,
        rps=args.rps,
        workers=args.workers,
        connections=args.connections,
        capacity_s=args.capacity_seconds,
        window_s=args.window,
        max_rss_growth=args.max_rss_growth,
        max_rss_growth_mib=args.max_rss_growth_mib,
        rows=args.rows,
        content_type=args.content_type,
    )
    with tempfile.TemporaryDirectory(prefix="rtb-soak-") as tmp:
        try:
            report = run_soak(
                options, log_dir=Path(tmp), progress=lambda m: print(m, file=sys.stderr)
            )
        except (RuntimeError, TimeoutError) as exc:
            log = Path(tmp) / "server.log"
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            print(f"soak failed: {exc}\n{tail}", file=sys.stderr)
            return 1
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0 if report.passed else 1
