"""`POST /invocations` as a raw ASGI callable, answered before FastAPI's routing and middleware:
on a single-row request those cost more than the prediction.

Per request, in this order: overload mark (503 `overloaded` at once, with `Retry-After`), model
ready (503), Content-Type (415), Accept (406), Content-Length (413), the body (`serve.body`: a
byte cap and a deadline, 413 and 408; an empty body is 204 with no content, as the built-in
answers), decode (400, 413), predict, encode. Failures are answered through
`serve.errors.error_response`, written by `serve.errors.send_error`. The response types and
their encoders are fixed at start-up by the output selection and `SAGEMAKER_BATCH`
(`serve.codecs.encoders_for`); in Batch Transform an `application/json` body is read one record
per line, as SageMaker splits it. The response carries `Server-Timing: app;dur=<ms>` (server
time, µs resolution) and echoes `X-Amzn-SageMaker-Custom-Attributes`. Of a header sent twice,
the last one counts.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.types import Receive, Scope, Send

from serve.body import BodyReader, ClientDisconnectedError
from serve.codecs import (
    CSV,
    DECODERS,
    JSON,
    JSONLINES,
    Decoder,
    Encoder,
    encoders_for,
    negotiate_accept,
    parse_csv_row,
    resolve_content_type,
)
from serve.errors import (
    OVERLOADED_SCOPE_KEY,
    ModelNotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    error_response,
    send_error,
)
from serve.outputs import OutputSelection, OutputSelectionError
from serve.predictor import LoadedModel, Predictor
from serve.settings import Settings

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
CSV_DECODER = DECODERS[CSV]
_MAX_CUSTOM_ATTRIBUTES = 1024
_CACHE_LIMIT = 64  # distinct Content-Type / Accept header values remembered per worker


_NO_CONTENT = (204, b"", b"")


class InvocationHandler:
    """Answers `POST /invocations`; holds the worker's predictor (None until it is loaded)."""

    def __init__(self, settings: Settings, predictor: Predictor | None, selection: OutputSelection):
        self.settings = settings
        self.predictor: Predictor | None = None
        self.selection = selection
        self.encoders: dict[str, Encoder] = {}
        self._body = BodyReader(limit=settings.max_body_bytes, timeout_s=settings.request_timeout_s)
        self._decoders: dict[bytes, Decoder] = {}
        self._accepts: dict[bytes, tuple[str, bytes]] = {}
        self._json_decoder = DECODERS[JSONLINES] if settings.batch else DECODERS[JSON]
        self.configure(selection, num_outputs=num_outputs(predictor))
        self.predictor = predictor

    def configure(self, selection: OutputSelection, *, num_outputs: int = 1) -> None:
        """Fix the answer for this model: the response types, their encoders, the default.

        Raises OutputSelectionError when the default response type cannot carry the selection."""
        encoders = encoders_for(selection, batch=self.settings.batch, num_outputs=num_outputs)
        if self.settings.default_accept not in encoders:
            raise OutputSelectionError(
                f"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT={self.settings.default_accept} cannot carry "
                f"SAGEMAKER_INFERENCE_OUTPUT={','.join(selection.keys)}; use one of "
                f"{', '.join(encoders)}."
            )
        self.selection = selection
        self.encoders = encoders
        self._accepts.clear()

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if OVERLOADED_SCOPE_KEY in scope:
            await send_error(send, _OVERLOADED, headers=_OVERLOADED_HEADERS)
            return
        started = perf_counter()
        content_type = accept = length = attributes = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"accept":
                accept = value
            elif name == b"content-length":
                length = value
            elif name == CUSTOM_ATTRIBUTES:
                attributes = value
        try:
            status, media_type, body = await self._respond(content_type, accept, length, receive)
        except ClientDisconnectedError:
            return
        except Exception as exc:
            error = error_response(exc)
            extra = [_server_timing(started)]
            if error.status_code in (408, 413):  # the rest of the body may still be on the wire
                extra.append((b"connection", b"close"))
            if attributes is not None and _is_visible_ascii(attributes):
                extra.append((CUSTOM_ATTRIBUTES, attributes))
            await send_error(send, error, headers=extra)
            return
        timing = _server_timing(started)
        if status == 204:  # no Content-Type, no Content-Length (RFC 9110 15.3.5)
            headers = [timing]
        else:
            headers = [
                (b"content-type", media_type),
                (b"content-length", b"%d" % len(body)),
                timing,
            ]
        if attributes is not None and _is_visible_ascii(attributes):
            headers.append((CUSTOM_ATTRIBUTES, attributes))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _respond(
        self,
        content_type: bytes | None,
        accept: bytes | None,
        length: bytes | None,
        receive: Receive,
    ) -> tuple[int, bytes, bytes]:
        """(status, content type, body) of a request answered; raises what refuses it."""
        predictor = self.predictor
        if predictor is None:
            raise ModelNotReadyError("The model is not loaded yet; retry after /ping answers 200.")
        # Cache hits inline; the methods parse, validate and fill the caches.
        decoder = self._decoders.get(content_type or b"") or self._decoder(content_type)
        chosen = self._accepts.get(accept or b"") or self._accept(accept)
        media_type, media_type_bytes = chosen
        settings = self.settings
        if length is not None and _declared_too_large(length, settings.max_body_bytes):
            raise PayloadTooLargeError(
                f"The body is larger than the {settings.max_body_bytes}-byte limit."
            )
        body = self._body.read(receive)
        if not isinstance(body, bytes):  # not all here yet: read under the deadline
            body = await body
        if not body:
            return _NO_CONTENT
        num_features = predictor.num_features
        values = parse_csv_row(body, num_features=num_features) if decoder is CSV_DECODER else None
        if values is not None:
            probabilities = predictor.predict_row(values)
        else:
            features = decoder(body, num_features=num_features, max_rows=settings.max_rows)
            probabilities = predictor.predict(features)
        return 200, media_type_bytes, self.encoders[media_type](probabilities, self.selection)

    def _decoder(self, header: bytes | None) -> Decoder:
        """The decoder for a Content-Type header, as the built-in resolves it (a missing header
        means LIBSVM; an empty one is refused), remembered per distinct header value."""
        if header is None:
            return resolve_content_type(None)
        decoder = self._decoders.get(header)
        if decoder is None:
            found = resolve_content_type(header.decode("latin-1"))
            if found is DECODERS[JSON]:  # Batch Transform splits JSON by lines: JSON Lines
                found = self._json_decoder
            decoder = _remember(self._decoders, header, found)
        return decoder

    def _accept(self, header: bytes | None) -> tuple[str, bytes]:
        key = b"" if header is None else header
        chosen = self._accepts.get(key)
        if chosen is None:
            media_type = negotiate_accept(
                key.decode("latin-1"), default=self.settings.default_accept, available=self.encoders
            )
            chosen = _remember(self._accepts, key, (media_type, media_type.encode()))
        return chosen


