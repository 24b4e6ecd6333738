"""`python -m benchmark http`: our server against the Python HTTP floor and against xgboost.

    python -m benchmark http                       # trains the default model in a temp dir
    python -m benchmark http --model-dir DIR --xgboost-model FILE.json
    python -m benchmark http --quick               # a short, well-formed run (used by the tests)
    python -m benchmark http --models 100 --spread zipf   # compiled: a multi-model endpoint

Starts three servers, one uvicorn worker each, with the same uvicorn options
(`container.server_config.uvicorn_options`: uvloop, httptools, no access log):

- `floor`: a raw ASGI app that reads the body and answers a constant: the Python HTTP floor;
- `compiled`: `python -m container serve --model-dir DIR --workers 1`, as users run it;
- `xgboost`: the same app (`serve.app.create_app`) with an `xgboost` `inplace_predict` predictor.

Each round measures each server in turn (interleaved, so drifts in machine load hit all three
alike): latency at 1 connection, then maximum throughput at `--connections` connections, with
single-row CSV requests. The load generator is `wrk` (µs percentiles from a Lua `done` hook)
when it is on PATH, else a raw-socket keep-alive client in a separate process. The table reports
medians over rounds, RSS per worker and cold start (process start to the first 200 on /ping),
then the latency and throughput targets with PASS/FAIL. Results go to stdout, progress to
stderr.

With `--models N`, `compiled` is the server in multi-model mode (`SAGEMAKER_MULTI_MODEL=true`)
with the artifact loaded under N names (`--model-names`, default model-0 .. model-N-1; one
content, so this measures the routing of a multi-model endpoint, not N distinct libraries:
`python -m benchmark mme` loads distinct models), and the requests go to
`/models/{name}/invoke`, spread over the names as `--spread uniform|zipf` draws them
(`benchmark.spread`). The floor gets the same paths; xgboost, a single-model server, gets
`/invocations` through the same client code.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from benchmark.arguments import positive_float, positive_int
from benchmark.mme import invoke_path, load_model
from benchmark.payloads import GUIDANCE_ROW
from benchmark.server import ServerProcess, free_port
from benchmark.spread import (
    SEQUENCE_LENGTH,
    ModelSpread,
    add_spread_arguments,
    spread_from_args,
)
from benchmark.traffic import encode_request

SERVERS: Final = ("floor", "compiled", "xgboost")
LABELS: Final = {
    "floor": "floor (raw ASGI constant)",
    "compiled": "serve, compiled (ctypes)",
    "xgboost": "serve, xgboost inplace_predict",
}

P50_RATIO_MAX: Final = 1.3
P99_MAX_US: Final = 500.0
FLOOR_THROUGHPUT_MIN: Final = 0.5
XGBOOST_THROUGHPUT_MIN: Final = 2.0

ROOT: Final = Path(__file__).resolve().parents[1]

Client = Literal["wrk", "python"]


@dataclass(frozen=True, kw_only=True)
class Run:
    """How each server is measured: the command line's options, read once."""

    rounds: int
    seconds: float
    connections: int
    client: Client
    spread: ModelSpread | None = None


# --- the servers under test -----------------------------------------------------------------


async def floor_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """The floor: a raw ASGI app that reads the request body and answers a constant."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b"" if scope["path"] == "/ping" else b"0.5"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/csv"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class XGBoostPredictor:
    """The comparison predictor: xgboost's `inplace_predict` on the same model, one thread."""

    kind = "xgboost"

    def __init__(self, model_file: Path, *, num_features: int) -> None:
        import xgboost

        self._booster = xgboost.Booster(params={"nthread": 1}, model_file=str(model_file))
        if self._booster.num_features() != num_features:
            raise ValueError(
                f"{model_file} has {self._booster.num_features()} features, expected {num_features}"
            )
        self._num_features = num_features

    num_outputs = 1  # the benchmark serves the single-output default model

    @property
    def num_features(self) -> int:
        return self._num_features

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(self._booster.inplace_predict(features), dtype=np.float32)

    def predict_row(self, values: list[float]) -> npt.NDArray[np.float32]:
        return self.predict(np.array((values,), dtype=np.float32))


