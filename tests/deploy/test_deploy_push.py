"""`deploy push` against a real registry (Debian's docker-registry, basic auth) and, for the ECR
API calls, moto: the engine's login and push go to the local registry, since moto has no
registry API. Every test here needs a container engine and skips (or, in CI, fails) without one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
from deploy_support import ACCOUNT, REGION, REPO, PushedImage, Registry, Result

from deploy import image
from deploy import registry as oci
from deploy.errors import DeployError

pytestmark = [pytest.mark.container, pytest.mark.slow]

Cli = Callable[..., Result]
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def pull(engine: str, reference: str, local: Registry) -> None:
    """Pull ``reference`` back from the local registry (engines verify the digest they pull)."""
    if engine == "podman":
        creds = f"{local.username}:{local.password}"
        command = ["podman", "pull", "--tls-verify=false", "--creds", creds, reference]
    else:
        subprocess.run(
            ["docker", "login", "--username", local.username, "--password-stdin", local.host],
            input=local.password, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        command = ["docker", "pull", reference]
    subprocess.run(command, check=True, capture_output=True, timeout=600)


def test_push_builds_the_dockerfile_and_the_digest_pulls_back(
    engine: str, pushed_image: PushedImage, local_registry: Registry
) -> None:
    host = local_registry.host
    assert pushed_image.engine == engine
    assert pushed_image.image_uri == f"{host}/rtb/inference:e2e"
    assert pushed_image.media_type == DOCKER_V2
    assert pushed_image.image_uri_by_digest == f"{host}/rtb/inference@{pushed_image.digest}"

    # What the registry serves is what was printed.
    manifest = requests.get(
        f"http://{host}/v2/rtb/inference/manifests/e2e",
        headers={"Accept": oci.ACCEPT},
        auth=(local_registry.username, local_registry.password),
        timeout=30,
    )
    assert manifest.status_code == 200
    assert manifest.headers["Content-Type"] == DOCKER_V2
    assert manifest.headers["Docker-Content-Digest"] == pushed_image.digest
    body = manifest.json()
    assert body["schemaVersion"] == 2 and body["layers"]  # one platform, not an index

    # Forget the pushed name locally, then pull by digest: the engine checks the content.
    subprocess.run(
        [engine, "rmi", pushed_image.image_uri], capture_output=True, timeout=120, check=False
    )
    pull(engine, pushed_image.image_uri_by_digest, local_registry)
    digests = image.local_digests(image.Runner(engine), pushed_image.image_uri_by_digest)
    assert pushed_image.image_uri_by_digest in digests


def test_the_registry_refuses_anonymous_and_wrong_credentials(
    pushed_image: PushedImage, local_registry: Registry
) -> None:
    reference = oci.Reference(host=local_registry.host, repository="rtb/inference", tag="e2e")
    with pytest.raises(DeployError, match="answered 401"):
        oci.fetch_manifest(reference, credentials=None)
    wrong = oci.Credentials(local_registry.username, "wrong-password")
    with pytest.raises(DeployError, match="answered 401"):
        oci.fetch_manifest(reference, credentials=wrong)
    right = oci.Credentials(local_registry.username, local_registry.password)
    assert oci.fetch_manifest(reference, credentials=right).digest == pushed_image.digest


def test_an_oci_manifest_is_refused_with_the_fix(
    engine: str, small_image: str, local_registry: Registry
) -> None:
    if engine != "podman":
        pytest.skip("pushing an OCI manifest on purpose is done with podman --format oci")
    reference = oci.Reference(host=local_registry.host, repository="rtb/oci", tag="oci")
    subprocess.run(
        ["podman", "push", "--tls-verify=false", "--format", "oci",
         "--creds", f"{local_registry.username}:{local_registry.password}",
         small_image, str(reference)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    credentials = oci.Credentials(local_registry.username, local_registry.password)
    manifest = oci.fetch_manifest(reference, credentials=credentials)
    assert manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
    with pytest.raises(
        DeployError, match="SageMaker needs application/vnd.docker.distribution.manifest.v2"
    ):
        oci.check_sagemaker_media_type(manifest, reference)


def test_push_of_an_existing_image_with_a_password_from_the_environment(
    cli: Cli, small_image: str, local_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTB_REGISTRY_USERNAME", local_registry.username)
    monkeypatch.setenv("RTB_REGISTRY_PASSWORD", local_registry.password)
    result = cli(
        "push",
        "--image",
        small_image,
        "--registry",
        local_registry.host,
        "--repository",
        "rtb/small",
        "--tag",
        "v1",
    )
    assert result.code == 0, result.err
    pushed = json.loads(result.out)
    assert pushed["media_type"] == DOCKER_V2
    assert (
        "podman build" not in result.err and "docker build" not in result.err
    )  # --image: no build


def test_push_with_bad_credentials_fails_cleanly(
    cli: Cli, small_image: str, local_registry: Registry
) -> None:
    result = cli(
        "push", "--image", small_image, "--registry", local_registry.host,
        "--repository", "rtb/small", "--tag", "v1", "--username", local_registry.username,
        "--password-stdin", stdin="not-the-password\n",
    )  # fmt: skip
    assert result.code == 1
    assert "login" in result.err and "failed" in result.err
    assert "not-the-password" not in result.err


def test_push_to_ecr_creates_the_repository_and_logs_in_with_the_token(
    aws: str, cli: Cli, small_image: str, local_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ECR API calls go to moto; the engine's login/push go to the local registry instead
    of ECR, and the manifest is then recorded in moto's ECR as a real push would leave it."""
    seen: dict[str, Any] = {}
    real_target = oci.ecr_target

    def ecr_target_via_local_registry(gateway: Any, **kwargs: Any) -> oci.Target:
        target = real_target(gateway, **kwargs)
        seen["target"] = target
        local = oci.Credentials(local_registry.username, local_registry.password)
        reference = oci.Reference(
            host=local_registry.host,
            repository=target.reference.repository,
            tag=target.reference.tag,
        )
        return oci.Target(reference=reference, credentials=local, ecr=True)

    real_publish = image.publish

    def publish_and_record_in_ecr(
        runner: image.Runner, *, source: str, target: oci.Target
    ) -> image.Pushed:
        pushed = real_publish(runner, source=source, target=target)
        ref = target.reference
        manifest = requests.get(
            f"http://{ref.host}/v2/{ref.repository}/manifests/{ref.tag}",
            headers={"Accept": DOCKER_V2},
            auth=(local_registry.username, local_registry.password),
            timeout=30,
        )
        boto3.client("ecr", region_name=REGION).put_image(
            repositoryName=target.reference.repository,
            imageManifest=manifest.text,
            imageManifestMediaType=DOCKER_V2,
            imageTag=target.reference.tag,
            imageDigest=pushed.digest,
        )
        return pushed

    monkeypatch.setattr(oci, "ecr_target", ecr_target_via_local_registry)
    monkeypatch.setattr(image, "publish", publish_and_record_in_ecr)

    def push(tag: str) -> Result:
        return cli(
            "push", "--region", REGION, "--image", small_image,
            "--repository", "rtb-inference", "--tag", tag,
        )  # fmt: skip

    result = push("v7")
    assert result.code == 0, result.err

    target: oci.Target = seen["target"]
    assert str(target.reference) == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rtb-inference:v7"
    assert target.credentials is not None and target.credentials.username == "AWS"
    assert target.credentials.password == f"{ACCOUNT}-auth-token"  # moto's token, base64-decoded
    repository = boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"][0]
    assert repository["repositoryName"] == "rtb-inference"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    pushed = json.loads(result.out)
    assert pushed["media_type"] == DOCKER_V2
    details = boto3.client("ecr", region_name=REGION).describe_images(
        repositoryName="rtb-inference"
    )["imageDetails"]
    assert [detail["imageDigest"] for detail in details] == [pushed["digest"]]

    # A second push reuses the repository.
    again = push("v8")
    assert again.code == 0, again.err
    assert len(boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"]) == 1


def test_push_dry_run_prints_the_engine_commands_and_the_ecr_calls(
    aws: str, cli: Cli, engine: str
) -> None:
    result = cli(
        "push",
        "--dry-run",
        "--region",
        REGION,
        "--repository",
        "rtb-inference",
        "--tag",
        "v1",
        "--engine",
        engine,
        "--dockerfile",
        str(REPO / "Dockerfile"),
        "--context",
        str(REPO),
    )
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any(
        line.startswith("dry-run: ecr.create_repository") and '"scanOnPush": true' in line
        for line in lines
    )
    build = next(line for line in lines if " build " in line)
    assert "--platform linux/amd64" in build
    assert (
        ("--format docker" in build)
        if engine == "podman"
        else ("--provenance=false" in build or "build" in build)
    )
    assert any(" push " in line for line in lines)
    assert boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"] == []
