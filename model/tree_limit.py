"""How many trees the SageMaker XGBoost container that wrote a model predicts with, and the cut.

The built-in containers' `serve_utils.predict` calls

- 0.90-x to 1.7-x: `booster.predict(dtest, ntree_limit=getattr(booster, "best_ntree_limit", 0))`
- 3.0-x: the same `getattr`, then `iteration_range=(0, best_ntree_limit)` when it is > 0.

`best_ntree_limit` is a Python attribute of the Booster, so it exists only where XGBoost put it:

- `xgboost.train` of XGBoost 0.90 to 1.7 sets it on every Booster it returns: the best round
  after early stopping, else all rounds (`(best_iteration + 1) * num_parallel_tree`). A
  pickled Booster (what the 0.90-x, 1.0-x and 1.2-x containers write) keeps it.
- `Booster.load_model` sets it from the Booster attribute `best_ntree_limit` in XGBoost 1.5
  to 1.7; XGBoost >= 1.5 training writes that attribute into every saved model (legacy
  binary, JSON, UBJSON). XGBoost 1.3's `load_model` does not set it (nor does 1.3 training
  save it), XGBoost 2 and 3 neither set nor save it.

So a model is cut where the container generation of the XGBoost version that wrote it cuts:
the pickled attribute, else the saved attribute for models written by XGBoost < 2, else all
trees. `ntree_limit` counts trees per class: XGBoost 1.4 to 1.7 use
`ntree_limit // num_parallel_tree` rounds, older versions the first `ntree_limit * num_class`
trees (the same for every limit training writes); 3.x's `iteration_range` counts rounds.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from model.errors import UnsupportedModelError
from model.source import SourceModel, legacy_layout, tree_model_of
from model.ubjson import decode_ubjson

__all__ = [
    "RULE_ALL",
    "RULE_PICKLED",
    "RULE_SAVED",
    "RULE_USER",
    "TreeLimit",
    "TreeLimitOption",
    "apply_tree_limit",
    "container_tree_limit",
    "parse_tree_limit",
]

TreeLimitOption = int | Literal["all", "auto"]
"""`auto`: the container's rule; `all`: every tree; N: the first N boosting rounds."""

RULE_PICKLED = "best_ntree_limit (pickled Booster attribute, 0.90-1.7 containers)"
RULE_SAVED = "best_ntree_limit (saved Booster attribute, 1.5-1.7 containers)"
RULE_ALL = "all trees"
RULE_USER = "user: first {rounds} rounds"


@dataclass(frozen=True, slots=True)
class TreeLimit:
    """The trees a model is compiled with: the first `trees_used` of `trees_in_source`."""

    trees_used: int
    trees_in_source: int
    rule: str

    @property
    def truncated(self) -> bool:
        return self.trees_used < self.trees_in_source


def parse_tree_limit(text: str) -> TreeLimitOption:
    """`auto`, `all` or a positive number of rounds; `ValueError` with what to write otherwise."""
    value = text.strip().lower()
    if value in ("auto", "all"):
        return "auto" if value == "auto" else "all"
    try:
        rounds = int(value)
    except ValueError:
        rounds = 0
    if rounds < 1:
        raise ValueError(f"tree limit {text!r}: expected auto, all or a number of rounds >= 1")
    return rounds


def _trees_per_round(src: SourceModel) -> int:
    return max(src.num_parallel_tree, 1) * max(src.num_class, 1)


def _major(version: str | None) -> int | None:
    if not version:
        return None
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


