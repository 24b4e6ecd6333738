"""The AWS fakes every AWS test shares: moto in server mode, Stubber-ready clients, ClientErrors.

Imported by tests/deploy/conftest.py and tests/benchmark/test_recommend_*.py, so each fake is
defined once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode on a free loopback port; boto3 reaches it like a real endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def offline_clients(*services: str) -> dict[str, Any]:
    """Clients with fake credentials and no endpoint to reach: wrap them in a Stubber."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return {service: session.client(service) for service in services}


def client_error(code: str, message: str, operation: str = "CreateEndpoint") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)
