"""`python -m benchmark bulk`: rows per second at 1 to 10,000 rows a request, against xgboost.

    python -m benchmark bulk                        # trains the default model in a temp dir
    python -m benchmark bulk --model-dir DIR --xgboost-model FILE.json
    python -m benchmark bulk --quick --charts DIR   # a short, well-formed run (used by the tests)

Side by side in one run, one uvicorn worker each, same uvicorn options
(`container.server_config.uvicorn_options`), load from `wrk` (`--connections`, default 8):

- `serve`: `python -m container serve --model-dir DIR`, exactly as users run it;
- `xgboost`: a plain FastAPI server as one writes it: `np.loadtxt` (CSV), `json.loads` (JSON,
  JSON Lines), `np.load` (npy), a split of each line (LIBSVM), the protobuf `Record` of each
  frame (RecordIO), `xgboost.DMatrix` and `Booster.predict`, the scores written with
  `str` / `json` (the `xgboost_app` below);
- `floor`: the raw ASGI constant of `benchmark.http`, the Python HTTP floor.

What it prints (stdout; progress on stderr):

1. The sweep: for each content type and rows per request (`--rows`, default 1, 10, 100, 1,000,
   10,000), rows/s, p50 and p99 of both servers, and the ratio; `--rounds` interleaved rounds
   (so drifts in machine load hit both alike), each cell the run of median rate. Bodies are
   `benchmark.payloads` rows without missing values (`np.loadtxt` refuses an empty field);
   JSON and JSON Lines are answered in their own type, the others in CSV. The 1-row LIBSVM and
   RecordIO bodies carry the same row as the 1-row CSV body, so their cost compares with it.
2. The in-process cost of each stage at 1,000 rows: decode, predict, encode (no HTTP).
3. Scaling with workers = vCPUs: 1 vs N workers of `serve` and of the floor, single-row and
   1,000-row CSV.
4. The single-row latency distribution at 1 connection: `serve`, floor and xgboost.
5. The targets with PASS/FAIL: at 1,000 rows a request, <= 0.5 µs a row and >= 4x xgboost,
   and >= 3x at 100 rows, for CSV, JSON, JSON Lines and npy; a LIBSVM or RecordIO row costs at
   most 1.5x a CSV row, at 1 and at 1,000 rows a request (when CSV is measured too); encoding
   1,000 scores costs no more than predicting them.

Charts (matplotlib, `--charts`, default docs/img): `bulk-sweep.png` (rows/s against rows per
request, both servers, log axes) and `bulk-single-row-latency.png`.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import Response

from benchmark.arguments import positive_int
from benchmark.http import (
    WRK_SCRIPT,
    Measurement,
    add_load_arguments,
    add_model_arguments,
    check_model_arguments,
    chosen_client,
    chosen_model,
    run_wrk,
    say,
)
from benchmark.payloads import (
    CONTENT_TYPES,
    CSV,
    GUIDANCE_ROW,
    JSON,
    JSONLINES,
    LIBSVM,
    NPY,
    RECORDIO,
    encode_rows,
    make_rows,
)
from benchmark.server import SERVE_COMMAND, ServerProcess, free_port

ROOT: Final = Path(__file__).resolve().parents[1]
ROWS_PER_REQUEST: Final = (1, 10, 100, 1_000, 10_000)
QUICK_ROWS: Final = (1, 1_000)
ACCEPT: Final = {CSV: CSV, NPY: CSV, JSON: JSON, JSONLINES: JSONLINES, LIBSVM: CSV, RECORDIO: CSV}
SHORT: Final = {
    CSV: "csv",
    JSON: "json",
    JSONLINES: "jsonlines",
    NPY: "npy",
    LIBSVM: "libsvm",
    RECORDIO: "recordio",
}

COST_PER_ROW_MAX_US: Final = 0.5
RATIO_MIN: Final = {1_000: 4.0, 100: 3.0}
SPARSE_FORMATS: Final = (LIBSVM, RECORDIO)
"""Held to their cost a row against CSV's (`COST_OF_CSV_MAX`), not to the bulk targets."""
COST_OF_CSV_MAX: Final = 1.5
BULK_ROWS: Final = 1_000
SCORE_TOLERANCE: Final = 1e-5

