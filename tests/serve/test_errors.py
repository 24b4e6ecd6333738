"""The one mapping from an exception to its response: the client's errors, and bugs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from serve.errors import (
    INTERNAL_ERROR_BODY,
    EmptyBodyError,
    ErrorResponse,
    InferenceError,
    OverloadedError,
    RequestTimeoutError,
    error_response,
    send_error,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (EmptyBodyError("Send a row."), 400, "empty_body"),
        (RequestTimeoutError("Faster."), 408, "request_timeout"),
        (OverloadedError("Retry."), 503, "overloaded"),
    ],
)
def test_a_client_error_is_answered_with_its_status_code_and_message(
    error: InferenceError, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="serve.errors")
    answer = error_response(error)
    assert answer.status_code == status
    assert orjson.loads(answer.body) == {"error": code, "message": error.message}
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]
    assert caplog.records[0].exc_info is None


def test_a_bug_is_a_500_that_leaks_nothing_and_logs_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        raise KeyError("secret internal detail")
    except KeyError as exc:
        answer = error_response(exc)
    assert answer == ErrorResponse(500, INTERNAL_ERROR_BODY)
    assert b"secret" not in answer.body
    assert caplog.records[0].levelno == logging.ERROR
    assert "secret internal detail" in caplog.text


def test_send_error_writes_the_status_the_json_body_its_length_then_other_headers() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    error = error_response(EmptyBodyError("Send a row."))
    asyncio.run(send_error(send, error, headers=[(b"retry-after", b"1")]))
    start, body = sent
    assert start["status"] == 400
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(error.body)),
        (b"retry-after", b"1"),
    ]
    assert body == {"type": "http.response.body", "body": error.body}
    assert orjson.loads(body["body"])["error"] == "empty_body"
