"""The model sequence of multi-model benchmarks: uniform covers every model evenly, Zipf is
skewed in rank order, the same seed draws the same sequence, bad options are refused."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from benchmark.spread import SPREADS, ModelSpread, Spread, add_spread_arguments, spread_from_args
from tests.benchmark.usage import refusal


def counts(spread: ModelSpread, requests: int) -> np.ndarray:
    return np.bincount(spread.sequence(requests), minlength=spread.models)


@pytest.mark.parametrize("models", [1, 7, 100])
def test_uniform_sends_every_model_once_in_each_run_of_n_requests(models: int) -> None:
    drawn = ModelSpread(models=models, seed=3).sequence(models * 5 + 2)
    assert len(drawn) == models * 5 + 2
    for start in range(0, models * 5, models):
        assert sorted(drawn[start : start + models].tolist()) == list(range(models))
    # Shuffled, not round robin: the runs are not all in the same order.
    if models > 2:
        runs = {tuple(drawn[i : i + models].tolist()) for i in range(0, models * 5, models)}
        assert len(runs) > 1


def test_zipf_shares_fall_with_rank_and_match_the_weights() -> None:
    spread = ModelSpread(models=10, spread="zipf", seed=1)
    weights = spread.weights()
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(np.diff(weights) < 0)
    assert weights[0] / weights[1] == pytest.approx(2.0)  # s = 1: rank 1 twice rank 2
    seen = counts(spread, 200_000) / 200_000
    assert np.all(np.diff(seen[:5]) < 0)  # the most requested models, in rank order
    assert np.abs(seen - weights).max() < 0.01


def test_a_larger_exponent_skews_more_and_uniform_not_at_all() -> None:
    def top_share(spread: ModelSpread) -> float:
        return float(counts(spread, 50_000)[0] / 50_000)

    mild = top_share(ModelSpread(models=100, spread="zipf", zipf_exponent=0.6))
    steep = top_share(ModelSpread(models=100, spread="zipf", zipf_exponent=1.5))
    even = top_share(ModelSpread(models=100, spread="uniform"))
    assert even == pytest.approx(0.01, abs=1e-9)
    assert even < mild < steep


@pytest.mark.parametrize("spread", SPREADS)
def test_the_same_seed_draws_the_same_sequence(spread: Spread) -> None:
    def drawn(seed: int) -> list[int]:
        return [int(i) for i in ModelSpread(models=20, spread=spread, seed=seed).sequence(1_000)]

    assert drawn(4) == drawn(4)
    assert drawn(4) != drawn(5)


def test_names_follow_the_format() -> None:
    spread = ModelSpread(models=3, name_format="bidder-{:02d}.tar.gz", seed=0)
    assert spread.names() == ("bidder-00.tar.gz", "bidder-01.tar.gz", "bidder-02.tar.gz")
    assert set(spread.named_sequence(30)) == set(spread.names())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"models": 0}, "models must be >= 1"),
        ({"models": 3, "spread": "pareto"}, "spread must be one of uniform, zipf"),
        ({"models": 3, "spread": "zipf", "zipf_exponent": 0.0}, "zipf_exponent must be > 0"),
        ({"models": 3, "name_format": "model"}, "gives every model the same name"),
        ({"models": 3, "name_format": "model-{name}"}, "must hold one {}"),
        ({"models": 3, "name_format": "model\t{}"}, "non-printable"),
    ],
)
def test_bad_spreads_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ModelSpread(**fields)  # type: ignore[arg-type]


def parsed(*argv: str) -> ModelSpread | None:
    parser = argparse.ArgumentParser(prog="bench")
    add_spread_arguments(parser, models_help="models")
    return spread_from_args(parser.parse_args(list(argv)), parser, seed=9)


def test_the_options_build_the_spread() -> None:
    assert parsed() is None
    assert parsed("--models", "4") == ModelSpread(models=4, seed=9)
    options = ["--models", "4", "--spread", "zipf", "--zipf-exponent", "1.2"]
    options += ["--model-names", "m{}"]
    expected = ModelSpread(models=4, spread="zipf", zipf_exponent=1.2, seed=9, name_format="m{}")
    assert parsed(*options) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--spread", "zipf"], "--spread needs --models N"),
        (["--model-names", "m{}"], "--model-names needs --models N"),
        (["--models", "3", "--zipf-exponent", "2"], "--zipf-exponent needs --spread zipf"),
        (["--models", "0"], "must be >= 1"),
        (["--models", "3", "--spread", "pareto"], "invalid choice"),
        (["--models", "3", "--spread", "zipf", "--zipf-exponent", "0"], "positive number"),
        (["--models", "3", "--model-names", "same"], "gives every model the same name"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in refusal(lambda args: parsed(*args), argv, capsys)
