"""Making AWS calls, or, in a dry run, printing them after checking them against botocore's model.

A dry run needs no credentials and no network: each call is validated with botocore's own
parameter validator (the same check a real call makes before it is sent) and printed as
`service.operation` followed by its JSON parameters. Calls that return something later steps
need (an ARN) hand back a placeholder that reads as one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.validate import validate_parameters


def _printable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value


@dataclass(slots=True)
class Caller:
    """Calls `client.operation(**params)`, or prints it when `dry_run` is set."""

    dry_run: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    printed: int = 0

    def __call__(
        self,
        client: Any,
        operation: str,
        params: Mapping[str, Any],
        *,
        placeholder: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        if not self.dry_run:
            response: dict[str, Any] = getattr(client, operation)(**params)
            response.pop("ResponseMetadata", None)
            return response
        self.show(client, operation, params, note=note)
        return dict(placeholder or {})

    def show(
        self, client: Any, operation: str, params: Mapping[str, Any], *, note: str | None = None
    ) -> None:
        model = client.meta.service_model
        api_name = client.meta.method_to_api_mapping[operation]
        validate_parameters(dict(params), model.operation_model(api_name).input_shape)
        self.printed += 1
        comment = f"  # {note}" if note else ""
        print(f"{model.service_name}.{operation}{comment}", file=self.stream)
        print(json.dumps(_printable(params), indent=2), file=self.stream)
