"""The one mapping from an exception to its response: the client's errors, and bugs."""

from __future__ import annotations

import logging

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
