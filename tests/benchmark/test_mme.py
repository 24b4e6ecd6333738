"""`python -m benchmark mme` at a tiny size prints every figure it promises; bad options are
refused; the model factory makes distinct models. No timing is asserted."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from benchmark import mme
from container.model_source import source_digest
from tests.benchmark.command import run_benchmark

LOAD_ROWS = (
    "first load in a fresh worker (cold compile + importing treelite, tl2cgen)",
    "cold compile (new content: import, compile, verify)",
    "cache hit (same content, new name)",
    "compiled artifact (new name)",
)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(text: str) -> float:
    return float(text.replace(",", ""))


def table(out: str, title: str) -> str:
    """The table printed under `title`."""
    return out.split(title, 1)[1].strip().split("\n\n", 1)[0]


def row(out: str, label: str) -> list[str]:
    found = [line for line in out.splitlines() if line.startswith(f"| {label} |")]
    assert len(found) == 1, f"{label!r} is not one row of:\n{out}"
    return cells(found[0])


@pytest.mark.slow
def test_a_tiny_run_prints_load_times_latency_and_memory() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: no cold compile to measure")
    result = run_benchmark(
        "mme", "--models", "1,3", "--duration", "0.5", "--trees", "5", "--repeats", "2",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "3 distinct models of 5 trees" in out and "load average before" in out

    loads_table = table(out, "Load time, POST /models to its 200 (ms):")
    for label, loads in zip(LOAD_ROWS, (1, 3, 2, 2), strict=True):
        _, count, p50, low, high = row(loads_table, label)
        assert int(count) == loads, label
        assert 0 < number(low) <= number(p50) <= number(high), label

    latency = re.findall(
        r"^\| (\d+) \| (\(one model\)|uniform|zipf s=1) \|(.*)$",
        table(out, "right after it:"),
        re.M,
    )
    assert [(models, spread) for models, spread, _ in latency] == [
        ("1", "(one model)"),
        ("3", "uniform"),
        ("3", "zipf s=1"),
    ]
    for *_, rest in latency:
        requests, p50, p99, single_p50, single_p99, p50_ratio, p99_ratio, errors = cells(rest)
        assert number(requests) > 0
        assert 0 < number(p50) <= number(p99) and 0 < number(single_p50) <= number(single_p99)
        assert number(p50_ratio) == pytest.approx(number(p50) / number(single_p50), abs=0.006)
        assert number(p99_ratio) > 0
        assert errors == "0"

    memory = table(out, "Worker RSS (MiB):")
    start = number(row(memory, "0 (start, after one load and unload)")[1])
    for level in (1, 3):
        rss, growth, per_model = row(memory, str(level))[1:]
        assert number(growth) == pytest.approx(number(rss) - start, abs=0.16)
        assert number(per_model) == pytest.approx(number(growth) * 1024 / level, abs=60)
    rss, growth, _ = row(memory, "0 (all unloaded)")[1:]
    assert number(growth) == pytest.approx(number(rss) - start, abs=0.16)
    assert re.search(
        r"After unloading every model the worker stays [+-][\d.]+ MiB over its start; "
        r"model libraries mapped: 3 with 3 models loaded, 0 after unloading every model\.",
        out,
    )
    assert "3 model(s), zipf" in result.stderr  # progress on stderr, results on stdout


def test_the_factory_makes_distinct_raw_sagemaker_models(tmp_path: Path) -> None:
    raws = mme.train_raw_models(tmp_path, count=3, trees=2, seed=7)
    assert [raw.name for raw in raws] == ["raw-0", "raw-1", "raw-2"]
    assert all(sorted(p.name for p in raw.iterdir()) == ["xgboost-model"] for raw in raws)
    assert len({source_digest(raw) for raw in raws}) == 3  # three cold compiles, no cache hit
    again = mme.train_raw_models(tmp_path / "again", count=1, trees=2, seed=7)
    assert source_digest(again[0]) == source_digest(raws[0])  # seeded


def test_invoke_paths_quote_what_a_request_line_cannot_carry() -> None:
    assert mme.invoke_path("model-7") == "/models/model-7/invoke"
    assert mme.invoke_path("ads/bidder 1?") == "/models/ads/bidder%201%3F/invoke"
