"""PNG plots of a Locust run (matplotlib, Agg backend: no display needed).

- `latency_over_time.png`: p50/p90/p99/p99.9 per second, with the number of users.
- `throughput_vs_users.png`: requests per second per load step, with each step's p99 and the bound.
- `latency_histogram.png`: the distribution of request latency, percentiles marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmark.knee import knee
from benchmark.report import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LATENCY_OVER_TIME: Final = "latency_over_time.png"
THROUGHPUT_VS_USERS: Final = "throughput_vs_users.png"
LATENCY_HISTOGRAM: Final = "latency_histogram.png"
_SIZE: Final = (8.0, 4.5)
_DPI: Final = 100


def _figure() -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    return figure, figure.add_subplot()


def write_plots(run: Run, *, p99_bound_ms: float | None = None) -> list[Path]:
    """Write the three plots into the run's directory; returns their paths."""
    return [
        latency_over_time(run, run.directory / LATENCY_OVER_TIME),
        throughput_vs_users(run, run.directory / THROUGHPUT_VS_USERS, p99_bound_ms=p99_bound_ms),
        latency_histogram(run, run.directory / LATENCY_HISTOGRAM),
    ]


def latency_over_time(run: Run, path: Path) -> Path:
    figure, axes = _figure()
    seconds = [s for s in run.seconds if s.latency is not None]
    origin = run.started_at or (seconds[0].start if seconds else 0.0)
    times = [s.start - origin for s in seconds]
    for label, attribute in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999")):
        axes.plot(
            times, [getattr(s.latency, attribute) for s in seconds], label=label, linewidth=1.2
        )
    served = [(t, s.server) for t, s in zip(times, seconds, strict=True) if s.server is not None]
    for label, attribute in (("server p50", "p50"), ("server p99", "p99")):
        if served:
            axes.plot(
                [t for t, _ in served],
                [getattr(server, attribute) for _, server in served],
                label=label,
                linewidth=1.0,
                linestyle="--",
            )
    axes.set_yscale("log")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("latency per second (µs, log scale)")
    axes.grid(True, which="both", alpha=0.3)
    users_axes = axes.twinx()
    users_axes.step(times, [s.users for s in seconds], where="post", color="grey", alpha=0.5)
    users_axes.set_ylabel("users", color="grey")
    users_axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", fontsize="small")
    axes.set_title(f"Latency percentiles over time: {run.host}")
    figure.savefig(path)
    return path


def throughput_vs_users(run: Run, path: Path, *, p99_bound_ms: float | None = None) -> Path:
    figure, axes = _figure()
    steps = [s for s in (run.steps or (run.total,)) if s.latency is not None]
    users = [s.users for s in steps]
    axes.plot(users, [s.rps for s in steps], marker="o", color="tab:blue", label="requests/s")
    axes.set_xlabel("users")
    axes.set_ylabel("requests per second", color="tab:blue")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    p99_axes = axes.twinx()
    p99_axes.plot(
        users,
        [s.latency.p99 / 1000.0 for s in steps if s.latency],
        marker="s",
        color="tab:red",
        label="p99",
    )
    if p99_bound_ms is not None:
        p99_axes.axhline(
            p99_bound_ms, color="tab:red", linestyle="--", alpha=0.6, label="p99 bound"
        )
        best = knee(steps, p99_bound_ms=p99_bound_ms)
        if best is not None:
            axes.plot(
                [best.users], [best.rps], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none", label="knee",
            )  # fmt: skip
    p99_axes.set_ylabel("p99 latency (ms)", color="tab:red")
    p99_axes.set_ylim(bottom=0)
    handles = axes.get_legend_handles_labels()
    more = p99_axes.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], loc="lower right", fontsize="small")
    axes.set_title("Throughput and p99 per load step")
    figure.savefig(path)
    return path


def latency_histogram(run: Run, path: Path) -> Path:
    figure, axes = _figure()
    histogram = run.histogram
    total = histogram.get_total_count()
    if total:
        low = max(int(histogram.get_min_value()), 1)
        values, counts = [], []
        for item in histogram.get_log_iterator(low, 1.1):
            values.append(item.value_iterated_to)
            counts.append(item.count_added_in_this_iter_step)
        # Each step of the log iterator covers (value / 1.1, value].
        lefts = [v / 1.1 for v in values]
        widths = [v - left for v, left in zip(values, lefts, strict=True)]
        axes.bar(lefts, counts, width=widths, align="edge", color="tab:blue", alpha=0.8)
        axes.set_xscale("log")
        percentiles = run.total.latency
        if percentiles is not None:
            for label, value in (
                ("p50", percentiles.p50),
                ("p99", percentiles.p99),
                ("p99.9", percentiles.p999),
            ):
                axes.axvline(value, color="tab:red", linestyle="--", alpha=0.6)
                axes.annotate(
                    f"{label} {value:,} µs",
                    (value, 0.97),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    va="top",
                    ha="right",
                    fontsize="small",
                )
    axes.set_xlabel("latency (µs, log scale)")
    axes.set_ylabel("requests")
    axes.set_title(f"Latency distribution: {total:,} requests")
    figure.savefig(path)
    return path