def serve_one(kind: str, *, port: int, model_dir: Path | None, xgboost_model: Path | None) -> int:
    """Run one benchmark server in this process (the `--serve` mode of this module)."""
    import uvicorn

    from container.server_config import uvicorn_options
    from serve.settings import Settings

    settings = Settings(host="127.0.0.1", port=port, workers=1, log_level="WARNING")
    options = {**uvicorn_options(settings), "factory": False}
    if kind == "floor":
        uvicorn.run(floor_app, **options)
        return 0
    if model_dir is None or xgboost_model is None:
        raise SystemExit("--serve xgboost needs --model-dir and --xgboost-model")
    from model.artifact import read_manifest
    from serve.app import create_app

    manifest = read_manifest(model_dir)
    predictor = XGBoostPredictor(xgboost_model, num_features=manifest.model.num_features)
    uvicorn.run(create_app(settings, predictor), **options)
    return 0


@dataclass
class Server:
    kind: str
    process: ServerProcess
    cold_start_s: float


@contextmanager
def start_server(
    kind: str,
    *,
    model_dir: Path,
    xgboost_model: Path,
    log_dir: Path,
    spread: ModelSpread | None = None,
) -> Iterator[Server]:
    """Start one server subprocess and wait for its first 200 on /ping; always stop it.

    With `spread`, `compiled` is a multi-model server with `model_dir` loaded under the
    spread's names (the cold start is to the first 200 on /ping, before the loads)."""
    log = log_dir / f"{kind}.log"
    env = {"OMP_NUM_THREADS": "1", "RTB_LOG_LEVEL": "WARNING"}
    if kind == "compiled" and spread is not None:
        (log_dir / "no-model").mkdir(exist_ok=True)
        env |= {"SAGEMAKER_MULTI_MODEL": "true", "TMPDIR": str(log_dir)}  # its registry there
        process = ServerProcess(model_dir=log_dir / "no-model", log_path=log, env=env)
    elif kind == "compiled":
        process = ServerProcess(model_dir=model_dir, log_path=log, env=env)
    else:
        port = free_port()
        command = [sys.executable, "-m", "benchmark.http", "--serve", kind, "--port", str(port)]
        command += ["--model-dir", str(model_dir), "--xgboost-model", str(xgboost_model)]
        process = ServerProcess(argv=command, port=port, log_path=log, env=env)
    started = time.perf_counter()
    with process:
        try:
            process.wait_healthy(timeout=120, poll_s=0.01)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{kind} server did not start: {exc}") from None
        cold_start_s = time.perf_counter() - started
        if kind == "compiled" and spread is not None:
            for name in spread.names():
                load_model(process.port, name, model_dir)
        yield Server(kind, process, cold_start_s)


def rss_mib(pid: int) -> float:
    """Resident set size of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- load generators ------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_us: float
    p99_us: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_SCRIPT: Final = """
wrk.method = "POST"
wrk.body = "%s"
wrk.headers["Content-Type"] = "text/csv"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