SWEEP_CHART: Final = "bulk-sweep.png"
LATENCY_CHART: Final = "bulk-single-row-latency.png"
PERCENTILES: Final = (1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


# --- the baseline: a plain FastAPI + xgboost server ----------------------------------------


def baseline_decode(content_type: str, body: bytes) -> npt.NDArray[np.float32]:
    """What a plain server does with each body."""
    if content_type == CSV:
        return np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float32, ndmin=2)
    if content_type == JSON:
        return np.array(json.loads(body)["instances"], dtype=np.float32)
    if content_type == JSONLINES:
        rows = [json.loads(line) for line in body.splitlines() if line.strip()]
        return np.array(rows, dtype=np.float32)
    if content_type == NPY:
        array = np.load(io.BytesIO(body), allow_pickle=False)
        return np.asarray(array, dtype=np.float32).reshape(-1, array.shape[-1])
    if content_type == LIBSVM:
        cells = [
            dict(token.split(":") for token in line.split()[1:])
            for line in body.decode().splitlines()
            if line.strip()
        ]
        width = 1 + max((int(index) for row in cells for index in row), default=-1)
        matrix = np.full((len(cells), width), np.nan, dtype=np.float32)
        for number, row in enumerate(cells):
            for index, value in row.items():
                matrix[number, int(index)] = float(value)
        return matrix
    if content_type == RECORDIO:
        from serve.recordio import Record, split_records

        records = [Record.FromString(payload) for payload in split_records(body, max_records=10**6)]
        return np.array(
            [list(r.features["values"].float32_tensor.values) for r in records], dtype=np.float32
        )
    raise ValueError(f"unsupported content type {content_type!r}")


def baseline_encode(accept: str, scores: npt.NDArray[np.float32]) -> tuple[bytes, str]:
    values = scores.tolist()
    if accept == JSON:
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode(), JSON
    if accept == JSONLINES:
        return "".join(json.dumps({"score": v}) + "\n" for v in values).encode(), JSONLINES
    return "\n".join(map(str, values)).encode(), CSV


def xgboost_app(model_file: Path) -> Any:
    """FastAPI, `xgboost.DMatrix` and `Booster.predict` on one thread: the usual server."""
    import xgboost

    booster = xgboost.Booster(params={"nthread": 1}, model_file=str(model_file))
    names = booster.feature_names
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200)

    @app.post("/invocations")
    async def invocations(request: HTTPRequest) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type", CSV).split(";")[0].strip()
        features = baseline_decode(content_type, body)
        matrix = xgboost.DMatrix(features, missing=np.nan, nthread=1, feature_names=names)
        scores = booster.predict(matrix)
        content, media_type = baseline_encode(request.headers.get("accept", CSV), scores)
        return Response(content, media_type=media_type)

    return app


def serve_one(kind: str, *, port: int, workers: int, xgboost_model: Path | None) -> int:
    """Run one comparison server in this process (the `--serve` mode of this module)."""
    import uvicorn

    from container.server_config import uvicorn_options
    from serve.settings import Settings

    settings = Settings(host="127.0.0.1", port=port, workers=workers, log_level="WARNING")
    options = {**uvicorn_options(settings), "factory": False}
    if kind == "floor":
        uvicorn.run("benchmark.http:floor_app", **options)
        return 0
    if xgboost_model is None:
        raise SystemExit("--serve xgboost needs --xgboost-model")
    uvicorn.run(xgboost_app(xgboost_model), **{**options, "workers": 1})
    return 0


# --- servers and load -----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def launch(name: str, command: Callable[[int], list[str]], *, log_dir: Path) -> Iterator[Endpoint]:
    """Start `command(port)` through the harness's `ServerProcess` and wait for its first 200
    on /ping; always stop it (and its workers)."""
    port = free_port()
    env = {"OMP_NUM_THREADS": "1", "RTB_LOG_LEVEL": "WARNING"}
    log = log_dir / f"{name}.log"
    with ServerProcess(argv=command(port), port=port, log_path=log, env=env) as process:
        try:
            process.wait_healthy(timeout=120, poll_s=0.02)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{name} did not start: {exc}") from None
        yield Endpoint(name, port, process.pid)


