"""The ASGI app in process, with a fake predictor: status codes, headers, bodies, readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from serve.app import create_app, read_body
from serve.errors import PayloadTooLargeError, RequestTimeoutError
from serve.settings import Settings

CSV = {"content-type": "text/csv"}
CSV_HEADERS = [(b"content-type", b"text/csv")]


class FakePredictor:
    """Scores a row by the mean of its values, scaled into [0, 1]; records what it saw."""

    kind = "fake"
    num_features = 3

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def predict(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(features)
        return (np.nan_to_num(features).sum(axis=1) / 100).astype(np.float32)

    def predict_row(self, values: list[float]) -> np.ndarray:
        return self.predict(np.array((values,), dtype=np.float32))


class BrokenPredictor(FakePredictor):
    def predict(self, features: np.ndarray) -> np.ndarray:
        raise RuntimeError("secret internal detail")

    def predict_row(self, values: list[float]) -> np.ndarray:
        raise RuntimeError("secret internal detail")


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def predictor() -> FakePredictor:
    return FakePredictor()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# The tests are plain functions driving asyncio themselves: no pytest async plugin needed.


def test_csv_to_csv(predictor: FakePredictor) -> None:
    async def scenario() -> None:
        app = create_app(Settings(workers=1), predictor)
        async with client_for(app) as client:
            response = await client.post("/invocations", content=b"10,20,30\n1,,1", headers=CSV)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv"
        assert response.content == b"0.6\n0.02"
        assert response.headers["server-timing"].startswith("app;dur=")
        assert np.isnan(predictor.calls[0][1, 1])

    run(scenario())


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", b"10,20,30"),
        ("text/csv; charset=utf-8", b"10,20,30\r\n"),
        ("application/json", b'{"instances": [[10, 20, 30]]}'),
        ("application/json", b"[10, 20, 30]"),
        ("application/jsonlines", b"[10, 20, 30]\n"),
        ("application/x-npy", None),
    ],
)
@pytest.mark.parametrize(
    ("accept", "expected_type", "expected_body"),
    [
        (None, "text/csv", b"0.6"),
        ("*/*", "text/csv", b"0.6"),
        ("text/csv", "text/csv", b"0.6"),
        ("application/json", "application/json", b'{"predictions":[{"score":0.6}]}'),
        ("application/jsonlines", "application/jsonlines", b'{"score":0.6}\n'),
    ],
)
def test_every_content_type_and_accept(
    content_type: str,
    body: bytes | None,
    accept: str | None,
    expected_type: str,
    expected_body: bytes,
) -> None:
    if body is None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.array([10, 20, 30], dtype=np.float32))
        body = buffer.getvalue()
    headers = {"content-type": content_type}
    if accept is not None:
        headers["accept"] = accept

    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), FakePredictor())) as client:
            response = await client.post("/invocations", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == expected_type
        assert response.content == expected_body

    run(scenario())


BAD_REQUESTS = [
    ({}, b"1,2,3", 415, "unsupported_media_type"),
    ({"content-type": "text/plain"}, b"1,2,3", 415, "unsupported_media_type"),
    ({"content-type": "text/libsvm"}, b"0 -1:2", 400, "malformed_payload"),
    ({**CSV, "accept": "application/xml"}, b"1,2,3", 406, "not_acceptable"),
    ({**CSV, "accept": "application/x-npy"}, b"1,2,3", 406, "not_acceptable"),
    (CSV, b"", 400, "empty_body"),
    (CSV, b"1,2", 400, "feature_count_mismatch"),
    (CSV, b"1,2,3,4", 400, "feature_count_mismatch"),
    (CSV, b"1,two,3", 400, "malformed_payload"),
    (CSV, b"1,inf,3", 400, "invalid_value"),
    (CSV, b"1,1e400,3", 400, "invalid_value"),
    (CSV, b"1,2,3\n" * 6, 413, "too_many_rows"),
    (CSV, b"1," * 600 + b"1", 413, "payload_too_large"),
    ({"content-type": "application/json"}, b"{bad", 400, "malformed_payload"),
    ({"content-type": "application/x-npy"}, b"\x93NUMPY", 400, "malformed_payload"),
]


@pytest.mark.parametrize(("headers", "body", "status", "code"), BAD_REQUESTS)
def test_bad_requests(headers: dict[str, str], body: bytes, status: int, code: str) -> None:
    predictor = FakePredictor()

    async def scenario() -> None:
        app = create_app(Settings(workers=1, max_body_bytes=1000, max_rows=5), predictor)
        async with client_for(app) as client:
            response = await client.post("/invocations", content=body, headers=headers)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        document = orjson.loads(response.content)
        assert document["error"] == code
        assert set(document) == {"error", "message"} and document["message"]

    run(scenario())
    assert predictor.calls == []  # refused before predicting


def test_accept_is_checked_before_the_body_is_read() -> None:
    async def scenario() -> None:
        app = create_app(Settings(workers=1), FakePredictor())
        async with client_for(app) as client:
            response = await client.post(
                "/invocations", content=b"not even csv", headers={**CSV, "accept": "image/png"}
            )
        assert response.status_code == 406

    run(scenario())


def test_custom_attributes_are_echoed_and_unknown_headers_ignored() -> None:
    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), FakePredictor())) as client:
            response = await client.post(
                "/invocations",
                content=b"1,2,3",
                headers={
                    **CSV,
                    "X-Amzn-SageMaker-Custom-Attributes": "trace=abc; c000=1",
                    "X-Amzn-SageMaker-Target-Model": "whatever.tar.gz",
                    "X-Unknown": "1",
                },
            )
            plain = await client.post("/invocations", content=b"1,2,3", headers=CSV)
        assert response.status_code == 200
        assert response.headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc; c000=1"
        assert "x-amzn-sagemaker-custom-attributes" not in plain.headers

    run(scenario())


def test_selectable_output_keys() -> None:
    settings = Settings(workers=1, inference_output=("predicted_label", "probability"))

    async def scenario() -> None:
        async with client_for(create_app(settings, FakePredictor())) as client:
            response = await client.post(
                "/invocations",
                content=b"10,20,30\n1,1,1",
                headers={**CSV, "accept": "application/json"},
            )
            csv = await client.post("/invocations", content=b"10,20,30", headers=CSV)
        assert orjson.loads(response.content) == {
            "predictions": [
                {"predicted_label": 1, "probability": pytest.approx(0.6)},
                {"predicted_label": 0, "probability": pytest.approx(0.03)},
            ]
        }
        assert csv.content == b"1,0.6"

    run(scenario())


def test_default_accept_setting() -> None:
    async def scenario() -> None:
        settings = Settings(workers=1, default_accept="application/json")
        async with client_for(create_app(settings, FakePredictor())) as client:
            response = await client.post("/invocations", content=b"1,2,3", headers=CSV)
        assert response.headers["content-type"] == "application/json"

    run(scenario())


def test_a_bug_is_a_generic_500_that_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with client_for(create_app(Settings(workers=1), BrokenPredictor())) as client:
            response = await client.post("/invocations", content=b"1,2,3", headers=CSV)
        assert response.status_code == 500
        assert orjson.loads(response.content)["error"] == "internal_error"
        assert b"secret" not in response.content

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
        invocations = schema["paths"]["/invocations"]["post"]
        assert set(invocations["requestBody"]["content"]) == {
            "text/csv",
            "application/json",
            "application/jsonlines",
            "application/x-npy",
        }
        assert "/ping" in schema["paths"]
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


# --- read_body: the byte cap and the deadline on streamed bodies -----------------------------


def receiver(messages: list[dict[str, Any]], *, delay: float = 0.0) -> Any:
    iterator: Iterator[dict[str, Any]] = iter(messages)

    async def receive() -> dict[str, Any]:
        if delay:
            await asyncio.sleep(delay)
        return next(iterator)

    return receive


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_read_body_joins_chunks() -> None:
    receive = receiver([chunk(b"1,", True), chunk(b"2,", True), chunk(b"3", False)])
    assert run(read_body(receive, limit=10, timeout_s=1)) == b"1,2,3"


def test_read_body_stops_at_the_cap_without_reading_the_rest() -> None:
    consumed: list[int] = []

    async def receive() -> dict[str, Any]:
        consumed.append(1)
        return chunk(b"x" * 400, True)  # an endless stream

    with pytest.raises(PayloadTooLargeError):
        run(read_body(receive, limit=1000, timeout_s=1))
    assert len(consumed) == 3


def test_read_body_times_out_a_slow_client() -> None:
    receive = receiver([chunk(b"1,", True)] + [chunk(b"2", True)] * 100, delay=0.05)
    with pytest.raises(RequestTimeoutError):
        run(read_body(receive, limit=1000, timeout_s=0.2))


def test_read_body_times_out_a_body_that_never_arrives() -> None:
    """The first receive() waits and nothing ever comes: 408, and the receive is cleaned up."""
    cleaned: list[bool] = []

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.Event().wait()  # never set
        finally:
            cleaned.append(True)
        raise AssertionError("unreachable")  # pragma: no cover

    with pytest.raises(RequestTimeoutError):
        run(read_body(receive, limit=1000, timeout_s=0.2))
    assert cleaned == [True]


def test_read_body_waits_for_a_late_first_message_and_delivers_its_errors() -> None:
    """A first receive() that has to wait still returns its message, or raises inside it."""
    late = receiver([chunk(b"1,", True), chunk(b"2", False)], delay=0.01)
    assert run(read_body(late, limit=10, timeout_s=5)) == b"1,2"

    async def failing() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        run(read_body(failing, limit=10, timeout_s=5))


def raw_invocation(app: Any, receive: Any) -> list[dict[str, Any]]:
    """Drive the ASGI app directly (no client library in between); returns the sent messages."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [(b"content-type", b"text/csv"), (b"content-length", b"5")],
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run(app(scope, receive, send))
    return sent


