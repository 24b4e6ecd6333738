"""The ASGI application: FastAPI as the shell, the hot paths answered before it.

`create_app(settings, predictor)` returns a `ServingApp`: its `__call__` hands `POST /invocations`
to `serve.invocations.InvocationHandler` and `GET /ping` to `serve.ping.PingHandler`, raw ASGI
callables, before FastAPI's routing, middleware and request objects. FastAPI serves the rest: the
schema (`serve.openapi`), /docs, /openapi.json, /execution-parameters, 404s, and 405s for the hot
paths' other methods. Every error body comes from `serve.errors`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from serve.codecs import JSON
from serve.errors import InferenceError, error_body, error_response
from serve.invocations import InvocationHandler, configure_handler
from serve.models import Build, ModelRegistry
from serve.multi_model import ModelInvoker, ReadyPing, add_multi_model_routes, is_invoke_path
from serve.openapi import add_openapi
from serve.outputs import OutputSelection
from serve.ping import PingHandler
from serve.predictor import Predictor, load_model
from serve.settings import Settings

logger = logging.getLogger(__name__)


class ServingApp(FastAPI):
    """FastAPI, with `POST /invocations` (in multi-model mode `POST /models/{name}/invoke`)
    and `GET /ping` answered before its routing."""

    invocation_handler: InvocationHandler
    ping_handler: PingHandler | ReadyPing
    model_invoker: ModelInvoker | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            invoker = self.model_invoker
            if invoker is None:
                if path == "/invocations" and scope["method"] == "POST":
                    await self.invocation_handler(scope, receive, send)
                    return
            elif scope["method"] == "POST" and is_invoke_path(path):
                await invoker(scope, receive, send)
                return
            if path == "/ping" and scope["method"] == "GET":
                await self.ping_handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    predictor: Predictor | None = None,
    *,
    objective: str = "binary:logistic",
    num_class: int | None = None,
    build: Build | None = None,
) -> FastAPI:
    """The server. Without `predictor`, the lifespan loads and verifies `settings.model_dir`
    (refusing to start on any failure, an output selection the model cannot answer included);
    tests inject a predictor instead, trained with `objective`. With `settings.multi_model`,
    the multi-model server (`create_multi_model_app`), importing raw models through `build`."""
    settings = Settings.from_env() if settings is None else settings
    if settings.multi_model:
        return create_multi_model_app(settings, ModelRegistry.private(settings, build=build))
    selection = OutputSelection()
    if predictor is not None:
        selection = OutputSelection.for_model(
            keys=settings.inference_output, objective=objective, num_class=num_class
        )
    handler = InvocationHandler(settings, predictor, selection)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if handler.predictor is None:
            _load(handler, settings.model_dir, settings)
        # Everything alive now lives as long as the worker: keep it out of the collector's
        # generations, so a full collection during serving walks only per-request garbage.
        gc.collect()
        gc.freeze()
        yield

    app = ServingApp(
        title="RTB XGBoost inference",
        version="1",
        summary="SageMaker-compatible /ping and /invocations for a compiled XGBoost model.",
        lifespan=lifespan,
    )
    app.invocation_handler = handler
    app.ping_handler = PingHandler(handler)
    app.state.settings = settings
    _add_hot_path_routes(app)
    _add_execution_parameters(app, settings)
    add_openapi(app, handler)
    _add_error_handlers(app)
    return app


def create_multi_model_app(settings: Settings, registry: ModelRegistry) -> FastAPI:
    """The multi-model server: no model at start-up, SageMaker's `/models` API on `registry`,
    each model served by its own `InvocationHandler` (`serve.multi_model`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        sweeper = asyncio.create_task(registry.drop_stale_every())
        yield
        sweeper.cancel()
        registry.close()

    app = ServingApp(
        title="RTB XGBoost inference (multi-model)",
        version="1",
        summary="SageMaker multi-model endpoint: /models to load, list, describe, unload and "
        "invoke compiled XGBoost models; /ping.",
        lifespan=lifespan,
    )
    app.invocation_handler = InvocationHandler(settings, None, OutputSelection())
    app.ping_handler = ReadyPing()
    app.model_invoker = ModelInvoker(registry)
    app.state.settings = settings
    app.state.registry = registry
    ping = Route("/ping", app.ping_handler, methods=["GET"], include_in_schema=False)
    ping.methods = {"GET"}
    app.router.routes.append(ping)
    add_multi_model_routes(app, app.model_invoker)
    _add_execution_parameters(app, settings)
    _add_error_handlers(app)
    return app


def _load(handler: InvocationHandler, model_dir: Path, settings: Settings) -> None:
    """Give `handler` the verified predictor and what it answers with; logs and raises on any
    failure, so the worker does not start."""
    try:
        configure_handler(handler, load_model(model_dir), settings)
    except Exception as exc:
        logger.error("refusing to serve the model in %s: %s", model_dir, exc)
        raise


def _add_hot_path_routes(app: ServingApp) -> None:
    """Routes to the same two handlers, so FastAPI answers their paths' other methods with 405
    and `Allow`; the methods they serve never get this far (`ServingApp.__call__`)."""
    app.router.routes.append(
        Route("/invocations", app.invocation_handler, methods=["POST"], include_in_schema=False)
    )
    ping = Route("/ping", app.ping_handler, methods=["GET"], include_in_schema=False)
    ping.methods = {"GET"}  # Starlette adds HEAD to a GET route; /ping answers GET only
    app.router.routes.append(ping)


def _add_execution_parameters(app: FastAPI, settings: Settings) -> None:
    @app.get(
        "/execution-parameters",
        summary="SageMaker Batch Transform's optional parameters query.",
    )
    async def execution_parameters() -> Response:
        return Response(
            orjson.dumps(
                {
                    "MaxConcurrentTransforms": settings.workers,
                    "BatchStrategy": "MULTI_RECORD",
                    "MaxPayloadInMB": max(1, settings.max_body_bytes // (1024 * 1024)),
                }
            ),
            media_type=JSON,
        )


def _add_error_handlers(app: FastAPI) -> None:
    async def error(request: Request, exc: Exception) -> Response:
        """An `InferenceError`, or a bug: the same mapping as the hot path's."""
        answer = error_response(exc)
        return Response(answer.body, status_code=answer.status_code, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _snake_case(str(exc.detail)) if exc.status_code < 500 else "internal_error"
        return Response(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            media_type=JSON,
            headers=exc.headers,
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        return Response(
            error_body("bad_request", "The request is not valid."), status_code=400, media_type=JSON
        )

    app.add_exception_handler(InferenceError, error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, error)


def _snake_case(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) or "error"


__all__ = ["ServingApp", "create_app", "create_multi_model_app"]
