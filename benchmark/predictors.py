"""`python -m benchmark predictors`: per-row cost of each way to score the model, in one process.

    python -m benchmark predictors                      # trains the default model in a temp dir
    python -m benchmark predictors --model-dir DIR --xgboost-model DIR/../model.xgboost.json

Times, for batches of 1, 10, 100 and 1000 rows (the same realistic rows for every predictor):

- `xgboost DMatrix+predict`: `xgboost.DMatrix(rows)` then `Booster.predict`, what SageMaker's
  built-in XGBoost container does per request (the baseline of the ratios);
- `xgboost inplace_predict`: `Booster.inplace_predict(rows)`, xgboost's fastest path;
- `tl2cgen Predictor`: `tl2cgen.DMatrix` + `tl2cgen.Predictor.predict` on the compiled model.so;
- `treelite GTIL`: the server's portable fallback (`serve.predictor.GtilPredictor`);
- `serve compiled (ctypes)`: the server's own predictor (`serve.predictor.CompiledPredictor`: ctypes
  per row, tl2cgen's C loop from `BATCH_ROWS` rows on).

Each cell is the median over many calls (each call timed with `perf_counter_ns`, for at least
`--seconds` per cell), reported per call and per row, with p99 per call and the speed-up over the
baseline. Every predictor's output is checked against the first one's before timing.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmark.arguments import bounded_float
from benchmark.payloads import make_rows
from benchmark.server import REPO_ROOT
from model.errors import ArtifactError

BATCH_SIZES: Final = (1, 10, 100, 1000)
DISTINCT_ROWS: Final = 8192
AGREEMENT_TOLERANCE: Final = 1e-5
MAX_CALLS_PER_CELL: Final = 200_000

Matrix = npt.NDArray[np.float32]
PredictFn = Callable[[Matrix], Any]


@dataclass(frozen=True)
class Candidate:
    name: str
    predict: PredictFn


@dataclass(frozen=True)
class Cell:
    predictor: str
    batch: int
    calls: int
    median_us: float
    p99_us: float

    @property
    def per_row_us(self) -> float:
        return self.median_us / self.batch


def time_cell(
    predict: PredictFn, batches: Sequence[Matrix], *, seconds: float, min_calls: int = 20
) -> tuple[int, float, float]:
    """Call `predict` on the batches in turn for `seconds` (at least `min_calls` calls).

    Returns (calls, median µs per call, p99 µs per call).
    """
    for batch in batches[:3]:  # warm-up: first-call costs are not what a server pays per request
        predict(batch)
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    index = 0
    clock = time.perf_counter_ns
    while len(samples) < MAX_CALLS_PER_CELL and (
        len(samples) < min_calls or time.perf_counter() < deadline
    ):
        batch = batches[index % len(batches)]
        index += 1
        started = clock()
        predict(batch)
        samples.append(clock() - started)
    samples.sort()
    p99 = samples[min(len(samples) - 1, math.ceil(0.99 * len(samples)) - 1)]
    return len(samples), statistics.median(samples) / 1000.0, p99 / 1000.0


def candidates(
    *, model_dir: Path, xgboost_model: Path | None, threads: int
) -> tuple[list[Candidate], list[str]]:
    """The predictors that can be built here, and notes on the ones that cannot."""
    from model.artifact import read_manifest, resolve_member, verify_files

    found: list[Candidate] = []
    notes: list[str] = []
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)  # the bytes timed are the bytes the manifest names
    num_features = manifest.model.num_features
    compiled = manifest.compiled
    library = resolve_member(model_dir, compiled.library) if compiled else None
    if xgboost_model is not None:
        import xgboost

        booster = xgboost.Booster(params={"nthread": threads}, model_file=str(xgboost_model))

        def dmatrix_predict(rows: Matrix) -> Any:
            # validate_features=False, as the built-in container does: rows carry no names.
            matrix = xgboost.DMatrix(rows, missing=np.nan, nthread=threads)
            return booster.predict(matrix, validate_features=False)

        def inplace_predict(rows: Matrix) -> Any:
            return booster.inplace_predict(rows, missing=np.nan, validate_features=False)

        found += [
            Candidate("xgboost DMatrix+predict", dmatrix_predict),
            Candidate("xgboost inplace_predict", inplace_predict),
        ]
    else:
        notes.append("no --xgboost-model: the xgboost rows are left out")
    if library is not None and library.exists():
        import tl2cgen

        predictor = tl2cgen.Predictor(str(library), nthread=threads)

        def tl2cgen_predict(rows: Matrix) -> Any:
            return predictor.predict(tl2cgen.DMatrix(rows, dtype="float32", missing=np.nan))

        found.append(Candidate("tl2cgen Predictor", tl2cgen_predict))
    else:
        notes.append("the artifact has no compiled library: the tl2cgen row is left out")
    try:
        from serve.predictor import CompiledPredictor, GtilPredictor
    except ImportError as exc:
        notes.append(f"serve.predictor is not importable ({exc}): its rows are left out")
        return found, notes
    checkpoint = resolve_member(model_dir, manifest.fallback.checkpoint)
    if checkpoint.exists():
        gtil = GtilPredictor(checkpoint, num_features=num_features)
        found.append(Candidate("treelite GTIL (serve fallback)", gtil.predict))
    if library is not None and library.exists():
        ctypes_predictor = CompiledPredictor(library, num_features=num_features)
        ctypes_predictor.load_batch_path()  # as the server does: tl2cgen's C loop for batches
        found.append(Candidate("serve compiled (ctypes)", ctypes_predictor.predict))
    return found, notes


def check_agreement(found: Sequence[Candidate], rows: Matrix) -> dict[str, float]:
    """Max absolute difference of each predictor from the first one on `rows`."""
    reference = np.asarray(found[0].predict(rows), dtype=np.float64).reshape(-1)
    differences = {}
    for candidate in found:
        got = np.asarray(candidate.predict(rows), dtype=np.float64).reshape(-1)
        if got.shape != reference.shape:
            raise ValueError(f"{candidate.name} returned {got.shape} values for {len(rows)} rows")
        differences[candidate.name] = float(np.max(np.abs(got - reference)))
    return differences


def measure(
    found: Sequence[Candidate],
    *,
    batch_sizes: Sequence[int],
    seconds: float,
    seed: int,
    progress: Callable[[str], None],
) -> list[Cell]:
    rows = make_rows(DISTINCT_ROWS, seed=seed)
    cells = []
    for size in batch_sizes:
        count = max(1, min(64, DISTINCT_ROWS // size))
        batches = [np.ascontiguousarray(rows[i * size : (i + 1) * size]) for i in range(count)]
        if size > DISTINCT_ROWS:
            batches = [make_rows(size, seed=seed + 1)]
        for candidate in found:
            calls, median, p99 = time_cell(candidate.predict, batches, seconds=seconds)
            cells.append(Cell(candidate.name, size, calls, median, p99))
            progress(
                f"{candidate.name:<32} batch {size:>5}: {median:>10.1f} µs/call ({calls} calls)"
            )
    return cells


def render(cells: Sequence[Cell], *, baseline: str) -> str:
    sizes = sorted({cell.batch for cell in cells})
    names = list(dict.fromkeys(cell.predictor for cell in cells))
    by_key = {(cell.predictor, cell.batch): cell for cell in cells}

    def per_row(name: str, size: int) -> str:
        cell, base = by_key.get((name, size)), by_key.get((baseline, size))
        if cell is None:
            return "–"
        ratio = f" ({base.per_row_us / cell.per_row_us:,.1f}×)" if base else ""
        return f"{cell.per_row_us:,.2f}{ratio}"

    def per_call(name: str, size: int) -> str:
        cell = by_key.get((name, size))
        return "–" if cell is None else f"{cell.median_us:,.1f} / {cell.p99_us:,.1f}"

    lines: list[str] = []
    for title, text in (
        (
            "Per-row cost, µs (median per call / rows); in brackets the speed-up over "
            f"`{baseline}`.",
            per_row,
        ),
        ("Per call, µs: median / p99.", per_call),
    ):
        lines += [
            *([""] if lines else []),
            title,
            "",
            "| predictor | " + " | ".join(f"batch {size}" for size in sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        lines += [
            f"| {name} | " + " | ".join(text(name, size) for size in sizes) + " |" for name in names
        ]
    return "\n".join(lines)


@contextmanager
def default_model(progress: Callable[[str], None]) -> Iterator[tuple[Path, Path]]:
    """Train the default model with `python -m model train` into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="rtb-predictors-") as temp:
        directory = Path(temp)
        archive = directory / "model.tar.gz"
        xgboost_json = directory / "model.xgboost.json"
        progress("training the default model (python -m model train) ...")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "model",
                "train",
                "--output",
                str(archive),
                "--save-json",
                str(xgboost_json),
                "--quiet",
            ],
            check=True,
            cwd=REPO_ROOT,
            stdout=sys.stderr,  # its report is progress here; stdout carries only the tables
        )
        artifact = directory / "artifact"
        artifact.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(artifact, filter="data")
        yield artifact, xgboost_json


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,10,100,1000, got {text!r}") from None
    if not sizes or any(size < 1 or size > 100_000 for size in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be within 1..100000, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark predictors",
        description="Per-row cost of xgboost, tl2cgen and the server's predictors, with ratios.",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="an unpacked serving artifact (default: train one)"
    )
    parser.add_argument(
        "--xgboost-model", type=Path, help="the same model as XGBoost JSON/UBJSON (xgboost rows)"
    )
    parser.add_argument(
        "--batch-sizes", type=_batch_sizes, default=BATCH_SIZES, help="default 1,10,100,1000"
    )
    parser.add_argument(
        "--seconds",
        type=partial(bounded_float, upper=60),
        default=0.5,
        help="time per cell, seconds (default 0.5)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for xgboost and tl2cgen (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the rows")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    try:
        if args.model_dir is None:
            with default_model(progress) as (model_dir, xgboost_model):
                return _run(args, model_dir, xgboost_model, progress)
        if not (args.model_dir / "manifest.json").is_file():
            print(
                f"error: {args.model_dir} has no manifest.json (unpack model.tar.gz)",
                file=sys.stderr,
            )
            return 1
        if args.xgboost_model is not None and not args.xgboost_model.is_file():
            print(f"error: --xgboost-model {args.xgboost_model} does not exist", file=sys.stderr)
            return 1
        return _run(args, args.model_dir, args.xgboost_model, progress)
    except subprocess.CalledProcessError as exc:
        print(f"error: training the default model failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(
    args: argparse.Namespace,
    model_dir: Path,
    xgboost_model: Path | None,
    progress: Callable[[str], None],
) -> int:
    found, notes = candidates(
        model_dir=model_dir, xgboost_model=xgboost_model, threads=args.threads
    )
    for note in notes:
        progress(f"note: {note}")
    if not found:
        print("error: no predictor could be built for this model", file=sys.stderr)
        return 1
    differences = check_agreement(found, make_rows(2000, seed=args.seed + 7))
    disagreeing = {n: d for n, d in differences.items() if d > AGREEMENT_TOLERANCE}
    if disagreeing:
        print(f"error: predictors disagree with {found[0].name}: {disagreeing}", file=sys.stderr)
        return 1
    cells = measure(
        found,
        batch_sizes=args.batch_sizes,
        seconds=args.seconds,
        seed=args.seed,
        progress=progress,
    )
    baseline = found[0].name
    print(render(cells, baseline=baseline))
    worst = max(differences.values())
    print(f"\nAll predictors agree within {worst:.1e} on 2,000 rows; {args.threads} thread(s).")
    if args.output is not None:
        document = {
            "model_dir": str(model_dir),
            "threads": args.threads,
            "baseline": baseline,
            "max_difference": differences,
            "cells": [
                {
                    "predictor": c.predictor,
                    "batch": c.batch,
                    "calls": c.calls,
                    "median_us_per_call": round(c.median_us, 3),
                    "p99_us_per_call": round(c.p99_us, 3),
                    "us_per_row": round(c.per_row_us, 4),
                }
                for c in cells
            ],
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0
