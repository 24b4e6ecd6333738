"""Recognise and read the XGBoost model files a SageMaker user has, by content, never by name.

Formats (what `detect_format` returns):

- `sagemaker-pickle`: a pickled `xgboost.core.Booster`, as SageMaker's built-in XGBoost
  containers write `xgboost-model`. Read with `model.unpickler` (never executed). Its `handle`
  is itself one of the formats below, or a raw memory snapshot (`CONFIG-offset:` + int64 length +
  legacy binary + JSON learner config, XGBoost 1.0 to 1.x).
- `legacy-binary`: `Booster.save_model("x.model")` before XGBoost 2 (optionally `binf`-prefixed),
  or a raw memory snapshot saved to a file.
- `json`: `Booster.save_model("x.json")`, XGBoost >= 1.0.
- `ubjson`: `Booster.save_model("x.ubj")`, XGBoost >= 1.6 (the default format since 2.1).

`read_source` returns the bytes treelite should parse plus what the source says about itself
(objective, base score, feature names, XGBoost version). Only `load_treelite` imports treelite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import re
import struct
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from model.errors import UnsupportedFormatError, UnsupportedModelError
from model.ubjson import UBJSONError, decode_ubjson, member_span
from model.unpickler import read_booster_pickle

if TYPE_CHECKING:
    import treelite

__all__ = [
    "DEFAULT_MODEL_FILE",
    "LegacyLayout",
    "MAX_FEATURES",
    "PayloadFormat",
    "SourceFormat",
    "SourceModel",
    "detect_format",
    "find_model_file",
    "find_model_files",
    "legacy_layout",
    "load_treelite",
    "read_source",
    "tree_model_of",
]

SourceFormat = Literal["sagemaker-pickle", "legacy-binary", "json", "ubjson"]
PayloadFormat = Literal["legacy-binary", "json", "ubjson"]

DEFAULT_MODEL_FILE = "xgboost-model"
"""The file name SageMaker's built-in XGBoost algorithm writes inside `model.tar.gz`."""

_SNAPSHOT_MAGIC = b"CONFIG-offset:"
_LEGACY_MAGIC = b"binf"
_LEGACY_PARAM_SIZE = 136  # sizeof(LearnerModelParamLegacy), XGBoost 0.8x to 1.x
_OBJECTIVE_NAME = re.compile(rb"^[a-z]+:[a-z_]+$")
_PICKLE_PROTOCOL_0_STARTS = (b"cxgboost.core\nBooster\n", b"ccopy_reg\n", b"ccopyreg\n")
_MAX_SOURCE_BYTES = 2 << 30
_LOG_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*")
MAX_FEATURES = 65_536
"""More features than this is not a real-time bidding model (and would not fit a request)."""
_SUPPORTED_HELP = (
    "supported: a pickled xgboost Booster (SageMaker's `xgboost-model`), the legacy binary "
    "format, XGBoost JSON or UBJSON (`booster.save_model('model.json')`)"
)


@dataclass(frozen=True, slots=True)
class SourceModel:
    """A source model read from disk, not yet parsed by treelite."""

    path: Path
    format: SourceFormat
    sha256: str
    payload_format: PayloadFormat
    """What treelite parses: `payload` is a legacy binary, JSON or UBJSON model."""
    payload: bytes
    objective: str
    base_score: float | None
    """As the user gave it (a probability for binary:logistic); None when the source omits it."""
    feature_names: tuple[str, ...] | None
    xgboost_version: str | None
    """The XGBoost version that wrote the model, when the source records it."""
    booster: str = "gbtree"
    """`gbtree` or `dart`."""
    num_class: int = 0
    """XGBoost's `num_class`: 0 (or 1) for one output per row, k for `multi:*`."""
    num_parallel_tree: int = 1
    num_trees: int = 0
    """Trees in the source model (all classes and parallel trees)."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """The Booster's attributes (`Booster.attributes()`): `best_ntree_limit`, ..."""
    pickled_best_ntree_limit: int | None = None
    """The Python attribute `best_ntree_limit` of a pickled Booster (see `model.tree_limit`)."""


# --------------------------------------------------------------------------------------------
# Detection


