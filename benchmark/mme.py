"""`python -m benchmark mme`: a multi-model endpoint's load times, latency spread and memory.

    python -m benchmark mme                          # 100 models, about 2 minutes
    python -m benchmark mme --models 1,3 --duration 0.5 --trees 5 --repeats 2   # a smoke run

Trains `max(--models)` distinct small bid models (`model.training`: the default model's 7
features and hyper-parameters, `--trees` rounds, a seed each) and saves each as the built-in
SageMaker XGBoost algorithm does (`xgboost-model`). Starts the server as users run it
(`python -m container serve`, `SAGEMAKER_MULTI_MODEL=true`, one worker, a fresh artifact cache)
through `benchmark.server.ServerProcess`, and beside it the same server in single-model mode on
the first model's compiled artifact: the reference. Then, in one run, it prints:

1. Load time, `POST /models` as the client sees it: the worker's first load (which also imports
   the importer and compiler: one more model, loaded and unloaded before anything else is
   measured), a cold compile (new content: import, compile, verify: every model of the run), a
   cache hit (the first model's content again under a new name and directory), a compiled
   artifact (`manifest.json` ..., under a new name and directory).
2. Invoke latency at one connection (µs, HDR histograms) with 1, 10 and 100 models loaded
   (`--models`), requests spread `uniform` and `zipf` over them (`benchmark.spread`), each cell
   beside a cell of single-model `/invocations` measured right after it; p50 and p99 ratios.
3. The worker's resident memory before loading (after the first load and unload), at each
   level (per loaded model: the growth over the start divided by the models loaded), and after
   unloading every model, with the model libraries (`model.so`) the workers map at the
   highest level and after unloading every model.

Single-row CSV requests (`benchmark.payloads` rows, no missing values), closed loop
(`benchmark.traffic`). Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote

import psutil

from benchmark.arguments import positive_float, positive_int
from benchmark.latency import Percentiles, new_histogram, record
from benchmark.payloads import CSV, encode_rows, make_rows
from benchmark.server import ServerProcess
from benchmark.spread import (
    DEFAULT_ZIPF_EXPONENT,
    SEQUENCE_LENGTH,
    SPREADS,
    ModelSpread,
    Spread,
    add_zipf_exponent_argument,
)
from benchmark.traffic import TrafficPlan, TrafficResult, encode_request, run_traffic

LEVELS: Final = (1, 10, 100)
DEFAULT_TREES: Final = 50
TRAINING_ROWS: Final = 20_000
BODIES: Final = 64
WARM_UP_S: Final = 0.5
LOAD_TIMEOUT_S: Final = 300.0
MIB: Final = 1024 * 1024

Say = Callable[[str], None]


# --- the models -----------------------------------------------------------------------------


def train_raw_models(directory: Path, *, count: int, trees: int, seed: int = 0) -> list[Path]:
    """`count` distinct bid models (seeds `seed` .. `seed + count - 1`), each saved as the
    built-in algorithm saves one: `directory/raw-I/xgboost-model` (XGBoost JSON content)."""
    from model.training import synthesize_bids, train_model

    directories = []
    for index in range(count):
        data = synthesize_bids(rows=TRAINING_ROWS, seed=seed + index)
        booster = train_model(data, seed=seed + index, rounds=trees, params={"nthread": 1})
        raw = directory / f"raw-{index}"
        raw.mkdir(parents=True)
        booster.save_model(str(raw / "model.json"))  # xgboost picks the format by the suffix
        (raw / "model.json").rename(raw / "xgboost-model")
        directories.append(raw)
    return directories


def compiled_artifact(raw: Path, output_dir: Path) -> Path:
    """The serving artifact of a raw model, as `python -m model build` writes it."""
    from model.build import build_artifact

    build_artifact(raw, output_dir=output_dir)
    return output_dir


# --- the multi-model management API, as a client --------------------------------------------


def _call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LOAD_TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def load_model(port: int, name: str, url: Path) -> float:
    """`POST /models {"model_name": name, "url": url}`: seconds until the 200; RuntimeError
    with the server's answer for anything else."""
    body = json.dumps({"model_name": name, "url": str(url)}).encode()
    started = time.perf_counter()
    status, answer = _call(port, "POST", "/models", body)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"loading {name!r} from {url} answered {status}: {answer[:500]!r}")
    return elapsed


