"""Locust load for `/invocations`: realistic RTB rows, every response checked, latency kept in µs.

Run through `python -m benchmark locust` (which starts Locust and its workers, and writes the
report), or by hand, naming one user class:

    locust -f benchmark/locustfile.py --headless InvocationsUser --host http://127.0.0.1:8080 \\
        --rtb-schedule 8x30 --rtb-output results/run1

- `InvocationsUser` posts pre-built request bodies to an HTTP server (this project's, or any
  SageMaker-compatible container) with Locust's `FastHttpUser`.
- `SageMakerUser` calls a real endpoint through boto3 `sagemaker-runtime` `invoke_endpoint`
  (`--rtb-endpoint-name`), timing each call with `perf_counter` and firing Locust's request event.

With `--rtb-models N` (a multi-model endpoint) each request goes to one of N models, in the
order `benchmark.spread` draws them (`--rtb-spread`, `--rtb-zipf-exponent`, `--rtb-model-names`,
`--rtb-seed`): `InvocationsUser` posts to `/models/{name}/invoke`, `SageMakerUser` passes
`TargetModel`.

Both check every response (status, one prediction per row, every score within [0, 1]) and count the
bad ones as failures. A request-event listener records each successful request's latency in µs, and
the server's own time from a `Server-Timing` header, into HDR histograms per second
(`benchmark.latency`); workers send theirs to the master with every stats report, and the master
(or the single local process) writes `latency.json` and `timeline.jsonl` into `--rtb-output` on
exit. The load follows `StepShape`: the levels of `--rtb-schedule`, then a short drain so the
workers' last reports arrive before the master quits.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import gevent
from locust import FastHttpUser, LoadTestShape, User, constant, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

# Locust imports this file by path; make the project importable when run from elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.latency import LatencyRecorder  # noqa: E402
from benchmark.mme import invoke_path  # noqa: E402
from benchmark.payloads import encode_rows, load_reference, make_rows  # noqa: E402
from benchmark.responses import check_scores, server_time_us  # noqa: E402
from benchmark.schedule import Schedule  # noqa: E402
from benchmark.spread import SEQUENCE_LENGTH, ModelSpread  # noqa: E402

LATENCY_FILE: Final = "latency.json"
TIMELINE_FILE: Final = "timeline.jsonl"
REPORT_KEY: Final = "rtb_latency"
INVOKE_NAME: Final = "/models/{name}/invoke"
"""Locust's name of every multi-model request (one stats entry, not one per model)."""


class Workload:
    """What this process sends and records; filled in by the `init` listener."""

    bodies: list[bytes] = []
    spread: ModelSpread | None = None
    targets: list[str] = []
    """With a spread: the model of each request in turn (a user starts at its own place)."""
    rows_per_request = 1
    content_type = "text/csv"
    accept = "text/csv"
    path = "/invocations"
    server_timing_metric: str | None = None
    expected_interval_us: float | None = None
    recorder = LatencyRecorder()
    steps: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    started_at: float | None = None
    load_average_at_start: tuple[float, ...] = ()
    cpu_saturated = False


