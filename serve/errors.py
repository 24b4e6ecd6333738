"""Every failure a client can cause, as one exception hierarchy carrying its HTTP status and code.

Each bad input raises a subclass of `InferenceError`; one handler turns it into
`{"error": code, "message": ...}` with the subclass's status. Anything else is a bug and
becomes a generic 500 that leaks nothing.
"""

from __future__ import annotations

from typing import ClassVar

import orjson


class InferenceError(Exception):
    """A request the server refuses: `status_code` and a stable snake_case `code`."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        return error_body(self.code, self.message)


class UnsupportedMediaTypeError(InferenceError):
    status_code = 415
    code = "unsupported_media_type"


class NotAcceptableError(InferenceError):
    status_code = 406
    code = "not_acceptable"


class EmptyBodyError(InferenceError):
    code = "empty_body"


class PayloadTooLargeError(InferenceError):
    status_code = 413
    code = "payload_too_large"


class TooManyRowsError(InferenceError):
    status_code = 413
    code = "too_many_rows"


class MalformedPayloadError(InferenceError):
    code = "malformed_payload"


class FeatureCountMismatchError(InferenceError):
    code = "feature_count_mismatch"


class InvalidValueError(InferenceError):
    code = "invalid_value"


class RequestTimeoutError(InferenceError):
    status_code = 408
    code = "request_timeout"


class ModelNotReadyError(InferenceError):
    status_code = 503
    code = "model_not_ready"


class OverloadedError(InferenceError):
    status_code = 503
    code = "overloaded"


OVERLOADED_SCOPE_KEY = "rtb.overloaded"
"""Set (to True) in a request's ASGI scope by the HTTP protocol when the worker is over its
concurrency bound: `/invocations` then answers 503 `overloaded` at once (`/ping` ignores it)."""


INTERNAL_ERROR_BODY = (
    b'{"error":"internal_error","message":"The server failed to handle the request."}'
)


def error_body(code: str, message: str) -> bytes:
    """The JSON body of every error response."""
    return orjson.dumps({"error": code, "message": message})