PATHS_SCRIPT: Final = """
local paths = {}
for line in io.lines(PATHS_FILE) do paths[#paths + 1] = line end
local requests = {}
local index = 0
init = function(args)
  for i, path in ipairs(paths) do requests[i] = wrk.format(nil, path) end
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""
"""Appended to a wrk script: send the paths of PATHS_FILE (one a line) in turn."""


def request_paths(kind: str, spread: ModelSpread | None) -> list[str]:
    """The request path of each request, in turn: `/invocations`, or with a spread the invoke
    paths of the drawn models (to xgboost, a single-model server: `/invocations`)."""
    if spread is None or kind == "xgboost":
        return ["/invocations"]
    names = spread.named_sequence(SEQUENCE_LENGTH)
    return [invoke_path(name) for name in names]


def paths_script(script: Path, paths_file: Path) -> Path:
    """`script` sending the paths in `paths_file` in turn, written beside it."""
    spread_script = script.with_name(f"{paths_file.stem}.lua")
    spread_script.write_text(
        script.read_text() + PATHS_SCRIPT.replace("PATHS_FILE", json.dumps(str(paths_file)))
    )
    return spread_script


def run_wrk(url: str, *, connections: int, seconds: float, script: Path) -> Measurement:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    result = subprocess.run(
        [*command, f"{url}/invocations"], capture_output=True, text=True, timeout=seconds + 60
    )
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            requests, duration_us, p50, p99, errors = (int(v) for v in line.split()[1:])
            return Measurement(requests, duration_us / 1e6, p50, p99, errors)
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


def run_python_client(
    url: str, *, connections: int, seconds: float, paths_file: Path
) -> Measurement:
    """The fallback load generator, in its own process so it does not share our interpreter."""
    command = [sys.executable, "-m", "benchmark.http", "--load", url]
    command += ["--connections", str(connections), "--duration", str(seconds)]
    command += ["--paths", str(paths_file)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"load client failed:\n{result.stderr}")
    data = json.loads(result.stdout)
    return Measurement(
        data["requests"], data["seconds"], data["p50_us"], data["p99_us"], data["errors"]
    )


async def _client_loop(
    host: str,
    port: int,
    requests: Iterator[bytes],
    stop_at: float,
    latencies: list[int],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            request = next(requests)
            started = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter_ns() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


def load(url: str, *, connections: int, seconds: float, paths: list[str]) -> dict[str, float]:
    """Keep-alive POSTs of GUIDANCE_ROW to `paths` in turn (shared by all connections), on
    `connections` connections for `seconds` (`--load` mode)."""
    host, port = url.removeprefix("http://").split(":")
    headers = (("Content-Type", "text/csv"),)
    requests = itertools.cycle(
        [encode_request(path=path, headers=headers, body=GUIDANCE_ROW) for path in paths]
    )
    latencies: list[int] = []
    errors: list[int] = []

    async def main() -> float:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                _client_loop(host, int(port), requests, stop_at, latencies, errors)
                for _ in range(connections)
            )
        )
        return time.perf_counter() - started

    try:
        import uvloop

        elapsed = uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        elapsed = asyncio.run(main())
    values = np.array(latencies, dtype=np.float64) / 1e3
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_us": float(np.percentile(values, 50)) if len(values) else 0.0,
        "p99_us": float(np.percentile(values, 99)) if len(values) else 0.0,
        "errors": len(errors),
    }


# --- the run --------------------------------------------------------------------------------


@dataclass
class Results:
    latency: dict[str, list[Measurement]] = field(default_factory=lambda: {k: [] for k in SERVERS})
    throughput: dict[str, list[Measurement]] = field(
        default_factory=lambda: {k: [] for k in SERVERS}
    )
    rss_mib: dict[str, float] = field(default_factory=dict)
    cold_start_s: dict[str, float] = field(default_factory=dict)

    def p50(self, kind: str) -> float:
        return statistics.median(m.p50_us for m in self.latency[kind])

    def p99(self, kind: str) -> float:
        return statistics.median(m.p99_us for m in self.latency[kind])

    def rate(self, kind: str) -> float:
        return statistics.median(m.rate for m in self.throughput[kind])

    def errors(self, kind: str) -> int:
        return sum(m.errors for m in self.latency[kind] + self.throughput[kind])


def measure(*, model_dir: Path, xgboost_model: Path, run: Run, say: Any) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % GUIDANCE_ROW.decode())
        servers: dict[str, Server] = {}
        for kind in SERVERS:
            servers[kind] = stack.enter_context(
                start_server(
                    kind,
                    model_dir=model_dir,
                    xgboost_model=xgboost_model,
                    log_dir=work,
                    spread=run.spread,
                )
            )
            results.cold_start_s[kind] = servers[kind].cold_start_s
            say(
                f"started {kind} on port {servers[kind].process.port} in "
                f"{servers[kind].cold_start_s:.2f} s"
            )
        paths_files = {kind: work / f"paths-{kind}.txt" for kind in SERVERS}
        for kind, paths_file in paths_files.items():
            paths_file.write_text("\n".join(request_paths(kind, run.spread)) + "\n")
        scripts = {
            kind: script if run.spread is None else paths_script(script, paths_files[kind])
            for kind in SERVERS
        }

        def measured(server: Server, connections: int) -> Measurement:
            url = server.process.base_url
            if run.client == "wrk":
                return run_wrk(
                    url, connections=connections, seconds=run.seconds, script=scripts[server.kind]
                )
            return run_python_client(
                url,
                connections=connections,
                seconds=run.seconds,
                paths_file=paths_files[server.kind],
            )

        for server in servers.values():  # warm-up, not recorded
            measured(server, 1)
        for round_number in range(1, run.rounds + 1):
            for kind, server in servers.items():
                latency = measured(server, 1)
                throughput = measured(server, run.connections)
                results.latency[kind].append(latency)
                results.throughput[kind].append(throughput)
                say(
                    f"round {round_number}/{run.rounds} {kind:<8} p50 {latency.p50_us:6.0f} µs  "
                    f"p99 {latency.p99_us:6.0f} µs  {throughput.rate:8.0f} req/s"
                )
        for kind, server in servers.items():
            results.rss_mib[kind] = rss_mib(server.process.pid)
    return results


def verdicts(results: Results) -> list[tuple[str, float, str, bool]]:
    """(what, value, target, passed) for the p50, throughput and p99 targets."""
    p50_ratio = results.p50("compiled") / results.p50("floor")
    floor_share = results.rate("compiled") / results.rate("floor")
    xgboost_ratio = results.rate("compiled") / results.rate("xgboost")
    p99 = results.p99("compiled")
    return [
        (
            "p50 @1 conn, compiled / floor",
            p50_ratio,
            f"<= {P50_RATIO_MAX}",
            p50_ratio <= P50_RATIO_MAX,
        ),
        ("p99 @1 conn, compiled (µs)", p99, f"< {P99_MAX_US:.0f}", p99 < P99_MAX_US),
        (
            "throughput, compiled / floor",
            floor_share,
            f">= {FLOOR_THROUGHPUT_MIN}",
            floor_share >= FLOOR_THROUGHPUT_MIN,
        ),
        (
            "throughput, compiled / xgboost",
            xgboost_ratio,
            f">= {XGBOOST_THROUGHPUT_MIN}",
            xgboost_ratio >= XGBOOST_THROUGHPUT_MIN,
        ),
    ]


def render(results: Results, *, run: Run) -> str:
    target = "POST /invocations"
    if run.spread is not None:
        target = (
            f"POST /models/{{name}}/invoke over {run.spread.describe()} (xgboost: /invocations)"
        )
    lines = [
        f"single-row CSV {target}, 1 uvicorn worker each; load: {run.client}; "
        f"{run.rounds} interleaved round(s) of {run.seconds:g} s per cell; medians over rounds",
        "",
        f"| server | p50 µs @1 conn | p99 µs @1 conn | req/s @{run.connections} conn | "
        "RSS MiB | cold start s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in SERVERS:
        lines.append(
            f"| {LABELS[kind]} | {results.p50(kind):.0f} | {results.p99(kind):.0f} | "
            f"{results.rate(kind):.0f} | {results.rss_mib.get(kind, float('nan')):.1f} | "
            f"{results.cold_start_s[kind]:.2f} | {results.errors(kind)} |"
        )
    lines += ["", "| target | measured | required | verdict |", "|---|---|---|---|"]
    for what, value, target, passed in verdicts(results):
        lines.append(f"| {what} | {value:.2f} | {target} | {'PASS' if passed else 'FAIL'} |")
    return "\n".join(lines)


@contextmanager
def default_model(say: Any) -> Iterator[tuple[Path, Path]]:
    """Train the default model (as `python -m model train` does) into a temporary directory."""
    from model.training import train_artifact

    with tempfile.TemporaryDirectory(prefix="bench-http-model-") as tmp:
        directory = Path(tmp)
        say("training the default model ...")
        train_artifact(
            output_dir=directory / "artifact",
            save_json=directory / "model.xgboost.json",
            rows=20_000,
            parity_rows=2_000,
        )
        yield directory / "artifact", directory / "model.xgboost.json"


@contextmanager
def chosen_model(model_dir: Path | None, xgboost_model: Path | None) -> Iterator[tuple[Path, Path]]:
    """The artifact and the same model as XGBoost JSON given on the command line, or the
    default model trained for this run when neither is given."""
    if model_dir is None or xgboost_model is None:
        with default_model(say) as pair:
            yield pair
    else:
        yield model_dir, xgboost_model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--model-dir` and `--xgboost-model`: the model under test, given together or not at all
    (then `chosen_model` trains the default model); check them with `check_model_arguments`."""
    parser.add_argument("--model-dir", type=Path, help="an unpacked serving artifact")
    parser.add_argument("--xgboost-model", type=Path, help="the same model as XGBoost JSON")


