"""Every failure a client can cause, as one exception hierarchy carrying its HTTP status and code,
and the one mapping from an exception to the response that answers it.

Each bad input raises a subclass of `InferenceError`; `error_response` turns it into
`{"error": code, "message": ...}` with the subclass's status, for the `/invocations` hot path and
FastAPI's exception handlers alike. Anything else is a bug and becomes a generic 500 that leaks
nothing (the traceback goes to the log). The raw ASGI paths (`/invocations`, a multi-model
invoke) write it with `send_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import orjson
from starlette.types import Send

logger = logging.getLogger(__name__)


class InferenceError(Exception):
    """A request the server refuses: `status_code` and a stable snake_case `code`."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init_subclass__(cls, *, code: str, status_code: int = 400) -> None:
        super().__init_subclass__()
        cls.code = code
        cls.status_code = status_code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        return error_body(self.code, self.message)


class UnsupportedMediaTypeError(InferenceError, code="unsupported_media_type", status_code=415):
    """Content-Type is missing, or names no decoder."""


class NotAcceptableError(InferenceError, code="not_acceptable", status_code=406):
    """Accept admits none of the encoders."""


class EmptyBodyError(InferenceError, code="empty_body"):
    """No body, or a body without a single row."""


class PayloadTooLargeError(InferenceError, code="payload_too_large", status_code=413):
    """The body is over the byte limit, by its Content-Length or while it is read."""


class TooManyRowsError(InferenceError, code="too_many_rows", status_code=413):
    """More rows than `RTB_MAX_ROWS` in one request."""


class MalformedPayloadError(InferenceError, code="malformed_payload"):
    """A body that is not the declared format: not a number, bad JSON or npy, a wrong shape,
    strings or booleans in JSON."""


class FeatureCountMismatchError(InferenceError, code="feature_count_mismatch"):
    """A row with another number of values than the model's features (exact: no label column
    is tolerated)."""


class InvalidValueError(InferenceError, code="invalid_value"):
    """A value that is infinite, or does not fit in float32."""


class RequestTimeoutError(InferenceError, code="request_timeout", status_code=408):
    """The body did not arrive within the deadline; the connection is closed after the answer."""


class ModelNotReadyError(InferenceError, code="model_not_ready", status_code=503):
    """The model is not loaded and verified yet; `/ping` answers 503 too."""


class OverloadedError(InferenceError, code="overloaded", status_code=503):
    """The worker is over its concurrency bound; answered at once, with `Retry-After`."""


class ModelNotFoundError(InferenceError, code="model_not_found", status_code=404):
    """Multi-model mode: no model of that name is loaded."""


class ModelAlreadyLoadedError(InferenceError, code="model_already_loaded", status_code=409):
    """Multi-model mode: a model of that name is loaded already; unload it first."""


class InsufficientMemoryError(InferenceError, code="insufficient_memory", status_code=507):
    """Multi-model mode: the model does not fit in the memory budget; SageMaker unloads others."""


class InvalidModelError(InferenceError, code="invalid_model"):
    """Multi-model mode: the model at `url` cannot be imported, compiled, loaded or verified."""


class InvalidPageTokenError(InferenceError, code="invalid_page_token"):
    """Multi-model mode: `next_page_token` is not one this server returned."""


OVERLOADED_SCOPE_KEY = "rtb.overloaded"
"""Set (to True) in a request's ASGI scope by the HTTP protocol when the worker is over its
concurrency bound: `/invocations` then answers 503 `overloaded` at once (`/ping` ignores it)."""


JSON_BYTES = b"application/json"
"""The Content-Type of every error response."""

INTERNAL_ERROR_BODY = (
    b'{"error":"internal_error","message":"The server failed to handle the request."}'
)


def error_body(code: str, message: str) -> bytes:
    """The JSON body of every error response."""
    return orjson.dumps({"error": code, "message": message})


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """What answers a failed request: a status and a JSON error body."""

    status_code: int
    body: bytes


def error_response(exc: Exception) -> ErrorResponse:
    """The response to a request that raised `exc`, logged: an `InferenceError` is the client's
    (its status and body, at DEBUG without a traceback); anything else is a bug (500 with a body
    that leaks nothing, the traceback at ERROR)."""
    if isinstance(exc, InferenceError):
        logger.debug("request refused: %s %s", exc.code, exc.message)
        return ErrorResponse(exc.status_code, exc.body())
    logger.error("request failed: bug in the server", exc_info=exc)
    return ErrorResponse(500, INTERNAL_ERROR_BODY)


async def send_error(
    send: Send, error: ErrorResponse, *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer a raw ASGI request with `error`: its status and JSON body, with Content-Type and
    Content-Length, then `headers`."""
    start = [(b"content-type", JSON_BYTES), (b"content-length", b"%d" % len(error.body)), *headers]
    await send({"type": "http.response.start", "status": error.status_code, "headers": start})
    await send({"type": "http.response.body", "body": error.body})