def detect_format(data: bytes) -> SourceFormat | None:
    """The format of a model file from its first bytes, or None when it is none of ours."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "sagemaker-pickle"
    if data.startswith(_PICKLE_PROTOCOL_0_STARTS):
        return "sagemaker-pickle"
    return _detect_payload(data)


def _detect_payload(data: bytes) -> PayloadFormat | None:
    if data.startswith(_SNAPSHOT_MAGIC) or data.startswith(_LEGACY_MAGIC):
        return "legacy-binary"
    stripped = data[:64].lstrip(b" \t\r\n")
    if stripped.startswith(b"{"):
        rest = stripped[1:].lstrip(b" \t\r\n")
        if rest[:1] in (b'"', b"}"):
            return "json"
        if rest[:1] in (b"i", b"U", b"I", b"l", b"L", b"$", b"#", b"}"):
            return "ubjson"
        return None
    if _legacy_objective_at(data, 0) is not None:
        return "legacy-binary"
    return None


def _legacy_objective_at(data: bytes, offset: int) -> str | None:
    """The objective name of a legacy binary whose parameter block starts at `offset`."""
    start = offset + _LEGACY_PARAM_SIZE
    if len(data) < start + 8:
        return None
    (size,) = struct.unpack_from("<Q", data, start)
    if not 3 <= size <= 64 or len(data) < start + 8 + size:
        return None
    name = data[start + 8 : start + 8 + size]
    return name.decode("ascii") if _OBJECTIVE_NAME.match(name) else None


# --------------------------------------------------------------------------------------------
# Reading


def read_source(path: Path | str) -> SourceModel:
    """Read a model file of any supported format; raise `UnsupportedFormatError` otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_SOURCE_BYTES:
            raise UnsupportedFormatError(
                f"{path}: {size} bytes is larger than any XGBoost model this tool reads "
                f"({_MAX_SOURCE_BYTES} bytes)"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnsupportedFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnsupportedFormatError(f"{path}: is a directory, expected a model file") from None
    except OSError as exc:
        raise UnsupportedFormatError(f"{path}: cannot read: {exc}") from exc
    fmt = detect_format(data)
    if fmt is None:
        raise UnsupportedFormatError(
            f"{path}: not an XGBoost model ({_describe_bytes(data)}); {_SUPPORTED_HELP}"
        )
    sha256 = hashlib.sha256(data).hexdigest()
    if fmt != "sagemaker-pickle":
        return _read_payload(path, data, fmt, sha256=sha256)
    state = read_booster_pickle(path, data=data)
    payload_format = _detect_payload(state.handle)
    if payload_format is None:
        raise UnsupportedFormatError(
            f"{path}: the pickled Booster's model bytes are in no known format "
            f"({_describe_bytes(state.handle)}); {_SUPPORTED_HELP}"
        )
    inner = _read_payload(path, state.handle, payload_format, sha256=sha256)
    feature_names = state.feature_names
    if feature_names is None or _generic_names(feature_names):
        feature_names = inner.feature_names or feature_names
    return dataclasses.replace(
        inner,
        format=fmt,
        feature_names=feature_names,
        pickled_best_ntree_limit=state.best_ntree_limit,
    )


def _read_payload(
    path: Path, payload: bytes, payload_format: PayloadFormat, *, sha256: str
) -> SourceModel:
    """The model in `payload` (the file's bytes, or a pickle's model bytes), as if it were the
    whole file: `sha256` is the file's."""
    if payload_format == "json":
        try:
            document = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnsupportedFormatError(f"{path}: starts like JSON but is not: {exc}") from exc
        if _is_snapshot_document(document):
            # XGBoost >= 1.0 memory snapshot {"Config": ..., "Model": ...}: keep the model.
            document = document["Model"]
            payload = json.dumps(document).encode("utf-8")
        return _info_from_document(path, payload, document, payload_format, sha256=sha256)
    if payload_format == "ubjson":
        try:
            document = decode_ubjson(payload)
            if _is_snapshot_document(document):
                span = member_span(payload, "Model")
                if span is None:  # pragma: no cover - decode found it, so the span exists
                    raise UBJSONError("no `Model` member")
                payload = payload[span[0] : span[1]]
                document = document["Model"]
        except UBJSONError as exc:
            raise UnsupportedFormatError(f"{path}: starts like UBJSON but is not: {exc}") from exc
        return _info_from_document(path, payload, document, payload_format, sha256=sha256)
    if payload.startswith(_SNAPSHOT_MAGIC):
        return _info_from_snapshot(path, payload, sha256=sha256)
    return _info_from_legacy(path, payload, config=None, sha256=sha256)


def _is_snapshot_document(document: object) -> bool:
    return (
        isinstance(document, dict)
        and "learner" not in document
        and isinstance(document.get("Model"), dict)
        and isinstance(document.get("Config"), dict)
    )


def _info_from_snapshot(path: Path, snapshot: bytes, *, sha256: str) -> SourceModel:
    """`CONFIG-offset:` + int64 LE N + N bytes of legacy binary + JSON learner config."""
    header = len(_SNAPSHOT_MAGIC) + 8
    if len(snapshot) < header:
        raise UnsupportedFormatError(f"{path}: truncated XGBoost memory snapshot")
    (size,) = struct.unpack_from("<q", snapshot, len(_SNAPSHOT_MAGIC))
    if not 0 < size <= len(snapshot) - header:
        raise UnsupportedFormatError(
            f"{path}: XGBoost memory snapshot says its model has {size} bytes, "
            f"but only {len(snapshot) - header} follow"
        )
    legacy = snapshot[header : header + size]
    config: dict[str, Any] | None = None
    tail = snapshot[header + size :]
    if tail.strip():
        try:
            loaded = json.loads(tail)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnsupportedFormatError(
                f"{path}: the learner configuration in the XGBoost memory snapshot is not "
                f"JSON: {exc}"
            ) from exc
        config = loaded if isinstance(loaded, dict) else None
    return _info_from_legacy(path, legacy, config=config, sha256=sha256)


def _info_from_legacy(
    path: Path, legacy: bytes, *, config: dict[str, Any] | None, sha256: str
) -> SourceModel:
    offset = len(_LEGACY_MAGIC) if legacy.startswith(_LEGACY_MAGIC) else 0
    objective = _legacy_objective_at(legacy, offset)
    if objective is None:
        raise UnsupportedFormatError(
            f"{path}: looks like XGBoost's legacy binary format but its header is damaged "
            "(no objective name where one belongs)"
        )
    start = offset + _LEGACY_PARAM_SIZE + 8 + len(objective)
    if len(legacy) < start + 8:
        raise UnsupportedFormatError(f"{path}: legacy binary model truncated after its header")
    (size,) = struct.unpack_from("<Q", legacy, start)
    if not 0 < size <= 32 or len(legacy) < start + 8 + size:
        raise UnsupportedFormatError(f"{path}: legacy binary model has no valid booster name")
    booster = legacy[start + 8 : start + 8 + size].decode("ascii", "replace")
    _check_booster(path, booster)
    layout = legacy_layout(path, legacy)
    (base_score,) = struct.unpack_from("<f", legacy, offset)
    (num_class,) = struct.unpack_from("<i", legacy, offset + 8)
    major, minor = struct.unpack_from("<II", legacy, offset + 20)
    # XGBoost >= 1.0 records the version that wrote the file in the parameter block
    version: str | None = f"{major}.{minor}.0" if 1 <= major < 100 and minor < 100 else None
    if config is not None:
        learner = config.get("learner", {})
        objective = _objective_of(learner) or objective
        configured = _base_score_of(path, learner)
        base_score = base_score if configured is None else configured
        version = _version_of(config) or version
    return SourceModel(
        path=path,
        format="legacy-binary",
        sha256=sha256,
        payload_format="legacy-binary",
        payload=legacy,
        objective=objective,
        base_score=float(base_score),
        feature_names=None,
        xgboost_version=version,
        booster=booster,
        num_class=max(int(num_class), 0),
        num_parallel_tree=max(layout.num_parallel_tree, 1),
        num_trees=layout.num_trees,
        attributes=dict(layout.attributes),
    )


def _info_from_document(
    path: Path, payload: bytes, document: object, payload_format: PayloadFormat, *, sha256: str
) -> SourceModel:
    if not isinstance(document, dict) or not isinstance(document.get("learner"), dict):
        raise UnsupportedFormatError(
            f"{path}: a JSON/UBJSON document without a `learner` object is not an XGBoost model"
        )
    learner = document["learner"]
    booster = learner.get("gradient_booster")
    if isinstance(booster, dict):
        _check_booster(path, booster.get("name"))
    names = learner.get("feature_names")
    feature_names: tuple[str, ...] | None = None
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        feature_names = tuple(names)
    model_param = learner.get("learner_model_param")
    num_class = _int_of(model_param.get("num_class") if isinstance(model_param, dict) else None)
    trees = tree_model_of(document)
    tree_param = trees.get("gbtree_model_param") if trees is not None else None
    raw_attributes = learner.get("attributes")
    attributes = (
        {str(k): str(v) for k, v in raw_attributes.items() if isinstance(v, str)}
        if isinstance(raw_attributes, dict)
        else {}
    )
    return SourceModel(
        path=path,
        format=payload_format,
        sha256=sha256,
        payload_format=payload_format,
        payload=payload,
        objective=_objective_of(learner) or "unknown",
        base_score=_base_score_of(path, learner),
        feature_names=feature_names,
        xgboost_version=_version_of(document),
        booster=str(booster.get("name")) if isinstance(booster, dict) else "gbtree",
        num_class=max(num_class or 0, 0),
        num_parallel_tree=max(
            _int_of(tree_param.get("num_parallel_tree") if isinstance(tree_param, dict) else 1)
            or 1,
            1,
        ),
        num_trees=len(trees.get("trees", [])) if trees is not None else 0,
        attributes=attributes,
    )


def tree_model_of(document: object) -> dict[str, Any] | None:
    """`learner.gradient_booster.model` (gbtree) or `...gbtree.model` (dart) of a model document."""
    if not isinstance(document, dict):
        return None
    learner = document.get("learner")
    booster = learner.get("gradient_booster") if isinstance(learner, dict) else None
    if not isinstance(booster, dict):
        return None
    if booster.get("name") == "dart":
        booster = booster.get("gbtree")
        if not isinstance(booster, dict):
            return None
    model = booster.get("model")
    return model if isinstance(model, dict) else None


def _int_of(value: object) -> int | None:
    """An integer model parameter: XGBoost writes them as strings (`"3"`), UBJSON may not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


_GBTREE_PARAM_SIZE = 160  # GBTreeModelParam
_TREE_PARAM_SIZE = 148  # TreeParam
_NODE_SIZE = 20 + 16  # RegTree::Node + RTreeNodeStat


@dataclass(frozen=True, slots=True)
class LegacyLayout:
    """Where the parts of a legacy binary model are (byte offsets into it)."""

    num_trees: int
    num_parallel_tree: int
    trees_param: int
    """Offset of the `GBTreeModelParam` block (its first int32 is `num_trees`)."""
    tree_spans: tuple[tuple[int, int], ...]
    tree_info: int
    """Offset of the int32 `tree_info` table (one class index per tree)."""
    weight_drop: int | None
    """Offset of dart's `weight_drop` (uint64 count, then a float32 per tree), None for gbtree."""
    tail: int
    """Offset of what follows the trees (attributes, ...), kept unchanged when truncating."""
    attributes: tuple[tuple[str, str], ...]


def legacy_layout(path: Path, legacy: bytes) -> LegacyLayout:
    """Walk a legacy binary model and check every size against the bytes left.

    Treelite sizes its buffers from these counts before reading them; a damaged or hostile
    file could otherwise make it allocate far more memory than the file holds.
    """
    damaged = f"{path}: legacy binary model is damaged or truncated"
    offset = len(_LEGACY_MAGIC) if legacy.startswith(_LEGACY_MAGIC) else 0
    objective = _legacy_objective_at(legacy, offset) or ""
    (contain_extra_attrs,) = struct.unpack_from("<i", legacy, offset + 12)
    position = offset + _LEGACY_PARAM_SIZE + 8 + len(objective)
    (size,) = struct.unpack_from("<Q", legacy, position)
    booster = legacy[position + 8 : position + 8 + size]
    start = position + 8 + size
    if len(legacy) < start + _GBTREE_PARAM_SIZE:
        raise UnsupportedFormatError(f"{damaged} (no tree ensemble header)")
    num_trees, num_parallel_tree = struct.unpack_from("<ii", legacy, start)
    position = start + _GBTREE_PARAM_SIZE
    if not 0 <= num_trees <= (len(legacy) - position) // _TREE_PARAM_SIZE:
        raise UnsupportedFormatError(f"{damaged} (it claims {num_trees} trees)")
    spans: list[tuple[int, int]] = []
    for tree in range(num_trees):
        if len(legacy) < position + _TREE_PARAM_SIZE:
            raise UnsupportedFormatError(f"{damaged} (tree {tree} is cut off)")
        _, num_nodes, num_deleted, _, _, leaf_vector = struct.unpack_from("<6i", legacy, position)
        begin = position
        position += _TREE_PARAM_SIZE
        if leaf_vector != 0:
            raise UnsupportedModelError(f"{path}: tree {tree} has leaf vectors; not supported")
        if not 1 <= num_nodes <= (len(legacy) - position) // _NODE_SIZE or not (
            0 <= num_deleted < num_nodes
        ):
            raise UnsupportedFormatError(f"{damaged} (tree {tree} claims {num_nodes} nodes)")
        position += num_nodes * _NODE_SIZE
        spans.append((begin, position))
    tree_info = position
    position += 4 * num_trees
    if len(legacy) < position:
        raise UnsupportedFormatError(f"{damaged} (the tree info table is cut off)")
    weight_drop: int | None = None
    if booster == b"dart":  # std::vector<float>: uint64 count, then the floats
        weight_drop = position
        if len(legacy) < position + 8:
            raise UnsupportedFormatError(f"{damaged} (dart's weight_drop is cut off)")
        (count,) = struct.unpack_from("<Q", legacy, position)
        if count != num_trees or len(legacy) < position + 8 + 4 * count:
            raise UnsupportedFormatError(f"{damaged} (dart's weight_drop has {count} entries)")
        position += 8 + 4 * num_trees
    tail = position
    attributes: list[tuple[str, str]] = []
    if contain_extra_attrs and len(legacy) >= position + 8:
        attributes = _legacy_attributes(legacy, position)
    return LegacyLayout(
        num_trees=num_trees,
        num_parallel_tree=num_parallel_tree,
        trees_param=start,
        tree_spans=tuple(spans),
        tree_info=tree_info,
        weight_drop=weight_drop,
        tail=tail,
        attributes=tuple(attributes),
    )


