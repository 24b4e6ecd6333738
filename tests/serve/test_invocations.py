"""`POST /invocations`, driven as the raw ASGI callable it is: status codes, headers, bodies."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from asgi_messages import chunk, client_for, receiver
from fake_predictor import BrokenPredictor, FakePredictor

from serve.errors import OVERLOADED_SCOPE_KEY
from serve.invocations import InvocationHandler
from serve.outputs import OutputSelection, OutputSelectionError
from serve.settings import Settings

CSV = {"content-type": "text/csv"}
CSV_HEADERS = [(b"content-type", b"text/csv")]


def handler(
    settings: Settings,
    predictor: FakePredictor | None,
    *,
    objective: str = "binary:logistic",
    num_class: int | None = None,
) -> InvocationHandler:
    selection = OutputSelection.for_model(
        keys=settings.inference_output, objective=objective, num_class=num_class
    )
    return InvocationHandler(settings, predictor, selection)


@pytest.fixture
def predictor() -> FakePredictor:
    return FakePredictor()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def invoke(app: Any, content: bytes, **options: Any) -> httpx.Response:
    """One POST /invocations to `app` (`options` as httpx.AsyncClient.post takes them)."""

    async def post() -> httpx.Response:
        async with client_for(app) as client:
            return await client.post("/invocations", content=content, **options)

    result: httpx.Response = run(post())
    return result


# The tests are plain functions driving asyncio themselves: no pytest async plugin needed.


def test_csv_to_csv(predictor: FakePredictor) -> None:
    app = handler(Settings(workers=1), predictor)
    response = invoke(app, content=b"10,20,30\n1,,1", headers=CSV)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"
    assert response.content == b"0.6\n0.02\n"
    assert response.headers["server-timing"].startswith("app;dur=")
    assert np.isnan(predictor.calls[0][1, 1])


NPY_ANSWER = b"npy: float64 [0.6]"  # compared after np.load


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", b"10,20,30"),
        ("text/csv; charset=utf-8", b"10,20,30\r\n"),
        ("application/json", b'{"instances": [[10, 20, 30]]}'),
        ("application/json", b"[10, 20, 30]"),
        ("application/jsonlines", b"[10, 20, 30]\n"),
        ("application/x-npy", None),
        ("text/libsvm", b"1 0:10 1:20 2:30"),
        ("text/x-libsvm", b"0:10 1:20 2:30\n"),
    ],
)
@pytest.mark.parametrize(
    ("accept", "expected_type", "expected_body"),
    [
        (None, "text/csv", b"0.6\n"),
        ("*/*", "text/csv", b"0.6\n"),
        ("text/csv", "text/csv", b"0.6\n"),
        ("application/json", "application/json", b'{"predictions":[{"score":0.6}]}'),
        ("application/jsonlines", "application/jsonlines", b'{"score":0.6}\n'),
        ("application/x-npy", "application/x-npy", NPY_ANSWER),
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
        buffer = io.BytesIO()
        np.save(buffer, np.array([10, 20, 30], dtype=np.float32))
        body = buffer.getvalue()
    headers = {"content-type": content_type}
    if accept is not None:
        headers["accept"] = accept

    response = invoke(handler(Settings(workers=1), FakePredictor()), content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == expected_type
    if expected_body is NPY_ANSWER:
        answer = np.load(io.BytesIO(response.content))
        assert answer.dtype == np.float64 and answer.tolist() == [float(np.float32(0.6))]
    else:
        assert response.content == expected_body


def test_a_request_without_content_type_is_read_as_libsvm(predictor: FakePredictor) -> None:
    app = handler(Settings(workers=1), predictor)
    response = invoke(app, content=b"1 0:10 1:20 2:30")
    assert response.status_code == 200, response.text
    assert response.content == b"0.6\n"
    assert predictor.calls[0].tolist() == [[10.0, 20.0, 30.0]]


BAD_REQUESTS = [
    ({}, b"1,2,3", 400, "malformed_payload"),  # no Content-Type: LIBSVM, as the built-in
    ({"content-type": ""}, b"1,2,3", 415, "unsupported_media_type"),
    ({"content-type": "text/plain"}, b"1,2,3", 415, "unsupported_media_type"),
    ({"content-type": "text/libsvm"}, b"0 -1:2", 400, "malformed_payload"),
    ({**CSV, "accept": "application/xml"}, b"1,2,3", 406, "not_acceptable"),
    (CSV, b"1,2", 400, "feature_count_mismatch"),  # the built-in scores n-1 columns: we refuse
    (CSV, b"1;2;3", 400, "feature_count_mismatch"),  # the built-in sniffs `;`, `\t`, `|`: we refuse
    (CSV, b"1\t2\t3", 400, "feature_count_mismatch"),
    (CSV, b"1|2|3\n4|5|6", 400, "feature_count_mismatch"),
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

    app = handler(Settings(workers=1, max_body_bytes=1000, max_rows=5), predictor)
    response = invoke(app, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    document = orjson.loads(response.content)
    assert document["error"] == code
    assert set(document) == {"error", "message"} and document["message"]
    assert predictor.calls == []  # refused before predicting


def test_accept_is_checked_before_the_body_is_read() -> None:
    app = handler(Settings(workers=1), FakePredictor())
    response = invoke(app, content=b"not even csv", headers={**CSV, "accept": "image/png"})
    assert response.status_code == 406


def test_custom_attributes_are_echoed_and_unknown_headers_ignored() -> None:
    async def scenario() -> None:
        async with client_for(handler(Settings(workers=1), FakePredictor())) as client:
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
        async with client_for(handler(settings, FakePredictor())) as client:
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
        assert csv.content == b"1,0.6"  # selected keys: no terminating newline, as the built-in

    run(scenario())


def test_default_accept_setting() -> None:
    settings = Settings(workers=1, default_accept="application/json")
    response = invoke(handler(settings, FakePredictor()), content=b"1,2,3", headers=CSV)
    assert response.headers["content-type"] == "application/json"


def test_a_bug_is_a_generic_500_that_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    response = invoke(
        handler(Settings(workers=1), BrokenPredictor()), content=b"1,2,3", headers=CSV
    )
    assert response.status_code == 500
    assert orjson.loads(response.content)["error"] == "internal_error"
    assert b"secret" not in response.content
    assert "secret internal detail" in caplog.text  # the traceback goes to the log


def drive(app: Any, scope: dict[str, Any], receive: Any) -> list[dict[str, Any]]:
    """Call the ASGI app directly (no client library in between); returns the sent messages."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run(app(scope, receive, send))
    return sent


