"""Server settings: one frozen dataclass, read from the environment in exactly one place."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from serve.codecs import ENCODERS, parse_media_type
from serve.outputs import OUTPUT_KEYS

LogFormat = Literal["plain", "json"]
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
MIB = 1024 * 1024

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable or option has a value the server cannot use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the server and its workers are configured by.

    Build it with `Settings.from_env()` in the entrypoint, or directly in tests.
    """

    model_dir: Path = Path("/opt/ml/model")
    """The model to serve: our artifact or a raw SageMaker XGBoost output (`RTB_MODEL_DIR`)."""
    default_model_dir: Path | None = None
    """Served when `model_dir` is absent or empty: the baked-in model (`RTB_DEFAULT_MODEL_DIR`)."""
    host: str = "0.0.0.0"
    port: int = 8080
    """`SAGEMAKER_BIND_TO_PORT`."""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Worker processes, one predictor each (`SAGEMAKER_MODEL_SERVER_WORKERS`)."""
    header_timeout_s: float = 10.0
    """Longest time a client may take to send a request head (`RTB_HEADER_TIMEOUT`)."""
    max_header_bytes: int = 64 * 1024
    """Largest request line + headers; a larger head gets 431 (`RTB_MAX_HEADER_BYTES`)."""
    request_timeout_s: float = 60.0
    """Longest time a client may take to send its body (`SAGEMAKER_MODEL_SERVER_TIMEOUT`)."""
    default_accept: str = "text/csv"
    """Answer type when Accept is missing or `*/*` (`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`)."""
    inference_output: tuple[str, ...] = ()
    """The built-in's selectable output keys; empty = `score` (`SAGEMAKER_INFERENCE_OUTPUT`)."""
    max_body_bytes: int = 6 * MIB
    """Largest request body accepted (`SAGEMAKER_MAX_PAYLOAD_IN_MB`)."""
    max_rows: int = 0
    """Most rows in one request (`RTB_MAX_ROWS`). 0, the default, means `max_body_bytes`: no row
    takes less than a byte, so no body within the byte limit is refused for its row count and a
    full Batch Transform mini-batch of short rows is served. The byte limit bounds the work."""
    batch: bool = False
    """Batch Transform (`SAGEMAKER_BATCH`, set by SageMaker in transform jobs): without selected
    keys, one prediction per line whatever the Accept, as the built-in answers there."""
    log_level: str = "INFO"
    log_format: LogFormat = "plain"
    access_log: bool = False
    keep_alive_s: float = 75.0
    """Idle keep-alive timeout, above front-end proxies' 60 s (`RTB_KEEP_ALIVE_TIMEOUT`)."""
    max_concurrency: int = 1000
    """Connections + in-flight requests per worker before a fast 503 (`RTB_MAX_CONCURRENCY`)."""
    backlog: int = 2048
    """Listen backlog: connections the kernel queues before accept (`RTB_BACKLOG`)."""
    graceful_timeout_s: float = 25.0
    """On SIGTERM, time for requests in flight (`RTB_GRACEFUL_TIMEOUT`); SageMaker kills at 30 s."""
    multi_model: bool = False
    """Multi-model endpoint mode (`SAGEMAKER_MULTI_MODEL`): no model at start-up; SageMaker loads
    and unloads models through `/models` and invokes them at `/models/{name}/invoke`."""
    models_memory_bytes: int = 0
    """Multi-model mode: memory the loaded models may take together before a load is answered
    507 (`RTB_MULTI_MODEL_MEMORY_MB`). 0, the default, means half of the machine's memory."""
    models_registry_dir: Path | None = None
    """Multi-model mode: the private directory where every worker finds the loaded models
    (`RTB_MULTI_MODEL_REGISTRY`, set by the entrypoint; a fresh one when unset)."""
    models_page_size: int = 100
    """Multi-model mode: models per `GET /models` page (`RTB_MULTI_MODEL_PAGE_SIZE`)."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port {self.port} is not between 1 and 65535")
        for name in (
            "workers",
            "max_header_bytes",
            "max_body_bytes",
            "max_concurrency",
            "backlog",
            "models_page_size",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_rows < 0:
            raise SettingsError(f"max_rows must be at least 0 (0: derived), got {self.max_rows}")
        if self.max_rows == 0:
            object.__setattr__(self, "max_rows", self.max_body_bytes)
        if self.models_memory_bytes < 0:
            raise SettingsError(
                f"models_memory_bytes must be at least 0 (0: half the memory), "
                f"got {self.models_memory_bytes}"
            )
        if self.models_memory_bytes == 0:
            object.__setattr__(self, "models_memory_bytes", _half_the_memory())
        for name in ("header_timeout_s", "request_timeout_s", "keep_alive_s", "graceful_timeout_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)}")
        if self.default_accept not in ENCODERS:
            raise SettingsError(
                f"default accept {self.default_accept!r} is not one of {', '.join(ENCODERS)}"
            )
        unknown = [key for key in self.inference_output if key not in OUTPUT_KEYS]
        if unknown or len(set(self.inference_output)) != len(self.inference_output):
            raise SettingsError(
                f"inference output {','.join(self.inference_output)!r} must be distinct keys "
                f"from {', '.join(OUTPUT_KEYS)}"
            )
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(
                f"log level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        if self.log_format not in ("plain", "json"):
            raise SettingsError(f"log format {self.log_format!r} is not 'plain' or 'json'")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the environment (SageMaker's names where one exists, `RTB_` for ours).

        Empty values count as unset. `overrides` (e.g. from command-line flags) win over both.
        """
        source = os.environ if env is None else env
        values: dict[str, object] = {}

        def read(name: str, key: str, cast: Callable[[str], T]) -> None:
            raw = source.get(name, "").strip()
            if not raw:
                return
            try:
                values[key] = cast(raw)
            except (ValueError, SettingsError) as exc:
                raise SettingsError(f"{name}={raw!r} is not valid: {exc}") from None

        read("RTB_MODEL_DIR", "model_dir", Path)
        read("RTB_DEFAULT_MODEL_DIR", "default_model_dir", Path)
        read("SAGEMAKER_BIND_TO_PORT", "port", int)
        read("SAGEMAKER_MODEL_SERVER_WORKERS", "workers", int)
        read("SAGEMAKER_MODEL_SERVER_TIMEOUT", "request_timeout_s", float)
        read("RTB_HEADER_TIMEOUT", "header_timeout_s", float)
        read("RTB_MAX_HEADER_BYTES", "max_header_bytes", int)
        read("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "default_accept", parse_media_type)
        read("SAGEMAKER_INFERENCE_OUTPUT", "inference_output", _parse_keys)
        read("SAGEMAKER_MAX_PAYLOAD_IN_MB", "max_body_bytes", _parse_megabytes)
        read("RTB_MAX_ROWS", "max_rows", int)
        read("SAGEMAKER_BATCH", "batch", _parse_bool)
        read("RTB_LOG_LEVEL", "log_level", str.upper)
        read("RTB_LOG_FORMAT", "log_format", str.lower)
        read("RTB_ACCESS_LOG", "access_log", _parse_bool)
        read("RTB_KEEP_ALIVE_TIMEOUT", "keep_alive_s", float)
        read("RTB_MAX_CONCURRENCY", "max_concurrency", int)
        read("RTB_BACKLOG", "backlog", int)
        read("RTB_GRACEFUL_TIMEOUT", "graceful_timeout_s", float)
        read("SAGEMAKER_MULTI_MODEL", "multi_model", _parse_bool)
        read("RTB_MULTI_MODEL_MEMORY_MB", "models_memory_bytes", _parse_budget)
        read("RTB_MULTI_MODEL_REGISTRY", "models_registry_dir", Path)
        read("RTB_MULTI_MODEL_PAGE_SIZE", "models_page_size", int)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]


def _parse_keys(raw: str) -> tuple[str, ...]:
    return tuple(key.strip().lower() for key in raw.split(",") if key.strip())


def _parse_megabytes(raw: str) -> int:
    megabytes = float(raw)
    if not 0 < megabytes <= 1024:
        raise SettingsError("must be between 0 and 1024 MB")
    return int(megabytes * MIB)


def _parse_budget(raw: str) -> int:
    megabytes = float(raw)
    if not 0 <= megabytes <= 1024 * 1024:
        raise SettingsError("must be between 0 and 1048576 MB (0: half the memory)")
    return int(megabytes * MIB)


def _half_the_memory() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError):  # not POSIX: a conservative 1 GiB
        return 1024 * MIB


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError("expected true or false")
