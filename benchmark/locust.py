"""`python -m benchmark locust`: headless Locust run with µs percentiles, report, plots, capacity.

    python -m benchmark locust --host http://127.0.0.1:8080 --users 16 --spawn-rate 16 \\
        --duration 60s --output results/locust

Starts Locust on `benchmark/locustfile.py` in its own process (one master and `--workers` worker
processes on this machine in distributed mode), shows progress on stderr, then writes into
`--output`: Locust's own CSV/JSON/HTML, `latency.json` (per-second HDR histograms),
`timeline.jsonl`, `summary.md`/`summary.json`, three PNG plots and `capacity.json`.

With `--step-users S` the load climbs S, 2S, ... up to `--users`, each level held for
`--step-duration`, and the knee (the highest throughput whose p99 stays under `--p99-bound`) is
read from the steps. `--endpoint-name` drives a real SageMaker endpoint through boto3 instead of
HTTP. With `--models N` the target is a multi-model endpoint: each request goes to one of N
models (`--model-names`, default model-0 .. model-N-1), drawn `--spread uniform|zipf` by
`benchmark.spread`: over HTTP to `/models/{name}/invoke`, through boto3 as `TargetModel`.
Exit status: 0 when every request succeeded, 1 when some failed or the run broke, 2 for bad
usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from benchmark import knee, plots, report
from benchmark.arguments import non_negative_int, positive_float, positive_int
from benchmark.payloads import CONTENT_TYPES, load_reference
from benchmark.schedule import Schedule, parse_duration
from benchmark.server import free_port
from benchmark.spread import ModelSpread, add_spread_arguments, spread_from_args

LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_DURATION: Final = "60s"
PROGRESS_EVERY_S: Final = 5.0
# Beyond the schedule: process start-up, workers connecting, the drain, writing files.
GRACE_S: Final = 90.0
MAX_PAYLOAD_ROWS: Final = 2_000_000


class RunError(Exception):
    """The Locust run did not produce results."""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark locust",
        allow_abbrev=False,
        description="Headless Locust load on /invocations with µs latency, report and plots.",
    )
    target = parser.add_argument_group("target")
    target.add_argument("--host", help="base URL of the server, e.g. http://127.0.0.1:8080")
    target.add_argument(
        "--endpoint-name", help="a SageMaker endpoint to call through boto3 instead"
    )
    target.add_argument("--region", help="AWS region of --endpoint-name")
    target.add_argument("--endpoint-url", help="sagemaker-runtime URL override (e.g. moto)")
    target.add_argument(
        "--server-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes of the server under test, for capacity per worker (default 1)",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--users", type=positive_int, default=8, help="(maximum) users (default 8)")
    load.add_argument(
        "--spawn-rate",
        type=positive_float,
        default=None,
        help="users per second (default: --users)",
    )
    load.add_argument(
        "--duration",
        type=_duration,
        default=None,
        help=f"run time: 90, 90s, 2m, 1h30m (default {DEFAULT_DURATION}; step runs: split evenly)",
    )
    load.add_argument(
        "--step-users", type=positive_int, metavar="S", help="step load: add S users per step"
    )
    load.add_argument("--step-duration", type=_duration, metavar="D", help="time per step (10s)")
    load.add_argument(
        "--rate-per-user",
        type=positive_float,
        metavar="RPS",
        help="open loop: each user sends at this rate (latency corrected for coordinated omission);"
        " default: closed loop, back to back",
    )
    load.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="Locust worker processes (distributed mode; default 0: one process)",
    )
    request = parser.add_argument_group("requests")
    request.add_argument("--batch-size", type=positive_int, default=1, help="rows per request")
    request.add_argument("--content-type", choices=CONTENT_TYPES, default="text/csv")
    request.add_argument("--accept", default="text/csv", help="Accept header (default text/csv)")
    request.add_argument("--payloads", type=positive_int, default=1024, help="distinct bodies")
    request.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic rows and the model sequence"
    )
    request.add_argument("--reference", type=Path, help="draw rows from a reference.csv-like file")
    request.add_argument(
        "--server-timing-metric", help="Server-Timing entry with the server's time (default: first)"
    )
    add_spread_arguments(
        parser,
        models_help="a multi-model endpoint: spread the requests over N models (HTTP: "
        "/models/{name}/invoke; SageMaker: TargetModel)",
    )
    results = parser.add_argument_group("results")
    results.add_argument(
        "--output", type=Path, help="results directory (default results/locust-TIME)"
    )
    results.add_argument(
        "--p99-bound",
        type=positive_float,
        default=knee.DEFAULT_P99_BOUND_MS,
        metavar="MS",
        help=f"p99 bound for the knee (default {knee.DEFAULT_P99_BOUND_MS:g} ms)",
    )
    results.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="S",
        help="seconds left out at the start of each step (default: 1 + the ramp-up, at most "
        "half a step)",
    )
    return parser


@dataclass(frozen=True)
class Plan:
    schedule: Schedule
    spawn_rate: float
    settle_seconds: float
    output: Path
    user_class: str
    spread: ModelSpread | None


def plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    if bool(args.host) == bool(args.endpoint_name):
        parser.error("give exactly one of --host URL or --endpoint-name NAME")
    if args.host and not args.host.startswith(("http://", "https://")):
        parser.error(f"--host must be an http:// or https:// URL, got {args.host!r}")
    if args.endpoint_name and not args.region:
        import boto3

        if boto3.session.Session().region_name is None:
            parser.error("--endpoint-name needs --region (or AWS_REGION / an AWS profile region)")
    if args.payloads * args.batch_size > MAX_PAYLOAD_ROWS:
        parser.error(
            f"--payloads x --batch-size is {args.payloads * args.batch_size:,} rows; every Locust "
            f"process builds them all up front, keep it within {MAX_PAYLOAD_ROWS:,}"
        )
    if args.reference is not None:
        try:
            load_reference(args.reference)
        except (OSError, ValueError) as exc:
            parser.error(f"--reference: {exc}")
    spawn_rate = args.spawn_rate or float(args.users)
    if args.step_users is None:
        if args.step_duration is not None:
            parser.error("--step-duration needs --step-users")
        seconds = args.duration or parse_duration(DEFAULT_DURATION)
        schedule = Schedule.constant(users=args.users, seconds=seconds)
        increment = args.users
    else:
        if args.step_users > args.users:
            parser.error(f"--step-users ({args.step_users}) exceeds --users ({args.users})")
        levels = math.ceil(args.users / args.step_users)
        if args.duration is not None and args.step_duration is not None:
            parser.error("give --duration (split over the steps) or --step-duration, not both")
        step_seconds = args.step_duration or (args.duration / levels if args.duration else 10.0)
        schedule = Schedule.stepped(
            step_users=args.step_users, max_users=args.users, step_seconds=step_seconds
        )
        increment = args.step_users
    shortest = min(step.seconds for step in schedule.steps)
    settle = args.settle
    if settle is None:  # one second plus the ramp-up, but never more than half a step
        settle = min(1.0 + increment / spawn_rate, shortest / 2)
    if settle < 0 or settle >= shortest:
        parser.error(f"--settle {settle:g} s must be >= 0 and shorter than a step")
    output = args.output or Path("results") / dt.datetime.now(dt.UTC).strftime(
        "locust-%Y%m%dT%H%M%SZ"
    )
    if output.exists() and any(output.iterdir()):
        parser.error(f"--output {output} exists and is not empty; choose a new directory")
    return Plan(
        schedule=schedule,
        spawn_rate=spawn_rate,
        settle_seconds=settle,
        output=output,
        user_class="SageMakerUser" if args.endpoint_name else "InvocationsUser",
        spread=spread_from_args(args, parser, seed=args.seed),
    )


def _rtb_options(args: argparse.Namespace, plan_: Plan) -> list[str]:
    options = [
        "--rtb-schedule",
        plan_.schedule.to_text(),
        "--rtb-spawn-rate",
        f"{plan_.spawn_rate:g}",
        "--rtb-batch-size",
        str(args.batch_size),
        "--rtb-content-type",
        args.content_type,
        "--rtb-accept",
        args.accept,
        "--rtb-payloads",
        str(args.payloads),
        "--rtb-seed",
        str(args.seed),
        "--rtb-output",
        str(plan_.output.resolve()),
    ]
    optional = {
        "--rtb-reference": str(args.reference.resolve()) if args.reference else None,
        "--rtb-rate-per-user": f"{args.rate_per_user:g}" if args.rate_per_user else None,
        "--rtb-server-timing-metric": args.server_timing_metric,
        "--rtb-endpoint-name": args.endpoint_name,
        "--rtb-region": args.region,
        "--rtb-endpoint-url": args.endpoint_url,
    }
    for flag, value in optional.items():
        if value:
            options += [flag, value]
    if plan_.spread is not None:
        options += [
            "--rtb-models",
            str(plan_.spread.models),
            "--rtb-spread",
            plan_.spread.spread,
            "--rtb-zipf-exponent",
            f"{plan_.spread.zipf_exponent!r}",
            "--rtb-model-names",
            plan_.spread.name_format,
        ]
    return options


def commands(args: argparse.Namespace, plan_: Plan) -> list[list[str]]:
    """The Locust command lines: the master (or the single process) first, then the workers."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    rtb = _rtb_options(args, plan_)
    prefix = str(plan_.output.resolve() / "locust")
    host = args.host or args.endpoint_url or "https://runtime.sagemaker.amazonaws.com"
    main = [
        *base,
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--csv",
        prefix,
        "--json-file",
        prefix,  # Locust adds ".json"
        "--html",
        prefix + ".html",
        "--stop-timeout",
        "5",
        *rtb,
        plan_.user_class,
    ]
    if not args.workers:
        return [main]
    port = str(free_port())
    master = [
        *main[:-1],
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--expect-workers",
        str(args.workers),
        "--expect-workers-max-wait",
        "60",
        plan_.user_class,
    ]
    worker = [
        *base,
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        port,
        *rtb,
        plan_.user_class,
    ]
    return [master] + [worker] * args.workers


