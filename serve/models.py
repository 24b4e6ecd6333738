"""Multi-model mode: the loaded models, one registry that every worker of the instance shares.

SageMaker sends `POST /models` to one worker of an instance, then the model's requests to any
worker. So the registry lives on disk: one JSON entry per loaded model in a private directory
(`RTB_MULTI_MODEL_REGISTRY`, created 0700 by the entrypoint), changed only under an exclusive
`flock`, so that 409 (loaded already) and the memory budget (507) hold across workers. Each
worker keeps its own predictors: one is loaded lazily from an entry's artifact directory on the
model's first request in that worker (milliseconds: the artifact is compiled and verified
already), each request checks its entry with one `readlink` (an unload or a reload in another
worker is seen at once), every second a worker drops the models unloaded or reloaded elsewhere
that it still holds, and a worker drops its least recently used predictors when they would
exceed the budget (they load again, lazily, on their next request).

A model is served by its own `InvocationHandler`: the one invocation contract, per model.
Loading (importing and compiling a raw model through the injected `build`, loading, verifying)
runs in a thread pool, never on the event loop, so requests to other models go on meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import fcntl
import hashlib
import logging
import os
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from model.artifact import is_artifact_dir
from serve.errors import (
    InsufficientMemoryError,
    InvalidModelError,
    InvalidPageTokenError,
    ModelAlreadyLoadedError,
    ModelNotFoundError,
)
from serve.invocations import InvocationHandler, configure_handler
from serve.outputs import OutputSelection
from serve.ownership import why_not_private
from serve.predictor import LoadedModel, load_model
from serve.settings import Settings

logger = logging.getLogger(__name__)

Build = Callable[[Path], Path]
"""A raw SageMaker XGBoost model directory -> the serving artifact directory built from it."""

MAX_NAME_CHARS = 1024
_ENTRY_SUFFIX = ".json"  # a link per loaded name, to its entry's data file
_DATA_SUFFIX = ".entry"
_LOCK_NAME = ".lock"
STALE_SWEEP_S = 1.0
"""How often a worker drops the models unloaded through another worker (`drop_stale_every`)."""


RESIDENT_BYTES_PER_WORKER: Final = 64 * 1024
"""What a loaded model costs each worker that holds it besides its library or checkpoint: its
handler, predictor and ctypes objects. `python -m benchmark mme` measures about 70 KiB of worker
RSS per 50-tree model, some 20 KiB of which is the model's mapped library."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """A loaded model, as the registry records it."""

    name: str
    url: str
    artifact_dir: str
    memory_bytes: int
    """The model's share of the budget: the compiled library's size (its pages are shared by
    every worker that maps it), or the treelite checkpoint's size times the workers (each
    worker deserializes its own); plus `RESIDENT_BYTES_PER_WORKER` times the workers."""
    predictor: str
    num_features: int
    loaded_at: float

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> ModelEntry:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class ModelPage:
    """One page of `GET /models`."""

    entries: list[ModelEntry]
    next_page_token: str | None


@dataclass(slots=True)
class _Resident:
    """A model's handler in this worker, and the identity of the entry it was loaded from."""

    entry: ModelEntry
    handler: InvocationHandler
    path: str
    target: str
    """The entry's unique file name, which the name's link points to while this load lasts."""

    def current(self) -> bool:
        """Whether the name still links to this load (one readlink)."""
        try:
            return os.readlink(self.path) == self.target
        except OSError:
            return False