def container_tree_limit(src: SourceModel, option: TreeLimitOption = "auto") -> TreeLimit:
    """The trees the serving container predicts with (see the module docstring)."""
    total = src.num_trees
    if option == "all":
        return TreeLimit(trees_used=total, trees_in_source=total, rule=RULE_ALL)
    if isinstance(option, int):
        used = min(option * _trees_per_round(src), total)
        return TreeLimit(
            trees_used=used, trees_in_source=total, rule=RULE_USER.format(rounds=option)
        )
    major = _major(src.xgboost_version)
    if src.pickled_best_ntree_limit is not None and src.pickled_best_ntree_limit > 0:
        limit, rule = src.pickled_best_ntree_limit, RULE_PICKLED
    elif (major is None or major < 2) and "best_ntree_limit" in src.attributes:
        try:
            limit = int(src.attributes["best_ntree_limit"])
        except ValueError:
            limit = 0
        rule = RULE_SAVED
    else:
        limit, rule = 0, RULE_ALL
    if limit <= 0 or src.booster not in ("gbtree", "dart"):
        return TreeLimit(trees_used=total, trees_in_source=total, rule=RULE_ALL)
    if major is not None and major >= 2:
        # the 3.x container: iteration_range=(0, best_ntree_limit), in rounds
        used = limit * _trees_per_round(src)
    elif major is not None and (major, _minor(src.xgboost_version)) >= (1, 4):
        used = (limit // max(src.num_parallel_tree, 1)) * _trees_per_round(src)
    else:
        used = limit * max(src.num_class, 1)
    used = min(used, total) if used > 0 else total
    return TreeLimit(trees_used=used, trees_in_source=total, rule=rule)


def _minor(version: str | None) -> int:
    try:
        return int((version or "0.0").split(".")[1])
    except (IndexError, ValueError):
        return 0


def apply_tree_limit(src: SourceModel, limit: TreeLimit) -> SourceModel:
    """The source with only its first `limit.trees_used` trees (the same source if all)."""
    if not limit.truncated:
        return src
    if limit.trees_used < 1:
        raise UnsupportedModelError(f"{src.path}: a tree limit of 0 trees leaves nothing to serve")
    if src.payload_format == "legacy-binary":
        payload = _cut_legacy(src, limit.trees_used)
        return dataclasses.replace(src, payload=payload, num_trees=limit.trees_used)
    document = (
        json.loads(src.payload)
        if src.payload_format == "json"
        else _plain(decode_ubjson(src.payload))
    )
    _cut_document(src, document, limit.trees_used)
    payload = json.dumps(document).encode("utf-8")
    return dataclasses.replace(
        src, payload=payload, payload_format="json", num_trees=limit.trees_used
    )


def _plain(value: Any) -> Any:
    """A decoded UBJSON value as JSON-serialisable Python (numpy arrays to lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cut_document(src: SourceModel, document: Any, keep: int) -> None:
    model = tree_model_of(document)
    if model is None or not isinstance(model.get("trees"), list):
        raise UnsupportedModelError(f"{src.path}: cannot find the trees to apply the tree limit")
    model["trees"] = model["trees"][:keep]
    for index, tree in enumerate(model["trees"]):
        if isinstance(tree, dict) and "id" in tree:
            tree["id"] = index
    model["tree_info"] = list(model.get("tree_info", []))[:keep]
    param = model.get("gbtree_model_param")
    if isinstance(param, dict):
        param["num_trees"] = str(keep)
    indptr = model.get("iteration_indptr")
    if isinstance(indptr, list):
        model["iteration_indptr"] = [point for point in indptr if point <= keep]
    booster = document["learner"]["gradient_booster"]
    if booster.get("name") == "dart" and isinstance(booster.get("weight_drop"), list):
        booster["weight_drop"] = booster["weight_drop"][:keep]


def _cut_legacy(src: SourceModel, keep: int) -> bytes:
    legacy = src.payload
    layout = legacy_layout(src.path, legacy)
    parts = [
        legacy[: layout.trees_param],
        struct.pack("<i", keep),
        legacy[layout.trees_param + 4 : layout.tree_spans[0][0]],
        legacy[layout.tree_spans[0][0] : layout.tree_spans[keep - 1][1]],
        legacy[layout.tree_info : layout.tree_info + 4 * keep],
    ]
    if layout.weight_drop is not None:
        start = layout.weight_drop + 8
        parts += [struct.pack("<Q", keep), legacy[start : start + 4 * keep]]
    parts.append(legacy[layout.tail :])
    return b"".join(parts)