def _add_options(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("rtb benchmark (benchmark/locustfile.py)")
    group.add_argument(
        "--rtb-schedule", default="1x10", help="steps as USERSxSECONDS,... (default 1x10)"
    )
    group.add_argument(
        "--rtb-spawn-rate", type=float, default=100.0, help="users started per second"
    )
    group.add_argument("--rtb-batch-size", type=int, default=1, help="rows per request")
    group.add_argument("--rtb-content-type", default="text/csv", help="request Content-Type")
    group.add_argument("--rtb-accept", default="text/csv", help="request Accept")
    group.add_argument("--rtb-path", default="/invocations", help="request path (HTTP only)")
    group.add_argument("--rtb-payloads", type=int, default=1024, help="distinct pre-built bodies")
    group.add_argument("--rtb-seed", type=int, default=0, help="seed of the synthetic rows")
    group.add_argument(
        "--rtb-reference", default="", help="draw rows from this reference.csv-like file"
    )
    group.add_argument(
        "--rtb-rate-per-user", type=float, default=0.0, help="open-loop req/s per user"
    )
    group.add_argument(
        "--rtb-bucket-seconds", type=float, default=1.0, help="histogram time bucket"
    )
    group.add_argument("--rtb-server-timing-metric", default="", help="Server-Timing entry to read")
    group.add_argument(
        "--rtb-output", default="", help="directory for latency.json and timeline.jsonl"
    )
    group.add_argument("--rtb-endpoint-name", default="", help="SageMaker endpoint (SageMakerUser)")
    group.add_argument("--rtb-region", default="", help="AWS region (SageMakerUser)")
    group.add_argument("--rtb-endpoint-url", default="", help="sagemaker-runtime URL, e.g. moto's")
    group.add_argument("--rtb-models", type=int, default=0, help="models to spread over (0: none)")
    group.add_argument("--rtb-spread", default="uniform", help="uniform or zipf")
    group.add_argument("--rtb-zipf-exponent", type=float, default=1.0, help="Zipf exponent")
    group.add_argument("--rtb-model-names", default="model-{}", help="model names, {} the index")


def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    Workload.recorder = LatencyRecorder(bucket_seconds=options.rtb_bucket_seconds)
    Workload.rows_per_request = options.rtb_batch_size
    Workload.content_type = options.rtb_content_type
    Workload.accept = options.rtb_accept
    Workload.path = options.rtb_path
    Workload.server_timing_metric = options.rtb_server_timing_metric or None
    if options.rtb_rate_per_user > 0:
        Workload.expected_interval_us = 1e6 / options.rtb_rate_per_user
        InvocationsUser.wait_time = constant_throughput(options.rtb_rate_per_user)
        SageMakerUser.wait_time = constant_throughput(options.rtb_rate_per_user)
    if isinstance(environment.runner, MasterRunner):
        return  # the master sends nothing; it merges what the workers record
    if options.rtb_batch_size < 1 or options.rtb_payloads < 1:
        raise SystemExit("--rtb-batch-size and --rtb-payloads must be >= 1")
    reference = load_reference(options.rtb_reference) if options.rtb_reference else None
    rows = make_rows(
        options.rtb_payloads * options.rtb_batch_size, seed=options.rtb_seed, reference=reference
    )
    Workload.bodies = [
        encode_rows(rows[i : i + options.rtb_batch_size], options.rtb_content_type)
        for i in range(0, len(rows), options.rtb_batch_size)
    ]
    if options.rtb_models > 0:
        Workload.spread = ModelSpread(
            models=options.rtb_models,
            spread=options.rtb_spread,
            zipf_exponent=options.rtb_zipf_exponent,
            seed=options.rtb_seed,
            name_format=options.rtb_model_names,
        )
        Workload.targets = Workload.spread.named_sequence(SEQUENCE_LENGTH)


def _on_request(
    response_time: float, exception: BaseException | None, response: Any = None, **_: Any
) -> None:
    now = time.time()
    if exception is not None:
        Workload.recorder.record_failure(timestamp=now)
        return
    header = None
    headers = getattr(response, "headers", None)
    if headers is not None:
        header = headers.get("server-timing") or headers.get("Server-Timing")
    Workload.recorder.record_success(
        timestamp=now,
        latency_us=response_time * 1000.0,
        server_us=server_time_us(header, metric=Workload.server_timing_metric),
        expected_interval_us=Workload.expected_interval_us,
    )


def _send_latency(data: dict[str, Any], **_: Any) -> None:
    data[REPORT_KEY] = Workload.recorder.drain()


def _merge_latency(data: dict[str, Any], **_: Any) -> None:
    Workload.recorder.merge(data.get(REPORT_KEY, {}))


def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or Workload.started_at is not None:
        return
    Workload.started_at = time.time()
    Workload.load_average_at_start = tuple(round(x, 2) for x in os.getloadavg())
    gevent.spawn(_follow, environment)


def _follow(environment: Environment) -> None:
    """Once a second: users, request and failure counts, appended to timeline.jsonl (progress)."""
    options = environment.parsed_options
    output = Path(options.rtb_output) if options is not None and options.rtb_output else None
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / TIMELINE_FILE).write_text("")
    runner = environment.runner
    while runner is not None:
        total = environment.stats.total
        point = {
            "time": round(time.time(), 3),
            "users": runner.user_count,
            "requests": total.num_requests,
            "failures": total.num_failures,
            "state": runner.state,
        }
        if runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted:
            Workload.cpu_saturated = True  # Locust's own >90 % CPU warning, latched
        Workload.timeline.append(point)
        if output is not None:
            with (output / TIMELINE_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(point) + "\n")
        gevent.sleep(1.0)


