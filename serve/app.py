"""The ASGI application: FastAPI for /ping, the schema and errors; a raw fast path for /invocations.

`create_app(settings, predictor)` returns a FastAPI app whose OpenAPI schema declares
`POST /invocations`, but whose `__call__` answers `POST /invocations` (and `GET /ping`) itself,
before FastAPI's routing, middleware and request objects: on a single-row request those cost
more than the prediction. Everything else (/docs, /openapi.json, /execution-parameters, 404s)
goes through FastAPI.

Per request, in this order: model ready (503), Content-Type (415), Accept (406), Content-Length
(413), the body read with a byte cap and a deadline (413, 408), decode (400, 413), predict,
encode. Under overload (the HTTP protocol marks the scope with `OVERLOADED_SCOPE_KEY`) it is
answered 503 `overloaded` at once, with `Retry-After`; `/ping` never is. The response carries
`Server-Timing: app;dur=<ms>` (server time, µs resolution) and echoes
`X-Amzn-SageMaker-Custom-Attributes`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.codecs import (
    CSV,
    DECODERS,
    ENCODERS,
    JSON,
    Decoder,
    negotiate_accept,
    parse_csv_row,
    parse_media_type,
)
from serve.errors import (
    INTERNAL_ERROR_BODY,
    OVERLOADED_SCOPE_KEY,
    EmptyBodyError,
    InferenceError,
    ModelNotReadyError,
    NotAcceptableError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
    error_body,
)
from serve.outputs import OutputSelection
from serve.predictor import Predictor, load_model
from serve.settings import Settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
CSV_DECODER = DECODERS[CSV]
_JSON_BYTES = JSON.encode()
_MAX_CUSTOM_ATTRIBUTES = 1024
_CACHE_LIMIT = 64  # distinct Content-Type / Accept header values remembered per worker


class ClientDisconnectedError(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


class InvocationHandler:
    """Answers `POST /invocations` as a raw ASGI callable; holds the worker's predictor."""

    def __init__(self, settings: Settings, predictor: Predictor | None, selection: OutputSelection):
        self.settings = settings
        self.predictor = predictor
        self.selection = selection
        self._decoders: dict[bytes, Decoder] = {}
        self._accepts: dict[bytes, tuple[str, bytes]] = {}

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        content_type = accept = length = attributes = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"accept":
                accept = value
            elif name == b"content-length":
                length = value
            elif name == CUSTOM_ATTRIBUTES:
                attributes = value
        try:
            status, media_type, body = await self._respond(content_type, accept, length, receive)
        except ClientDisconnectedError:
            return
        headers = [
            (b"content-type", media_type),
            (b"content-length", b"%d" % len(body)),
            (b"server-timing", b"app;dur=%.3f" % ((perf_counter() - started) * 1e3)),
        ]
        if status in (408, 413):  # the rest of the body may still be on the wire
            headers.append((b"connection", b"close"))
        if attributes is not None and _is_visible_ascii(attributes):
            headers.append((CUSTOM_ATTRIBUTES, attributes))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
        """(status, content type, body) for one request; never raises for bad input."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            found.setdefault(name, value)
        return await self._respond(
            found.get(b"content-type"), found.get(b"accept"), found.get(b"content-length"), receive
        )

    async def _respond(
        self,
        content_type: bytes | None,
        accept: bytes | None,
        length: bytes | None,
        receive: Receive,
    ) -> tuple[int, bytes, bytes]:
        try:
            predictor = self.predictor
            if predictor is None:
                raise ModelNotReadyError(
                    "The model is not loaded yet; retry after /ping answers 200."
                )
            # Cache hits inline; the methods parse, validate and fill the caches.
            decoder = self._decoders.get(content_type or b"") or self._decoder(content_type)
            chosen = self._accepts.get(accept or b"") or self._accept(accept)
            media_type, media_type_bytes = chosen
            settings = self.settings
            if length is not None and _declared_too_large(length, settings.max_body_bytes):
                raise PayloadTooLargeError(
                    f"The body is larger than the {settings.max_body_bytes}-byte limit."
                )
            # The first receive() is stepped by hand: when the body is already here (nearly
            # always) it completes at once and no deadline is armed; see read_body.
            step = receive().__await__()
            message: Message | None = None
            try:
                waiting = step.send(None)
            except StopIteration as received:
                message = received.value
            if message is None:
                body = await _read_rest(receive, settings, pending=(step, waiting))
            elif message.get("more_body", False) or message["type"] != "http.request":
                body = await _read_rest(receive, settings, first=message)
            else:
                body = message["body"]
                if len(body) > settings.max_body_bytes:
                    raise PayloadTooLargeError(
                        f"The body is larger than the {settings.max_body_bytes}-byte limit."
                    )
            if not body:
                raise EmptyBodyError("The body is empty; send one or more rows.")
            num_features = predictor.num_features
            values = (
                parse_csv_row(body, num_features=num_features) if decoder is CSV_DECODER else None
            )
            if values is not None:
                probabilities = predictor.predict_row(values)
            else:
                features = decoder(body, num_features=num_features, max_rows=settings.max_rows)
                probabilities = predictor.predict(features)
            return 200, media_type_bytes, ENCODERS[media_type](probabilities, self.selection)
        except InferenceError as exc:
            logger.debug("invocation refused: %s %s", exc.code, exc.message)
            return exc.status_code, _JSON_BYTES, exc.body()
        except ClientDisconnectedError:
            raise
        except Exception:
            logger.exception("invocation failed: bug in the server")
            return 500, _JSON_BYTES, INTERNAL_ERROR_BODY

    def _decoder(self, header: bytes | None) -> Decoder:
        if header is None:
            raise UnsupportedMediaTypeError(
                f"Content-Type is missing; send one of {', '.join(DECODERS)}."
            )
        decoder = self._decoders.get(header)
        if decoder is None:
            found = DECODERS.get(parse_media_type(header.decode("latin-1")))
            if found is None:
                raise UnsupportedMediaTypeError(
                    f"Content-Type {header[:100].decode('latin-1')!r} is not supported; "
                    f"send one of {', '.join(DECODERS)}."
                )
            decoder = _remember(self._decoders, header, found)
        return decoder

    def _accept(self, header: bytes | None) -> tuple[str, bytes]:
        key = b"" if header is None else header
        chosen = self._accepts.get(key)
        if chosen is None:
            media_type = negotiate_accept(
                key.decode("latin-1"), default=self.settings.default_accept
            )
            chosen = _remember(self._accepts, key, (media_type, media_type.encode()))
        return chosen


def _remember(cache: dict[bytes, Any], key: bytes, value: Any) -> Any:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _declared_too_large(length: bytes, limit: int) -> bool:
    """Content-Length over the limit; a malformed one is left to the byte cap while reading."""
    return length.isdigit() and (len(length) > 15 or int(length) > limit)


def _is_visible_ascii(value: bytes) -> bool:
    return 0 < len(value) <= _MAX_CUSTOM_ATTRIBUTES and all(32 <= byte < 127 for byte in value)


Pending = tuple[Generator[Any, None, Message], Any]
"""A receive() stepped once that did not complete: its iterator and what it yielded."""


async def read_body(receive: Receive, *, limit: int, timeout_s: float) -> bytes:
    """The request body, refusing more than `limit` bytes without buffering past it.

    The whole body must arrive within `timeout_s` of the first receive() that has to wait for
    it, so a client that sends headers and then nothing (or a trickle) cannot hold the worker
    forever. A body that is already here when asked for (the common case: one message that
    arrived with the headers) costs one receive() and arms no timer: the first receive() is
    stepped by hand and the deadline is armed only if it suspends.
    """
    step = receive().__await__()
    message: Message | None = None
    try:
        waiting = step.send(None)
    except StopIteration as received:
        message = received.value
    if message is None:
        pending = (step, waiting)
        return await _read_remaining(receive, limit=limit, timeout_s=timeout_s, pending=pending)
    if message["type"] != "http.request" or message.get("more_body", False):
        return await _read_remaining(receive, limit=limit, timeout_s=timeout_s, first=message)
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise PayloadTooLargeError(f"The body is larger than the {limit}-byte limit.")
    return body


async def _read_rest(
    receive: Receive,
    settings: Settings,
    *,
    first: Message | None = None,
    pending: Pending | None = None,
) -> bytes:
    return await _read_remaining(
        receive,
        limit=settings.max_body_bytes,
        timeout_s=settings.request_timeout_s,
        first=first,
        pending=pending,
    )


async def _read_remaining(
    receive: Receive,
    *,
    limit: int,
    timeout_s: float,
    first: Message | None = None,
    pending: Pending | None = None,
) -> bytes:
    """The body after its first message (`first`), or after a first receive() that is still
    waiting (`pending`), all within `timeout_s`: the slow path of `read_body`."""
    try:
        async with asyncio.timeout(timeout_s):
            if first is None:
                assert pending is not None
                first = await _finish(*pending)
            return await _read_chunks(receive, limit=limit, first=first)
    except TimeoutError:
        raise RequestTimeoutError(
            f"The body did not arrive within {timeout_s:g} s; send it faster or smaller."
        ) from None


async def _finish(step: Generator[Any, None, Message], waiting: Any) -> Message:
    """Drive a stepped receive() to its message from this task, as the task itself would:
    wait until what it yielded is done (a future, or None for a bare yield), then resume it,
    so its result or exception is delivered inside it. If this task is cancelled (by the
    deadline), the receive() is closed, running its cleanup."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting,))
            waiting = step.send(None)
    except StopIteration as received:
        message: Message = received.value
        return message
    except BaseException:
        step.close()
        raise


