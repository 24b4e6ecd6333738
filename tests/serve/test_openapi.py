"""The OpenAPI schema declares the hot paths, describes the loaded model's requests, and
schemathesis finds no 5xx."""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from typing import Any

import httpx
import pytest
import schemathesis
from fake_predictor import ConstantPredictor as FakePredictor
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from serve.app import create_app
from serve.settings import Settings

# schemathesis drives ASGI apps through starlette's TestClient, which warns about httpx.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@schemathesis.serializer(
    "application/jsonlines", "application/x-npy", "application/x-recordio-protobuf"
)
def _raw_body(ctx: Any, value: Any) -> bytes:
    """Strings and bytes as they are; anything else (negative cases) as JSON text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


APP = create_app(Settings(workers=1), FakePredictor())
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)


async def fetch_schema() -> dict[str, Any]:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def test_request_schemas_follow_the_model() -> None:
    document = asyncio.run(fetch_schema())
    content = document["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(content) == {
        "text/csv",
        "application/json",
        "application/jsonlines",
        "application/x-npy",
        "text/libsvm",
        "text/x-libsvm",
        "application/x-recordio-protobuf",
    }
    row = content["application/json"]["schema"]["oneOf"][2]
    assert row["minItems"] == row["maxItems"] == 7
    pattern = re.compile(content["text/csv"]["schema"]["pattern"])
    assert pattern.search("2,0,0.0,7.0,3.0,20.0,2")
    assert pattern.search("2,,0.0,7.0,3.0,20.0,2\n1,2,3,4,5,6,7\n")
    assert not pattern.search("2,0,0.0,7.0,3.0,20.0")
    assert "content" not in document["paths"]["/ping"]["get"]["responses"]["200"]


def test_the_hot_paths_are_declared_beside_fastapis_routes() -> None:
    paths = asyncio.run(fetch_schema())["paths"]
    assert list(paths) == ["/ping", "/invocations", "/execution-parameters"]
    assert set(paths["/ping"]) == {"get"}
    assert set(paths["/invocations"]) == {"post"}
    assert paths["/ping"]["get"]["operationId"] == "ping_ping_get"
    assert paths["/invocations"]["post"]["operationId"] == "invocations_invocations_post"
    assert set(paths["/ping"]["get"]["responses"]) == {"200", "503"}
    responses = paths["/invocations"]["post"]["responses"]
    assert set(responses) == {"200", "204", "400", "406", "408", "413", "415", "500", "503"}


def test_the_schema_is_narrowed_once_the_model_is_loaded() -> None:
    app = create_app(Settings(workers=1), None)
    before = app.openapi()["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert before["text/csv"]["schema"] == {"type": "string"}
    app.invocation_handler.predictor = FakePredictor()  # type: ignore[attr-defined]
    after = app.openapi()["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert "pattern" in after["text/csv"]["schema"]
    assert app.openapi() is app.openapi()  # built once from then on


@SCHEMA.parametrize()
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_schemathesis_finds_no_server_error(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case, response.status_code, response.text)
    # Every check but positive-data acceptance: a schema cannot say which bytes make a valid
    # .npy file, so random "binary" bodies are rightly refused with a 400.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
