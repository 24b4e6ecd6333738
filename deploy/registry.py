"""Image references, registry credentials, ECR repositories, and a manifest as the registry has it.

After a push we ask the registry (Docker Registry HTTP API v2) for the manifest, because that is
what SageMaker will pull: its digest and its media type. SageMaker's CreateModel rejects OCI
manifests and image indexes, so a push is only done when the registry holds a Docker v2 schema 2
manifest (``application/vnd.docker.distribution.manifest.v2+json``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TextIO

from botocore.exceptions import ClientError

from deploy import validation
from deploy.errors import DeployError, error_code
from deploy.gateway import Gateway

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join((DOCKER_V2, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX))
TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    def by_digest(self, digest: str) -> str:
        return f"{self.host}/{self.repository}@{digest}"


@dataclass(frozen=True)
class Target:
    """Where to push: the reference, and the credentials to log in with (None: no login)."""

    reference: Reference
    credentials: Credentials | None
    ecr: bool = False


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    size: int


def is_loopback(host: str) -> bool:
    """Registries on this machine are reached over plain HTTP (as docker does for 127.0.0.0/8)."""
    if host.startswith("["):
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_registry_host(host: str) -> str:
    if not host or "/" in host or any(ch.isspace() for ch in host):
        raise DeployError(
            f"registry {host!r} must be a host[:port], e.g. registry.example.com or 127.0.0.1:5000"
        )
    return host


def ecr_target(
    gateway: Gateway,
    *,
    repository: str,
    tag: str,
    immutable: bool = False,
    err: TextIO | None = None,
) -> Target:
    """Create the ECR repository if missing (scan on push); log in via GetAuthorizationToken."""
    err = err or sys.stderr
    validation.check_repository(repository)
    validation.check_image_tag(tag)
    try:
        repo = gateway.call(
            "ecr",
            "create_repository",
            repositoryName=repository,
            imageTagMutability="IMMUTABLE" if immutable else "MUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
        ).get("repository")
        if repo:
            print(f"created ECR repository {repo['repositoryUri']} (scan on push)", file=err)
    except ClientError as exc:
        if error_code(exc) != "RepositoryAlreadyExistsException":
            raise
        repo = None
    if not repo:
        try:
            described = gateway.call(
                "ecr", "describe_repositories", repositoryNames=[repository]
            ).get("repositories", [])
        except ClientError as exc:
            if not (gateway.dry_run and error_code(exc) == "RepositoryNotFoundException"):
                raise
            described = []  # a dry run: CreateRepository above was only printed
        repo = described[0] if described else None
        if repo and not repo.get("imageScanningConfiguration", {}).get("scanOnPush", False):
            print(f"warning: ECR repository {repository} does not scan on push", file=err)
    auth = gateway.call("ecr", "get_authorization_token").get("authorizationData", [])
    if gateway.dry_run and (not repo or not auth):
        host = "<account>.dkr.ecr.<region>.amazonaws.com"
        return Target(
            reference=Reference(host=host, repository=repository, tag=tag),
            credentials=None,
            ecr=True,
        )
    if not repo or not auth:
        raise DeployError(f"ECR gave no repository or authorization data for {repository}")
    credentials = decode_token(str(auth[0]["authorizationToken"]))
    host = str(repo["repositoryUri"]).split("/", 1)[0]
    return Target(
        reference=Reference(host=host, repository=repository, tag=tag),
        credentials=credentials,
        ecr=True,
    )


def decode_token(token: str) -> Credentials:
    """ECR's authorizationToken is base64 of ``user:password`` (the user is ``AWS``)."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise DeployError("ECR authorization token is not base64 'user:password'") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username or not password:
        raise DeployError("ECR authorization token is not base64 'user:password'")
    return Credentials(username, password)


def ecr_digest(gateway: Gateway, *, repository: str, tag: str) -> str | None:
    images = gateway.call(
        "ecr", "describe_images", repositoryName=repository, imageIds=[{"imageTag": tag}]
    ).get("imageDetails", [])
    return str(images[0]["imageDigest"]) if images else None


def _bearer_token(challenge: str, credentials: Credentials | None) -> str:
    fields = dict(
        part.split("=", 1)
        for part in challenge[len("Bearer ") :].replace('"', "").split(",")
        if "=" in part
    )
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise DeployError(f"registry token realm {realm!r} is not an HTTP URL")
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(fields)}")
    if credentials is not None:
        request.add_header("Authorization", _basic(credentials))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = json.loads(response.read())
        return str(body.get("token") or body.get("access_token") or "")
    except (OSError, ValueError, AttributeError) as exc:
        raise DeployError(f"cannot get a registry token from {realm}: {exc}") from None


def _basic(credentials: Credentials) -> str:
    return (
        "Basic "
        + base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    )


def fetch_manifest(
    reference: Reference, *, credentials: Credentials | None, digest: str | None = None
) -> Manifest:
    """GET the manifest by tag (or digest) and return its media type, digest and size."""
    scheme = "http" if is_loopback(reference.host) else "https"
    url = (
        f"{scheme}://{reference.host}/v2/{reference.repository}/manifests/{digest or reference.tag}"
    )
    authorization: str | None = None
    for _ in range(2):
        request = urllib.request.Request(url, headers={"Accept": ACCEPT})
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = response.read()
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                header_digest = response.headers.get("Docker-Content-Digest")
                break
        except urllib.error.HTTPError as exc:
            challenge = exc.headers.get("WWW-Authenticate", "")
            if (
                exc.code == 401
                and authorization is None
                and challenge.startswith("Basic")
                and credentials is not None
            ):
                authorization = _basic(credentials)
                continue
            if exc.code == 401 and authorization is None and challenge.startswith("Bearer"):
                authorization = "Bearer " + _bearer_token(challenge, credentials)
                continue
            raise DeployError(f"registry {reference.host} answered {exc.code} for {url}") from None
        except OSError as exc:  # URLError, timeouts, refused connections
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeployError(f"cannot reach registry {reference.host}: {reason}") from None
    else:
        raise DeployError(
            f"registry {reference.host} refused the credentials for {reference.repository}"
        )
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    if header_digest and header_digest != computed:
        raise DeployError(
            f"registry digest {header_digest} does not match the manifest's sha256 {computed}"
        )
    if not media_type:
        try:
            media_type = str(json.loads(body).get("mediaType", ""))
        except (ValueError, AttributeError):
            raise DeployError(
                f"registry {reference.host} sent a manifest that is not JSON"
            ) from None
    return Manifest(media_type=media_type, digest=computed, size=len(body))


def check_sagemaker_media_type(manifest: Manifest, reference: Reference) -> None:
    if manifest.media_type != DOCKER_V2:
        raise DeployError(
            f"{reference} is stored as {manifest.media_type}; SageMaker needs {DOCKER_V2}. "
            "Rebuild without provenance/OCI output (docker: buildx --provenance=false --output "
            "type=docker; "
            "podman: build --format docker, push --format v2s2)"
        )