def test_a_body_that_never_arrives_is_answered_408_and_the_connection_closed(
    predictor: FakePredictor,
) -> None:
    app = create_app(Settings(request_timeout_s=0.2), predictor=predictor)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # headers came, the body never does
        raise AssertionError("unreachable")  # pragma: no cover

    start, body = raw_invocation(app, receive)
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert orjson.loads(body["body"])["error"] == "request_timeout"


def test_a_body_in_one_late_message_is_served(predictor: FakePredictor) -> None:
    app = create_app(Settings(request_timeout_s=5), predictor=predictor)
    receive = receiver([chunk(b"1,2,3", False)], delay=0.01)
    start, body = raw_invocation(app, receive)
    assert start["status"] == 200
    assert body["body"] == b"0.06"


def test_an_overloaded_invocation_is_shed_with_json_and_ping_still_answers(
    predictor: FakePredictor,
) -> None:
    """The HTTP protocol marks the scope when the worker is over its bound: /invocations
    answers 503 `overloaded` at once (Retry-After, connection closed), /ping stays 200."""
    from serve.errors import OVERLOADED_SCOPE_KEY

    app = create_app(Settings(), predictor=predictor)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def never() -> dict[str, Any]:
        raise AssertionError("an overloaded request must not be read")

    for path, method in (("/invocations", "POST"), ("/ping", "GET")):
        scope = {"type": "http", "method": method, "path": path, "headers": list(CSV_HEADERS)}
        scope[OVERLOADED_SCOPE_KEY] = True
        run(app(scope, never, send))
    (shed, shed_body, ping, _) = sent
    assert shed["status"] == 503
    headers = dict(shed["headers"])
    assert headers[b"retry-after"] == b"1"
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"] == b"application/json"
    assert orjson.loads(shed_body["body"])["error"] == "overloaded"
    assert ping["status"] == 200
    assert not predictor.calls