def unload_model(port: int, name: str) -> None:
    status, answer = _call(port, "DELETE", model_path(name))
    if status != 200:
        raise RuntimeError(f"unloading {name!r} answered {status}: {answer[:500]!r}")


def model_path(name: str) -> str:
    """`/models/{name}`, the name quoted for a request line (it may hold `/`)."""
    return f"/models/{quote(name, safe='/')}"


def invoke_path(name: str) -> str:
    """`/models/{name}/invoke`, the name quoted as `model_path` quotes it."""
    return f"{model_path(name)}/invoke"


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Options:
    """The command line's options, one field each (their defaults: `build_parser`)."""

    levels: tuple[int, ...]
    """Models loaded at each step, increasing."""
    seconds: float
    """Per latency cell."""
    zipf_exponent: float
    seed: int
    """Of the models, the request rows and the model sequences."""
    trees: int
    repeats: int
    """Loads measured for a cache hit, and for a compiled artifact."""


@dataclass(frozen=True, kw_only=True)
class SpreadCell:
    """Invoke latency (HDR, µs, of the 200s) with `models` loaded, requests spread `spread`."""

    models: int
    spread: Spread
    multi_model: Percentiles
    single_model: Percentiles
    """`/invocations` of the single-model server, measured right after."""
    errors: int
    """Requests of both that got no 200."""


@dataclass
class Results:
    first_load_s: float = 0.0
    """The first load in a fresh worker (a cold compile that also imports the importer)."""
    cold_load_s: list[float] = field(default_factory=list)
    cache_hit_load_s: list[float] = field(default_factory=list)
    compiled_load_s: list[float] = field(default_factory=list)
    cells: list[SpreadCell] = field(default_factory=list)
    rss_start: int = 0
    rss_at: dict[int, int] = field(default_factory=dict)
    """Models loaded -> the worker's RSS, bytes."""
    rss_unloaded: int = 0
    libraries_loaded: int = 0
    """Distinct model libraries the workers map with the most models loaded."""
    libraries_unloaded: int = 0
    """Distinct model libraries the workers still map after every model is unloaded."""
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)


def worker_rss(server: ServerProcess) -> int:
    """The server's workers' resident memory together, bytes."""
    return sum(psutil.Process(pid).memory_info().rss for pid in server.worker_pids())


def mapped_libraries(server: ServerProcess) -> int:
    """Distinct model libraries (``model.so``) mapped by the server's workers."""
    return len(
        {
            region.path
            for pid in server.worker_pids()
            for region in psutil.Process(pid).memory_maps(grouped=True)
            if region.path.endswith("/model.so")
        }
    )


def request_bodies(*, seed: int) -> list[bytes]:
    rows = make_rows(BODIES, seed=seed, missing_rate=0.0)
    return [encode_rows(row, CSV) for row in rows]


def requests_for(paths: Sequence[str], bodies: Sequence[bytes]) -> tuple[bytes, ...]:
    headers = (("Content-Type", CSV), ("Accept", CSV))
    return tuple(
        encode_request(path=path, headers=headers, body=bodies[index % len(bodies)])
        for index, path in enumerate(paths)
    )


def run_cell(port: int, requests: tuple[bytes, ...], *, seconds: float) -> TrafficResult:
    """Closed loop at one connection for `seconds`."""
    return run_traffic(TrafficPlan(port=port, requests=requests, connections=1, duration_s=seconds))


def hdr_percentiles(result: TrafficResult) -> Percentiles:
    """µs percentiles of the 200s, through an HDR histogram."""
    histogram = new_histogram()
    for value in result.latency_us[result.ok()].tolist():
        record(histogram, value)
    latency = Percentiles.of(histogram)
    if latency is None:
        raise RuntimeError(f"no request succeeded: {result.counts()}")
    return latency


def failures(*results: TrafficResult) -> int:
    return sum(result.total - int(result.ok().sum()) for result in results)


def measure(options: Options, *, say: Say) -> Results:
    with tempfile.TemporaryDirectory(prefix="bench-mme-") as tmp:
        return _measure(options, work=Path(tmp), say=say)