class ModelRegistry:
    """The models of a multi-model endpoint, as seen from one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        directory: Path,
        build: Build | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.budget_bytes = settings.models_memory_bytes
        self._build = build
        self._executor = executor or ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="rtb-model-load"
        )
        self._resident: OrderedDict[str, _Resident] = OrderedDict()
        self._pending: dict[str, asyncio.Task[InvocationHandler]] = {}
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        problem = why_not_private(directory)
        if problem is None and not directory.is_dir():
            problem = f"{directory} is not a directory"
        if problem is not None:  # an entry names a library this process will load
            raise RegistryError(f"refusing the model registry: {problem}")

    @classmethod
    def private(cls, settings: Settings, *, build: Build | None = None) -> ModelRegistry:
        """The registry in `settings.models_registry_dir`, or in a fresh private directory."""
        directory = settings.models_registry_dir
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="rtb-inference-models-"))
        return cls(settings, directory=directory, build=build)

    def close(self) -> None:
        self._resident.clear()
        if isinstance(self._executor, ThreadPoolExecutor):
            self._executor.shutdown(wait=False, cancel_futures=True)

    # The hot path: a model's handler in this worker.

    def resident(self, name: str) -> InvocationHandler | None:
        """The model's handler if this worker holds it and its entry is unchanged, else None."""
        resident = self._resident.get(name)
        if resident is None:
            return None
        if not resident.current():
            del self._resident[name]  # unloaded or reloaded elsewhere
            return None
        self._resident.move_to_end(name)
        return resident.handler

    async def drop_stale(self) -> None:
        """Drop the models this worker holds whose entry changed (unloaded or reloaded through
        another worker): their memory and libraries are released though no request names them
        again. The readlinks run in the thread pool."""
        held = list(self._resident.items())
        loop = asyncio.get_running_loop()
        stale = await loop.run_in_executor(self._executor, _stale, held)
        dropped = 0
        for name, resident in stale:
            if self._resident.get(name) is resident:
                del self._resident[name]
                dropped += 1
        if dropped:
            await loop.run_in_executor(self._executor, release_freed_memory)

    async def drop_stale_every(self, *, interval_s: float = STALE_SWEEP_S) -> None:
        """`drop_stale` every `interval_s` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.drop_stale()

    async def handler(self, name: str) -> InvocationHandler:
        """The model's handler, loaded into this worker from its entry on first use; raises
        ModelNotFoundError when no model of that name is loaded."""
        found = self.resident(name)
        if found is not None:
            return found
        task = self._pending.get(name)
        if task is None:
            if not os.path.lexists(self._entry_path(name)):  # no thread for an unknown name
                raise ModelNotFoundError(_not_found(name))
            task = asyncio.ensure_future(self._materialize(name))
            self._pending[name] = task
        return await asyncio.shield(task)  # a cancelled waiter does not cancel the others

    async def _materialize(self, name: str) -> InvocationHandler:
        try:
            loop = asyncio.get_running_loop()
            resident = await loop.run_in_executor(self._executor, self._open, name)
            self._install(resident)
            return resident.handler
        finally:
            self._pending.pop(name, None)

    def _open(self, name: str) -> _Resident:
        """Load a registered model into this worker (in the thread pool)."""
        path = self._entry_path(name)
        try:
            target = os.readlink(path)
            entry = ModelEntry.from_json(_read(os.path.join(self.directory, target)))
        except FileNotFoundError:
            raise ModelNotFoundError(_not_found(name)) from None
        handler = self._new_handler(load_model(Path(entry.artifact_dir)))
        return _Resident(entry, handler, path, target)

    def _install(self, resident: _Resident) -> None:
        """Hold `resident`; drop the least recently used others while over the budget."""
        name = resident.entry.name
        self._resident.pop(name, None)
        self._resident[name] = resident
        used = sum(other.entry.memory_bytes for other in self._resident.values())
        while used > self.budget_bytes and len(self._resident) > 1:
            evicted_name, evicted = self._resident.popitem(last=False)
            used -= evicted.entry.memory_bytes
            logger.info("model %r dropped from this worker (least recently used)", evicted_name)

    # The management API.

    async def load(self, name: str, url: str) -> ModelEntry:
        """Import (once, through `build`), load, verify and register the model at `url`."""
        check_name(name)
        if os.path.lexists(self._entry_path(name)):
            raise ModelAlreadyLoadedError(_already_loaded(name))
        loop = asyncio.get_running_loop()
        resident = await loop.run_in_executor(self._executor, self._load_new, name, url)
        self._install(resident)
        return resident.entry

    def _load_new(self, name: str, url: str) -> _Resident:
        started = time.perf_counter()
        source = Path(url)
        if not source.is_dir():
            raise InvalidModelError(f"url {url!r} is not a directory holding a model.")
        artifact_dir = source
        if not is_artifact_dir(source):
            if self._build is None:
                raise InvalidModelError(
                    f"{url} holds no serving artifact (manifest.json), and this server has no "
                    "importer for raw SageMaker XGBoost models."
                )
            try:
                artifact_dir = self._build(source)
            except MemoryError:
                raise InsufficientMemoryError(_no_memory(name)) from None
            except Exception as exc:
                logger.warning("model %r at %s cannot be imported: %s", name, url, exc)
                raise InvalidModelError(
                    f"The model at {url} cannot be imported: {exc}. Give a SageMaker XGBoost "
                    "model (xgboost-model, or its model.tar.gz) or a serving artifact."
                ) from exc
        try:
            loaded = load_model(artifact_dir)
            handler = self._new_handler(loaded)
        except MemoryError:
            raise InsufficientMemoryError(_no_memory(name)) from None
        except Exception as exc:
            logger.warning("model %r at %s cannot be served: %s", name, url, exc)
            raise InvalidModelError(f"The model at {url} cannot be served: {exc}") from exc
        entry = ModelEntry(
            name=name,
            url=url,
            artifact_dir=str(artifact_dir.resolve()),
            memory_bytes=self._memory_bytes(loaded, artifact_dir),
            predictor=loaded.predictor.kind,
            num_features=loaded.predictor.num_features,
            loaded_at=time.time(),
        )
        path = self._entry_path(name)
        with self._locked():
            if os.path.lexists(path):
                raise ModelAlreadyLoadedError(_already_loaded(name))
            used = sum(other.memory_bytes for other in self._entries())
            if used + entry.memory_bytes > self.budget_bytes:
                raise InsufficientMemoryError(
                    f"Model {name!r} needs {entry.memory_bytes} bytes; {used} of the "
                    f"{self.budget_bytes}-byte budget (RTB_MULTI_MODEL_MEMORY_MB) are in use. "
                    "Unload a model first."
                )
            # The name's link points at a file named uniquely for this load: a worker holding
            # an earlier load of the name sees the link change with one readlink.
            target = f"{_digest(name)}.{uuid.uuid4().hex}{_DATA_SUFFIX}"
            with open(os.path.join(self.directory, target), "xb") as data:
                data.write(entry.to_json())
            os.symlink(target, path)
        logger.info(
            "model %r loaded from %s: %s predictor, %d bytes, %.0f ms",
            name,
            url,
            entry.predictor,
            entry.memory_bytes,
            (time.perf_counter() - started) * 1e3,
        )
        return _Resident(entry, handler, path, target)

    async def unload(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._remove, name)
        if self._resident.pop(name, None) is not None:
            await loop.run_in_executor(self._executor, release_freed_memory)

    def _remove(self, name: str) -> None:
        path = self._entry_path(name)
        with self._locked():
            try:
                target = os.readlink(path)
                os.unlink(path)
            except FileNotFoundError:
                raise ModelNotFoundError(_not_found(name)) from None
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self.directory, target))
        logger.info("model %r unloaded", name)

    def get(self, name: str) -> ModelEntry:
        try:
            return ModelEntry.from_json(_read(self._entry_path(name)))
        except FileNotFoundError:
            raise ModelNotFoundError(_not_found(name)) from None

    def page(self, token: str | None = None) -> ModelPage:
        """Models in name order, `models_page_size` at a time, after the one `token` names."""
        after = _decode_token(token) if token else None
        names = sorted(entry.name for entry in self._entries())
        if after is not None:
            names = [name for name in names if name > after]
        size = self.settings.models_page_size
        entries = []
        for name in names[:size]:
            try:
                entries.append(self.get(name))
            except ModelNotFoundError:  # unloaded meanwhile
                continue
        more = len(names) > size
        return ModelPage(entries, _encode_token(names[size - 1]) if more else None)

    @property
    def resident_names(self) -> list[str]:
        """The models this worker holds, least recently used first."""
        return list(self._resident)

    # Helpers.

    def _new_handler(self, loaded: LoadedModel) -> InvocationHandler:
        handler = InvocationHandler(self.settings, None, OutputSelection())
        configure_handler(handler, loaded, self.settings)
        return handler

    def _memory_bytes(self, loaded: LoadedModel, artifact_dir: Path) -> int:
        manifest = loaded.manifest
        workers = self.settings.workers
        resident = RESIDENT_BYTES_PER_WORKER * workers
        if loaded.predictor.kind == "compiled" and manifest.compiled is not None:
            return (artifact_dir / manifest.compiled.library).stat().st_size + resident
        checkpoint = (artifact_dir / manifest.fallback.checkpoint).stat().st_size
        return checkpoint * workers + resident

    def _entry_path(self, name: str) -> str:
        """The name's link. A plain string, as are the entries' file names: pathlib interns
        every path component it parses, and one unique string interned a load would keep
        growing the interpreter's table of interned strings as models come and go."""
        return os.path.join(self.directory, f"{_digest(name)}{_ENTRY_SUFFIX}")

    def _entries(self) -> Iterator[ModelEntry]:
        for path in self.directory.glob(f"*{_ENTRY_SUFFIX}"):
            if path.name.startswith("."):
                continue
            try:
                yield ModelEntry.from_json(path.read_bytes())
            except FileNotFoundError:  # unloaded meanwhile
                continue

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / _LOCK_NAME, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class RegistryError(Exception):
    """The registry directory is not this server's alone."""