def check_model_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse (`parser.error`, exit status 2) one of `add_model_arguments`' pair without the
    other."""
    if (args.model_dir is None) != (args.xgboost_model is None):
        parser.error("give both --model-dir and --xgboost-model, or neither")


def add_load_arguments(
    parser: argparse.ArgumentParser, *, rounds: int, duration: float, connections: int
) -> None:
    """`--rounds`, `--duration` (seconds per cell) and `--connections`, with these defaults."""
    parser.add_argument(
        "--rounds", type=positive_int, default=rounds, help=f"interleaved rounds ({rounds})"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=duration, help=f"s per cell ({duration:g})"
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=connections,
        help=f"connections for throughput ({connections})",
    )


def chosen_client(choice: str, parser: argparse.ArgumentParser) -> Client:
    """The load generator: `wrk`, or with `auto` wrk when installed, else the Python client;
    refuses (`parser.error`) `wrk` when it is not installed."""
    installed = shutil.which("wrk") is not None
    if choice == "python" or (choice == "auto" and not installed):
        return "python"
    if not installed:
        parser.error("wrk is not installed (apt-get install wrk)")
    return "wrk"


def say(line: str) -> None:
    """Progress, on stderr (results go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark http",
        allow_abbrev=False,
        description="Latency and throughput of the server against the Python HTTP floor "
        "and against xgboost, one worker each, with PASS/FAIL against its targets.",
    )
    add_model_arguments(parser)
    add_load_arguments(parser, rounds=3, duration=5.0, connections=32)
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    add_spread_arguments(
        parser,
        models_help="serve the model as a multi-model endpoint under N names, and spread the "
        "requests over them",
    )
    parser.add_argument("--serve", choices=["floor", "xgboost"], help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--paths", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser


def child(args: argparse.Namespace) -> int:
    """What this module does when the benchmark starts it as a child process: serve (`--serve
    KIND`) or load (`--load URL`)."""
    if args.serve:
        return serve_one(
            args.serve, port=args.port, model_dir=args.model_dir, xgboost_model=args.xgboost_model
        )
    paths = args.paths.read_text().splitlines() if args.paths else ["/invocations"]
    measured = load(args.load, connections=args.connections, seconds=args.duration, paths=paths)
    print(json.dumps(measured))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve or args.load:
        return child(args)
    check_model_arguments(args, parser)
    run = Run(
        rounds=1 if args.quick else args.rounds,
        seconds=1.0 if args.quick else args.duration,
        connections=args.connections,
        client=chosen_client(args.client, parser),
        spread=spread_from_args(args, parser),
    )
    with chosen_model(args.model_dir, args.xgboost_model) as (model_dir, xgboost_model):
        try:
            results = measure(model_dir=model_dir, xgboost_model=xgboost_model, run=run, say=say)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(render(results, run=run))
    failed = not all(passed for *_, passed in verdicts(results))
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
