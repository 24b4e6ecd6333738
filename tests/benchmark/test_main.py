"""`python -m benchmark SUBCOMMAND`: each subcommand refuses bad usage with exit status 2 and a
message that says what to fix (the spread options' rules themselves: test_spread.py)."""

from __future__ import annotations

import pytest

from benchmark.__main__ import main
from tests.benchmark.usage import refusal


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["http", "--spread", "zipf"], "--spread needs --models N"),
        (["http", "--rounds", "0"], "must be >= 1"),
        (["http", "--model-dir", "x"], "give both --model-dir and --xgboost-model, or neither"),
        (["mme", "--models", "10,3"], "increasing, without repeats"),
        (["mme", "--models", "3,3"], "increasing, without repeats"),
        (["mme", "--models", "0,3"], "must be >= 1"),
        (["mme", "--models", "ten"], "comma-separated list of whole numbers"),
        (["mme", "--zipf-exponent", "0"], "must be a positive number"),
        (["mme", "--spread", "zipf"], "unrecognized arguments: --spread"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in refusal(main, argv, capsys)


def test_an_unknown_subcommand_is_named_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'nosuch'" in err and "  mme " in err
