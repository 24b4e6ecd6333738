"""The runtime predictors: the compiled library called through ctypes, and treelite GTIL.

`load_model(model_dir)` reads the artifact's manifest, checks every file's sha256, loads the
compiled library (or, when the manifest has `compiled: null` or the library cannot be loaded,
the treelite checkpoint through GTIL, with a WARNING; the library's ELF structure is checked
before dlopen, which would fault on a truncated file), runs the verification set and refuses
the model when any prediction differs by more than the manifest's tolerance.

The compiled library is tl2cgen 1.0's C code: `predict(union Entry* row, int pred_margin,
float* result)` adds each tree's leaf into `result` (which must start at zero), then applies the
output transform (the sigmoid for binary:logistic) unless `pred_margin`. `union Entry` is
`{int missing; float fvalue; int qvalue}`; a missing value is `missing == -1`, so a row is
passed as float32 values whose NaNs are overwritten with the int32 bit pattern -1.
A predictor is not thread-safe: each worker process owns one and calls it on its event loop.

A compiled predictor's library is closed (`dlclose`) when the predictor itself is freed: ctypes
never unloads a library, so a multi-model worker serving ever-new models would otherwise keep
every `.so` it ever loaded mapped. Everything that calls into the library holds the predictor
while it does (a request keeps it in a local from before it reads its body until it has
encoded the answer; a load keeps it while it verifies), so the library outlives every call.
"""

from __future__ import annotations

import _ctypes
import ctypes
import logging
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from model.artifact import (
    Manifest,
    combine_members,
    load_verification,
    read_manifest,
    resolve_member,
    verify_files,
)
from model.errors import ArtifactError
from serve.features import FeatureMatrix
from serve.outputs import Predictions
from serve.shared_library import SharedLibraryError, check_shared_library

logger = logging.getLogger(__name__)


_MISSING = np.int32(-1)


class PredictorError(Exception):
    """A model cannot be served: unloadable, inconsistent, or failing its verification set."""


class Predictor(Protocol):
    """What XGBoost's `predict` returns for a C-contiguous float32 (rows, num_features) matrix
    (NaN is missing), as float32: shape (rows,) when the model has one output per row, (rows,
    num_outputs) for `multi:softprob`. `multi:softmax` gives the class index (as a float)."""

    @property
    def kind(self) -> str: ...

    @property
    def num_features(self) -> int: ...

    @property
    def num_outputs(self) -> int: ...

    def predict(self, features: FeatureMatrix) -> Predictions: ...

    def predict_row(self, values: list[float]) -> Predictions:
        """One row given as Python floats (NaN is missing): the hot path of a single-row
        request. Shape (1,) or (1, num_outputs); the array may be reused by the next call."""
        ...


