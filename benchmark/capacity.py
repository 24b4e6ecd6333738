"""`python -m benchmark capacity`: max invocations per minute per worker at a p99 bound, and cost.

In the style of SageMaker Inference Recommender: from a step-load run (the `benchmark locust`
results directory given with `--results`, or a run started here with the same options as
`benchmark locust`), take the step with the highest throughput whose p99 stayed under
`--p99-bound` without errors, divide by the server's worker count, and turn it into the cost per
million inferences for an hourly instance price (`--price-per-hour`, or `--instance-type` from
the example table `INSTANCES`).
Writes `capacity.json`, the file `benchmark recommend --capacity` reads:

    {"max_invocations_per_minute_per_worker": 61234.5, "p99_bound_ms": 10.0, "workers": 1,
     "measured_at": "2026-11-25T12:30:00Z", "host": "http://127.0.0.1:8080", "within_bound": true,
     "users": 8, "requests_per_second": 1020.6, "p99_us": 2210, "rows_per_request": 1, ...}
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmark.arguments import fraction, positive_float, positive_int
from benchmark.knee import CAPACITY_FILE, DEFAULT_P99_BOUND_MS, Capacity, estimate, write_capacity
from benchmark.report import ResultsError, load_run

PRICES_AS_OF: Final = "2026-11-25"
PRICES_NOTE: Final = (
    "Example on-demand prices for SageMaker real-time inference in us-east-1, noted "
    f"{PRICES_AS_OF} from public summaries (about 1.4x the EC2 price of the same size); "
    "they change and differ by region: check https://aws.amazon.com/sagemaker/pricing/ "
    "before relying on them."
)


@dataclass(frozen=True)
class Instance:
    name: str
    vcpus: int
    memory_gib: float
    price_per_hour: float
    note: str = ""


# Common CPU instances for real-time inference. Examples only; see PRICES_NOTE.
INSTANCES: Final = {
    i.name: i
    for i in (
        Instance("ml.c5.large", 2, 4, 0.119),
        Instance("ml.c5.xlarge", 4, 8, 0.238),
        Instance("ml.c5.2xlarge", 8, 16, 0.476),
        Instance("ml.c6i.large", 2, 4, 0.119),
        Instance("ml.c6i.xlarge", 4, 8, 0.238),
        Instance("ml.c7i.large", 2, 4, 0.125),
        Instance(
            "ml.c7g.large", 2, 4, 0.102, "Graviton (arm64): needs an arm64 image and model.so"
        ),
        Instance("ml.m5.large", 2, 8, 0.134),
        Instance("ml.m5.xlarge", 4, 16, 0.269),
        Instance("ml.m6i.large", 2, 8, 0.134),
    )
}


@dataclass(frozen=True)
class Cost:
    price_per_hour: float
    workers_per_instance: int
    instance_type: str | None

    def invocations_per_hour(self, capacity: Capacity) -> float:
        return capacity.per_worker * 60.0 * self.workers_per_instance

    def per_million_invocations(self, capacity: Capacity) -> float | None:
        per_hour = self.invocations_per_hour(capacity)
        return self.price_per_hour / per_hour * 1e6 if per_hour > 0 else None

    def per_million_rows(self, capacity: Capacity) -> float | None:
        per_invocation = self.per_million_invocations(capacity)
        return None if per_invocation is None else per_invocation / capacity.rows_per_request

    def as_dict(self, capacity: Capacity) -> dict[str, Any]:
        per_invocation = self.per_million_invocations(capacity)
        per_row = self.per_million_rows(capacity)
        return {
            "instance_type": self.instance_type,
            "price_per_hour": self.price_per_hour,
            "price_source": PRICES_NOTE if self.instance_type else "given with --price-per-hour",
            "workers_per_instance": self.workers_per_instance,
            "invocations_per_hour_per_instance": round(self.invocations_per_hour(capacity), 0),
            "cost_per_million_invocations": None
            if per_invocation is None
            else round(per_invocation, 6),
            "cost_per_million_inferences": None if per_row is None else round(per_row, 6),
        }


def instance_table() -> str:
    lines = [
        "| instance | vCPUs | memory GiB | example $/hour | note |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i.name} | {i.vcpus} | {i.memory_gib:g} | {i.price_per_hour:.3f} | {i.note} |"
        for i in INSTANCES.values()
    ]
    return "\n".join(lines + ["", PRICES_NOTE])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark capacity",
        # Unknown options go on to `benchmark locust`: no prefix matching (`--workers` is
        # Locust's, not an abbreviation of `--workers-per-instance`).
        allow_abbrev=False,
        description=(
            "Max invocations per minute per server worker at a p99 bound, from a "
            "`benchmark locust` results directory (--results) or a step run started here "
            "(any `benchmark locust` option, e.g. --host URL --users 64 --step-users 8), "
            "and the cost per million."
        ),
        epilog=PRICES_NOTE,
    )
    parser.add_argument("--results", type=Path, metavar="DIR", help="an existing results directory")
    parser.add_argument(
        "--p99-bound",
        type=positive_float,
        default=DEFAULT_P99_BOUND_MS,
        metavar="MS",
        help=f"p99 latency bound in ms (default {DEFAULT_P99_BOUND_MS:g})",
    )
    parser.add_argument(
        "--max-error-rate",
        type=fraction,
        default=0.0,
        metavar="FRACTION",
        help="failed fraction allowed at the knee (default 0)",
    )
    parser.add_argument(
        "--server-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes of the measured server (default 1)",
    )
    price = parser.add_mutually_exclusive_group()
    price.add_argument(
        "--price-per-hour", type=positive_float, metavar="USD", help="instance price"
    )
    price.add_argument(
        "--instance-type", choices=sorted(INSTANCES), help="take the example price from the table"
    )
    parser.add_argument(
        "--workers-per-instance",
        type=positive_int,
        metavar="N",
        help="server workers on the priced instance (default: its vCPUs, or --server-workers)",
    )
    parser.add_argument(
        "--capacity-file",
        type=Path,
        metavar="FILE",
        help="where to write capacity.json (default: in the results directory)",
    )
    parser.add_argument(
        "--list-instances", action="store_true", help="print the example price table and exit"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.list_instances:
        print(instance_table())
        return 0
    if args.results is not None and rest:
        parser.error(f"unrecognized arguments with --results: {' '.join(rest)}")
    if args.results is None:
        if not rest:
            parser.error("give --results DIR, or `benchmark locust` options to run a step load")
        from benchmark import locust

        results = locust.run_from_args(
            [
                *rest,
                "--p99-bound",
                str(args.p99_bound),
                "--server-workers",
                str(args.server_workers),
            ]
        )
        if results is None:
            return 1
    else:
        results = args.results
    try:
        run = load_run(results)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    capacity = estimate(
        run,
        p99_bound_ms=args.p99_bound,
        workers=args.server_workers,
        max_error_rate=args.max_error_rate,
    )
    cost = None
    if args.instance_type or args.price_per_hour:
        instance = INSTANCES.get(args.instance_type or "")
        cost = Cost(
            price_per_hour=instance.price_per_hour if instance else float(args.price_per_hour),
            workers_per_instance=args.workers_per_instance
            or (instance.vcpus if instance else args.server_workers),
            instance_type=instance.name if instance else None,
        )
    output = args.capacity_file or Path(results) / CAPACITY_FILE
    write_capacity(output, capacity, cost=None if cost is None else cost.as_dict(capacity))
    print(render(capacity, cost))
    print(f"wrote {output}", file=sys.stderr)
    return 0 if capacity.within_bound else 1


def render(capacity: Capacity, cost: Cost | None) -> str:
    lines = [f"host {capacity.host}, measured {capacity.measured_at}, {capacity.steps} step(s)"]
    step = capacity.knee
    if step is None or step.latency is None:
        lines.append(
            f"no step kept p99 <= {capacity.p99_bound_ms:g} ms with error rate <= "
            f"{capacity.max_error_rate:.2%}: no capacity at this bound"
        )
        return "\n".join(lines)
    lines += [
        f"knee: {step.users} user(s), {step.rps:,.0f} req/s, p99 {step.latency.p99:,} µs "
        f"(bound {capacity.p99_bound_ms:g} ms), {step.failures} failures",
        f"max invocations per minute: {capacity.invocations_per_minute:,.0f} "
        f"({capacity.per_worker:,.0f} per worker, {capacity.workers} worker(s))",
    ]
    if cost is not None:
        per_invocation = cost.per_million_invocations(capacity)
        per_row = cost.per_million_rows(capacity)
        label = cost.instance_type or "instance"
        lines.append(
            f"{label} at ${cost.price_per_hour:.3f}/h with {cost.workers_per_instance} worker(s): "
            f"${per_invocation:.4f} per million invocations, ${per_row:.4f} per million inferences "
            f"({capacity.rows_per_request} row(s) per request)"
        )
        if cost.instance_type:
            lines.append("(example price: check https://aws.amazon.com/sagemaker/pricing/)")
    return "\n".join(lines)