def _write_latency(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or options is None or not options.rtb_output:
        return
    output = Path(options.rtb_output)
    output.mkdir(parents=True, exist_ok=True)
    recorder = Workload.recorder
    document = {
        "format": "rtb-locust-latency",
        "format_version": 1,
        "unit": "us",
        "bucket_seconds": recorder.bucket_seconds,
        "started_at": Workload.started_at,
        "stopped_at": time.time(),
        "schedule": options.rtb_schedule,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": list(Workload.load_average_at_start),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "load_generator_cpu_above_90_percent": Workload.cpu_saturated,
        },
        "steps": Workload.steps,
        "buckets": {str(index): bucket.to_json() for index, bucket in recorder.buckets().items()},
        "config": {
            "rows_per_request": Workload.rows_per_request,
            "content_type": Workload.content_type,
            "accept": Workload.accept,
            "rate_per_user": options.rtb_rate_per_user or None,
            "payloads": options.rtb_payloads,
            "seed": options.rtb_seed,
            "reference": options.rtb_reference or None,
            "host": environment.host,
            "endpoint_name": options.rtb_endpoint_name or None,
            "models": options.rtb_models or None,
            "spread": Workload.spread.describe() if Workload.spread is not None else None,
            "workers": options.expect_workers
            if isinstance(environment.runner, MasterRunner)
            else 0,
        },
    }
    (output / LATENCY_FILE).write_text(json.dumps(document), encoding="utf-8")


def _options(environment: Environment) -> Any:
    if environment.parsed_options is None:
        raise RuntimeError("run this locustfile with the locust command (no parsed options)")
    return environment.parsed_options


T = TypeVar("T")


def _rotated(items: list[T]) -> Iterator[T]:
    """`items` again and again, from a random place (each user its own)."""
    start = random.randrange(len(items))
    return itertools.cycle(items[start:] + items[:start])


@dataclass
class _Feed:
    """What one user sends next: a body, and with a spread the model it goes to."""

    bodies: Iterator[bytes]
    targets: Iterator[str] | None

    @classmethod
    def start(cls) -> _Feed:
        if not Workload.bodies:
            raise StopUser()
        targets = _rotated(Workload.targets) if Workload.targets else None
        return cls(bodies=_rotated(Workload.bodies), targets=targets)

    def next_target(self) -> str | None:
        return None if self.targets is None else next(self.targets)


class InvocationsUser(FastHttpUser):
    """POST pre-built bodies to `/invocations` back to back, checking every answer."""

    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self._rtb_feed = _Feed.start()
        self._rtb_headers = {"Content-Type": Workload.content_type, "Accept": Workload.accept}

    @task
    def invoke(self) -> None:
        target = self._rtb_feed.next_target()
        with self.client.post(
            Workload.path if target is None else invoke_path(target),
            data=next(self._rtb_feed.bodies),  # type: ignore[arg-type]  # bytes work
            headers=self._rtb_headers,
            catch_response=True,
            name=Workload.path if target is None else INVOKE_NAME,
        ) as response:
            if response.status_code != 200:
                snippet = (response.text or "")[:200]
                response.failure(f"HTTP {response.status_code}: {snippet}")
                return
            fault = check_scores(
                response.content or b"",
                content_type=response.headers.get("content-type"),
                rows=Workload.rows_per_request,
            )
            if fault is None:
                response.success()
            else:
                response.failure(fault)


