"""The OpenAPI schema of the hot paths: `POST /invocations` and `GET /ping` are answered by raw
ASGI callables, not FastAPI routes, so their path items are added to FastAPI's generated schema
here, with the request bodies narrowed to the loaded model's feature count once it is known."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from serve.codecs import DECODERS, JSON
from serve.features import FLOAT32_MAX
from serve.invocations import InvocationHandler

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_ERROR_RESPONSE = {"content": {JSON: {"schema": _ERROR_SCHEMA}}}
_ROW: dict[str, Any] = {"type": "array", "items": {"type": ["number", "null"]}}

PING_OPERATION: dict[str, Any] = {
    "summary": "Health: 200 once the model is loaded and verified, 503 before.",
    "operationId": "ping_ping_get",
    "responses": {
        "200": {"description": "Ready."},
        "503": {"description": "Not ready.", **_ERROR_RESPONSE},
    },
}

INVOCATIONS_OPERATION: dict[str, Any] = {
    "summary": "Predict the probability for each row of the body.",
    "operationId": "invocations_invocations_post",
    "requestBody": {
        "required": False,  # an empty body is answered 204
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
            "text/libsvm": {"schema": {"type": "string"}, "example": "0 1:2 4:7 5:3 6:20 7:2"},
            "text/x-libsvm": {"schema": {"type": "string"}},
            "application/x-recordio-protobuf": {"schema": {"type": "string", "format": "binary"}},
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
                "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
                "application/x-recordio-protobuf": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        "204": {"description": "The body was empty: no rows, no predictions."},
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


def request_schemas(*, num_features: int, max_rows: int) -> dict[str, dict[str, Any]]:
    """Request body schemas that describe exactly what the loaded model accepts (an empty body
    is accepted too: it is answered 204)."""
    # What float() reads, bounded so that every match fits in float32 (the server also takes
    # larger finite numbers, and refuses inf and overflows).
    number = r"[ ]*[+-]?([0-9]{1,18}(\.[0-9]*)?|\.[0-9]{1,18})([eE][+-]?1?[0-9])?[ ]*|[nN][aA][nN]"
    json_number = r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?([eE][+-]?1?[0-9])?"
    csv_row = rf"({number})?(,({number})?){{{num_features - 1}}}"
    json_row = rf"\[({json_number}|null)(,({json_number}|null)){{{num_features - 1}}}\]"
    row: dict[str, Any] = {
        "type": "array",
        "items": {"type": ["number", "null"], "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
        "minItems": num_features,
        "maxItems": num_features,
    }
    rows = {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}
    return {
        "text/csv": {"type": "string", "pattern": rf"^({csv_row}(\n{csv_row})*\n?)?$"},
        JSON: {
            "oneOf": [
                {"type": "object", "required": ["instances"], "properties": {"instances": rows}},
                rows,
                row,
            ]
        },
        "application/jsonlines": {
            "type": "string",
            "pattern": rf"^({json_row}(\n{json_row})*\n?)?$",
        },
    }


def add_openapi(app: FastAPI, handler: InvocationHandler) -> None:
    """Make `app.openapi()` declare `GET /ping` and `POST /invocations` besides FastAPI's own
    routes; cached once the model is loaded (before, it is rebuilt on every call)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        app.openapi_schema = None  # FastAPI caches it; this function decides
        invocations = copy.deepcopy(INVOCATIONS_OPERATION)
        answered = invocations["responses"]["200"]["content"]
        for media_type in list(answered):
            if media_type not in handler.encoders:  # e.g. NPY with selected keys
                del answered[media_type]
        accepted = invocations["requestBody"]["content"]
        for media_type in list(accepted):
            if media_type not in DECODERS:
                del accepted[media_type]
        predictor = handler.predictor
        if predictor is not None:
            content = invocations["requestBody"]["content"]
            narrowed = request_schemas(
                num_features=predictor.num_features, max_rows=handler.settings.max_rows
            )
            for media_type, body_schema in narrowed.items():
                content[media_type]["schema"] = body_schema
        schema["paths"] = {
            "/ping": {"get": PING_OPERATION},
            "/invocations": {"post": invocations},
            **schema.get("paths", {}),
        }
        if predictor is not None:
            app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
