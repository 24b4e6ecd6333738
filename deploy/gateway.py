"""The single door to AWS: every call of every command goes through ``Gateway.call``.

Modes:

- ``live``: make the call (``trace`` prints each one to stderr first);
- ``plan`` (``deploy --dry-run``): read-only calls (Describe*, List*, Get*, Head*) are still made,
  so the plan printed is the real one (like ``terraform plan``); every call that would change
  something is checked against botocore's model and printed as ``dry-run: service.operation
  {parameters}`` on stdout, and skipped;
- ``offline`` (``benchmark recommend --dry-run``): nothing is called and no credentials are
  needed; every call is checked against botocore's model (the check a real call makes before
  it is sent) and printed as ``service.operation`` followed by its indented JSON parameters.

A skipped call returns its ``placeholder`` (an ARN later steps need). boto3 honours
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), which is how tests reach moto; tests
may also hand in clients wired to botocore's Stubber.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO

import boto3
from botocore.config import Config
from botocore.validate import validate_parameters

Mode = Literal["live", "plan", "offline"]

_READ_PREFIXES: Final = ("describe_", "list_", "get_", "head_")
_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="rtb-deploy"
)
# An offline dry run builds clients only for their service models; any region does.
OFFLINE_REGION: Final = "us-east-1"


def is_read_only(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


def render_call(service: str, operation: str, params: Mapping[str, Any]) -> str:
    return f"{service}.{operation} {json.dumps(params, sort_keys=True, default=str)}"


def _printable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value


class Gateway:
    """boto3 clients for one region, with the dry-run modes and an optional trace of every call."""

    def __init__(
        self,
        *,
        region: str | None,
        mode: Mode = "live",
        trace: bool = False,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._session = boto3.session.Session(region_name=region)
        self._client_options: dict[str, Any] = {"config": _CLIENT_CONFIG}
        if endpoint_url:
            self._client_options["endpoint_url"] = endpoint_url
        if mode == "offline" and self._session.region_name is None:
            self._client_options["region_name"] = OFFLINE_REGION
        self._clients: dict[str, Any] = dict(clients or {})
        self.mode: Mode = mode
        self._trace = trace
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self.planned: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def dry_run(self) -> bool:
        return self.mode != "live"

    @property
    def region(self) -> str | None:
        region: str | None = self._session.region_name
        return region

    def client(self, service: str) -> Any:
        """The cached boto3 client for ``service`` (NoRegionError when no region is known)."""
        if service not in self._clients:
            self._clients[service] = self._session.client(service, **self._client_options)
        return self._clients[service]

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Validate ``params`` with botocore's own validator (ParamValidationError when wrong).

        Operations boto3 adds on top of the API (``s3.upload_file``) have no model to check.
        """
        client = self.client(service)
        api_name = client.meta.method_to_api_mapping.get(operation)
        if api_name is None:
            return
        model = client.meta.service_model.operation_model(api_name)
        validate_parameters(dict(params), model.input_shape)

    def call(
        self,
        service: str,
        operation: str,
        /,
        *,
        placeholder: Mapping[str, Any] | None = None,
        note: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Call ``client(service).<operation>(**params)``, or print it as the mode says."""
        if self.mode == "offline":
            self.check(service, operation, params)
            self.planned.append((service, operation, params))
            comment = f"  # {note}" if note else ""
            print(f"{service}.{operation}{comment}", file=self._out)
            print(json.dumps(_printable(params), indent=2, default=str), file=self._out)
            return dict(placeholder or {})
        if self.mode == "plan":
            if not is_read_only(operation):
                self.check(service, operation, params)
                self.planned.append((service, operation, params))
                print(
                    f"dry-run: {render_call(service, operation, params)}",
                    file=self._out,
                    flush=True,
                )
                return dict(placeholder or {})
            print(
                f"dry-run (read): {render_call(service, operation, params)}",
                file=self._err,
                flush=True,
            )
        elif self._trace:
            print(f"aws: {render_call(service, operation, params)}", file=self._err, flush=True)
        response: dict[str, Any] | None = getattr(self.client(service), operation)(**params)
        if not response:
            return {}
        response.pop("ResponseMetadata", None)
        return response

    def pages(self, service: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        """All items under ``key`` from a paginated read-only operation (none when offline)."""
        if self.mode == "offline":
            self.call(service, operation, note="every page", **params)
            return []
        if self.dry_run or self._trace:
            print(
                f"{'dry-run (read)' if self.dry_run else 'aws'}: "
                f"{render_call(service, operation, params)}",
                file=self._err,
                flush=True,
            )
        paginator = self.client(service).get_paginator(operation)
        items: list[Any] = []
        for page in paginator.paginate(**params):
            items.extend(page.get(key, []))
        return items
