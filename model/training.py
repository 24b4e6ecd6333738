"""Train the default RTB bid/no-bid model on deterministic synthetic data, then build it.

The data imitate the label-indexed iPinYou fields of the reference model (same 7 features, same
order) with skewed cardinalities and a rare positive class whose rate depends on hour, domain,
device and region. Hyper-parameters are the AWS low-latency RTB guidance's. The model is saved
as XGBoost JSON (never pickle) and built like any other source; the compiled predictions are
then checked against XGBoost itself on held-out rows that include missing values.

xgboost is imported only inside the functions that train (it is not in the serving image).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from model.artifact import LIBRARY_FILE, MANIFEST_FILE, Manifest, Tolerance
from model.build import Progress, build_artifact
from model.compiler import DEFAULT_OPT_LEVEL, DEFAULT_TOOLCHAIN
from model.errors import ModelError, ParityError
from model.tree_limit import TreeLimitOption
from model.verification import DEFAULT_ROWS, DEFAULT_TOLERANCE, check_parity, predict_compiled

if TYPE_CHECKING:
    import xgboost

__all__ = [
    "FEATURE_NAMES",
    "GUIDANCE_PARAMS",
    "SyntheticBids",
    "TrainingResult",
    "synthesize_bids",
    "train_artifact",
    "train_model",
]

FEATURE_NAMES = (
    "dow",
    "hour",
    "IndexAdvertiserID",
    "IndexDomain",
    "IndexRegionID",
    "IndexCityID",
    "device_type_id",
)

GUIDANCE_PARAMS: Mapping[str, Any] = {
    "objective": "binary:logistic",
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "tree_method": "hist",
    "eval_metric": "auc",
}
"""The guidance's hyper-parameters (with `hist`, XGBoost's default method, for speed)."""

_ADVERTISERS = 9
_DOMAINS = 3_000
_REGIONS = 35
_CITIES_PER_REGION = 12
_DEVICES = 6
_HELD_OUT_SEED_OFFSET = 1_000_003


@dataclass(frozen=True, slots=True)
class SyntheticBids:
    """Bid requests: `features` float32 (rows, 7) in `FEATURE_NAMES` order, `labels` 0/1."""

    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.float32]


def synthesize_bids(*, rows: int, seed: int = 0, missing_rate: float = 0.0) -> SyntheticBids:
    """Deterministic synthetic iPinYou-style bid requests (same `rows` and `seed`, same data).

    Domains, regions and advertisers follow Zipf-like popularity; cities belong to regions;
    traffic peaks in the evening; most requests come from two device types. The chance of a
    positive label (roughly 3 %) depends on hour, domain quality, device and region.
    `missing_rate` blanks that share of cells (NaN) to exercise default branches.
    """
    rng = np.random.default_rng(seed)
    # Per-entity effects are drawn from a fixed stream so every seed shares one "market".
    market = np.random.default_rng(20_260_101)
    domain_effect = market.normal(0.0, 0.9, size=_DOMAINS)
    region_effect = market.normal(0.0, 0.4, size=_REGIONS)
    advertiser_effect = market.normal(0.0, 0.15, size=_ADVERTISERS)
    device_effect = np.array([-0.8, 0.3, 0.0, -0.4, 0.6, -1.2])
    hour_effect = 0.5 * np.sin((np.arange(24) - 14) / 24 * 2 * np.pi) + np.where(
        (np.arange(24) >= 19) & (np.arange(24) <= 22), 0.4, 0.0
    )

    dow = rng.integers(0, 7, size=rows)
    hour_weight = 1.0 + 0.8 * np.sin((np.arange(24) - 8) / 24 * 2 * np.pi) ** 2
    hour = rng.choice(24, size=rows, p=hour_weight / hour_weight.sum())
    advertiser = _zipf_index(rng, _ADVERTISERS, rows, exponent=0.8)
    domain = _zipf_index(rng, _DOMAINS, rows, exponent=1.1)
    region = _zipf_index(rng, _REGIONS, rows, exponent=1.0)
    city = region * _CITIES_PER_REGION + _zipf_index(rng, _CITIES_PER_REGION, rows, exponent=1.2)
    device = rng.choice(_DEVICES, size=rows, p=[0.05, 0.45, 0.35, 0.08, 0.05, 0.02])

    logit = (
        -4.4
        + hour_effect[hour]
        + domain_effect[domain]
        + region_effect[region]
        + advertiser_effect[advertiser]
        + device_effect[device]
        + 0.15 * (dow >= 5)
    )
    labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    features = np.column_stack([dow, hour, advertiser, domain, region, city, device]).astype(
        np.float32
    )
    if missing_rate > 0:
        features[rng.random(features.shape) < missing_rate] = np.nan
    return SyntheticBids(features=np.ascontiguousarray(features), labels=labels)


def _zipf_index(
    rng: np.random.Generator, size: int, rows: int, *, exponent: float
) -> npt.NDArray[np.int64]:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return rng.choice(size, size=rows, p=weights / weights.sum())


def train_model(
    data: SyntheticBids | None = None,
    *,
    rows: int = 100_000,
    seed: int = 0,
    rounds: int = 50,
    params: Mapping[str, Any] | None = None,
) -> xgboost.Booster:
    """Train the bid/no-bid Booster (guidance hyper-parameters, overridable with `params`)."""
    import xgboost

    data = data or synthesize_bids(rows=rows, seed=seed)
    matrix = xgboost.DMatrix(data.features, label=data.labels, feature_names=list(FEATURE_NAMES))
    config = {**GUIDANCE_PARAMS, "seed": seed, "nthread": 0, **(params or {})}
    return xgboost.train(config, matrix, num_boost_round=rounds)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """The built artifact's manifest and the evidence that it predicts what XGBoost predicts."""

    manifest: Manifest
    parity_rows: int
    max_abs_diff: float
    auc: float
    positive_rate: float