def _legacy_attributes(legacy: bytes, position: int) -> list[tuple[str, str]]:
    """The `vector<pair<string, string>>` of Booster attributes; [] when it does not parse."""
    (count,) = struct.unpack_from("<Q", legacy, position)
    position += 8
    if count > 1024:
        return []
    found: list[tuple[str, str]] = []
    for _ in range(count):
        pair: list[str] = []
        for _ in range(2):
            if len(legacy) < position + 8:
                return []
            (size,) = struct.unpack_from("<Q", legacy, position)
            position += 8
            if size > len(legacy) - position:
                return []
            pair.append(legacy[position : position + size].decode("utf-8", "replace"))
            position += size
        found.append((pair[0], pair[1]))
    return found


def _check_booster(path: Path, name: object) -> None:
    """Only tree boosters can be compiled: refuse `gblinear` with a clear message."""
    if isinstance(name, str) and name not in ("gbtree", "dart"):
        raise UnsupportedModelError(
            f"{path}: a {name} model (booster={name!r}) has no trees; only tree models "
            "(booster 'gbtree' or 'dart') can be compiled and served"
        )


def _objective_of(learner: object) -> str | None:
    if not isinstance(learner, dict):
        return None
    objective = learner.get("objective")
    if isinstance(objective, dict) and isinstance(objective.get("name"), str):
        return str(objective["name"])
    train_param = learner.get("learner_train_param")
    if isinstance(train_param, dict) and isinstance(train_param.get("objective"), str):
        return str(train_param["objective"])
    return None