def _find_malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_freed_memory() -> None:
    """Hand the pages malloc holds free back to the system (glibc's `malloc_trim`). Without it
    an unloaded model's memory stays in the worker's resident set, reusable by that worker
    alone (measured in one worker after 50 models were loaded, invoked and unloaded: trimming
    handed back 6.0 MiB, to within 0.1 MiB of where the worker started)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _stale(held: list[tuple[str, _Resident]]) -> list[tuple[str, _Resident]]:
    return [(name, resident) for name, resident in held if not resident.current()]


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def check_name(name: str) -> None:
    """A model name SageMaker can send: 1 to MAX_NAME_CHARS visible characters."""
    if not 0 < len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise InvalidModelError(
            f"model_name must be 1 to {MAX_NAME_CHARS} printable characters, got {name[:64]!r}."
        )


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise InvalidPageTokenError(
            "next_page_token is not one this server returned; list from the start without it."
        ) from None


def _not_found(name: str) -> str:
    return f"No model named {name!r} is loaded; load it with POST /models first."


def _already_loaded(name: str) -> str:
    return f"Model {name!r} is loaded already; unload it (DELETE /models/{{name}}) to replace it."


def _no_memory(name: str) -> str:
    return f"Model {name!r} does not fit in memory; unload a model first."


__all__ = [
    "MAX_NAME_CHARS",
    "Build",
    "ModelEntry",
    "ModelPage",
    "ModelRegistry",
    "RegistryError",
    "check_name",
]