def configure_handler(handler: InvocationHandler, loaded: LoadedModel, settings: Settings) -> None:
    """Give `handler` the verified model and the answers its manifest calls for (raises
    OutputSelectionError when the configured outputs do not fit the model)."""
    model = loaded.manifest.model
    selection = OutputSelection.for_model(
        keys=settings.inference_output,
        objective=model.objective,
        num_class=model.num_class,
        threshold=model.bid_threshold,
    )
    handler.configure(selection, num_outputs=num_outputs(loaded.predictor))
    handler.predictor = loaded.predictor


def num_outputs(predictor: Predictor | None) -> int:
    """Values a row the predictor returns: k for `multi:softprob`, else 1."""
    return 1 if predictor is None else predictor.num_outputs


def _remember(cache: dict[bytes, Any], key: bytes, value: Any) -> Any:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _declared_too_large(length: bytes, limit: int) -> bool:
    """Content-Length over the limit; a malformed one is left to the byte cap while reading."""
    return length.isdigit() and (len(length) > 15 or int(length) > limit)


def _is_visible_ascii(value: bytes) -> bool:
    return 0 < len(value) <= _MAX_CUSTOM_ATTRIBUTES and all(32 <= byte < 127 for byte in value)


def _server_timing(started: float) -> tuple[bytes, bytes]:
    return (b"server-timing", b"app;dur=%.3f" % ((perf_counter() - started) * 1e3))


_OVERLOADED = error_response(
    OverloadedError(
        "The worker is over its concurrency bound (RTB_MAX_CONCURRENCY); retry shortly."
    )
)
_OVERLOADED_HEADERS = (
    (b"retry-after", b"1"),
    (b"connection", b"close"),  # shed the connection too, as uvicorn's own bound does
)