def _base_score_of(path: Path, learner: object) -> float | None:
    """`learner_model_param.base_score`: "5E-1" (XGBoost < 3) or "[5E-1]" (XGBoost 3)."""
    if not isinstance(learner, dict):
        return None
    param = learner.get("learner_model_param")
    if not isinstance(param, dict):
        return None
    raw = param.get("base_score")
    if not isinstance(raw, str):
        return None
    items = [item for item in raw.strip().strip("[]").split(",") if item.strip()]
    if len(items) > 1:
        return None  # one per class (XGBoost 3 multi-class): treelite reads them
    try:
        value = float(items[0]) if items else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _version_of(document: dict[str, Any]) -> str | None:
    version = document.get("version")
    if isinstance(version, np.ndarray):  # UBJSON typed array
        version = version.tolist()
    if isinstance(version, list) and version and all(isinstance(v, int) for v in version):
        return ".".join(str(v) for v in version)
    return None


def _generic_names(names: tuple[str, ...]) -> bool:
    """XGBoost's placeholder names f0, f1, ... carry no information."""
    return all(name == f"f{index}" for index, name in enumerate(names))


def _describe_bytes(data: bytes) -> str:
    if not data:
        return "the file is empty"
    if data.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed: pass the .tar.gz itself, not a file inside it"
    if data.startswith(b"bs64"):
        return "it is a base64 legacy model (XGBoost < 0.80); re-save it with XGBoost 1.x"
    return f"it starts with {data[:16]!r}"


