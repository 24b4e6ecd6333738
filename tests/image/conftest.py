"""Fixtures for the tests of the built image: the engine, the image (built once), model dirs.

The engine is Docker when a daemon answers, else podman's Docker-compatible socket
(`.ci/setup.d/10-containers.sh`). With neither, these tests skip, unless
`RTB_REQUIRE_CONTAINER=1` (CI), where they fail. `RTB_BASE_IMAGE` is passed as the BASE_IMAGE
build argument when set; `RTB_IMAGE` tests an image already built instead of building one.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from benchmark.coldstart import (
    EngineUnavailableError,
    build_artifact_in_image,
    build_image,
    connect_engine,
    default_seed_model,
    published_port,
    start_container,
    unpack_model,
    wait_for_ping,
)
from tests import contract

READY_TIMEOUT_S = 120.0
"""Start-up may compile a raw model; the targets (2 s, 10 s) are shown by the benchmark."""


@dataclass
class Server:
    """A running container serving on 127.0.0.1:`port`."""

    container: Any
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        text: str = self.container.logs().decode(errors="replace")
        return text


RunServer = Callable[..., Any]
Check = Callable[[str], object]
"""One of `tests.contract`'s checks, given the server's base URL."""


def served(run_server: RunServer, *checks: Check, **options: Any) -> str:
    """Run the image with `options` (those of `run_server`), pass each check its base URL, in
    order; returns the container's log once they passed."""
    with run_server(**options) as server:
        for check in checks:
            check(server.base_url)
        logs: str = server.logs()
        return logs


def seed_answers(base_url: str) -> None:
    """Every content type and Accept pair answers the seed model's score for its sample row."""
    contract.check_content_types(base_url, expected=contract.SEED_SCORE)


def matches_reference(reference_csv: Path) -> Check:
    """All rows of the seed model's `reference.csv`, within 1e-6."""
    return partial(contract.check_seed_reference, reference_csv=reference_csv)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    try:
        client = connect_engine()
    except EngineUnavailableError as exc:
        if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"RTB_REQUIRE_CONTAINER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(engine: Any) -> str:
    """The image under test, built once per session from the working tree."""
    if prebuilt := os.environ.get("RTB_IMAGE"):
        return prebuilt
    tag = "rtb-inference:test"

    def progress(line: str) -> None:
        if line.startswith(("STEP", "[", "Step")):
            print(line, file=sys.stderr)

    build_image(engine, tag=tag, base_image=os.environ.get("RTB_BASE_IMAGE"), log=progress)
    return tag


@pytest.fixture(scope="session")
def image_without_compiler(engine: Any, image: str) -> str:
    """The `RUNTIME_COMPILER=none` variant; shares every stage but the last with `image`."""
    tag = "rtb-inference:test-no-compiler"
    build_image(
        engine,
        tag=tag,
        base_image=os.environ.get("RTB_BASE_IMAGE"),
        build_args={"RUNTIME_COMPILER": "none"},
    )
    return tag


@pytest.fixture(scope="session")
def seed_tarball() -> Path:
    path = default_seed_model()
    if not path.is_file():
        message = f"the seed model is not at {path} (set RTB_SEED_MODEL)"
        if os.environ.get("RTB_REQUIRE_CONTAINER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def reference_csv(seed_tarball: Path) -> Path:
    return seed_tarball.with_name("reference.csv")


@pytest.fixture(scope="session")
def seed_raw_dir(seed_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/ml/model as SageMaker lays out the seed model: the unpacked `xgboost-model`."""
    return unpack_model(seed_tarball, tmp_path_factory.mktemp("seed-raw"))


@pytest.fixture(scope="session")
def seed_artifact_dir(
    engine: Any, image: str, seed_raw_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Our serving artifact of the seed model, built by `python -m model build` in the image."""
    return build_artifact_in_image(
        engine,
        image,
        source=seed_raw_dir,
        output_dir=tmp_path_factory.mktemp("seed-artifact") / "model",
    )


@pytest.fixture
def run_server(engine: Any, image: str) -> Iterator[RunServer]:
    """`with run_server(model_dir=..., **options) as server:` a ready container, always removed.

    `image=` runs another image than the one under test (e.g. a build variant)."""
    started: list[Any] = []
    default_image = image

    @contextmanager
    def run(
        *,
        image: str = default_image,
        model_dir: Path | None = None,
        command: tuple[str, ...] | None = ("serve",),
        environment: dict[str, str] | None = None,
        **options: Any,
    ) -> Iterator[Server]:
        container = start_container(
            engine,
            image,
            command=command,
            model_dir=model_dir,
            environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", **(environment or {})},
            name=f"rtb-image-test-{uuid.uuid4().hex[:12]}",
            **options,
        )
        started.append(container)
        port = published_port(container)
        wait_for_ping(container, port, timeout_s=READY_TIMEOUT_S)
        yield Server(container=container, port=port)

    yield run
    for container in started:
        try:
            container.remove(force=True)
        except Exception as exc:  # already gone (auto-removed or removed by the test)
            if "No such container" not in str(exc) and "no such container" not in str(exc):
                raise