def train_artifact(
    *,
    output_dir: Path | str,
    rows: int = 100_000,
    seed: int = 0,
    rounds: int = 50,
    parity_rows: int = 20_000,
    save_json: Path | str | None = None,
    bid_threshold: float | Literal["auto"] | None = "auto",
    compile: bool | None = True,
    toolchain: str = DEFAULT_TOOLCHAIN,
    units: int | None = None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    verification_rows: int = DEFAULT_ROWS,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    tree_limit: TreeLimitOption = "auto",
    ensemble: bool = True,
    created_at: dt.datetime | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train, save as XGBoost JSON, build the serving artifact, check it against XGBoost.

    Held-out rows (`parity_rows`, 2 % of cells missing) are predicted by XGBoost and by the
    artifact (compiled library, or GTIL without one); they must agree within `tolerance`,
    or `ParityError` is raised.
    """
    import xgboost

    if save_json is not None and Path(save_json).suffix != ".json":
        raise ModelError(f"{save_json}: the saved model must end in .json (XGBoost JSON)")
    say = progress or (lambda _: None)
    started = time.perf_counter()
    data = synthesize_bids(rows=rows, seed=seed)
    held_out = synthesize_bids(
        rows=parity_rows, seed=seed + _HELD_OUT_SEED_OFFSET, missing_rate=0.02
    )
    say(f"synthetic data: {rows:,} rows, {data.labels.mean():.2%} positive")
    booster = train_model(data, seed=seed, rounds=rounds)
    say(
        f"train {rounds} rounds (xgboost {xgboost.__version__}): "
        f"{time.perf_counter() - started:.2f} s"
    )
    with tempfile.TemporaryDirectory(prefix="rtb-train-") as tmp:
        json_path = Path(save_json) if save_json is not None else Path(tmp) / "model.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(json_path))
        manifest = build_artifact(
            json_path,
            output_dir=output_dir,
            feature_names=FEATURE_NAMES,
            bid_threshold=bid_threshold,
            compile=compile,
            toolchain=toolchain,
            units=units,
            opt_level=opt_level,
            verification_rows=verification_rows,
            tolerance=tolerance,
            tree_limit=tree_limit,
            ensemble=ensemble,
            seed=seed,
            source_format="trained",
            created_at=created_at,
            progress=progress,
        )
    matrix = xgboost.DMatrix(held_out.features, feature_names=list(FEATURE_NAMES))
    reference = booster.predict(matrix).astype(np.float64)
    served = _served_predictions(Path(output_dir), manifest, held_out.features)
    try:
        report = check_parity(
            served, reference, tolerance=tolerance, what=f"{output_dir} against xgboost"
        )
    except ParityError:
        # The artifact must not be served: without its manifest it is not an artifact.
        (Path(output_dir) / MANIFEST_FILE).unlink(missing_ok=True)
        raise
    say(f"held-out parity: {report.rows:,} rows, max |diff| {report.max_abs_diff:.3g}")
    return TrainingResult(
        manifest=manifest,
        parity_rows=report.rows,
        max_abs_diff=report.max_abs_diff,
        auc=_auc(reference, held_out.labels),
        positive_rate=float(data.labels.mean()),
    )


def _served_predictions(
    output_dir: Path, manifest: Manifest, features: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    if manifest.compiled is not None:
        return predict_compiled(output_dir / LIBRARY_FILE, features)
    import treelite

    from model.verification import predict_gtil

    model = treelite.Model.deserialize(str(output_dir / manifest.fallback.checkpoint))
    return predict_gtil(model, features)


def _auc(scores: npt.NDArray[np.float64], labels: npt.NDArray[np.float32]) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    positives = labels > 0.5
    n_pos = int(positives.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
