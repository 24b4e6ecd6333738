"""The single door to AWS: every call goes through ``Gateway.call``, so ``--dry-run`` sees them all.

In a dry run, read-only calls (Describe*, List*, Get*, Head*) are still made, so the plan it
prints is the real one (like ``terraform plan``), and every call that would change something
is printed as ``service.operation {parameters}`` on stdout and skipped. boto3 honours
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), which is how the tests point it at moto.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import boto3
from botocore.config import Config

_READ_PREFIXES = ("describe_", "list_", "get_", "head_")
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="rtb-deploy"
)


def is_read_only(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


def render_call(service: str, operation: str, params: dict[str, Any]) -> str:
    return f"{service}.{operation} {json.dumps(params, sort_keys=True, default=str)}"


class Gateway:
    """boto3 clients for one region, with dry-run and an optional trace of every call."""

    def __init__(
        self,
        *,
        region: str | None,
        dry_run: bool = False,
        trace: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self.dry_run = dry_run
        self._trace = trace
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self.planned: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def region(self) -> str | None:
        region: str | None = self._session.region_name
        return region

    def client(self, service: str) -> Any:
        """The cached boto3 client for ``service`` (NoRegionError when no region is known)."""
        if service not in self._clients:
            self._clients[service] = self._session.client(service, config=_CLIENT_CONFIG)
        return self._clients[service]

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call ``client(service).<operation>(**params)``; in a dry run, print and skip writes."""
        if self.dry_run:
            if not is_read_only(operation):
                self.planned.append((service, operation, params))
                print(
                    f"dry-run: {render_call(service, operation, params)}",
                    file=self._out,
                    flush=True,
                )
                return {}
            print(
                f"dry-run (read): {render_call(service, operation, params)}",
                file=self._err,
                flush=True,
            )
        elif self._trace:
            print(f"aws: {render_call(service, operation, params)}", file=self._err, flush=True)
        response: dict[str, Any] | None = getattr(self.client(service), operation)(**params)
        return response or {}

    def pages(self, service: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        """All items under ``key`` from a paginated read-only operation."""
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
