"""`GET /ping`: 200 with an empty body once the model is loaded, 503 `model_not_ready` before."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fake_predictor import FakePredictor

from serve.invocations import InvocationHandler
from serve.outputs import OutputSelection
from serve.ping import PingHandler
from serve.settings import Settings


def ping(invocations: InvocationHandler) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("/ping reads no body")

    scope = {"type": "http", "method": "GET", "path": "/ping", "headers": []}
    asyncio.run(PingHandler(invocations)(scope, receive, send))
    return sent


def test_ping_follows_the_model_being_loaded() -> None:
    invocations = InvocationHandler(Settings(), None, OutputSelection(keys=()))
    start, body = ping(invocations)
    assert start["status"] == 503
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert orjson.loads(body["body"])["error"] == "model_not_ready"

    invocations.predictor = FakePredictor()  # what the lifespan does once the model is verified
    start, body = ping(invocations)
    assert start["status"] == 200
    assert start["headers"] == [(b"content-length", b"0")]
    assert body["body"] == b""