# --------------------------------------------------------------------------------------------
# Directories


def find_model_files(directory: Path | str, *, ensemble: bool = True) -> list[Path]:
    """The model files the built-in container serves from `directory` (sorted by name).

    SageMaker's container loads every regular file at the top of the model directory that
    does not start with a dot and, with `SAGEMAKER_INFERENCE_ENSEMBLE` on (its default),
    serves all of them as one ensemble (k-fold training writes `xgboost-model-0` ... `-N`).
    It fails when one of them is not a model; so does this. With `ensemble=False`, or fewer
    than two top-level model files, this is `[find_model_file(directory)]`. (The container
    then takes the first name `os.listdir` returns, an order the file system decides; this
    takes `xgboost-model` if present, else the first name in sorted order.)
    """
    directory = Path(directory)
    top: list[Path] = []
    models: list[Path] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or not path.is_file():
            continue
        top.append(path)
        with open(path, "rb") as handle:
            if detect_format(handle.read(256)) is not None:
                models.append(path)
    if len(models) < 2:
        return [find_model_file(directory)]
    if not ensemble:
        preferred = directory / DEFAULT_MODEL_FILE
        return [preferred if preferred in models else models[0]]
    others = [path.name for path in top if path not in models]
    if others:
        raise UnsupportedFormatError(
            f"{directory}: holds {len(models)} model files, served together as an ensemble "
            f"(SAGEMAKER_INFERENCE_ENSEMBLE), and {', '.join(others)}, which "
            f"{'is' if len(others) == 1 else 'are'} not a model; SageMaker's container fails "
            "to load such a directory too: remove the other files or set "
            "SAGEMAKER_INFERENCE_ENSEMBLE=false"
        )
    return models