class CompiledPredictor:
    """Calls the tl2cgen-compiled `predict()` directly, with reused buffers for one row.

    Small batches loop over the rows from Python (about 0.8 µs a row of ctypes overhead on top
    of the model). From `BATCH_ROWS` rows on, tl2cgen's own runtime loops in C over the same
    library instead: about 30 µs fixed, then 0.2 µs a row. `load_model` loads it before the
    verification set (which checks it too), so no request pays for importing it; where it
    cannot be loaded, every batch takes the loop.
    """

    BATCH_ROWS = 64

    kind = "compiled"

    def __init__(self, library: Path, *, num_features: int, num_classes: int = 1) -> None:
        try:
            check_shared_library(library)  # dlopen of a truncated ELF dies of SIGBUS, unlogged
            lib = ctypes.CDLL(str(library))
            lib.get_num_feature.restype = ctypes.c_int32
            lib.get_num_target.restype = ctypes.c_int32
            lib.get_threshold_type.restype = ctypes.c_char_p
            lib.get_leaf_output_type.restype = ctypes.c_char_p
            predict = lib.predict
        except SharedLibraryError as exc:
            raise PredictorError(f"cannot load the compiled model: {exc}") from exc
        except (OSError, AttributeError) as exc:
            raise PredictorError(f"{library}: cannot load the compiled model: {exc}") from exc
        # Unmapped once this predictor is freed (also when this constructor refuses the
        # library); not at interpreter exit, where nothing needs it back.
        weakref.finalize(self, _dlclose, lib._handle).atexit = False
        library_features = int(lib.get_num_feature())
        if library_features != num_features:
            raise PredictorError(
                f"{library}: the library expects {library_features} features, "
                f"the manifest says {num_features}"
            )
        num_class = ctypes.c_int32(0)
        lib.get_num_class(ctypes.byref(num_class))
        types = (lib.get_threshold_type(), lib.get_leaf_output_type())
        if (
            lib.get_num_target() != 1
            or num_class.value != num_classes
            or types != (b"float32", b"float32")
        ):
            raise PredictorError(
                f"{library}: expected a single-target float32 model of {num_classes} classes "
                f"(targets={lib.get_num_target()}, classes={num_class.value}, types={types})"
            )
        # No argtypes: the single-row call passes ready-made c_void_p objects (the fastest call
        # ctypes has); the batch path wraps its addresses the same way.
        predict.restype = None
        self._predict = predict
        self._library = lib  # its function pointers are valid until this predictor is freed
        self._library_path = library
        self._batch: Any = None  # tl2cgen.Predictor on the same library, see load_batch_path
        self._batch_matrix: Any = None  # tl2cgen.DMatrix
        self._num_features = num_features
        self._row = np.zeros(num_features, dtype=np.float32)
        self._row_bits = self._row.view(np.int32)
        self._row_pointer = ctypes.c_void_p(self._row.ctypes.data)
        # ctypes views of the same memory: Python floats go in without a numpy call.
        self._row_cells: Any = (ctypes.c_float * num_features).from_buffer(self._row.data)
        self._num_classes = num_classes
        self._result = np.zeros(num_classes, dtype=np.float32)
        self._result_pointer = ctypes.c_void_p(self._result.ctypes.data)
        self._result_cell = ctypes.c_float.from_buffer(self._result.data)
        self._no_margin = ctypes.c_int(0)

    @property
    def num_features(self) -> int:
        return self._num_features

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_path_loaded(self) -> bool:
        return self._batch is not None

    def predict_row(self, values: list[float]) -> Predictions:
        total = sum(values)
        if total != total:  # a missing value: it needs the bit pattern, done in numpy
            return self.predict(np.array((values,), dtype=np.float32))
        self._row_cells[:] = values  # straight into the reused row buffer, no numpy call
        self._result_cell.value = 0.0
        self._predict(self._row_pointer, self._no_margin, self._result_pointer)
        return self._result

    def predict(self, features: FeatureMatrix) -> Predictions:
        rows = features.shape[0]
        if rows == 1:
            row = self._row
            row[:] = features[0]
            self._row_bits[np.isnan(row)] = _MISSING
            self._result[0] = 0.0
            self._predict(self._row_pointer, self._no_margin, self._result_pointer)
            return self._result.copy()
        if rows >= self.BATCH_ROWS and self._batch is not None:
            matrix = self._batch_matrix(
                np.ascontiguousarray(features, dtype=np.float32), dtype="float32", missing=np.nan
            )
            output = self._batch.predict(matrix)
            return np.ascontiguousarray(output.reshape(rows), dtype=np.float32)
        entries = np.array(features, dtype=np.float32, order="C", copy=True)
        entries.view(np.int32)[np.isnan(entries)] = _MISSING
        result = np.zeros(rows, dtype=np.float32)
        predict = self._predict
        pointer = ctypes.c_void_p
        no_margin = self._no_margin
        address = entries.ctypes.data
        stride = entries.strides[0]
        out = result.ctypes.data
        for index in range(rows):
            predict(pointer(address + index * stride), no_margin, pointer(out + 4 * index))
        return result

    def _margins(self, features: FeatureMatrix, *, margin: bool) -> npt.NDArray[np.float32]:
        """The library's output for every row, (rows, num_classes): the batch runtime from
        `BATCH_ROWS` rows, else one ctypes call a row."""
        rows = features.shape[0]
        classes = self._num_classes
        if rows >= self.BATCH_ROWS and self._batch is not None:
            matrix = self._batch_matrix(
                np.ascontiguousarray(features, dtype=np.float32), dtype="float32", missing=np.nan
            )
            output = self._batch.predict(matrix, pred_margin=margin)
            return np.ascontiguousarray(output.reshape(rows, classes), dtype=np.float32)
        entries = np.array(features, dtype=np.float32, order="C", copy=True)
        entries.view(np.int32)[np.isnan(entries)] = _MISSING
        result = np.zeros((rows, classes), dtype=np.float32)
        predict = self._predict
        pointer = ctypes.c_void_p
        flag = ctypes.c_int(1 if margin else 0)
        address = entries.ctypes.data
        stride = entries.strides[0]
        out = result.ctypes.data
        for index in range(rows):
            predict(pointer(address + index * stride), flag, pointer(out + 4 * classes * index))
        return result

    def load_batch_path(self) -> None:
        """Load tl2cgen's runtime for batches of `BATCH_ROWS` rows or more (single-threaded,
        as one worker process owns one core). Without it batches still work, more slowly."""
        if self._batch is not None:
            return
        try:
            import tl2cgen

            self._batch = tl2cgen.Predictor(str(self._library_path), nthread=1)
            self._batch_matrix = tl2cgen.DMatrix
        except Exception as exc:  # an optional speed-up: never a reason not to serve
            logger.warning(
                "%s: tl2cgen's batch runtime is unavailable, batches are predicted row by row "
                "(%s: %s)",
                self._library_path,
                type(exc).__name__,
                exc,
            )