def serve_command(model_dir: Path, workers: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            *SERVE_COMMAND, "--model-dir", str(model_dir), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip

    return command


def own_command(kind: str, *, workers: int, xgboost_model: Path) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "benchmark.bulk", "--serve", kind, "--port", str(port),
            "--workers", str(workers), "--xgboost-model", str(xgboost_model),
        ]  # fmt: skip

    return command


@dataclass(frozen=True)
class Payload:
    """One request body and its headers, written where wrk's Lua script reads it."""

    content_type: str
    rows: int
    body: bytes

    @property
    def accept(self) -> str:
        return ACCEPT[self.content_type]

    def script(self, work: Path) -> Path:
        """A wrk script sending this body: benchmark.http's, with the body read from a file."""
        stem = f"{SHORT[self.content_type]}-{self.rows}"
        body_file = work / f"{stem}.body"
        body_file.write_bytes(self.body)
        script = work / f"{stem}.lua"
        script.write_text(
            f'local file = assert(io.open("{body_file}", "rb"))\n'
            'local body = file:read("*a")\nfile:close()\n'
            + WRK_SCRIPT % '" .. body .. "'
            + f'wrk.headers["Content-Type"] = "{self.content_type}"\n'
            + f'wrk.headers["Accept"] = "{self.accept}"\n'
        )
        return script


def make_request(content_type: str, rows: int, *, seed: int = 0) -> Payload:
    """Rows of `benchmark.payloads`, without missing values (np.loadtxt refuses an empty field)."""
    if content_type == CSV and rows == 1:
        return Payload(CSV, 1, GUIDANCE_ROW)  # the single row benchmark.http sends
    if content_type in (LIBSVM, RECORDIO) and rows == 1:  # the same row, for a like comparison
        row = np.array([[float(cell) for cell in GUIDANCE_ROW.split(b",")]], dtype=np.float32)
        return Payload(content_type, 1, encode_rows(row, content_type))
    return Payload(
        content_type, rows, encode_rows(make_rows(rows, seed=seed, missing_rate=0.0), content_type)
    )


