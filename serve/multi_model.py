"""Multi-model mode's HTTP API: SageMaker's custom-container contract for multi-model endpoints.

    POST   /models                      {"model_name": ..., "url": ...}: load (409 loaded already,
                                        507 over the memory budget, 400 invalid_model)
    GET    /models[?next_page_token=T]  {"models": [{"modelName", "modelUrl"}], "nextPageToken"}
    GET    /models/{model_name}         {"modelName", "modelUrl"}, 404 when not loaded
    DELETE /models/{model_name}         unload, 404 when not loaded
    POST   /models/{model_name}/invoke  the model's `InvocationHandler`: /invocations' contract
    GET    /ping                        200 once the server is up

`POST /models/{model_name}/invoke` is a raw ASGI callable answered before FastAPI's routing, as
`/invocations` is in single-model mode. `X-Amzn-SageMaker-Target-Model` (the TargetModel the
client gave InvokeEndpoint) is logged with loads and unloads at INFO, with invokes at DEBUG.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from serve.body import BodyReader
from serve.codecs import DECODERS, JSON
from serve.errors import MalformedPayloadError, error_response, send_error
from serve.models import ModelEntry, ModelRegistry
from serve.openapi import INVOCATIONS_OPERATION, PING_OPERATION

logger = logging.getLogger(__name__)

TARGET_MODEL = b"x-amzn-sagemaker-target-model"
_PREFIX = "/models/"
_SUFFIX = "/invoke"
_READY_HEADERS = [(b"content-length", b"0")]


def is_invoke_path(path: str) -> bool:
    return path.startswith(_PREFIX) and path.endswith(_SUFFIX) and len(path) > 15


class ModelInvoker:
    """Answers `POST /models/{model_name}/invoke` with that model's `InvocationHandler`."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"][len(_PREFIX) : -len(_SUFFIX)]
        handler = self.registry.resident(name)
        if handler is None:
            try:
                handler = await self.registry.handler(name)
            except Exception as exc:  # not loaded (404), or a bug (500): one error mapping
                await send_error(send, error_response(exc))
                return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("invoke %r (target model %r)", name, _target_model(scope))
        await handler(scope, receive, send)


class ReadyPing:
    """`GET /ping` in multi-model mode: 200 once the server is up (models come and go)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _READY_HEADERS})
        await send({"type": "http.response.body", "body": b""})


def add_multi_model_routes(app: FastAPI, invoker: ModelInvoker) -> None:
    """The management routes (FastAPI's), and the invoke path's route for 405s."""
    registry = invoker.registry
    reader = BodyReader(
        limit=registry.settings.max_body_bytes, timeout_s=registry.settings.request_timeout_s
    )

    @app.post("/models", summary="Load a model (SageMaker multi-model contract).")
    async def load_model(request: Request) -> Response:
        raw = reader.read(request.receive)  # the one body reader: capped (413), timed (408)
        if not isinstance(raw, bytes):
            raw = await raw
        name, url = _load_request(raw)
        target = request.headers.get("x-amzn-sagemaker-target-model")
        logger.info("loading model %r from %s (target model %r)", name, url, target)
        entry = await registry.load(name, url)
        return _json({"modelName": entry.name, "modelUrl": entry.url}, status_code=200)

    @app.get("/models", summary="List the loaded models, a page at a time.")
    async def list_models(next_page_token: str | None = None) -> Response:
        page = registry.page(next_page_token)
        body: dict[str, Any] = {"models": [_describe(entry) for entry in page.entries]}
        if page.next_page_token is not None:
            body["nextPageToken"] = page.next_page_token
        return _json(body)

    @app.get("/models/{model_name:path}", summary="Describe a loaded model.")
    async def get_model(model_name: str) -> Response:
        return _json(_describe(registry.get(model_name)))

    @app.delete("/models/{model_name:path}", summary="Unload a model.")
    async def unload_model(model_name: str, request: Request) -> Response:
        target = request.headers.get("x-amzn-sagemaker-target-model")
        logger.info("unloading model %r (target model %r)", model_name, target)
        await registry.unload(model_name)
        return _json({"modelName": model_name})

    app.router.routes.append(
        Route(_PREFIX + "{model_name:path}" + _SUFFIX, invoker, methods=["POST"])
    )
    _add_openapi(app)


def _load_request(raw: bytes) -> tuple[str, str]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise MalformedPayloadError(
            'The body must be a JSON object: {"model_name": "...", "url": "/opt/ml/models/..."}.'
        )
    name, url = document.get("model_name"), document.get("url")
    if not isinstance(name, str) or not isinstance(url, str) or not url:
        raise MalformedPayloadError(
            'The body needs "model_name" and "url" as strings, e.g. '
            '{"model_name": "m1", "url": "/opt/ml/models/m1/model"}.'
        )
    return name, url


def _describe(entry: ModelEntry) -> dict[str, Any]:
    return {"modelName": entry.name, "modelUrl": entry.url}


def _json(body: dict[str, Any], *, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=JSON)


def _target_model(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == TARGET_MODEL:
            return bytes(value).decode("latin-1")
    return None


def _invoke_operation() -> dict[str, Any]:
    operation = copy.deepcopy(INVOCATIONS_OPERATION)
    operation["summary"] = "Predict with one loaded model: the contract of /invocations."
    operation["operationId"] = "invoke_model_models__model_name__invoke_post"
    operation["parameters"] = [
        {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "X-Amzn-SageMaker-Target-Model",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
        },
    ]
    accepted = operation["requestBody"]["content"]
    for media_type in list(accepted):
        if media_type not in DECODERS:
            del accepted[media_type]
    error = {key: value for key, value in operation["responses"]["400"].items()}
    error["description"] = "No model of that name is loaded."
    operation["responses"]["404"] = error
    return operation


def _add_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        ping = copy.deepcopy(PING_OPERATION)
        ping["summary"] = "Health: 200 once the server is up."
        del ping["responses"]["503"]
        schema["paths"] = {
            "/ping": {"get": ping},
            **schema.get("paths", {}),
            _PREFIX + "{model_name}" + _SUFFIX: {"post": _invoke_operation()},
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["ModelInvoker", "ReadyPing", "add_multi_model_routes", "is_invoke_path"]
