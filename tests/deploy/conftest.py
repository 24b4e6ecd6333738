"""Fixtures for the deploy tests: moto in server mode, the local registry, a container engine.

boto3 reaches moto through ``AWS_ENDPOINT_URL`` (exactly as the commands run in production,
with no test hook in the code). Tests that need a container engine or the registry skip with
the reason when those are absent, unless ``RTB_REQUIRE_CONTAINER=1`` (CI), where they fail.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import aws_fakes
import pytest
import requests
from deploy_support import (
    REPO,
    SEED_MODEL,
    PushedImage,
    Registry,
    Result,
    Router,
    require_or_skip,
)

from deploy.cli import main
from deploy.gateway import Gateway

moto_url = aws_fakes.moto_url  # the one moto server fixture


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A clean moto account, reached through AWS_ENDPOINT_URL; no real credentials anywhere."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    for name in list(os.environ):
        if name.startswith(("AWS_", "RTB_")) and name not in {"RTB_REQUIRE_CONTAINER"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)  # no stray ./deploy.toml
    return moto_url


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``python -m deploy ARGS`` in-process and capture what it prints."""

    def run(*argv: str, stdin: str | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(list(argv))
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def seed_model() -> Path:
    """The real SageMaker artifact, from the repository's test data."""
    return SEED_MODEL


# --- container engine and registry ---------------------------------------------------------


def _registry_answers(host: str) -> bool:
    try:
        return requests.get(f"http://{host}/v2/", timeout=2).status_code == 401
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def local_registry() -> Iterator[Registry]:
    """The registry .ci/setup.d/20-registry.sh started, or one started here the same way."""
    host = os.environ.get("RTB_REGISTRY")
    if host:
        user, password = (
            os.environ.get("RTB_REGISTRY_USERNAME", ""),
            os.environ.get("RTB_REGISTRY_PASSWORD", ""),
        )
        if not _registry_answers(host):
            require_or_skip(f"RTB_REGISTRY={host} does not answer")
        yield Registry(host, user, password)
        return
    if shutil.which("docker-registry") is None or shutil.which("htpasswd") is None:
        require_or_skip(
            "no local registry: install docker-registry and apache2-utils, "
            "or source .ci/setup.d/20-registry.sh"
        )
    with tempfile.TemporaryDirectory(prefix="rtb-registry-test-") as directory:
        root = Path(directory)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        user, password = "rtb-test", secrets.token_urlsafe(18)
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
        )
        (root / "htpasswd").write_text(htpasswd.stdout)
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  htpasswd:\n    realm: rtb-test\n    path: {root / 'htpasswd'}\n"
        )
        log = (root / "registry.log").open("w")
        process = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 15
            while not _registry_answers(f"127.0.0.1:{port}") and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _registry_answers(f"127.0.0.1:{port}"):
                require_or_skip(
                    f"docker-registry did not start: {(root / 'registry.log').read_text()[-500:]}"
                )
            yield Registry(f"127.0.0.1:{port}", user, password)
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()


@pytest.fixture(scope="session")
def engine() -> str:
    """podman (or docker) able to build: what `deploy push` will detect."""
    from deploy.errors import DeployError
    from deploy.image import detect_engine

    try:
        name = detect_engine()
    except DeployError as exc:
        require_or_skip(str(exc))
    probe = subprocess.run([name, "info"], capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        require_or_skip(f"{name} is installed but not usable: {probe.stderr.strip()[-300:]}")
    return name


@pytest.fixture(scope="session")
def base_image(engine: str) -> str:
    image = os.environ.get("RTB_BASE_IMAGE", "localhost/rtb-base:bookworm")
    if (
        subprocess.run(
            [engine, "image", "inspect", image], capture_output=True, timeout=60, check=False
        ).returncode
        != 0
    ):
        require_or_skip(f"base image {image} is not built (source .ci/setup.d/10-containers.sh)")
    return image


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Iterator[Router]:
    router = Router()
    original = Gateway.call

    def call(self: Gateway, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        if service == "sagemaker-runtime" and operation in router.runtime_routes:
            answer: dict[str, Any] = getattr(router.runtime_client, operation)(**params)
            return answer
        if service == "sagemaker" and not self.dry_run:
            if operation in router.hooks:
                router.hooks[operation](params)
            if operation in router.routes:
                response: dict[str, Any] = getattr(router.client, operation)(**params)
                return response
        return original(self, service, operation, **params)

    monkeypatch.setattr(Gateway, "call", call)
    with router.stubber, router.runtime_stubber:
        yield router
    router.stubber.assert_no_pending_responses()
    router.runtime_stubber.assert_no_pending_responses()


@pytest.fixture(scope="session")
def small_image(engine: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A one-layer image on the base image: quick to build, for the registry/ECR plumbing tests."""
    context = tmp_path_factory.mktemp("small-image")
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL org.opencontainers.image.title=rtb-deploy-test\n"
    )
    tag = "localhost/rtb-deploy-small:test"
    build = [engine, "build", "--build-arg", f"BASE_IMAGE={base_image}", "--tag", tag, str(context)]
    if engine == "podman":
        build[2:2] = ["--format", "docker"]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    return tag


# The tag of the image the end-to-end test builds and pushes; give each checkout its own.
E2E_TAG = os.environ.get("RTB_DEPLOY_TEST_TAG", "e2e")


@pytest.fixture(scope="session")
def pushed_image(engine: str, base_image: str, local_registry: Registry) -> PushedImage:
    """The real serving image: `deploy push` builds the repository's Dockerfile and pushes it."""
    if not (REPO / "Dockerfile").is_file():
        require_or_skip("no Dockerfile in the repository yet")
    out, err = io.StringIO(), io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO(local_registry.password + "\n")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(
                [
                    "push", "--registry", local_registry.host,
                    "--username", local_registry.username,
                    "--password-stdin", "--repository", "rtb/inference", "--tag", E2E_TAG,
                    "--dockerfile", str(REPO / "Dockerfile"), "--context", str(REPO),
                    "--build-arg", f"BASE_IMAGE={base_image}",
                ]
            )  # fmt: skip
    finally:
        sys.stdin = old_stdin
    assert code == 0, err.getvalue()[-4000:]
    return PushedImage(**json.loads(out.getvalue()))