def post(endpoint: Endpoint, request: Payload) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=60)
    try:
        headers = {"Content-Type": request.content_type, "Accept": request.accept}
        connection.request("POST", "/invocations", body=request.body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def read_scores(accept: str, body: bytes) -> npt.NDArray[np.float64]:
    """The scores of a 200 answer, whichever server wrote it."""
    if accept == JSON:
        return np.array([p["score"] for p in json.loads(body)["predictions"]], dtype=np.float64)
    if accept == JSONLINES:
        return np.array([json.loads(line)["score"] for line in body.splitlines()], dtype=np.float64)
    return np.array([float(line) for line in body.splitlines()], dtype=np.float64)


def agreement(servers: Sequence[Endpoint], requests: Sequence[Payload]) -> float:
    """Largest score difference between the servers over `requests`; raises on a non-200 or
    a difference over SCORE_TOLERANCE (the servers would not be computing the same model)."""
    largest = 0.0
    for request in requests:
        answers = []
        for endpoint in servers:
            status, body = post(endpoint, request)
            if status != 200:
                raise RuntimeError(
                    f"{endpoint.name} answered {status} to {request}: {body[:300]!r}"
                )
            answers.append(read_scores(request.accept, body))
        for answer in answers[1:]:
            if answer.shape != answers[0].shape:
                raise RuntimeError(f"{request}: {answer.shape} scores, not {answers[0].shape}")
            largest = max(largest, float(np.max(np.abs(answer - answers[0]))))
    if not largest <= SCORE_TOLERANCE:
        raise RuntimeError(f"the servers' scores differ by {largest:.2e} (> {SCORE_TOLERANCE:g})")
    return largest


def wrk_percentiles(url: str, *, script: Path, seconds: float) -> dict[float, float]:
    """Latency percentiles (µs) at one connection: wrk with a `done` hook printing them."""
    hook = script.with_suffix(".percentiles.lua")
    lines = ", ".join(f"{p:g}" for p in PERCENTILES)
    hook.write_text(
        script.read_text().split("done = function")[0]
        + "done = function(summary, latency, requests)\n"
        + f"  for _, p in ipairs({{{lines}}}) do\n"
        + '    io.write(string.format("PCT %g %d\\n", p, latency:percentile(p)))\n'
        + "  end\nend\n"
    )
    command = ["wrk", "-t1", "-c1", f"-d{max(1, round(seconds))}s", "-s", str(hook)]
    result = subprocess.run(
        [*command, f"{url}/invocations"], capture_output=True, text=True, timeout=seconds + 60
    )
    found = {
        float(parts[1]): float(parts[2])
        for parts in (line.split() for line in result.stdout.splitlines())
        if len(parts) == 3 and parts[0] == "PCT"
    }
    if len(found) != len(PERCENTILES):
        raise RuntimeError(f"wrk printed no percentiles:\n{result.stdout}\n{result.stderr}")
    return found


# --- the run --------------------------------------------------------------------------------


@dataclass
class Results:
    rows: tuple[int, ...]
    content_types: tuple[str, ...]
    connections: int
    seconds: float
    sweep: dict[tuple[str, int, str], Measurement] = field(default_factory=dict)
    """(content type, rows per request, server) -> measurement."""
    stages: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """content type -> (decode, predict, encode) µs at BULK_ROWS rows, in process."""
    scaling: dict[tuple[str, int, int], Measurement] = field(default_factory=dict)
    """(server, workers, rows per request) -> measurement."""
    workers: int = 1
    rounds: int = 1
    error_count: int = 0
    latency: dict[str, dict[float, float]] = field(default_factory=dict)
    max_score_difference: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def rows_per_s(self, content_type: str, rows: int, server: str) -> float:
        return self.sweep[(content_type, rows, server)].rate * rows

    def ratio(self, content_type: str, rows: int) -> float:
        baseline = self.rows_per_s(content_type, rows, "xgboost")
        return self.rows_per_s(content_type, rows, "serve") / baseline if baseline else 0.0


def median_run(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median rate (the lower one of an even count), latencies included."""
    ordered = sorted(runs, key=lambda m: m.rate)
    return ordered[(len(ordered) - 1) // 2]


def stage_costs(model_dir: Path, content_types: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Decode, predict and encode of a BULK_ROWS-row body in this process, µs (best of 5)."""
    from serve.codecs import DECODERS, ENCODERS
    from serve.outputs import OutputSelection
    from serve.predictor import load_model

    predictor = load_model(model_dir).predictor
    selection = OutputSelection()
    costs: dict[str, tuple[float, ...]] = {}
    for content_type in content_types:
        request = make_request(content_type, BULK_ROWS)
        features = DECODERS[content_type](
            request.body, num_features=predictor.num_features, max_rows=BULK_ROWS
        )
        scores = predictor.predict(features)
        costs[content_type] = (
            _best_us(DECODERS[content_type], request.body,
                     num_features=predictor.num_features, max_rows=BULK_ROWS),
            _best_us(predictor.predict, features),
            _best_us(ENCODERS[request.accept], scores, selection),
        )  # fmt: skip
    return costs


def _best_us(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Best of 5 averages of 20 calls, µs."""
    return min(timeit.repeat(lambda: function(*args, **kwargs), number=20, repeat=5)) / 20 * 1e6


def measure(
    *,
    model_dir: Path,
    xgboost_model: Path,
    rows: tuple[int, ...],
    content_types: tuple[str, ...],
    seconds: float,
    connections: int,
    workers: int,
    rounds: int,
    say: Callable[[str], None],
) -> Results:
    results = Results(rows, content_types, connections, seconds, workers=workers, rounds=rounds)
    results.load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp, ExitStack() as stack:
        work = Path(tmp)

        def start(name: str, command: Callable[[int], list[str]]) -> Endpoint:
            endpoint = stack.enter_context(launch(name, command, log_dir=work))
            say(f"started {name} on port {endpoint.port}")
            return endpoint

        serve = start("serve", serve_command(model_dir, 1))
        xgboost = start("xgboost", own_command("xgboost", workers=1, xgboost_model=xgboost_model))
        floor = start("floor", own_command("floor", workers=1, xgboost_model=xgboost_model))
        pair = {"serve": serve, "xgboost": xgboost}
        requests = {(t, n): make_request(t, n) for t in content_types for n in rows}
        results.max_score_difference = agreement(
            [serve, xgboost], [make_request(t, 100) for t in content_types]
        )
        say(f"scores agree: max |serve - xgboost| = {results.max_score_difference:.2e}")
        scripts = {key: request.script(work) for key, request in requests.items()}
        for script in {scripts[(t, min(rows))] for t in content_types}:  # warm-up
            for endpoint in pair.values():
                run_wrk(endpoint.url, connections=connections, seconds=1, script=script)
        single = make_request(CSV, 1).script(work)
        bulk = make_request(CSV, BULK_ROWS).script(work)
        scaled = {(name, 1): endpoint for name, endpoint in (("serve", serve), ("floor", floor))}
        if workers > 1:
            scaled[("serve", workers)] = start(
                f"serve-{workers}", serve_command(model_dir, workers)
            )
            scaled[("floor", workers)] = start(
                f"floor-{workers}",
                own_command("floor", workers=workers, xgboost_model=xgboost_model),
            )
        sweep: dict[tuple[str, int, str], list[Measurement]] = {}
        scaling: dict[tuple[str, int, int], list[Measurement]] = {}
        for round_number in range(1, rounds + 1):
            for (content_type, n), script in scripts.items():
                for name, endpoint in pair.items():
                    measured = run_wrk(
                        endpoint.url, connections=connections, seconds=seconds, script=script
                    )
                    sweep.setdefault((content_type, n, name), []).append(measured)
                    say(
                        f"round {round_number}/{rounds} {SHORT[content_type]:>9} {n:>6} rows  "
                        f"{name:<8} {measured.rate * n:>11,.0f} rows/s  p50 "
                        f"{measured.p50_us:>7.0f} µs  p99 {measured.p99_us:>7.0f} µs  "
                        f"errors {measured.errors}"
                    )
            for (name, count), endpoint in scaled.items():
                for n, script in ((1, single), (BULK_ROWS, bulk)):
                    measured = run_wrk(
                        endpoint.url, connections=connections, seconds=seconds, script=script
                    )
                    scaling.setdefault((name, count, n), []).append(measured)
                    say(f"scaling {name} x{count} {n:>5} rows: {measured.rate * n:,.0f} rows/s")
        results.sweep = {key: median_run(runs) for key, runs in sweep.items()}
        results.scaling = {key: median_run(runs) for key, runs in scaling.items()}
        results.error_count = sum(
            m.errors for runs in [*sweep.values(), *scaling.values()] for m in runs
        )
        for name, endpoint in {**pair, "floor": floor}.items():
            results.latency[name] = wrk_percentiles(endpoint.url, script=single, seconds=seconds)
            say(f"single-row latency {name}: p50 {results.latency[name][50.0]:.0f} µs")
    say("in-process stage costs ...")
    results.stages = {
        k: (v[0], v[1], v[2]) for k, v in stage_costs(model_dir, content_types).items()
    }
    results.load_after = os.getloadavg()
    return results


# --- report ---------------------------------------------------------------------------------


def verdicts(results: Results) -> list[tuple[str, float, str, bool]]:
    """(what, value, target, passed) for the targets, per content type."""
    found: list[tuple[str, float, str, bool]] = []
    for content_type in results.content_types:
        short = SHORT[content_type]
        if content_type in SPARSE_FORMATS:
            found.extend(_against_csv(results, content_type))
        elif BULK_ROWS in results.rows:
            cost = 1e6 / results.rows_per_s(content_type, BULK_ROWS, "serve")
            found.append(
                (
                    f"{short}: µs a row at {BULK_ROWS:,} rows, serve",
                    cost,
                    f"<= {COST_PER_ROW_MAX_US}",
                    cost <= COST_PER_ROW_MAX_US,
                )
            )
        for n, minimum in RATIO_MIN.items():
            if n in results.rows and content_type not in SPARSE_FORMATS:
                ratio = results.ratio(content_type, n)
                found.append(
                    (f"{short}: rows/s at {n:,} rows, serve / xgboost", ratio, f">= {minimum:g}",
                     ratio >= minimum)
                )  # fmt: skip
        if content_type in results.stages:
            _, predict, encode = results.stages[content_type]
            share = encode / predict
            found.append(
                (f"{short}: encode / predict at {BULK_ROWS:,} rows", share, "<= 1", share <= 1.0)
            )
    return found


def _against_csv(results: Results, content_type: str) -> list[tuple[str, float, str, bool]]:
    """A row's cost in `content_type` over a CSV row's, serve, at 1 and BULK_ROWS rows."""
    found = []
    if CSV in results.content_types:
        for n in (1, BULK_ROWS):
            if n in results.rows:
                ratio = results.rows_per_s(CSV, n, "serve") / results.rows_per_s(
                    content_type, n, "serve"
                )
                found.append(
                    (f"{SHORT[content_type]}: cost a row / CSV's at {n:,} rows, serve", ratio,
                     f"<= {COST_OF_CSV_MAX:g}", ratio <= COST_OF_CSV_MAX)
                )  # fmt: skip
    return found


def render(results: Results, *, client: str = "wrk") -> str:
    load = " ".join(f"{v:.2f}" for v in results.load_before)
    load_after = " ".join(f"{v:.2f}" for v in results.load_after)
    lines = [
        f"POST /invocations, 1 uvicorn worker each; load: {client}, {results.connections} "
        f"connections, {results.seconds:g} s per cell, median of {results.rounds} interleaved "
        f"round(s); {os.cpu_count()} vCPUs; "
        f"load average before {load}, after {load_after}",
        f"scores agree: max |serve - xgboost| = {results.max_score_difference:.2e}",
        "",
        "| content type | rows/request | serve rows/s | xgboost rows/s | ratio | "
        "serve p50 µs | serve p99 µs | xgboost p50 µs | xgboost p99 µs | serve µs/row |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for content_type in results.content_types:
        for n in results.rows:
            ours = results.sweep[(content_type, n, "serve")]
            theirs = results.sweep[(content_type, n, "xgboost")]
            rate = ours.rate * n
            lines.append(
                f"| {content_type} | {n:,} | {rate:,.0f} | {theirs.rate * n:,.0f} | "
                f"{results.ratio(content_type, n):.2f} | {ours.p50_us:,.0f} | {ours.p99_us:,.0f} | "
                f"{theirs.p50_us:,.0f} | {theirs.p99_us:,.0f} | "
                f"{(1e6 / rate if rate else float('inf')):.2f} |"
            )
    lines += [
        "",
        f"In process, {BULK_ROWS:,} rows a request (µs, best of 5; no HTTP):",
        "",
        "| content type | decode | predict | encode | encode / predict |",
        "|---|---|---|---|---|",
    ]
    for content_type, (decode, predict, encode) in results.stages.items():
        lines.append(
            f"| {content_type} -> {ACCEPT[content_type]} | {decode:.0f} | {predict:.0f} | "
            f"{encode:.0f} | {encode / predict:.2f} |"
        )
    lines += [
        "",
        f"Scaling, CSV, {results.connections} connections (rows/s):",
        "",
        f"| server | workers | 1 row | {BULK_ROWS:,} rows |",
        "|---|---|---|---|",
    ]
    for (name, count, n), measured in sorted(results.scaling.items()):
        if n != 1:
            continue
        many = results.scaling[(name, count, BULK_ROWS)]
        lines.append(f"| {name} | {count} | {measured.rate:,.0f} | {many.rate * BULK_ROWS:,.0f} |")
    for name in ("serve", "floor"):
        if results.workers > 1 and (name, results.workers, 1) in results.scaling:
            single = (
                results.scaling[(name, results.workers, 1)].rate
                / results.scaling[(name, 1, 1)].rate
            )
            bulk = (
                results.scaling[(name, results.workers, BULK_ROWS)].rate
                / results.scaling[(name, 1, BULK_ROWS)].rate
            )
            lines.append(
                f"| {name}: {results.workers} / 1 workers | | {single:.2f}x | {bulk:.2f}x |"
            )
    lines += [
        "",
        "Single-row CSV latency at 1 connection (µs):",
        "",
        "| server | " + " | ".join(f"p{p:g}" for p in PERCENTILES) + " |",
        "|---|" + "---|" * len(PERCENTILES),
    ]
    for name, found in results.latency.items():
        lines.append(f"| {name} | " + " | ".join(f"{found[p]:.0f}" for p in PERCENTILES) + " |")
    lines += ["", "| target | measured | required | verdict |", "|---|---|---|---|"]
    for what, value, target, passed in verdicts(results):
        lines.append(f"| {what} | {value:.2f} | {target} | {'PASS' if passed else 'FAIL'} |")
    lines.append(f"\nerrors (non-2xx or socket) over all runs: {results.error_count}")
    return "\n".join(lines)


def write_charts(results: Results, directory: Path) -> list[Path]:
    """The sweep (rows/s against rows per request, log axes) and the single-row latencies."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(9.0, 6.5), dpi=100, layout="constrained")
    count = len(results.content_types)
    columns = 2 if count > 1 else 1
    grid = figure.subplots((count + columns - 1) // columns, columns, squeeze=False)
    for axes, content_type in zip(grid.flat, results.content_types, strict=False):
        for name, style in (("serve", "o-"), ("xgboost", "s--")):
            rates = [results.rows_per_s(content_type, n, name) for n in results.rows]
            axes.plot(results.rows, rates, style, label=name)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_title(content_type)
        axes.set_xlabel("rows per request")
        axes.set_ylabel("rows/s, 1 worker")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    for axes in list(grid.flat)[count:]:
        axes.set_visible(False)
    load = ", ".join(f"{v:.1f}" for v in results.load_before)
    figure.suptitle(
        f"Bulk scoring: serve vs FastAPI + xgboost, 1 worker each, {results.connections} "
        f"connections\n{os.cpu_count()} vCPUs, load average before the run {load}"
    )
    sweep = directory / SWEEP_CHART
    figure.savefig(sweep)

    figure = Figure(figsize=(8.0, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(PERCENTILES)))
    for name, found in results.latency.items():
        axes.plot(positions, [found[p] for p in PERCENTILES], marker="o", label=name)
    axes.set_xticks(positions, [f"p{p:g}" for p in PERCENTILES])
    axes.set_yscale("log")
    axes.set_ylabel("latency (µs, log scale)")
    axes.set_xlabel("percentile")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    axes.set_title(f"Single-row CSV request at 1 connection, 1 worker each (load average {load})")
    latency = directory / LATENCY_CHART
    figure.savefig(latency)
    return [sweep, latency]


# --- command line ---------------------------------------------------------------------------


def _rows_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"rows per request must be >= 1: {text!r}")
    return values


def _content_types(text: str) -> tuple[str, ...]:
    names = {short: media for media, short in SHORT.items()}
    chosen = tuple(names.get(part.strip(), part.strip()) for part in text.split(","))
    unknown = [c for c in chosen if c not in CONTENT_TYPES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown content type {unknown[0]!r}; choose from {', '.join(SHORT.values())}"
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark bulk",
        description="Rows per second at 1 to 10,000 rows a request, this server against a "
        "FastAPI + xgboost server, one worker each, per content type; scaling with workers; "
        "single-row latency; the bulk targets with PASS/FAIL; charts.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--rows",
        type=_rows_list,
        default=ROWS_PER_REQUEST,
        help="rows per request, comma-separated (default 1,10,100,1000,10000)",
    )
    parser.add_argument(
        "--types",
        type=_content_types,
        default=CONTENT_TYPES,
        help="content types, comma-separated: csv,json,jsonlines,npy,libsvm,recordio (default all)",
    )
    add_load_arguments(parser, rounds=1, duration=3.0, connections=8)
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="workers for the scaling table (default: vCPUs)",
    )
    parser.add_argument(
        "--charts", type=Path, default=ROOT / "docs" / "img", help="chart directory (docs/img)"
    )
    parser.add_argument("--quick", action="store_true", help="1 and 1,000 rows, 1 s: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--serve", choices=["floor", "xgboost"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve:
        return serve_one(
            args.serve, port=args.port, workers=args.workers, xgboost_model=args.xgboost_model
        )
    check_model_arguments(args, parser)
    chosen_client("wrk", parser)  # wrk only: its scripts carry the bodies
    if args.quick:
        args.rows, args.duration, args.rounds = QUICK_ROWS, 1.0, 1

    with chosen_model(args.model_dir, args.xgboost_model) as (model_dir, xgboost_model):
        try:
            results = measure(
                model_dir=model_dir,
                xgboost_model=xgboost_model,
                rows=args.rows,
                content_types=args.types,
                seconds=args.duration,
                connections=args.connections,
                workers=args.workers,
                rounds=args.rounds,
                say=say,
            )
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(render(results))
    for path in write_charts(results, args.charts):
        say(f"wrote {path}")
    failed = not all(passed for *_, passed in verdicts(results))
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
