"""The app as a whole, in process: the hot paths dispatched before FastAPI, FastAPI's routes,
errors and schema, and the lifespan."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_messages import client_for
from fake_predictor import FakePredictor

from serve.app import create_app
from serve.errors import INTERNAL_ERROR_BODY, OVERLOADED_SCOPE_KEY, TooManyRowsError
from serve.outputs import OutputSelectionError
from serve.settings import Settings

CSV = {"content-type": "text/csv"}


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_hot_paths_are_answered_by_their_handlers_before_fastapi() -> None:
    app = create_app(Settings(workers=1), FakePredictor())
    reached: list[tuple[str, str]] = []

    async def record(scope: Any, receive: Any, send: Any) -> None:
        reached.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app.invocation_handler = app.ping_handler = record  # type: ignore[attr-defined]

    async def scenario() -> list[int]:
        async with client_for(app) as client:
            return [
                (await client.post("/invocations", content=b"1,2,3", headers=CSV)).status_code,
                (await client.get("/ping")).status_code,
                (await client.get("/docs")).status_code,
            ]

    assert run(scenario()) == [204, 204, 200]
    assert reached == [("POST", "/invocations"), ("GET", "/ping")]


def test_fastapi_routes_answer_errors_through_the_same_mapping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(workers=1), FakePredictor())

    @app.get("/refuse")
    async def refuse() -> None:
        raise TooManyRowsError("Send at most 5 rows.")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("secret internal detail")

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.get("/refuse")
            failed = await client.get("/bug")
        assert refused.status_code == 413
        assert refused.json() == {"error": "too_many_rows", "message": "Send at most 5 rows."}
        assert failed.status_code == 500
        assert failed.content == INTERNAL_ERROR_BODY

    run(scenario())
    assert "secret internal detail" in caplog.text  # the traceback goes to the log


def test_ping_and_invocations_are_503_until_the_model_is_loaded() -> None:
    async def scenario() -> None:
        app = create_app(Settings(workers=1), None)  # no lifespan run: nothing loaded
        async with client_for(app) as client:
            ping = await client.get("/ping")
            invocation = await client.post("/invocations", content=b"1,2,3", headers=CSV)
        assert ping.status_code == 503
        assert invocation.status_code == 503
        assert orjson.loads(invocation.content)["error"] == "model_not_ready"

    run(scenario())


def test_ping_is_200_with_an_empty_body_when_ready() -> None:
    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), FakePredictor())) as client:
            response = await client.get("/ping")
        assert response.status_code == 200
        assert response.content == b""

    run(scenario())


def test_other_routes_answer_json_errors_and_the_schema_declares_invocations() -> None:
    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), FakePredictor())) as client:
            missing = await client.get("/nowhere")
            wrong_method = await client.get("/invocations")
            schema = (await client.get("/openapi.json")).json()
            parameters = (await client.get("/execution-parameters")).json()
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        assert (wrong_method.status_code, wrong_method.json()["error"]) == (
            405,
            "method_not_allowed",
        )
        # what the schema says of each route is tests/serve/test_openapi.py's
        assert set(schema["paths"]) >= {"/ping", "/invocations"}
        assert parameters["BatchStrategy"] == "MULTI_RECORD"
        assert parameters["MaxPayloadInMB"] == 6

    run(scenario())


def test_lifespan_refuses_a_missing_model(tmp_path: Any) -> None:
    app = create_app(Settings(workers=1, model_dir=tmp_path / "absent"))

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - must not start

    with pytest.raises(Exception, match="manifest"):
        run(scenario())


def test_other_methods_of_the_hot_paths_are_405_with_allow() -> None:
    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), FakePredictor())) as client:
            answers = {
                (method, path): await client.request(method, path)
                for method, path in (
                    ("GET", "/invocations"),
                    ("HEAD", "/invocations"),
                    ("PUT", "/invocations"),
                    ("POST", "/ping"),
                    ("HEAD", "/ping"),
                )
            }
        for (method, path), response in answers.items():
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == ("POST" if path == "/invocations" else "GET")
            assert response.headers["content-type"] == "application/json"

    run(scenario())


def test_an_overloaded_invocation_is_shed_and_ping_still_answers() -> None:
    """The HTTP protocol marks the scope when the worker is over its bound: /invocations
    answers 503 `overloaded`, /ping stays 200."""
    predictor = FakePredictor()
    app = create_app(Settings(), predictor=predictor)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def never() -> dict[str, Any]:
        raise AssertionError("an overloaded request must not be read")

    for path, method in (("/invocations", "POST"), ("/ping", "GET")):
        scope = {"type": "http", "method": method, "path": path, "headers": []}
        scope[OVERLOADED_SCOPE_KEY] = True
        run(app(scope, never, send))
    (shed, shed_body, ping, _) = sent
    assert shed["status"] == 503
    assert orjson.loads(shed_body["body"])["error"] == "overloaded"
    assert ping["status"] == 200
    assert not predictor.calls


def with_manifest(artifact: Path, output_dir: Path, **model: Any) -> Path:
    """A copy of `artifact` whose manifest's `model` section has `model`'s values."""
    shutil.copytree(artifact, output_dir)
    manifest_path = output_dir / "manifest.json"
    document = json.loads(manifest_path.read_text())
    document["model"].update(model)
    manifest_path.write_text(json.dumps(document))
    return output_dir


def start(app: Any, body: bytes = b"") -> httpx.Response | None:
    """Run the lifespan (loading the model), then POST `body` as CSV when given."""

    async def scenario() -> httpx.Response | None:
        async with app.router.lifespan_context(app), client_for(app) as client:
            if not body:
                return None
            return await client.post("/invocations", content=body, headers=CSV)

    result: httpx.Response | None = run(scenario())
    return result


def test_lifespan_refuses_selected_keys_the_objective_cannot_answer(
    tiny_artifact: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The built-in answers every request 500; we refuse to start, saying why."""
    model_dir = with_manifest(tiny_artifact, tmp_path / "model", objective="reg:pseudohubererror")
    refused = create_app(
        Settings(workers=1, model_dir=model_dir, inference_output=("predicted_score",))
    )
    with pytest.raises(OutputSelectionError, match="reg:pseudohubererror"):
        start(refused)
    assert "refusing to serve" in caplog.text
    start(create_app(Settings(workers=1, model_dir=model_dir)))  # the score needs no selection


def test_lifespan_takes_the_label_threshold_from_the_manifest(
    tiny_artifact: Path, tmp_path: Path
) -> None:
    row = b"1.5,1.5,0,0"
    settings = Settings(workers=1, inference_output=("predicted_label", "probability"))
    builtin = start(create_app(replace(settings, model_dir=tiny_artifact)), row)  # 0.5
    probability = float(builtin.content.split(b",")[1])  # type: ignore[union-attr]
    assert probability > 0.5 and builtin.content.startswith(b"1,")  # type: ignore[union-attr]
    model_dir = with_manifest(tiny_artifact, tmp_path / "model", bid_threshold=probability)
    at_threshold = start(create_app(replace(settings, model_dir=model_dir)), row)
    assert at_threshold.content.startswith(b"0,")  # type: ignore[union-attr]  # p > t, not >=