def find_model_file(directory: Path | str) -> Path:
    """The model file in a directory: `xgboost-model` if present, else the only model file.

    Raises `UnsupportedFormatError` when there is none, or when several candidates make
    the choice ambiguous (name the file instead).
    """
    directory = Path(directory)
    preferred = directory / DEFAULT_MODEL_FILE
    if preferred.is_file():
        return preferred
    candidates: list[Path] = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name.startswith("."):
            continue
        with open(path, "rb") as handle:
            head = handle.read(256)
        if detect_format(head) is not None:
            candidates.append(path)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UnsupportedFormatError(f"{directory}: holds no XGBoost model file; {_SUPPORTED_HELP}")
    listed = ", ".join(str(path.relative_to(directory)) for path in candidates)
    raise UnsupportedFormatError(
        f"{directory}: holds several model files ({listed}); pass the one to build"
    )


# --------------------------------------------------------------------------------------------
# Treelite


def load_treelite(source: SourceModel) -> treelite.Model:
    """Parse the source with treelite (the only function here that imports it)."""
    import treelite

    suffix = {"legacy-binary": ".model", "json": ".json", "ubjson": ".ubj"}[source.payload_format]
    # Treelite `print`s its log lines (e.g. why a JSON model was rejected) to stdout, where our
    # commands write results, and `warnings.warn`s its warnings: collect both for the message.
    log = io.StringIO()
    with (
        tempfile.TemporaryDirectory(prefix="rtb-source-") as tmp,
        contextlib.redirect_stdout(log),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        file = Path(tmp) / f"model{suffix}"
        file.write_bytes(source.payload)
        try:
            if source.payload_format == "legacy-binary":
                model = treelite.frontend.load_xgboost_model_legacy_binary(file)
            else:
                model = treelite.frontend.load_xgboost_model(
                    file, format_choice=source.payload_format, allow_unknown_field=False
                )
        except treelite.TreeliteError as exc:
            details = [*log.getvalue().splitlines(), *(str(w.message) for w in caught)]
            reasons = [_strip_location(line) for line in details if line.strip()]
            reasons.append(_strip_location(_first_line(str(exc))))
            raise UnsupportedFormatError(
                f"{source.path}: treelite cannot parse this {source.format} model: "
                + "; ".join(dict.fromkeys(reasons))
            ) from exc
    if model.num_feature > MAX_FEATURES:
        raise UnsupportedModelError(
            f"{source.path}: the model has {model.num_feature} features; serving is limited "
            f"to {MAX_FEATURES}"
        )
    return model


def _strip_location(line: str) -> str:
    """`[12:00:00] /project/src/x.cc:42: message` -> `message`."""
    return _LOG_PREFIX.sub("", line.strip())


def _first_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else message
