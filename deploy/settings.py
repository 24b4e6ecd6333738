"""Deploy settings: command-line flags override the environment, which overrides ``deploy.toml``.

The file is optional; it is ``--config PATH``, else ``$RTB_DEPLOY_CONFIG``, else ``./deploy.toml``
when it exists. Its keys are the field names of ``Settings`` (top level, no table), e.g.::

    region = "eu-west-1"
    endpoint_name = "rtb-bidder"
    role_arn = "arn:aws:iam::123456789012:role/rtb-inference-execution"
    bucket = "rtb-inference-artifacts-123456789012"
    instance_type = "ml.c5.xlarge"
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.errors import DeployError

DEFAULT_CONFIG_FILE = Path("deploy.toml")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the commands share; command-specific options stay on the command line."""

    region: str | None = None
    endpoint_name: str | None = None
    role_arn: str | None = None
    image_uri: str | None = None
    bucket: str | None = None
    prefix: str = "rtb-inference"
    repository: str = "rtb-inference"
    instance_type: str = "ml.c5.large"
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    workers: int | None = None
    poll_interval: float = 15.0
    wait_timeout: float = 3600.0


# Environment variables for each field, first match wins. AWS's own names for the region.
ENVIRONMENT: Mapping[str, tuple[str, ...]] = {
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "endpoint_name": ("RTB_ENDPOINT_NAME",),
    "role_arn": ("RTB_ROLE_ARN",),
    "image_uri": ("RTB_IMAGE_URI",),
    "bucket": ("RTB_S3_BUCKET",),
    "prefix": ("RTB_S3_PREFIX",),
    "repository": ("RTB_ECR_REPOSITORY",),
    "instance_type": ("RTB_INSTANCE_TYPE",),
    "instance_count": ("RTB_INSTANCE_COUNT",),
    "variant_name": ("RTB_VARIANT_NAME",),
    "workers": ("RTB_MODEL_SERVER_WORKERS",),
    "poll_interval": ("RTB_POLL_INTERVAL",),
    "wait_timeout": ("RTB_WAIT_TIMEOUT",),
}

_FIELDS = {field.name: field for field in dataclasses.fields(Settings)}


@dataclass(frozen=True)
class Resolved:
    """The settings and where each value came from (flag, env NAME, file PATH, default)."""

    settings: Settings
    origins: Mapping[str, str]


def _kind(name: str) -> type:
    annotation = str(_FIELDS[name].type)
    if annotation.startswith("int"):
        return int
    if annotation.startswith("float"):
        return float
    return str


def _convert(name: str, value: object, *, origin: str) -> object:
    kind = _kind(name)
    try:
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            number = float(value)
            if number != number or number < 0:
                raise ValueError
            return number
    except ValueError:
        raise DeployError(
            f"{name} from {origin} must be a {'whole' if kind is int else 'non-negative'} number, "
            f"got {value!r}"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise DeployError(f"{name} from {origin} must be a non-empty string, got {value!r}")
    return value.strip()


def _config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise DeployError(f"config file {explicit} does not exist")
        return explicit
    from_env = environ.get("RTB_DEPLOY_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise DeployError(f"config file {path} (from RTB_DEPLOY_CONFIG) does not exist")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeployError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise DeployError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(_FIELDS))}"
        )
    return data


def load_settings(
    *,
    flags: Mapping[str, object | None],
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Resolved:
    """Merge defaults < file < environment < flags (a flag left at None does not count)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    origins: dict[str, str] = {name: "default" for name in _FIELDS}
    path = _config_path(config_file, environ)
    if path is not None:
        for name, raw in _read_file(path).items():
            values[name] = _convert(name, raw, origin=f"file {path}")
            origins[name] = f"file {path}"
    for name, variables in ENVIRONMENT.items():
        for variable in variables:
            raw_env = environ.get(variable)
            if raw_env:
                values[name] = _convert(name, raw_env, origin=f"env {variable}")
                origins[name] = f"env {variable}"
                break
    for name, raw in flags.items():
        if name not in _FIELDS:
            raise KeyError(f"unknown settings field {name!r}")
        if raw is not None:
            values[name] = _convert(name, raw, origin="flag")
            origins[name] = "flag"
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except TypeError as exc:  # pragma: no cover - guarded by _FIELDS checks above
        raise DeployError(str(exc)) from None
    return Resolved(settings=settings, origins=origins)


def require(settings: Settings, *names: str) -> None:
    """Fail with one message naming every missing setting and how to give it."""
    missing = [name for name in names if getattr(settings, name) is None]
    if missing:
        raise DeployError(f"missing setting(s): {missing_hints(missing)}")


def missing_hints(names: Sequence[str]) -> str:
    """How to give each of the settings ``names``."""
    return "; ".join(
        f"{name}: --{name.replace('_', '-')} or ${ENVIRONMENT[name][0]} or `{name} = ...` in "
        "deploy.toml"
        for name in names
    )


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """The endpoint a command acts on, where its artifacts live, and how long to wait for it."""

    region: str
    endpoint_name: str
    variant_name: str = "AllTraffic"
    bucket: str | None = None
    prefix: str = "rtb-inference"
    poll_interval: float = 15.0
    wait_timeout: float = 3600.0


@dataclass(frozen=True, kw_only=True)
class DeploymentSettings(EndpointSettings):
    """What ``create`` and ``update`` deploy; ``update`` keeps the running role and image."""

    role_arn: str | None = None
    image_uri: str | None = None
    instance_type: str = "ml.c5.large"
    instance_count: int = 1
    workers: int | None = None


def _narrowed(kind: type[EndpointSettings], settings: Settings, required: tuple[str, ...]) -> Any:
    require(settings, *required)
    names = {field.name for field in dataclasses.fields(kind)}
    return kind(**{name: getattr(settings, name) for name in names})


def endpoint_settings(settings: Settings) -> EndpointSettings:
    """The settings of a command on an existing endpoint; region and endpoint name must be given."""
    narrowed: EndpointSettings = _narrowed(EndpointSettings, settings, ("region", "endpoint_name"))
    return narrowed


def deployment_settings(settings: Settings, *, required: tuple[str, ...]) -> DeploymentSettings:
    """The settings of ``create`` or ``update``; ``required`` names what must be given too."""
    narrowed: DeploymentSettings = _narrowed(
        DeploymentSettings, settings, ("region", "endpoint_name", *required)
    )
    return narrowed