def _latest_point(plan_: Plan) -> dict[str, float]:
    try:
        lines = (plan_.output / report.TIMELINE_FILE).read_text(encoding="utf-8").splitlines()
        point: dict[str, float] = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}
    return point


def _progress(plan_: Plan, previous: dict[str, float] | None) -> dict[str, float]:
    """Print one progress line from the newest timeline point; returns that point."""
    point = _latest_point(plan_)
    if not point:
        print("starting Locust ...", file=sys.stderr)
        return {}
    rate = 0.0
    if previous and point["time"] > previous["time"]:
        rate = (point["requests"] - previous["requests"]) / (point["time"] - previous["time"])
    print(
        f"[{time.strftime('%H:%M:%S', time.localtime(point['time']))}, run ~"
        f"{plan_.schedule.seconds:.0f}s] users {point['users']:.0f}  req/s {rate:,.0f}  "
        f"requests {point['requests']:,.0f}  failures {point['failures']:,.0f}",
        file=sys.stderr,
    )
    return point


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def execute(args: argparse.Namespace, plan_: Plan) -> None:
    """Run Locust to completion (bounded in time); raise RunError when no results came out."""
    plan_.output.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    logs: list[IO[bytes]] = []
    processes: list[subprocess.Popen[bytes]] = []
    deadline = time.monotonic() + plan_.schedule.seconds + GRACE_S
    started = time.monotonic()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM: stop Locust as Ctrl+C does, and report

    previous_handler = signal.signal(signal.SIGTERM, interrupt)
    try:
        for index, command in enumerate(commands(args, plan_)):
            name = (
                "locust"
                if index == 0 and not args.workers
                else ("locust-master" if index == 0 else f"locust-worker-{index}")
            )
            log: IO[bytes] = (plan_.output / f"{name}.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=PROJECT_ROOT,
                    # Locust stops a shape run cleanly (writing its results) only on SIGINT,
                    # so make sure SIGINT is not inherited as ignored (background shells).
                    preexec_fn=_default_sigint,
                )
            )
        main_process = processes[0]
        point: dict[str, float] | None = None
        next_progress = time.monotonic() + 1.0
        while main_process.poll() is None:
            if time.monotonic() > deadline:
                raise RunError(
                    f"Locust did not finish within {plan_.schedule.seconds + GRACE_S:.0f} s; "
                    f"see {plan_.output}/*.log"
                )
            if any(p.poll() not in (None, 0) for p in processes[1:]) and point is None:
                raise RunError(f"a Locust worker exited early; see {plan_.output}/*.log")
            if time.monotonic() >= next_progress:
                point = _progress(plan_, point)
                next_progress = time.monotonic() + PROGRESS_EVERY_S
            time.sleep(0.2)
        for process in processes[1:]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.terminate()
        print(f"Locust finished in {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        # The master (or single process) first, with SIGINT: it stops the workers, then writes
        # its results. Anything still running after that is terminated, then killed.
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    try:
                        process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        for log in logs:
            log.close()
    if not (plan_.output / report.LATENCY_FILE).exists():
        log_path = plan_.output / ("locust-master.log" if args.workers else "locust.log")
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RunError(f"Locust wrote no {report.LATENCY_FILE}; end of {log_path}:\n{tail}")


def write_results(args: argparse.Namespace, plan_: Plan) -> report.Run:
    run = report.load_run(plan_.output, settle_seconds=plan_.settle_seconds)
    estimate = knee.estimate(run, p99_bound_ms=args.p99_bound, workers=args.server_workers)
    capacity = knee.write_capacity(plan_.output / knee.CAPACITY_FILE, estimate)
    report.write_summary(run, extra={"capacity": capacity})
    plots.write_plots(run, p99_bound_ms=args.p99_bound)
    return run


def run_from_args(argv: Sequence[str]) -> Path | None:
    """Parse `argv`, run, write the results; the results directory, or None when the run failed."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    plan_ = plan(args, parser)
    print(
        f"Locust: {plan_.schedule.to_text()} (users x seconds), {args.workers} worker process(es), "
        f"results in {plan_.output}",
        file=sys.stderr,
    )
    try:
        try:
            execute(args, plan_)
        except KeyboardInterrupt:
            # Locust got the signal too (or SIGTERM from `execute`) and wrote what it measured.
            print("interrupted: reporting the steps that completed", file=sys.stderr)
            if not (plan_.output / report.LATENCY_FILE).exists():
                return None
        run = write_results(args, plan_)
    except (RunError, report.ResultsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print((plan_.output / report.SUMMARY_MD).read_text(encoding="utf-8"))
    print(
        f"{run.total.requests:,} requests succeeded, {run.total.failures:,} failed; "
        f"results in {plan_.output}",
        file=sys.stderr,
    )
    if run.total.failures:
        failures = plan_.output / "locust_failures.csv"
        print(f"{run.total.failures} request(s) failed; see {failures}", file=sys.stderr)
    if not run.total.requests and not run.total.failures:
        log = plan_.output / ("locust-master.log" if args.workers else "locust.log")
        print(f"error: no request completed; the users could not start, see {log}", file=sys.stderr)
        return None
    return plan_.output


def main(argv: list[str] | None = None) -> int:
    output = run_from_args(sys.argv[1:] if argv is None else argv)
    if output is None:
        return 1
    summary = json.loads((output / report.SUMMARY_JSON).read_text(encoding="utf-8"))
    return 1 if summary["total"]["failures"] else 0