def _dlclose(handle: int) -> None:
    """Drop this process's reference to a compiled library: the loader unmaps it when no other
    handle (another predictor of the same file, tl2cgen's batch runtime) still holds it."""
    _ctypes.dlclose(handle)


class MulticlassPredictor(CompiledPredictor):
    """A compiled `multi:softprob` model ((rows, num_class) probabilities) or `multi:softmax`
    model (the index of the largest margin, (rows,)), as XGBoost's `predict` returns them."""

    def __init__(
        self, library: Path, *, num_features: int, num_classes: int, class_index: bool
    ) -> None:
        super().__init__(library, num_features=num_features, num_classes=num_classes)
        self._class_index = class_index
        self._margin_flag = ctypes.c_int(1 if class_index else 0)
        self._index_result = np.zeros(1, dtype=np.float32)

    @property
    def num_outputs(self) -> int:
        return 1 if self._class_index else self._num_classes

    def predict_row(self, values: list[float]) -> Predictions:
        return self.predict(np.array((values,), dtype=np.float32))

    def predict(self, features: FeatureMatrix) -> Predictions:
        output = self._margins(features, margin=self._class_index)
        if self._class_index:
            return np.asarray(np.argmax(output, axis=1), dtype=np.float32)
        return output


class GtilPredictor:
    """treelite's GTIL interpreter on the checkpoint: portable and slower (the fallback path)."""

    kind = "gtil"

    def __init__(
        self,
        checkpoint: Path,
        *,
        num_features: int,
        num_outputs: int = 1,
        class_index: bool = False,
    ) -> None:
        import treelite  # only the fallback path needs it

        try:
            self._model: Any = treelite.Model.deserialize(str(checkpoint))
        except Exception as exc:  # treelite raises its own error types for corrupt files
            raise PredictorError(
                f"{checkpoint}: cannot load the treelite checkpoint: {exc}"
            ) from exc
        if int(self._model.num_feature) != num_features:
            raise PredictorError(
                f"{checkpoint}: the checkpoint has {self._model.num_feature} features, "
                f"the manifest says {num_features}"
            )
        self._gtil: Any = treelite.gtil
        self._num_features = num_features
        self._num_outputs = num_outputs
        self._class_index = class_index

    @property
    def num_features(self) -> int:
        return self._num_features

    @property
    def num_outputs(self) -> int:
        return self._num_outputs

    def predict_row(self, values: list[float]) -> Predictions:
        return self.predict(np.array((values,), dtype=np.float32))

    def predict(self, features: FeatureMatrix) -> Predictions:
        rows = features.shape[0]
        output = self._gtil.predict(self._model, features, nthread=1, pred_margin=self._class_index)
        if self._class_index:
            return np.asarray(np.argmax(output.reshape(rows, -1), axis=1), dtype=np.float32)
        if output.size != rows * self._num_outputs:
            raise PredictorError(
                f"GTIL returned shape {output.shape}; expected {self._num_outputs} per row"
            )
        shape = (rows,) if self._num_outputs == 1 else (rows, self._num_outputs)
        return np.ascontiguousarray(output.reshape(shape), dtype=np.float32)


class EnsemblePredictor:
    """Several models served as one, combined as SageMaker's built-in container combines them
    (`model.artifact.combine_members`: the mean, or the per-row vote)."""

    def __init__(self, members: list[Predictor], *, combine: str) -> None:
        self._members = members
        self._combine = combine

    @property
    def kind(self) -> str:
        return self._members[0].kind

    @property
    def num_features(self) -> int:
        return self._members[0].num_features

    @property
    def num_outputs(self) -> int:
        return self._members[0].num_outputs

    @property
    def members(self) -> list[Predictor]:
        return list(self._members)

    def predict_row(self, values: list[float]) -> Predictions:
        return combine_members([m.predict_row(values) for m in self._members], self._combine)

    def predict(self, features: FeatureMatrix) -> Predictions:
        return combine_members([m.predict(features) for m in self._members], self._combine)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified predictor and the manifest it was built from."""

    predictor: Predictor
    manifest: Manifest
    max_error: float
    """Largest absolute difference from the verification set's expected values."""

    @property
    def num_outputs(self) -> int:
        return self.predictor.num_outputs


