"""`GET /ping` as a raw ASGI callable: 200 with an empty body once the model is loaded and
verified, 503 `model_not_ready` before. Never shed under overload, so SageMaker keeps a busy
instance in service."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from serve.errors import JSON_BYTES, ModelNotReadyError
from serve.invocations import InvocationHandler

_READY_HEADERS = [(b"content-length", b"0")]
_NOT_READY = ModelNotReadyError("The model is not loaded yet.")
_NOT_READY_BODY = _NOT_READY.body()
_NOT_READY_HEADERS = [
    (b"content-type", JSON_BYTES),
    (b"content-length", b"%d" % len(_NOT_READY_BODY)),
]


class PingHandler:
    """Answers `GET /ping` from the readiness of the worker's `InvocationHandler`."""

    def __init__(self, invocations: InvocationHandler):
        self.invocations = invocations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.invocations.predictor is not None:
            status, headers, body = 200, _READY_HEADERS, b""
        else:
            status, headers, body = _NOT_READY.status_code, _NOT_READY_HEADERS, _NOT_READY_BODY
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
