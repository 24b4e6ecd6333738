"""`python -m model {train,build,inspect}`: the command-line front end.

Progress and timings go to stderr, results to stdout. Exit codes: 0 success, 1 the operation
failed (the message names the file and what to fix), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from model.errors import ModelError
from model.tree_limit import TreeLimitOption, parse_tree_limit

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `| head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model",
        description=(
            "Import, train, compile and package XGBoost models for the RTB inference server."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train the default RTB model on synthetic data and package it",
        description=(
            "Train a binary:logistic bid/no-bid model on deterministic synthetic iPinYou-style "
            "bid requests (7 features), check the compiled model against XGBoost itself, and "
            "write the serving artifact. Needs xgboost (requirements/dev.txt)."
        ),
    )
    train.add_argument("--output", type=Path, required=True, help="PATH.tar.gz or a directory")
    train.add_argument("--rows", type=_positive_int, default=100_000, help="training rows")
    train.add_argument("--seed", type=int, default=0, help="seed of data and training (0)")
    train.add_argument("--rounds", type=_positive_int, default=50, help="boosting rounds (50)")
    train.add_argument(
        "--parity-rows",
        type=_positive_int,
        default=20_000,
        help="held-out rows on which the compiled model must match XGBoost (20000)",
    )
    train.add_argument(
        "--save-json",
        type=Path,
        default=None,
        help="also keep the XGBoost JSON model here (default: beside a .tar.gz output)",
    )
    _add_build_options(train)
    train.set_defaults(run=_run_train)

    build = commands.add_parser(
        "build",
        help="build a serving artifact from an existing XGBoost model",
        description=(
            "Build the serving artifact (manifest.json, model.so, model.tl, verification.npz) "
            "from SOURCE: a SageMaker model.tar.gz, a directory, or a model file (pickled "
            "Booster, legacy binary, XGBoost JSON or UBJSON). The format is detected from the "
            "content; a pickle is never executed."
        ),
    )
    build.add_argument(
        "source",
        type=Path,
        metavar="SOURCE",
        help="a SageMaker model.tar.gz, a directory holding a model, or a model file",
    )
    build.add_argument("--output", type=Path, required=True, help="PATH.tar.gz or a directory")
    build.add_argument(
        "--feature-names",
        type=_names,
        default=None,
        metavar="A,B,...",
        help="comma-separated feature names (default: those stored in the model, else f0,f1,...)",
    )
    build.add_argument(
        "--reference",
        type=Path,
        default=None,
        metavar="CSV",
        help="rows of features then the expected prediction; checked and kept for verification",
    )
    _add_build_options(build)
    build.set_defaults(run=_run_build)

    inspect = commands.add_parser(
        "inspect",
        help="describe a serving artifact or a raw SageMaker model",
        description=(
            "Describe PATH: a serving artifact (model.tar.gz or its unpacked directory), whose "
            "manifest is printed and whose file hashes are checked, or a raw XGBoost model "
            "(file, directory or SageMaker model.tar.gz), whose format is reported along with "
            "what `build` would do with it."
        ),
    )
    inspect.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="a serving model.tar.gz or directory, or any source `build` accepts",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON for machines")
    inspect.set_defaults(run=_run_inspect)
    return parser


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="skip the C compiler: the server predicts with treelite GTIL (slower)",
    )
    parser.add_argument("--toolchain", default="gcc", help="C compiler to use (gcc)")
    parser.add_argument(
        "--units",
        type=_positive_int,
        default=None,
        help="translation units to compile in parallel (default: one per CPU)",
    )
    parser.add_argument(
        "--opt-level",
        type=int,
        choices=(0, 1, 2, 3),
        default=1,
        help="compiler -O level (1: fastest to build, no slower to predict than 3)",
    )
    parser.add_argument(
        "--bid-threshold",
        type=_threshold,
        default="auto",
        metavar="X|none|auto",
        help="score at or above which to bid (auto: 0.5 for probabilities, none for regression)",
    )
    parser.add_argument(
        "--tree-limit",
        type=_tree_limit,
        default="auto",
        metavar="N|all|auto",
        help=(
            "trees to compile: auto (default) cuts at best_ntree_limit where the SageMaker "
            "container that wrote the model does, all keeps every tree, N the first N rounds"
        ),
    )
    parser.add_argument(
        "--no-ensemble",
        action="store_true",
        help=(
            "build one model file of a directory of several, as SAGEMAKER_INFERENCE_ENSEMBLE="
            "false (default: all of them, combined as the built-in container does)"
        ),
    )
    parser.add_argument(
        "--verification-rows",
        type=_positive_int,
        default=1_000,
        help="generated verification rows (1000)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _build_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `build_artifact` that `_add_build_options` parsed."""
    return {
        "bid_threshold": args.bid_threshold,
        "compile": not args.no_compile,
        "toolchain": args.toolchain,
        "units": args.units,
        "opt_level": args.opt_level,
        "verification_rows": args.verification_rows,
        "tree_limit": args.tree_limit,
        "ensemble": not args.no_ensemble,
        "created_at": _source_date(),
        "progress": None if args.quiet else _progress,
    }