def raw_invocation(app: Any, receive: Any) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [(b"content-type", b"text/csv"), (b"content-length", b"5")],
    }
    return drive(app, scope, receive)


def test_a_body_that_never_arrives_is_answered_408_and_the_connection_closed(
    predictor: FakePredictor,
) -> None:
    app = handler(Settings(request_timeout_s=0.2), predictor=predictor)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # headers came, the body never does
        raise AssertionError("unreachable")  # pragma: no cover

    start, body = raw_invocation(app, receive)
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert orjson.loads(body["body"])["error"] == "request_timeout"


def test_a_body_in_one_late_message_is_served(predictor: FakePredictor) -> None:
    app = handler(Settings(request_timeout_s=5), predictor=predictor)
    receive = receiver([chunk(b"1,2,3", False)], delay=0.01)
    start, body = raw_invocation(app, receive)
    assert start["status"] == 200
    assert body["body"] == b"0.06\n"


def test_an_overloaded_invocation_is_shed_with_json_without_reading_it(
    predictor: FakePredictor,
) -> None:
    """The HTTP protocol marks the scope when the worker is over its bound: 503 `overloaded`
    at once (Retry-After, connection closed), the body unread and the model not called."""
    app = handler(Settings(), predictor=predictor)

    async def never() -> dict[str, Any]:
        raise AssertionError("an overloaded request must not be read")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": list(CSV_HEADERS),
        OVERLOADED_SCOPE_KEY: True,
    }
    shed, shed_body = drive(app, scope, never)
    assert shed["status"] == 503
    headers = dict(shed["headers"])
    assert headers[b"retry-after"] == b"1"
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"] == b"application/json"
    assert orjson.loads(shed_body["body"])["error"] == "overloaded"
    assert not predictor.calls


def test_of_a_header_sent_twice_the_last_counts(predictor: FakePredictor) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [
            (b"content-type", b"text/plain"),
            (b"accept", b"application/xml"),
            (b"content-type", b"text/csv"),
            (b"accept", b"application/json"),
        ],
    }
    start, body = drive(handler(Settings(), predictor), scope, receiver([chunk(b"1,2,3", False)]))
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert orjson.loads(body["body"]) == {"predictions": [{"score": pytest.approx(0.06)}]}


def test_a_client_that_leaves_mid_body_is_not_answered(predictor: FakePredictor) -> None:
    receive = receiver([chunk(b"1,", True), {"type": "http.disconnect"}])
    assert raw_invocation(handler(Settings(), predictor), receive) == []
    assert not predictor.calls


@pytest.mark.parametrize(
    ("length", "messages"),
    [
        (b"2000", [chunk(b"1,2,3", False)]),  # refused on Content-Length, body unread
        (b"1200", [chunk(b"1" * 1200, False)]),  # one message over the cap
        (b"1200", [chunk(b"1" * 600, True), chunk(b"1" * 600, False)]),  # over it while streaming
    ],
)
def test_a_body_over_the_limit_is_413_and_the_connection_closed(
    predictor: FakePredictor, length: bytes, messages: list[dict[str, Any]]
) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [*CSV_HEADERS, (b"content-length", length)],
    }
    app = handler(Settings(max_body_bytes=1000), predictor)
    start, body = drive(app, scope, receiver(messages))
    assert start["status"] == 413
    assert (b"connection", b"close") in start["headers"]
    assert orjson.loads(body["body"])["error"] == "payload_too_large"