def _measure(options: Options, *, work: Path, say: Say) -> Results:
    results = Results(load_before=os.getloadavg())
    count = max(options.levels)
    say(f"training {count + 1} distinct models of {options.trees} trees ...")
    *raws, warm_up = train_raw_models(
        work / "models", count=count + 1, trees=options.trees, seed=options.seed
    )
    say("building the first model's artifact (the reference, and the compiled-artifact loads)")
    artifact = compiled_artifact(raws[0], work / "artifact")
    names = [f"model-{index}" for index in range(count)]
    bodies = request_bodies(seed=options.seed)
    single_requests = requests_for(["/invocations"] * len(bodies), bodies)
    (work / "no-model").mkdir()
    (work / "server-tmp").mkdir()
    env = {"RTB_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    mme_env = {**env, "SAGEMAKER_MULTI_MODEL": "true", "TMPDIR": str(work / "server-tmp")}
    with (
        ServerProcess(model_dir=work / "no-model", log_path=work / "mme.log", env=mme_env) as mme,
        ServerProcess(model_dir=artifact, log_path=work / "single.log", env=env) as single,
    ):
        mme.wait_healthy(timeout=120)
        single.wait_healthy(timeout=120)
        say(f"started the multi-model server on port {mme.port}, the single-model on {single.port}")
        # One load and unload first, of a model of its own: the worker imports the importer
        # and compiler once; the figures below are those of a warm worker.
        results.first_load_s = load_model(mme.port, "warm-up", warm_up)
        unload_model(mme.port, "warm-up")
        results.rss_start = worker_rss(mme)
        loaded = 0
        for level in options.levels:
            for index in range(loaded, level):
                results.cold_load_s.append(load_model(mme.port, names[index], raws[index]))
            loaded = level
            say(f"{level} model(s) loaded; last cold load {results.cold_load_s[-1] * 1e3:.0f} ms")
            every_model = requests_for([invoke_path(name) for name in names[:level]], bodies)
            run_cell(mme.port, every_model, seconds=WARM_UP_S)  # warm-up, not recorded
            results.rss_at[level] = worker_rss(mme)
            results.libraries_loaded = mapped_libraries(mme)
            for spread in SPREADS if level > 1 else SPREADS[:1]:
                drawn = ModelSpread(
                    models=level,
                    spread=spread,
                    zipf_exponent=options.zipf_exponent,
                    seed=options.seed,
                ).sequence(SEQUENCE_LENGTH)
                requests = requests_for([invoke_path(names[i]) for i in drawn], bodies)
                run_cell(single.port, single_requests, seconds=WARM_UP_S)
                ours = run_cell(mme.port, requests, seconds=options.seconds)
                reference = run_cell(single.port, single_requests, seconds=options.seconds)
                cell = SpreadCell(
                    models=level,
                    spread=spread,
                    multi_model=hdr_percentiles(ours),
                    single_model=hdr_percentiles(reference),
                    errors=failures(ours, reference),
                )
                results.cells.append(cell)
                say(
                    f"{level} model(s), {spread}: p50 {cell.multi_model.p50} µs "
                    f"(single model {cell.single_model.p50} µs)"
                )
        extra = []
        for repeat in range(options.repeats):
            copy = shutil.copytree(raws[0], work / f"hit-{repeat}")
            results.cache_hit_load_s.append(load_model(mme.port, f"hit-{repeat}", copy))
            copy = shutil.copytree(artifact, work / f"compiled-{repeat}")
            results.compiled_load_s.append(load_model(mme.port, f"compiled-{repeat}", copy))
            extra += [f"hit-{repeat}", f"compiled-{repeat}"]
        say(f"cache hits and compiled artifacts loaded ({options.repeats} each); unloading all")
        for name in names[:loaded] + extra:
            unload_model(mme.port, name)
        results.rss_unloaded = worker_rss(mme)
        results.libraries_unloaded = mapped_libraries(mme)
    results.load_after = os.getloadavg()
    return results


# --- report ---------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "| 0 | - | - | - |"
    ordered = sorted(values)
    return (
        f"| {len(values)} | {statistics.median(ordered) * 1e3:,.1f} | "
        f"{ordered[0] * 1e3:,.1f} | {ordered[-1] * 1e3:,.1f} |"
    )


def render(results: Results, options: Options) -> str:
    before = " ".join(f"{v:.2f}" for v in results.load_before)
    after = " ".join(f"{v:.2f}" for v in results.load_after)
    lines = [
        f"multi-model endpoint: {max(options.levels)} distinct models of {options.trees} trees "
        f"(7 features), 1 worker; single-row CSV at 1 connection, {options.seconds:g} s per "
        f"cell, HDR µs; {os.cpu_count()} vCPUs, load average before {before}, after {after}",
        "",
        "Load time, POST /models to its 200 (ms):",
        "",
        "| load | loads | p50 | min | max |",
        "|---|---|---|---|---|",
        "| first load in a fresh worker (cold compile + importing treelite, tl2cgen) "
        + _ms([results.first_load_s]),
        "| cold compile (new content: import, compile, verify) " + _ms(results.cold_load_s),
        "| cache hit (same content, new name) " + _ms(results.cache_hit_load_s),
        "| compiled artifact (new name) " + _ms(results.compiled_load_s),
        "",
        "Invoke latency (µs): POST /models/{name}/invoke, and /invocations of the single-model "
        "server (the first model's content) measured right after it:",
        "",
        "| models loaded | spread | requests | p50 | p99 | single p50 | single p99 | "
        "p50 ratio | p99 ratio | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in results.cells:
        ours, reference = cell.multi_model, cell.single_model
        spread = (
            "(one model)"
            if cell.models == 1
            else (f"zipf s={options.zipf_exponent:g}" if cell.spread == "zipf" else cell.spread)
        )
        lines.append(
            f"| {cell.models} | {spread} | {ours.count:,} | {ours.p50:,} | {ours.p99:,} | "
            f"{reference.p50:,} | {reference.p99:,} | {ours.p50 / reference.p50:.2f} | "
            f"{ours.p99 / reference.p99:.2f} | {cell.errors} |"
        )
    start = results.rss_start
    lines += [
        "",
        "Worker RSS (MiB):",
        "",
        "| models loaded | RSS | growth | per model (KiB) |",
        "|---|---|---|---|",
        f"| 0 (start, after one load and unload) | {start / MIB:.1f} | | |",
    ]
    for level, rss in results.rss_at.items():
        lines.append(
            f"| {level} | {rss / MIB:.1f} | {(rss - start) / MIB:+.1f} | "
            f"{(rss - start) / level / 1024:,.0f} |"
        )
    residual = results.rss_unloaded - start
    lines += [
        f"| 0 (all unloaded) | {results.rss_unloaded / MIB:.1f} | {residual / MIB:+.1f} | |",
        "",
        f"After unloading every model the worker stays {residual / MIB:+.1f} MiB over its start; "
        f"model libraries mapped: {results.libraries_loaded} with {max(results.rss_at)} models "
        f"loaded, {results.libraries_unloaded} after unloading every model.",
    ]
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------


def _levels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of whole numbers: {text!r}"
        ) from None
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"every level must be >= 1: {text!r}")
    if list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"levels must be increasing, without repeats: {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark mme",
        allow_abbrev=False,
        description="A multi-model endpoint in one run: load time (cold compile, cache hit, "
        "compiled artifact), invoke latency with 1, 10 and 100 models loaded (uniform and Zipf) "
        "beside single-model /invocations, and worker memory per loaded model.",
    )
    parser.add_argument(
        "--models",
        dest="levels",
        type=_levels,
        default=LEVELS,
        metavar="N,N,...",
        help="models loaded at each step, increasing (default 1,10,100)",
    )
    parser.add_argument(
        "--duration",
        dest="seconds",
        type=positive_float,
        default=5.0,
        help="seconds per latency cell (5)",
    )
    add_zipf_exponent_argument(parser, default=DEFAULT_ZIPF_EXPONENT)
    parser.add_argument("--seed", type=int, default=0, help="seed of models, rows, sequences (0)")
    parser.add_argument(
        "--trees", type=positive_int, default=DEFAULT_TREES, help="trees a model (50)"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=5,
        help="cache-hit loads, and compiled-artifact loads, measured (5 each)",
    )
    return parser


def say(line: str) -> None:
    """Progress, on stderr (results go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = Options(**vars(build_parser().parse_args(argv)))  # one option a field
    try:
        results = measure(options, say=say)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(render(results, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