# --------------------------------------------------------------------------------------------


def _run_build(args: argparse.Namespace) -> int:
    from model.build import build_artifact

    with _output_dir(args.output) as directory:
        manifest = build_artifact(
            args.source,
            output_dir=directory,
            feature_names=args.feature_names,
            reference=args.reference,
            **_build_options(args),
        )
        written = _finish_output(directory, args.output)
    from model.inspection import format_manifest

    print(f"wrote {written}")
    print(format_manifest(manifest))
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from model.inspection import format_manifest
    from model.training import train_artifact

    save_json = args.save_json
    if save_json is None and args.output.name.endswith(".tar.gz"):
        save_json = args.output.with_name(args.output.name[: -len(".tar.gz")] + ".xgboost.json")
    with _output_dir(args.output) as directory:
        result = train_artifact(
            output_dir=directory,
            rows=args.rows,
            seed=args.seed,
            rounds=args.rounds,
            parity_rows=args.parity_rows,
            save_json=save_json,
            **_build_options(args),
        )
        written = _finish_output(directory, args.output)
    print(f"wrote {written}")
    if save_json is not None:
        print(f"wrote {save_json} (XGBoost JSON)")
    print(
        f"held-out rows: {result.parity_rows:,}, compiled vs xgboost max |diff| "
        f"{result.max_abs_diff:.3g}, AUC {result.auc:.4f}, positive rate {result.positive_rate:.2%}"
    )
    print(format_manifest(result.manifest))
    return 0


def _run_inspect(args: argparse.Namespace) -> int:
    from model.inspection import describe

    description = describe(args.path)
    if args.json:
        print(json.dumps(description.as_dict(), indent=2))
    else:
        print(description.text)
    return 0


# --------------------------------------------------------------------------------------------


@contextmanager
def _output_dir(output: Path) -> Iterator[Path]:
    """A scratch directory for a .tar.gz output (removed afterwards), or the output directory."""
    if not _is_archive_name(output):
        yield output
        return
    with tempfile.TemporaryDirectory(prefix="rtb-artifact-") as scratch:
        yield Path(scratch)


def _finish_output(directory: Path, output: Path) -> Path:
    if not _is_archive_name(output):
        return output
    from model.build import package_artifact

    return package_artifact(directory, output=output)


def _is_archive_name(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def _source_date() -> dt.datetime | None:
    """`SOURCE_DATE_EPOCH` (reproducible-builds.org) as the build time, when set."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None:
        return None
    try:
        return dt.datetime.fromtimestamp(int(raw), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise ModelError(f"SOURCE_DATE_EPOCH={raw!r} is not a Unix time in seconds") from None


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _tree_limit(text: str) -> TreeLimitOption:
    try:
        return parse_tree_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threshold(text: str) -> float | Literal["auto"] | None:
    lowered = text.strip().lower()
    if lowered == "auto":
        return "auto"
    if lowered in ("none", "null"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number, 'none' or 'auto'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _names(text: str) -> Sequence[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError("feature names must be non-empty")
    return names