async def _read_chunks(receive: Receive, *, limit: int, first: Message) -> bytes:
    message = first
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The body is larger than the {limit}-byte limit.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


class ServingApp(FastAPI):
    """FastAPI, with `POST /invocations` and `GET /ping` answered before its routing."""

    invocation_handler: InvocationHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/invocations" and scope["method"] == "POST":
                if OVERLOADED_SCOPE_KEY in scope:
                    await _send_overloaded(send)
                    return
                await self.invocation_handler(scope, receive, send)
                return
            if path == "/ping" and scope["method"] == "GET":
                await _send_ping(self.invocation_handler.ready, send)
                return
        await super().__call__(scope, receive, send)


_NOT_READY_BODY = error_body("model_not_ready", "The model is not loaded yet.")


_OVERLOADED_BODY = OverloadedError(
    "The worker is over its concurrency bound (RTB_MAX_CONCURRENCY); retry shortly."
).body()
_OVERLOADED_HEADERS = [
    (b"content-type", _JSON_BYTES),
    (b"content-length", b"%d" % len(_OVERLOADED_BODY)),
    (b"retry-after", b"1"),
    (b"connection", b"close"),  # shed the connection too, as uvicorn's own bound does
]


async def _send_overloaded(send: Send) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": _OVERLOADED_HEADERS})
    await send({"type": "http.response.body", "body": _OVERLOADED_BODY})