@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "application/x-npy"])
def test_an_empty_body_is_204_with_no_content(content_type: str) -> None:
    """The built-in: `if len(payload) == 0: return Response(status=204)`."""
    predictor = FakePredictor()

    response = invoke(
        handler(Settings(workers=1), predictor), content=b"", headers={"content-type": content_type}
    )
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert "content-length" not in response.headers
    assert predictor.calls == []


class SoftprobPredictor(FakePredictor):
    """Three classes: the row's sum / 100 as class 1, the rest split over classes 0 and 2."""

    num_outputs = 3

    def predict(self, features: np.ndarray) -> np.ndarray:
        p = super().predict(features)
        rest = (1 - p) / 2
        return np.stack([rest, p, rest], axis=1).astype(np.float32)


def test_softprob_answers_k_values_a_row() -> None:
    async def scenario() -> None:
        app = handler(Settings(workers=1), SoftprobPredictor(), objective="multi:softprob")
        async with client_for(app) as client:
            body = b"25,25,0\n50,0,0"
            csv = await client.post("/invocations", content=body, headers=CSV)
            json = await client.post(
                "/invocations", content=body, headers={**CSV, "accept": "application/json"}
            )
        assert csv.content == b"0.25,0.5,0.25\n0.25,0.5,0.25\n"
        assert orjson.loads(json.content) == {
            "predictions": [{"score": [0.25, 0.5, 0.25]}, {"score": [0.25, 0.5, 0.25]}]
        }

    run(scenario())


def test_softprob_selected_keys() -> None:
    settings = Settings(workers=1, inference_output=("predicted_label", "probability", "labels"))

    app = handler(settings, SoftprobPredictor(), objective="multi:softprob", num_class=3)
    response = invoke(app, content=b"25,25,0", headers=CSV)
    assert response.content == b'1,0.5,"[0, 1, 2]"'


def test_batch_mode_answers_one_prediction_a_line_whatever_the_accept() -> None:
    """SAGEMAKER_BATCH: the built-in's `"\\n".join(map(str, preds_list)) + "\\n"`."""
    settings = Settings(workers=1, batch=True)

    async def scenario() -> None:
        async with client_for(handler(settings, FakePredictor())) as client:
            for accept in ("text/csv", "application/json", "application/jsonlines"):
                response = await client.post(
                    "/invocations", content=b"10,20,30\n1,1,1\n", headers={**CSV, "accept": accept}
                )
                assert response.status_code == 200
                assert response.content == b"0.6\n0.03\n", accept
                assert response.headers["content-type"] == accept  # as the built-in labels it
            softprob = handler(settings, SoftprobPredictor(), objective="multi:softprob")
            async with client_for(softprob) as client:
                response = await client.post("/invocations", content=b"25,25,0", headers=CSV)
            assert response.content == b"[0.25, 0.5, 0.25]\n"

    run(scenario())


def test_batch_mode_reads_json_one_record_a_line() -> None:
    """SplitType=Line cuts a JSON file into lines: each line is one record."""
    settings = Settings(workers=1, batch=True)

    response = invoke(
        handler(settings, FakePredictor()),
        content=b'[10, 20, 30]\n{"features": [1, 1, 1]}\n',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.content == b"0.6\n0.03\n"


def test_batch_mode_terminates_selected_csv_lines() -> None:
    settings = Settings(workers=1, batch=True, inference_output=("predicted_label",))

    response = invoke(handler(settings, FakePredictor()), content=b"10,20,30\n1,1,1", headers=CSV)
    assert response.content == b"1\n0\n"


def test_npy_cannot_carry_selected_keys() -> None:
    settings = Settings(workers=1, inference_output=("probability",))

    response = invoke(
        handler(settings, FakePredictor()),
        content=b"1,2,3",
        headers={**CSV, "accept": "application/x-npy"},
    )
    assert response.status_code == 406
    assert orjson.loads(response.content)["error"] == "not_acceptable"


def test_a_default_accept_that_cannot_carry_the_selection_is_refused_at_start_up() -> None:
    settings = Settings(
        workers=1, default_accept="application/x-npy", inference_output=("probability",)
    )
    with pytest.raises(OutputSelectionError, match="SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"):
        handler(settings, FakePredictor())


def test_a_full_batch_mini_batch_of_short_rows_is_served() -> None:
    """6 MiB of `0,0,0` rows: 1,048,576 rows, far over the old 100,000-row default."""
    settings = Settings(workers=1)
    row = b"0,0,0\n"
    body = row * (settings.max_body_bytes // len(row))

    response = invoke(handler(settings, FakePredictor()), content=body, headers=CSV)
    assert response.status_code == 200, response.text[:200]
    assert response.content.count(b"\n") == len(body) // len(row)
