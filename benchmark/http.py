"""`python -m benchmark http`: our server against the Python HTTP floor and against xgboost.

    python -m benchmark http                       # trains the default model in a temp dir
    python -m benchmark http --model-dir DIR --xgboost-model FILE.json
    python -m benchmark http --quick               # a short, well-formed run (used by the tests)

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
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmark.server import ServerProcess, free_port

ROW: Final = b"2,0,0.0,7.0,3.0,20.0,2"
"""The single-row request the AWS RTB guidance sends (7 features)."""

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

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        return self.process.base_url


@contextmanager
def start_server(
    kind: str, *, model_dir: Path, xgboost_model: Path, log_dir: Path
) -> Iterator[Server]:
    """Start one server subprocess and wait for its first 200 on /ping; always stop it."""
    log = log_dir / f"{kind}.log"
    env = {"OMP_NUM_THREADS": "1", "RTB_LOG_LEVEL": "WARNING"}
    if kind == "compiled":
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
        yield Server(kind, process, time.perf_counter() - started)


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


def run_python_client(url: str, *, connections: int, seconds: float) -> Measurement:
    """The fallback load generator, in its own process so it does not share our interpreter."""
    command = [sys.executable, "-m", "benchmark.http", "--load", url]
    command += ["--connections", str(connections), "--duration", str(seconds)]
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
    host: str, port: int, request: bytes, stop_at: float, latencies: list[int], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
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


def load(url: str, *, connections: int, seconds: float) -> dict[str, float]:
    """Keep-alive POSTs of ROW on `connections` connections for `seconds` (`--load` mode)."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: text/csv\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(ROW), ROW)
    )
    latencies: list[int] = []
    errors: list[int] = []

    async def main() -> float:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                _client_loop(host, int(port), request, stop_at, latencies, errors)
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


def measure(
    *,
    model_dir: Path,
    xgboost_model: Path,
    rounds: int,
    seconds: float,
    connections: int,
    client: str,
    say: Any,
) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % ROW.decode())
        servers: dict[str, Server] = {}
        for kind in SERVERS:
            servers[kind] = stack.enter_context(
                start_server(kind, model_dir=model_dir, xgboost_model=xgboost_model, log_dir=work)
            )
            results.cold_start_s[kind] = servers[kind].cold_start_s
            say(
                f"started {kind} on port {servers[kind].port} in {servers[kind].cold_start_s:.2f} s"
            )

        def run(server: Server, connections: int) -> Measurement:
            if client == "wrk":
                return run_wrk(server.url, connections=connections, seconds=seconds, script=script)
            return run_python_client(server.url, connections=connections, seconds=seconds)

        for server in servers.values():  # warm-up, not recorded
            run(server, 1)
        for round_number in range(1, rounds + 1):
            for kind, server in servers.items():
                latency = run(server, 1)
                throughput = run(server, connections)
                results.latency[kind].append(latency)
                results.throughput[kind].append(throughput)
                say(
                    f"round {round_number}/{rounds} {kind:<8} p50 {latency.p50_us:6.0f} µs  "
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


def render(results: Results, *, connections: int, rounds: int, seconds: float, client: str) -> str:
    lines = [
        f"single-row CSV POST /invocations, 1 uvicorn worker each; load: {client}; "
        f"{rounds} interleaved round(s) of {seconds:g} s per cell; medians over rounds",
        "",
        f"| server | p50 µs @1 conn | p99 µs @1 conn | req/s @{connections} conn | "
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
    (then `chosen_model` trains the default model); check them with `model_arguments_error`."""
    parser.add_argument("--model-dir", type=Path, help="an unpacked serving artifact")
    parser.add_argument("--xgboost-model", type=Path, help="the same model as XGBoost JSON")


def model_arguments_error(model_dir: Path | None, xgboost_model: Path | None) -> str | None:
    """What is wrong with the pair from `add_model_arguments`, or None."""
    if (model_dir is None) != (xgboost_model is None):
        return "give both --model-dir and --xgboost-model, or neither"
    return None


def say(line: str) -> None:
    """Progress, on stderr (results go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark http",
        description="Latency and throughput of the server against the Python HTTP floor "
        "and against xgboost, one worker each, with PASS/FAIL against its targets.",
    )
    add_model_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="for throughput (default 32)")
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--serve", choices=["floor", "xgboost"], help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        return serve_one(
            args.serve, port=args.port, model_dir=args.model_dir, xgboost_model=args.xgboost_model
        )
    if args.load:
        print(json.dumps(load(args.load, connections=args.connections, seconds=args.duration)))
        return 0
    if problem := model_arguments_error(args.model_dir, args.xgboost_model):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    with chosen_model(args.model_dir, args.xgboost_model) as (model_dir, xgboost_model):
        try:
            results = measure(
                model_dir=model_dir,
                xgboost_model=xgboost_model,
                rounds=args.rounds,
                seconds=args.duration,
                connections=args.connections,
                client=client,
                say=say,
            )
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(
        render(
            results,
            connections=args.connections,
            rounds=args.rounds,
            seconds=args.duration,
            client=client,
        )
    )
    failed = not all(passed for *_, passed in verdicts(results))
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