def load_model(model_dir: Path, *, allow_compiled: bool = True) -> LoadedModel:
    """Load, verify and warm up the artifact in `model_dir`.

    Raises `PredictorError` (or `model.errors.ArtifactError`) with a message that names the
    file and the problem; the caller must not serve the model then.
    """
    started = time.perf_counter()
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    num_features = manifest.model.num_features
    if manifest.ensemble is None:
        files = [
            (
                None if manifest.compiled is None else manifest.compiled.library,
                manifest.fallback.checkpoint,
            )
        ]
    else:
        files = [(member.library, member.checkpoint) for member in manifest.ensemble.members]
    if manifest.compiled is None:
        logger.warning(
            "%s: the artifact has no compiled library (built without a C compiler); "
            "serving through treelite GTIL, which is much slower",
            model_dir,
        )
    members: list[Predictor] | None = None
    if manifest.compiled is not None and allow_compiled:
        try:
            members = [
                _compiled_predictor(resolve_member(model_dir, library), manifest)
                for library, _ in files
                if library is not None
            ]
        except (PredictorError, ArtifactError) as exc:
            logger.warning("%s; serving through treelite GTIL, which is much slower", exc)
    if members is None:
        members = [
            GtilPredictor(
                resolve_member(model_dir, checkpoint),
                num_features=num_features,
                num_outputs=manifest.model.num_outputs,
                class_index=manifest.model.output_kind == "class_index",
            )
            for _, checkpoint in files
        ]
    predictor: Predictor = (
        members[0]
        if manifest.ensemble is None
        else EnsemblePredictor(members, combine=manifest.ensemble.combine)
    )
    max_error = verify_predictor(predictor, model_dir=model_dir, manifest=manifest)
    warm_up(predictor)
    logger.info(
        "model loaded from %s: %s predictor, %d features, %d trees, "
        "verification max error %.3g over %d rows, %.0f ms",
        model_dir,
        predictor.kind,
        num_features,
        manifest.model.num_trees,
        max_error,
        manifest.verification.rows,
        (time.perf_counter() - started) * 1e3,
    )
    return LoadedModel(predictor=predictor, manifest=manifest, max_error=max_error)


def _compiled_predictor(library: Path, manifest: Manifest) -> CompiledPredictor:
    num_features = manifest.model.num_features
    class_index = manifest.model.output_kind == "class_index"
    num_classes = max(manifest.model.num_class, 1)
    compiled = (
        CompiledPredictor(library, num_features=num_features)
        if num_classes == 1 and not class_index
        else MulticlassPredictor(
            library, num_features=num_features, num_classes=num_classes, class_index=class_index
        )
    )
    compiled.load_batch_path()  # before the verification set, which checks it too
    return compiled


def verify_predictor(predictor: Predictor, *, model_dir: Path, manifest: Manifest) -> float:
    """Predict the verification set row by row and in one batch; refuse any mismatch."""
    features, expected = load_verification(model_dir, manifest)
    tolerance = manifest.verification.tolerance
    batch = predictor.predict(features).astype(np.float64)
    single = np.concatenate([predictor.predict(features[i : i + 1]) for i in range(len(features))])
    rows = [predictor.predict_row([float(v) for v in features[i]]).copy() for i in range(2)]
    worst = 0.0
    for name, got, wanted in (
        ("batch", batch, expected),
        ("single-row", single.astype(np.float64), expected),
        ("predict_row", np.concatenate(rows).astype(np.float64), expected[:2]),
    ):
        if got.shape != wanted.shape or not np.isfinite(got).all():
            raise PredictorError(
                f"{model_dir}: the {predictor.kind} predictor returned {got.shape} values "
                f"(all finite: {bool(np.isfinite(got).all())}) "
                f"for verification rows of shape {wanted.shape}"
            )
        excess = tolerance.excess(got, wanted).reshape(len(got), -1).max(axis=1)
        errors = np.abs(got - wanted).reshape(len(got), -1).max(axis=1)
        index = int(np.argmax(excess))
        if excess[index] > 0:
            raise PredictorError(
                f"{model_dir}: the {predictor.kind} predictor fails verification ({name}): "
                f"row {index} gives {got[index]!r}, expected {wanted[index]!r} "
                f"(difference {errors[index]:.3g}, allowed {tolerance.describe()}); "
                "refusing to serve"
            )
        worst = max(worst, float(errors.max()))
    return worst


def warm_up(predictor: Predictor, *, rounds: int = 100) -> None:
    """Touch every code path once so the first request pays no first-call costs."""
    members = predictor.members if isinstance(predictor, EnsemblePredictor) else [predictor]
    for member in members:
        if isinstance(member, CompiledPredictor):
            member.predict(np.zeros((member.BATCH_ROWS, member.num_features), np.float32))
    zeros = np.zeros((1, predictor.num_features), dtype=np.float32)
    missing = np.full((2, predictor.num_features), np.nan, dtype=np.float32)
    for _ in range(rounds):
        predictor.predict(zeros)
    predictor.predict(missing)
