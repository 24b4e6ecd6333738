"""The registry client: ECR tokens and credentials, and a small in-process Registry API v2 that
uses bearer tokens (as Docker Hub, GHCR and Harbor do; the local docker-registry in the push tests
uses basic auth)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy import registry
from deploy.errors import DeployError

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": registry.DOCKER_V2, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
BASIC = "Basic " + base64.b64encode(b"robot:s3cret").decode()


class Handler(BaseHTTPRequestHandler):
    port = 0
    lie_about_digest = False

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != BASIC:
                self.send_response(401)
                self.end_headers()
                return
            self._send(200, json.dumps({"token": "tok"}).encode(), "application/json")
            return
        if self.headers.get("Authorization") != "Bearer tok":
            self.send_response(401)
            realm = f"http://127.0.0.1:{self.port}/token"
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{realm}",service="test",scope="repository:rtb:pull"',
            )
            self.end_headers()
            return
        digest = "sha256:" + "0" * 64 if self.lie_about_digest else DIGEST
        self._send(200, MANIFEST, registry.DOCKER_V2, {"Docker-Content-Digest": digest})

    def _send(
        self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.port = httpd.server_address[1]
    Handler.lie_about_digest = False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{Handler.port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_bearer_token_flow_and_digest(server: str) -> None:
    reference = registry.Reference(host=server, repository="rtb", tag="v1")
    manifest = registry.fetch_manifest(
        reference, credentials=registry.Credentials("robot", "s3cret")
    )
    assert (manifest.media_type, manifest.digest, manifest.size) == (
        registry.DOCKER_V2,
        DIGEST,
        len(MANIFEST),
    )


def test_a_refused_token_request_is_a_clear_error(server: str) -> None:
    reference = registry.Reference(host=server, repository="rtb", tag="v1")
    with pytest.raises(DeployError, match="cannot get a registry token"):
        registry.fetch_manifest(reference, credentials=registry.Credentials("robot", "wrong"))


def test_a_digest_header_that_does_not_match_the_manifest_is_refused(server: str) -> None:
    Handler.lie_about_digest = True
    reference = registry.Reference(host=server, repository="rtb", tag="v1")
    with pytest.raises(DeployError, match="does not match the manifest's sha256"):
        registry.fetch_manifest(reference, credentials=registry.Credentials("robot", "s3cret"))


def test_an_unreachable_registry_is_a_clear_error() -> None:
    reference = registry.Reference(host="127.0.0.1:9", repository="rtb", tag="v1")
    with pytest.raises(DeployError, match="cannot reach registry 127.0.0.1:9"):
        registry.fetch_manifest(reference, credentials=None)


def test_ecr_tokens_decode_to_user_and_password() -> None:
    token = base64.b64encode(b"AWS:secret:with:colons").decode()
    assert registry.decode_token(token) == registry.Credentials("AWS", "secret:with:colons")
    for bad in (
        "not base64!",
        base64.b64encode(b"no-colon").decode(),
        base64.b64encode(b":x").decode(),
    ):
        with pytest.raises(DeployError, match="not base64 'user:password'"):
            registry.decode_token(bad)


def test_credentials_never_show_the_password() -> None:
    assert "hunter2" not in repr(registry.Credentials("AWS", "hunter2"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True), ("localhost", True),
     ("registry.example.com", False), ("10.0.0.1:5000", False),
     ("123456789012.dkr.ecr.us-east-1.amazonaws.com", False)],
)  # fmt: skip
def test_only_loopback_registries_are_plain_http(host: str, loopback: bool) -> None:
    assert registry.is_loopback(host) is loopback
