"""Reading `/invocations` responses: check the scores, take the server's own time if reported.

A response is valid when it carries exactly one prediction per request row and every number in
it is a probability (finite, within [0, 1]). The forms understood are the SageMaker XGBoost
container's: CSV (one line per row, optionally several comma-separated fields), JSON
(`{"predictions": [{"score": p}, ...]}`, records of several keys, or bare numbers), JSON lines.

The server's own time comes from a `Server-Timing` header (W3C Server Timing: `name;dur=ms`, entries
separated by commas), the way SageMaker separates ModelLatency from OverheadLatency.
"""

from __future__ import annotations

import json
import math
from typing import Any

JSON_TYPES = (
    "application/json",
    "application/jsonlines",
    "application/json-lines",
    "application/x-ndjson",
)


def check_scores(body: bytes, *, content_type: str | None, rows: int) -> str | None:
    """None when `body` holds `rows` valid probabilities, else a short description of the fault."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "response is not UTF-8"
    try:
        if media_type == "application/json":
            predictions = _json_predictions(json.loads(text))
        elif media_type in JSON_TYPES:
            predictions = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif media_type in ("text/csv", "text/plain", ""):
            predictions = [_csv_line(line) for line in text.splitlines() if line.strip()]
        else:
            return f"unexpected response content type {content_type!r}"
    except ValueError as exc:
        return f"unreadable {media_type or 'text'} response: {exc}"
    if len(predictions) != rows:
        return f"expected {rows} predictions, got {len(predictions)}"
    for prediction in predictions:
        fault = _check_probabilities(prediction)
        if fault is not None:
            return fault
    return None


def _json_predictions(document: Any) -> list[Any]:
    if isinstance(document, dict) and isinstance(document.get("predictions"), list):
        return list(document["predictions"])
    if isinstance(document, list):
        return document
    raise ValueError('expected {"predictions": [...]} or a list')


def _csv_line(line: str) -> list[float]:
    return [float(field.strip().strip('"')) for field in line.split(",")]


def _check_probabilities(prediction: Any) -> str | None:
    if isinstance(prediction, dict):
        values = list(prediction.values())
    elif isinstance(prediction, list):
        values = prediction
    else:
        values = [prediction]
    if not values:
        return "empty prediction"
    for value in values:
        if isinstance(value, list):
            fault = _check_probabilities(value)
            if fault is not None:
                return fault
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"prediction {value!r} is not a number"
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            return f"score {value!r} is outside [0, 1]"
    return None


def server_time_us(header: str | None, *, metric: str | None = None) -> float | None:
    """The duration in µs of the `metric` entry (else the first entry with a duration), or None.

    `app;dur=0.25, db;dur=5` gives 250.0 without a metric, 5000.0 for `metric="db"`.
    """
    if not header:
        return None
    for entry in header.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        if metric is not None and name != metric:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dur":
                try:
                    milliseconds = float(value.strip().strip('"'))
                except ValueError:
                    return None
                if not math.isfinite(milliseconds) or milliseconds < 0:
                    return None
                return milliseconds * 1000.0
    return None
