"""Which model each request of a multi-model benchmark goes to: the one place that draws it.

    spread = ModelSpread(models=100, spread="zipf")     # model-0 the most requested
    spread.names()                                      # ("model-0", ..., "model-99")
    spread.sequence(10_000)                             # the model index of each request

- `uniform`: every model equally often, in a shuffled order: the sequence is a run of seeded
  permutations of all the models, so each run of `models` requests from its start reaches all;
- `zipf`: independent draws, model rank r (model index r - 1) with a probability proportional
  to 1 / r**s (`zipf_exponent`, default 1.0: the first model takes about 19 % of 100 models'
  requests, the last 0.2 %), the long tail of advertisers or exchanges on one endpoint.

The same options and seed give the same sequence in every process (`benchmark http`'s clients,
each Locust process), so runs can be compared request for request.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from benchmark.arguments import positive_float, positive_int

Spread = Literal["uniform", "zipf"]
SPREADS: Final[tuple[Spread, ...]] = get_args(Spread)
DEFAULT_ZIPF_EXPONENT: Final = 1.0
DEFAULT_NAME_FORMAT: Final = "model-{}"
SEQUENCE_LENGTH: Final = 10_000
"""Requests drawn in one sequence, which a client sends in turn, again and again."""


@dataclass(frozen=True, kw_only=True)
class ModelSpread:
    """`models` models named `name_format.format(index)`, requested as `spread` says."""

    models: int
    spread: Spread = "uniform"
    zipf_exponent: float = DEFAULT_ZIPF_EXPONENT
    seed: int = 0
    name_format: str = DEFAULT_NAME_FORMAT

    def __post_init__(self) -> None:
        if self.models < 1:
            raise ValueError(f"models must be >= 1, got {self.models}")
        if self.spread not in SPREADS:
            raise ValueError(f"spread must be one of {', '.join(SPREADS)}, got {self.spread!r}")
        if not self.zipf_exponent > 0:
            raise ValueError(f"zipf_exponent must be > 0, got {self.zipf_exponent}")
        name_format_problem(self.name_format)  # raises ValueError

    def names(self) -> tuple[str, ...]:
        return tuple(self.name_format.format(index) for index in range(self.models))

    def weights(self) -> npt.NDArray[np.float64]:
        """The share of requests each model gets, by model index (sums to 1)."""
        if self.spread == "uniform":
            return np.full(self.models, 1.0 / self.models)
        weights = np.arange(1, self.models + 1, dtype=np.float64) ** -self.zipf_exponent
        shares: npt.NDArray[np.float64] = weights / weights.sum()
        return shares

    def sequence(self, count: int) -> npt.NDArray[np.int64]:
        """The model index of each of `count` requests."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        rng = np.random.default_rng(self.seed)
        if self.spread == "uniform":
            rounds = -(-count // self.models)
            order = [rng.permutation(self.models) for _ in range(rounds)]
            drawn = np.concatenate(order)[:count] if order else np.zeros(0, dtype=np.int64)
            return drawn.astype(np.int64)
        picked: npt.NDArray[np.int64] = rng.choice(self.models, size=count, p=self.weights())
        return picked.astype(np.int64)

    def named_sequence(self, count: int) -> list[str]:
        """The model name of each of `count` requests."""
        names = self.names()
        return [names[index] for index in self.sequence(count)]

    def describe(self) -> str:
        if self.models == 1:
            return "1 model"
        if self.spread == "zipf":
            return f"{self.models} models, zipf s={self.zipf_exponent:g}"
        return f"{self.models} models, uniform"


def name_format_problem(name_format: str) -> None:
    """Raise ValueError unless `name_format` makes a distinct, printable name of each index."""
    try:
        first, second = name_format.format(0), name_format.format(1)
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(
            f"the model name format {name_format!r} must hold one {{}} for the index ({exc})"
        ) from None
    if first == second:
        raise ValueError(
            f"the model name format {name_format!r} gives every model the same name; "
            "put {} where the index goes, e.g. model-{}"
        )
    if not first.isprintable():
        raise ValueError(f"the model name format {name_format!r} gives a non-printable name")


def _name_format(text: str) -> str:
    try:
        name_format_problem(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_zipf_exponent_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, default: float | None
) -> None:
    """`--zipf-exponent S` (> 0); `default` None tells whether it was given."""
    parser.add_argument(
        "--zipf-exponent",
        type=positive_float,
        default=default,
        metavar="S",
        help="with Zipf, model rank r gets a share proportional to 1/r**S "
        f"(default {DEFAULT_ZIPF_EXPONENT:g})",
    )


def add_spread_arguments(parser: argparse.ArgumentParser, *, models_help: str) -> None:
    """`--models N [--spread uniform|zipf] [--zipf-exponent S] [--model-names FORMAT]`; read
    them back with `spread_from_args`."""
    group = parser.add_argument_group("multi-model endpoint")
    group.add_argument("--models", type=positive_int, metavar="N", help=models_help)
    group.add_argument(
        "--spread", choices=SPREADS, help="how requests spread over the models (default uniform)"
    )
    add_zipf_exponent_argument(group, default=None)
    group.add_argument(
        "--model-names",
        type=_name_format,
        metavar="FORMAT",
        help=f"model names, {{}} standing for 0 .. N-1 (default {DEFAULT_NAME_FORMAT})",
    )


def spread_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser, *, seed: int = 0
) -> ModelSpread | None:
    """The spread the options of `add_spread_arguments` ask for, drawn with `seed` (the
    command's own seed); None without `--models`. An option that would be ignored is refused
    (`parser.error`, exit status 2)."""
    if args.models is None:
        for flag, value in (
            ("--spread", args.spread),
            ("--zipf-exponent", args.zipf_exponent),
            ("--model-names", args.model_names),
        ):
            if value is not None:
                parser.error(f"{flag} needs --models N (the models on the endpoint)")
        return None
    spread: Spread = args.spread or "uniform"
    if args.zipf_exponent is not None and spread != "zipf":
        parser.error("--zipf-exponent needs --spread zipf")
    return ModelSpread(
        models=args.models,
        spread=spread,
        zipf_exponent=args.zipf_exponent or DEFAULT_ZIPF_EXPONENT,
        seed=seed,
        name_format=args.model_names or DEFAULT_NAME_FORMAT,
    )