async def _send_ping(ready: bool, send: Send) -> None:
    if ready:
        status, headers, body = 200, [(b"content-length", b"0")], b""
    else:
        status, body = 503, _NOT_READY_BODY
        headers = [(b"content-type", _JSON_BYTES), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The server. Without `predictor`, the lifespan loads and verifies `settings.model_dir`
    (refusing to start on any failure); tests inject a predictor instead."""
    settings = Settings.from_env() if settings is None else settings
    handler = InvocationHandler(
        settings, predictor, OutputSelection(keys=settings.inference_output)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if handler.predictor is None:
            handler.predictor, handler.selection = _load(settings.model_dir, settings)
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
    app.state.settings = settings
    _add_routes(app, handler, settings)
    _add_openapi(app, handler, settings)
    _add_error_handlers(app)
    return app


def _load(model_dir: Path, settings: Settings) -> tuple[Predictor, OutputSelection]:
    try:
        loaded = load_model(model_dir)
    except Exception as exc:
        logger.error("refusing to serve the model in %s: %s", model_dir, exc)
        raise
    threshold = loaded.manifest.model.bid_threshold
    selection = OutputSelection(
        keys=settings.inference_output, threshold=0.5 if threshold is None else threshold
    )
    return loaded.predictor, selection


_FLOAT32_MAX = 3.4028234663852886e38

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_ERROR_RESPONSE = {"content": {JSON: {"schema": _ERROR_SCHEMA}}}
_ROW: dict[str, Any] = {"type": "array", "items": {"type": ["number", "null"]}}
_INVOCATIONS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": "2,0,0.0,7.0,3.0,20.0,2"},
            JSON: {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["instances"],
                            "properties": {"instances": {"type": "array", "items": _ROW}},
                        },
                        {"type": "array", "items": _ROW},
                        _ROW,
                    ]
                }
            },
            "application/jsonlines": {"schema": {"type": "string"}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "200": {
            "description": "One prediction per row.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "predictions": {"type": "array", "items": {"type": "object"}}
                        },
                    }
                },
                "application/jsonlines": {"schema": {"type": "string"}},
            },
        },
        **{
            code: {"description": description, **_ERROR_RESPONSE}
            for code, description in {
                "400": "Malformed body, wrong feature count or non-finite value.",
                "406": "No acceptable response type.",
                "408": "The body arrived too slowly.",
                "413": "Body or row count over the limit.",
                "415": "Unsupported Content-Type.",
                "500": "A bug in the server (the message leaks nothing).",
                "503": "The model is not loaded yet, or the worker is overloaded.",
            }.items()
        },
    },
}


def _request_schemas(num_features: int, max_rows: int) -> dict[str, dict[str, Any]]:
    """Request body schemas that describe exactly what the loaded model accepts."""
    # What float() reads, bounded so that every match fits in float32 (the server also takes
    # larger finite numbers, and refuses inf and overflows).
    number = r"[ ]*[+-]?([0-9]{1,18}(\.[0-9]*)?|\.[0-9]{1,18})([eE][+-]?1?[0-9])?[ ]*|[nN][aA][nN]"
    json_number = r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?([eE][+-]?1?[0-9])?"
    csv_row = rf"({number})?(,({number})?){{{num_features - 1}}}"
    json_row = rf"\[({json_number}|null)(,({json_number}|null)){{{num_features - 1}}}\]"
    row: dict[str, Any] = {
        "type": "array",
        "items": {"type": ["number", "null"], "minimum": -_FLOAT32_MAX, "maximum": _FLOAT32_MAX},
        "minItems": num_features,
        "maxItems": num_features,
    }
    rows = {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}
    return {
        "text/csv": {"type": "string", "pattern": rf"^{csv_row}(\n{csv_row})*\n?$"},
        JSON: {
            "oneOf": [
                {"type": "object", "required": ["instances"], "properties": {"instances": rows}},
                rows,
                row,
            ]
        },
        "application/jsonlines": {"type": "string", "pattern": rf"^{json_row}(\n{json_row})*\n?$"},
    }


def _add_openapi(app: FastAPI, handler: InvocationHandler, settings: Settings) -> None:
    """The schema, with the request bodies narrowed to the model's feature count once known."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        predictor = handler.predictor
        if predictor is None:
            app.openapi_schema = None  # rebuild once the model is loaded
            return schema
        content = schema["paths"]["/invocations"]["post"]["requestBody"]["content"]
        for media_type, body_schema in _request_schemas(
            predictor.num_features, settings.max_rows
        ).items():
            content[media_type]["schema"] = body_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_routes(app: FastAPI, handler: InvocationHandler, settings: Settings) -> None:
    @app.get(
        "/ping",
        summary="Health: 200 once the model is loaded and verified, 503 before.",
        response_class=Response,
        responses={
            200: {"description": "Ready."},
            503: {"description": "Not ready.", **_ERROR_RESPONSE},
        },
    )
    async def ping() -> Response:  # served by ServingApp.__call__; kept for the schema
        if handler.ready:
            return Response(status_code=200)
        return Response(_NOT_READY_BODY, status_code=503, media_type=JSON)

    @app.post(
        "/invocations",
        summary="Predict the probability for each row of the body.",
        openapi_extra=_INVOCATIONS_OPENAPI,
        response_class=Response,
    )
    async def invocations(request: Request) -> Response:  # served by ServingApp.__call__
        status, media_type, body = await handler.respond(request.scope, request.receive)
        return Response(body, status_code=status, media_type=media_type.decode())

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
    async def inference_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InferenceError)
        return Response(exc.body(), status_code=exc.status_code, media_type=JSON)

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

    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.error("request failed: bug in the server", exc_info=exc)
        return Response(INTERNAL_ERROR_BODY, status_code=500, media_type=JSON)

    app.add_exception_handler(InferenceError, inference_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def _snake_case(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) or "error"


__all__ = ["NotAcceptableError", "ServingApp", "create_app", "read_body"]
