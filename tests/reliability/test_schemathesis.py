"""Schemathesis against the app's own OpenAPI schema: in-process (ASGI) and over real HTTP.

Every operation the schema declares (`/ping`, `/invocations`, `/execution-parameters`) gets
generated positive and negative requests; the checks are that no response is a 5xx, and that
status codes, content types and bodies are the ones the schema documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from benchmark.server import ServerProcess
from serve.app import create_app
from serve.predictor import load_model
from serve.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def asgi_schema(artifact_dir: Path) -> Any:
    app = create_app(Settings(model_dir=artifact_dir), load_model(artifact_dir).predictor)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def http_server(artifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ServerProcess(
        model_dir=artifact_dir,
        log_path=tmp_path_factory.mktemp("schemathesis") / "server.log",
    )
    try:
        server.start()
        server.wait_healthy(timeout=60)
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http_schema(http_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{http_server}/openapi.json")


# Schemathesis 4.32.5's pytest plugin (`from_fixture(...).parametrize()`) sets `node._nodeid`,
# which pytest 9 no longer has; its Hypothesis strategies work, so the tests draw from them.
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (method, path, mode, checks). GET operations take no input, so only positive cases exist.
CASES = [
    pytest.param("GET", "/ping", POSITIVE, CHECKS, id="ping"),
    pytest.param("GET", "/execution-parameters", POSITIVE, CHECKS, id="execution-parameters"),
    pytest.param("POST", "/invocations", POSITIVE, CHECKS, id="invocations-positive"),
    pytest.param("POST", "/invocations", NEGATIVE, CHECKS, id="invocations-negative"),
]


def fuzz(
    schema: Any, method: str, path: str, mode: GenerationMode, checks: list[Any], **call: Any
) -> None:
    operation = schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(checks=checks, **call)

    run()


@pytest.mark.parametrize(("method", "path", "mode", "checks"), CASES)
def test_schema_in_process(
    asgi_schema: Any, method: str, path: str, mode: GenerationMode, checks: list[Any]
) -> None:
    fuzz(asgi_schema, method, path, mode, checks)


@pytest.mark.parametrize(("method", "path", "mode", "checks"), CASES)
def test_schema_over_http(
    http_schema: Any,
    http_server: str,
    method: str,
    path: str,
    mode: GenerationMode,
    checks: list[Any],
) -> None:
    fuzz(http_schema, method, path, mode, checks, base_url=http_server)
