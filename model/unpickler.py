"""Read the model bytes out of a pickled `xgboost.core.Booster` without executing the pickle.

SageMaker's built-in XGBoost containers (0.90-x, 1.0-x, 1.2-x, ...) save the trained model with
`pickle.dump(booster, f)`. A pickle is a program: `pickle.load` would run whatever globals it
names. `BoosterUnpickler` resolves only the handful of globals a Booster's state needs, to
harmless stand-ins, and refuses everything else before anything is called.

The Booster's state is a dict whose `handle` holds the model bytes as XGBoost's
`__getstate__` wrote them: a raw memory snapshot (`CONFIG-offset:` + int64 length + legacy
binary + JSON config) for XGBoost 1.0 to 1.x, the bare legacy binary for 0.90, and a UBJSON
document for XGBoost 2 and later. `model.source` tells these apart.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from model.errors import UnsafePickleError, UnsupportedFormatError

__all__ = ["BoosterState", "BoosterUnpickler", "read_booster_pickle"]


_LATIN1 = ("latin-1", "latin1", "iso-8859-1")


class _BoosterPlaceholder:
    """Stands in for `xgboost.core.Booster`: a plain object whose state is a dict."""

    state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state


def _is_latin1_text(args: tuple[object, ...]) -> TypeGuard[tuple[str, str]]:
    """`(text, encoding)` with a spelling of latin-1 as the encoding."""
    return (
        len(args) == 2
        and isinstance(args[0], str)
        and isinstance(args[1], str)
        and args[1].lower().replace("_", "-") in _LATIN1
    )


def _bytearray(*args: object) -> bytearray:
    """`builtins.bytearray`, restricted to the forms pickle uses for a byte string.

    Protocols 3 to 5 call `bytearray(b"...")`; older ones pass text and "latin-1", or bytes
    spelled as `_codecs.encode(text, "latin1")`.
    An integer argument (which would allocate that many bytes) is refused.
    """
    if len(args) == 1 and isinstance(args[0], bytes | bytearray):
        return bytearray(args[0])
    if _is_latin1_text(args):
        return bytearray(args[0], "latin-1")
    if not args:
        return bytearray()
    raise UnsafePickleError("bytearray() is called with arguments other than a byte string")


def _latin1_encode(*args: object) -> bytes:
    """`_codecs.encode(text, "latin1")`: how protocols 0 to 2 spell a byte string."""
    if _is_latin1_text(args):
        return args[0].encode("latin-1")
    raise UnsafePickleError("_codecs.encode is called with arguments other than (text, 'latin1')")


def _reconstructor(cls: object, base: object, state: object) -> object:
    """`copyreg._reconstructor` as protocols 0 and 1 use it, for the Booster stand-in only."""
    if cls is _BoosterPlaceholder and base is object and state is None:
        return _BoosterPlaceholder.__new__(_BoosterPlaceholder)
    raise UnsafePickleError("copyreg._reconstructor is called for something other than a Booster")


_ALLOWED: dict[tuple[str, str], object] = {
    ("xgboost.core", "Booster"): _BoosterPlaceholder,
    ("builtins", "bytearray"): _bytearray,
    ("__builtin__", "bytearray"): _bytearray,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
}


class BoosterUnpickler(pickle.Unpickler):
    """An unpickler that only knows the globals of a pickled `xgboost.core.Booster`.

    Any other global (`os.system`, `builtins.eval`, `subprocess.Popen`, ...) raises
    `UnsafePickleError` naming the file and the global, before it is ever called.
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, *, origin: str) -> None:
        super().__init__(file)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.origin}: the pickle refers to `{module}.{name}`, which a pickled "
                "xgboost Booster never does; refusing to load it (it could run code). "
                "If you trust this file, re-save the model with "
                "`booster.save_model('model.json')` and build from that"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.origin}: the pickle uses persistent ids; refusing it")


@dataclass(frozen=True, slots=True)
class BoosterState:
    """What a pickled Booster holds: the model bytes, and feature names when it recorded them."""

    handle: bytes
    feature_names: tuple[str, ...] | None
    best_ntree_limit: int | None = None
    """The Python attribute `best_ntree_limit` that `xgboost.train` of XGBoost 0.90 to 1.7 sets
    on the Booster (pickled with it); the built-in 1.x containers predict with
    `ntree_limit=getattr(booster, "best_ntree_limit", 0)`. None when the pickle has none."""


def read_booster_pickle(path: Path, *, data: bytes | None = None) -> BoosterState:
    """Read a pickled `xgboost.core.Booster` from `path` (or from `data`, its bytes) safely."""
    raw = path.read_bytes() if data is None else data
    unpickler = BoosterUnpickler(io.BytesIO(raw), origin=str(path))
    try:
        obj = unpickler.load()
    except UnsafePickleError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise UnsafePickleError(f"{path}: {exc}; refusing to load it") from None
    except Exception as exc:  # a truncated or corrupt pickle raises many kinds
        raise UnsupportedFormatError(
            f"{path}: starts like a pickle but cannot be read as one ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(obj, _BoosterPlaceholder):
        raise UnsafePickleError(
            f"{path}: the pickle holds a {type(obj).__name__}, not an xgboost.core.Booster"
        )
    state = obj.state
    if not isinstance(state, dict):
        raise UnsupportedFormatError(
            f"{path}: the pickled Booster's state is a {type(state).__name__}, not a dict"
        )
    handle = state.get("handle")
    if not isinstance(handle, bytes | bytearray) or not handle:
        raise UnsupportedFormatError(
            f"{path}: the pickled Booster has no model bytes in its `handle` "
            "(was it pickled before training?)"
        )
    names = state.get("feature_names")
    feature_names: tuple[str, ...] | None = None
    if isinstance(names, list | tuple) and names and all(isinstance(n, str) for n in names):
        feature_names = tuple(names)
    limit = state.get("best_ntree_limit")
    best_ntree_limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return BoosterState(
        handle=bytes(handle), feature_names=feature_names, best_ntree_limit=best_ntree_limit
    )