class _SageMakerRuntime:
    """One boto3 `sagemaker-runtime` client per process (thread-safe, and slow to create)."""

    client: Any = None

    @classmethod
    def get(cls, environment: Environment) -> Any:
        if cls.client is None:
            import boto3
            from botocore.config import Config

            options = _options(environment)
            schedule = Schedule.from_text(options.rtb_schedule)
            cls.client = boto3.client(
                "sagemaker-runtime",
                region_name=options.rtb_region or None,
                endpoint_url=options.rtb_endpoint_url or None,
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    max_pool_connections=max(10, schedule.max_users),
                    connect_timeout=10,
                    read_timeout=10,
                ),
            )
        return cls.client


class SageMakerUser(User):
    """Call a SageMaker endpoint with `invoke_endpoint`, timing each call."""

    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if options is None or not options.rtb_endpoint_name:
            raise StopUser()
        self._rtb_endpoint = options.rtb_endpoint_name
        self._rtb_client = _SageMakerRuntime.get(self.environment)
        self._rtb_feed = _Feed.start()

    @task
    def invoke(self) -> None:
        body = next(self._rtb_feed.bodies)
        target = self._rtb_feed.next_target()
        model = {} if target is None else {"TargetModel": target}
        start_time = time.time()
        start = time.perf_counter()
        exception: BaseException | None = None
        length = 0
        try:
            answer = self._rtb_client.invoke_endpoint(
                EndpointName=self._rtb_endpoint,
                Body=body,
                ContentType=Workload.content_type,
                Accept=Workload.accept,
                **model,
            )
            content = answer["Body"].read()
            length = len(content)
            fault = check_scores(
                content, content_type=answer.get("ContentType"), rows=Workload.rows_per_request
            )
            if fault is not None:
                exception = ValueError(fault)
        except Exception as exc:  # every client or service error is a failed request
            exception = exc
        self.environment.events.request.fire(
            request_type="invoke_endpoint",
            name=self._rtb_endpoint,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            response=None,
            context={},
            exception=exception,
            start_time=start_time,
            url=None,
        )


class StepShape(LoadTestShape):
    """Hold each level of `--rtb-schedule` for its time, then drain so late reports still arrive."""

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None, "Locust sets the runner before the first tick"
        options = _options(self.runner.environment)
        schedule = Schedule.from_text(options.rtb_schedule)
        elapsed = time.perf_counter() - self.start_time
        index = schedule.step_at(elapsed)
        now = time.time()
        if index is not None:
            if not Workload.steps or Workload.steps[-1]["index"] != index:
                self._close_step(now)
                users = schedule.steps[index].users
                Workload.steps.append({"index": index, "users": users, "start": now, "end": None})
                print(f"step {index + 1}/{len(schedule.steps)}: {users} users", file=sys.stderr)
            return schedule.steps[index].users, options.rtb_spawn_rate
        self._close_step(now)
        drain = WORKER_REPORT_INTERVAL + 1.5 if isinstance(self.runner, MasterRunner) else 0.5
        if elapsed < schedule.seconds + drain:
            return 0, 1000.0
        return None

    @staticmethod
    def _close_step(now: float) -> None:
        if Workload.steps and Workload.steps[-1]["end"] is None:
            Workload.steps[-1]["end"] = now


def _listen(hook: Any, listener: Callable[..., None]) -> None:
    # Locust's EventHook.add_listener is untyped; registering here keeps the listeners typed.
    add: Callable[[Callable[..., None]], object] = hook.add_listener
    add(listener)


_listen(events.init_command_line_parser, _add_options)
_listen(events.init, _on_init)
_listen(events.request, _on_request)
_listen(events.report_to_master, _send_latency)
_listen(events.worker_report, _merge_latency)
_listen(events.test_start, _on_test_start)
_listen(events.quitting, _write_latency)
