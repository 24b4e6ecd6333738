"""Sending rows to an endpoint through ``sagemaker-runtime`` InvokeEndpoint and reading the answer.

Rows are feature vectors: ``"2,0,0.0,7.0,3.0,20.0,2"`` (an empty field is a missing value).
They go as ``text/csv`` (one row per line) or ``application/json`` (``{"instances": [[...]]}``,
missing as null), the two request formats the server accepts for rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from botocore.exceptions import ClientError

from deploy import validation
from deploy.errors import DeployError, error_code, error_message
from deploy.gateway import Gateway

RowFormat = Literal["text/csv", "application/json"]
CSV: Final[RowFormat] = "text/csv"
JSON: Final[RowFormat] = "application/json"
CONTENT_TYPES: Final[tuple[RowFormat, ...]] = get_args(RowFormat)
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time limit, both directions


def parse_row(text: str, *, where: str) -> list[float | None]:
    values: list[float | None] = []
    for column, cell in enumerate(text.strip().split(","), start=1):
        cell = cell.strip()
        if cell == "":
            values.append(None)
            continue
        try:
            number = float(cell)
        except ValueError:
            raise DeployError(f"{where}, column {column}: {cell!r} is not a number") from None
        if not math.isfinite(number):
            raise DeployError(f"{where}, column {column}: {cell!r} is not a finite number")
        values.append(number)
    return values


def read_rows(*, rows: Sequence[str], file: Path | None) -> list[list[float | None]]:
    """Rows from the command line and/or a CSV file (blank lines skipped; no header)."""
    parsed = [parse_row(row, where=f"--row {index}") for index, row in enumerate(rows, start=1)]
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DeployError(f"cannot read rows from {file}: {exc}") from None
        parsed += [
            parse_row(line, where=f"{file} line {number}")
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]
    if not parsed:
        raise DeployError("no rows to send: give --row 'v1,v2,...' (repeatable) or --file rows.csv")
    widths = {len(row) for row in parsed}
    if len(widths) > 1:
        raise DeployError(f"rows have different numbers of columns: {sorted(widths)}")
    return parsed


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def encode(rows: list[list[float | None]], content_type: RowFormat) -> bytes:
    if content_type == CSV:
        body = "".join(",".join(_cell(value) for value in row) + "\n" for row in rows).encode()
    elif content_type == JSON:
        body = json.dumps({"instances": rows}, separators=(",", ":")).encode()
    else:
        raise DeployError(f"content type {content_type!r} is not one of {', '.join(CONTENT_TYPES)}")
    if len(body) > MAX_BODY_BYTES:
        raise DeployError(
            f"the request body is {len(body)} bytes; SageMaker's real-time limit is "
            f"{MAX_BODY_BYTES}"
        )
    return body


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str
    variant: str

    def predictions(self) -> list[Any]:
        """Predictions as values: one per CSV line, or the JSON document's ``predictions`` list."""
        text = self.body.decode("utf-8", errors="replace")
        if self.content_type.split(";")[0].strip() == JSON:
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                raise DeployError(f"the endpoint answered invalid JSON: {text[:200]!r}") from None
            if isinstance(document, dict) and isinstance(document.get("predictions"), list):
                return list(document["predictions"])
            return [document]
        return [line for line in text.splitlines() if line.strip()]


def _target_model_error(
    exc: ClientError, endpoint_name: str, target_model: str | None
) -> DeployError | None:
    """SageMaker's answer to a missing or unexpected TargetModel, with what to do about it.

    It answers ValidationError "... is missing a target model header" to a multi-model
    endpoint invoked without one, and "... is not a multi-model endpoint and does not support
    target model header" to a single-model endpoint invoked with one.
    """
    message = error_message(exc)
    if error_code(exc) not in {"ValidationError", "ValidationException"}:
        return None
    if target_model is None and "target model" in message.lower():
        return DeployError(
            f"endpoint {endpoint_name} is a multi-model endpoint: name the model with "
            f"--target-model NAME.tar.gz (`python -m deploy models list` shows them); "
            f"SageMaker said: {message}"
        )
    if target_model is not None and "not a multi-model endpoint" in message:
        return DeployError(
            f"endpoint {endpoint_name} serves a single model: drop --target-model; "
            f"SageMaker said: {message}"
        )
    return None


def invoke(
    gateway: Gateway,
    *,
    endpoint_name: str,
    rows: list[list[float | None]],
    content_type: RowFormat = CSV,
    accept: str | None = None,
    variant: str | None = None,
    target_model: str | None = None,
) -> Answer:
    """One InvokeEndpoint; ``target_model`` picks the model of a multi-model endpoint."""
    validation.check_name(endpoint_name, what="endpoint name")
    params: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "Body": encode(rows, content_type),
        "ContentType": content_type,
        "Accept": accept or content_type,
    }
    if variant is not None:
        params["TargetVariant"] = validation.check_name(variant, what="variant name")
    if target_model is not None:
        params["TargetModel"] = validation.check_target_model(target_model)
    try:
        response = gateway.call("sagemaker-runtime", "invoke_endpoint", **params)
    except ClientError as exc:
        explained = _target_model_error(exc, endpoint_name, target_model)
        if explained is None:
            raise
        raise explained from None
    if not response:  # dry run
        return Answer(body=b"", content_type=params["Accept"], variant="")
    return Answer(
        body=response["Body"].read(),
        content_type=str(response.get("ContentType", params["Accept"])),
        variant=str(response.get("InvokedProductionVariant", "")),
    )
