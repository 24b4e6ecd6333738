"""`python -m benchmark SUBCOMMAND ...`: each subcommand is a module with a `main(argv)`."""

from __future__ import annotations

import importlib
import sys

# Subcommand name -> module that implements it. Modules are imported only when chosen,
# so one benchmark's heavy dependencies never slow another's start.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "http": ("benchmark.http", "side-by-side HTTP latency and throughput against the Python floor"),
    "predictors": ("benchmark.predictors", "per-row cost of xgboost and the compiled predictor"),
    "locust": ("benchmark.locust", "headless Locust run with µs percentiles, report and plots"),
    "capacity": ("benchmark.capacity", "max invocations per minute at a p99 bound, and cost"),
    "coldstart": ("benchmark.coldstart", "image size and container start to first 200 on /ping"),
    "recommend": ("benchmark.recommend", "SageMaker Inference Recommender jobs and report"),
    "soak": ("benchmark.soak", "long run at a fraction of capacity: errors, p99 drift, RSS growth"),
    "faults": ("benchmark.faults", "kill -9 a worker and SIGTERM under load: requests lost"),
    "bulk": ("benchmark.bulk", "rows/s at 1 to 10,000 rows a request against xgboost, charts"),
    "mme": ("benchmark.mme", "multi-model endpoint: loads, latency over 100 models, RSS"),
}


def usage() -> str:
    lines = ["usage: python -m benchmark SUBCOMMAND [options]", "", "subcommands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
